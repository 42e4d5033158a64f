"""Ed25519ph (RFC 8032 §5.1, the pre-hashed variant) with an empty context, in pure Python.

cosign signs Ed25519 keys with Ed25519ph: the message is first hashed, PH(M) = SHA-512(M), and every
SHA-512 inside the signature is prefixed with dom2(phflag=1, context=""). ``cryptography`` only offers
pure Ed25519 (PH = identity, no dom2), whose signatures are incompatible, so we do the curve arithmetic
ourselves with plain Python ints. The private scalar still comes from ``cryptography``'s key object
(its raw 32-byte seed), so keys are loaded and stored exactly as before.

Verification is RFC 8032 §5.1.7 with strict decoding (canonical y only, no "negative zero" x, points
must be on the curve) and S < L, using the cofactorless equation [S]B == R + [k]A compared by encoding.
That is the check Go's crypto/ed25519 makes, i.e. the one cosign itself applies, so we accept the same
signatures cosign does (one difference: Go tolerates a non-canonical y in the *public key*; we don't,
as the RFC says). The RFC allows either the cofactorless or the cofactored ([8][S]B == [8]R + [8][k]A)
equation; they disagree only on deliberately crafted signatures with small-order components, which
honest signers never produce.

Not constant time: Python big ints and the double-and-add loop leak timing about the nonce r. That is
acceptable for a release pipeline signing a handful of artifacts on its own runner; it is not a library
for signing attacker-chosen messages on a shared host.
"""

from __future__ import annotations

import hashlib
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

__all__ = ["public_key_bytes_from_seed", "sign", "verify"]

# Field prime, curve constant d = -121665/121666 and the prime order L of the base point (RFC 8032 §5.1).
P: Final = 2**255 - 19
D: Final = -121665 * pow(121666, P - 2, P) % P
L: Final = 2**252 + 27742317777372353535851937790883648493
SQRT_M1: Final = pow(2, (P - 1) // 4, P)  # a square root of -1 mod p, for the other root in decoding

# dom2(phflag=1, context=""): "SigEd25519 no Ed25519 collisions" || octet(1) || octet(len(C)) || C.
DOM2_PH: Final = b"SigEd25519 no Ed25519 collisions" + bytes([1]) + bytes([0])

# Extended homogeneous coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z (RFC 8032 §5.1.4).
Point = tuple[int, int, int, int]
IDENTITY: Final[Point] = (0, 1, 1, 0)
D2: Final = 2 * D % P


def _add(p1: Point, p2: Point) -> Point:
    """Unified addition for a = -1 twisted Edwards (add-2008-hwcd-3); also correct for doubling."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * D2 * t2 % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _double(p1: Point) -> Point:
    """Dedicated doubling (dbl-2008-hwcd): four squarings instead of a full addition's products."""
    x1, y1, z1, _ = p1
    a = x1 * x1 % P
    b = y1 * y1 % P
    c = 2 * z1 * z1 % P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1)
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _scalar_mult(scalar: int, point: Point) -> Point:
    """[scalar]point by most-significant-bit-first double-and-add (variable time, see module docstring)."""
    result = IDENTITY
    for i in reversed(range(scalar.bit_length())):
        result = _double(result)
        if scalar >> i & 1:
            result = _add(result, point)
    return result


def _encode(point: Point) -> bytes:
    """RFC 8032 §5.1.2: 255-bit little-endian y with the low bit of x in the top bit."""
    x, y, z, _ = point
    z_inv = pow(z, P - 2, P)
    x, y = x * z_inv % P, y * z_inv % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _decode(encoded: bytes) -> Point | None:
    """RFC 8032 §5.1.3, strictly: None for a wrong length, y >= p, x = 0 with sign 1, or no such point."""
    if len(encoded) != 32:
        return None
    value = int.from_bytes(encoded, "little")
    sign, y = value >> 255, value & ((1 << 255) - 1)
    if y >= P:  # a non-canonical y would give one point several encodings, i.e. malleable signatures
        return None
    # The curve -x^2 + y^2 = 1 + d x^2 y^2 gives x^2 = u/v with u = y^2 - 1, v = d y^2 + 1 (v is never 0).
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P  # candidate root of u/v, one exponentiation
    if (v * x * x - u) % P != 0:
        if (v * x * x + u) % P != 0:
            return None  # u/v is not a square: y is not on the curve
        x = x * SQRT_M1 % P
    if x == 0 and sign == 1:  # -0 == 0, so this would be a second encoding of the same point
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


# The base point B (RFC 8032 §5.1): y = 4/5 and x even. Decoding it also exercises _decode at import.
_BASE = _decode((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))
assert _BASE is not None
BASE: Final[Point] = _BASE

# [2^i]B for i < 255, every bit a clamped (< 2^255) or reduced (< L) scalar can have: [n]B then needs
# only additions, halving its cost.
_BASE_POWERS: Final[list[Point]] = [BASE]
for _ in range(254):
    _BASE_POWERS.append(_double(_BASE_POWERS[-1]))


def _base_mult(scalar: int) -> Point:
    """[scalar]B for 0 <= scalar < 2^255."""
    if not 0 <= scalar < 1 << 255:
        raise ValueError("scalar out of range for the base-point table")
    result = IDENTITY
    for i, power in enumerate(_BASE_POWERS):
        if scalar >> i & 1:
            result = _add(result, power)
    return result


def _sha512_mod_l(*parts: bytes) -> int:
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little") % L


def _expand_seed(seed: bytes) -> tuple[int, bytes]:
    """RFC 8032 §5.1.5: the clamped secret scalar s and the 32-byte nonce prefix from SHA-512(seed)."""
    digest = hashlib.sha512(seed).digest()
    s = int.from_bytes(digest[:32], "little")
    s &= (1 << 254) - 8  # clear the 3 low bits (a multiple of the cofactor 8) and bit 255
    s |= 1 << 254  # set bit 254
    return s, digest[32:]


def public_key_bytes_from_seed(seed: bytes) -> bytes:
    """The 32-byte public key A = [s]B of a 32-byte seed (lets tests check our arithmetic against OpenSSL's)."""
    if len(seed) != 32:
        raise ValueError(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
    s, _ = _expand_seed(seed)
    return _encode(_base_mult(s))


def sign(private_key: Ed25519PrivateKey, message: bytes) -> bytes:
    """64-byte Ed25519ph signature of ``message`` (empty context)."""
    seed = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    s, prefix = _expand_seed(seed)
    prehash = hashlib.sha512(message).digest()
    # RFC 8032 §5.1.6 with dom2 and PH(M) substituted for M: deterministic nonce, then the challenge.
    r = _sha512_mod_l(DOM2_PH, prefix, prehash)
    encoded_r = _encode(_base_mult(r))
    k = _sha512_mod_l(DOM2_PH, encoded_r, public, prehash)
    return encoded_r + ((r + k * s) % L).to_bytes(32, "little")


def verify(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519ph signature of ``message`` (empty context) under ``public_key``.

    Never raises for bad input (wrong lengths, non-canonical encodings, points not on the curve, S >= L):
    returns False.
    """
    return verify_prehashed(public_key, signature, hashlib.sha512(message).digest())


def verify_prehashed(public_key: Ed25519PublicKey, signature: bytes, prehash: bytes) -> bool:
    """:func:`verify` given PH(M), the message's SHA-512 digest (what a hashedrekord entry records)."""
    public = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    if len(signature) != 64 or len(prehash) != 64:
        return False
    encoded_r, encoded_s = bytes(signature[:32]), bytes(signature[32:])
    a = _decode(public)
    r = _decode(encoded_r)
    s = int.from_bytes(encoded_s, "little")
    if a is None or r is None or s >= L:  # S >= L would let S + L stand in for S (malleability)
        return False
    k = _sha512_mod_l(DOM2_PH, encoded_r, public, prehash)
    # Cofactorless [S]B == R + [k]A, compared by canonical encoding (see the module docstring for why).
    return _encode(_base_mult(s)) == _encode(_add(r, _scalar_mult(k, a)))
