"""cosign's legacy ``dev.sigstore.cosign/rfc3161timestamp`` annotation, read by verification: a timestamp over the
signature from a trusted TSA (the TSA stand-in) is a verified time; one over another signature is reported."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.cosign.timestamp import TimestampAuthority, parse_rfc3161_annotation
from pipeline.cosign.verify import VerificationPolicy, verify_signed_payload
from pipeline.errors import InvalidInputError, VerificationError
from pipeline.rehearsal.tsa_server import TimestampAuthority as TsaStandIn

PAYLOAD = b'{"critical":{}}'
SHIPPED_ROOT = Path(__file__).resolve().parents[2] / "pipeline" / "data" / "trusted_root.json"


def _annotation(response: bytes) -> str:
    return json.dumps({"SignedRFC3161Timestamp": base64.b64encode(response).decode()})


def test_a_legacy_timestamp_annotation_is_verified_over_the_signature() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signature = key.sign(PAYLOAD, ec.ECDSA(hashes.SHA256()))
    tsa = TsaStandIn()
    at = datetime.now(UTC) - timedelta(minutes=1)
    good = tsa.timestamp(hashlib.sha256(signature).digest(), 1, at)
    other = tsa.timestamp(hashlib.sha256(b"another signature").digest(), 2, at)
    policy = VerificationPolicy(key.public_key(), None, (), ignore_tlog=True,
                                timestamp_authorities=(TimestampAuthority(tsa.chain),))  # fmt: skip

    def verify(response: bytes, policy: VerificationPolicy) -> tuple[str, ...]:
        parsed = parse_rfc3161_annotation(_annotation(response), "layer")
        return verify_signed_payload(PAYLOAD, signature, certificate_pem=None, chain_pem=None, rekor_bundle=None,
                                     policy=policy, where="layer", rfc3161_timestamp=parsed).checks  # fmt: skip

    assert any("annotation over the signature verified" in line for line in verify(good, policy))
    # Over another signature: no time, reported (the shipped root's TSAs: cosign checks no timestamp then) ...
    assert any("did not verify and was not used: the RFC 3161 timestamp does not verify: it is a timestamp over"
               " other data, not over this signature" in line for line in verify(other, policy))
    # ... and with the TSAs' trust given (--trusted-root), cosign's legacy verifier fails it, and so do we.
    with pytest.raises(VerificationError, match="the RFC 3161 timestamp annotation does not verify"):
        verify(other, replace(policy, strict_timestamps=True))
    unchecked = verify(other, replace(policy, timestamp_authorities=()))  # nothing to check it against
    assert "the RFC 3161 timestamp annotation was NOT verified: no timestamp authority is trusted" in unchecked


@pytest.mark.parametrize("value", ["not json", "{}", '{"SignedRFC3161Timestamp": "!!"}'])
def test_a_malformed_annotation_is_invalid_input(value: str) -> None:
    with pytest.raises(InvalidInputError, match="RFC 3161 timestamp annotation"):
        parse_rfc3161_annotation(value, "layer")


def test_an_att_layers_timestamp_counts_over_the_envelope_or_its_signature() -> None:
    """cosign checks an attestation's timestamp over the layer's bytes (cosign v2 stamped those); cosign v3
    stamps the DSSE signature, as a bundle's: a ``.att`` layer verifies with either, and with neither the
    timestamp is no time, or, with the TSAs' trust given, fails the layer (cosign's legacy verifier)."""
    from pipeline.signatures.att_legacy import verify_envelope_layer
    from pipeline.sigstore.dsse import IN_TOTO_PAYLOAD_TYPE, dsse_pae
    from pipeline.sigstore.intoto import envelope_json, in_toto_envelope

    key = ec.generate_private_key(ec.SECP256R1())
    statement = b'{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}'
    signature = key.sign(dsse_pae(IN_TOTO_PAYLOAD_TYPE, statement), ec.ECDSA(hashes.SHA256()))
    blob = envelope_json(in_toto_envelope(statement, signature))
    tsa = TsaStandIn()
    at = datetime.now(UTC) - timedelta(minutes=1)
    policy = VerificationPolicy(key.public_key(), None, (), ignore_tlog=True,
                                timestamp_authorities=(TimestampAuthority(tsa.chain),))  # fmt: skip
    for number, stamped in enumerate((blob, signature)):
        response = tsa.timestamp(hashlib.sha256(stamped).digest(), number + 1, at)
        annotations = {"dev.sigstore.cosign/rfc3161timestamp": _annotation(response)}
        _, result = verify_envelope_layer(blob, annotations, policy, "layer")
        assert any(line.startswith("the RFC 3161 timestamp annotation verified") for line in result.checks)
    # Over neither: no time (reported); with the TSAs' trust given, as cosign, it fails the layer.
    response = tsa.timestamp(hashlib.sha256(b"another envelope").digest(), 3, at)
    annotations = {"dev.sigstore.cosign/rfc3161timestamp": _annotation(response)}
    _, result = verify_envelope_layer(blob, annotations, policy, "layer")
    assert any(line.startswith("the RFC 3161 timestamp annotation did not verify and was not used")
               for line in result.checks), result.checks  # fmt: skip
    with pytest.raises(VerificationError, match="the RFC 3161 timestamp annotation does not verify"):
        verify_envelope_layer(blob, annotations, replace(policy, strict_timestamps=True), "layer")
    # No TSA trusted: nothing to check it against; said so, and the envelope's own checks decide.
    _, result = verify_envelope_layer(blob, annotations, replace(policy, timestamp_authorities=()), "layer")
    assert "the RFC 3161 timestamp annotation was NOT verified: no timestamp authority is trusted" in result.checks


def test_timestamps_are_strict_only_when_their_trust_is_given(tmp_path: Path) -> None:
    """cosign checks a legacy timestamp only when given the TSA's trust (then fails hard): here, a
    ``--trusted-root``; with the shipped root a timestamp that does not verify is only reported."""
    from pipeline.cosign.keys import public_key_to_pem
    from pipeline.cosign.policy import TrustOptions, build_policy

    key = tmp_path / "cosign.pub"
    key.write_bytes(public_key_to_pem(ec.generate_private_key(ec.SECP256R1()).public_key()))
    root = tmp_path / "root.json"
    root.write_bytes(SHIPPED_ROOT.read_bytes())

    def policy(trust: TrustOptions) -> VerificationPolicy:
        return build_policy(key, trust, read=lambda path, _what: path.read_bytes(), warn=lambda _text: None)

    assert policy(TrustOptions()).strict_timestamps is False
    assert policy(TrustOptions(trusted_root=root)).strict_timestamps is True
