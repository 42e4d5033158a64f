"""The PKCS#11 key against a real SoftHSM2 token: signatures made on the token, of the same kind as a key
file's (cosign's verification and openssl accept them), and one-line faults that never show the PIN."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from pipeline.cosign.keyref import parse_key_ref
from pipeline.cosign.keys import signature_verifies
from pipeline.errors import (
    ConflictError,
    ExitCode,
    KeyNotFoundError,
    KeyPinError,
    KeyReferenceError,
    ReleaseVectorError,
    UnsupportedKeyError,
)
from pipeline.signatures.keystores import generate_key, open_key
from pipeline.signatures.pkcs11 import Pkcs11Key
from tests.keystore_fixtures import PIN, PIN_TOKEN, SoftHsm

PAYLOAD = b'{"critical":{"identity":{"docker-reference":"r/x"},"image":{"docker-manifest-digest":"sha256:00"}}}'


def _open(uri: str) -> Pkcs11Key:
    key = open_key(uri, {})
    assert isinstance(key, Pkcs11Key)
    return key


def openssl_verifies(tmp_path: Path, key: Pkcs11Key, data: bytes, signature: bytes, digest: str) -> bool:
    (tmp_path / "pub.pem").write_bytes(key.public_key_pem())
    (tmp_path / "data").write_bytes(data)
    (tmp_path / "sig").write_bytes(signature)
    done = subprocess.run(
        ["openssl", "dgst", f"-{digest}", "-verify", str(tmp_path / "pub.pem"), "-signature", str(tmp_path / "sig"),
         str(tmp_path / "data")],
        capture_output=True, text=True,
    )  # fmt: skip
    return done.returncode == 0 and "Verified OK" in done.stdout


@pytest.mark.parametrize(("label", "digest"), [("p256", "sha256"), ("p384", "sha384"), ("rsa", "sha256")])
def test_token_signatures_verify_like_a_key_files(softhsm: SoftHsm, tmp_path: Path, label: str, digest: str) -> None:
    key = _open(softhsm.uri(label))
    try:
        signature = key.sign(PAYLOAD)
        assert signature_verifies(key.public_key, PAYLOAD, signature)
        assert not signature_verifies(key.public_key, PAYLOAD + b" ", signature)
        assert openssl_verifies(tmp_path, key, PAYLOAD, signature, digest)
        if isinstance(key.public_key, ec.EllipticCurvePublicKey):
            assert encode_dss_signature(*decode_dss_signature(signature)) == signature  # canonical ASN.1 DER
        else:
            assert isinstance(key.public_key, rsa.RSAPublicKey) and len(signature) == 256
        assert PIN not in repr(key) and key.source == softhsm.uri(label, pin=None)
    finally:
        key.close()


def test_token_key_signs_from_many_threads(softhsm: SoftHsm) -> None:
    key = _open(softhsm.uri("p256"))
    results: list[bool] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(15):
            data = f"{n}-{i}".encode()
            ok = signature_verifies(key.public_key, data, key.sign(data))
            with lock:
                results.append(ok)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    key.close()
    assert results == [True] * 90


def _fault(uri: str) -> ReleaseVectorError:
    with pytest.raises(ReleaseVectorError) as raised:
        open_key(uri, {}).close()
    assert "\n" not in str(raised.value)
    return raised.value


def test_wrong_pin_is_one_line_without_the_pin(softhsm: SoftHsm) -> None:
    error = _fault(softhsm.uri("p256", token=PIN_TOKEN, pin="999999"))
    assert isinstance(error, KeyPinError) and error.exit_code == ExitCode.KEY
    assert "999999" not in str(error) and "refused the PIN (from pin-value)" in str(error)


def test_wrong_pin_is_refused_while_the_token_is_logged_in(softhsm: SoftHsm) -> None:
    """PKCS#11 logs in per application: a second key with another PIN must not ride on the first's login."""
    first = _open(softhsm.uri("p256"))
    try:
        error = _fault(softhsm.uri("p384", pin="000000"))
        assert isinstance(error, KeyPinError) and "000000" not in str(error)
        second = _open(softhsm.uri("p384"))  # the right PIN shares the login
        assert signature_verifies(second.public_key, b"x", second.sign(b"x"))
        second.close()
    finally:
        first.close()


def test_no_pin(softhsm: SoftHsm) -> None:
    error = _fault(softhsm.uri("p256", pin=None))
    assert isinstance(error, KeyPinError) and error.hint and "COSIGN_PKCS11_PIN" in error.hint


def test_missing_module(softhsm: SoftHsm) -> None:
    error = _fault(f"pkcs11:token=rv-test;object=p256?module-path=/nonexistent/lib.so&pin-value={PIN}")
    assert isinstance(error, KeyReferenceError) and "cannot load the PKCS#11 module /nonexistent/lib.so" in str(error)
    error = _fault(f"pkcs11:token=rv-test;object=p256?pin-value={PIN}")
    assert isinstance(error, KeyReferenceError) and "no PKCS#11 module" in str(error)


def test_unknown_token_and_object(softhsm: SoftHsm) -> None:
    error = _fault(softhsm.uri("p256", token="no-such-token"))
    assert isinstance(error, KeyNotFoundError) and "no such PKCS#11 token" in str(error)
    error = _fault(softhsm.uri("no-such-key"))
    assert isinstance(error, KeyNotFoundError) and "no such public key" in str(error)
    assert PIN not in str(error)


def test_unsupported_key_type(softhsm: SoftHsm) -> None:
    error = _fault(softhsm.uri("ed25519"))
    assert isinstance(error, UnsupportedKeyError) and error.exit_code == ExitCode.KEY
    assert "unsupported key type" in str(error)


def test_environment_gives_module_and_pin(softhsm: SoftHsm) -> None:
    key = open_key("pkcs11:token=rv-test;object=p256", {"COSIGN_PKCS11_MODULE_PATH": softhsm.module,
                                                         "COSIGN_PKCS11_PIN": PIN})  # fmt: skip
    assert signature_verifies(key.public_key, b"x", key.sign(b"x"))
    key.close()


def test_generate_on_token_then_refuse_the_same_label(softhsm: SoftHsm) -> None:
    uri = softhsm.uri("made-here")
    key = generate_key(uri, {})
    try:
        assert isinstance(key.public_key, ec.EllipticCurvePublicKey) and key.public_key.curve.name == "secp256r1"
        assert signature_verifies(key.public_key, b"x", key.sign(b"x"))
        parsed = parse_key_ref(uri, {})
        assert parsed is not None
    finally:
        key.close()
    reopened = _open(uri)
    assert reopened.public_key_pem() == key.public_key_pem()
    reopened.close()
    with pytest.raises(ConflictError):
        generate_key(uri, {})
