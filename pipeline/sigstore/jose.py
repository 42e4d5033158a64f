"""Compact JWS/JWT (RFC 7515/7519) for ES256 and RS256, and JWKs (RFC 7517): only what Sigstore needs.

The client side reads a token's claims *without* verifying it (Fulcio verifies; the client needs the
``sub``/``email`` for the proof of possession and the issuer, audience and expiry for early, clear
errors). The stand-ins sign tokens (the OIDC issuer) and verify them against a JWKS (Fulcio).

An ES256 JWS signature is the raw ``r || s`` (32 + 32 bytes, RFC 7518 §3.4), not the DER that
``cryptography`` produces: the conversion happens here.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from pipeline import jsonbounded
from pipeline.errors import InvalidInputError

ES256: Final = "ES256"
RS256: Final = "RS256"
SUPPORTED_ALGORITHMS: Final = frozenset({ES256, RS256})
_P256_COORDINATE_SIZE: Final = 32
MAX_TOKEN_SIZE: Final = 64 * 1024

JwsPrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
JwsPublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class MalformedToken(ValueError):
    """The text is not a compact JWS with a JSON header and JSON-object claims (the reason, never the token)."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text):
        raise MalformedToken("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedToken("not base64url") from None


def _compact_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class DecodedJws:
    """The parts of a compact JWS; nothing verified. ``repr`` shows neither claims nor signature."""

    header: Mapping[str, object] = field(repr=False)
    claims: Mapping[str, object] = field(repr=False)
    signing_input: bytes = field(repr=False)
    signature: bytes = field(repr=False)


def decode_jws(token: str) -> DecodedJws:
    """Split and decode a compact JWS; MalformedToken if it is not one (header and claims JSON objects)."""
    if len(token) > MAX_TOKEN_SIZE:
        raise MalformedToken(f"longer than {MAX_TOKEN_SIZE} characters")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise MalformedToken(f"{len(parts)} dot-separated parts, not 3")
    header_b64, claims_b64, signature_b64 = parts
    try:
        header = jsonbounded.loads(b64url_decode(header_b64), source="token header")
        claims = jsonbounded.loads(b64url_decode(claims_b64), source="token claims")
    except (UnicodeDecodeError, json.JSONDecodeError, InvalidInputError):
        raise MalformedToken("the header or claims are not JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise MalformedToken("the header or claims are not JSON objects")
    return DecodedJws(header, claims, f"{header_b64}.{claims_b64}".encode("ascii"), b64url_decode(signature_b64))


def sign_jws(key: JwsPrivateKey, claims: Mapping[str, object], *, kid: str | None = None) -> str:
    """A compact JWT over ``claims``: ES256 for a P-256 key, RS256 for an RSA key."""
    algorithm = algorithm_for(key.public_key())
    header: dict[str, object] = {"alg": algorithm, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{b64url_encode(_compact_json(header))}.{b64url_encode(_compact_json(dict(claims)))}"
    data = signing_input.encode("ascii")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(_P256_COORDINATE_SIZE, "big") + s.to_bytes(_P256_COORDINATE_SIZE, "big")
    else:
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url_encode(signature)}"


def algorithm_for(key: JwsPublicKey) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("only P-256 EC keys sign ES256")
        return ES256
    return RS256


def verify_jws(decoded: DecodedJws, key: JwsPublicKey) -> bool:
    """Does the signature verify with ``key`` under the header's ``alg`` (which must match the key)?"""
    alg = decoded.header.get("alg")
    if alg not in SUPPORTED_ALGORITHMS or alg != algorithm_for(key):
        return False
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(decoded.signature) != 2 * _P256_COORDINATE_SIZE:
                return False
            r = int.from_bytes(decoded.signature[:_P256_COORDINATE_SIZE], "big")
            s = int.from_bytes(decoded.signature[_P256_COORDINATE_SIZE:], "big")
            key.verify(encode_dss_signature(r, s), decoded.signing_input, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(decoded.signature, decoded.signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


# --- JWK ----------------------------------------------------------------------------------------


def _uint_b64(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(length, "big"))


def public_jwk(key: JwsPublicKey, kid: str) -> dict[str, str]:
    """The public JWK of ``key`` (``use: sig`` and ``alg`` set)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        numbers = key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _uint_b64(numbers.x, _P256_COORDINATE_SIZE),
            "y": _uint_b64(numbers.y, _P256_COORDINATE_SIZE),
            "kid": kid,
            "use": "sig",
            "alg": ES256,
        }
    rsa_numbers = key.public_numbers()
    return {
        "kty": "RSA",
        "n": _uint_b64(rsa_numbers.n),
        "e": _uint_b64(rsa_numbers.e),
        "kid": kid,
        "use": "sig",
        "alg": RS256,
    }


def _jwk_int(jwk: Mapping[str, object], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedToken(f"the JWK has no {name}")
    return int.from_bytes(b64url_decode(value), "big")


def key_from_jwk(jwk: Mapping[str, object]) -> JwsPublicKey:
    """A public key from an EC P-256 or RSA JWK; MalformedToken otherwise."""
    kty = jwk.get("kty")
    try:
        if kty == "EC":
            if jwk.get("crv") != "P-256":
                raise MalformedToken(f"unsupported JWK curve {jwk.get('crv')!r}")
            return ec.EllipticCurvePublicNumbers(_jwk_int(jwk, "x"), _jwk_int(jwk, "y"), ec.SECP256R1()).public_key()
        if kty == "RSA":
            return rsa.RSAPublicNumbers(_jwk_int(jwk, "e"), _jwk_int(jwk, "n")).public_key()
    except ValueError as exc:
        if isinstance(exc, MalformedToken):
            raise
        raise MalformedToken("the JWK is not a valid public key") from None
    raise MalformedToken(f"unsupported JWK type {kty!r}")
