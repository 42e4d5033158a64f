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


SBOM_TYPE = "application/spdx+json"


def _attach_sbom(host: str, image: str, subject: dict[str, object]) -> str:
    """An SBOM-like OCI 1.1 referrer (not a Sigstore bundle) of ``subject``, pushed by digest."""
    from pipeline.oci import digest as digests
    from pipeline.oci import mediatypes
    from pipeline.oci.reference import parse_reference
    from tests.oci.helpers import client as make_client

    layer = b'{"spdxVersion":"SPDX-2.3"}'
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST, "artifactType": SBOM_TYPE,
        "config": {"mediaType": mediatypes.OCI_EMPTY, "digest": digests.compute(mediatypes.OCI_EMPTY_DATA),
                   "size": len(mediatypes.OCI_EMPTY_DATA)},
        "layers": [{"mediaType": SBOM_TYPE, "digest": digests.compute(layer), "size": len(layer)}],
        "subject": subject,
    }).encode()  # fmt: skip
    ref = parse_reference(image)
    with make_client() as client:
        client.upload_blob(ref, mediatypes.OCI_EMPTY_DATA)
        client.upload_blob(ref, layer)
        return client.put_manifest(ref.repo, digests.compute(manifest), manifest, mediatypes.OCI_MANIFEST)


def _platforms(image: str) -> list[dict[str, object]]:
    from pipeline.oci.reference import parse_reference
    from tests.oci.helpers import client as make_client

    with make_client() as client:
        index = json.loads(client.get_manifest(parse_reference(image)).data)
    return [{k: entry[k] for k in ("mediaType", "digest", "size")} for entry in index["manifests"]]


def test_referrers_of_platform_manifests_through_the_referrers_api(
    cli: Any, plain_registry: RegistryProcess, second_registry: RegistryProcess, keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    """``sign --recursive`` on a registry with the referrers API: each platform manifest's v3 bundle is found
    only through that API (no tag). The mirror carries them (to a target without the API: listed in each
    platform manifest's fallback index; with it: through the API), so do export and import, and an SBOM
    referrer of a platform manifest only with --include-referrers."""
    key, pub = keys
    with ReferrersProxy(plain_registry.url) as source:
        world = make_world(source.host, tmp_path)
        release(cli, world, key, bundle_format="v3")
        app = world.images()[0]
        signed = cli("sign", app, "--key", str(key), "--recursive", "--no-tlog-upload", "--bundle-format", "v3",
                     env={"COSIGN_PASSWORD": PASSWORD})  # fmt: skip
        assert signed.exit_code == 0, signed.stderr
        platforms = _platforms(app)
        app_path = app.split("/", 1)[1].rsplit(":", 1)[0]
        assert all(source.referrers.get((app_path, p["digest"])) for p in platforms)  # type: ignore[call-overload]
        sbom = _attach_sbom(source.host, app, platforms[0])
        vector = f"{world.repository}:v1.0.0"

        plain_to = f"{second_registry.host}/platform-fallback"
        done = cli("mirror", vector, "--to", plain_to, "--json")
        assert done.exit_code == 0, done.stderr
        copied = json.loads(done.stdout)["copied"]
        assert not any(sbom in c["source"] for c in copied), "an SBOM only with --include-referrers"
        bundles = {str(entry["digest"]) for p in platforms
                   for entry in source.referrers[(app_path, p["digest"])]}  # type: ignore[index]  # fmt: skip
        carried = {c["source"].rsplit("@", 1)[1] for c in copied if c["kind"] == "signature"}
        assert bundles - {sbom} <= carried, "every platform manifest's bundle, found only through the API"
        for platform in platforms:
            target = f"{mirrored(plain_to, app).rsplit(':', 1)[0]}@{platform['digest']}"
            verified = cli("verify", target, "--key", str(pub), "--insecure-ignore-tlog")
            assert verified.exit_code == 0, verified.stderr  # read through the fallback index at the target

        # across an air gap: the export lists them in each platform manifest's fallback index, the import
        # carries that index as a tag
        layout = tmp_path / "export"
        exported = cli("export", vector, "--to", str(layout))
        assert exported.exit_code == 0, exported.stderr
        import_to = f"{second_registry.host}/platform-import"
        imported = cli("import", str(layout), "--to", import_to)
        assert imported.exit_code == 0, imported.stderr
        for platform in platforms:
            target = f"{mirrored(import_to, app).rsplit(':', 1)[0]}@{platform['digest']}"
            verified = cli("verify", target, "--key", str(pub), "--insecure-ignore-tlog")
            assert verified.exit_code == 0, verified.stderr

        with ReferrersProxy(second_registry.url) as target_api:
            api_to = f"{target_api.host}/platform-api"
            done = cli("mirror", vector, "--to", api_to, "--json", "--include-referrers")
            assert done.exit_code == 0, done.stderr
            copied = json.loads(done.stdout)["copied"]
            assert any(sbom in c["source"] for c in copied)
            repo = mirrored(api_to, app).split("/", 1)[1].rsplit(":", 1)[0]
            for platform in platforms:
                listed = target_api.referrers.get((repo, platform["digest"]), [])  # type: ignore[call-overload]
                types = {entry.get("artifactType") for entry in listed}
                assert "application/vnd.dev.sigstore.bundle.v0.3+json" in types, listed
            assert SBOM_TYPE in {e.get("artifactType") for e in target_api.referrers[(repo, platforms[0]["digest"])]}  # type: ignore[index]
            for platform in platforms:
                target = f"{mirrored(api_to, app).rsplit(':', 1)[0]}@{platform['digest']}"
                verified = cli("verify", target, "--key", str(pub), "--insecure-ignore-tlog")
                assert verified.exit_code == 0, verified.stderr
