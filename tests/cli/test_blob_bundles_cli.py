"""sign-blob's default Sigstore bundle v0.3 (cosign v3's format), keyless sign-blob, and verify-blob on DSSE
bundles and on bundles whose publicKey.hint is not the key's (it is only a hint)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.cosign.keys import encrypt_key_pair, load_private_key, load_public_key
from pipeline.secret import Secret
from pipeline.sigstore.rekor_client import RekorClient
from pipeline.sigstore.writer import dsse_bundle, public_key_hint, sign_dsse
from tests.cli.test_keyless_cli import NO_AMBIENT_TOKEN, Files, files
from tests.conftest import COSIGN_VECTORS
from tests.sigstore.keyless_fixtures import keyless_stack
from tests.sigstore.log_fixtures import LocalLog, local_log

__all__ = ["files", "keyless_stack", "local_log"]

PASSWORD = {"COSIGN_PASSWORD": "pw"}
REAL_KEY_SIGNED = COSIGN_VECTORS / "bundle-v03" / "key-signed"


@pytest.fixture
def key_pair(cli: Any, tmp_path: Path) -> tuple[Path, Path]:
    assert cli("generate-key-pair", "--output-key-prefix", str(tmp_path / "k"), env=PASSWORD).exit_code == 0
    return tmp_path / "k.key", tmp_path / "k.pub"


def _blob(tmp_path: Path, content: bytes = b"version: v1\n") -> Path:
    blob = tmp_path / "release.yaml"
    blob.write_bytes(content)
    return blob


def _shape(value: Any) -> Any:
    """The keys of a JSON document, nested (values dropped), to compare layouts."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return None


def test_sign_blob_writes_a_v3_bundle_by_default_in_cosign_v3s_shape(
    cli: Any, tmp_path: Path, key_pair: tuple[Path, Path], local_log: LocalLog
) -> None:
    key, pub = key_pair
    blob = _blob(tmp_path, b"first\n")
    bundle = tmp_path / "release.yaml.sigstore.json"
    cli("sign-blob", str(blob), "--key", str(key), *local_log.sign_args, env=PASSWORD)  # the log holds two or more
    blob = _blob(tmp_path)
    signed = cli("sign-blob", str(blob), "--key", str(key), "--bundle", str(bundle), *local_log.sign_args, "--json",
                 env=PASSWORD)  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    document = json.loads(bundle.read_bytes())
    real = json.loads((REAL_KEY_SIGNED / "bundle.sigstore.json").read_bytes())
    # Same fields in the same order as the real managed-key bundle (which also carries a timestamp).
    del real["verificationMaterial"]["timestampVerificationData"]
    assert json.dumps(_shape(document)) == json.dumps(_shape(real))
    assert document["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    hint = public_key_hint(load_public_key(pub.read_bytes(), "pub"))
    assert document["verificationMaterial"]["publicKey"]["hint"] == hint
    entry = document["verificationMaterial"]["tlogEntries"][0]
    assert entry["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.1"}
    assert entry["inclusionProof"]["checkpoint"]["envelope"]
    assert str(json.loads(signed.stdout)["tlog_log_index"]) == entry["logIndex"]
    digest = document["messageSignature"]["messageDigest"]
    sha256 = base64.b64encode(hashlib.sha256(blob.read_bytes()).digest()).decode()
    assert digest == {"algorithm": "SHA2_256", "digest": sha256}
    assert document["messageSignature"]["signature"] == json.loads(signed.stdout)["signature"]
    assert bundle.read_bytes() == json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()

    ok = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub), *local_log.verify_args, "--json")
    assert ok.exit_code == 0, ok.stderr
    checks = json.loads(ok.stdout)["checks"]
    assert any("inclusion proof" in c for c in checks) and any("checkpoint" in c for c in checks)
    blob.write_bytes(b"version: v2\n")
    changed = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub), *local_log.verify_args)
    assert changed.exit_code == 10 and "another artifact" in changed.stderr


def test_a_v3_bundle_without_the_log_needs_insecure_ignore_tlog(
    cli: Any, tmp_path: Path, key_pair: tuple[Path, Path]
) -> None:
    key, pub = key_pair
    blob, bundle = _blob(tmp_path), tmp_path / "b.json"
    assert cli("sign-blob", str(blob), "--key", str(key), "--bundle", str(bundle), "--no-tlog-upload",
               env=PASSWORD).exit_code == 0  # fmt: skip
    assert "tlogEntries" not in json.loads(bundle.read_bytes())["verificationMaterial"]
    refused = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub))
    assert refused.exit_code == 10 and "no hashedrekord 0.0.1 transparency-log entry" in refused.stderr
    ok = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub), "--insecure-ignore-tlog")
    assert ok.exit_code == 0, ok.stderr


def test_legacy_bundle_format_keeps_cosigns_old_file(cli: Any, tmp_path: Path, key_pair: tuple[Path, Path]) -> None:
    key, _ = key_pair
    blob, bundle = _blob(tmp_path), tmp_path / "b.bundle"
    assert cli("sign-blob", str(blob), "--key", str(key), "--bundle", str(bundle), "--no-tlog-upload",
               "--bundle-format", "legacy", env=PASSWORD).exit_code == 0  # fmt: skip
    assert list(json.loads(bundle.read_bytes())) == ["base64Signature"]
    wrong = cli("sign-blob", str(blob), "--key", str(key), "--bundle-format", "both", env=PASSWORD)
    assert wrong.exit_code == 2 and "v3 or legacy" in wrong.stderr


def test_an_ed25519_key_states_a_sha512_message_digest(cli: Any, tmp_path: Path, local_log: LocalLog) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pair = encrypt_key_pair(ed25519.Ed25519PrivateKey.generate(), Secret("pw"))
    key, pub = tmp_path / "ed.key", tmp_path / "ed.pub"
    key.write_bytes(pair.private_pem.reveal())
    pub.write_bytes(pair.public_pem)
    blob, bundle = _blob(tmp_path), tmp_path / "b.json"
    signed = cli("sign-blob", str(blob), "--key", str(key), "--bundle", str(bundle), *local_log.sign_args, env=PASSWORD)
    assert signed.exit_code == 0, signed.stderr
    assert json.loads(bundle.read_bytes())["messageSignature"]["messageDigest"]["algorithm"] == "SHA2_512"
    ok = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub), *local_log.verify_args)
    assert ok.exit_code == 0, ok.stderr


def test_the_public_key_hint_is_only_a_hint(cli: Any, tmp_path: Path) -> None:
    """cosign ignores publicKey.hint with --key; so do we: the real bundle with another hint still verifies."""
    document = json.loads((REAL_KEY_SIGNED / "bundle.sigstore.json").read_bytes())
    document["verificationMaterial"]["publicKey"]["hint"] = "some-key-name-in-a-kms"
    bundle = tmp_path / "hinted.json"
    bundle.write_text(json.dumps(document))
    ok = cli("verify-blob", str(REAL_KEY_SIGNED / "a.txt"), "--bundle", str(bundle), "--key",
             str(REAL_KEY_SIGNED / "key.pub"))  # fmt: skip
    assert ok.exit_code == 0, ok.stderr
    other = cli("verify-blob", str(REAL_KEY_SIGNED / "a.txt"), "--bundle", str(bundle), "--key",
                str(COSIGN_VECTORS / "image-signatures" / "cosign.pub"))  # fmt: skip
    assert other.exit_code == 10


def _statement_over(*digests: str, predicate_type: str = "https://slsa.dev/provenance/v1") -> bytes:
    return json.dumps({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"file{i}", "digest": {"sha256": d}} for i, d in enumerate(digests)],
        "predicateType": predicate_type,
        "predicate": {},
    }, separators=(",", ":")).encode()  # fmt: skip


def test_verify_blob_accepts_a_dsse_bundle_naming_the_files_digest(
    cli: Any, tmp_path: Path, key_pair: tuple[Path, Path], local_log: LocalLog
) -> None:
    key_file, pub = key_pair
    signing_key = load_private_key(Secret(key_file.read_bytes()), Secret("pw"), str(key_file))
    blob = _blob(tmp_path)
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    envelope = sign_dsse(signing_key, _statement_over("00" * 32, digest))
    with RekorClient(local_log.server.url, [load_public_key(local_log.public_key.read_bytes(), "rekor")]) as log:
        entry = log.upload_dsse(envelope, signing_key.public_key_pem())
    bundle = tmp_path / "att.json"
    bundle.write_bytes(dsse_bundle(envelope, signing_key.public_key, entry))
    ok = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub), *local_log.verify_args, "--json")
    assert ok.exit_code == 0, ok.stderr
    assert "the in-toto statement (https://slsa.dev/provenance/v1) names the artifact's sha256" in json.loads(
        ok.stdout
    )["checks"]
    blob.write_bytes(b"another file\n")
    other = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub), *local_log.verify_args)
    assert other.exit_code == 10 and "the statement is for another artifact" in other.stderr


def test_sign_blob_keyless_v3_and_legacy(cli: Any, tmp_path: Path, files: Files) -> None:
    blob = _blob(tmp_path)
    v3, legacy = tmp_path / "b.sigstore.json", tmp_path / "b.bundle"
    signed = cli("sign-blob", str(blob), "--bundle", str(v3), *files.sign_args(), env=NO_AMBIENT_TOKEN)
    assert signed.exit_code == 0, signed.stderr
    material = json.loads(v3.read_bytes())["verificationMaterial"]
    assert list(material) == ["certificate", "tlogEntries"]
    verify = [*files.verify_args(), "--ca-intermediates", str(files.intermediates)]
    ok = cli("verify-blob", str(blob), "--bundle", str(v3), *verify, "--json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["signer"] == files.identity
    wrong = cli("verify-blob", str(blob), "--bundle", str(v3), *files.verify_args(identity="someone@example.com"),
                "--ca-intermediates", str(files.intermediates))  # fmt: skip
    assert wrong.exit_code == 10

    signed = cli("sign-blob", str(blob), "--bundle", str(legacy), "--bundle-format", "legacy", *files.sign_args(),
                 env=NO_AMBIENT_TOKEN)  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    assert list(json.loads(legacy.read_bytes())) == ["base64Signature", "cert", "rekorBundle"]
    ok = cli("verify-blob", str(blob), "--bundle", str(legacy), *verify)  # the file holds only the leaf
    assert ok.exit_code == 0, ok.stderr


def test_sign_blob_takes_key_or_keyless_not_both(cli: Any, tmp_path: Path, files: Files) -> None:
    blob = _blob(tmp_path)
    env = {**NO_AMBIENT_TOKEN, **PASSWORD}
    both = cli("sign-blob", str(blob), "--key", str(files.key), *files.sign_args(), env=env)
    assert both.exit_code == 2 and "not both" in both.stderr
    neither = cli("sign-blob", str(blob), env={"RELEASE_VECTOR_KEY": None})
    assert neither.exit_code == 2
