"""release --attest provenance and verify-release --require-provenance: the statement (read raw), re-runs,
the builder from GitHub Actions' environment, and the negative cases (another builder, dependencies that
differ from the vector, a vector re-pushed under the tag without new provenance)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx

from pipeline.oci import mediatypes
from tests.cli.test_release_cli import PASSWORD, Setup, keys
from tests.registry_fixtures import RegistryProcess
from tests.sigstore.log_fixtures import LocalLog, local_log

__all__ = ["keys", "local_log"]

GITHUB_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_WORKFLOW_REF": "acme/platform/.github/workflows/release.yml@refs/tags/v3.0.0",
    "GITHUB_REPOSITORY": "acme/platform",
    "GITHUB_REF": "refs/tags/v3.0.0",
    "GITHUB_SHA": "a" * 40,
    "GITHUB_RUN_ID": "42",
    "SOURCE_DATE_EPOCH": "1775719409",
}
BUILDER = "https://github.com/acme/platform/.github/workflows/release.yml@refs/tags/v3.0.0"


def _provenance_statement(registry: RegistryProcess, world: Setup, digest: str) -> dict[str, Any]:
    repository = world.repository.split("/", 1)[1]
    tag = digest.replace(":", "-") + ".att"
    manifest = httpx.get(f"{registry.url}/v2/{repository}/manifests/{tag}",
                         headers={"Accept": mediatypes.OCI_MANIFEST}, trust_env=False).json()  # fmt: skip
    [layer] = manifest["layers"]
    assert layer["annotations"]["predicateType"] == "https://slsa.dev/provenance/v1"
    envelope = httpx.get(f"{registry.url}/v2/{repository}/blobs/{layer['digest']}", trust_env=False).json()
    return json.loads(base64.b64decode(envelope["payload"]))  # type: ignore[no-any-return]


def test_release_attests_provenance_and_verify_release_requires_it(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, local_log: LocalLog
) -> None:
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    env = {"COSIGN_PASSWORD": PASSWORD, **GITHUB_ENV}
    args = world.args("v3.0.0", "--key", str(key), "--release-dir", str(world.release_dir), "--attest", "provenance",
                      "--json", *local_log.sign_args)  # fmt: skip
    released = cli("release", *args, env=env)
    assert released.exit_code == 0, released.stderr
    digest = json.loads(released.stdout)["artifact_digest"]
    statement = _provenance_statement(plain_registry, world, digest)
    assert statement["subject"] == [{"name": world.repository, "digest": {"sha256": digest.split(":")[1]}}]
    predicate = statement["predicate"]
    assert predicate["runDetails"]["builder"]["id"] == BUILDER
    assert predicate["runDetails"]["metadata"]["startedOn"] == "2026-04-09T07:23:29Z"
    external = predicate["buildDefinition"]["externalParameters"]
    assert external["version"] == "v3.0.0" and external["mirrors"] == world.mirrors
    assert external["workflow"] == {"repository": "https://github.com/acme/platform", "ref": "refs/tags/v3.0.0",
                                    "revision": "a" * 40}  # fmt: skip
    dependencies = predicate["buildDefinition"]["resolvedDependencies"]
    pinned = {str(ref).split(":")[0] + ":" + ref.tag: d for ref, d in world.digests.items()}  # type: ignore[attr-defined]
    assert {dep["uri"].removeprefix("oci://") for dep in dependencies} == set(pinned)
    assert all(dep["name"].startswith("docker-images.") for dep in dependencies)

    entries = local_log.entries
    rerun = cli("release", *args, env=env)
    assert rerun.exit_code == 0 and json.loads(rerun.stdout)["actions"] == [], rerun.stderr
    assert local_log.entries == entries

    verify = ["verify-release", f"{world.repository}:v3.0.0", "--key", str(pub), *local_log.verify_args,
              "--release-dir", str(world.release_dir), "--require-provenance",
              *[a for spec in world.mirrors for a in ("--registry-mirror", spec)]]  # fmt: skip
    ok = cli(*verify, "--builder-id", BUILDER, "--source-repository", "acme/platform", "--source-ref",
             "refs/tags/v3.0.0", "--json")  # fmt: skip
    assert ok.exit_code == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["provenance"]["builder_id"] == BUILDER and report["provenance"]["dependencies"] == len(dependencies)
    assert cli(*verify, "--builder-id-regexp", "^https://github.com/acme/").exit_code == 0

    other = cli(*verify, "--builder-id", "https://github.com/evil/fork/.github/workflows/release.yml@refs/heads/x")
    assert other.exit_code == 10 and "the provenance's builder is" in other.stderr
    assert cli(*verify, "--source-ref", "refs/tags/v9").exit_code == 10


def test_provenance_over_other_dependencies_or_a_repushed_vector_fails(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, local_log: LocalLog
) -> None:
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    env: dict[str, str | None] = {"COSIGN_PASSWORD": PASSWORD, "GITHUB_ACTIONS": None}  # a local build, even in CI
    released = cli("release", *world.args("v4.0.0", "--key", str(key), "--attest", "provenance", "--json",
                                          "--no-publish", *local_log.sign_args), env=env)  # fmt: skip
    assert released.exit_code == 0, released.stderr
    verify = ["verify-release", f"{world.repository}:v4.0.0", "--key", str(pub), *local_log.verify_args,
              "--require-provenance", "--ignore-tags",
              *[a for spec in world.mirrors for a in ("--registry-mirror", spec)]]  # fmt: skip
    local = cli(*verify, "--json")
    assert local.exit_code == 0, local.stderr
    assert json.loads(local.stdout)["provenance"]["builder_id"].startswith("local://")

    # A vector re-pushed under the tag (signed, but without new provenance): another digest, no provenance.
    source = tmp_path / "changed.yaml"
    from tests.cli.test_release_cli import SOURCE

    source.write_bytes(SOURCE.read_bytes() + b"\n# changed\n")
    changed = world.args("v4.0.0", "--key", str(key), "--json", "--no-publish", *local_log.sign_args)
    changed[changed.index("--source") + 1] = str(source)
    signed = cli("release", *[a if a != "v4.0.0" else "v4.0.1" for a in changed], env=env)
    assert signed.exit_code == 0, signed.stderr
    digest = json.loads(signed.stdout)["artifact_digest"]
    moved = cli("verify-release", f"{world.repository}@{digest}", "--key", str(pub), *local_log.verify_args,
                "--require-provenance", "--ignore-tags",
                *[a for spec in world.mirrors for a in ("--registry-mirror", spec)])  # fmt: skip
    assert moved.exit_code == 10 and "no attestations of type https://slsa.dev/provenance/v1" in moved.stderr
