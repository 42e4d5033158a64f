"""DSSE (Dead Simple Signing Envelope) as Sigstore uses it (pure): the envelope model, the
pre-authentication encoding its signatures are over, and the ``dsse`` 0.0.1 Rekor entry body.

The Sigstore bundle model (:mod:`pipeline.sigstore.bundle`), the bundle writer, the Rekor client and
offline verification all build on this module; it imports none of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from pipeline import jsonbounded
from pipeline.cosign.rekor import check_same_signer
from pipeline.errors import VerificationError

IN_TOTO_PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
DSSE_KIND: Final = "dsse"
DSSE_API_VERSION: Final = "0.0.1"


@dataclass(frozen=True)
class DsseSignature:
    sig: bytes
    keyid: str


@dataclass(frozen=True)
class DsseEnvelope:
    payload: bytes
    payload_type: str
    signatures: tuple[DsseSignature, ...]


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 <len(type)> <type> <len(payload)> <payload>`` (byte lengths)."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def _json_object(value: object, name: str, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise VerificationError(f"the dsse log entry's {name} is missing or not an object", where=where)
    return value


def check_dsse_body(canonical_body: bytes, envelope: DsseEnvelope, signer_pem: bytes, where: str) -> None:
    """The dsse 0.0.1 body records this payload, this signature and this signer (envelopeHash is not used)."""
    try:
        body: object = jsonbounded.loads(canonical_body, source=where, what="the transparency-log entry body")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VerificationError("the transparency-log entry body is not JSON", where=where) from None
    body = _json_object(body, "body", where)
    if body.get("kind") != DSSE_KIND or body.get("apiVersion") != DSSE_API_VERSION:
        raise VerificationError(
            f"the log entry body is of kind {body.get('kind')} {body.get('apiVersion')}, not dsse 0.0.1", where=where
        )
    spec = _json_object(body.get("spec"), "spec", where)
    payload_hash = _json_object(spec.get("payloadHash"), "spec.payloadHash", where)
    if payload_hash.get("algorithm") != "sha256":
        raise VerificationError(
            f"the dsse log entry hashes the payload with {payload_hash.get('algorithm')!r}; only sha256 is supported",
            where=where,
        )
    expected = hashlib.sha256(envelope.payload).hexdigest()
    recorded = payload_hash.get("value")
    if not isinstance(recorded, str) or recorded.lower() != expected:
        raise VerificationError(
            f"the dsse log entry is for another payload (sha256:{recorded} in the log, sha256:{expected} here)",
            where=where,
        )
    signatures = spec.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != len(envelope.signatures):
        raise VerificationError(
            "the dsse log entry records a different number of signatures than the envelope holds", where=where
        )
    recorded_signature = _json_object(signatures[0], "spec.signatures[0]", where)
    content = recorded_signature.get("signature")
    try:
        recorded_bytes = base64.b64decode(content, validate=True) if isinstance(content, str) else None
    except (binascii.Error, ValueError):
        recorded_bytes = None
    if recorded_bytes != envelope.signatures[0].sig:
        raise VerificationError("the dsse log entry records a different signature than the envelope's", where=where)
    check_same_signer(recorded_signature.get("verifier"), signer_pem, where)
