"""mirror, export, import end to end: a release made in one docker-registry is mirrored to a second one,
exported to a layout and imported into a third prefix; verify-release passes against each copy."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.oci.reference import parse_reference
from tests.cli.test_release_cli import PASSWORD, Setup, keys
from tests.oci.helpers import client as make_client
from tests.registry_fixtures import RegistryProcess, start_registry

__all__ = ["keys"]


@pytest.fixture(scope="module")
def target_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    registry = start_registry(tmp_path_factory.mktemp("registry-target"), name="target")
    yield registry
    registry.stop()


def released(cli: Any, registry: RegistryProcess, key: Path, tmp_path: Path, version: str = "v1.0.0") -> Setup:
    world = Setup(registry, tmp_path)
    result = cli("release", *world.args(version, "--key", str(key), "--release-dir", str(world.release_dir),
                                        "--no-tlog-upload"), env={"COSIGN_PASSWORD": PASSWORD})  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return world


def source_mirrors(world: Setup) -> list[str]:
    return [arg for spec in world.mirrors for arg in ("--registry-mirror", spec)]


def verify_args(reference: str, pub: Path, rules: list[str]) -> list[str]:
    return [reference, "--key", str(pub), "--insecure-ignore-tlog",
            *[arg for rule in rules for arg in ("--registry-mirror", rule)]]  # fmt: skip


def mirrored_vector(target: str, world: Setup, version: str) -> str:
    host, _, path = world.repository.partition("/")
    return f"{target}/{host.replace(':', '_')}/{path}:{version}"


def test_mirror_then_verify_then_rerun_sends_nothing(
    cli: Any, plain_registry: RegistryProcess, target_registry: RegistryProcess, keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    key, pub = keys
    world = released(cli, plain_registry, key, tmp_path)
    to = f"{target_registry.host}/{world.prefix}"
    args = [f"{world.repository}:v1.0.0", "--to", to, *source_mirrors(world), "--json"]

    dry = cli("mirror", *args, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    plan = json.loads(dry.stdout)["plan"]
    assert [entry["kind"] for entry in plan] == ["vector"] + ["image"] * 5
    assert all(entry["signed"] and entry["present"] for entry in plan)
    written = (target_registry.storage / "docker").rglob("*")
    assert not any(world.prefix in path.parts for path in written), "a dry run writes nothing"

    first = cli("mirror", *args, "--key", str(pub), "--insecure-ignore-tlog")
    assert first.exit_code == 0, first.stderr
    result = json.loads(first.stdout)
    kinds = [copied["kind"] for copied in result["copied"]]
    # 6 signed objects, each with a .sig and a referrer (release's default --bundle-format both)
    assert kinds.count("vector") == 1 and kinds.count("image") == 5 and kinds.count("signature") == 12
    assert all(c["source"].split("@")[1] == c["target"].split("@")[1] for c in result["copied"]), "digests kept"
    assert result["counts"]["blobs_sent"] > 0
    rules = result["registry_mirrors"]
    assert f"ghcr.io={to}/ghcr.io" in rules

    verified = cli("verify-release", *verify_args(mirrored_vector(to, world, "v1.0.0"), pub, rules))
    assert verified.exit_code == 0, verified.stderr

    again = cli("mirror", *args)
    assert again.exit_code == 0, again.stderr
    counts = json.loads(again.stdout)["counts"]
    assert counts["blobs_sent"] == counts["manifests_sent"] == counts["tags_set"] == counts["blobs_mounted"] == 0
    assert counts["manifests_skipped"] == 18  # 6 items and 12 signature manifests, each one HEAD


def test_export_import_and_offline_verification(
    cli: Any, plain_registry: RegistryProcess, target_registry: RegistryProcess, keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    key, pub = keys
    world = released(cli, plain_registry, key, tmp_path, "v2.0.0")
    for target in (tmp_path / "export", tmp_path / "export.tar"):
        exported = cli("export", f"{world.repository}:v2.0.0", "--to", str(target), "--key", str(pub),
                       "--insecure-ignore-tlog", *source_mirrors(world), "--json")  # fmt: skip
        assert exported.exit_code == 0, exported.stderr
        assert json.loads(exported.stdout)["registry_mirrors"] == []
        assert not list(tmp_path.glob(".export*partial*")), "no temporary left behind"
    layout = tmp_path / "export"
    assert (layout / "oci-layout").is_file() and (layout / "cosign.pub").read_bytes() == pub.read_bytes()
    assert (layout / "trusted_root.json").is_file()
    index = json.loads((layout / "index.json").read_text())
    names = {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]}
    assert f"{world.repository}:v2.0.0" in names

    check_with_skopeo(layout, target_registry, world.prefix)

    for given in (layout, tmp_path / "export.tar"):
        offline = cli("verify-release", "--oci-layout", str(given), "--key", str(pub), "--insecure-ignore-tlog")
        assert offline.exit_code == 0, offline.stderr

    to = f"{target_registry.host}/imported-{world.prefix}"
    imported = cli("import", str(tmp_path / "export.tar"), "--to", to, "--json")
    assert imported.exit_code == 0, imported.stderr
    rules = json.loads(imported.stdout)["registry_mirrors"]
    verified = cli("verify-release", *verify_args(mirrored_vector(to, world, "v2.0.0"), pub, rules))
    assert verified.exit_code == 0, verified.stderr


def check_with_skopeo(layout: Path, registry: RegistryProcess, prefix: str) -> None:
    """skopeo (an independent reader of OCI layouts) sees our digests, and copies an image out unchanged."""
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.skip("skopeo is not installed (make install)")
    record = json.loads((layout / "release-vector.json").read_text())
    for item in record["items"]:
        name, digest = item["reference"].split("@")
        raw = subprocess.run([skopeo, "inspect", "--raw", f"oci:{layout}:{name}"], capture_output=True, check=True)
        assert f"sha256:{hashlib.sha256(raw.stdout).hexdigest()}" == digest, name
    name, digest = next(i["reference"] for i in record["items"] if i["kind"] != "vector").split("@")
    copied_to = f"{registry.host}/skopeo-{prefix}/image:copied"
    subprocess.run([skopeo, "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false",
                    f"oci:{layout}:{name}", f"docker://{copied_to}"], capture_output=True, check=True)  # fmt: skip
    with make_client() as client:
        descriptor = client.head_manifest(parse_reference(copied_to))
    assert descriptor is not None and descriptor.digest == digest
