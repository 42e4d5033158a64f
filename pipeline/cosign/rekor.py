"""Offline checks of Rekor transparency-log evidence (pure: no network, no I/O).

Two shapes of evidence are handled here:

* The **legacy Rekor bundle** cosign stores in the ``dev.sigstore.cosign/bundle`` layer annotation and
  in ``cosign sign-blob --bundle``'s ``rekorBundle`` field::

      {"SignedEntryTimestamp": "<b64 DER ECDSA>",
       "Payload": {"body": "<b64 entry>", "integratedTime": 1674251859, "logIndex": 11608800,
                   "logID": "<hex sha256 of the log's DER public key>"}}

  The SignedEntryTimestamp (SET) is the log's signature over the canonical JSON of ``Payload``: keys
  sorted by code point (``body, integratedTime, logID, logIndex``), no whitespace, integers as plain
  numbers. The body is the canonical Rekor entry; only ``hashedrekord`` 0.0.1 is accepted here, since
  that is the kind cosign's simple-signing signatures and ``sign-blob`` produce.

* The **inclusion proof and checkpoint** of a Sigstore bundle (``tlogEntries[]``): an RFC 6962 /
  RFC 9162 Merkle audit path and the log's signed note over the tree head.

A SET only proves the log *promised* to include the entry; the proof and checkpoint prove it did.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from pipeline import jsonbounded
from pipeline.cosign.keys import PublicKey, decode_pem, public_key_der, verify_signature
from pipeline.errors import InvalidInputError, ReleaseVectorError, VerificationError

HASHEDREKORD_KIND: Final = "hashedrekord"
HASHEDREKORD_API_VERSION: Final = "0.0.1"
HASHEDREKORD_ALGORITHMS: Final = ("sha256", "sha384", "sha512")  # what a hashedrekord entry may hash with
SHA256_SIZE: Final = 32
CHECKPOINT_SIGNATURE_PREFIX: Final = "\u2014 "  # an em dash and a space open every signed-note signature line
CHECKPOINT_KEY_HINT_SIZE: Final = 4

_HEX_RE: Final = re.compile(r"[0-9a-fA-F]+")


# --- the legacy Rekor bundle ------------------------------------------------------------------


@dataclass(frozen=True)
class RekorBundle:
    """A parsed legacy Rekor bundle. ``body_b64`` is kept as given: the SET is over that exact text."""

    signed_entry_timestamp: bytes
    body: bytes
    body_b64: str
    integrated_time: int
    log_index: int
    log_id: str  # lower-case hex

    @property
    def integrated_at(self) -> datetime:
        """When the log integrated the entry: the time a Fulcio certificate must have been valid at."""
        return datetime.fromtimestamp(self.integrated_time, UTC)


def _strict_b64(value: object, name: str, where: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"the Rekor bundle's {name} is not a base64 string", where=where)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"the Rekor bundle's {name} is not valid base64", where=where) from None


def _non_negative_int(value: object, name: str, where: str) -> int:
    # bool is an int subclass in Python; JSON true must not pass for a log index.
    if type(value) is not int or value < 0:
        raise InvalidInputError(f"the Rekor bundle's {name} is not a non-negative integer", where=where)
    return value


def parse_rekor_bundle(data: str | bytes | Mapping[str, object], where: str) -> RekorBundle:
    """Parse the annotation string (or the already-decoded ``rekorBundle`` object) of a Rekor bundle."""
    if isinstance(data, str | bytes):
        try:
            decoded: object = jsonbounded.loads(data, source=where, what="the Rekor bundle")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidInputError("the Rekor bundle is not JSON", where=where) from None
    else:
        decoded = data
    if not isinstance(decoded, Mapping):
        raise InvalidInputError("the Rekor bundle is not a JSON object", where=where)
    payload = decoded.get("Payload")
    if not isinstance(payload, Mapping):
        raise InvalidInputError("the Rekor bundle has no Payload object", where=where)
    signed_entry_timestamp = _strict_b64(decoded.get("SignedEntryTimestamp"), "SignedEntryTimestamp", where)
    body_b64 = payload.get("body")
    body = _strict_b64(body_b64, "Payload.body", where)
    assert isinstance(body_b64, str)
    log_id = payload.get("logID")
    if not isinstance(log_id, str) or len(log_id) != 2 * SHA256_SIZE or not _HEX_RE.fullmatch(log_id):
        raise InvalidInputError("the Rekor bundle's Payload.logID is not a hex SHA-256", where=where)
    return RekorBundle(
        signed_entry_timestamp=signed_entry_timestamp,
        body=body,
        body_b64=body_b64,
        integrated_time=_non_negative_int(payload.get("integratedTime"), "Payload.integratedTime", where),
        log_index=_non_negative_int(payload.get("logIndex"), "Payload.logIndex", where),
        log_id=log_id.lower(),
    )


def rekor_bundle_to_json(bundle: RekorBundle) -> dict[str, object]:
    """The bundle as cosign writes it (key order SignedEntryTimestamp, Payload{body, integratedTime,
    logIndex, logID}); ``json.dumps(..., separators=(",", ":"))`` gives cosign's annotation text."""
    return {
        "SignedEntryTimestamp": base64.b64encode(bundle.signed_entry_timestamp).decode("ascii"),
        "Payload": {
            "body": bundle.body_b64,
            "integratedTime": bundle.integrated_time,
            "logIndex": bundle.log_index,
            "logID": bundle.log_id,
        },
    }


def bundle_annotation(bundle: RekorBundle) -> str:
    """The ``dev.sigstore.cosign/bundle`` annotation value, byte for byte as cosign writes it."""
    return json.dumps(rekor_bundle_to_json(bundle), separators=(",", ":"))


@dataclass(frozen=True)
class LogInclusionProof:
    """A log entry's audit path and the signed checkpoint it leads to."""

    log_index: int
    root_hash: bytes
    tree_size: int
    hashes: tuple[bytes, ...]
    checkpoint: str


@dataclass(frozen=True)
class LogEntry:
    """One Rekor v1 log entry as the log answered: its entry ID, cosign's bundle for it, and the proof if
    the log sent one."""

    entry_id: str
    bundle: RekorBundle
    inclusion_proof: LogInclusionProof | None


def signed_entry_timestamp_message(bundle: RekorBundle) -> bytes:
    """The bytes the SET signs: canonical JSON of Payload, keys sorted, compact.

    The values are base64, hex and integers, so no JSON escaping question arises (Go's HTML escaping
    of ``<>&`` and RFC 8785 agree on such strings).
    """
    canonical = {
        "body": bundle.body_b64,
        "integratedTime": bundle.integrated_time,
        "logID": bundle.log_id,
        "logIndex": bundle.log_index,
    }
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def log_id_of(key: PublicKey) -> str:
    """A Rekor log's ID: hex SHA-256 of its DER SubjectPublicKeyInfo."""
    return hashlib.sha256(public_key_der(key)).hexdigest()


UNTRUSTED_LOG_HINT = "a log of your own? trust its key with --rekor-public-key FILE, or a --trusted-root that lists it"


def trusted_key_for_log(log_id: str, trusted_keys: Sequence[PublicKey], where: str) -> PublicKey:
    for key in trusted_keys:
        if log_id_of(key) == log_id.lower():
            return key
    raise VerificationError(
        f"the Rekor entry's logID {log_id} matches none of the {len(trusted_keys)} trusted Rekor keys",
        where=where,
        hint=UNTRUSTED_LOG_HINT,
    )


def _json_object(value: object, name: str, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise VerificationError(f"the Rekor entry's {name} is missing or not an object", where=where)
    return value


def _spki_and_certificate(pem: bytes) -> tuple[bytes, bytes | None]:
    """(DER SPKI, DER certificate or None) of a PUBLIC KEY or CERTIFICATE PEM; ValueError otherwise."""
    try:
        block = decode_pem(pem, "pem")
    except ReleaseVectorError as exc:
        raise ValueError(exc.message) from None
    try:
        if block.label == "CERTIFICATE":
            from cryptography import x509  # only a keyless signer's certificate needs X.509 (start-up time)

            certificate = x509.load_der_x509_certificate(block.der)
            spki = certificate.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return spki, block.der
        if block.label == "PUBLIC KEY":
            key = serialization.load_der_public_key(block.der)
            return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo), None
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(f"the {block.label} cannot be parsed") from None
    raise ValueError(f"unexpected PEM type {block.label!r}")


def check_same_signer(entry_key_b64: object, signer_pem: bytes, where: str) -> None:
    """The entry's ``publicKey.content`` (base64 of a PEM) must name the signer.

    cosign compares the DER inside the two PEM blocks. We compare the certificates when both sides
    are certificates, and the public keys otherwise (a key-signed entry against ``cosign.pub``, or a
    mixed pair, which still binds the same signing key).
    """
    if not isinstance(entry_key_b64, str):
        raise VerificationError("the Rekor entry has no spec.signature.publicKey.content", where=where)
    try:
        entry_pem = base64.b64decode(entry_key_b64, validate=True)
        entry_spki, entry_certificate = _spki_and_certificate(entry_pem)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError(f"the Rekor entry's public key is unreadable: {exc}", where=where) from None
    try:
        signer_spki, signer_certificate = _spki_and_certificate(signer_pem)
    except ValueError as exc:
        raise InvalidInputError(f"the signer's key or certificate is unreadable: {exc}", where=where) from None
    if entry_certificate is not None and signer_certificate is not None:
        if entry_certificate != signer_certificate:
            raise VerificationError(
                "the Rekor entry records a different certificate than the one that signed", where=where
            )
    elif entry_spki != signer_spki:
        raise VerificationError("the Rekor entry records a different public key than the signer's", where=where)


def verify_rekor_bundle(
    bundle: RekorBundle,
    *,
    trusted_keys: Sequence[PublicKey],
    payload: bytes,
    signature: bytes,
    signer_pem: bytes | None,
    where: str,
) -> None:
    """Check that ``bundle`` is a log entry, signed by a trusted Rekor key, for exactly this signature.

    In order: the logID names a trusted key; the SET verifies with that key; the body is a
    ``hashedrekord`` 0.0.1 whose hash is sha256(``payload``) and whose signature is ``signature``; and,
    given ``signer_pem`` (the PUBLIC KEY or CERTIFICATE PEM the caller verified ``signature`` with),
    the body records that same signer. It does not verify ``signature`` over ``payload``: the caller
    does that with the signer's key.
    """
    log_key = trusted_key_for_log(bundle.log_id, trusted_keys, where)
    try:
        verify_signature(log_key, signed_entry_timestamp_message(bundle), bundle.signed_entry_timestamp, where=where)
    except VerificationError:
        raise VerificationError(
            "the Rekor bundle's SignedEntryTimestamp does not verify with the Rekor key"
            " (the entry was altered or was not signed by this log)",
            where=where,
        ) from None

    try:
        entry: object = jsonbounded.loads(bundle.body, source=where, what="the Rekor entry body")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VerificationError("the Rekor entry body is not JSON", where=where) from None
    entry = _json_object(entry, "body", where)
    kind, api_version = entry.get("kind"), entry.get("apiVersion")
    if kind != HASHEDREKORD_KIND or api_version != HASHEDREKORD_API_VERSION:
        raise VerificationError(
            f"the Rekor entry is of kind {kind} {api_version}; only hashedrekord 0.0.1 is supported here",
            where=where,
        )
    spec = _json_object(entry.get("spec"), "spec", where)
    data = _json_object(spec.get("data"), "spec.data", where)
    hash_ = _json_object(data.get("hash"), "spec.data.hash", where)
    algorithm = hash_.get("algorithm")
    if algorithm not in HASHEDREKORD_ALGORITHMS:
        raise VerificationError(
            f"the Rekor entry hashes with {algorithm!r}; one of {', '.join(HASHEDREKORD_ALGORITHMS)} is supported",
            where=where,
        )
    assert isinstance(algorithm, str)
    payload_hex = hashlib.new(algorithm, payload).hexdigest()
    recorded_hex = hash_.get("value")
    if not isinstance(recorded_hex, str) or recorded_hex.lower() != payload_hex:
        raise VerificationError(
            f"the Rekor entry is for another artifact ({algorithm}:{recorded_hex} in the log,"
            f" {algorithm}:{payload_hex} signed here)",
            where=where,
        )
    signature_spec = _json_object(spec.get("signature"), "spec.signature", where)
    content = signature_spec.get("content")
    try:
        recorded_signature = base64.b64decode(content, validate=True) if isinstance(content, str) else None
    except (binascii.Error, ValueError):
        recorded_signature = None
    if recorded_signature != signature:
        raise VerificationError(
            "the Rekor entry records a different signature than the one being verified", where=where
        )
    if signer_pem is not None:
        public_key = _json_object(signature_spec.get("publicKey"), "spec.signature.publicKey", where)
        check_same_signer(public_key.get("content"), signer_pem, where)


# --- Merkle inclusion proofs (RFC 6962 / RFC 9162) ------------------------------------------


def merkle_leaf_hash(leaf_data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 ‖ data); the 0x00/0x01 prefixes keep leaves and nodes apart."""
    return hashlib.sha256(b"\x00" + leaf_data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion_proof(
    leaf_data: bytes,
    index: int,
    tree_size: int,
    hashes: Sequence[bytes],
    root_hash: bytes,
    where: str,
) -> None:
    """Check that ``leaf_data`` is leaf ``index`` of the tree of ``tree_size`` leaves with ``root_hash``.

    The audit-path walk of RFC 9162 section 2.1.3.2. ``index`` is the log shard's own index (a Sigstore
    bundle's ``inclusionProof.logIndex``), not the global ``logIndex``.
    """
    if tree_size <= 0 or not 0 <= index < tree_size:
        raise VerificationError(
            f"the inclusion proof's leaf index {index} is outside the tree of size {tree_size}", where=where
        )
    if len(root_hash) != SHA256_SIZE or any(len(h) != SHA256_SIZE for h in hashes):
        raise VerificationError("the inclusion proof holds a hash that is not 32 bytes", where=where)
    node_index, last_index = index, tree_size - 1
    computed = merkle_leaf_hash(leaf_data)
    for sibling in hashes:
        if last_index == 0:
            raise VerificationError(
                f"the inclusion proof has too many hashes ({len(hashes)}) for its tree size", where=where
            )
        if node_index & 1 or node_index == last_index:
            computed = _node_hash(sibling, computed)
            # A node with no right sibling is carried up unchanged until it is a right child.
            while not node_index & 1 and node_index != 0:
                node_index >>= 1
                last_index >>= 1
        else:
            computed = _node_hash(computed, sibling)
        node_index >>= 1
        last_index >>= 1
    if last_index != 0:
        raise VerificationError(
            f"the inclusion proof has too few hashes ({len(hashes)}) for its tree size", where=where
        )
    if computed != root_hash:
        raise VerificationError("the inclusion proof does not lead to the tree's root hash", where=where)


# --- checkpoints (signed notes) ---------------------------------------------------------------


def checkpoint_key_hint(key: PublicKey) -> bytes:
    """Rekor v1's signed-note key hint: the first 4 bytes of SHA-256(DER SPKI), i.e. of the log ID."""
    return hashlib.sha256(public_key_der(key)).digest()[:CHECKPOINT_KEY_HINT_SIZE]


def verify_checkpoint(
    envelope: str,
    *,
    trusted_keys: Sequence[PublicKey],
    root_hash: bytes,
    tree_size: int,
    where: str,
) -> None:
    """Check a Rekor checkpoint (a signed note) and that it commits to ``tree_size`` and ``root_hash``.

    The note is ``<origin>\\n<size>\\n<b64 root>\\n[extension lines]`` then a blank line, then lines
    ``— <name> <b64(4-byte key hint ‖ DER signature)>``. The signature covers the note text up to and
    including the newline before the blank line. Signatures whose key hint names no trusted key are
    ignored, as the signed-note format intends; one must verify.
    """
    separator = envelope.find("\n\n")
    if separator < 0:
        raise VerificationError(
            "the checkpoint is not a signed note (no blank line before the signatures)", where=where
        )
    note_text = envelope[: separator + 1]
    signature_lines = [line for line in envelope[separator + 2 :].split("\n") if line]
    lines = note_text.split("\n")[:-1]
    if len(lines) < 3:
        raise VerificationError("the checkpoint lacks its origin, size or root hash line", where=where)
    size_text, root_text = lines[1], lines[2]
    if not size_text.isascii() or not size_text.isdigit():
        raise VerificationError(f"the checkpoint's tree size {size_text!r} is not a number", where=where)
    try:
        checkpoint_root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("the checkpoint's root hash is not valid base64", where=where) from None

    hinted = 0
    verified = False
    message = note_text.encode("utf-8")
    for line in signature_lines:
        if not line.startswith(CHECKPOINT_SIGNATURE_PREFIX) or " " not in line[len(CHECKPOINT_SIGNATURE_PREFIX) :]:
            raise VerificationError("the checkpoint has a malformed signature line", where=where)
        _name, signature_b64 = line[len(CHECKPOINT_SIGNATURE_PREFIX) :].rsplit(" ", 1)
        try:
            raw = base64.b64decode(signature_b64, validate=True)
        except (binascii.Error, ValueError):
            raise VerificationError("the checkpoint has a signature that is not valid base64", where=where) from None
        hint, signature = raw[:CHECKPOINT_KEY_HINT_SIZE], raw[CHECKPOINT_KEY_HINT_SIZE:]
        for key in trusted_keys:
            if checkpoint_key_hint(key) != hint:
                continue
            hinted += 1
            try:
                verify_signature(key, message, signature, where=where)
            except VerificationError:
                continue
            verified = True
    if not verified:
        if hinted:
            raise VerificationError("the checkpoint's signature does not verify with the Rekor key", where=where)
        raise VerificationError(
            "the checkpoint is signed by none of the trusted Rekor keys", where=where, hint=UNTRUSTED_LOG_HINT
        )
    if int(size_text) != tree_size:
        raise VerificationError(
            f"the checkpoint is for tree size {size_text}, the inclusion proof for {tree_size}", where=where
        )
    if checkpoint_root != root_hash:
        raise VerificationError("the checkpoint's root hash differs from the inclusion proof's", where=where)
