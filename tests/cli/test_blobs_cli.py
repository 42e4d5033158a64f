"""sign-blob / verify-blob through the CLI, against cosign's real sign-blob output and our own."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COSIGN_VECTORS
from tests.sigstore.log_fixtures import LocalLog, local_log

__all__ = ["local_log"]

SIGN_BLOB = COSIGN_VECTORS / "sign-blob"
IMAGE_SIGS = COSIGN_VECTORS / "image-signatures"
REKOR_PUB = str(IMAGE_SIGS / "rekor.pub")
FULCIO_ROOT = str(IMAGE_SIGS / "fulcio_v1.crt.pem")
KEYLESS = [
    "--certificate-identity",
    "daniel.bevenius@gmail.com",
    "--certificate-oidc-issuer",
    "https://github.com/login/oauth",
]


def verify_vector(cli: Any, *extra: str, artifact: Path = SIGN_BLOB / "artifact.txt") -> Any:
    return cli("verify-blob", str(artifact), "--bundle", str(SIGN_BLOB / "artifact.bundle"), *extra)


def test_cosign_keyless_sign_blob_bundle_verifies(cli: Any) -> None:
    result = verify_vector(cli, *KEYLESS, "--rekor-public-key", REKOR_PUB, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["signer"] == "daniel.bevenius@gmail.com"
    assert report["integrated_time"] == 1669361833


def test_default_trust_is_the_public_good_instance(cli: Any) -> None:
    """No --rekor-public-key, no --ca-roots: the shipped public-good trusted root is used."""
    result = verify_vector(cli, *KEYLESS)
    assert result.exit_code == 0, result.stderr
    assert "Verified OK" in result.stderr


def test_explicit_fulcio_root_needs_the_intermediate(cli: Any) -> None:
    """The bundle holds only the leaf: with --ca-roots the intermediate must be given too, as in cosign."""
    base = [*KEYLESS, "--ca-roots", FULCIO_ROOT, "--rekor-public-key", REKOR_PUB]
    missing = verify_vector(cli, *base)
    assert missing.exit_code == 10
    assert "does not chain to a trusted root" in missing.stderr
    chain = str(IMAGE_SIGS / "dir-img-cosign-fulcio-rekor-valid" / "chain.pem")
    result = verify_vector(cli, *base, "--ca-intermediates", chain)
    assert result.exit_code == 0, result.stderr


def test_identity_regexp_is_searched_like_cosign(cli: Any) -> None:
    args = ["--certificate-identity-regexp", "bevenius@", "--certificate-oidc-issuer-regexp", "github\\.com"]
    assert verify_vector(cli, *args).exit_code == 0


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (
            [
                "--certificate-identity",
                "someone@example.com",
                "--certificate-oidc-issuer",
                "https://github.com/login/oauth",
            ],
            "identity",
        ),
        (
            [
                "--certificate-identity",
                "daniel.bevenius@gmail.com",
                "--certificate-oidc-issuer",
                "https://accounts.google.com",
            ],
            "issuer",
        ),
    ],
)
def test_wrong_identity_or_issuer_fails(cli: Any, args: list[str], reason: str) -> None:
    result = verify_vector(cli, *args)
    assert result.exit_code == 10
    assert result.stderr.startswith("error: ") and reason in result.stderr.splitlines()[0]


def test_tampered_artifact_fails(cli: Any, tmp_path: Path) -> None:
    artifact = tmp_path / "artifact.txt"
    artifact.write_bytes(b"something else\n")
    result = verify_vector(cli, *KEYLESS, artifact=artifact)
    assert result.exit_code == 10
    assert "signature does not verify" in result.stderr


def test_wrong_rekor_key_fails(cli: Any) -> None:
    other = str(COSIGN_VECTORS / "keys" / "podman-sigstore-key.pub")
    result = verify_vector(cli, *KEYLESS, "--rekor-public-key", other)
    assert result.exit_code == 10


def test_key_and_keyless_options_exclude_each_other(cli: Any) -> None:
    result = verify_vector(cli, "--key", str(IMAGE_SIGS / "cosign.pub"), *KEYLESS)
    assert result.exit_code == 2


@pytest.fixture
def key_pair(cli: Any, tmp_path: Path) -> tuple[Path, Path]:
    assert (
        cli("generate-key-pair", "--output-key-prefix", str(tmp_path / "k"), env={"COSIGN_PASSWORD": "pw"}).exit_code
        == 0
    )
    return tmp_path / "k.key", tmp_path / "k.pub"


def test_sign_blob_then_verify_blob(cli: Any, tmp_path: Path, key_pair: tuple[Path, Path]) -> None:
    key, pub = key_pair
    blob = tmp_path / "release.yaml"
    blob.write_bytes(b"version: v1\n")
    bundle = tmp_path / "release.yaml.bundle"
    signed = cli(
        "sign-blob",
        "--no-tlog-upload",
        str(blob),
        "--key",
        str(key),
        "--bundle",
        str(bundle),
        "--bundle-format",
        "legacy",
        env={"COSIGN_PASSWORD": "pw"},
    )
    assert signed.exit_code == 0, signed.stderr
    document = json.loads(bundle.read_bytes())
    assert list(document) == ["base64Signature"], "cosign omits empty cert and rekorBundle"
    assert signed.stdout.strip() == document["base64Signature"]

    ok = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub), "--insecure-ignore-tlog")
    assert ok.exit_code == 0, ok.stderr
    assert "warning" in ok.stderr

    no_tlog = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub))
    assert no_tlog.exit_code == 10
    assert "no transparency log entry" in no_tlog.stderr

    other_key = tmp_path / "other"
    cli("generate-key-pair", "--output-key-prefix", str(other_key), env={"COSIGN_PASSWORD": "pw"})
    wrong = cli(
        "verify-blob", str(blob), "--bundle", str(bundle), "--key", f"{other_key}.pub", "--insecure-ignore-tlog"
    )
    assert wrong.exit_code == 10


def test_sign_blob_verifies_independently(cli: Any, tmp_path: Path, key_pair: tuple[Path, Path]) -> None:
    """The signature checked with `cryptography` directly, not through our verifier."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key, pub = key_pair
    blob = tmp_path / "b"
    blob.write_bytes(b"\x00\x01 binary")
    signed = cli("sign-blob", "--no-tlog-upload", str(blob), "--key", str(key), env={"COSIGN_PASSWORD": "pw"})
    public_key = serialization.load_pem_public_key(pub.read_bytes())
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(base64.b64decode(signed.stdout.strip()), blob.read_bytes(), ec.ECDSA(hashes.SHA256()))


def test_rsa_key_sign_blob(cli: Any, tmp_path: Path) -> None:
    keys = COSIGN_VECTORS / "keys"
    blob = tmp_path / "b"
    blob.write_bytes(b"data")
    signature = tmp_path / "b.sig"
    signed = cli(
        "sign-blob",
        "--no-tlog-upload",
        str(blob),
        "--key",
        str(keys / "salrashid123-import-cosign-rsa.key"),
        "--output-signature",
        str(signature),
        env={"COSIGN_PASSWORD": ""},
    )
    assert signed.exit_code == 0, signed.stderr
    ok = cli(
        "verify-blob",
        str(blob),
        "--signature",
        str(signature),
        "--key",
        str(keys / "salrashid123-import-cosign-rsa.pub"),
        "--insecure-ignore-tlog",
    )
    assert ok.exit_code == 0, ok.stderr


@pytest.mark.parametrize("content", [b"not json", b"[]", b'{"base64Signature": "!!"}', b"{}"])
def test_malformed_bundle_is_invalid_input(cli: Any, tmp_path: Path, content: bytes) -> None:
    bundle = tmp_path / "bad.bundle"
    bundle.write_bytes(content)
    result = cli("verify-blob", str(SIGN_BLOB / "artifact.txt"), "--bundle", str(bundle), *KEYLESS)
    assert result.exit_code == 3
    assert str(bundle) in result.stderr.splitlines()[0]
    assert "Traceback" not in result.stderr


def test_missing_file_names_it(cli: Any, tmp_path: Path) -> None:
    result = cli("verify-blob", str(tmp_path / "nope"), "--bundle", str(SIGN_BLOB / "artifact.bundle"), *KEYLESS)
    assert result.exit_code == 3
    assert "nope" in result.stderr


# --- Sigstore bundles (cosign v3's format), read by the same command -------------------------------

KEY_SIGNED = COSIGN_VECTORS / "bundle-v03" / "key-signed"


def test_sigstore_bundle_signed_with_a_managed_key_verifies(cli: Any) -> None:
    args = ["verify-blob", str(KEY_SIGNED / "a.txt"), "--bundle", str(KEY_SIGNED / "bundle.sigstore.json")]
    ok = cli(*args, "--key", str(KEY_SIGNED / "key.pub"), "--json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["log_index"] == 771488337
    # Its RFC 3161 timestamp, checked against the shipped root's timestamp authority.
    assert "1 RFC 3161 timestamp(s) over the signature verified with a trusted timestamp authority" in json.loads(
        ok.stdout
    )["checks"]


def test_sigstore_bundle_rejects_another_artifact_and_key(cli: Any, tmp_path: Path) -> None:
    tampered = tmp_path / "a.txt"
    tampered.write_bytes((KEY_SIGNED / "a.txt").read_bytes() + b"!")
    bundle = str(KEY_SIGNED / "bundle.sigstore.json")
    other = cli("verify-blob", str(tampered), "--bundle", bundle, "--key", str(KEY_SIGNED / "key.pub"))
    assert other.exit_code == 10
    wrong_key = cli(
        "verify-blob", str(KEY_SIGNED / "a.txt"), "--bundle", bundle, "--key", str(IMAGE_SIGS / "cosign.pub")
    )
    assert wrong_key.exit_code == 10


# --- sign-blob with the transparency log (the embedded Rekor) ----------------------------------------


def test_sign_blob_with_the_log_writes_rekor_bundle_and_verifies_without_ignore_tlog(
    cli: Any, tmp_path: Path, key_pair: tuple[Path, Path], local_log: LocalLog
) -> None:
    import hashlib

    key, pub = key_pair
    blob = tmp_path / "release.yaml"
    blob.write_bytes(b"version: v2\n")
    bundle = tmp_path / "release.yaml.bundle"
    signed = cli(
        "sign-blob", str(blob), "--key", str(key), "--bundle", str(bundle), *local_log.sign_args, "--json",
        "--bundle-format", "legacy", env={"COSIGN_PASSWORD": "pw"},
    )  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    assert "tlog entry created with index:" in signed.stderr
    document = json.loads(bundle.read_bytes())
    assert list(document) == ["base64Signature", "rekorBundle"]
    assert list(document["rekorBundle"]) == ["SignedEntryTimestamp", "Payload"]
    assert json.loads(signed.stdout)["tlog_log_index"] == document["rekorBundle"]["Payload"]["logIndex"]
    body = json.loads(base64.b64decode(document["rekorBundle"]["Payload"]["body"]))
    assert body["spec"]["data"]["hash"]["value"] == hashlib.sha256(blob.read_bytes()).hexdigest()

    ok = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub), *local_log.verify_args, "--json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["log_index"] == document["rekorBundle"]["Payload"]["logIndex"]
    env_key = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub),
                  env={"SIGSTORE_REKOR_PUBLIC_KEY": str(local_log.public_key)})  # fmt: skip
    assert env_key.exit_code == 0, env_key.stderr
    public_good = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub))
    assert public_good.exit_code == 10 and "trusted Rekor keys" in public_good.stderr
    blob.write_bytes(b"version: v3\n")
    changed = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub), *local_log.verify_args)
    assert changed.exit_code == 10


def test_rsa_sign_blob_is_logged_too(cli: Any, tmp_path: Path, local_log: LocalLog) -> None:
    keys = COSIGN_VECTORS / "keys"
    blob = tmp_path / "b"
    blob.write_bytes(b"rsa data")
    bundle = tmp_path / "b.bundle"
    signed = cli(
        "sign-blob", str(blob), "--key", str(keys / "salrashid123-import-cosign-rsa.key"), "--bundle", str(bundle),
        *local_log.sign_args, env={"COSIGN_PASSWORD": ""},
    )  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    ok = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key",
             str(keys / "salrashid123-import-cosign-rsa.pub"), *local_log.verify_args)  # fmt: skip
    assert ok.exit_code == 0, ok.stderr


def test_sign_blob_with_an_unreachable_log_writes_nothing(
    cli: Any, tmp_path: Path, key_pair: tuple[Path, Path], local_log: LocalLog
) -> None:
    key, _ = key_pair
    blob = tmp_path / "b"
    blob.write_bytes(b"x")
    bundle = tmp_path / "b.bundle"
    result = cli(
        "sign-blob", str(blob), "--key", str(key), "--bundle", str(bundle),
        "--rekor-url", "http://127.0.0.1:9", "--rekor-public-key", str(local_log.public_key),
        env={"COSIGN_PASSWORD": "pw"},
    )  # fmt: skip
    assert result.exit_code == 5
    assert result.stderr.splitlines() == [
        "error: cannot connect to the transparency log (after 4 attempts) (http://127.0.0.1:9/api/v1/log/entries)"
    ]
    assert not bundle.exists() and result.stdout == ""


def test_tlog_upload_can_be_switched_off_by_environment(cli: Any, tmp_path: Path, key_pair: tuple[Path, Path]) -> None:
    key, _ = key_pair
    blob = tmp_path / "b"
    blob.write_bytes(b"y")
    bundle = tmp_path / "b.bundle"
    env = {"COSIGN_PASSWORD": "pw", "RELEASE_VECTOR_TLOG_UPLOAD": "false", "REKOR_URL": "http://127.0.0.1:9",
           "RELEASE_VECTOR_BLOB_BUNDLE_FORMAT": "legacy"}
    result = cli("sign-blob", str(blob), "--key", str(key), "--bundle", str(bundle), env=env)
    assert result.exit_code == 0, result.stderr
    assert list(json.loads(bundle.read_bytes())) == ["base64Signature"]


def test_sign_blob_with_an_ed25519_key_logs_a_sha512_entry_and_verifies(
    cli: Any, tmp_path: Path, local_log: LocalLog
) -> None:
    """cosign signs blobs with Ed25519 keys as Ed25519ph, which Rekor records with a sha512 digest."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric import ed25519

    from pipeline.cosign.keys import encrypt_key_pair
    from pipeline.secret import Secret

    pair = encrypt_key_pair(ed25519.Ed25519PrivateKey.generate(), Secret("pw"))
    key, pub = tmp_path / "ed.key", tmp_path / "ed.pub"
    key.write_bytes(pair.private_pem.reveal())
    pub.write_bytes(pair.public_pem)
    blob, bundle = tmp_path / "notes.txt", tmp_path / "notes.txt.bundle"
    blob.write_bytes(b"release notes\n")
    signed = cli("sign-blob", str(blob), "--key", str(key), "--bundle", str(bundle), *local_log.sign_args,
                 "--bundle-format", "legacy", env={"COSIGN_PASSWORD": "pw"})  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    document = json.loads(bundle.read_bytes())
    body = json.loads(base64.b64decode(document["rekorBundle"]["Payload"]["body"]))
    expected = {"algorithm": "sha512", "value": hashlib.sha512(blob.read_bytes()).hexdigest()}
    assert body["spec"]["data"]["hash"] == expected
    ok = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub), *local_log.verify_args)
    assert ok.exit_code == 0, ok.stderr
    blob.write_bytes(b"other notes\n")
    changed = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(pub), *local_log.verify_args)
    assert changed.exit_code == 10
