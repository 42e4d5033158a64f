"""cosign key files: the real vectors, our writer checked by an independent decoder, bad keys."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import nacl.secret
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pipeline.cosign import ed25519ph, keys
from pipeline.errors import (
    CorruptKeyError,
    ExitCode,
    KeyFormatError,
    KeyMaterialError,
    UnsupportedKdfError,
    UnsupportedKeyError,
    VerificationError,
    WrongPasswordError,
)
from pipeline.secret import Secret
from tests.conftest import COSIGN_VECTORS

KEYS = COSIGN_VECTORS / "keys"

# (private key file, its password, its public key file) as the vectors' README lists them.
GOOD_KEYS = [
    ("podman-sigstore-key.key", "sigstore pass", "podman-sigstore-key.pub"),
    ("cosign-keystest-sigstore-label.key", "hello", "cosign-keystest-sigstore-label.derived.pub"),
    (
        "sigstore-rs-cosign-generated-empty-password.key",
        "",
        "sigstore-rs-cosign-generated-empty-password.derived.pub",
    ),
    ("salrashid123-import-cosign-rsa.key", "", "salrashid123-import-cosign-rsa.pub"),
]


def load(name: str, password: str) -> keys.SigningKey:
    return keys.load_private_key(Secret((KEYS / name).read_bytes()), Secret(password), name)


@pytest.mark.parametrize(("key_file", "password", "pub_file"), GOOD_KEYS)
def test_vector_keys_decrypt_and_match_their_public_key(key_file: str, password: str, pub_file: str) -> None:
    signing_key = load(key_file, password)
    assert signing_key.public_key_pem() == (KEYS / pub_file).read_bytes()
    public_key = keys.load_public_key((KEYS / pub_file).read_bytes(), pub_file)
    signature = signing_key.sign(b"payload")
    keys.verify_signature(public_key, b"payload", signature, where="test")
    with pytest.raises(VerificationError):
        keys.verify_signature(public_key, b"payload!", signature, where="test")


@pytest.mark.parametrize(("key_file", "password", "pub_file"), GOOD_KEYS)
def test_vector_keys_refuse_a_wrong_password(key_file: str, password: str, pub_file: str) -> None:
    with pytest.raises(WrongPasswordError) as info:
        load(key_file, password + "wrong")
    assert info.value.exit_code == ExitCode.KEY
    assert key_file in str(info.value)


def test_podman_password_file_holds_the_password_plus_a_newline() -> None:
    password = (KEYS / "podman-sigstore-key.key.pass").read_bytes()
    assert password == b"sigstore pass\n"
    load("podman-sigstore-key.key", password.rstrip(b"\n").decode())
    with pytest.raises(WrongPasswordError):
        load("podman-sigstore-key.key", password.decode())


def test_rsa_vector_signs_pkcs1v15() -> None:
    signing_key = load("salrashid123-import-cosign-rsa.key", "")
    assert isinstance(signing_key.private_key, rsa.RSAPrivateKey)
    assert signing_key.private_key.key_size == 2048


def test_sec1_key_inside_is_refused_as_cosign_refuses_it() -> None:
    with pytest.raises(UnsupportedKeyError, match="SEC1") as info:
        load("cosign-keystest-sec1-inside.key", "hello")
    assert info.value.exit_code == ExitCode.KEY
    # The derived public key exists so a test can show the decryption itself worked: it is the
    # PKCS#8 requirement, not the password, that refuses this key.
    block = keys.decode_pem((KEYS / "cosign-keystest-sec1-inside.key").read_bytes(), "sec1")
    der = keys.decrypt_envelope(block.der, Secret("hello"), "sec1")
    sec1 = serialization.load_der_private_key(der, None)
    pub = keys.public_key_to_pem(sec1.public_key())  # type: ignore[arg-type]
    assert pub == (KEYS / "cosign-keystest-sec1-inside.derived.pub").read_bytes()


def test_vectors_use_both_labels_and_both_scrypt_costs() -> None:
    seen = set()
    for key_file, _, _ in GOOD_KEYS:
        block = keys.decode_pem((KEYS / key_file).read_bytes(), key_file)
        envelope = json.loads(block.der)
        seen.add((block.label, envelope["kdf"]["params"]["N"]))
    assert {label for label, _ in seen} == set(keys.PRIVATE_KEY_LABELS)
    assert {n for _, n in seen} == {32768, 65536}


# --- our writer, read back by a decoder written here from the format description -----------------


def independent_decode(pem: bytes, password: bytes) -> tuple[str, dict[str, object], bytes]:
    text = pem.decode("ascii")
    match = re.fullmatch(r"-----BEGIN ([A-Z ]+)-----\n((?:[A-Za-z0-9+/=]{1,64}\n)+)-----END \1-----\n", text)
    assert match, "not a PEM block with 64-character lines and a trailing newline"
    lines = match.group(2).splitlines()
    assert all(len(line) == 64 for line in lines[:-1])
    body = base64.b64decode("".join(lines))
    envelope = json.loads(body)
    kdf, cipher = envelope["kdf"], envelope["cipher"]
    salt, nonce = base64.b64decode(kdf["salt"]), base64.b64decode(cipher["nonce"])
    params = kdf["params"]
    secret_key = hashlib.scrypt(
        password, salt=salt, n=params["N"], r=params["r"], p=params["p"], maxmem=2**28, dklen=32
    )
    plaintext = nacl.secret.SecretBox(secret_key).decrypt(base64.b64decode(envelope["ciphertext"]), nonce)
    return match.group(1), envelope, plaintext


def test_generated_key_matches_the_format_description() -> None:
    pair = keys.generate_key_pair(Secret("s3cret"))
    label, envelope, plaintext = independent_decode(pair.private_pem.reveal(), b"s3cret")
    assert label == "ENCRYPTED SIGSTORE PRIVATE KEY"
    body = base64.b64decode("".join(pair.private_pem.reveal().decode().splitlines()[1:-1]))
    assert body.startswith(b'{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"')
    assert list(envelope) == ["kdf", "cipher", "ciphertext"]
    assert b" " not in body
    assert envelope["cipher"]["name"] == "nacl/secretbox"  # type: ignore[index]
    assert len(base64.b64decode(envelope["kdf"]["salt"])) == 32  # type: ignore[index]
    assert len(base64.b64decode(envelope["cipher"]["nonce"])) == 24  # type: ignore[index]
    private_key = serialization.load_der_private_key(plaintext, None)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    assert isinstance(private_key.curve, ec.SECP256R1)
    # PKCS#8, byte for byte: re-serialising as PKCS#8 gives the same DER.
    assert plaintext == private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = pair.public_pem.decode()
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----\n") and public_pem.endswith("-----END PUBLIC KEY-----\n")
    assert pair.public_pem == keys.public_key_to_pem(private_key.public_key())


def test_generate_load_sign_verify_round_trip() -> None:
    pair = keys.generate_key_pair(Secret(""))
    signing_key = keys.load_private_key(pair.private_pem, Secret(""), "generated")
    signature = signing_key.sign(b"data")
    keys.verify_signature(keys.load_public_key(pair.public_pem, "pub"), b"data", signature, where="t")
    assert 68 <= len(signature) <= 72  # ASN.1 DER ECDSA P-256


def test_salts_and_nonces_differ_between_keys() -> None:
    a = keys.generate_key_pair(Secret("x")).private_pem.reveal()
    b = keys.generate_key_pair(Secret("x")).private_pem.reveal()
    assert a != b


# --- bad keys: each its own error --------------------------------------------------------------


def _pem_with_envelope(envelope: dict[str, object], label: str = keys.SIGSTORE_PRIVATE_KEY_LABEL) -> Secret:
    return Secret(keys.encode_pem(label, json.dumps(envelope, separators=(",", ":")).encode()))


def _good_envelope() -> dict[str, object]:
    pair = keys.generate_key_pair(Secret("pw"))
    block = keys.decode_pem(pair.private_pem.reveal(), "generated")
    envelope: dict[str, object] = json.loads(block.der)
    return envelope


def test_truncated_pem() -> None:
    pem = (KEYS / "podman-sigstore-key.key").read_bytes()
    with pytest.raises(KeyFormatError, match="truncated"):
        keys.load_private_key(Secret(pem[: len(pem) // 2]), Secret("sigstore pass"), "k.key")


def test_mislabelled_pem() -> None:
    pem = (KEYS / "podman-sigstore-key.pub").read_bytes()
    with pytest.raises(KeyFormatError, match="unexpected PEM type 'PUBLIC KEY'"):
        keys.load_private_key(Secret(pem), Secret(""), "k.pub")


def test_mismatched_begin_and_end_labels() -> None:
    pem = (KEYS / "podman-sigstore-key.key").read_bytes().replace(b"END ENCRYPTED COSIGN", b"END ENCRYPTED SIGSTORE")
    with pytest.raises(KeyFormatError, match="ends as"):
        keys.load_private_key(Secret(pem), Secret("sigstore pass"), "k.key")


def test_not_a_pem_at_all() -> None:
    with pytest.raises(KeyFormatError, match="no BEGIN line"):
        keys.load_private_key(Secret(b"hello"), Secret(""), "k.key")


@pytest.mark.parametrize("n", [16384, 262144, 1 << 20])
def test_unsupported_scrypt_n(n: int) -> None:
    envelope = _good_envelope()
    envelope["kdf"]["params"]["N"] = n  # type: ignore[index]
    with pytest.raises(UnsupportedKdfError, match=f"N={n}"):
        keys.load_private_key(_pem_with_envelope(envelope), Secret("pw"), "k.key")


def test_unsupported_cipher() -> None:
    envelope = _good_envelope()
    envelope["cipher"]["name"] = "aes-gcm"  # type: ignore[index]
    with pytest.raises(UnsupportedKdfError, match="cipher"):
        keys.load_private_key(_pem_with_envelope(envelope), Secret("pw"), "k.key")


def test_corrupted_ciphertext_fails_authentication() -> None:
    envelope = _good_envelope()
    raw = bytearray(base64.b64decode(envelope["ciphertext"]))  # type: ignore[arg-type]
    raw[5] ^= 0x01
    envelope["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(WrongPasswordError, match="damaged"):
        keys.load_private_key(_pem_with_envelope(envelope), Secret("pw"), "k.key")


def test_truncated_ciphertext() -> None:
    envelope = _good_envelope()
    envelope["ciphertext"] = base64.b64encode(b"short").decode()
    with pytest.raises(CorruptKeyError, match="truncated"):
        keys.load_private_key(_pem_with_envelope(envelope), Secret("pw"), "k.key")


def test_ciphertext_not_base64() -> None:
    envelope = _good_envelope()
    envelope["ciphertext"] = "!!!"
    with pytest.raises(KeyFormatError, match="ciphertext is not valid base64"):
        keys.load_private_key(_pem_with_envelope(envelope), Secret("pw"), "k.key")


def test_body_not_json() -> None:
    with pytest.raises(KeyFormatError, match="not JSON"):
        keys.load_private_key(Secret(keys.encode_pem(keys.SIGSTORE_PRIVATE_KEY_LABEL, b"\x01\x02")), Secret(""), "k")


def test_every_key_error_is_exit_6() -> None:
    for error_type in (KeyFormatError, UnsupportedKdfError, WrongPasswordError, CorruptKeyError, UnsupportedKeyError):
        assert issubclass(error_type, KeyMaterialError)
        assert error_type("x").exit_code == ExitCode.KEY


# --- key types: what cosign's LoadPrivateKey accepts (ECDSA P-256/384/521, RSA >= 2048, Ed25519) ------


@pytest.mark.parametrize(
    ("make", "hash_name"),
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "sha256"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "sha384"),
        (lambda: ec.generate_private_key(ec.SECP521R1()), "sha512"),
        (lambda: rsa.generate_private_key(65537, 2048), "sha256"),
        (lambda: ed25519.Ed25519PrivateKey.generate(), "sha512"),
    ],
    ids=["p256", "p384", "p521", "rsa2048", "ed25519"],
)
def test_every_key_type_cosign_accepts_loads_signs_and_verifies(make: Any, hash_name: str) -> None:
    pair = keys.encrypt_key_pair(make(), Secret("pw"))
    signing_key = keys.load_private_key(pair.private_pem, Secret("pw"), "k")
    public = keys.load_public_key(pair.public_pem, "k.pub")
    assert keys.public_key_der(public) == keys.public_key_der(signing_key.public_key)
    assert keys.signing_hash(public).name == hash_name
    signature = signing_key.sign(b"payload")
    keys.verify_signature(public, b"payload", signature, where="w")
    with pytest.raises(VerificationError):
        keys.verify_signature(public, b"other payload", signature, where="w")


def test_ecdsa_on_p384_is_signed_with_sha384_and_sha256_is_still_accepted() -> None:
    """cosign now hashes with the curve's hash; older cosign used SHA-256 on every curve (it still verifies)."""
    private = ec.generate_private_key(ec.SECP384R1())
    signing_key = keys.SigningKey(private, "k")
    private.public_key().verify(signing_key.sign(b"m"), b"m", ec.ECDSA(hashes.SHA384()))
    old_style = private.sign(b"m", ec.ECDSA(hashes.SHA256()))
    keys.verify_signature(private.public_key(), b"m", old_style, where="w")


def test_ed25519_signs_ed25519ph_as_cosign_and_pure_ed25519_for_dsse() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    signing_key = keys.SigningKey(private, "k")
    prehashed = signing_key.sign(b"m")
    assert ed25519ph.verify(private.public_key(), prehashed, b"m")
    with pytest.raises(InvalidSignature):
        private.public_key().verify(prehashed, b"m")
    pure = signing_key.sign(b"m", pure_ed25519=True)
    private.public_key().verify(pure, b"m")
    keys.verify_signature(private.public_key(), b"m", pure, where="w")  # what cosign wrote before Ed25519ph
    keys.verify_signature(private.public_key(), b"m", pure, where="w", pure_ed25519=True)
    with pytest.raises(VerificationError):  # a DSSE signature is pure Ed25519 only
        keys.verify_signature(private.public_key(), b"m", prehashed, where="w", pure_ed25519=True)


def test_keys_cosign_refuses_are_refused() -> None:
    for private, reason in (
        (ec.generate_private_key(ec.SECP256K1()), "secp256k1"),
        (rsa.generate_private_key(65537, 1024), "1024 bits is too small"),  # noqa: S505 - refused, as it should be
    ):
        pair = keys.encrypt_key_pair(private, Secret("pw"))
        with pytest.raises(UnsupportedKeyError, match=reason):
            keys.load_private_key(pair.private_pem, Secret("pw"), "k")
        with pytest.raises(UnsupportedKeyError, match=reason):
            keys.load_public_key(pair.public_pem, "k.pub")


def test_secret_never_shows_its_content() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret) and "hunter2" not in f"{secret}"
    signing_key = load("podman-sigstore-key.key", "sigstore pass")
    assert "PRIVATE" not in repr(signing_key)


def test_errors_never_contain_the_password(tmp_path: Path) -> None:
    pem = Secret((KEYS / "podman-sigstore-key.key").read_bytes())
    with pytest.raises(WrongPasswordError) as info:
        keys.load_private_key(pem, Secret("very-secret-password"), "k.key")
    assert "very-secret-password" not in str(info.value) + (info.value.hint or "")


def test_the_secretbox_sizes_written_out_are_nacls() -> None:
    from pipeline.cosign import keys

    assert (keys.NONCE_SIZE, keys.KEY_SIZE, keys._MAC_SIZE) == (
        nacl.secret.SecretBox.NONCE_SIZE, nacl.secret.SecretBox.KEY_SIZE, nacl.secret.SecretBox.MACBYTES
    )
