"""cosign's legacy ``dev.sigstore.cosign/rfc3161timestamp`` annotation, read by verification: a timestamp over the
signature from a trusted TSA (the TSA stand-in) is a verified time; one over another signature is reported."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.cosign.timestamp import TimestampAuthority, parse_rfc3161_annotation
from pipeline.cosign.verify import VerificationPolicy, verify_signed_payload
from pipeline.errors import InvalidInputError
from pipeline.rehearsal.tsa_server import TimestampAuthority as TsaStandIn

PAYLOAD = b'{"critical":{}}'


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
    for response, check in ((good, "annotation over the signature verified"), (other, "did not verify")):
        parsed = parse_rfc3161_annotation(_annotation(response), "layer")
        result = verify_signed_payload(PAYLOAD, signature, certificate_pem=None, chain_pem=None, rekor_bundle=None,
                                       policy=policy, where="layer", rfc3161_timestamp=parsed)  # fmt: skip
        assert any(check in line for line in result.checks), result.checks


@pytest.mark.parametrize("value", ["not json", "{}", '{"SignedRFC3161Timestamp": "!!"}'])
def test_a_malformed_annotation_is_invalid_input(value: str) -> None:
    with pytest.raises(InvalidInputError, match="RFC 3161 timestamp annotation"):
        parse_rfc3161_annotation(value, "layer")


def test_an_att_layers_timestamp_counts_over_the_envelope_or_its_signature() -> None:
    """cosign checks an attestation's timestamp over the layer's bytes (cosign v2 stamped those); cosign v3
    stamps the DSSE signature, as a bundle's: a ``.att`` layer verifies with either, and with neither the
    timestamp is no time (reported), while the envelope's own checks still decide."""
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
    for number, (stamped, verified) in enumerate(((blob, True), (signature, True), (b"another envelope", False))):
        response = tsa.timestamp(hashlib.sha256(stamped).digest(), number + 1, at)
        annotations = {"dev.sigstore.cosign/rfc3161timestamp": _annotation(response)}
        _, result = verify_envelope_layer(blob, annotations, policy, "layer")
        expected = ("the RFC 3161 timestamp annotation verified" if verified
                    else "the RFC 3161 timestamp annotation did not verify and was not used")  # fmt: skip
        assert any(line.startswith(expected) for line in result.checks), result.checks
