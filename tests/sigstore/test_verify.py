"""Offline verification of Sigstore bundles on the real ``bundle-v03`` vectors, positive and negative.

Trust comes from ``bundle-v03/trusted_root.public-good.json`` through pipeline.cosign.trust. Checks of the
dsse log body that a real entry cannot reach without breaking its SET first are made on entries re-signed
here by a throwaway "Rekor" key. sigstore-python, when installed, gives a second opinion on the two
keyless DSSE bundles.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from pipeline.cosign.certificate import IdentityPolicy
from pipeline.cosign.keys import PublicKey, load_public_key, public_key_to_pem, verify_signature
from pipeline.cosign.rekor import RekorBundle, log_id_of, signed_entry_timestamp_message
from pipeline.cosign.trust import (
    ct_log_keys_from_trusted_root,
    fulcio_certificates_from_trusted_root,
    rekor_keys_from_trusted_root,
    timestamp_authorities_from_trusted_root,
)
from pipeline.cosign.verify import KeylessTrust, VerificationPolicy
from pipeline.errors import ExitCode, InvalidInputError, VerificationError
from pipeline.sigstore.bundle import (
    COSIGN_ATTESTATION_PREDICATE_TYPE,
    DsseEnvelope,
    DsseSignature,
    SigstoreBundle,
    parse_sigstore_bundle,
)
from pipeline.sigstore.dsse import dsse_pae
from pipeline.sigstore.verify import verify_bundle_for_artifact, verify_bundle_for_image
from tests.conftest import COSIGN_VECTORS

BUNDLE_V03 = COSIGN_VECTORS / "bundle-v03"
TRUSTED_ROOT = BUNDLE_V03 / "trusted_root.public-good.json"
TIMESTAMP_AUTHORITIES = tuple(timestamp_authorities_from_trusted_root(TRUSTED_ROOT.read_bytes(), "root"))
KEY_SIGNED = BUNDLE_V03 / "key-signed"
ATTEST = BUNDLE_V03 / "cosign-attest-keyless"
IMAGE_V3 = BUNDLE_V03 / "cosign-sign-image-v3"
IMAGE_V3_FILES = [
    IMAGE_V3 / "kubewarden-controller-v1.34.0.bundle.layer.derived.json",
    IMAGE_V3 / "kubewarden-controller-v1.34.0.bundle.pretty.json",
]
KUBEWARDEN_DIGEST = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172"
KUBEWARDEN_SAN = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0"
GITHUB_ACTIONS = "https://token.actions.githubusercontent.com"
CODY = "cody@soyland.com"
GITHUB_OAUTH = "https://github.com/login/oauth"
ATTESTATION_DIGEST = "sha256:" + hashlib.sha256((ATTEST / "empty-image.manifest.derived.json").read_bytes()).hexdigest()
WHERE = "ghcr.io/example/app@sha256:…"
BAD_SET = "SignedEntryTimestamp does not verify"


# --- trust and policies -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rekor_keys() -> tuple[PublicKey, ...]:
    return tuple(rekor_keys_from_trusted_root(TRUSTED_ROOT.read_bytes(), TRUSTED_ROOT.name))


@pytest.fixture(scope="module")
def fulcio() -> tuple[tuple[x509.Certificate, ...], tuple[x509.Certificate, ...]]:
    roots, intermediates = fulcio_certificates_from_trusted_root(TRUSTED_ROOT.read_bytes(), TRUSTED_ROOT.name)
    return tuple(roots), tuple(intermediates)


@pytest.fixture(scope="module")
def key_policy(rekor_keys: tuple[PublicKey, ...]) -> VerificationPolicy:
    key = load_public_key((KEY_SIGNED / "key.pub").read_bytes(), "key.pub")
    return VerificationPolicy(
        public_key=key, keyless=None, rekor_keys=rekor_keys, timestamp_authorities=TIMESTAMP_AUTHORITIES
    )


def _keyless(
    rekor_keys: tuple[PublicKey, ...],
    fulcio: tuple[tuple[x509.Certificate, ...], tuple[x509.Certificate, ...]],
    identity: str,
    issuer: str,
    **kwargs: Any,
) -> VerificationPolicy:
    ct_logs = tuple(ct_log_keys_from_trusted_root(TRUSTED_ROOT.read_bytes(), "root"))
    trust = KeylessTrust(IdentityPolicy(identity=identity, issuer=issuer), fulcio[0], fulcio[1], ct_logs)
    kwargs.setdefault("timestamp_authorities", TIMESTAMP_AUTHORITIES)
    return VerificationPolicy(public_key=None, keyless=trust, rekor_keys=rekor_keys, **kwargs)


@pytest.fixture(scope="module")
def cody_policy(rekor_keys: tuple[PublicKey, ...], fulcio: Any) -> VerificationPolicy:
    return _keyless(rekor_keys, fulcio, CODY, GITHUB_OAUTH)


@pytest.fixture(scope="module")
def kubewarden_policy(rekor_keys: tuple[PublicKey, ...], fulcio: Any) -> VerificationPolicy:
    return _keyless(rekor_keys, fulcio, KUBEWARDEN_SAN, GITHUB_ACTIONS)


def _load(path: Any) -> SigstoreBundle:
    return parse_sigstore_bundle(path.read_bytes(), path.name)


def _artifact() -> bytes:
    return (KEY_SIGNED / "a.txt").read_bytes()


def _with_entry(bundle: SigstoreBundle, **changes: Any) -> SigstoreBundle:
    """``bundle`` with its (only) tlog entry changed."""
    material = bundle.verification_material
    entry = replace(material.tlog_entries[0], **changes)
    return replace(bundle, verification_material=replace(material, tlog_entries=(entry,)))


def _with_proof(bundle: SigstoreBundle, **changes: Any) -> SigstoreBundle:
    proof = bundle.verification_material.tlog_entries[0].inclusion_proof
    assert proof is not None
    return _with_entry(bundle, inclusion_proof=replace(proof, **changes))


def _flip(data: bytes, at: int = -1) -> bytes:
    flipped = bytearray(data)
    flipped[at] ^= 0x01
    return bytes(flipped)


def _reject(reason: str, call: Any, *args: Any, **kwargs: Any) -> VerificationError:
    with pytest.raises(VerificationError, match=reason) as caught:
        call(*args, **kwargs)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == ExitCode.VERIFICATION_FAILED
    return caught.value


# --- 1. managed key: messageSignature + hashedrekord ------------------------------------------


def test_key_signed_bundle_verifies(key_policy: VerificationPolicy) -> None:
    result = verify_bundle_for_artifact(_load(KEY_SIGNED / "bundle.sigstore.json"), _artifact(), key_policy, "a.txt")
    assert result.signer == "public key"
    assert result.issuer is None
    assert (result.integrated_time, result.log_index) == (1766077479, 771488337)
    joined = " | ".join(result.checks)
    for phrase in (
        "message digest is the artifact's sha256",
        "verified against the specified public key",
        "hashedrekord log entry records this artifact",
        "signed entry timestamp was verified",
        "inclusion proof (leaf 649584075 of 649584076)",
        "checkpoint is signed",
        "1 RFC 3161 timestamp(s) over the signature verified with a trusted timestamp authority",
    ):
        assert phrase in joined


def test_an_artifact_with_one_more_byte_is_rejected(key_policy: VerificationPolicy) -> None:
    bundle = _load(KEY_SIGNED / "bundle.sigstore.json")
    error = _reject("the bundle is for another artifact", verify_bundle_for_artifact, bundle, _artifact() + b"\n",
                    key_policy, "a.txt")
    assert error.where == "a.txt"


def test_the_signature_itself_covers_the_artifact(key_policy: VerificationPolicy) -> None:
    # Without the stated digest, the signature over the artifact bytes is what rejects the extra byte.
    bundle = _load(KEY_SIGNED / "bundle.sigstore.json")
    assert bundle.message_signature is not None
    no_digest = replace(bundle, message_signature=replace(bundle.message_signature, digest_algorithm=None))
    verify_bundle_for_artifact(no_digest, _artifact(), key_policy, "a.txt")
    _reject("the signature does not verify", verify_bundle_for_artifact, no_digest, _artifact() + b"x", key_policy,
            "a.txt")


def test_a_wrong_key_is_rejected(key_policy: VerificationPolicy) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    policy = replace(key_policy, public_key=other)
    bundle = _load(KEY_SIGNED / "bundle.sigstore.json")
    # publicKey.hint is only a hint (cosign ignores it with --key): the key given decides.
    _reject("the signature does not verify", verify_bundle_for_artifact, bundle, _artifact(), policy, "a.txt")
    unhinted = replace(bundle, verification_material=replace(bundle.verification_material, public_key_hint=None))
    _reject("the signature does not verify", verify_bundle_for_artifact, unhinted, _artifact(), policy, "a.txt")


def test_another_digest_algorithm_is_refused(key_policy: VerificationPolicy) -> None:
    bundle = _load(KEY_SIGNED / "bundle.sigstore.json")
    assert bundle.message_signature is not None
    changed = replace(bundle, message_signature=replace(bundle.message_signature, digest_algorithm="SHA3_256"))
    _reject("SHA3_256; only SHA2_256, SHA2_384, SHA2_512", verify_bundle_for_artifact, changed, _artifact(),
            key_policy, "a.txt")
    stated_384 = replace(bundle, message_signature=replace(bundle.message_signature, digest_algorithm="SHA2_384"))
    _reject("another artifact .sha384:", verify_bundle_for_artifact, stated_384, _artifact(), key_policy, "a.txt")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda b: _with_entry(b, signed_entry_timestamp=_flip(_set_of(b), 20)), BAD_SET),
        (lambda b: _with_entry(b, integrated_time=1766077480), BAD_SET),
        (lambda b: _with_entry(b, log_index=771488338), BAD_SET),
        (lambda b: _with_entry(b, signed_entry_timestamp=None), "no inclusionPromise"),
        (lambda b: _with_entry(b, log_id=b"\x00" * 32), "matches none of the 2 trusted Rekor keys"),
        (lambda b: _with_entry(b, kind="dsse"), "no hashedrekord 0.0.1 transparency-log entry .dsse 0.0.1"),
        (lambda b: _with_proof(b, hashes=(_flip(_proof_of(b).hashes[0]), *_proof_of(b).hashes[1:])),
         "does not lead to the tree's root hash"),
        (lambda b: _with_proof(b, log_index=771488337), "outside the tree"),  # the global index is not the leaf's
        (lambda b: _with_proof(b, log_index=649584074), "does not lead to the tree's root hash"),
        (lambda b: _with_proof(b, hashes=_proof_of(b).hashes[:-1]), "too few hashes"),
        (lambda b: _with_proof(b, checkpoint=_proof_of(b).checkpoint.replace("649584076", "649584077", 1)),
         "checkpoint's signature does not verify"),
    ],
    ids=["SET", "integratedTime", "logIndex", "no-SET", "logId", "kind", "proof-hash", "global-index",
         "proof-index", "proof-short", "checkpoint"],
)
def test_tampered_log_evidence_is_rejected(key_policy: VerificationPolicy, change: Any, reason: str) -> None:
    bundle = change(_load(KEY_SIGNED / "bundle.sigstore.json"))
    _reject(reason, verify_bundle_for_artifact, bundle, _artifact(), key_policy, "a.txt")


def _set_of(bundle: SigstoreBundle) -> bytes:
    value = bundle.verification_material.tlog_entries[0].signed_entry_timestamp
    assert value is not None
    return value


def _body_of(bundle: SigstoreBundle) -> bytes:
    return bundle.verification_material.tlog_entries[0].canonicalized_body


def _proof_of(bundle: SigstoreBundle) -> Any:
    return bundle.verification_material.tlog_entries[0].inclusion_proof


def test_ignore_tlog_skips_the_log_but_not_the_signature(key_policy: VerificationPolicy) -> None:
    policy = replace(key_policy, ignore_tlog=True)
    bundle = _with_entry(_load(KEY_SIGNED / "bundle.sigstore.json"), signed_entry_timestamp=b"junk")
    result = verify_bundle_for_artifact(bundle, _artifact(), policy, "a.txt")
    assert result.log_index is None and result.integrated_time is None
    assert any("NOT checked" in check for check in result.checks)
    _reject("another artifact", verify_bundle_for_artifact, bundle, b"other", policy, "a.txt")


def test_keyless_policy_on_a_key_signed_bundle_is_rejected(cody_policy: VerificationPolicy) -> None:
    _reject("no certificate for keyless verification", verify_bundle_for_artifact,
            _load(KEY_SIGNED / "bundle.sigstore.json"), _artifact(), cody_policy, "a.txt")


def test_a_dsse_bundle_verifies_for_the_artifact_its_statement_names(cody_policy: VerificationPolicy) -> None:
    """As cosign v3 and sigstore-go: a DSSE bundle is a blob's signature when a subject's digest is the blob's.
    The real attestation's subject is the empty image's manifest (derived, sha256-proven in the README)."""
    bundle = _load(ATTEST / "oci-attestation.sigstore.json")
    manifest = (ATTEST / "empty-image.manifest.derived.json").read_bytes()
    result = verify_bundle_for_artifact(bundle, manifest, cody_policy, "x")
    assert result.signer == CODY
    assert "names the artifact's sha256" in " ".join(result.checks)
    _reject("the statement is for another artifact", verify_bundle_for_artifact, bundle, b"", cody_policy, "x")


# --- 2. cosign attest --new-bundle-format (keyless, in-toto v0.1) -----------------------------


def _attestation() -> SigstoreBundle:
    return _load(ATTEST / "oci-attestation.sigstore.json")


def test_attestation_verifies(cody_policy: VerificationPolicy) -> None:
    result = verify_bundle_for_image(
        _attestation(), ATTESTATION_DIGEST, cody_policy, WHERE, predicate_type=COSIGN_ATTESTATION_PREDICATE_TYPE
    )
    assert (result.signer, result.issuer) == (CODY, GITHUB_OAUTH)
    assert (result.integrated_time, result.log_index) == (1740770291, 175508996)
    joined = " | ".join(result.checks)
    for phrase in ("DSSE signature was verified", "names the image digest", "dsse log entry records",
                   "signed entry timestamp", "inclusion proof (leaf 53604734 of 53604735)", "checkpoint",
                   "chains to a trusted root"):
        assert phrase in joined
    assert "RFC 3161" not in joined  # this bundle carries no timestamp


def test_attestation_needs_its_predicate_type(cody_policy: VerificationPolicy) -> None:
    _reject("predicateType is https://cosign.sigstore.dev/attestation/v1, not https://sigstore.dev/cosign/sign/v1",
            verify_bundle_for_image, _attestation(), ATTESTATION_DIGEST, cody_policy, WHERE)


@pytest.mark.parametrize(
    ("identity", "issuer", "reason"),
    [
        ("someone@soyland.com", GITHUB_OAUTH, "identity is not 'someone@soyland.com': it names cody@soyland.com"),
        (CODY, GITHUB_ACTIONS, "OIDC issuer is not"),
    ],
)
def test_attestation_from_someone_else_is_rejected(
    rekor_keys: tuple[PublicKey, ...], fulcio: Any, identity: str, issuer: str, reason: str
) -> None:
    policy = _keyless(rekor_keys, fulcio, identity, issuer)
    _reject(reason, verify_bundle_for_image, _attestation(), ATTESTATION_DIGEST, policy, WHERE,
            predicate_type=COSIGN_ATTESTATION_PREDICATE_TYPE)


def test_dsse_signature_is_over_the_pae_not_the_payload() -> None:
    bundle = _attestation()
    envelope, der = bundle.dsse_envelope, bundle.verification_material.certificate
    assert envelope is not None and der is not None
    key = x509.load_der_x509_certificate(der).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    signature = envelope.signatures[0].sig
    verify_signature(key, dsse_pae(envelope.payload_type, envelope.payload), signature, where="pae")
    with pytest.raises(VerificationError):
        verify_signature(key, envelope.payload, signature, where="raw payload")


def test_pae_encoding_matches_the_dsse_spec_example() -> None:
    # From the DSSE protocol document: type "http://example.com/HelloWorld", body "hello world".
    assert dsse_pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert dsse_pae("t\u00e9", b"") == b"DSSEv1 3 t\xc3\xa9 0 "  # lengths count bytes


def test_attestation_for_another_image_is_rejected(cody_policy: VerificationPolicy) -> None:
    _reject("the signature is for another image .*sha256:7321", verify_bundle_for_image, _attestation(),
            KUBEWARDEN_DIGEST, cody_policy, WHERE, predicate_type=COSIGN_ATTESTATION_PREDICATE_TYPE)


def test_attestation_without_requested_annotations_is_rejected(cody_policy: VerificationPolicy) -> None:
    _reject("annotation env=prod is missing", verify_bundle_for_image, _attestation(), ATTESTATION_DIGEST,
            cody_policy, WHERE, {"env": "prod"}, predicate_type=COSIGN_ATTESTATION_PREDICATE_TYPE)


def test_tampered_envelope_is_rejected(cody_policy: VerificationPolicy) -> None:
    bundle = _attestation()
    envelope = bundle.dsse_envelope
    assert envelope is not None
    for changed in (
        replace(envelope, payload=envelope.payload.replace(b"bar", b"baz")),
        replace(envelope, payload_type="application/vnd.in-toto+json "),
        replace(envelope, signatures=(DsseSignature(_flip(envelope.signatures[0].sig, 10), ""),)),
    ):
        with pytest.raises(VerificationError, match="DSSE"):
            verify_bundle_for_image(replace(bundle, dsse_envelope=changed), ATTESTATION_DIGEST, cody_policy, WHERE,
                                    predicate_type=COSIGN_ATTESTATION_PREDICATE_TYPE)


def test_two_signatures_are_refused(cody_policy: VerificationPolicy) -> None:
    bundle = _attestation()
    assert bundle.dsse_envelope is not None
    doubled = replace(bundle.dsse_envelope, signatures=bundle.dsse_envelope.signatures * 2)
    _reject("holds 2 signatures", verify_bundle_for_image, replace(bundle, dsse_envelope=doubled), ATTESTATION_DIGEST,
            cody_policy, WHERE, predicate_type=COSIGN_ATTESTATION_PREDICATE_TYPE)


def test_certificate_is_checked_at_integrated_time_not_now(cody_policy: VerificationPolicy) -> None:
    # The leaf lived ten minutes in 2025; without the log there is no proven time, so it is expired now.
    policy = replace(cody_policy, ignore_tlog=True, now=datetime(2026, 1, 1, tzinfo=UTC))
    _reject("was not valid at 2026-01-01", verify_bundle_for_image, _attestation(), ATTESTATION_DIGEST, policy,
            WHERE, predicate_type=COSIGN_ATTESTATION_PREDICATE_TYPE)
    policy = replace(policy, now=datetime(2025, 2, 28, 19, 20, tzinfo=UTC))
    result = verify_bundle_for_image(_attestation(), ATTESTATION_DIGEST, policy, WHERE,
                                     predicate_type=COSIGN_ATTESTATION_PREDICATE_TYPE)
    assert result.log_index is None


def _as_chain_bundle(bundle: SigstoreBundle, chain: tuple[bytes, ...]) -> SigstoreBundle:
    return replace(bundle, verification_material=replace(bundle.verification_material, chain=chain))


def test_bundle_chain_supplies_intermediates(
    rekor_keys: tuple[PublicKey, ...], fulcio: Any
) -> None:
    """A v0.1/v0.2 x509CertificateChain brings its own intermediate; only the roots must be trusted."""
    roots, intermediates = fulcio
    policy = _keyless(rekor_keys, (roots, ()), CODY, GITHUB_OAUTH)
    with_chain = _as_chain_bundle(_attestation(), tuple(c.public_bytes(Encoding.DER) for c in intermediates))
    verify_bundle_for_image(with_chain, ATTESTATION_DIGEST, policy, WHERE,
                            predicate_type=COSIGN_ATTESTATION_PREDICATE_TYPE)
    _reject("does not chain to a trusted root", verify_bundle_for_image, _attestation(), ATTESTATION_DIGEST, policy,
            WHERE, predicate_type=COSIGN_ATTESTATION_PREDICATE_TYPE)


def test_malformed_certificates_are_invalid_input(cody_policy: VerificationPolicy) -> None:
    bundle = _attestation()
    for broken in (
        _as_chain_bundle(bundle, (b"junk",)),
        replace(bundle, verification_material=replace(bundle.verification_material, certificate=b"junk")),
    ):
        with pytest.raises(InvalidInputError, match=r"is not a DER X\.509 certificate"):
            verify_bundle_for_image(broken, ATTESTATION_DIGEST, cody_policy, WHERE)


# --- 3. cosign sign (v3) image signature --------------------------------------------------------


@pytest.mark.parametrize("path", IMAGE_V3_FILES, ids=lambda p: p.name)
def test_cosign_v3_image_signature_verifies(path: Any, kubewarden_policy: VerificationPolicy) -> None:
    result = verify_bundle_for_image(_load(path), KUBEWARDEN_DIGEST, kubewarden_policy, WHERE, {})
    assert (result.signer, result.issuer) == (KUBEWARDEN_SAN, GITHUB_ACTIONS)
    assert (result.integrated_time, result.log_index) == (1775719409, 1261105807)
    joined = " | ".join(result.checks)
    assert "inclusion proof (leaf 1139201545 of 1139201557)" in joined
    assert "1 RFC 3161 timestamp(s) over the signature verified with a trusted timestamp authority" in joined


@pytest.mark.parametrize("path", IMAGE_V3_FILES, ids=lambda p: p.name)
def test_cosign_v3_image_signature_for_another_digest_is_rejected(
    path: Any, kubewarden_policy: VerificationPolicy
) -> None:
    other = "sha256:" + "0" * 64
    _reject(f"names sha256:{KUBEWARDEN_DIGEST[7:]}, not {other}", verify_bundle_for_image, _load(path), other,
            kubewarden_policy, WHERE)


def test_cosign_v3_image_signature_from_another_workflow_is_rejected(
    rekor_keys: tuple[PublicKey, ...], fulcio: Any
) -> None:
    policy = _keyless(rekor_keys, fulcio, KUBEWARDEN_SAN.replace("v1.34.0", "v1.35.0"), GITHUB_ACTIONS)
    _reject("certificate identity is not", verify_bundle_for_image, _load(IMAGE_V3_FILES[0]), KUBEWARDEN_DIGEST,
            policy, WHERE)


def test_annotations_must_be_in_the_subject(kubewarden_policy: VerificationPolicy) -> None:
    _reject("annotation env=prod is missing", verify_bundle_for_image, _load(IMAGE_V3_FILES[0]), KUBEWARDEN_DIGEST,
            kubewarden_policy, WHERE, {"env": "prod"})


def test_a_key_policy_on_a_keyless_image_signature_is_rejected(key_policy: VerificationPolicy) -> None:
    _reject("DSSE signature does not verify .* with the given key", verify_bundle_for_image,
            _load(IMAGE_V3_FILES[0]), KUBEWARDEN_DIGEST, key_policy, WHERE)


def test_a_message_signature_bundle_is_not_an_image_signature(key_policy: VerificationPolicy) -> None:
    _reject("holds a message signature", verify_bundle_for_image, _load(KEY_SIGNED / "bundle.sigstore.json"),
            KUBEWARDEN_DIGEST, key_policy, WHERE)


@pytest.mark.parametrize("digest", ["c811d58d", "sha512:" + "a" * 128, "sha256:" + "A" * 64, ""])
def test_a_malformed_image_digest_is_invalid_input(digest: str, kubewarden_policy: VerificationPolicy) -> None:
    with pytest.raises(InvalidInputError, match="is not a sha256 image manifest digest"):
        verify_bundle_for_image(_load(IMAGE_V3_FILES[0]), digest, kubewarden_policy, WHERE)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda b: _with_entry(b, signed_entry_timestamp=_flip(_set_of(b), 30)), BAD_SET),
        (lambda b: _with_entry(b, canonicalized_body=_body_of(b).replace(b'"sha256"', b'"sha384"', 1)),
         BAD_SET),
        (lambda b: _with_proof(b, root_hash=_flip(_proof_of(b).root_hash)), "does not lead to the tree's root hash"),
        (lambda b: _with_proof(b, log_index=1261105807), "outside the tree"),
        (lambda b: _with_proof(b, checkpoint=_proof_of(b).checkpoint.replace("656506", "656507", 1)),
         "checkpoint's signature does not verify"),
        (lambda b: _with_entry(b, kind="hashedrekord"), "no dsse 0.0.1 transparency-log entry"),
    ],
    ids=["SET", "body", "root", "global-index", "checkpoint-origin", "kind"],
)
def test_tampered_dsse_log_evidence_is_rejected(
    change: Any, reason: str, kubewarden_policy: VerificationPolicy
) -> None:
    _reject(reason, verify_bundle_for_image, change(_load(IMAGE_V3_FILES[0])), KUBEWARDEN_DIGEST, kubewarden_policy,
            WHERE)


# --- the dsse body checks, on entries re-signed by a throwaway log key -------------------------


class _FakeLog:
    """A stand-in Rekor v1 key that signs SETs over any body, so each body check can be reached alone."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.public_key = self.private_key.public_key()

    def resign(self, bundle: SigstoreBundle, body: dict[str, Any]) -> SigstoreBundle:
        canonical = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        return self.resign_raw(_with_entry(bundle, canonicalized_body=canonical))

    def resign_raw(self, bundle: SigstoreBundle) -> SigstoreBundle:
        """A new SET by this key over the entry's body as it is."""
        entry = bundle.verification_material.tlog_entries[0]
        canonical = entry.canonicalized_body
        log_id = bytes.fromhex(log_id_of(self.public_key))
        message = signed_entry_timestamp_message(
            RekorBundle(b"", canonical, base64.b64encode(canonical).decode(), entry.integrated_time, entry.log_index,
                        log_id.hex())
        )
        signature = self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))
        return _with_entry(bundle, canonicalized_body=canonical, log_id=log_id, signed_entry_timestamp=signature,
                           inclusion_proof=None)


def _real_body(bundle: SigstoreBundle) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(bundle.verification_material.tlog_entries[0].canonicalized_body)
    return body


@pytest.fixture
def fake_log() -> _FakeLog:
    return _FakeLog()


def test_resigned_real_body_verifies_and_envelope_hash_is_not_rederived(
    fake_log: _FakeLog, kubewarden_policy: VerificationPolicy
) -> None:
    bundle = _load(IMAGE_V3_FILES[0])
    policy = replace(kubewarden_policy, rekor_keys=(fake_log.public_key,))
    body = _real_body(bundle)
    verify_bundle_for_image(fake_log.resign(bundle, body), KUBEWARDEN_DIGEST, policy, WHERE)
    body["spec"]["envelopeHash"]["value"] = "00" * 32
    result = verify_bundle_for_image(fake_log.resign(bundle, body), KUBEWARDEN_DIGEST, policy, WHERE)
    assert not any("inclusion proof" in check for check in result.checks)  # the re-signed entry has none


def _other_certificate_pem() -> str:
    """A PEM of the attestation's leaf: a real Fulcio certificate, but not this signature's."""
    der = _attestation().verification_material.certificate
    assert der is not None
    pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
    return base64.b64encode(pem).decode()


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda body: body.update(kind="intoto"), "log entry body is of kind intoto 0.0.1, not dsse 0.0.1"),
        (lambda body: body["spec"]["payloadHash"].update(value="ab" * 32), "dsse log entry is for another payload"),
        (lambda body: body["spec"]["payloadHash"].update(algorithm="sha512"), "only sha256 is supported"),
        (lambda body: body["spec"].pop("payloadHash"), "spec.payloadHash is missing"),
        (lambda body: body["spec"]["signatures"].append(body["spec"]["signatures"][0]), "different number"),
        (lambda body: body["spec"]["signatures"][0].update(signature="MEQCIA=="), "records a different signature"),
        (lambda body: body["spec"]["signatures"][0].update(signature="%%"), "records a different signature"),
        (lambda body: body.update(spec=[]), "spec is missing or not an object"),
        (lambda body: body["spec"]["signatures"][0].update(verifier=_other_certificate_pem()),
         "records a different certificate"),
        (lambda body: body["spec"]["signatures"][0].update(verifier=base64.b64encode(b"junk").decode()),
         "public key is unreadable"),
    ],
    ids=["kind", "payloadHash", "hash-algorithm", "no-payloadHash", "two-signatures", "signature",
         "signature-not-base64", "spec", "verifier", "verifier-junk"],
)
def test_dsse_body_must_record_this_payload_signature_and_signer(
    fake_log: _FakeLog, kubewarden_policy: VerificationPolicy, edit: Any, reason: str
) -> None:
    bundle = _load(IMAGE_V3_FILES[0])
    body = _real_body(bundle)
    edit(body)
    policy = replace(kubewarden_policy, rekor_keys=(fake_log.public_key,))
    _reject(reason, verify_bundle_for_image, fake_log.resign(bundle, body), KUBEWARDEN_DIGEST, policy, WHERE)


def test_a_body_that_is_not_json_is_rejected(fake_log: _FakeLog, kubewarden_policy: VerificationPolicy) -> None:
    bundle = fake_log.resign_raw(_with_entry(_load(IMAGE_V3_FILES[0]), canonicalized_body=b"not json"))
    policy = replace(kubewarden_policy, rekor_keys=(fake_log.public_key,))
    _reject("entry body is not JSON", verify_bundle_for_image, bundle, KUBEWARDEN_DIGEST, policy, WHERE)


def test_dsse_entry_without_integrated_time_is_dated_by_its_rfc_3161_timestamp_alone(
    fake_log: _FakeLog, kubewarden_policy: VerificationPolicy
) -> None:
    """Without the log's time (as with Rekor v2), the TSA's timestamp over the signature dates the
    certificate; without a trusted TSA, or with a broken timestamp, nothing does."""
    original = _load(IMAGE_V3_FILES[0])
    bundle = fake_log.resign(_with_entry(original, integrated_time=0), _real_body(original))
    policy = replace(kubewarden_policy, rekor_keys=(fake_log.public_key,))
    result = verify_bundle_for_image(bundle, KUBEWARDEN_DIGEST, policy, WHERE)
    assert result.signer == KUBEWARDEN_SAN
    assert "1 RFC 3161 timestamp(s) over the signature verified" in " | ".join(result.checks)

    _reject("no timestamp authority is trusted", verify_bundle_for_image, bundle, KUBEWARDEN_DIGEST,
            replace(policy, timestamp_authorities=()), WHERE)  # fmt: skip
    material = bundle.verification_material
    [timestamp] = material.rfc3161_timestamps
    broken = replace(material, rfc3161_timestamps=(_flip(timestamp, len(timestamp) - 40),))
    _reject("RFC 3161 timestamp", verify_bundle_for_image, replace(bundle, verification_material=broken),
            KUBEWARDEN_DIGEST, policy, WHERE)  # fmt: skip
    without_any = replace(bundle, verification_material=replace(material, rfc3161_timestamps=()))
    _reject("no integratedTime", verify_bundle_for_image, without_any, KUBEWARDEN_DIGEST, policy, WHERE)


def test_key_signed_dsse_bundle_round_trip(fake_log: _FakeLog) -> None:
    """A DSSE image signature made here with a key (cosign sign --key, new bundle format) verifies with that key."""
    signing_key = ec.generate_private_key(ec.SECP256R1())
    payload = json.dumps({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": KUBEWARDEN_DIGEST[7:]}, "annotations": {"env": "prod"}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }, separators=(",", ":")).encode()
    signature = signing_key.sign(dsse_pae("application/vnd.in-toto+json", payload), ec.ECDSA(hashes.SHA256()))
    body = {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": [{
                "signature": base64.b64encode(signature).decode(),
                "verifier": base64.b64encode(public_key_to_pem(signing_key.public_key())).decode(),
            }],
        },
    }
    template = _load(IMAGE_V3_FILES[0])
    bundle = replace(
        template,
        dsse_envelope=DsseEnvelope(payload, "application/vnd.in-toto+json", (DsseSignature(signature, ""),)),
        verification_material=replace(template.verification_material, certificate=None, rfc3161_timestamps=(),
                                      public_key_hint=None),
    )
    bundle = fake_log.resign(bundle, body)
    policy = VerificationPolicy(public_key=signing_key.public_key(), keyless=None, rekor_keys=(fake_log.public_key,))
    result = verify_bundle_for_image(bundle, KUBEWARDEN_DIGEST, policy, WHERE, {"env": "prod"})
    assert result.signer == "public key"
    _reject("annotation env=dev is missing .it has env=prod.", verify_bundle_for_image, bundle, KUBEWARDEN_DIGEST,
            policy, WHERE, {"env": "dev"})
    wrong = replace(policy, public_key=ec.generate_private_key(ec.SECP256R1()).public_key())
    _reject("DSSE signature does not verify", verify_bundle_for_image, bundle, KUBEWARDEN_DIGEST, wrong, WHERE)


def test_a_signed_payload_that_is_not_a_statement_is_rejected(fake_log: _FakeLog) -> None:
    signing_key = ec.generate_private_key(ec.SECP256R1())
    payload = b'{"critical":{}}'
    signature = signing_key.sign(dsse_pae("application/vnd.in-toto+json", payload), ec.ECDSA(hashes.SHA256()))
    template = _load(IMAGE_V3_FILES[0])
    bundle = replace(
        template,
        dsse_envelope=DsseEnvelope(payload, "application/vnd.in-toto+json", (DsseSignature(signature, ""),)),
    )
    policy = VerificationPolicy(public_key=signing_key.public_key(), keyless=None, rekor_keys=(fake_log.public_key,))
    _reject("the signed payload is unusable: the DSSE payload is not an in-toto Statement", verify_bundle_for_image,
            bundle, KUBEWARDEN_DIGEST, policy, WHERE)


def test_first_matching_entry_that_verifies_wins(kubewarden_policy: VerificationPolicy) -> None:
    bundle = _load(IMAGE_V3_FILES[0])
    good = bundle.verification_material.tlog_entries[0]
    bad = replace(good, signed_entry_timestamp=_flip(_set_of(bundle), 30))
    for entries in ((bad, good), (good, bad)):
        two = replace(bundle, verification_material=replace(bundle.verification_material, tlog_entries=entries))
        verify_bundle_for_image(two, KUBEWARDEN_DIGEST, kubewarden_policy, WHERE)
    both_bad = replace(bundle, verification_material=replace(bundle.verification_material, tlog_entries=(bad, bad)))
    _reject("SignedEntryTimestamp", verify_bundle_for_image, both_bad, KUBEWARDEN_DIGEST, kubewarden_policy, WHERE)


# --- second opinion: sigstore-python ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "identity", "issuer"),
    [
        (ATTEST / "oci-attestation.sigstore.json", CODY, GITHUB_OAUTH),
        (IMAGE_V3_FILES[0], KUBEWARDEN_SAN, GITHUB_ACTIONS),
    ],
    ids=["attestation", "image-v3"],
)
def test_sigstore_python_agrees_on_keyless_dsse_bundles(path: Any, identity: str, issuer: str) -> None:
    pytest.importorskip("sigstore")
    from sigstore.errors import VerificationError as SigstoreVerificationError
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    verifier = Verifier(trusted_root=TrustedRoot.from_file(str(TRUSTED_ROOT)))
    bundle = Bundle.from_json(path.read_bytes())
    payload_type, payload = verifier.verify_dsse(bundle, Identity(identity=identity, issuer=issuer))
    ours = _load(path).dsse_envelope
    assert ours is not None
    assert (payload_type, payload) == (ours.payload_type, ours.payload)
    with pytest.raises(SigstoreVerificationError):
        verifier.verify_dsse(bundle, Identity(identity="nobody@example.com", issuer=issuer))
