"""release --keyless (with and without --key) and verify-release keyless, on a real registry and the
embedded keyless stack (test OIDC issuer, Fulcio and Rekor stand-ins)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests.cli.test_keyless_cli import NO_AMBIENT_TOKEN, Files, files
from tests.cli.test_release_cli import Setup, snapshot
from tests.registry_fixtures import RegistryProcess
from tests.sigstore.keyless_fixtures import keyless_stack

__all__ = ["files", "keyless_stack"]

ENV = {"COSIGN_PASSWORD": "pw", **NO_AMBIENT_TOKEN}


def verify_args(world: Setup, version: str, *trust: str) -> list[str]:
    return [
        f"{world.repository}:{version}",
        *trust,
        "--release-dir",
        str(world.release_dir),
        *[arg for spec in world.mirrors for arg in ("--registry-mirror", spec)],
    ]


def test_release_with_key_and_keyless_verifies_both_ways_and_reruns_nothing(
    cli: Any, plain_registry: RegistryProcess, files: Files, tmp_path: Path
) -> None:
    world = Setup(plain_registry, tmp_path)
    args = world.args("v1.0.0", "--key", str(files.key), *files.sign_args(), "--release-dir", str(world.release_dir))
    dry = cli("release", *args, "--dry-run", "--json", env=ENV)
    assert dry.exit_code == 0, dry.stderr
    assert [a["kind"] for a in json.loads(dry.stdout)].count("sign-image") == 5

    first = cli("release", *args, "--json", env=ENV)
    assert first.exit_code == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["keyless"] == {"identity": files.identity, "issuer": files.issuer}
    folder = world.release_dir / "v1.0.0"
    assert (folder / "cosign.pub").read_bytes() == files.pub.read_bytes()

    before = snapshot(plain_registry.storage, world.release_dir)
    again = cli("release", *args, "--json", env=ENV)
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["actions"] == []
    assert snapshot(plain_registry.storage, world.release_dir) == before, "a keyless re-run writes nothing"

    by_key = cli("verify-release", *verify_args(world, "v1.0.0", "--key", str(files.pub), "--rekor-public-key",
                                                str(files.rekor_key)))  # fmt: skip
    assert by_key.exit_code == 0, by_key.stderr
    keyless = cli("verify-release", *verify_args(world, "v1.0.0", *files.verify_args()), "--json")
    assert keyless.exit_code == 0, keyless.stderr
    assert json.loads(keyless.stdout)["ok"]
    wrong = cli("verify-release", *verify_args(world, "v1.0.0", *files.verify_args(identity="someone@example.com")))
    assert wrong.exit_code == 10 and "certificate identity is not" in wrong.stderr
    no_ct_key = [arg for arg in files.verify_args() if arg not in ("--ct-log-public-key", str(files.ct_log))]
    no_env = {"SIGSTORE_CT_LOG_PUBLIC_KEY_FILE": None}
    unlogged = cli("verify-release", *verify_args(world, "v1.0.0", *no_ct_key), env=no_env)
    assert unlogged.exit_code == 10 and "no valid SCT" in unlogged.stderr
    assert "hint:" in unlogged.stderr and "--insecure-ignore-sct" in unlogged.stderr
    accepted = cli("verify-release", *verify_args(world, "v1.0.0", *no_ct_key, "--insecure-ignore-sct"))
    assert accepted.exit_code == 0, accepted.stderr

    # Signed with both, the published cosign.pub must have signed the vector: replace it with another key.
    other = tmp_path / "other"
    cli("generate-key-pair", "--output-key-prefix", str(other), env={"COSIGN_PASSWORD": "x"})
    other_pub = Path(f"{other}.pub").read_bytes()
    (folder / "cosign.pub").write_bytes(other_pub)
    record = json.loads((folder / "release.json").read_text())
    record["assets"]["cosign.pub"] = {"sha256": hashlib.sha256(other_pub).hexdigest(), "size": len(other_pub)}
    (folder / "release.json").write_text(json.dumps(record))
    swapped = cli("verify-release", *verify_args(world, "v1.0.0", *files.verify_args()))
    assert swapped.exit_code == 10 and "did not sign the release vector" in swapped.stdout


def test_keyless_only_release_publishes_no_key_and_verifies_keyless(
    cli: Any, plain_registry: RegistryProcess, files: Files, tmp_path: Path
) -> None:
    world = Setup(plain_registry, tmp_path)
    args = world.args("v2.0.0", *files.sign_args(), "--release-dir", str(world.release_dir))
    first = cli("release", *args, env=NO_AMBIENT_TOKEN)
    assert first.exit_code == 0, first.stderr
    folder = world.release_dir / "v2.0.0"
    assert not (folder / "cosign.pub").exists() and (folder / "release.yaml").exists()
    again = cli("release", *args, "--json", env=NO_AMBIENT_TOKEN)
    assert again.exit_code == 0 and json.loads(again.stdout)["actions"] == []
    verified = cli("verify-release", *verify_args(world, "v2.0.0", *files.verify_args()))
    assert verified.exit_code == 0, verified.stderr
    assert "5 of 5 images ok" in verified.stderr
    assert files.token_value not in first.stdout + first.stderr + again.stdout + again.stderr
    neither = cli("release", *world.args("v2.0.1", "--no-publish"))
    assert neither.exit_code == 2 and "give --key, --keyless, or both" in neither.stderr
