"""verify-release --oci-layout --require-provenance (issue 17: "provenance when required", offline): the export
of a release made with --attest provenance carries the vector's provenance and verifies with it, builder and
source options included; an export without provenance fails (10); the options are never silently ignored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli.test_provenance_cli import BUILDER, GITHUB_ENV
from tests.cli.test_release_cli import PASSWORD, Setup, keys
from tests.registry_fixtures import RegistryProcess
from tests.sigstore.log_fixtures import LocalLog, local_log

__all__ = ["keys", "local_log"]


def _export(cli: Any, world: Setup, version: str, pub: Path, log: LocalLog, target: Path) -> None:
    mirrors = [a for spec in world.mirrors for a in ("--registry-mirror", spec)]
    exported = cli("export", f"{world.repository}:{version}", "--to", str(target), "--key", str(pub),
                   *log.verify_args, *mirrors)  # fmt: skip
    assert exported.exit_code == 0, exported.stderr


def test_an_export_verifies_its_provenance_offline(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, local_log: LocalLog
) -> None:
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    args = world.args("v5.0.0", "--key", str(key), "--attest", "provenance", "--no-publish", *local_log.sign_args)
    released = cli("release", *args, env={"COSIGN_PASSWORD": PASSWORD, **GITHUB_ENV})
    assert released.exit_code == 0, released.stderr
    mirrors = [a for spec in world.mirrors for a in ("--registry-mirror", spec)]
    online = cli("verify-release", f"{world.repository}:v5.0.0", "--key", str(pub), *local_log.verify_args,
                 "--require-provenance", "--ignore-tags", "--json", *mirrors)  # fmt: skip
    assert online.exit_code == 0, online.stderr
    for target in (tmp_path / "export", tmp_path / "export.tar"):
        _export(cli, world, "v5.0.0", pub, local_log, target)
        offline = ["verify-release", "--oci-layout", str(target), "--key", str(pub), *local_log.verify_args,
                   "--require-provenance"]  # fmt: skip
        ok = cli(*offline, "--builder-id", BUILDER, "--source-repository", "acme/platform",
                 "--source-ref", "refs/tags/v3.0.0", "--json")  # fmt: skip
        assert ok.exit_code == 0, ok.stderr
        report = json.loads(ok.stdout)
        assert report["provenance"]["builder_id"] == BUILDER
        assert report["provenance"] == json.loads(online.stdout)["provenance"]
        other = cli(*offline, "--builder-id", "https://github.com/evil/fork/.github/workflows/release.yml@x")
        assert other.exit_code == 10 and "the provenance's builder is" in other.stderr
        assert cli(*offline, "--source-repository", "evil/fork").exit_code == 10


def test_an_export_without_provenance_fails_when_it_is_required(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, local_log: LocalLog
) -> None:
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    released = cli("release", *world.args("v6.0.0", "--key", str(key), "--no-publish", *local_log.sign_args),
                   env={"COSIGN_PASSWORD": PASSWORD})  # fmt: skip
    assert released.exit_code == 0, released.stderr
    target = tmp_path / "export"
    _export(cli, world, "v6.0.0", pub, local_log, target)
    offline = ["verify-release", "--oci-layout", str(target), "--key", str(pub), *local_log.verify_args]
    assert cli(*offline).exit_code == 0
    required = cli(*offline, "--require-provenance")
    assert required.exit_code == 10, required.stderr
    assert "no attestations of type https://slsa.dev/provenance/v1" in required.stderr
    # the builder/source options need --require-provenance here as online: a usage error, not ignored
    assert cli(*offline, "--builder-id", BUILDER).exit_code == 2
