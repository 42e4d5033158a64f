"""Ed25519ph: the RFC 8032 §7.3 vector, round trips, rejections, and our curve arithmetic against OpenSSL's."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pipeline.cosign import ed25519ph
from pipeline.cosign.ed25519ph import BASE, IDENTITY, L, P

# RFC 8032 §7.3, "TEST abc", exactly as published.
RFC_SECRET_KEY = "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42"
RFC_PUBLIC_KEY = "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf"
RFC_MESSAGE = "616263"
RFC_SIGNATURE = (
    "98a70222f0b8121aa9d30f813d683f80"
    "9e462b469c7ff87639499bb94e6dae41"
    "31f85042463c2a355a2003d062adf5aa"
    "a10b8c61e636062aaad11c2a26083406"
)


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_from(raw: bytes) -> Ed25519PublicKey:
    # OpenSSL stores any 32 bytes without validating them, which lets us hand verify() bad points.
    return Ed25519PublicKey.from_public_bytes(raw)


def flip_bit(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


@pytest.fixture(scope="module")
def rfc_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC_SECRET_KEY))


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def signed(key: Ed25519PrivateKey) -> tuple[bytes, bytes]:
    message = b"release-vector artifact"
    return message, ed25519ph.sign(key, message)


# --- RFC 8032 §7.3 -----------------------------------------------------------------------------------


def test_rfc_public_key_matches_cryptography(rfc_key: Ed25519PrivateKey) -> None:
    assert raw_public(rfc_key.public_key()).hex() == RFC_PUBLIC_KEY


def test_rfc_sign_reproduces_signature(rfc_key: Ed25519PrivateKey) -> None:
    assert ed25519ph.sign(rfc_key, bytes.fromhex(RFC_MESSAGE)).hex() == RFC_SIGNATURE


def test_rfc_verify_accepts_signature() -> None:
    public = public_key_from(bytes.fromhex(RFC_PUBLIC_KEY))
    assert ed25519ph.verify(public, bytes.fromhex(RFC_SIGNATURE), bytes.fromhex(RFC_MESSAGE))


# --- round trips ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [b"", b"\x00", b"abc", os.urandom(1000), bytes(range(256)) * 4096],  # the last is 1 MiB
    ids=["empty", "one-zero-byte", "abc", "random-1000", "1MiB"],
)
def test_round_trip_with_fresh_key(message: bytes) -> None:
    key = Ed25519PrivateKey.generate()
    signature = ed25519ph.sign(key, message)
    assert len(signature) == 64
    assert ed25519ph.verify(key.public_key(), signature, message)
    assert ed25519ph.sign(key, message) == signature  # deterministic, as EdDSA is


def test_one_mib_message_is_one_mib() -> None:
    assert len(bytes(range(256)) * 4096) == 1 << 20


# --- rejections ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bit", [0, 7, 100, 254, 255])
def test_rejects_flipped_bit_in_r(key: Ed25519PrivateKey, signed: tuple[bytes, bytes], bit: int) -> None:
    message, signature = signed
    assert not ed25519ph.verify(key.public_key(), flip_bit(signature, bit), message)


@pytest.mark.parametrize("bit", [256, 263, 400, 507, 511])
def test_rejects_flipped_bit_in_s(key: Ed25519PrivateKey, signed: tuple[bytes, bytes], bit: int) -> None:
    message, signature = signed
    assert not ed25519ph.verify(key.public_key(), flip_bit(signature, bit), message)


@pytest.mark.parametrize("bit", [0, 5, 8 * 22])
def test_rejects_flipped_bit_in_message(key: Ed25519PrivateKey, signed: tuple[bytes, bytes], bit: int) -> None:
    message, signature = signed
    assert not ed25519ph.verify(key.public_key(), signature, flip_bit(message, bit))


def test_rejects_other_message_lengths(key: Ed25519PrivateKey, signed: tuple[bytes, bytes]) -> None:
    message, signature = signed
    assert not ed25519ph.verify(key.public_key(), signature, message + b"\x00")
    assert not ed25519ph.verify(key.public_key(), signature, message[:-1])


def test_rejects_non_canonical_s(key: Ed25519PrivateKey, signed: tuple[bytes, bytes]) -> None:
    message, signature = signed
    s = int.from_bytes(signature[32:], "little")
    assert s < L
    # S + L satisfies the group equation just as S does (L*B is the identity); only the S < L check stops it.
    malleated = signature[:32] + (s + L).to_bytes(32, "little")
    assert not ed25519ph.verify(key.public_key(), malleated, message)


def test_rejects_wrong_public_key(signed: tuple[bytes, bytes]) -> None:
    message, signature = signed
    assert not ed25519ph.verify(Ed25519PrivateKey.generate().public_key(), signature, message)


@pytest.mark.parametrize("length", [0, 1, 32, 63, 65, 128])
def test_rejects_wrong_signature_length(key: Ed25519PrivateKey, signed: tuple[bytes, bytes], length: int) -> None:
    message, signature = signed
    wrong = (signature * 2)[:length]
    assert not ed25519ph.verify(key.public_key(), wrong, message)


def test_pure_ed25519_signature_is_not_ed25519ph(key: Ed25519PrivateKey) -> None:
    message = b"domain separation"
    pure = key.sign(message)
    key.public_key().verify(pure, message)  # a valid pure Ed25519 signature ...
    assert not ed25519ph.verify(key.public_key(), pure, message)  # ... is no Ed25519ph signature


def test_ed25519ph_signature_is_not_pure_ed25519(key: Ed25519PrivateKey) -> None:
    message = b"domain separation"
    prehashed = ed25519ph.sign(key, message)
    with pytest.raises(InvalidSignature):
        key.public_key().verify(prehashed, message)


def _encode_y(y: int, sign: int = 0) -> bytes:
    return (y | sign << 255).to_bytes(32, "little")


def _not_on_curve_y() -> int:
    """The smallest y for which no x exists: x^2 = (y^2 - 1)/(d y^2 + 1) is a non-square (Euler's criterion)."""
    d = -121665 * pow(121666, P - 2, P) % P
    for y in range(2, 1000):  # about half of all y qualify; the bound only turns a bug into a failure, not a hang
        x_squared = (y * y - 1) * pow(d * y * y + 1, P - 2, P) % P
        if pow(x_squared, (P - 1) // 2, P) == P - 1:
            return y
    raise AssertionError("no y off the curve below 1000")


# Encodings RFC 8032 §5.1.3 says to reject: y = p and y = p + 1 are y = 0 and y = 1 (both on the curve)
# written non-canonically; y = 1 with the sign bit set is the identity with "x = -0"; the last has no x.
BAD_POINTS = {
    "y=p": _encode_y(P),
    "y=p+1": _encode_y(P + 1),
    "y=2^255-1": _encode_y(2**255 - 1),
    "x=-0": _encode_y(1, sign=1),
    "not-on-curve": _encode_y(_not_on_curve_y()),
}


@pytest.mark.parametrize("encoded", BAD_POINTS.values(), ids=BAD_POINTS.keys())
def test_decode_rejects(encoded: bytes) -> None:
    assert ed25519ph._decode(encoded) is None


def test_decode_accepts_canonical_versions_of_the_same_points() -> None:
    assert ed25519ph._decode(_encode_y(0)) is not None
    assert ed25519ph._decode(_encode_y(1)) == (0, 1, 1, 0)


@pytest.mark.parametrize("encoded", BAD_POINTS.values(), ids=BAD_POINTS.keys())
def test_verify_rejects_bad_public_key(signed: tuple[bytes, bytes], encoded: bytes) -> None:
    message, signature = signed
    assert not ed25519ph.verify(public_key_from(encoded), signature, message)


@pytest.mark.parametrize("encoded", BAD_POINTS.values(), ids=BAD_POINTS.keys())
def test_verify_rejects_bad_r(key: Ed25519PrivateKey, signed: tuple[bytes, bytes], encoded: bytes) -> None:
    message, signature = signed
    assert not ed25519ph.verify(key.public_key(), encoded + signature[32:], message)


# The identity point as public key makes [k]A vanish, so (R, S) = ([S]B, S) "signs" every message and
# (identity, 0) does too. These forged signatures verify under the canonical encodings (RFC 8032 does not
# reject small-order keys, nor does Go); the tests below show that only strict decoding stops the
# non-canonical encodings of the very same points, so those rejections are not vacuous.
IDENTITY_CANONICAL = _encode_y(1)
IDENTITY_NON_CANONICAL = {"y=p+1": _encode_y(P + 1), "x=-0": _encode_y(1, sign=1)}


def test_identity_public_key_forgery_verifies_when_canonical() -> None:
    s = 12345
    forged = ed25519ph._encode(ed25519ph._base_mult(s)) + s.to_bytes(32, "little")
    assert ed25519ph.verify(public_key_from(IDENTITY_CANONICAL), forged, b"any message")
    assert ed25519ph.verify(public_key_from(IDENTITY_CANONICAL), IDENTITY_CANONICAL + bytes(32), b"any message")


@pytest.mark.parametrize("encoded", IDENTITY_NON_CANONICAL.values(), ids=IDENTITY_NON_CANONICAL.keys())
def test_verify_rejects_non_canonical_public_key_that_would_verify(encoded: bytes) -> None:
    s = 12345
    forged = ed25519ph._encode(ed25519ph._base_mult(s)) + s.to_bytes(32, "little")
    assert not ed25519ph.verify(public_key_from(encoded), forged, b"any message")


@pytest.mark.parametrize("encoded", IDENTITY_NON_CANONICAL.values(), ids=IDENTITY_NON_CANONICAL.keys())
def test_verify_rejects_non_canonical_r_that_would_verify(encoded: bytes) -> None:
    assert not ed25519ph.verify(public_key_from(IDENTITY_CANONICAL), encoded + bytes(32), b"any message")


def test_verify_rejects_all_zero_and_all_ones(key: Ed25519PrivateKey) -> None:
    for signature in (bytes(64), b"\xff" * 64):
        assert not ed25519ph.verify(key.public_key(), signature, b"")


# --- the curve arithmetic, cross-checked against OpenSSL (via cryptography) -----------------------------


@pytest.mark.parametrize("seed", [bytes(32), b"\xff" * 32, *(os.urandom(32) for _ in range(16))])
def test_public_key_from_seed_matches_cryptography(seed: bytes) -> None:
    expected = raw_public(Ed25519PrivateKey.from_private_bytes(seed).public_key())
    assert ed25519ph.public_key_bytes_from_seed(seed) == expected


def test_public_key_from_seed_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ed25519ph.public_key_bytes_from_seed(bytes(31))


def test_base_point_encoding_and_order() -> None:
    # RFC 8032 §5.1: B's encoding is 0x58 followed by 31 bytes of 0x66, and [L]B is the identity.
    assert ed25519ph._encode(BASE) == bytes([0x58]) + bytes([0x66]) * 31
    assert ed25519ph._encode(ed25519ph._scalar_mult(L, BASE)) == ed25519ph._encode(IDENTITY)


@pytest.mark.parametrize("scalar", [0, 1, 2, 8, L - 1, L, 2**254 + 8, int.from_bytes(os.urandom(32), "little") >> 1])
def test_table_base_mult_matches_generic_scalar_mult(scalar: int) -> None:
    expected = ed25519ph._encode(ed25519ph._scalar_mult(scalar, BASE))
    assert ed25519ph._encode(ed25519ph._base_mult(scalar)) == expected


def test_doubling_matches_addition() -> None:
    point = ed25519ph._base_mult(123456789)
    assert ed25519ph._encode(ed25519ph._double(point)) == ed25519ph._encode(ed25519ph._add(point, point))


def test_verify_prehashed_takes_the_sha512_digest_a_log_entry_records() -> None:
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from pipeline.cosign.ed25519ph import verify_prehashed

    key = Ed25519PrivateKey.generate()
    signature = ed25519ph.sign(key, b"payload")
    assert verify_prehashed(key.public_key(), signature, hashlib.sha512(b"payload").digest())
    assert not verify_prehashed(key.public_key(), signature, hashlib.sha512(b"other").digest())
    assert not verify_prehashed(key.public_key(), signature, hashlib.sha256(b"payload").digest())
