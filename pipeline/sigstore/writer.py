"""Writing what cosign v3 writes for ``cosign sign``: statement, DSSE envelope, Sigstore bundle v0.3 (pure).

* the in-toto Statement v1 (``_type``, ``subject``, ``predicateType``, ``predicate``, in the proto field
  order ``protojson`` writes): one subject with only the image manifest digest and ``annotations`` (the
  ``-a`` map, ``{}`` when there is none), predicateType ``https://sigstore.dev/cosign/sign/v1``, predicate
  ``{}`` (cosign v3.0.5 and later);
* the DSSE envelope (payloadType ``application/vnd.in-toto+json``) signed over the DSSE PAE;
* the bundle ``application/vnd.dev.sigstore.bundle.v0.3+json``: ``publicKey.hint`` (base64 of the
  sha256 of the DER SPKI) for key signing, the ``dsse`` Rekor entry as ``tlogEntries[]`` (int64 fields
  as JSON strings, bytes as std base64, hex log values turned into base64), and the envelope.

Compact JSON, serialised once: these bytes are what gets hashed, uploaded and pushed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence

from pipeline.cosign.keys import PrivateKeyHandle, PublicKey, public_key_der
from pipeline.cosign.rekor import LogEntry
from pipeline.oci import mediatypes
from pipeline.sigstore.bundle import COSIGN_SIGN_PREDICATE_TYPE, IN_TOTO_STATEMENT_V1
from pipeline.sigstore.dsse import (
    DSSE_API_VERSION,
    DSSE_KIND,
    IN_TOTO_PAYLOAD_TYPE,
    DsseEnvelope,
    DsseSignature,
    dsse_pae,
)
from pipeline.sigstore.rekor_v2 import RekorV2Entry


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def cosign_sign_statement(
    digest_hex: str, annotations: Mapping[str, str] | None = None, *, predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE
) -> bytes:
    """The statement cosign v3 signs for the image whose manifest digest is ``sha256:<digest_hex>``."""
    return _compact(
        {
            "_type": IN_TOTO_STATEMENT_V1,
            "subject": [{"digest": {"sha256": digest_hex}, "annotations": dict(annotations or {})}],
            "predicateType": predicate_type,
            "predicate": {},
        }
    )


def sign_dsse(key: PrivateKeyHandle, payload: bytes, payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> DsseEnvelope:
    """A one-signature envelope; the signature is over the PAE, not the payload (no keyid, as cosign)."""
    signature = key.sign(dsse_pae(payload_type, payload), pure_ed25519=True)  # DSSE: pure Ed25519, as cosign
    return DsseEnvelope(payload=payload, payload_type=payload_type, signatures=(DsseSignature(signature, ""),))


def public_key_hint(public_key: PublicKey) -> str:
    """``verificationMaterial.publicKey.hint``: base64 of the sha256 of the key's DER SPKI."""
    return _b64(hashlib.sha256(public_key_der(public_key)).digest())


def tlog_entry_json(
    entry: LogEntry | RekorV2Entry, kind: str = DSSE_KIND, version: str = DSSE_API_VERSION
) -> dict[str, object]:
    """A Rekor v1 answer as one ``tlogEntries[]`` item (rekor's LogEntry maps onto it one to one); a Rekor v2
    answer is that item already."""
    if isinstance(entry, RekorV2Entry):
        return entry.tlog_entry_json()
    rekor = entry.bundle
    item: dict[str, object] = {
        "logIndex": str(rekor.log_index),
        "logId": {"keyId": _b64(bytes.fromhex(rekor.log_id))},
        "kindVersion": {"kind": kind, "version": version},
        "integratedTime": str(rekor.integrated_time),
        "inclusionPromise": {"signedEntryTimestamp": _b64(rekor.signed_entry_timestamp)},
    }
    proof = entry.inclusion_proof
    if proof is not None:
        item["inclusionProof"] = {
            "logIndex": str(proof.log_index),
            "rootHash": _b64(proof.root_hash),
            "treeSize": str(proof.tree_size),
            # Kept when empty (the first leaf of a log): protojson would leave it out, but sigstore-python's
            # model requires the field, and protojson, sigstore-go and sigstore-js read [] as well.
            "hashes": [_b64(h) for h in proof.hashes],
            "checkpoint": {"envelope": proof.checkpoint},
        }
    item["canonicalizedBody"] = _b64(rekor.body)
    return item


def dsse_bundle(
    envelope: DsseEnvelope,
    public_key: PublicKey,
    tlog_entry: LogEntry | RekorV2Entry | None,
    *,
    certificate_der: bytes | None = None,
    timestamps: Sequence[bytes] = (),
) -> bytes:
    """The bundle v0.3 bytes for a signed envelope (and its ``dsse`` entry when it was logged): a key's
    ``publicKey.hint``, or with ``certificate_der`` (keyless) the leaf as ``certificate.rawBytes``; each of
    ``timestamps`` (a DER ``TimeStampResp`` over the signature) in ``timestampVerificationData``."""
    material: dict[str, object] = (
        {"certificate": {"rawBytes": _b64(certificate_der)}}
        if certificate_der is not None
        else {"publicKey": {"hint": public_key_hint(public_key)}}
    )
    if tlog_entry is not None:
        material["tlogEntries"] = [tlog_entry_json(tlog_entry)]
    if timestamps:
        stamps = [{"signedTimestamp": _b64(t)} for t in timestamps]
        material["timestampVerificationData"] = {"rfc3161Timestamps": stamps}
    return _compact(
        {
            "mediaType": mediatypes.SIGSTORE_BUNDLE_V03,
            "verificationMaterial": material,
            "dsseEnvelope": {
                "payload": _b64(envelope.payload),
                "payloadType": envelope.payload_type,
                "signatures": [
                    {"sig": _b64(s.sig), **({"keyid": s.keyid} if s.keyid else {})} for s in envelope.signatures
                ],
            },
        }
    )
