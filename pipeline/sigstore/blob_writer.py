"""Writing what cosign v3 ``sign-blob --bundle`` writes by default: a Sigstore bundle v0.3 (pure).

The shape (sigstore/protobuf-specs ``sigstore_bundle.proto``, checked against the managed-key bundle of
sigstore-conformance in ``tests/vectors/cosign/bundle-v03/key-signed/``)::

    {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
     "verificationMaterial": {
        "publicKey": {"hint": "<b64 sha256(DER SPKI)>"}  |  "certificate": {"rawBytes": "<b64 DER leaf>"},
        "tlogEntries": [<the hashedrekord entry: SET, inclusion proof, checkpoint, canonicalizedBody>],
        "timestampVerificationData": {"rfc3161Timestamps": [{"signedTimestamp": "<b64 DER>"}]}},
     "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": "<b64>"}, "signature": "<b64>"}}

Field order as protojson writes it (proto field numbers); empty fields left out; compact JSON,
serialised once. A v0.3 bundle carries the leaf certificate alone (``certificate``), not a chain.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from typing import Final

from pipeline.cosign.keys import PublicKey
from pipeline.cosign.rekor import HASHEDREKORD_API_VERSION, HASHEDREKORD_KIND, LogEntry
from pipeline.oci import mediatypes
from pipeline.sigstore.rekor_v2 import RekorV2Entry
from pipeline.sigstore.writer import public_key_hint, tlog_entry_json

# hashlib name -> the protobuf-specs HashAlgorithm name a messageDigest states
MESSAGE_DIGEST_ALGORITHMS: Final = {"sha256": "SHA2_256", "sha384": "SHA2_384", "sha512": "SHA2_512"}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def verification_material(
    public_key: PublicKey,
    certificate_der: bytes | None,
    tlog_entries: Sequence[dict[str, object]],
    timestamps: Sequence[bytes] = (),
) -> dict[str, object]:
    """``verificationMaterial``: the key's hint or the leaf certificate, the log entries, the timestamps."""
    material: dict[str, object] = (
        {"certificate": {"rawBytes": _b64(certificate_der)}}
        if certificate_der is not None
        else {"publicKey": {"hint": public_key_hint(public_key)}}
    )
    if tlog_entries:
        material["tlogEntries"] = list(tlog_entries)
    if timestamps:
        material["timestampVerificationData"] = {
            "rfc3161Timestamps": [{"signedTimestamp": _b64(t)} for t in timestamps]
        }
    return material


def message_signature_bundle(
    artifact: bytes,
    signature: bytes,
    public_key: PublicKey,
    tlog_entry: LogEntry | RekorV2Entry | None,
    *,
    algorithm: str = "sha256",
    certificate_der: bytes | None = None,
    timestamps: Sequence[bytes] = (),
) -> bytes:
    """The bundle v0.3 bytes of a signature over ``artifact`` (and its ``hashedrekord`` entry when logged).

    ``algorithm`` is the hash the key signs with (sha256; sha384/sha512 for P-384, P-521, Ed25519ph): the
    ``messageDigest`` states the artifact's digest by it, as the hashedrekord entry does.
    """
    name = MESSAGE_DIGEST_ALGORITHMS.get(algorithm)
    if name is None:
        raise ValueError(f"unsupported message digest algorithm {algorithm!r}")
    entries = [] if tlog_entry is None else [tlog_entry_json(tlog_entry, HASHEDREKORD_KIND, HASHEDREKORD_API_VERSION)]
    document = {
        "mediaType": mediatypes.SIGSTORE_BUNDLE_V03,
        "verificationMaterial": verification_material(public_key, certificate_der, entries, timestamps),
        "messageSignature": {
            "messageDigest": {"algorithm": name, "digest": _b64(hashlib.new(algorithm, artifact).digest())},
            "signature": _b64(signature),
        },
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
