"""Trusted material: the shipped public-good trusted root, Rekor keys and Fulcio CAs read from it."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pipeline.cosign.certificate import load_certificates
from pipeline.cosign.keys import load_public_key, public_key_der
from pipeline.cosign.rekor import parse_rekor_bundle, verify_rekor_bundle
from pipeline.cosign.trust import (
    DeferredTimestampAuthorities,
    default_fulcio_certificates,
    default_rekor_keys,
    default_trusted_root,
    fulcio_certificates_from_trusted_root,
    load_rekor_public_keys,
    rekor_keys_for_url,
    rekor_keys_from_trusted_root,
    timestamp_authorities_from_trusted_root,
)
from pipeline.errors import InvalidInputError, KeyFormatError
from tests.conftest import COSIGN_VECTORS

IMAGE_SIGNATURES = COSIGN_VECTORS / "image-signatures"
TRUSTED_ROOT = COSIGN_VECTORS / "bundle-v03" / "trusted_root.public-good.json"
PUBLIC_GOOD_LOG_ID = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"


def test_shipped_trusted_root_is_the_public_good_root() -> None:
    assert default_trusted_root() == TRUSTED_ROOT.read_bytes()


def test_rekor_keys_keep_the_v1_ecdsa_key_and_the_ed25519_shard() -> None:
    """Entries name their log by key ID, so a key that signed nothing here (the Rekor v2 shard's) is harmless."""
    keys = rekor_keys_from_trusted_root(TRUSTED_ROOT.read_bytes(), TRUSTED_ROOT.name)
    assert len(json.loads(TRUSTED_ROOT.read_text())["tlogs"]) == 2
    assert len(keys) == 2 and isinstance(keys[1], ed25519.Ed25519PublicKey)
    assert hashlib.sha256(public_key_der(keys[0])).hexdigest() == PUBLIC_GOOD_LOG_ID
    rekor_pub = load_public_key((IMAGE_SIGNATURES / "rekor.pub").read_bytes(), "rekor.pub")
    assert public_key_der(keys[0]) == public_key_der(rekor_pub)
    assert [public_key_der(k) for k in default_rekor_keys()] == [public_key_der(k) for k in keys]


def test_the_key_of_a_log_is_found_by_its_url() -> None:
    """Signing into the public-good Rekor v2 log (it serves no key) takes its key from the shipped root."""
    data = TRUSTED_ROOT.read_bytes()
    [v2] = rekor_keys_for_url(data, TRUSTED_ROOT.name, "https://log2025-1.rekor.sigstore.dev/")
    assert isinstance(v2, ed25519.Ed25519PublicKey)
    [v1] = rekor_keys_for_url(data, TRUSTED_ROOT.name, "https://rekor.sigstore.dev")
    assert hashlib.sha256(public_key_der(v1)).hexdigest() == PUBLIC_GOOD_LOG_ID
    assert rekor_keys_for_url(data, TRUSTED_ROOT.name, "https://rekor.example.com") == []


def test_signing_into_the_public_good_v2_log_needs_no_key_file() -> None:
    from pipeline.cli.trust_options import SigningTlogOptions, transparency_log
    from pipeline.sigstore.rekor_v2_client import RekorV2Client

    options = SigningTlogOptions(True, "https://log2025-1.rekor.sigstore.dev", None, rekor_api_version=2)
    with transparency_log(options) as log:  # nothing is sent until a signature is uploaded
        assert isinstance(log, RekorV2Client)


def test_fulcio_roots_and_intermediates() -> None:
    roots, intermediates = fulcio_certificates_from_trusted_root(TRUSTED_ROOT.read_bytes(), TRUSTED_ROOT.name)
    # Two distinct self-signed roots named CN=sigstore (2021-03 and 2021-10), one intermediate.
    assert [r.subject.rfc4514_string() for r in roots] == ["CN=sigstore,O=sigstore.dev"] * 2
    assert roots[0] != roots[1]
    assert [i.subject.rfc4514_string() for i in intermediates] == ["CN=sigstore-intermediate,O=sigstore.dev"]
    fulcio_v1 = load_certificates((IMAGE_SIGNATURES / "fulcio_v1.crt.pem").read_bytes(), "fulcio_v1.crt.pem")[0]
    assert fulcio_v1 in roots
    chain = load_certificates(
        (IMAGE_SIGNATURES / "dir-img-cosign-fulcio-rekor-valid" / "chain.pem").read_bytes(), "chain.pem"
    )
    assert chain == [intermediates[0], fulcio_v1]
    assert default_fulcio_certificates() == (roots, intermediates)


@pytest.mark.parametrize(
    "folder",
    [
        IMAGE_SIGNATURES / "dir-img-cosign-key-rekor-valid",
        IMAGE_SIGNATURES / "dir-img-cosign-fulcio-rekor-valid",
        COSIGN_VECTORS / "registry-sig-manifest",
    ],
    ids=lambda p: p.name,
)
def test_default_rekor_keys_verify_the_real_bundles(folder: Path) -> None:
    payload_file = folder / "payload.json"
    if not payload_file.exists():
        payload_file = folder / "payload.reconstructed.json"
    verify_rekor_bundle(
        parse_rekor_bundle((folder / "bundle.json").read_text(), "bundle.json"),
        trusted_keys=default_rekor_keys(),
        payload=payload_file.read_bytes(),
        signature=base64.b64decode((folder / "signature.b64").read_text()),
        signer_pem=None,
        where=folder.name,
    )


# --- malformed or unusable trusted roots ------------------------------------------------------


def _root_with(change: Callable[[dict[str, object]], None]) -> bytes:
    document = json.loads(TRUSTED_ROOT.read_text())
    change(document)
    return json.dumps(document).encode()


def _der_b64(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _only_tlog(public_key: dict[str, object]) -> Callable[[dict[str, object]], None]:
    def change(document: dict[str, object]) -> None:
        document["tlogs"] = [{"baseUrl": "https://log.example", "publicKey": public_key}]

    return change


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{", "trusted root is not JSON"),
        (b"[]", "trusted root is not a JSON object"),
        (b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}', "not a Sigstore trusted root"),
        (b'{"tlogs": {}}', "tlogs is not a list of objects"),
        (b'{"tlogs": []}', "holds no usable Rekor key"),
        (b'{"tlogs": [{"publicKey": {}}]}', r"tlogs\[0\].publicKey has no rawBytes"),
        (b'{"tlogs": [{"publicKey": {"rawBytes": "%%"}}]}', "rawBytes is not valid base64"),
    ],
)
def test_malformed_trusted_roots_are_invalid_input_for_rekor_keys(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason) as caught:
        rekor_keys_from_trusted_root(data, "--trusted-root my-root.json")
    assert caught.value.where == "--trusted-root my-root.json"


def test_a_root_with_an_ed25519_log_key_keeps_it() -> None:
    """Rekor logs may sign with Ed25519 (the staging root has one); its SETs and checkpoints verify with it."""
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    data = _root_with(_only_tlog({"rawBytes": _der_b64(key), "keyDetails": "PKIX_ED25519"}))
    assert [public_key_der(k) for k in rekor_keys_from_trusted_root(data, "root.json")] == [public_key_der(key)]


@pytest.mark.parametrize(
    ("curve", "key_details", "usable"),
    [
        (ec.SECP256R1(), "PKIX_ECDSA_P256_SHA_256", True),
        (ec.SECP256R1(), None, True),
        (ec.SECP384R1(), "PKIX_ECDSA_P384_SHA_384", True),
        (ec.SECP384R1(), None, True),
        (ec.SECP256R1(), "PKIX_ECDSA_P256_HMAC_SHA_256", False),  # not a verification we make
        (ec.SECP256K1(), None, False),  # not a curve cosign accepts
    ],
)
def test_ecdsa_keys_of_the_curves_cosign_accepts_are_kept(
    curve: ec.EllipticCurve, key_details: str | None, usable: bool
) -> None:
    key = ec.generate_private_key(curve).public_key()
    public_key: dict[str, object] = {"rawBytes": _der_b64(key)}
    if key_details is not None:
        public_key["keyDetails"] = key_details
    data = _root_with(_only_tlog(public_key))
    if usable:
        assert [public_key_der(k) for k in rekor_keys_from_trusted_root(data, "root.json")] == [
            base64.b64decode(_der_b64(key))
        ]
    else:
        with pytest.raises(InvalidInputError, match="no usable Rekor key"):
            rekor_keys_from_trusted_root(data, "root.json")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(certificateAuthorities=[{"certChain": {}}]), "has no certChain.certificates"),
        (
            lambda d: d.update(certificateAuthorities=[{"certChain": {"certificates": [{"rawBytes": "AAAA"}]}}]),
            "is not a DER certificate",
        ),
        (lambda d: d.update(certificateAuthorities=[]), "holds no Fulcio root certificate"),
    ],
)
def test_malformed_certificate_authorities_are_invalid_input(
    change: Callable[[dict[str, object]], None], reason: str
) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        fulcio_certificates_from_trusted_root(_root_with(change), "root.json")


# --- Rekor key files --------------------------------------------------------------------------


def test_load_rekor_public_keys_reads_every_block() -> None:
    rekor_pub = (IMAGE_SIGNATURES / "rekor.pub").read_bytes()
    cosign_pub = (IMAGE_SIGNATURES / "cosign.pub").read_bytes()
    keys = load_rekor_public_keys(rekor_pub + b"\n" + cosign_pub, "rekor.pub")
    assert [public_key_der(k) for k in keys] == [
        public_key_der(load_public_key(rekor_pub, "a")),
        public_key_der(load_public_key(cosign_pub, "b")),
    ]
    assert hashlib.sha256(public_key_der(keys[0])).hexdigest() == PUBLIC_GOOD_LOG_ID


@pytest.mark.parametrize(
    "pem",
    [b"", b"not a key", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
)
def test_load_rekor_public_keys_without_a_public_key_block(pem: bytes) -> None:
    with pytest.raises(KeyFormatError, match="no PUBLIC KEY PEM block") as caught:
        load_rekor_public_keys(pem, "--rekor-key rekor.pub")
    assert caught.value.where == "--rekor-key rekor.pub"


def test_load_rekor_public_keys_with_a_damaged_block() -> None:
    with pytest.raises(KeyFormatError, match="cannot be parsed"):
        load_rekor_public_keys(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "rekor.pub")


def test_deferred_timestamp_authorities_are_the_roots_authorities_read_on_first_use() -> None:
    root = default_trusted_root()
    deferred = DeferredTimestampAuthorities(root, "the shipped root")
    assert deferred._authorities is None  # nothing read (no X.509) until asked
    expected = timestamp_authorities_from_trusted_root(root, "the shipped root")
    assert len(deferred) == len(expected) and list(deferred) == expected and bool(deferred) == bool(expected)
    assert deferred[-1:] == tuple(expected[-1:])
