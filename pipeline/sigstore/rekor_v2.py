"""Rekor v2 (tile-based log) evidence, checked offline (pure): ``hashedrekord``/``dsse`` entries of kind
version 0.0.2, their inclusion proof and the C2SP signed-note checkpoint.

A Rekor v2 entry has no SignedEntryTimestamp and no integratedTime (checked against the real staging bundle
in ``tests/vectors/sigstore-rekor-v2/``). What proves it:

* the **inclusion proof** (RFC 6962 audit path from the canonicalized body to the root hash);
* the **checkpoint**, a C2SP signed note ``<origin>\\n<size>\\n<b64 root>\\n\\n— <name> <b64(keyhash[4] ‖ sig)>``,
  signed by the log key. The key hash is C2SP's: ``sha256(name ‖ "\\n" ‖ type ‖ key)`` with type 0x01 and the
  32 raw bytes of an Ed25519 key (checked: it is the trusted root's ``logId.keyId`` of each Rekor v2 shard,
  and the bundle's ``logId``); an ECDSA log key uses type 0x02 and its DER SPKI. The entry's ``logId`` must
  be that hash for a trusted key, so the entry and the checkpoint are the same log's.

The signing time comes from RFC 3161 timestamps only; :mod:`pipeline.sigstore.verify` refuses a v2 entry
without one that verifies.

Bodies (rekor-tiles ``pkg/types``; protojson, bytes as base64)::

    {"apiVersion":"0.0.2","kind":"hashedrekord","spec":{"hashedRekordV002":{
        "data":{"algorithm":"SHA2_256","digest":<b64>},
        "signature":{"content":<b64>,"verifier":{"keyDetails":…,"x509Certificate":{"rawBytes":<b64 DER>}
                                                  | "publicKey":{"rawBytes":<b64 DER SPKI>}}}}}}
    {"apiVersion":"0.0.2","kind":"dsse","spec":{"dsseV002":{
        "payloadHash":{"algorithm":"SHA2_256","digest":<b64>},
        "signatures":[{"content":<b64>,"verifier":{…as above…}}]}}}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pipeline import jsonbounded
from pipeline.cosign.keys import PublicKey, public_key_der
from pipeline.cosign.rekor import CHECKPOINT_KEY_HINT_SIZE, CHECKPOINT_SIGNATURE_PREFIX, LogEntry
from pipeline.errors import VerificationError
from pipeline.sigstore.bundle import TransparencyLogEntry

V2_VERSION: Final = "0.0.2"
_DIGESTS: Final = {"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}


@dataclass(frozen=True)
class RekorV2Entry:
    """A Rekor v2 answer, verified: the ``TransparencyLogEntry`` JSON as the log sent it, and its parse."""

    document: Mapping[str, object]
    entry: TransparencyLogEntry

    @property
    def log_index(self) -> int:
        return self.entry.log_index

    def tlog_entry_json(self) -> dict[str, object]:
        """The ``tlogEntries[]`` item: the log's answer as it was sent (it is already that message)."""
        return dict(self.document)


def c2sp_key_id(name: str, key: PublicKey) -> bytes:
    """The C2SP signed-note key hash of a log key under ``name`` (the first 4 bytes mark its signatures)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        material = b"\x01" + key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        material = b"\x02" + public_key_der(key)
    return hashlib.sha256(name.encode("utf-8") + b"\n" + material).digest()


def _verify(key: PublicKey, message: bytes, signature: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def verify_signed_note(
    envelope: str, trusted_keys: Sequence[PublicKey], log_id: bytes, root_hash: bytes, tree_size: int, where: str
) -> None:
    """The checkpoint is signed by the trusted key whose C2SP key hash is ``log_id`` and commits to
    ``tree_size`` and ``root_hash``. Signatures by other keys are ignored, as signed notes intend."""
    separator = envelope.find("\n\n")
    if separator < 0:
        raise VerificationError("the checkpoint is not a signed note (no blank line before the signatures)",
                                where=where)  # fmt: skip
    note = envelope[: separator + 1]
    lines = note.split("\n")[:-1]
    if len(lines) < 3 or not lines[1].isascii() or not lines[1].isdigit():
        raise VerificationError("the checkpoint lacks its origin, tree size or root hash", where=where)
    candidates = [(key, c2sp_key_id(lines[0], key)) for key in trusted_keys]
    verified = False
    for line in (line for line in envelope[separator + 2 :].split("\n") if line):
        if not line.startswith(CHECKPOINT_SIGNATURE_PREFIX) or " " not in line[len(CHECKPOINT_SIGNATURE_PREFIX) :]:
            raise VerificationError("the checkpoint has a malformed signature line", where=where)
        name, signature_b64 = line[len(CHECKPOINT_SIGNATURE_PREFIX) :].rsplit(" ", 1)
        try:
            raw = base64.b64decode(signature_b64, validate=True)
        except (binascii.Error, ValueError):
            raise VerificationError("the checkpoint has a signature that is not valid base64", where=where) from None
        hint, signature = raw[:CHECKPOINT_KEY_HINT_SIZE], raw[CHECKPOINT_KEY_HINT_SIZE:]
        for key, key_id in candidates:
            if key_id != log_id or c2sp_key_id(name, key)[:CHECKPOINT_KEY_HINT_SIZE] != hint:
                continue
            if not _verify(key, note.encode("utf-8"), signature):
                raise VerificationError("the checkpoint's signature does not verify with the log's key", where=where)
            verified = True
    if not verified:
        raise VerificationError("the checkpoint is signed by none of the trusted Rekor keys", where=where)
    try:
        checkpoint_root = base64.b64decode(lines[2], validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("the checkpoint's root hash is not valid base64", where=where) from None
    if int(lines[1]) != tree_size or checkpoint_root != root_hash:
        raise VerificationError("the checkpoint does not commit to the inclusion proof's tree", where=where)


def trusted_key_for_v2_log(log_id: bytes, origin: str, trusted_keys: Sequence[PublicKey], where: str) -> PublicKey:
    for key in trusted_keys:
        if c2sp_key_id(origin, key) == log_id:
            return key
    raise VerificationError(
        f"the Rekor v2 entry's logId {log_id.hex()} matches none of the {len(trusted_keys)} trusted Rekor keys",
        where=where,
    )


# --- bodies -------------------------------------------------------------------------------------


def _object(value: object, name: str, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise VerificationError(f"the Rekor v2 entry's {name} is missing or not an object", where=where)
    return value


def _b64(value: object, name: str, where: str) -> bytes:
    try:
        if isinstance(value, str):
            return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        pass
    raise VerificationError(f"the Rekor v2 entry's {name} is not base64", where=where)


def _body(canonical_body: bytes, kind: str, spec_key: str, where: str) -> Mapping[str, object]:
    try:
        body: object = jsonbounded.loads(canonical_body, source=where, what="the transparency-log entry body")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VerificationError("the transparency-log entry body is not JSON", where=where) from None
    body = _object(body, "body", where)
    if body.get("kind") != kind or body.get("apiVersion") != V2_VERSION:
        raise VerificationError(
            f"the log entry body is of kind {body.get('kind')} {body.get('apiVersion')}, not {kind} {V2_VERSION}",
            where=where,
        )
    return _object(_object(body.get("spec"), "spec", where).get(spec_key), f"spec.{spec_key}", where)


def _check_verifier(verifier: object, signer_der: bytes, signer_spki: bytes, where: str) -> None:
    """The entry's verifier names the signer: the same certificate, or the same public key."""
    verifier = _object(verifier, "signature.verifier", where)
    certificate = verifier.get("x509Certificate")
    if certificate is not None:
        recorded = _b64(_object(certificate, "verifier.x509Certificate", where).get("rawBytes"),
                        "verifier.x509Certificate.rawBytes", where)  # fmt: skip
        if recorded != signer_der:
            raise VerificationError("the Rekor v2 entry records a different certificate than the signer's",
                                    where=where)  # fmt: skip
        return
    recorded = _b64(_object(verifier.get("publicKey"), "verifier.publicKey", where).get("rawBytes"),
                    "verifier.publicKey.rawBytes", where)  # fmt: skip
    if recorded != signer_spki:
        raise VerificationError("the Rekor v2 entry records a different public key than the signer's", where=where)


def _check_digest(
    recorded: Mapping[str, object], data: bytes, what: str, where: str, digest: tuple[str, bytes] | None = None
) -> None:
    """The recorded digest is ``data``'s (or, when only the digest is known, ``digest``: (algorithm, bytes))."""
    algorithm = _DIGESTS.get(str(recorded.get("algorithm")))
    if algorithm is None:
        raise VerificationError(f"the Rekor v2 entry hashes with {recorded.get('algorithm')!r}", where=where)
    if digest is not None and digest[0] != algorithm:
        raise VerificationError(f"the Rekor v2 entry hashes with {algorithm}, not {digest[0]}", where=where)
    expected = digest[1] if digest is not None else hashlib.new(algorithm, data).digest()
    if _b64(recorded.get("digest"), "digest", where) != expected:
        raise VerificationError(f"the Rekor v2 entry is for another {what}", where=where)


def check_hashedrekord_v002(
    canonical_body: bytes,
    artifact: bytes,
    signature: bytes,
    signer_der: bytes,
    signer_spki: bytes,
    where: str,
    *,
    digest: tuple[str, bytes] | None = None,
) -> None:
    """The hashedrekord 0.0.2 body records this artifact's digest (or ``digest``, (hashlib name, bytes), when
    only that is known, as when signing), this signature and this signer."""
    spec = _body(canonical_body, "hashedrekord", "hashedRekordV002", where)
    _check_digest(_object(spec.get("data"), "data", where), artifact, "artifact", where, digest)
    recorded = _object(spec.get("signature"), "signature", where)
    if _b64(recorded.get("content"), "signature.content", where) != signature:
        raise VerificationError("the Rekor v2 entry records a different signature than the bundle's", where=where)
    _check_verifier(recorded.get("verifier"), signer_der, signer_spki, where)


def check_dsse_v002(
    canonical_body: bytes, payload: bytes, signature: bytes, signer_der: bytes, signer_spki: bytes, where: str
) -> None:
    """The dsse 0.0.2 body records this payload's digest, this (one) signature and this signer."""
    spec = _body(canonical_body, "dsse", "dsseV002", where)
    _check_digest(_object(spec.get("payloadHash"), "payloadHash", where), payload, "payload", where)
    signatures = spec.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise VerificationError("the Rekor v2 dsse entry does not record exactly one signature", where=where)
    recorded = _object(signatures[0], "signatures[0]", where)
    if _b64(recorded.get("content"), "signatures[0].content", where) != signature:
        raise VerificationError("the Rekor v2 entry records a different signature than the envelope's", where=where)
    _check_verifier(recorded.get("verifier"), signer_der, signer_spki, where)


def entry_log_index(entry: LogEntry | RekorV2Entry) -> int:
    """The log index of a v1 or v2 answer (what ``sign-blob`` reports)."""
    return entry.log_index if isinstance(entry, RekorV2Entry) else entry.bundle.log_index
