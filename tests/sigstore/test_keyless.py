"""Keyless signing end to end on the embedded stack (OIDC issuer → Fulcio → Rekor), verified as cosign
verifies a keyless legacy layer: the signature, the Rekor bundle, and the certificate at integratedTime
for the expected identity and issuer. Each way a keyless signature must fail, fails with its reason."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pipeline.cosign.certificate import IdentityPolicy
from pipeline.cosign.payload import simple_signing_payload
from pipeline.cosign.rekor import bundle_annotation, parse_rekor_bundle
from pipeline.cosign.sct import CtLogKey
from pipeline.cosign.verify import KeylessTrust, VerificationPolicy, VerifiedSignature, verify_signed_payload
from pipeline.errors import VerificationError
from pipeline.rehearsal.fulcio_server import FulcioServer, TrustedIssuer
from pipeline.secret import Secret
from pipeline.sigstore.fulcio_client import CertificateChain, FulcioClient, FulcioError
from pipeline.sigstore.keyless import CertifiedKey
from pipeline.sigstore.oidc import IdentityToken, parse_identity_token
from pipeline.sigstore.rekor_client import RekorClient
from tests.sigstore.keyless_fixtures import EMAIL, WORKFLOW, KeylessStack, keyless_stack

__all__ = ["keyless_stack"]

DIGEST = "sha256:" + "ab" * 32
PAYLOAD = simple_signing_payload("ghcr.io/metal-stack/releases", DIGEST, None)


@dataclass(frozen=True)
class Signed:
    payload: bytes
    signature: bytes
    certificate_pem: bytes
    chain_pem: bytes
    bundle: str


def email_token(stack: KeylessStack) -> IdentityToken:
    return parse_identity_token(Secret(stack.email_issuer.email_token(EMAIL)), "test")


def sign(stack: KeylessStack, signer: CertifiedKey, payload: bytes = PAYLOAD) -> Signed:
    """What the legacy layout stores for a keyless signature: signature, certificate, chain, Rekor bundle."""
    signature = signer.sign(payload)
    with RekorClient(stack.log.url, [stack.log.public_key]) as rekor:
        logged = rekor.upload(hashlib.sha256(payload).hexdigest(), signature, signer.certificate_pem)
    return Signed(
        payload,
        signature,
        signer.certificate_annotation.encode(),
        signer.chain_annotation.encode(),
        bundle_annotation(logged),
    )


def verify(
    stack: KeylessStack,
    signed: Signed,
    *,
    identity: str,
    issuer: str,
    roots: tuple[x509.Certificate, ...] | None = None,
) -> VerifiedSignature:
    trust = KeylessTrust(
        IdentityPolicy(identity, None, issuer, None),
        roots=roots if roots is not None else (stack.fulcio.root,),
        intermediates=(stack.fulcio.intermediate,),
        ct_log_keys=(CtLogKey.of(stack.fulcio.ca.ct_log_key.public_key()),),
    )
    policy = VerificationPolicy(public_key=None, keyless=trust, rekor_keys=(stack.log.public_key,))
    return verify_signed_payload(
        signed.payload,
        signed.signature,
        certificate_pem=signed.certificate_pem,
        chain_pem=signed.chain_pem,
        rekor_bundle=parse_rekor_bundle(signed.bundle, "layer"),
        policy=policy,
        where="ghcr.io/metal-stack/releases@" + DIGEST,
    )


@pytest.fixture(scope="module")
def email_signed(keyless_stack: KeylessStack) -> Signed:
    with keyless_stack.client() as fulcio:
        signer = CertifiedKey.create(email_token(keyless_stack), fulcio, trusted_roots=(keyless_stack.fulcio.root,))
    return sign(keyless_stack, signer)


# --- passes ---------------------------------------------------------------------------------------


def test_email_identity_signs_and_verifies(keyless_stack: KeylessStack, email_signed: Signed) -> None:
    result = verify(keyless_stack, email_signed, identity=EMAIL, issuer=keyless_stack.email_issuer.issuer)
    assert result.signer == EMAIL and result.issuer == keyless_stack.email_issuer.issuer
    assert result.integrated_time is not None and result.log_index is not None
    assert any("chains to a trusted root" in check for check in result.checks)


def test_github_workflow_identity_signs_and_verifies(keyless_stack: KeylessStack) -> None:
    token = parse_identity_token(Secret(keyless_stack.github_issuer.github_token()), "GitHub Actions")
    with keyless_stack.client() as fulcio:
        signer = CertifiedKey.create(token, fulcio, trusted_roots=(keyless_stack.fulcio.root,))
    assert signer.identities == [WORKFLOW.certificate_identity]
    signed = sign(keyless_stack, signer)
    result = verify(
        keyless_stack, signed, identity=WORKFLOW.certificate_identity, issuer=keyless_stack.github_issuer.issuer
    )
    assert result.signer == WORKFLOW.certificate_identity


def test_one_signer_signs_several_payloads(keyless_stack: KeylessStack) -> None:
    with keyless_stack.client() as fulcio:
        signer = CertifiedKey.create(email_token(keyless_stack), fulcio)
    for n in range(3):
        payload = simple_signing_payload("ghcr.io/metal-stack/x", "sha256:" + f"{n:02x}" * 32, None)
        verify(
            keyless_stack,
            sign(keyless_stack, signer, payload),
            identity=EMAIL,
            issuer=keyless_stack.email_issuer.issuer,
        )


def test_layer_annotations_have_cosigns_shape(keyless_stack: KeylessStack, email_signed: Signed) -> None:
    certificate = email_signed.certificate_pem.decode()
    chain = email_signed.chain_pem.decode()
    assert certificate.startswith("-----BEGIN CERTIFICATE-----\n") and certificate.endswith(
        "-----END CERTIFICATE-----\n"
    )
    # cosign's chain annotation: intermediate then root, no final newline (as in vectors/cosign's real layer)
    assert chain.count("-----BEGIN CERTIFICATE-----") == 2 and chain.endswith("-----END CERTIFICATE-----")
    assert x509.load_pem_x509_certificates(email_signed.chain_pem) == [
        keyless_stack.fulcio.intermediate,
        keyless_stack.fulcio.root,
    ]
    # the Rekor entry records the certificate as the "public key" (hashedrekord, as cosign uploads it)
    body = json.loads(parse_rekor_bundle(email_signed.bundle, "layer").body)
    recorded = base64.b64decode(body["spec"]["signature"]["publicKey"]["content"])
    assert x509.load_pem_x509_certificate(recorded) == x509.load_pem_x509_certificate(email_signed.certificate_pem)


def test_signer_never_shows_its_key(keyless_stack: KeylessStack) -> None:
    with keyless_stack.client() as fulcio:
        signer = CertifiedKey.create(email_token(keyless_stack), fulcio)
    text = repr(signer) + repr(signer.signing_key)
    private_key = signer.signing_key.private_key
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    assert "PRIVATE" not in text and str(private_key.private_numbers().private_value) not in text
    assert EMAIL in repr(signer)
    assert signer.public_key == signer.certificate.public_key()


# --- each way it must fail ---------------------------------------------------------------------


def test_wrong_identity_is_rejected(keyless_stack: KeylessStack, email_signed: Signed) -> None:
    with pytest.raises(VerificationError, match=r"certificate identity is not 'someone@example\.com'") as caught:
        verify(keyless_stack, email_signed, identity="someone@example.com", issuer=keyless_stack.email_issuer.issuer)
    assert EMAIL in caught.value.message


def test_wrong_issuer_is_rejected(keyless_stack: KeylessStack, email_signed: Signed) -> None:
    with pytest.raises(VerificationError, match=r"OIDC issuer is not 'https://accounts\.google\.com'"):
        verify(keyless_stack, email_signed, identity=EMAIL, issuer="https://accounts.google.com")


def test_chain_to_another_root_is_rejected(keyless_stack: KeylessStack, email_signed: Signed) -> None:
    with FulcioServer() as other:
        assert other.root.subject == keyless_stack.fulcio.root.subject  # same name, another key
        with pytest.raises(VerificationError, match="does not chain to a trusted root"):
            verify(
                keyless_stack,
                email_signed,
                identity=EMAIL,
                issuer=keyless_stack.email_issuer.issuer,
                roots=(other.root,),
            )


def test_certificate_outside_its_validity_at_integrated_time_is_rejected(keyless_stack: KeylessStack) -> None:
    an_hour_ago = time.time() - 3600
    past = FulcioServer([TrustedIssuer(keyless_stack.email_issuer.issuer)], clock=lambda: an_hour_ago)
    with past:
        with FulcioClient(past.url) as fulcio:
            signer = CertifiedKey.create(
                email_token(keyless_stack), fulcio, now=datetime.fromtimestamp(an_hour_ago + 1, UTC)
            )
        assert signer.not_valid_after < datetime.now(UTC)
        signed = sign(keyless_stack, signer)  # the log integrates it now, 50 minutes after the certificate expired
        stack = replace(keyless_stack, fulcio=past)
        with pytest.raises(VerificationError, match="signing certificate was not valid at"):
            verify(stack, signed, identity=EMAIL, issuer=keyless_stack.email_issuer.issuer)


# --- what the signer checks on Fulcio's answer ---------------------------------------------------


@dataclass
class ForeignKeyFulcio:
    """A CA that certifies a key other than the one it was asked for."""

    real: FulcioServer
    url: str = "https://fulcio.invalid"

    def request_certificate(
        self, token: IdentityToken, public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, proof: bytes
    ) -> CertificateChain:
        other = ec.generate_private_key(ec.SECP256R1())
        with FulcioClient(self.real.url) as client:
            return client.request_certificate(
                token, other.public_key(), other.sign(token.claims.proof_subject.encode(), ec.ECDSA(hashes.SHA256()))
            )


def test_a_certificate_for_another_key_is_refused(keyless_stack: KeylessStack) -> None:
    with pytest.raises(FulcioError, match="not for the ephemeral signing key") as caught:
        CertifiedKey.create(email_token(keyless_stack), ForeignKeyFulcio(keyless_stack.fulcio))
    assert caught.value.where == "https://fulcio.invalid"


def test_a_certificate_from_an_untrusted_fulcio_is_refused(keyless_stack: KeylessStack) -> None:
    refused = pytest.raises(FulcioError, match="does not chain to a trusted Fulcio root")
    with FulcioServer() as other, keyless_stack.client() as fulcio, refused:
        CertifiedKey.create(email_token(keyless_stack), fulcio, trusted_roots=(other.root,))


def test_a_certificate_not_valid_now_is_refused(keyless_stack: KeylessStack) -> None:
    later = datetime.fromtimestamp(time.time() + 3600, UTC)
    with keyless_stack.client() as fulcio, pytest.raises(FulcioError, match="is not valid at"):
        CertifiedKey.create(email_token(keyless_stack), fulcio, now=later)
