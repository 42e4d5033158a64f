"""Trusted material for offline verification: Rekor log keys and Fulcio CA certificates.

The source is a Sigstore ``trusted_root.json`` (media type
``application/vnd.dev.sigstore.trustedroot+json;version=0.1``), the document Sigstore's TUF repository
distributes. A copy of the public-good root ships in ``pipeline/data/trusted_root.json`` (taken
byte-for-byte from sigstore-python's embedded copy); replace it by passing another root, never by
fetching one silently: what is trusted must be visible.

Only keys this tool can verify with are kept (``_USABLE_KEY_DETAILS``): ECDSA P-256/P-384/P-521, RSA, and
Ed25519, what Rekor v2 shards sign their checkpoints with (Rekor v1's public-good key is ECDSA P-256). The
logs' ``validFor`` windows are not enforced: a log key is trusted at any time, so a root whose log key has
ended still verifies an entry made after that end (sigstore-go refuses it); the timestamp authorities'
windows are enforced (:class:`TimestampAuthority`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Final, overload

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pipeline import jsonbounded
from pipeline.cosign.keys import CURVE_HASHES, PublicKey, load_public_key
from pipeline.cosign.timestamp import TimestampAuthority
from pipeline.errors import InvalidInputError, KeyFormatError

if TYPE_CHECKING:  # X.509 loads with the first certificate read (a verify with --key may read none: start-up)
    from cryptography import x509

    from pipeline.cosign.sct import CtLogKey

TRUSTED_ROOT_MEDIA_TYPE_PREFIX: Final = "application/vnd.dev.sigstore.trustedroot"
DEFAULT_TRUSTED_ROOT_SOURCE: Final = "built-in Sigstore public-good trusted_root.json"
# keyDetails values (Sigstore's PublicKeyDetails) of the keys verified here: ECDSA with the curve's hash,
# RSA PKCS#1 v1.5/SHA-256, Ed25519 (a log's signed entry timestamps and checkpoints are pure Ed25519).
_USABLE_KEY_DETAILS: Final = frozenset(
    {
        "PKIX_ECDSA_P256_SHA_256",
        "PKIX_ECDSA_P384_SHA_384",
        "PKIX_ECDSA_P521_SHA_512",
        "PKIX_RSA_PKCS1V15_2048_SHA256",
        "PKIX_RSA_PKCS1V15_3072_SHA256",
        "PKIX_RSA_PKCS1V15_4096_SHA256",
        "PKIX_ED25519",
    }
)
_PUBLIC_KEY_BLOCK_RE: Final = re.compile(rb"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", re.DOTALL)


def _load_trusted_root(data: bytes, where: str) -> Mapping[str, object]:
    try:
        root: object = jsonbounded.loads(data, source=where, what="the trusted root")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInputError("the trusted root is not JSON", where=where) from None
    if not isinstance(root, Mapping):
        raise InvalidInputError("the trusted root is not a JSON object", where=where)
    media_type = root.get("mediaType")
    if media_type is not None and (
        not isinstance(media_type, str) or not media_type.startswith(TRUSTED_ROOT_MEDIA_TYPE_PREFIX)
    ):
        raise InvalidInputError(f"not a Sigstore trusted root (mediaType {media_type!r})", where=where)
    return root


def _objects(root: Mapping[str, object], field: str, where: str) -> list[Mapping[str, object]]:
    value = root.get(field, [])
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise InvalidInputError(f"the trusted root's {field} is not a list of objects", where=where)
    return value


def _raw_bytes(holder: object, name: str, where: str) -> bytes:
    raw = holder.get("rawBytes") if isinstance(holder, Mapping) else None
    if not isinstance(raw, str) or not raw:
        raise InvalidInputError(f"the trusted root's {name} has no rawBytes", where=where)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"the trusted root's {name} rawBytes is not valid base64", where=where) from None


def _usable_key(der: bytes, key_details: object) -> PublicKey | None:
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        return None
    if key_details is not None and key_details not in _USABLE_KEY_DETAILS:
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key if key.curve.name in CURVE_HASHES else None
    if isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        return key
    return None


def rekor_keys_from_trusted_root(data: bytes, where: str) -> list[PublicKey]:
    """The usable Rekor (``tlogs``) public keys of a trusted root; InvalidInputError if there is none."""
    keys = _log_keys(_load_trusted_root(data, where), "tlogs", where)
    if not keys:
        raise InvalidInputError("the trusted root holds no usable Rekor key (ECDSA, RSA or Ed25519)", where=where)
    return keys


def _self_signed(certificate: x509.Certificate) -> bool:
    if certificate.subject != certificate.issuer:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def is_self_signed(certificate: x509.Certificate) -> bool:
    """A root: its own issuer, signed by its own key."""
    return _self_signed(certificate)


def fulcio_certificates_from_trusted_root(
    data: bytes, where: str
) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """(roots, intermediates) of every Fulcio CA in a trusted root; self-signed certificates are roots."""
    from cryptography import x509

    root = _load_trusted_root(data, where)
    roots: list[x509.Certificate] = []
    intermediates: list[x509.Certificate] = []
    for ca_index, authority in enumerate(_objects(root, "certificateAuthorities", where)):
        chain = authority.get("certChain")
        certificates = chain.get("certificates") if isinstance(chain, Mapping) else None
        if not isinstance(certificates, list):
            raise InvalidInputError(
                f"the trusted root's certificateAuthorities[{ca_index}] has no certChain.certificates", where=where
            )
        for cert_index, holder in enumerate(certificates):
            name = f"certificateAuthorities[{ca_index}].certChain.certificates[{cert_index}]"
            try:
                certificate = x509.load_der_x509_certificate(_raw_bytes(holder, name, where))
            except ValueError:
                raise InvalidInputError(f"the trusted root's {name} is not a DER certificate", where=where) from None
            bucket = roots if _self_signed(certificate) else intermediates
            if certificate not in bucket:
                bucket.append(certificate)
    if not roots:
        raise InvalidInputError("the trusted root holds no Fulcio root certificate", where=where)
    return roots, intermediates


def ct_log_keys_from_trusted_root(data: bytes, where: str) -> list[CtLogKey]:
    """The usable Certificate Transparency log (``ctlogs``) keys of a trusted root (maybe none).

    A log is known by the SHA-256 of its key (what an SCT names), which is also its ``logId.keyId``.
    """
    from pipeline.cosign.sct import CtLogKey

    return [CtLogKey.of(key) for key in _log_keys(_load_trusted_root(data, where), "ctlogs", where)]


def rekor_keys_for_url(data: bytes, where: str, url: str) -> list[PublicKey]:
    """The usable keys of the trusted root's Rekor logs (``tlogs``) whose ``baseUrl`` is ``url`` ([] if none):
    the key a log of that root is signed into with (a Rekor v2 log serves none)."""
    return _log_keys(_load_trusted_root(data, where), "tlogs", where, base_url=url.rstrip("/"))


def _log_keys(root: Mapping[str, object], field: str, where: str, *, base_url: str | None = None) -> list[PublicKey]:
    """The usable public keys of the logs a trusted root lists under ``field`` (``tlogs``, ``ctlogs``); with
    ``base_url``, of the logs at that URL only."""
    keys: list[PublicKey] = []
    for index, log in enumerate(_objects(root, field, where)):
        if base_url is not None and str(log.get("baseUrl", "")).rstrip("/") != base_url:
            continue
        public_key = log.get("publicKey")
        der = _raw_bytes(public_key, f"{field}[{index}].publicKey", where)
        assert isinstance(public_key, Mapping)
        key = _usable_key(der, public_key.get("keyDetails"))
        if key is not None:
            keys.append(key)
    return keys


def _moment(value: object, name: str, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"the trusted root's {name} is not a time", where=where)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"the trusted root's {name} is not an RFC 3339 time", where=where) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def timestamp_authorities_from_trusted_root(data: bytes, where: str) -> list[TimestampAuthority]:
    """The RFC 3161 timestamp authorities (``timestampAuthorities``) of a trusted root (maybe none)."""
    from cryptography import x509

    root = _load_trusted_root(data, where)
    authorities: list[TimestampAuthority] = []
    for index, authority in enumerate(_objects(root, "timestampAuthorities", where)):
        chain = authority.get("certChain")
        holders = chain.get("certificates") if isinstance(chain, Mapping) else None
        if not isinstance(holders, list) or not holders:
            raise InvalidInputError(
                f"the trusted root's timestampAuthorities[{index}] has no certChain.certificates", where=where
            )
        certificates: list[x509.Certificate] = []
        for cert_index, holder in enumerate(holders):
            name = f"timestampAuthorities[{index}].certChain.certificates[{cert_index}]"
            try:
                certificates.append(x509.load_der_x509_certificate(_raw_bytes(holder, name, where)))
            except ValueError:
                raise InvalidInputError(f"the trusted root's {name} is not a DER certificate", where=where) from None
        valid = authority.get("validFor")
        valid = valid if isinstance(valid, Mapping) else {}
        authorities.append(
            TimestampAuthority(
                tuple(certificates),
                _moment(valid.get("start"), f"timestampAuthorities[{index}].validFor.start", where),
                _moment(valid.get("end"), f"timestampAuthorities[{index}].validFor.end", where),
            )
        )
    return authorities


class DeferredTimestampAuthorities(Sequence[TimestampAuthority]):
    """:func:`timestamp_authorities_from_trusted_root` of a root known to be valid (the shipped one), read on
    first use: most verifications meet no RFC 3161 timestamp, and reading the TSAs' certificates is what
    would load X.509 (start-up time of ``verify``, issue 18). A root the user names is read at once instead,
    so that its errors come before any network work."""

    def __init__(self, data: bytes, where: str) -> None:
        self._data, self._where = data, where
        self._authorities: tuple[TimestampAuthority, ...] | None = None
        self._lock = threading.Lock()  # verifications run in threads (parallel_map)

    def _read(self) -> tuple[TimestampAuthority, ...]:
        with self._lock:
            if self._authorities is None:
                self._authorities = tuple(timestamp_authorities_from_trusted_root(self._data, self._where))
            return self._authorities

    @overload
    def __getitem__(self, index: int) -> TimestampAuthority: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[TimestampAuthority]: ...

    def __getitem__(self, index: int | slice) -> TimestampAuthority | Sequence[TimestampAuthority]:
        return self._read()[index]

    def __len__(self) -> int:
        return len(self._read())

    def __repr__(self) -> str:
        return f"DeferredTimestampAuthorities({self._where!r})"


def default_trusted_root() -> bytes:
    """The shipped public-good ``trusted_root.json``."""
    return (resources.files("pipeline") / "data" / "trusted_root.json").read_bytes()


def default_rekor_keys() -> list[PublicKey]:
    return rekor_keys_from_trusted_root(default_trusted_root(), DEFAULT_TRUSTED_ROOT_SOURCE)


def default_fulcio_certificates() -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    return fulcio_certificates_from_trusted_root(default_trusted_root(), DEFAULT_TRUSTED_ROOT_SOURCE)


def default_ct_log_keys() -> list[CtLogKey]:
    return ct_log_keys_from_trusted_root(default_trusted_root(), DEFAULT_TRUSTED_ROOT_SOURCE)


def load_ct_log_public_keys(pem: bytes, where: str) -> list[CtLogKey]:
    """Every ``PUBLIC KEY`` block of ``pem`` as a CT log key (cosign's SIGSTORE_CT_LOG_PUBLIC_KEY_FILE)."""
    from pipeline.cosign.sct import CtLogKey

    blocks = _PUBLIC_KEY_BLOCK_RE.findall(pem)
    if not blocks:
        raise KeyFormatError("no PUBLIC KEY PEM block found for the CT log key", where=where)
    return [CtLogKey.of(load_public_key(block, where)) for block in blocks]


def load_rekor_public_keys(pem: bytes, where: str) -> list[PublicKey]:
    """Every ``PUBLIC KEY`` block of ``pem`` (a Rekor key file such as ``rekor.pub``, possibly several)."""
    blocks = _PUBLIC_KEY_BLOCK_RE.findall(pem)
    if not blocks:
        raise KeyFormatError("no PUBLIC KEY PEM block found for the Rekor key", where=where)
    return [load_public_key(block, where) for block in blocks]
