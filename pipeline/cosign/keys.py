"""cosign-compatible key files: the encrypted private key and the PKIX public key (pure, no I/O).

The private-key file is what ``cosign generate-key-pair`` writes: a PEM block labelled
``ENCRYPTED SIGSTORE PRIVATE KEY`` (older cosign: ``ENCRYPTED COSIGN PRIVATE KEY``) whose body is
the compact JSON envelope of go-securesystemslib's ``encrypted`` package::

    {"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"<b64>"},
     "cipher":{"name":"nacl/secretbox","nonce":"<b64>"},"ciphertext":"<b64>"}

key = scrypt(password, salt, N, r, p, 32); plaintext = secretbox.open(ciphertext, nonce, key);
the plaintext is a PKCS#8 DER private key (cosign refuses anything else, SEC1 included).

Every function takes the *source* of the key (a path or ``env://NAME``) only to name it in errors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Final, Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from pipeline import jsonbounded
from pipeline.cosign import ed25519ph
from pipeline.errors import (
    CorruptKeyError,
    InvalidInputError,
    KeyFormatError,
    SigningError,
    UnsupportedKdfError,
    UnsupportedKeyError,
    VerificationError,
    WrongPasswordError,
)
from pipeline.secret import Secret

SIGSTORE_PRIVATE_KEY_LABEL: Final = "ENCRYPTED SIGSTORE PRIVATE KEY"
COSIGN_PRIVATE_KEY_LABEL: Final = "ENCRYPTED COSIGN PRIVATE KEY"
PRIVATE_KEY_LABELS: Final = (SIGSTORE_PRIVATE_KEY_LABEL, COSIGN_PRIVATE_KEY_LABEL)
PUBLIC_KEY_LABEL: Final = "PUBLIC KEY"

# The only scrypt parameter sets go-securesystemslib's encrypted.Decrypt accepts (legacy, standard,
# OWASP). Anything else is refused before any work: a tampered N would be a denial of service.
ACCEPTED_SCRYPT_PARAMS: Final = frozenset({(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)})
WRITE_SCRYPT_N: Final = 65536
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SALT_SIZE: Final = 32
# nacl's SecretBox sizes, written out: nacl loads only when a key is encrypted or decrypted (start-up time).
NONCE_SIZE: Final = 24  # nacl.secret.SecretBox.NONCE_SIZE
KEY_SIZE: Final = 32  # nacl.secret.SecretBox.KEY_SIZE
_MAC_SIZE: Final = 16  # nacl.secret.SecretBox.MACBYTES
_SCRYPT_MAXMEM: Final = 256 * 1024 * 1024  # 128 * r * N for N = 2^17 is 128 MiB

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

# The curves cosign's key validation (sigstore goodkey) accepts, and the hash cosign signs with on each
# (signature.LoadDefaultSignerVerifier): SHA-256 on P-256, SHA-384 on P-384, SHA-512 on P-521.
CURVE_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}
RSA_MIN_BITS: Final = 2048


def signing_hash(key: PublicKey) -> hashes.HashAlgorithm:
    """The hash cosign signs with for this key (and records in a hashedrekord entry): the curve's for
    ECDSA, SHA-256 for RSA, SHA-512 for Ed25519 (Ed25519ph prehashes with it)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return CURVE_HASHES[key.curve.name]()
    if isinstance(key, ed25519.Ed25519PublicKey):
        return hashes.SHA512()
    return hashes.SHA256()


# --- PEM ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PemBlock:
    label: str
    der: bytes


def decode_pem(data: bytes, source: str) -> PemBlock:
    """The first PEM block of ``data``; refuses truncation, mismatched labels and bad base64."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyFormatError("the key is not a PEM file (it holds non-ASCII bytes)", where=source) from None
    lines = [line.strip() for line in text.splitlines()]
    begin = next((i for i, line in enumerate(lines) if line.startswith("-----BEGIN ")), None)
    if begin is None or not lines[begin].endswith("-----"):
        raise KeyFormatError("the key is not a PEM file (no BEGIN line)", where=source)
    label = lines[begin][len("-----BEGIN ") : -len("-----")]
    end_line = f"-----END {label}-----"
    end = next((i for i in range(begin + 1, len(lines)) if lines[i].startswith("-----END ")), None)
    if end is None:
        raise KeyFormatError(f"the {label} PEM block is truncated (no END line)", where=source)
    if lines[end] != end_line:
        raise KeyFormatError(
            f"the PEM block begins as {label!r} but ends as {lines[end][9:-5]!r}", where=source
        )
    body = "".join(line for line in lines[begin + 1 : end] if ":" not in line)
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"the {label} PEM block has invalid base64", where=source) from None
    if not der:
        raise KeyFormatError(f"the {label} PEM block is empty", where=source)
    return PemBlock(label, der)


def encode_pem(label: str, der: bytes) -> bytes:
    """PEM as Go's ``pem.EncodeToMemory`` writes it: 64-character lines, trailing newline."""
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return ("\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n").encode()


# --- the encrypted envelope --------------------------------------------------------------------


def _scrypt(password: Secret, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.reveal(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=KEY_SIZE)


def encrypt_envelope(plaintext: bytes, password: Secret, *, salt: bytes, nonce: bytes) -> bytes:
    """The compact JSON envelope, fields in cosign's order (kdf, cipher, ciphertext)."""
    import nacl.secret

    key = _scrypt(password, salt, WRITE_SCRYPT_N, SCRYPT_R, SCRYPT_P)
    ciphertext = nacl.secret.SecretBox(key).encrypt(plaintext, nonce).ciphertext
    envelope = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": WRITE_SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def _b64_field(value: object, name: str, source: str) -> bytes:
    if not isinstance(value, str):
        raise KeyFormatError(f"the encrypted key's {name} is not a base64 string", where=source)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"the encrypted key's {name} is not valid base64", where=source) from None


def decrypt_envelope(envelope_bytes: bytes, password: Secret, source: str) -> bytes:
    """The plaintext inside a cosign envelope, with go-securesystemslib's checks."""
    try:
        envelope = jsonbounded.loads(envelope_bytes, source=source, what="the encrypted key's body")
    except (UnicodeDecodeError, json.JSONDecodeError, InvalidInputError):
        raise KeyFormatError("the encrypted key's body is not JSON", where=source) from None
    if not isinstance(envelope, dict):
        raise KeyFormatError("the encrypted key's body is not a JSON object", where=source)
    kdf, cipher = envelope.get("kdf"), envelope.get("cipher")
    if not isinstance(kdf, dict) or not isinstance(cipher, dict) or "ciphertext" not in envelope:
        raise KeyFormatError("the encrypted key lacks kdf, cipher or ciphertext", where=source)
    if kdf.get("name") != "scrypt":
        raise UnsupportedKdfError(f"unsupported key derivation {kdf.get('name')!r} (only scrypt)", where=source)
    if cipher.get("name") != "nacl/secretbox":
        raise UnsupportedKdfError(
            f"unsupported cipher {cipher.get('name')!r} (only nacl/secretbox)", where=source
        )
    params = kdf.get("params")
    if not isinstance(params, dict):
        raise KeyFormatError("the encrypted key's scrypt params are missing", where=source)
    n, r, p = params.get("N"), params.get("r"), params.get("p")
    if (n, r, p) not in ACCEPTED_SCRYPT_PARAMS or not all(type(v) is int for v in (n, r, p)):
        raise UnsupportedKdfError(
            f"unsupported scrypt parameters N={n}, r={r}, p={p}",
            where=source,
            hint="cosign accepts N of 32768, 65536 or 131072 with r=8, p=1",
        )
    assert isinstance(n, int) and isinstance(r, int) and isinstance(p, int)
    salt = _b64_field(kdf.get("salt"), "salt", source)
    nonce = _b64_field(cipher.get("nonce"), "nonce", source)
    ciphertext = _b64_field(envelope["ciphertext"], "ciphertext", source)
    if len(nonce) != NONCE_SIZE:
        raise CorruptKeyError(f"the encrypted key's nonce is {len(nonce)} bytes, not {NONCE_SIZE}", where=source)
    if len(ciphertext) <= _MAC_SIZE:
        raise CorruptKeyError("the encrypted key's ciphertext is truncated", where=source)
    import nacl.exceptions
    import nacl.secret

    key = _scrypt(password, salt, n, r, p)
    try:
        return bytes(nacl.secret.SecretBox(key).decrypt(ciphertext, nonce))
    except nacl.exceptions.CryptoError:
        # secretbox authenticates: a wrong password and a damaged ciphertext fail the same MAC check.
        raise WrongPasswordError(
            "wrong password for the private key (or its ciphertext is damaged)",
            where=source,
            hint="check COSIGN_PASSWORD; an empty COSIGN_PASSWORD means the empty password",
        ) from None


# --- private keys ------------------------------------------------------------------------------


def _der_elements(der: bytes) -> list[int]:
    """Tags of the top-level SEQUENCE's elements (enough to tell PKCS#8 from SEC1 or PKCS#1)."""
    if len(der) < 2 or der[0] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    pos, end = _der_header(der, 0)
    tags: list[int] = []
    while pos < end and len(tags) < 3:
        tags.append(der[pos])
        _start, content_end = _der_header(der, pos)
        pos = content_end
    return tags


def _der_header(der: bytes, pos: int) -> tuple[int, int]:
    """(start of content, end of content) of the DER element at ``pos``."""
    if pos + 2 > len(der):
        raise ValueError("truncated DER")
    length = der[pos + 1]
    start = pos + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(der):
            raise ValueError("bad DER length")
        length = int.from_bytes(der[start : start + count], "big")
        start += count
    if start + length > len(der):
        raise ValueError("truncated DER")
    return start, start + length


def load_pkcs8_private_key(der: bytes, source: str) -> PrivateKey:
    """A PKCS#8 key of a type cosign accepts (:func:`check_key_type`); SEC1 and PKCS#1 are refused as cosign
    refuses them."""
    try:
        tags = _der_elements(der)
    except ValueError:
        raise CorruptKeyError("the decrypted private key is not valid DER", where=source) from None
    # PrivateKeyInfo ::= SEQUENCE { version INTEGER, algorithm SEQUENCE, privateKey OCTET STRING }
    if tags[:3] != [0x02, 0x30, 0x04]:
        kind = "SEC1 (EC PRIVATE KEY)" if tags[1:2] == [0x04] else "not PKCS#8"
        raise UnsupportedKeyError(
            f"the decrypted private key is {kind}; cosign requires PKCS#8",
            where=source,
            hint="convert it with `openssl pkcs8 -topk8 -nocrypt` and import it again",
        )
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CorruptKeyError("the decrypted PKCS#8 private key cannot be parsed", where=source) from None
    if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        check_key_type(key.public_key(), source)
        return key
    raise UnsupportedKeyError(f"unsupported private key type {type(key).__name__}", where=source)


def check_key_type(key: PublicKey, source: str) -> None:
    """The key types cosign accepts: ECDSA P-256/P-384/P-521, RSA of 2048 bits or more, Ed25519."""
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in CURVE_HASHES:
        raise UnsupportedKeyError(
            f"unsupported elliptic curve {key.curve.name} (P-256, P-384 or P-521)", where=source
        )
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < RSA_MIN_BITS:
        raise UnsupportedKeyError(
            f"RSA key of {key.key_size} bits is too small ({RSA_MIN_BITS} minimum)", where=source
        )


@dataclass(frozen=True)
class SigningKey:
    """A decrypted private key and where it came from (for messages)."""

    private_key: PrivateKey
    source: str

    def __repr__(self) -> str:  # never show key material
        return f"SigningKey(source={self.source!r})"

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def public_key_pem(self) -> bytes:
        return public_key_to_pem(self.public_key)

    def sign(self, data: bytes, *, pure_ed25519: bool = False) -> bytes:
        """As cosign signs: ECDSA with the curve's hash (ASN.1 DER), RSA PKCS#1 v1.5/SHA-256, Ed25519ph
        (cosign's default for Ed25519, the only form a hashedrekord entry can hold). ``pure_ed25519``:
        plain Ed25519, which DSSE envelopes use."""
        key = self.private_key
        try:
            if isinstance(key, ec.EllipticCurvePrivateKey):
                return key.sign(data, ec.ECDSA(signing_hash(key.public_key())))
            if isinstance(key, ed25519.Ed25519PrivateKey):
                return key.sign(data) if pure_ed25519 else ed25519ph.sign(key, data)
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        except ValueError as exc:  # pragma: no cover - the key was validated on load
            raise SigningError(f"signing failed: {type(exc).__name__}", where=self.source) from None


class PrivateKeyHandle(Protocol):
    """What signs as a private key does: a decrypted key file (:class:`SigningKey`), or a key that never
    leaves its token or KMS (``pipeline/signatures/pkcs11.py``, ``awskms.py``). Signatures are the same kind
    whichever signs: :meth:`SigningKey.sign`'s algorithms, ECDSA as ASN.1 DER."""

    @property
    def source(self) -> str:
        """Where the key is, for messages (never a secret)."""
        ...

    @property
    def public_key(self) -> PublicKey: ...

    def public_key_pem(self) -> bytes: ...

    def sign(self, data: bytes, *, pure_ed25519: bool = False) -> bytes: ...


class _Reference(Protocol):
    def redacted(self) -> str: ...


class KeptKey:
    """What every key kept elsewhere (a token key, a KMS key) shares: it names itself by its reference with
    any secret in it redacted (``repr`` too), and gives its public half. Subclasses set ``_uri`` and
    ``_public_key`` and add ``sign``."""

    _uri: _Reference
    _public_key: PublicKey

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r})"

    @property
    def source(self) -> str:
        return self._uri.redacted()

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    def public_key_pem(self) -> bytes:
        return public_key_to_pem(self._public_key)


def load_private_key(pem: Secret, password: Secret, source: str) -> SigningKey:
    """Decrypt a cosign private-key file (either label) into a signing key."""
    block = decode_pem(pem.reveal(), source)
    if block.label not in PRIVATE_KEY_LABELS:
        raise KeyFormatError(
            f"unexpected PEM type {block.label!r} for a cosign private key",
            where=source,
            hint=f"expected {SIGSTORE_PRIVATE_KEY_LABEL!r} or {COSIGN_PRIVATE_KEY_LABEL!r}",
        )
    plaintext = decrypt_envelope(block.der, password, source)
    return SigningKey(load_pkcs8_private_key(plaintext, source), source)


@dataclass(frozen=True)
class KeyPairFiles:
    """The bytes of ``cosign.key`` (encrypted) and ``cosign.pub``."""

    private_pem: Secret
    public_pem: bytes


def generate_key_pair(password: Secret) -> KeyPairFiles:
    """A new ECDSA P-256 key pair in cosign's file formats (scrypt N=65536, r=8, p=1)."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    return encrypt_key_pair(private_key, password)


def encrypt_key_pair(private_key: PrivateKey, password: Secret) -> KeyPairFiles:
    pkcs8 = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    envelope = encrypt_envelope(pkcs8, password, salt=os.urandom(SALT_SIZE), nonce=os.urandom(NONCE_SIZE))
    return KeyPairFiles(
        private_pem=Secret(encode_pem(SIGSTORE_PRIVATE_KEY_LABEL, envelope)),
        public_pem=public_key_to_pem(private_key.public_key()),
    )


# --- public keys and verification -------------------------------------------------------------


def public_key_to_pem(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_der(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes, source: str) -> PublicKey:
    """A PKIX ``PUBLIC KEY`` PEM holding an ECDSA or RSA key."""
    block = decode_pem(pem, source)
    if block.label != PUBLIC_KEY_LABEL:
        private = "PRIVATE KEY" in block.label
        raise KeyFormatError(
            f"expected a PUBLIC KEY PEM, found {block.label!r}",
            where=source,
            hint="this is a private key: verifying takes the public one (cosign.pub; release-vector public-key"
            " --key FILE prints it)" if private else None,
        )
    try:
        key = serialization.load_der_public_key(block.der)
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFormatError("the public key cannot be parsed", where=source) from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise UnsupportedKeyError(f"unsupported public key type {type(key).__name__}", where=source)
    check_key_type(key, source)
    return key


def signature_verifies(public_key: PublicKey, data: bytes, signature: bytes, *, pure_ed25519: bool = False) -> bool:
    """Whether ``signature`` is a valid signature of ``data`` as cosign makes and accepts them."""
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            curve_hash = signing_hash(public_key)
            try:
                public_key.verify(signature, data, ec.ECDSA(curve_hash))
            except InvalidSignature:
                if isinstance(curve_hash, hashes.SHA256):
                    raise
                # cosign's compatibility verifier: older cosign signed with SHA-256 on every curve
                public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            return True
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            if not pure_ed25519 and ed25519ph.verify(public_key, signature, data):
                return True
            public_key.verify(signature, data)  # pure Ed25519: DSSE, and cosign before Ed25519ph
            return True
        public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def verify_signature(
    public_key: PublicKey, data: bytes, signature: bytes, *, where: str, pure_ed25519: bool = False
) -> None:
    """Raise VerificationError unless ``signature`` is a valid signature of ``data`` as cosign makes and
    accepts them (see :meth:`SigningKey.sign`; ``pure_ed25519`` for DSSE envelopes)."""
    if not signature_verifies(public_key, data, signature, pure_ed25519=pure_ed25519):
        raise VerificationError("the signature does not verify with the given key", where=where)
