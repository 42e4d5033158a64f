"""A private key on a PKCS#11 token (``pkcs11:`` URIs), through python-pkcs11.

The signature is made on the token (``C_Sign``); the private key is never read. We hash in software and
have the token sign the digest (``CKM_ECDSA`` over the curve's hash; ``CKM_RSA_PKCS`` over the SHA-256
DigestInfo), as cosign's crypto11 does: every token has those two mechanisms (SoftHSM2 has no
``CKM_ECDSA_SHA256``), and the signature is exactly what a key file's :meth:`SigningKey.sign` makes — ECDSA
re-encoded from the token's r‖s to ASN.1 DER as ``cryptography`` encodes it.

Concurrency: one logged-in session per key, every call on it under a lock. PKCS#11 logs in per
application, not per session (a second ``C_Login`` fails with USER_ALREADY_LOGGED_IN), and a session must not
be used by two threads at once; a token signs one thing at a time anyway. The session is closed (and the
login ended) by :meth:`Pkcs11Key.close`.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from typing import Any, Final

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from pipeline.cosign.keyref import Pkcs11Uri
from pipeline.cosign.keys import KeptKey, PublicKey, check_key_type, signing_hash
from pipeline.errors import (
    ConflictError,
    KeyNotFoundError,
    KeyPinError,
    KeyReferenceError,
    SigningError,
    UnsupportedKeyError,
)
from pipeline.secret import Secret

# DER DigestInfo prefix of SHA-256 (RFC 8017 §9.2 note 1): what CKM_RSA_PKCS signs for PKCS#1 v1.5/SHA-256.
SHA256_DIGEST_INFO: Final = bytes.fromhex("3031300d060960864801650304020105000420")
PIN_HINT: Final = "give the PIN as pin-source=FILE in the URI or in COSIGN_PKCS11_PIN (pin-value shows in argv)"


def _load_module(uri: Pkcs11Uri, where: str) -> Any:
    if uri.module_path is None:
        raise KeyReferenceError(
            "no PKCS#11 module", where=where, hint="add ?module-path=/path/lib.so or set COSIGN_PKCS11_MODULE_PATH"
        )
    try:
        return pkcs11.lib(uri.module_path)
    except (p11.PKCS11Error, OSError):
        raise KeyReferenceError(f"cannot load the PKCS#11 module {uri.module_path}", where=where) from None


def _find_token(lib: Any, uri: Pkcs11Uri, where: str) -> Any:
    if uri.slot_id is not None:
        tokens = [s.get_token() for s in lib.get_slots(token_present=True) if s.slot_id == uri.slot_id]
    else:
        tokens = list(lib.get_tokens(token_label=uri.token, token_flags=TokenFlag.TOKEN_INITIALIZED))
    tokens = [t for t in tokens if (uri.token is None or t.label == uri.token)
              and (uri.serial is None or t.serial.decode("ascii", "replace").strip() == uri.serial)]  # fmt: skip
    if not tokens:
        raise KeyNotFoundError("no such PKCS#11 token", where=where)
    if len(tokens) > 1:
        raise KeyReferenceError("several PKCS#11 tokens match; add token= or serial=", where=where)
    return tokens[0]


Login = tuple[str, bytes]  # (module path, token serial and label)

# The PIN each token of this process is logged in with, and how many of our sessions hold that login:
# PKCS#11 logs in per application, so a second key on a logged-in token gets USER_ALREADY_LOGGED_IN whatever
# PIN it gives; its PIN is checked against the one the token accepted instead of being waved through.
_LOGINS: dict[Login, tuple[Secret, int]] = {}
_LOGINS_LOCK: Final = threading.Lock()


def _login_key(token: Any, uri: Pkcs11Uri) -> Login:
    return (uri.module_path or "", bytes(token.serial) + token.label.encode())


def _open_session(token: Any, uri: Pkcs11Uri, where: str, *, rw: bool = False) -> Any:
    if uri.pin is None:
        raise KeyPinError("no PIN for the PKCS#11 token", where=where, hint=PIN_HINT)
    login = _login_key(token, uri)
    with _LOGINS_LOCK:
        session = _login(token, uri, where, rw, _LOGINS.get(login))
        held = _LOGINS.get(login)
        _LOGINS[login] = (uri.pin, (held[1] if held else 0) + 1)
    return session


def _logout(login: Login) -> None:
    with _LOGINS_LOCK:
        held = _LOGINS.pop(login, None)
        if held is not None and held[1] > 1:
            _LOGINS[login] = (held[0], held[1] - 1)


def _login(token: Any, uri: Pkcs11Uri, where: str, rw: bool, held: tuple[Secret, int] | None) -> Any:
    assert uri.pin is not None
    refused = KeyPinError(f"the token refused the PIN (from {uri.pin_origin})", where=where)
    try:
        pin = uri.pin.reveal().decode("utf-8")  # the binding takes text
    except UnicodeDecodeError:
        raise KeyPinError(f"the PIN (from {uri.pin_origin}) is not UTF-8 text", where=where) from None
    try:
        return token.open(rw=rw, user_pin=pin)
    except p11.UserAlreadyLoggedIn:
        if held is not None and held[0] != uri.pin:
            raise refused from None
        return token.open(rw=rw)  # logged in by us with this PIN (or by another user of the module)
    except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
        raise refused from None
    except (p11.PinLocked, p11.PinExpired):
        raise KeyPinError("the token's PIN is locked or expired", where=where) from None
    except p11.PKCS11Error as exc:
        raise KeyReferenceError(f"cannot open a session on the token: {type(exc).__name__}", where=where) from None


def _find(session: Any, object_class: ObjectClass, uri: Pkcs11Uri, where: str) -> Any:
    what = "private key" if object_class == ObjectClass.PRIVATE_KEY else "public key"
    try:
        return session.get_key(object_class=object_class, label=uri.object_label, id=uri.object_id)
    except p11.NoSuchKey:
        raise KeyNotFoundError(f"the token has no such {what}", where=where) from None
    except p11.MultipleObjectsReturned:
        raise KeyReferenceError(f"several {what}s on the token match; add id=", where=where) from None


def _public_key(obj: Any, where: str) -> PublicKey:
    """The token's public key object as a ``cryptography`` key (ECDSA or RSA; others are refused)."""
    key: object
    if obj.key_type == KeyType.EC:
        key = load_der_public_key(encode_ec_public_key(obj))
    elif obj.key_type == KeyType.RSA:
        modulus = int.from_bytes(obj[Attribute.MODULUS], "big")
        key = rsa.RSAPublicNumbers(int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big"), modulus).public_key()
    else:
        raise UnsupportedKeyError(
            f"unsupported key type {KeyType(obj.key_type).name} on the token (ECDSA or RSA)", where=where
        )
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise UnsupportedKeyError("unsupported public key on the token", where=where)
    check_key_type(key, where)
    return key


def _close(session: Any, login: Login) -> None:
    with contextlib.suppress(p11.PKCS11Error):  # a token removed meanwhile
        session.close()
    _logout(login)


class Pkcs11Key(KeptKey):
    """A :class:`~pipeline.cosign.keys.PrivateKeyHandle` on a token. ``repr`` names the key, never the PIN."""

    def __init__(self, uri: Pkcs11Uri, session: Any, private: Any, public_key: PublicKey, login: Login) -> None:
        self._login = login
        self._closed = False
        self._uri = uri
        self._session = session
        self._private = private
        self._public_key = public_key
        self._lock = threading.Lock()

    @classmethod
    def open(cls, uri: Pkcs11Uri) -> Pkcs11Key:
        where = uri.redacted()
        token = _find_token(_load_module(uri, where), uri, where)
        session = _open_session(token, uri, where)
        try:
            public_key = _public_key(_find(session, ObjectClass.PUBLIC_KEY, uri, where), where)
            private = _find(session, ObjectClass.PRIVATE_KEY, uri, where)
        except BaseException:
            _close(session, _login_key(token, uri))
            raise
        return cls(uri, session, private, public_key, _login_key(token, uri))

    def sign(self, data: bytes, *, pure_ed25519: bool = False) -> bytes:
        """As :meth:`SigningKey.sign` signs (``pure_ed25519`` is moot: no Ed25519 key gets this far)."""
        key = self._public_key
        digest = hashlib.new(signing_hash(key).name, data).digest()
        mechanism, message = (
            (Mechanism.ECDSA, digest) if isinstance(key, ec.EllipticCurvePublicKey)
            else (Mechanism.RSA_PKCS, SHA256_DIGEST_INFO + digest)
        )  # fmt: skip
        try:
            with self._lock:
                raw = self._private.sign(message, mechanism=mechanism)
        except p11.PKCS11Error as exc:
            raise SigningError(f"the token did not sign: {type(exc).__name__}", where=self.source) from None
        if isinstance(key, ec.EllipticCurvePublicKey):
            half = len(raw) // 2
            return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
        return bytes(raw)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                _close(self._session, self._login)


CURVES: Final = {"P-256": "secp256r1", "P-384": "secp384r1"}


def generate_on_token(uri: Pkcs11Uri, curve: str = "P-256") -> Pkcs11Key:
    """A new ECDSA key pair made on the token (sensitive, never extractable), labelled and identified as the
    URI says; refused when a key of that label/id is there already."""
    where = uri.redacted()
    token = _find_token(_load_module(uri, where), uri, where)
    session = _open_session(token, uri, where, rw=True)
    login = _login_key(token, uri)
    try:
        if list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                     **({Attribute.LABEL: uri.object_label} if uri.object_label else {}),
                                     **({Attribute.ID: uri.object_id} if uri.object_id else {})})):  # fmt: skip
            raise ConflictError("the token has a key of that label/id already", where=where)
        params = session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(CURVES[curve])}, local=True
        )
        params.generate_keypair(
            store=True,
            label=uri.object_label,
            id=uri.object_id or hashlib.sha256((uri.object_label or "").encode()).digest()[:8],
            private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.SIGN: True},
        )
    except p11.PKCS11Error as exc:
        raise KeyReferenceError(f"the token did not make the key pair: {type(exc).__name__}", where=where) from None
    finally:
        _close(session, login)
    return Pkcs11Key.open(uri)
