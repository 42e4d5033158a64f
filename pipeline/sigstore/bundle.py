"""Sigstore bundles as frozen data, read from their JSON form (pure: no network, no I/O).

A bundle (``dev.sigstore.bundle.v1.Bundle``, serialised with protojson) holds one signature and the
evidence to check it offline::

    {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
     "verificationMaterial": {
        "publicKey": {"hint": "<b64 sha256(DER SPKI)>"}          # or
        "certificate": {"rawBytes": "<b64 DER leaf>"}             # or (v0.1/v0.2)
        "x509CertificateChain": {"certificates": [{"rawBytes": …}, …]},
        "tlogEntries": [{"logIndex": "<int64>", "logId": {"keyId": "<b64>"},
                         "kindVersion": {"kind": "hashedrekord"|"dsse", "version": "0.0.1"},
                         "integratedTime": "<int64>",
                         "inclusionPromise": {"signedEntryTimestamp": "<b64>"},
                         "inclusionProof": {"logIndex", "rootHash", "treeSize", "hashes": […],
                                            "checkpoint": {"envelope": "<signed note>"}},
                         "canonicalizedBody": "<b64>"}],
        "timestampVerificationData": {"rfc3161Timestamps": [{"signedTimestamp": "<b64>"}]}},
     "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": "<b64>"}, "signature": "<b64>"}
     | "dsseEnvelope": {"payload": "<b64>", "payloadType": "…", "signatures": [{"sig": "<b64>", "keyid": "…"}]}}

protojson conventions apply: int64 values are JSON strings (numbers are accepted too), bytes are
standard base64, and fields holding a zero value (``0``, ``""``, empty bytes) are left out, so a missing
integer reads as 0. Field names are the lowerCamel JSON names protojson writes.

The DSSE payload is parsed only on demand (:func:`parse_in_toto_statement`): an envelope may carry other
payload types, and the payload is untrusted until its signature verifies.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from pipeline import jsonbounded
from pipeline.errors import InvalidInputError
from pipeline.sigstore.dsse import DsseEnvelope, DsseSignature

BUNDLE_MEDIA_TYPE_PREFIX: Final = "application/vnd.dev.sigstore.bundle"
# media type -> (major, minor) bundle version
BUNDLE_MEDIA_TYPES: Final[Mapping[str, tuple[int, int]]] = {
    "application/vnd.dev.sigstore.bundle+json;version=0.1": (0, 1),
    "application/vnd.dev.sigstore.bundle+json;version=0.2": (0, 2),
    "application/vnd.dev.sigstore.bundle+json;version=0.3": (0, 3),
    "application/vnd.dev.sigstore.bundle.v0.3+json": (0, 3),
}
IN_TOTO_STATEMENT_V1: Final = "https://in-toto.io/Statement/v1"
IN_TOTO_STATEMENT_V01: Final = "https://in-toto.io/Statement/v0.1"
IN_TOTO_STATEMENT_TYPES: Final = frozenset({IN_TOTO_STATEMENT_V1, IN_TOTO_STATEMENT_V01})
COSIGN_SIGN_PREDICATE_TYPE: Final = "https://sigstore.dev/cosign/sign/v1"
COSIGN_ATTESTATION_PREDICATE_TYPE: Final = "https://cosign.sigstore.dev/attestation/v1"
SHA2_256: Final = "SHA2_256"


# --- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InclusionProof:
    """An RFC 6962 audit path. ``log_index`` is the shard-local index the path is for."""

    log_index: int
    root_hash: bytes
    tree_size: int
    hashes: tuple[bytes, ...]
    checkpoint: str | None  # the signed note text of ``checkpoint.envelope``


@dataclass(frozen=True)
class TransparencyLogEntry:
    """One ``tlogEntries[]`` item. ``log_index`` is the global index (the one the SET signs)."""

    log_index: int
    log_id: bytes  # logId.keyId: sha256 of the log's DER SPKI for Rekor v1
    kind: str
    kind_version: str
    integrated_time: int  # 0 when absent (Rekor v2 entries carry none)
    signed_entry_timestamp: bytes | None
    inclusion_proof: InclusionProof | None
    canonicalized_body: bytes

    @property
    def log_id_hex(self) -> str:
        return self.log_id.hex()


@dataclass(frozen=True)
class VerificationMaterial:
    """Exactly one of a key hint, a leaf certificate, or a certificate chain (leaf first), plus evidence.

    ``rfc3161_timestamps`` holds the DER of each ``signedTimestamp`` as given (:mod:`pipeline.sigstore.verify`
    verifies them).
    """

    public_key_hint: str | None
    certificate: bytes | None  # DER of the leaf, from ``certificate`` or the chain's first element
    chain: tuple[bytes, ...]  # DER of the ``x509CertificateChain`` certificates after the leaf
    tlog_entries: tuple[TransparencyLogEntry, ...]
    rfc3161_timestamps: tuple[bytes, ...]


@dataclass(frozen=True)
class MessageSignature:
    """A signature over the artifact bytes; ``digest`` is the artifact's digest as the signer stated it."""

    digest_algorithm: str | None  # e.g. "SHA2_256"; None when the bundle states no digest
    digest: bytes
    signature: bytes


@dataclass(frozen=True)
class SigstoreBundle:
    """A parsed bundle; exactly one of ``message_signature`` and ``dsse_envelope`` is set."""

    media_type: str
    verification_material: VerificationMaterial
    message_signature: MessageSignature | None
    dsse_envelope: DsseEnvelope | None

    @property
    def version(self) -> tuple[int, int]:
        return BUNDLE_MEDIA_TYPES[self.media_type]


@dataclass(frozen=True)
class InTotoSubject:
    name: str | None
    digest: Mapping[str, str]  # algorithm -> lower-case hex
    annotations: Mapping[str, object]


@dataclass(frozen=True)
class InTotoStatement:
    type: str
    predicate_type: str
    subjects: tuple[InTotoSubject, ...]


# --- JSON helpers -------------------------------------------------------------------------------


def _object(value: object, name: str, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"the Sigstore bundle's {name} is missing or not a JSON object", where=where)
    return value


def _optional_object(value: object, name: str, where: str) -> Mapping[str, object] | None:
    return None if value is None else _object(value, name, where)


def _list(value: object, name: str, where: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInputError(f"the Sigstore bundle's {name} is not a JSON array", where=where)
    return value


def _string(value: object, name: str, where: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InvalidInputError(f"the Sigstore bundle's {name} is missing or not a string", where=where)
    return value


def _bytes(value: object, name: str, where: str) -> bytes:
    """protojson bytes: standard base64 with padding; required and non-empty wherever this is used."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"the Sigstore bundle's {name} is missing or not a base64 string", where=where)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"the Sigstore bundle's {name} is not valid base64", where=where) from None


def _int64(value: object, name: str, where: str) -> int:
    """protojson int64: a decimal string (or a JSON integer); absent means 0. Negative values are refused."""
    if value is None:
        return 0
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if type(value) is int and value >= 0:
        return value
    raise InvalidInputError(f"the Sigstore bundle's {name} is not a non-negative integer", where=where)


# --- the parser ---------------------------------------------------------------------------------


def is_sigstore_bundle(document: Mapping[str, object]) -> bool:
    """Whether a decoded JSON object claims to be a Sigstore bundle (any version), by its mediaType.

    cosign's legacy ``--bundle`` file (``base64Signature``, ``cert``, ``rekorBundle``) has no mediaType.
    """
    media_type = document.get("mediaType")
    return isinstance(media_type, str) and media_type.startswith(BUNDLE_MEDIA_TYPE_PREFIX)


def _parse_inclusion_proof(value: Mapping[str, object], name: str, where: str) -> InclusionProof:
    hashes = tuple(
        _bytes(item, f"{name}.hashes[{index}]", where)
        for index, item in enumerate(_list(value.get("hashes"), f"{name}.hashes", where))
    )
    checkpoint = _optional_object(value.get("checkpoint"), f"{name}.checkpoint", where)
    envelope = None if checkpoint is None else _string(checkpoint.get("envelope"), f"{name}.checkpoint.envelope", where)
    return InclusionProof(
        log_index=_int64(value.get("logIndex"), f"{name}.logIndex", where),
        root_hash=_bytes(value.get("rootHash"), f"{name}.rootHash", where),
        tree_size=_int64(value.get("treeSize"), f"{name}.treeSize", where),
        hashes=hashes,
        checkpoint=envelope,
    )


def _parse_tlog_entry(value: object, name: str, where: str, version: tuple[int, int]) -> TransparencyLogEntry:
    entry = _object(value, name, where)
    log_id = _object(entry.get("logId"), f"{name}.logId", where)
    kind_version = _object(entry.get("kindVersion"), f"{name}.kindVersion", where)
    promise = _optional_object(entry.get("inclusionPromise"), f"{name}.inclusionPromise", where)
    proof = _optional_object(entry.get("inclusionProof"), f"{name}.inclusionProof", where)
    if proof is None and version >= (0, 2):
        raise InvalidInputError(
            f"the Sigstore bundle's {name} has no inclusionProof, which bundle v0.2 and later require", where=where
        )
    return TransparencyLogEntry(
        log_index=_int64(entry.get("logIndex"), f"{name}.logIndex", where),
        log_id=_bytes(log_id.get("keyId"), f"{name}.logId.keyId", where),
        kind=_string(kind_version.get("kind"), f"{name}.kindVersion.kind", where),
        kind_version=_string(kind_version.get("version"), f"{name}.kindVersion.version", where),
        integrated_time=_int64(entry.get("integratedTime"), f"{name}.integratedTime", where),
        signed_entry_timestamp=None
        if promise is None
        else _bytes(promise.get("signedEntryTimestamp"), f"{name}.inclusionPromise.signedEntryTimestamp", where),
        inclusion_proof=None if proof is None else _parse_inclusion_proof(proof, f"{name}.inclusionProof", where),
        canonicalized_body=_bytes(entry.get("canonicalizedBody"), f"{name}.canonicalizedBody", where),
    )


def parse_tlog_entry(value: object, where: str) -> TransparencyLogEntry:
    """One ``TransparencyLogEntry`` (protojson) on its own, as a Rekor v2 log answers ``POST /api/v2/log/entries``."""
    return _parse_tlog_entry(value, "TransparencyLogEntry", where, (0, 3))


def _parse_verification_material(
    value: object, where: str, version: tuple[int, int]
) -> VerificationMaterial:
    material = _object(value, "verificationMaterial", where)
    present = [name for name in ("publicKey", "certificate", "x509CertificateChain") if material.get(name) is not None]
    if len(present) != 1:
        raise InvalidInputError(
            "the Sigstore bundle's verificationMaterial must hold exactly one of publicKey, certificate and"
            f" x509CertificateChain (it holds {', '.join(present) or 'none'})",
            where=where,
        )
    hint: str | None = None
    leaf: bytes | None = None
    chain: tuple[bytes, ...] = ()
    if present[0] == "publicKey":
        public_key = _object(material["publicKey"], "verificationMaterial.publicKey", where)
        hint = _string(public_key.get("hint"), "verificationMaterial.publicKey.hint", where, required=False) or None
    elif present[0] == "certificate":
        certificate = _object(material["certificate"], "verificationMaterial.certificate", where)
        leaf = _bytes(certificate.get("rawBytes"), "verificationMaterial.certificate.rawBytes", where)
    else:
        name = "verificationMaterial.x509CertificateChain"
        holder = _object(material["x509CertificateChain"], name, where)
        certificates = [
            _bytes(_object(item, f"{name}.certificates[{index}]", where).get("rawBytes"),
                   f"{name}.certificates[{index}].rawBytes", where)
            for index, item in enumerate(_list(holder.get("certificates"), f"{name}.certificates", where))
        ]
        if not certificates:
            raise InvalidInputError(f"the Sigstore bundle's {name} holds no certificate", where=where)
        leaf, chain = certificates[0], tuple(certificates[1:])
    entries = tuple(
        _parse_tlog_entry(item, f"tlogEntries[{index}]", where, version)
        for index, item in enumerate(_list(material.get("tlogEntries"), "verificationMaterial.tlogEntries", where))
    )
    timestamp_data = _optional_object(
        material.get("timestampVerificationData"), "verificationMaterial.timestampVerificationData", where
    )
    timestamps: tuple[bytes, ...] = ()
    if timestamp_data is not None:
        name = "timestampVerificationData.rfc3161Timestamps"
        timestamps = tuple(
            _bytes(_object(item, f"{name}[{index}]", where).get("signedTimestamp"),
                   f"{name}[{index}].signedTimestamp", where)
            for index, item in enumerate(_list(timestamp_data.get("rfc3161Timestamps"), name, where))
        )
    return VerificationMaterial(hint, leaf, chain, entries, timestamps)


def _parse_message_signature(value: object, where: str) -> MessageSignature:
    message = _object(value, "messageSignature", where)
    digest = _optional_object(message.get("messageDigest"), "messageSignature.messageDigest", where)
    algorithm: str | None = None
    digest_bytes = b""
    if digest is not None:
        algorithm = _string(digest.get("algorithm"), "messageSignature.messageDigest.algorithm", where)
        digest_bytes = _bytes(digest.get("digest"), "messageSignature.messageDigest.digest", where)
    return MessageSignature(
        digest_algorithm=algorithm,
        digest=digest_bytes,
        signature=_bytes(message.get("signature"), "messageSignature.signature", where),
    )


def _parse_dsse_envelope(value: object, where: str) -> DsseEnvelope:
    envelope = _object(value, "dsseEnvelope", where)
    signatures: list[DsseSignature] = []
    for index, item in enumerate(_list(envelope.get("signatures"), "dsseEnvelope.signatures", where)):
        name = f"dsseEnvelope.signatures[{index}]"
        signature = _object(item, name, where)
        signatures.append(
            DsseSignature(
                sig=_bytes(signature.get("sig"), f"{name}.sig", where),
                keyid=_string(signature.get("keyid"), f"{name}.keyid", where, required=False),
            )
        )
    if not signatures:
        raise InvalidInputError("the Sigstore bundle's dsseEnvelope has no signature", where=where)
    return DsseEnvelope(
        payload=_bytes(envelope.get("payload"), "dsseEnvelope.payload", where),
        payload_type=_string(envelope.get("payloadType"), "dsseEnvelope.payloadType", where),
        signatures=tuple(signatures),
    )


def parse_sigstore_bundle(data: bytes, where: str) -> SigstoreBundle:
    """Read a bundle's JSON bytes; InvalidInputError (naming ``where``) if they are not a bundle we read."""
    try:
        document: object = jsonbounded.loads(data, source=where, what="the Sigstore bundle")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInputError("the Sigstore bundle is not JSON", where=where) from None
    if not isinstance(document, Mapping):
        raise InvalidInputError("the Sigstore bundle is not a JSON object", where=where)
    media_type = document.get("mediaType")
    if not isinstance(media_type, str) or media_type not in BUNDLE_MEDIA_TYPES:
        raise InvalidInputError(
            f"unsupported Sigstore bundle media type {media_type!r} (versions 0.1 to 0.3 are read)", where=where
        )
    version = BUNDLE_MEDIA_TYPES[media_type]
    material = _parse_verification_material(document.get("verificationMaterial"), where, version)
    has_message, has_dsse = document.get("messageSignature") is not None, document.get("dsseEnvelope") is not None
    if has_message == has_dsse:
        raise InvalidInputError(
            "the Sigstore bundle must hold exactly one of messageSignature and dsseEnvelope", where=where
        )
    return SigstoreBundle(
        media_type=media_type,
        verification_material=material,
        message_signature=_parse_message_signature(document["messageSignature"], where) if has_message else None,
        dsse_envelope=_parse_dsse_envelope(document["dsseEnvelope"], where) if has_dsse else None,
    )


# --- the in-toto statement inside a DSSE envelope ---------------------------------------------


def parse_in_toto_statement(payload: bytes, where: str) -> InTotoStatement:
    """An in-toto Statement v1 or v0.1 (``_type``, ``subject[]``, ``predicateType``); the predicate is ignored."""
    try:
        document: object = jsonbounded.loads(payload, source=where, what="the in-toto statement")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInputError("the DSSE payload is not JSON", where=where) from None
    if not isinstance(document, Mapping):
        raise InvalidInputError("the DSSE payload is not a JSON object", where=where)
    statement_type = document.get("_type")
    if statement_type not in IN_TOTO_STATEMENT_TYPES:
        raise InvalidInputError(f"the DSSE payload is not an in-toto Statement (_type {statement_type!r})", where=where)
    assert isinstance(statement_type, str)
    predicate_type = document.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise InvalidInputError("the in-toto Statement has no predicateType", where=where)
    raw_subjects = document.get("subject")
    if not isinstance(raw_subjects, list) or not raw_subjects:
        raise InvalidInputError("the in-toto Statement has no subject", where=where)
    subjects: list[InTotoSubject] = []
    for index, raw in enumerate(raw_subjects):
        if not isinstance(raw, Mapping):
            raise InvalidInputError(f"the in-toto Statement's subject[{index}] is not an object", where=where)
        name, digest, annotations = raw.get("name"), raw.get("digest"), raw.get("annotations", {})
        if name is not None and not isinstance(name, str):
            raise InvalidInputError(f"the in-toto Statement's subject[{index}].name is not a string", where=where)
        if not isinstance(digest, Mapping) or not all(isinstance(v, str) for v in digest.values()):
            raise InvalidInputError(
                f"the in-toto Statement's subject[{index}].digest is not an object of strings", where=where
            )
        if not isinstance(annotations, Mapping):
            raise InvalidInputError(
                f"the in-toto Statement's subject[{index}].annotations is not an object", where=where
            )
        subjects.append(
            InTotoSubject(
                name=name or None,
                digest={str(k): str(v).lower() for k, v in digest.items()},
                annotations=dict(annotations),
            )
        )
    return InTotoStatement(statement_type, predicate_type, tuple(subjects))


def statement_subject_digests(bundle: SigstoreBundle, where: str = "the Sigstore bundle") -> list[str]:
    """``<algorithm>:<hex>`` of every subject of the bundle's in-toto statement, for reports.

    Empty for a messageSignature bundle (it has no statement). The payload is read as is: call this on a
    verified bundle when the answer matters.
    """
    envelope = bundle.dsse_envelope
    if envelope is None:
        return []
    statement = parse_in_toto_statement(envelope.payload, where)
    return [f"{algorithm}:{value}" for subject in statement.subjects for algorithm, value in subject.digest.items()]
