"""Signed certificate timestamps (RFC 6962) embedded in Fulcio certificates, checked offline.

Fulcio records every certificate it issues in a Certificate Transparency log before handing it out,
and embeds the log's signed promise, an SCT, in the certificate. ``cosign verify`` refuses a keyless
certificate without an SCT that verifies with a trusted CT log key (unless ``--insecure-ignore-sct``):
a certificate nobody could see being issued could have been issued to anyone.

What the log signed is RFC 6962 section 3.2's ``digitally-signed`` struct for a precertificate entry:
version (1 byte), signature type ``certificate_timestamp`` (1 byte, 0), the timestamp (8 bytes,
milliseconds), entry type ``precert_entry`` (2 bytes, 1), SHA-256 of the issuer's DER
SubjectPublicKeyInfo (32 bytes), the TBS certificate without the SCT list extension (3-byte length),
and the SCT's extensions (2-byte length). A log is known by its ID: SHA-256 of its key's DER SPKI.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.certificate_transparency import LogEntryType, SignatureAlgorithm, SignedCertificateTimestamp

from pipeline.cosign.keys import PublicKey
from pipeline.errors import VerificationError

_EPOCH = datetime(1970, 1, 1)
_SIGNATURE_TYPE_CERTIFICATE_TIMESTAMP = 0
_ENTRY_TYPE_PRECERT = 1
IGNORE_SCT_HINT = (
    "pass the CT log's key (--ct-log-public-key, or a --trusted-root with ctlogs), or accept the risk with"
    " --insecure-ignore-sct"
)


@dataclass(frozen=True)
class CtLogKey:
    """A Certificate Transparency log's public key and the log ID it is known by."""

    log_id: bytes
    key: PublicKey

    @classmethod
    def of(cls, key: PublicKey) -> CtLogKey:
        return cls(spki_sha256(key), key)


def spki_sha256(key: PublicKey) -> bytes:
    """SHA-256 of the key's DER SubjectPublicKeyInfo: a CT log's ID, and the issuer key hash of an SCT."""
    return hashlib.sha256(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).digest()


def _milliseconds(moment: datetime) -> int:
    epoch = _EPOCH if moment.tzinfo is None else _EPOCH.replace(tzinfo=UTC)
    return (moment - epoch) // timedelta(milliseconds=1)


def signed_data(sct: SignedCertificateTimestamp, issuer_key_hash: bytes, tbs_precertificate: bytes) -> bytes:
    """The bytes the CT log signed for this precertificate SCT (RFC 6962 section 3.2)."""
    extensions = sct.extension_bytes
    return b"".join(
        (
            struct.pack(
                ">BBQH",
                sct.version.value,
                _SIGNATURE_TYPE_CERTIFICATE_TIMESTAMP,
                _milliseconds(sct.timestamp),
                _ENTRY_TYPE_PRECERT,
            ),
            issuer_key_hash,
            len(tbs_precertificate).to_bytes(3, "big"),
            tbs_precertificate,
            len(extensions).to_bytes(2, "big"),
            extensions,
        )
    )


def embedded_scts(certificate: x509.Certificate, where: str) -> list[SignedCertificateTimestamp]:
    """The SCTs in the certificate's SCT list extension (none: an empty list)."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps)
    except x509.ExtensionNotFound:
        return []
    except ValueError as exc:  # cryptography's complaint about a malformed extension
        raise VerificationError(f"the signing certificate's SCT list is malformed: {exc}", where=where) from None
    return list(extension.value)


def _signature_verifies(key: PublicKey, sct: SignedCertificateTimestamp, data: bytes) -> bool:
    algorithm = sct.signature_hash_algorithm
    if not isinstance(algorithm, hashes.SHA256):
        return False
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and sct.signature_algorithm == SignatureAlgorithm.ECDSA:
            key.verify(sct.signature, data, ec.ECDSA(hashes.SHA256()))
            return True
        if isinstance(key, rsa.RSAPublicKey) and sct.signature_algorithm == SignatureAlgorithm.RSA:
            key.verify(sct.signature, data, padding.PKCS1v15(), hashes.SHA256())
            return True
    except InvalidSignature:
        return False
    return False


def verify_embedded_sct(
    certificate: x509.Certificate, issuer: x509.Certificate, log_keys: Sequence[CtLogKey], where: str
) -> str:
    """Raise VerificationError unless one SCT embedded in ``certificate`` verifies with a trusted CT log key;
    else say which log and when. ``issuer`` is the certificate that issued it (its chain's next link)."""
    scts = embedded_scts(certificate, where)
    if not scts:
        raise VerificationError(
            "the signing certificate carries no signed certificate timestamp (SCT) from a CT log",
            where=where,
            hint=IGNORE_SCT_HINT,
        )
    issuer_key = issuer.public_key()
    if not isinstance(issuer_key, PublicKey):
        raise VerificationError("the certificate's issuer has a key type SCTs are not checked for", where=where)
    issuer_key_hash = spki_sha256(issuer_key)
    try:
        tbs = certificate.tbs_precertificate_bytes
    except ValueError as exc:
        raise VerificationError(f"the signing certificate's SCT list is malformed: {exc}", where=where) from None
    by_id = {log.log_id: log for log in log_keys}
    problems: list[str] = []
    for sct in scts:
        log = by_id.get(sct.log_id)
        if log is None:
            problems.append(f"its SCT is from CT log {sct.log_id.hex()[:16]}…, which is not trusted")
            continue
        if sct.entry_type != LogEntryType.PRE_CERTIFICATE:
            problems.append("its SCT is not for a precertificate")
            continue
        if not _signature_verifies(log.key, sct, signed_data(sct, issuer_key_hash, tbs)):
            problems.append(f"its SCT from CT log {sct.log_id.hex()[:16]}… does not verify")
            continue
        return f"{sct.log_id.hex()[:16]}… at {_milliseconds(sct.timestamp)} ms"
    raise VerificationError(
        f"the signing certificate has no valid SCT: {problems[0]}", where=where, hint=IGNORE_SCT_HINT
    )
