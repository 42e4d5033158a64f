"""Independent verifiers on what we write: sigstore-js (``@sigstore/verify``) and sigstore-python, offline, with
a trusted root built from the embedded stack's keys (its Rekor log, Fulcio CA, CT log).

Checked: ``sign-blob --bundle`` files (key and keyless), cosign v3 image bundles (key and keyless, made by the
functions the referrer layout writes with), and, as a check of the harness itself, the real Rekor v2 staging
bundle with its own trusted root.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from pipeline.cosign.keys import load_private_key, load_public_key
from pipeline.secret import Secret
from pipeline.signatures.signers import KeylessSigner
from pipeline.sigstore.dsse import IN_TOTO_PAYLOAD_TYPE, DsseEnvelope, DsseSignature, dsse_pae
from pipeline.sigstore.fulcio_client import FulcioClient
from pipeline.sigstore.oidc import parse_identity_token
from pipeline.sigstore.rekor_client import RekorClient
from pipeline.sigstore.trusted_root_writer import Authority, LogKey, trusted_root_json
from pipeline.sigstore.writer import cosign_sign_statement, dsse_bundle, sign_dsse
from tests.cli.test_keyless_cli import NO_AMBIENT_TOKEN, Files, files
from tests.sigstore.keyless_fixtures import keyless_stack
from tests.sigstore.sigstore_js import sigstore_js_verify

__all__ = ["files", "keyless_stack"]

REKOR_V2 = Path(__file__).resolve().parents[1] / "vectors" / "sigstore-rekor-v2"
SINCE = datetime(2020, 1, 1, tzinfo=UTC)
PASSWORD = {"COSIGN_PASSWORD": "pw"}


@pytest.fixture(scope="module")
def trusted_root(files: Files, tmp_path_factory: pytest.TempPathFactory) -> Path:
    stack = files.stack
    chain = x509.load_pem_x509_certificates(stack.fulcio.chain_pem())
    document = trusted_root_json(
        tlogs=[LogKey(stack.log.url, load_public_key(stack.log.public_key_pem(), "log"), SINCE)],
        certificate_authorities=[Authority(stack.fulcio.url, tuple(chain), SINCE)],
        ctlogs=[LogKey("https://ct.example", load_public_key(stack.fulcio.ct_log_public_key_pem(), "ct"), SINCE)],
    )
    path = tmp_path_factory.mktemp("root") / "trusted_root.json"
    path.write_bytes(document)
    return path


def _signed_blob(
    cli: Any, tmp_path: Path, files: Files, *signing: str, env: dict[str, str | None]
) -> tuple[Path, Path]:
    blob, bundle = tmp_path / "release.yaml", tmp_path / "release.yaml.sigstore.json"
    blob.write_bytes(b"version: v1.2.3\n")
    stack = files.stack
    log = ["--rekor-url", stack.log.url, "--rekor-public-key", str(files.rekor_key)]
    signed = cli("sign-blob", str(blob), "--bundle", str(bundle), *signing, *log, env=env)
    assert signed.exit_code == 0, signed.stderr
    return blob, bundle


def test_the_harness_accepts_the_real_rekor_v2_bundle_and_rejects_another_artifact(tmp_path: Path) -> None:
    bundle, root = REKOR_V2 / "staging-rekor-v2.txt.sigstore.json", REKOR_V2 / "staging-trusted_root.json"
    ok = sigstore_js_verify(bundle, root, artifact=REKOR_V2 / "staging-rekor-v2.txt", identity="jku@goto.fi",
                            issuer="https://github.com/login/oauth")  # fmt: skip
    assert ok["ok"], ok
    other = tmp_path / "other.txt"
    other.write_bytes(b"not the artifact\n")
    assert not sigstore_js_verify(bundle, root, artifact=other)["ok"]


def test_sigstore_js_verifies_a_key_signed_blob_bundle(cli: Any, tmp_path: Path, files: Files,
                                                       trusted_root: Path) -> None:  # fmt: skip
    blob, bundle = _signed_blob(cli, tmp_path, files, "--key", str(files.key), env=PASSWORD)
    result = sigstore_js_verify(bundle, trusted_root, artifact=blob, public_key=files.pub)
    assert result["ok"], result
    blob.write_bytes(b"tampered\n")
    refused = sigstore_js_verify(bundle, trusted_root, artifact=blob, public_key=files.pub)
    assert not refused["ok"]


def test_sigstore_js_and_sigstore_python_verify_a_keyless_blob_bundle(
    cli: Any, tmp_path: Path, files: Files, trusted_root: Path
) -> None:
    blob, bundle = _signed_blob(cli, tmp_path, files, *files.sign_args(), env=NO_AMBIENT_TOKEN)
    result = sigstore_js_verify(bundle, trusted_root, artifact=blob, identity=files.identity, issuer=files.issuer)
    assert result["ok"], result
    wrong = sigstore_js_verify(bundle, trusted_root, artifact=blob, identity="someone@example.com")
    assert not wrong["ok"]

    pytest.importorskip("sigstore")
    from sigstore.errors import VerificationError as SigstoreVerificationError
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    verifier = Verifier(trusted_root=TrustedRoot.from_file(str(trusted_root)))
    parsed = Bundle.from_json(bundle.read_bytes())
    verifier.verify_artifact(blob.read_bytes(), parsed, Identity(identity=files.identity, issuer=files.issuer))
    with pytest.raises(SigstoreVerificationError):
        verifier.verify_artifact(b"tampered", parsed, Identity(identity=files.identity, issuer=files.issuer))


def test_sigstore_js_verifies_v3_image_bundles_key_and_keyless(
    tmp_path: Path, files: Files, trusted_root: Path
) -> None:
    """The bundle the referrer layout pushes (statement, DSSE envelope, dsse entry, bundle v0.3)."""
    digest = hashlib.sha256(b"an image manifest").hexdigest()
    statement = cosign_sign_statement(digest)
    stack = files.stack
    with RekorClient(stack.log.url, [load_public_key(stack.log.public_key_pem(), "log")]) as log:
        key = load_private_key(Secret(files.key.read_bytes()), Secret("pw"), str(files.key))
        envelope = sign_dsse(key, statement)
        key_bundle = tmp_path / "key.sigstore.json"
        key_bundle.write_bytes(dsse_bundle(envelope, key.public_key, log.upload_dsse(envelope, key.public_key_pem())))

        token = parse_identity_token(Secret(files.token_value.encode()), "test")
        with FulcioClient(stack.fulcio.url) as fulcio:
            chain = x509.load_pem_x509_certificates(stack.fulcio.chain_pem())
            signer = KeylessSigner(token, fulcio, roots=chain[-1:], intermediates=chain[:-1])
            signature = signer.sign(dsse_pae(IN_TOTO_PAYLOAD_TYPE, statement), pure_ed25519=True)
            keyless_envelope = DsseEnvelope(statement, IN_TOTO_PAYLOAD_TYPE, (DsseSignature(signature.value, ""),))
            entry = log.upload_dsse(keyless_envelope, signature.material.log_pem)
        keyless_bundle = tmp_path / "keyless.sigstore.json"
        keyless_bundle.write_bytes(dsse_bundle(keyless_envelope, signature.material.public_key, entry,
                                               certificate_der=signature.material.certificate_der))  # fmt: skip

    assert sigstore_js_verify(key_bundle, trusted_root, public_key=files.pub)["ok"]
    result = sigstore_js_verify(keyless_bundle, trusted_root, identity=files.identity, issuer=files.issuer)
    assert result["ok"], result
    assert not sigstore_js_verify(keyless_bundle, trusted_root, identity="someone@example.com")["ok"]
