"""A small multi-arch release for the mirror tests: two images (an index of two platforms each, three
layers per platform, one layer shared between the images) signed by ``release`` in both formats."""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from pipeline.oci.client import RegistryClient
from pipeline.oci.reference import parse_reference
from tests.cli.test_release_cli import PASSWORD, REV
from tests.oci.helpers import client as make_client

_COUNTER = itertools.count()
SHARED_LAYER = b"a layer both images have (mounted, not sent twice, when mirrored)"


def _descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": digests.compute(data), "size": len(data)}


def push_multiarch(client: RegistryClient, ref_text: str, seed: str, layer_size: int = 256) -> str:
    """An OCI index of linux/amd64 and linux/arm64, each with a config and three layers; returns its digest."""
    ref = parse_reference(ref_text)
    entries = []
    for arch in ("amd64", "arm64"):
        config = json.dumps({"architecture": arch, "os": "linux", "seed": seed}).encode()
        layers = [SHARED_LAYER] + [(f"{seed} {arch} layer {n} ".encode() * layer_size)[:layer_size] for n in (1, 2)]
        for blob in (config, *layers):
            client.upload_blob(ref, blob)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
            "config": _descriptor(mediatypes.OCI_CONFIG, config),
            "layers": [_descriptor(mediatypes.OCI_LAYER_TAR_GZIP, layer) for layer in layers],
        }).encode()  # fmt: skip
        client.put_manifest(ref.repo, digests.compute(manifest), manifest, mediatypes.OCI_MANIFEST)
        entries.append({**_descriptor(mediatypes.OCI_MANIFEST, manifest), "platform": {"os": "linux",
                                                                                        "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": entries}).encode()
    return client.put_manifest(ref, None, index, mediatypes.OCI_INDEX)


@dataclass
class World:
    host: str
    prefix: str
    source: Path
    release_dir: Path

    @property
    def repository(self) -> str:
        return f"{self.host}/{self.prefix}/releases"

    def images(self) -> list[str]:
        return [f"{self.host}/{self.prefix}/app:1.0", f"{self.host}/{self.prefix}/base:2.0"]


def make_world(host: str, tmp_path: Path) -> World:
    prefix = f"mw{os.getpid()}-{next(_COUNTER)}"
    world = World(host, prefix, tmp_path / "release.yaml", tmp_path / "releases")
    with make_client() as client:
        for ref in world.images():
            push_multiarch(client, ref, f"{prefix} {ref}")
    app, base = (ref.rsplit(":", 1) for ref in world.images())
    world.source.write_text(
        "docker-images:\n  demo:\n    app:\n"
        f"      name: {app[0]}\n      tag: \"{app[1]}\"\n    base:\n"
        f"      name: {base[0]}\n      tag: \"{base[1]}\"\n"
    )
    return world


def release(cli: Any, world: World, key: Path, version: str = "v1.0.0", bundle_format: str = "both") -> None:
    result = cli("release", version, "--source", str(world.source), "--repository", world.repository,
                 "--git-revision", REV, "--key", str(key), "--release-dir", str(world.release_dir),
                 "--no-tlog-upload", "--bundle-format", bundle_format,
                 env={"COSIGN_PASSWORD": PASSWORD})  # fmt: skip
    assert result.exit_code == 0, result.stderr


def mirrored(to: str, reference: str) -> str:
    host, _, path = reference.partition("/")
    return f"{to}/{host.replace(':', '_')}/{path}"


def verify_args(reference: str, pub: Path, rules: list[str]) -> list[str]:
    return [reference, "--key", str(pub), "--insecure-ignore-tlog",
            *[arg for rule in rules for arg in ("--registry-mirror", rule)]]  # fmt: skip
