"""Writing a Sigstore ``trusted_root.json`` (``application/vnd.dev.sigstore.trustedroot+json;version=0.1``), pure.

A private Sigstore (the rehearsal's log, Fulcio, CT log and timestamp authority) is described to
verifiers — ours (``--trusted-root``), sigstore-js, sigstore-python, cosign — by this one file. The shape is
sigstore/protobuf-specs ``sigstore_trustroot.proto`` in protojson, as the public-good root in
``tests/vectors/cosign/bundle-v03/trusted_root.public-good.json``: per transparency or CT log its base URL,
DER SPKI with key details and validity, and ``logId.keyId`` = sha256 of the DER SPKI; per certificate
or timestamp authority its chain (the issuing certificate first, the root last) and validity.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pipeline.cosign.keys import PublicKey, public_key_der

TRUSTED_ROOT_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def key_details(key: PublicKey) -> str:
    """protobuf-specs ``PublicKeyDetails`` of a key, as the trusted root states it."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "PKIX_ED25519"
    if isinstance(key, ec.EllipticCurvePublicKey):
        size = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}[key.curve.name]
        digest = {256: 256, 384: 384, 521: 512}[size]
        return f"PKIX_ECDSA_P{size}_SHA_{digest}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"PKIX_RSA_PKCS1V15_{key.key_size}_SHA256"
    raise ValueError(f"unsupported key type {type(key).__name__}")


@dataclass(frozen=True)
class LogKey:
    """A transparency (Rekor) or certificate-transparency log: base URL, key, since when it is trusted."""

    base_url: str
    key: PublicKey
    valid_from: datetime
    # A Rekor v2 log's logId is the C2SP key hash of its key under its checkpoint origin
    # (pipeline.sigstore.rekor_v2.c2sp_key_id), not the sha256 of the SPKI.
    log_id: bytes | None = None


@dataclass(frozen=True)
class Authority:
    """A certificate (Fulcio) or timestamp authority: its URI and chain, issuing certificate first, root last."""

    uri: str
    chain: tuple[x509.Certificate, ...]
    valid_from: datetime


def _log(log: LogKey) -> dict[str, object]:
    der = public_key_der(log.key)
    return {
        "baseUrl": log.base_url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": _b64(der),
            "keyDetails": key_details(log.key),
            "validFor": {"start": _time(log.valid_from)},
        },
        "logId": {"keyId": _b64(log.log_id if log.log_id is not None else hashlib.sha256(der).digest())},
    }


def _authority(authority: Authority) -> dict[str, object]:
    root = authority.chain[-1]
    organization = root.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    common_name = root.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return {
        "subject": {
            "organization": str(organization[0].value) if organization else "",
            "commonName": str(common_name[0].value) if common_name else "",
        },
        "uri": authority.uri,
        "certChain": {
            "certificates": [{"rawBytes": _b64(c.public_bytes(serialization.Encoding.DER))} for c in authority.chain]
        },
        "validFor": {"start": _time(authority.valid_from)},
    }


def trusted_root_json(
    *,
    tlogs: Sequence[LogKey] = (),
    certificate_authorities: Sequence[Authority] = (),
    ctlogs: Sequence[LogKey] = (),
    timestamp_authorities: Sequence[Authority] = (),
) -> bytes:
    """The trusted root's bytes (indented JSON, as the public-good root is published)."""
    document = {
        "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
        "tlogs": [_log(t) for t in tlogs],
        "certificateAuthorities": [_authority(a) for a in certificate_authorities],
        "ctlogs": [_log(c) for c in ctlogs],
        "timestampAuthorities": [_authority(a) for a in timestamp_authorities],
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")
