"""``rehearse --key-uri``: the whole rehearsal (release, verify-release, a re-run planning nothing) signed by
a key on a SoftHSM2 token and by a key in (moto's) KMS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT
from tests.keystore_fixtures import PIN, Kms, SoftHsm
from tests.registry_fixtures import requires_registry

SOURCE = REPO_ROOT / "release" / "release.yaml"


def _rehearse(cli: Any, tmp_path: Path, key_uri: str) -> dict[str, Any]:
    result = cli("rehearse", "--source", str(SOURCE), "--workdir", str(tmp_path / "w"), "--key-uri", key_uri, "--json")
    assert result.exit_code == 0, result.stderr
    assert PIN not in result.stdout + result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["ok"] and summary["rerun_actions"] == 0 and summary["verified_images"] == 5
    assert summary["images_signed"] == 9 and summary["vector_signed"]
    assert not (tmp_path / "w" / "keys" / "cosign.key").exists()
    return summary


@requires_registry
def test_rehearsal_with_a_token_key(cli: Any, tmp_path: Path, softhsm: SoftHsm) -> None:
    summary = _rehearse(cli, tmp_path, softhsm.uri("p256"))
    public = cli("public-key", "--key", softhsm.uri("p256")).stdout
    release_dir = Path(summary["outputs"]["release_dir"])
    assert (release_dir / "cosign.pub").read_text() == public


@requires_registry
def test_rehearsal_with_a_kms_key(cli: Any, tmp_path: Path, kms: Kms, aws_env: object) -> None:
    _rehearse(cli, tmp_path, kms.uri("alias/rv-p384"))


def test_rehearsal_refuses_a_key_file_as_key_uri(cli: Any, tmp_path: Path) -> None:
    result = cli("rehearse", "--source", str(SOURCE), "--workdir", str(tmp_path / "w"), "--key-uri", "cosign.key")
    assert result.exit_code == 2 and "--key-uri takes a pkcs11: or awskms:// key" in result.stderr
