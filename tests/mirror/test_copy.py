"""The copy engine against real registries: multi-arch images, both signature formats, registries with
and without the referrers API, mounts of shared blobs, and what a second run sends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_release_cli import PASSWORD, keys
from tests.mirror.world import make_world, mirrored, release, verify_args
from tests.referrers_proxy import ReferrersProxy
from tests.registry_fixtures import RegistryProcess, start_registry

__all__ = ["keys"]


@pytest.fixture(scope="module")
def second_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    registry = start_registry(tmp_path_factory.mktemp("registry-second"), name="second")
    yield registry
    registry.stop()


def test_multiarch_both_formats_to_a_registry_without_referrers_api(
    cli: Any, plain_registry: RegistryProcess, second_registry: RegistryProcess, keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    key, pub = keys
    world = make_world(plain_registry.host, tmp_path)
    release(cli, world, key)
    app = world.images()[0]
    signed = cli("sign", app, "--key", str(key), "--recursive", "--no-tlog-upload", "--bundle-format", "legacy",
                 env={"COSIGN_PASSWORD": PASSWORD})  # the platform manifests: .sig tags only
    assert signed.exit_code == 0, signed.stderr
    to = f"{second_registry.host}/copy"
    first = cli("mirror", f"{world.repository}:v1.0.0", "--to", to, "--json")
    assert first.exit_code == 0, first.stderr
    result = json.loads(first.stdout)
    kinds = sorted(c["kind"] for c in result["copied"])
    # vector + 2 indexes; per item a .sig tag and the fallback index (v3 bundles) = 6 signature objects,
    # and the .sig tags of app's two platform manifests (sign --recursive)
    assert kinds == ["index", "index", *["signature"] * 8, "vector"], kinds
    platform_sigs = [c for c in result["copied"] if c["kind"] == "signature" and "/app:" in c["target"]]
    assert len(platform_sigs) == 4
    counts = result["counts"]
    assert counts["blobs_mounted"] >= 1, counts  # the layer both images share, mounted into the second
    # 2 images x 2 platforms x (config + 3 layers) = 16 blob slots, 14 distinct per repository
    assert counts["blobs_sent"] + counts["blobs_mounted"] + counts["blobs_skipped"] >= 14

    rules = result["registry_mirrors"]
    verified = cli("verify-release", *verify_args(mirrored(to, f"{world.repository}:v1.0.0"), pub, rules))
    assert verified.exit_code == 0, verified.stderr

    again = cli("mirror", f"{world.repository}:v1.0.0", "--to", to, "--json")
    counts = json.loads(again.stdout)["counts"]
    assert (counts["blobs_sent"], counts["manifests_sent"], counts["tags_set"]) == (0, 0, 0), counts


def test_referrers_api_source_to_a_target_without_it_gets_the_fallback_index(
    cli: Any, plain_registry: RegistryProcess, second_registry: RegistryProcess, keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    key, pub = keys
    with ReferrersProxy(plain_registry.url) as source:
        world = make_world(source.host, tmp_path)
        release(cli, world, key, bundle_format="v3")
        assert source.referrers, "the release attached its bundles through the referrers API"
        to = f"{second_registry.host}/fallback"
        done = cli("mirror", f"{world.repository}:v1.0.0", "--to", to, "--json")
        assert done.exit_code == 0, done.stderr
    result = json.loads(done.stdout)
    signatures = [c for c in result["copied"] if c["kind"] == "signature"]
    assert len(signatures) == 3 and all(":sha256-" not in c["source"] for c in signatures)  # by digest
    verified = cli("verify-release", *verify_args(mirrored(to, f"{world.repository}:v1.0.0"), pub,
                                                  result["registry_mirrors"]))  # fmt: skip
    assert verified.exit_code == 0, verified.stderr


def test_to_a_registry_with_the_referrers_api(
    cli: Any, plain_registry: RegistryProcess, second_registry: RegistryProcess, keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    key, pub = keys
    world = make_world(plain_registry.host, tmp_path)
    release(cli, world, key, bundle_format="v3")
    with ReferrersProxy(second_registry.url) as target:
        to = f"{target.host}/api"
        done = cli("mirror", f"{world.repository}:v1.0.0", "--to", to, "--json")
        assert done.exit_code == 0, done.stderr
        assert len(target.referrers) == 3, "each bundle's referrer manifest reached the referrers API"
        rules = json.loads(done.stdout)["registry_mirrors"]
        verified = cli("verify-release", *verify_args(mirrored(to, f"{world.repository}:v1.0.0"), pub, rules))
        assert verified.exit_code == 0, verified.stderr
