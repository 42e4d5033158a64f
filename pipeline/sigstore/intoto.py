"""Attestations (pure): predicate types, the in-toto Statement v1 an attestation signs, the DSSE envelope as
cosign stores it in a ``.att`` layer, and the Rekor ``intoto`` 0.0.2 entry the legacy layout is logged as.

* ``--type``: cosign's short names (``cmd/cosign/cli/options/predicate.go`` ``PredicateTypeMap``) or a URI.
* The statement: ``{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":…,"digest":{"sha256":…}}],
  "predicateType":…,"predicate":{…}}``, compact, serialised once (cosign names the subject by the repository
  and the manifest digest). cosign's ``custom`` type wraps a raw predicate in ``{"Data","Timestamp"}`` and
  writes Statement v0.1; here every predicate is a JSON object and is used as it is.
* The ``.att`` layer blob: the envelope as Go's ``dsse.Envelope`` marshals it (``payloadType``, ``payload``,
  ``signatures[{keyid, sig}]``, the empty keyid kept).
* ``intoto`` 0.0.2 (rekor ``pkg/types/intoto/v0.0.2``): proposed with the envelope (payload and each ``sig``
  base64 of the base64 text, as Go's ``strfmt.Base64`` over the envelope's strings gives) and each signer's
  PEM; the canonical body keeps ``payloadType``, the signatures, ``hash`` (sha256 of the envelope JSON as
  sent) and ``payloadHash`` (sha256 of the statement), payload dropped; RFC 8785 canonical JSON (keys
  sorted), as Rekor stores every body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from pipeline import jsonbounded
from pipeline.cosign.rekor import check_same_signer
from pipeline.errors import InvalidInputError, UsageError, VerificationError
from pipeline.sigstore.bundle import COSIGN_ATTESTATION_PREDICATE_TYPE, IN_TOTO_STATEMENT_V1
from pipeline.sigstore.dsse import IN_TOTO_PAYLOAD_TYPE, DsseEnvelope, DsseSignature

INTOTO_KIND: Final = "intoto"
INTOTO_API_VERSION: Final = "0.0.2"
INTOTO_V001_API_VERSION: Final = "0.0.1"  # read only: cosign v1 and v2.0 logged .att layers so
PREDICATE_LIMIT: Final = 16 * 1024 * 1024
SLSA_PROVENANCE_V02: Final = "https://slsa.dev/provenance/v0.2"
SLSA_PROVENANCE_V1: Final = "https://slsa.dev/provenance/v1"

PREDICATE_TYPES: Final[Mapping[str, str]] = {
    "custom": COSIGN_ATTESTATION_PREDICATE_TYPE,
    "slsaprovenance": SLSA_PROVENANCE_V02,
    "slsaprovenance02": SLSA_PROVENANCE_V02,
    "slsaprovenance1": SLSA_PROVENANCE_V1,
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
    "link": "https://in-toto.io/Link/v1",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "openvex": "https://openvex.dev/ns",
}


def predicate_type_uri(value: str) -> str:
    """``--type``: a short name cosign knows, or an absolute URI (as Go's ``url.ParseRequestURI`` accepts)."""
    known = PREDICATE_TYPES.get(value)
    if known is not None:
        return known
    parts = urlsplit(value)
    if not parts.scheme or not (parts.netloc or parts.path) or any(c.isspace() for c in value):
        names = ", ".join(PREDICATE_TYPES)
        raise UsageError(f"invalid predicate type {value!r} (one of {names}, or a URI)")
    return value


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_predicate(data: bytes, where: str) -> Mapping[str, object]:
    """The predicate file: a JSON object (InvalidInputError otherwise, naming ``where``)."""
    if len(data) > PREDICATE_LIMIT:
        raise InvalidInputError(
            f"the predicate is too large ({len(data)} bytes; the limit is {PREDICATE_LIMIT} bytes)", where=where
        )
    try:
        document: object = jsonbounded.loads(data, source=where, what="the predicate", max_bytes=PREDICATE_LIMIT)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInputError("the predicate is not JSON", where=where) from None
    if not isinstance(document, dict):
        raise InvalidInputError("the predicate is not a JSON object", where=where)
    return document


def attestation_statement(
    subjects: list[tuple[str, str]],
    predicate_type: str,
    predicate: Mapping[str, object],
    *,
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    """The in-toto Statement v1 over ``subjects`` ((name, sha256 hex) pairs), compact, in the spec's field
    order; ``annotations`` (``-a k=v``), when given, on every subject."""
    extra = {"annotations": dict(annotations)} if annotations else {}
    return _compact(
        {
            "_type": IN_TOTO_STATEMENT_V1,
            "subject": [{"name": name, "digest": {"sha256": hex_digest}, **extra} for name, hex_digest in subjects],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
    )


def statement_predicate(payload: bytes, where: str) -> Mapping[str, object]:
    """The whole statement as a JSON object (for printing and ``--policy``); the payload was verified."""
    document: object = jsonbounded.loads(payload, source=where, what="the in-toto statement")
    if not isinstance(document, dict):
        raise VerificationError("the in-toto statement is not a JSON object", where=where)
    return document


# --- the envelope as a .att layer holds it ----------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def envelope_json(envelope: DsseEnvelope) -> bytes:
    """The envelope as Go's ``dsse.Envelope`` marshals it (what cosign stores as the ``.att`` layer blob)."""
    return _compact(
        {
            "payloadType": envelope.payload_type,
            "payload": _b64(envelope.payload),
            "signatures": [{"keyid": s.keyid, "sig": _b64(s.sig)} for s in envelope.signatures],
        }
    )


def _strict_b64(value: object, name: str, where: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidInputError(f"the DSSE envelope's {name} is missing or not a string", where=where)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"the DSSE envelope's {name} is not valid base64", where=where) from None


def parse_envelope_json(data: bytes, where: str) -> DsseEnvelope:
    """A DSSE envelope in JSON (``payloadType``, ``payload``, ``signatures[{keyid?, sig}]``)."""
    try:
        document: object = jsonbounded.loads(data, source=where, what="the DSSE envelope")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInputError("the DSSE envelope is not JSON", where=where) from None
    if not isinstance(document, dict):
        raise InvalidInputError("the DSSE envelope is not a JSON object", where=where)
    payload_type = document.get("payloadType")
    if not isinstance(payload_type, str):
        raise InvalidInputError("the DSSE envelope has no payloadType", where=where)
    payload = _strict_b64(document.get("payload"), "payload", where)
    raw = document.get("signatures")
    if not isinstance(raw, list) or not raw:
        raise InvalidInputError("the DSSE envelope has no signatures", where=where)
    signatures: list[DsseSignature] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidInputError(f"the DSSE envelope's signatures[{index}] is not an object", where=where)
        keyid = item.get("keyid", "")
        signatures.append(DsseSignature(_strict_b64(item.get("sig"), f"signatures[{index}].sig", where),
                                        keyid if isinstance(keyid, str) else ""))  # fmt: skip
    return DsseEnvelope(payload, payload_type, tuple(signatures))


# --- the Rekor intoto 0.0.2 entry ---------------------------------------------------------------


def intoto_proposal(envelope: DsseEnvelope, envelope_bytes: bytes, signer_pem: bytes) -> dict[str, object]:
    """The proposed ``intoto`` 0.0.2 entry, as cosign's ``--rekor-entry-type intoto`` posts it."""
    return {
        "apiVersion": INTOTO_API_VERSION,
        "kind": INTOTO_KIND,
        "spec": {
            "content": {
                "envelope": {
                    "payload": _b64(_b64(envelope.payload).encode("ascii")),
                    "payloadType": envelope.payload_type,
                    "signatures": [
                        {
                            **({"keyid": s.keyid} if s.keyid else {}),
                            "sig": _b64(_b64(s.sig).encode("ascii")),
                            "publicKey": _b64(signer_pem),
                        }
                        for s in envelope.signatures
                    ],
                },
                "hash": {"algorithm": "sha256", "value": hashlib.sha256(envelope_bytes).hexdigest()},
            }
        },
    }


def _object(value: object, name: str, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise VerificationError(f"the intoto log entry's {name} is missing or not an object", where=where)
    return value


def check_intoto_body(
    canonical_body: bytes, envelope: DsseEnvelope, signer_pem: bytes, where: str, *, blob: bytes | None = None
) -> None:
    """The ``intoto`` 0.0.2 body records this payload (payloadHash), this signature and this signer.

    ``hash`` (of the envelope JSON as uploaded) is not compared: the layer blob may be serialised otherwise.
    With ``blob`` (the exact envelope bytes a ``.att`` layer holds), an ``intoto`` 0.0.1 body is accepted too.
    """
    try:
        body: object = jsonbounded.loads(canonical_body, source=where, what="the transparency-log entry body")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VerificationError("the transparency-log entry body is not JSON", where=where) from None
    body = _object(body, "body", where)
    if blob is not None and body.get("kind") == INTOTO_KIND and body.get("apiVersion") == INTOTO_V001_API_VERSION:
        _check_intoto_v001_body(body, blob, envelope, signer_pem, where)
        return
    if body.get("kind") != INTOTO_KIND or body.get("apiVersion") != INTOTO_API_VERSION:
        raise VerificationError(
            f"the log entry body is of kind {body.get('kind')} {body.get('apiVersion')}, not intoto 0.0.2",
            where=where,
        )
    content = _object(_object(body.get("spec"), "spec", where).get("content"), "spec.content", where)
    _check_recorded_sha256(content, "payloadHash", "payload", envelope.payload, where)
    recorded_envelope = _object(content.get("envelope"), "spec.content.envelope", where)
    if recorded_envelope.get("payloadType") != envelope.payload_type:
        raise VerificationError("the intoto log entry records another payloadType", where=where)
    signatures = recorded_envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != len(envelope.signatures):
        raise VerificationError("the intoto log entry records another number of signatures", where=where)
    item = _object(signatures[0], "signatures[0]", where)
    try:
        inner = base64.b64decode(str(item.get("sig", "")), validate=True)
        recorded_sig = base64.b64decode(inner, validate=True)
    except (binascii.Error, ValueError):
        recorded_sig = b""
    if recorded_sig != envelope.signatures[0].sig:
        raise VerificationError("the log entry belongs to another envelope (another signature)", where=where)
    check_same_signer(item.get("publicKey"), signer_pem, where)


def _check_intoto_v001_body(
    body: Mapping[str, object], blob: bytes, envelope: DsseEnvelope, signer_pem: bytes, where: str
) -> None:
    """rekor's ``intoto`` 0.0.1 (what cosign v1 and v2.0 logged ``.att`` layers as): the body keeps no
    signature, only ``hash`` = sha256 of the envelope JSON exactly as uploaded (cosign uploads the layer
    blob itself), ``payloadHash`` = sha256 of the statement, and the signer's PEM. The envelope bytes
    carry the signature, so the hash is what binds the entry to this signature and must equal the blob's."""
    spec = _object(body.get("spec"), "spec", where)
    content = _object(spec.get("content"), "spec.content", where)
    _check_recorded_sha256(content, "hash", "hash", blob, where)
    _check_recorded_sha256(content, "payloadHash", "payloadHash", envelope.payload, where)
    check_same_signer(spec.get("publicKey"), signer_pem, where)


def _check_recorded_sha256(content: Mapping[str, object], name: str, label: str, data: bytes, where: str) -> None:
    """The entry's ``spec.content.<name>`` is ``{algorithm: sha256, value: <hex of data>}``; else it belongs
    to another envelope (``label`` names the value in the message)."""
    expected = hashlib.sha256(data).hexdigest()
    recorded_hash = _object(content.get(name), f"spec.content.{name}", where)
    recorded = recorded_hash.get("value")
    if recorded_hash.get("algorithm") != "sha256" or not isinstance(recorded, str) or recorded.lower() != expected:
        raise VerificationError(
            f"the log entry belongs to another envelope ({label} sha256:{recorded} in the log, sha256:{expected} here)",
            where=where,
        )


def canonical_intoto(proposed: Mapping[str, object], envelope: DsseEnvelope) -> bytes:
    """The canonical body a Rekor log stores for a proposed intoto 0.0.2 entry (the caller verified the
    envelope's signatures with the proposed keys): rekor's ``V002Entry.Canonicalize`` output."""
    spec = _object(proposed.get("spec"), "spec", "the proposed entry")
    content = _object(spec.get("content"), "spec.content", "the proposed entry")
    sent = _object(content.get("envelope"), "spec.content.envelope", "the proposed entry")
    hash_ = _object(content.get("hash"), "spec.content.hash", "the proposed entry")
    signatures = sent.get("signatures")
    assert isinstance(signatures, list)
    canonical_signatures = [
        {**({"keyid": s["keyid"]} if s.get("keyid") else {}), "publicKey": s["publicKey"], "sig": s["sig"]}
        for s in signatures
        if isinstance(s, dict)
    ]
    spec_out = {
        "content": {
            "envelope": {"payloadType": envelope.payload_type, "signatures": canonical_signatures},
            "hash": {"algorithm": hash_.get("algorithm"), "value": hash_.get("value")},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(envelope.payload).hexdigest()},
        }
    }
    return json.dumps({"apiVersion": INTOTO_API_VERSION, "kind": INTOTO_KIND, "spec": spec_out},
                      sort_keys=True, separators=(",", ":")).encode()  # fmt: skip


def in_toto_envelope(statement: bytes, signature: bytes) -> DsseEnvelope:
    """A one-signature envelope over a statement (no keyid, as cosign)."""
    return DsseEnvelope(statement, IN_TOTO_PAYLOAD_TYPE, (DsseSignature(signature, ""),))
