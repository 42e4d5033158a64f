"""verify-release against a tampered release: the published release.yaml must be the signed vector, byte for
byte (GitHub stand-in and release folder, key and keyless), and a version tag must name the vector's version."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from pipeline.oci import mediatypes
from tests.cli.test_keyless_cli import NO_AMBIENT_TOKEN, Files, files
from tests.cli.test_release_cli import PASSWORD, Setup, keys
from tests.github_standin import GitHubStandIn, StoredAsset
from tests.registry_fixtures import RegistryProcess
from tests.sigstore.keyless_fixtures import keyless_stack

__all__ = ["files", "keyless_stack", "keys"]

Tamper = Callable[[bytes], bytes | None]  # the published release.yaml's new content (None: deleted)

TAMPERS: dict[str, Tamper] = {
    "append": lambda data: data + b"extra: appended after signing\n",
    "edit": lambda data: data.replace(b"digest: sha256:", b"digest: sha256:0", 1)[: len(data)],
    "delete": lambda data: None,
}


def mirror_args(world: Setup) -> list[str]:
    return [arg for spec in world.mirrors for arg in ("--registry-mirror", spec)]


def tamper_folder(folder: Path, content: bytes | None, *, update_record: bool) -> None:
    """Change DIR/VERSION/release.yaml; ``update_record``: also make release.json agree (a careful attacker)."""
    path = folder / "release.yaml"
    record = json.loads((folder / "release.json").read_text())
    if content is None:
        path.unlink()
        if update_record:
            del record["assets"]["release.yaml"]
    else:
        path.write_bytes(content)
        if update_record:
            record["assets"]["release.yaml"] = {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
    (folder / "release.json").write_text(json.dumps(record))


def test_a_tampered_release_folder_fails_verification(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    released = cli("release", *world.args("v1.0.0", "--key", str(key), "--release-dir", str(world.release_dir),
                                          "--no-tlog-upload"), env={"COSIGN_PASSWORD": PASSWORD})  # fmt: skip
    assert released.exit_code == 0, released.stderr
    folder = world.release_dir / "v1.0.0"
    original = (folder / "release.yaml").read_bytes()
    original_record = (folder / "release.json").read_bytes()
    verify = [f"{world.repository}:v1.0.0", "--key", str(pub), "--insecure-ignore-tlog",
              "--release-dir", str(world.release_dir), *mirror_args(world)]  # fmt: skip

    good = cli("verify-release", *verify, "--json")
    assert good.exit_code == 0, good.stderr
    checks = {check["check"]: check for check in json.loads(good.stdout)["checks"]}
    assert checks["release.yaml"]["ok"] and checks["cosign.pub"]["ok"] and checks["version"]["ok"]
    assert "ok      release: " in cli("verify-release", *verify).stdout

    for name, tamper in TAMPERS.items():
        for update_record in (False, True):
            tamper_folder(folder, tamper(original), update_record=update_record)
            result = cli("verify-release", *verify)
            assert result.exit_code == 10, (name, update_record, result.stderr)
            assert "release.yaml" in result.stderr and str(folder) in result.stderr, result.stderr
            assert "Traceback" not in result.stderr
            as_json = cli("verify-release", *verify, "--json")
            assert as_json.exit_code == 10
            report = json.loads(as_json.stdout)
            assert not report["ok"] and all(image["ok"] for image in report["images"])
            failed = [check for check in report["checks"] if not check["ok"]]
            assert [check["check"] for check in failed] == ["release.yaml"], failed
            assert report["release_problems"]
            (folder / "release.yaml").write_bytes(original)
            (folder / "release.json").write_bytes(original_record)
    assert cli("verify-release", *verify).exit_code == 0


def test_a_tampered_github_release_fails_verification(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    with GitHubStandIn(owner="acme", repo="releases") as github:
        target = ["--github-repository", github.slug, "--github-api-url", github.api_url]
        env = {"COSIGN_PASSWORD": PASSWORD, "GITHUB_TOKEN": github.token}
        released = cli("release", *world.args("v2.0.0", "--key", str(key), *target, "--no-tlog-upload"), env=env)
        assert released.exit_code == 0, released.stderr
        [release] = github.releases_for("v2.0.0")
        asset = release.asset("release.yaml")
        assert asset is not None
        original = asset.data
        verify = [f"{world.repository}:v2.0.0", "--key", str(pub), "--insecure-ignore-tlog", *target,
                  *mirror_args(world)]  # fmt: skip
        good = cli("verify-release", *verify, env={"GITHUB_TOKEN": github.token})
        assert good.exit_code == 0, good.stderr

        for name, tamper in TAMPERS.items():
            content = tamper(original)
            if content is None:
                release.assets.remove(asset)
            else:
                asset.data = content
            result = cli("verify-release", *verify, "--json", env={"GITHUB_TOKEN": github.token})
            assert result.exit_code == 10, (name, result.stderr)
            assert "release.yaml" in result.stderr and f"/releases/{release.id}" in result.stderr, result.stderr
            failed = [check for check in json.loads(result.stdout)["checks"] if not check["ok"]]
            assert [check["check"] for check in failed] == ["release.yaml"], failed
            if content is None:
                release.assets.append(asset)
            asset.data = original
        assert cli("verify-release", *verify, env={"GITHUB_TOKEN": github.token}).exit_code == 0


def test_a_huge_github_asset_is_not_downloaded(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    with GitHubStandIn(owner="acme", repo="releases") as github:
        target = ["--github-repository", github.slug, "--github-api-url", github.api_url]
        env = {"COSIGN_PASSWORD": PASSWORD, "GITHUB_TOKEN": github.token}
        released = cli("release", *world.args("v2.0.0", "--key", str(key), *target, "--no-tlog-upload"), env=env)
        assert released.exit_code == 0, released.stderr
        [release] = github.releases_for("v2.0.0")
        asset = release.asset("release.yaml")
        assert isinstance(asset, StoredAsset)
        asset.data = asset.data + b"#" * (11 * 1024 * 1024)
        before = len(github.requests)
        result = cli("verify-release", f"{world.repository}:v2.0.0", "--key", str(pub), "--insecure-ignore-tlog",
                     *target, *mirror_args(world), env={"GITHUB_TOKEN": github.token})  # fmt: skip
        assert result.exit_code == 10, result.stderr
        assert "release.yaml" in result.stderr and "bytes" in result.stderr
        downloads = [r for r in github.requests[before:] if r.url_path.startswith("/storage/")]
        assert len(downloads) == 1, "only cosign.pub is downloaded"


def test_keyless_verification_checks_the_published_vector_too(
    cli: Any, plain_registry: RegistryProcess, files: Files, tmp_path: Path
) -> None:
    world = Setup(plain_registry, tmp_path)
    released = cli("release", *world.args("v2.0.0", *files.sign_args(), "--release-dir", str(world.release_dir)),
                   env=NO_AMBIENT_TOKEN)  # fmt: skip
    assert released.exit_code == 0, released.stderr
    folder = world.release_dir / "v2.0.0"
    original = (folder / "release.yaml").read_bytes()
    verify = [f"{world.repository}:v2.0.0", *files.verify_args(), "--release-dir", str(world.release_dir),
              *mirror_args(world)]  # fmt: skip
    assert cli("verify-release", *verify).exit_code == 0
    for name, tamper in TAMPERS.items():
        tamper_folder(folder, tamper(original), update_record=True)
        result = cli("verify-release", *verify)
        assert result.exit_code == 10, (name, result.stderr)
        assert "release.yaml" in result.stderr and str(folder) in result.stderr
        tamper_folder(folder, original, update_record=True)
    assert cli("verify-release", *verify).exit_code == 0


# --- a version tag must name the vector's version ----------------------------------------------------------


def repoint(registry: RegistryProcess, repository: str, source_tag: str, tag: str) -> str:
    """Make ``repository:tag`` point at the manifest of ``repository:source_tag``; its digest."""
    path = repository.split("/", 1)[1]
    base = f"{registry.url}/v2/{path}/manifests"
    got = httpx.get(f"{base}/{source_tag}", headers={"Accept": mediatypes.OCI_MANIFEST})
    assert got.status_code == 200
    put = httpx.put(f"{base}/{tag}", content=got.content, headers={"Content-Type": got.headers["Content-Type"]})
    assert put.status_code == 201
    return got.headers["Docker-Content-Digest"]


def test_a_version_tag_pointing_at_another_release_fails(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    released = cli("release", *world.args("v1.0.0", "--key", str(key), "--release-dir", str(world.release_dir),
                                          "--no-tlog-upload"), env={"COSIGN_PASSWORD": PASSWORD})  # fmt: skip
    assert released.exit_code == 0, released.stderr
    digest = repoint(plain_registry, world.repository, "v1.0.0", "v3.0.0")
    repoint(plain_registry, world.repository, "v1.0.0", "latest")
    trust = ["--key", str(pub), "--insecure-ignore-tlog", *mirror_args(world)]
    target = ["--release-dir", str(world.release_dir)]

    moved = cli("verify-release", f"{world.repository}:v3.0.0", *trust)
    assert moved.exit_code == 10, moved.stderr
    errors = [line for line in moved.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "v3.0.0" in errors[0] and "v1.0.0" in errors[0], moved.stderr
    assert "--allow-version-mismatch" in moved.stderr  # the hint
    with_target = cli("verify-release", f"{world.repository}:v3.0.0", *trust, *target, "--json")
    assert with_target.exit_code == 10
    failed = [c["check"] for c in json.loads(with_target.stdout)["checks"] if not c["ok"]]
    assert failed == ["version"]

    floating = cli("verify-release", f"{world.repository}:latest", *trust, *target)
    assert floating.exit_code == 10
    allowed = cli("verify-release", f"{world.repository}:latest", *trust, *target, "--allow-version-mismatch")
    assert allowed.exit_code == 0, allowed.stderr
    by_env = cli("verify-release", f"{world.repository}:v3.0.0", *trust,
                 env={"RELEASE_VECTOR_ALLOW_VERSION_MISMATCH": "1"})  # fmt: skip
    assert by_env.exit_code == 0, by_env.stderr
    by_digest = cli("verify-release", f"{world.repository}@{digest}", *trust, *target, "--json")
    assert by_digest.exit_code == 0, by_digest.stderr
    assert json.loads(by_digest.stdout)["version"] == "v1.0.0"
    assert cli("verify-release", f"{world.repository}:v1.0.0", *trust, *target).exit_code == 0


def test_help_names_the_option_and_its_env_var(cli: Any) -> None:
    shown = cli("verify-release", "--help", env={"COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"})
    assert "--allow-version-mismatch" in shown.stdout
    assert "RELEASE_VECTOR_ALLOW_VERSION_MISMATCH" in shown.stdout
