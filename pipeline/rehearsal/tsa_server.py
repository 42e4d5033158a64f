"""A timestamp authority (RFC 3161 over HTTP) for rehearsals and tests, with its own certificate chain.

``POST /api/v1/timestamp`` with ``Content-Type: application/timestamp-query`` and a DER ``TimeStampReq``
answers ``application/timestamp-reply``: a DER ``TimeStampResp`` (status granted) holding a CMS SignedData
token whose content is the ``TSTInfo`` (the request's message imprint, a serial number, genTime, the
request's nonce), signed (ECDSA P-256/SHA-256, signed attributes: content type, message digest, ESS
signingCertificateV2) by a leaf certificate with the critical ``timeStamping`` extended key usage, issued
by the stand-in's own root; the leaf is embedded. That is the shape Sigstore's timestamp-authority
serves (``/api/v1/timestamp``) and what sigstore-python, sigstore-js and :mod:`pipeline.cosign.timestamp`
verify. ``GET /api/v1/timestamp/certchain`` gives the chain as PEM.

The DER is written here by hand (no ASN.1 library is a runtime dependency): a few TLV helpers below.
The request is read with ``rfc3161-client``.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pipeline.rehearsal.standin_http import Request, Response, StandinServer

TIMESTAMP_PATH: Final = "/api/v1/timestamp"
CERTCHAIN_PATH: Final = "/api/v1/timestamp/certchain"
QUERY_TYPE: Final = "application/timestamp-query"
REPLY_TYPE: Final = "application/timestamp-reply"

_OID_SHA256: Final = "2.16.840.1.101.3.4.2.1"
_OID_ECDSA_SHA256: Final = "1.2.840.10045.4.3.2"
_OID_SIGNED_DATA: Final = "1.2.840.113549.1.7.2"
_OID_TST_INFO: Final = "1.2.840.113549.1.9.16.1.4"
_OID_CONTENT_TYPE: Final = "1.2.840.113549.1.9.3"
_OID_MESSAGE_DIGEST: Final = "1.2.840.113549.1.9.4"
_OID_SIGNING_CERTIFICATE_V2: Final = "1.2.840.113549.1.9.16.2.47"
_IMPRINT_SIZES: Final = {_OID_SHA256: 32, "2.16.840.1.101.3.4.2.2": 48, "2.16.840.1.101.3.4.2.3": 64}
_POLICY: Final = "1.3.6.1.4.1.57264.2"  # Sigstore's TSA policy OID


# --- DER, by hand -------------------------------------------------------------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _set(*items: bytes) -> bytes:
    return _tlv(0x31, b"".join(sorted(items)))  # DER: a SET OF's elements in ascending order


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _octets(value: bytes) -> bytes:
    return _tlv(0x04, value)


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _explicit(number: int, content: bytes) -> bytes:
    return _tlv(0xA0 | number, content)


def _generalized_time(moment: datetime) -> bytes:
    return _tlv(0x18, moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ").encode("ascii"))


def _algorithm(oid: str) -> bytes:
    return _seq(_oid(oid))


# --- the authority ------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "release-vector rehearsal"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])  # fmt: skip


class TimestampAuthority:
    """The TSA's keys and chain (root self-signed, leaf with critical timeStamping EKU), and its signing."""

    def __init__(self, *, now: datetime | None = None) -> None:
        moment = now or datetime.now(UTC)
        not_before, not_after = moment - timedelta(days=1), moment + timedelta(days=3650)
        root_key = ec.generate_private_key(ec.SECP256R1())
        self._key = ec.generate_private_key(ec.SECP256R1())
        root_name, leaf_name = _name("release-vector-tsa-root"), _name("release-vector-tsa")
        self.root = (
            x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(root_key, hashes.SHA256())
        )  # fmt: skip
        self.leaf = (
            x509.CertificateBuilder().subject_name(leaf_name).issuer_name(root_name)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .sign(root_key, hashes.SHA256())
        )  # fmt: skip
        self._serials = itertools.count(1)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "TimestampAuthority(release-vector-tsa)"

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Leaf first, root last (a trusted root's ``certChain`` order)."""
        return (self.leaf, self.root)

    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def timestamp(self, imprint: bytes, nonce: int | None, at: datetime, algorithm: str = _OID_SHA256) -> bytes:
        """A granted ``TimeStampResp`` over ``imprint`` (a digest by the ``algorithm`` OID)."""
        with self._lock:
            serial = next(self._serials)
        tst_info = _seq(
            _int(1),
            _oid(_POLICY),
            _seq(_seq(_oid(algorithm), b"\x05\x00"), _octets(imprint)),
            _int(serial),
            _generalized_time(at),
            *([_int(nonce)] if nonce is not None else []),
        )
        leaf_der = self.leaf.public_bytes(serialization.Encoding.DER)
        issuer_der = self.leaf.issuer.public_bytes()
        signing_certificate = _seq(_seq(_seq(_octets(hashlib.sha256(leaf_der).digest()))))
        attributes = [
            _seq(_oid(_OID_CONTENT_TYPE), _set(_oid(_OID_TST_INFO))),
            _seq(_oid(_OID_MESSAGE_DIGEST), _set(_octets(hashlib.sha256(tst_info).digest()))),
            _seq(_oid(_OID_SIGNING_CERTIFICATE_V2), _set(signing_certificate)),
        ]
        signed_attributes = _set(*attributes)  # signed as a SET; stored as [0] IMPLICIT
        signature = self._key.sign(signed_attributes, ec.ECDSA(hashes.SHA256()))
        signer_info = _seq(
            _int(1),
            _seq(issuer_der, _int(self.leaf.serial_number)),
            _algorithm(_OID_SHA256),
            b"\xa0" + signed_attributes[1:],
            _algorithm(_OID_ECDSA_SHA256),
            _octets(signature),
        )
        signed_data = _seq(
            _int(3),
            _set(_algorithm(_OID_SHA256)),
            _seq(_oid(_OID_TST_INFO), _explicit(0, _octets(tst_info))),
            _explicit(0, leaf_der),  # certificates [0] IMPLICIT SET OF: the leaf
            _set(signer_info),
        )
        token = _seq(_oid(_OID_SIGNED_DATA), _explicit(0, signed_data))
        return _seq(_seq(_int(0)), token)


class TsaServer(StandinServer):
    """The TSA on 127.0.0.1: ``with TsaServer() as tsa: tsa.url`` (the timestamp URL itself)."""

    thread_name = "release-vector-tsa"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, clock: Callable[[], float] = time.time) -> None:
        super().__init__(host=host, port=port)
        self.authority = TimestampAuthority()
        self._clock = clock

    def __repr__(self) -> str:
        return f"TsaServer(url={self.url if self._server else None!r})"

    @property
    def timestamp_url(self) -> str:
        return f"{self.url}{TIMESTAMP_PATH}"

    def handle(self, request: Request) -> Response:
        from rfc3161_client._rust import parse_timestamp_request

        path = request.path.rstrip("/")
        if request.method == "GET" and path == CERTCHAIN_PATH:
            return Response(200, self.authority.chain_pem(), "application/pem-certificate-chain")
        if path != TIMESTAMP_PATH:
            return self.error_response(404, "not found")
        if request.method != "POST":
            return self.error_response(405, "method not allowed")
        if request.headers.get("content-type", "").split(";")[0].strip() != QUERY_TYPE:
            return self.error_response(415, f"the request must be {QUERY_TYPE}")
        try:
            query = parse_timestamp_request(request.body)
        except ValueError:
            return self.error_response(400, "the body is not a DER TimeStampReq")
        imprint = query.message_imprint
        algorithm = imprint.hash_algorithm.dotted_string
        if algorithm not in _IMPRINT_SIZES or len(imprint.message) != _IMPRINT_SIZES[algorithm]:
            return self.error_response(400, "the message imprint is not a sha256, sha384 or sha512 digest")
        at = datetime.fromtimestamp(int(self._clock()), UTC)
        reply = self.authority.timestamp(imprint.message, query.nonce, at, algorithm)
        return Response(201, reply, REPLY_TYPE)
