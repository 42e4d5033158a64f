"""Our attestation bundles verified by an independent implementation: sigstore-python's ``verify_dsse``.

The bundle is what the referrer attestation layout writes (keyless: the embedded Fulcio and log), checked
by sigstore-python against a trusted_root.json naming exactly those stand-ins (their CA, log key, CT log).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pipeline.rehearsal.log_server import LogServer
from pipeline.secret import Secret
from pipeline.signatures.signers import KeylessSigner
from pipeline.sigstore.dsse import IN_TOTO_PAYLOAD_TYPE, dsse_pae
from pipeline.sigstore.intoto import SLSA_PROVENANCE_V1, attestation_statement, in_toto_envelope
from pipeline.sigstore.oidc import parse_identity_token
from pipeline.sigstore.rekor_client import RekorClient
from pipeline.sigstore.writer import dsse_bundle
from tests.sigstore.keyless_fixtures import WORKFLOW, KeylessStack, keyless_stack

__all__ = ["keyless_stack"]


def _spki(pem_or_key: object) -> str:
    key = pem_or_key if not isinstance(pem_or_key, bytes) else serialization.load_pem_public_key(pem_or_key)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]
    return base64.b64encode(der).decode()


def _log_entry(url: str, spki_b64: str) -> dict[str, object]:
    import hashlib

    start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"baseUrl": url, "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": spki_b64, "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": {"start": start}},
            "logId": {"keyId": base64.b64encode(hashlib.sha256(base64.b64decode(spki_b64)).digest()).decode()},
            }  # fmt: skip


def _trusted_root(stack: KeylessStack, log: LogServer, path: Path) -> Path:
    start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    chain = [stack.fulcio.intermediate, stack.fulcio.root]
    root = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [_log_entry(log.url, _spki(log.public_key))],
        "certificateAuthorities": [{
            "subject": {"organization": "sigstore.dev", "commonName": "sigstore"}, "uri": stack.fulcio.url,
            "certChain": {"certificates": [
                {"rawBytes": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()} for c in chain]},
            "validFor": {"start": start}}],
        "ctlogs": [_log_entry("https://ct.example", _spki(stack.fulcio.ct_log_public_key_pem()))],
        "timestampAuthorities": [],
    }  # fmt: skip
    path.write_text(json.dumps(root))
    return path


def test_sigstore_python_verifies_our_keyless_attestation_bundle(keyless_stack: KeylessStack, tmp_path: Path) -> None:
    pytest.importorskip("sigstore")
    from sigstore.errors import VerificationError as SigstoreVerificationError
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    log = keyless_stack.log
    token = parse_identity_token(Secret(keyless_stack.github_issuer.github_token()), "test")
    statement = attestation_statement([("registry.example/app", "ab" * 32)], SLSA_PROVENANCE_V1, {"x": 1})
    with keyless_stack.client() as fulcio, RekorClient(log.url, [log.public_key]) as rekor:
        signer = KeylessSigner(token, fulcio, roots=(keyless_stack.fulcio.root,))
        signature = signer.sign(dsse_pae(IN_TOTO_PAYLOAD_TYPE, statement), pure_ed25519=True)
        envelope = in_toto_envelope(statement, signature.value)
        entry = rekor.upload_dsse(envelope, signature.material.log_pem)
    certificate = x509.load_pem_x509_certificate(signature.material.log_pem)
    bundle = dsse_bundle(envelope, signature.material.public_key, entry,
                         certificate_der=certificate.public_bytes(serialization.Encoding.DER))  # fmt: skip

    verifier = Verifier(trusted_root=TrustedRoot.from_file(str(_trusted_root(keyless_stack, log, tmp_path / "r.json"))))
    identity = Identity(identity=WORKFLOW.certificate_identity, issuer=keyless_stack.github_issuer.issuer)
    payload_type, payload = verifier.verify_dsse(Bundle.from_json(bundle), identity)
    assert (payload_type, payload) == (IN_TOTO_PAYLOAD_TYPE, statement)
    with pytest.raises(SigstoreVerificationError):
        other = Identity(identity="someone@else", issuer=keyless_stack.github_issuer.issuer)
        verifier.verify_dsse(Bundle.from_json(bundle), other)
