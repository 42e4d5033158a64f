"""Signing a file (``sign-blob``): one signature by a :class:`Signer`, logged, in the bundle format asked for.

* ``v3`` (cosign v3's default): a Sigstore bundle v0.3 — ``messageSignature`` over the file's bytes, the
  ``hashedrekord`` entry with its inclusion proof and checkpoint, ``publicKey.hint`` or the Fulcio
  certificate (:mod:`pipeline.sigstore.blob_writer`);
* ``legacy``: cosign's ``LocalSignedPayload`` file ``{base64Signature, cert, rekorBundle}``
  (:mod:`pipeline.cosign.blob`).

Pure but for the two ports it is given: the signer (a key, or keyless with Fulcio) and the log.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from pipeline.cosign.blob import BlobBundle, render_blob_bundle
from pipeline.cosign.keys import signing_hash
from pipeline.cosign.rekor import LogEntry
from pipeline.errors import UsageError
from pipeline.signatures.signers import Signature, Signer
from pipeline.sigstore.blob_writer import message_signature_bundle
from pipeline.sigstore.rekor_v2 import RekorV2Entry
from pipeline.sigstore.tlog import legacy_bundle

BlobBundleFormat = Literal["v3", "legacy"]
BLOB_BUNDLE_FORMATS: Final[tuple[BlobBundleFormat, ...]] = ("v3", "legacy")


class HashedRekordLog(Protocol):
    """A log that records a ``hashedrekord`` entry and answers with it, verified (RekorClient)."""

    def create_hashedrekord_entry(
        self, payload_sha256: str | bytes, signature: bytes, public_key_or_cert_pem: bytes, algorithm: str = "sha256"
    ) -> LogEntry | RekorV2Entry: ...


class TimestampSource(Protocol):
    """A timestamp authority (TimestampClient): a verified RFC 3161 ``TimeStampResp`` over a signature."""

    def timestamp(self, signature: bytes) -> bytes: ...


@dataclass(frozen=True)
class SignedBlob:
    signature: Signature
    entry: LogEntry | RekorV2Entry | None
    bundle: bytes  # the bundle file's bytes, in the format asked for


def parse_blob_bundle_format(value: str) -> BlobBundleFormat:
    for known in BLOB_BUNDLE_FORMATS:
        if value == known:
            return known
    raise UsageError(f"--bundle-format of sign-blob must be v3 or legacy, not {value!r}")


def sign_blob(
    blob: bytes,
    signer: Signer,
    log: HashedRekordLog | None,
    bundle_format: BlobBundleFormat,
    tsa: TimestampSource | None = None,
) -> SignedBlob:
    """Sign ``blob``, timestamp the signature with ``tsa`` and record it in ``log`` (each unless None), and
    render the bundle. cosign's legacy file has no place for a timestamp: that combination is refused."""
    if tsa is not None and bundle_format == "legacy":
        raise UsageError("a timestamp needs --bundle-format v3 (cosign's legacy bundle file cannot hold one)")
    signature = signer.sign(blob)
    timestamps = (tsa.timestamp(signature.value),) if tsa is not None else ()
    material = signature.material
    algorithm = signing_hash(material.public_key).name  # the hash the key signs with
    entry = None
    if log is not None:
        digest = hashlib.new(algorithm, blob).hexdigest()
        entry = log.create_hashedrekord_entry(digest, signature.value, material.log_pem, algorithm)
    if bundle_format == "legacy":
        document = render_blob_bundle(
            BlobBundle(signature.value, material.certificate_pem, None if entry is None else legacy_bundle(entry))
        )
    else:
        document = message_signature_bundle(
            blob,
            signature.value,
            material.public_key,
            entry,
            algorithm=algorithm,
            certificate_der=material.certificate_der,
            timestamps=timestamps,
        )
    return SignedBlob(signature, entry, document)
