"""RFC 3161 timestamps when signing (--timestamp-server-url, or the signing config's TSA): the TSA stand-in,
the bundle's timestampVerificationData, and their verification by us and by sigstore-js."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from pipeline.cosign.keys import load_public_key
from pipeline.oci.reference import parse_reference
from pipeline.rehearsal.tsa_server import TsaServer
from pipeline.sigstore.trusted_root_writer import Authority, LogKey, trusted_root_json
from tests.cli.test_keyless_cli import NO_AMBIENT_TOKEN, Files, files
from tests.oci.helpers import client as make_client
from tests.oci.helpers import push_image
from tests.registry_fixtures import RegistryProcess
from tests.sigstore.keyless_fixtures import keyless_stack
from tests.sigstore.sigstore_js import sigstore_js_verify

__all__ = ["files", "keyless_stack"]

PASSWORD = {"COSIGN_PASSWORD": "pw"}
SINCE = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def tsa() -> Iterator[TsaServer]:
    with TsaServer() as server:
        yield server


@pytest.fixture(scope="module")
def late_tsa() -> Iterator[TsaServer]:
    """A TSA whose clock runs an hour ahead: its times are outside a ten-minute certificate's validity."""
    with TsaServer(clock=lambda: time.time() + 3600) as server:
        yield server


def _root(files: Files, tsa: TsaServer, path: Path) -> Path:
    stack = files.stack
    chain = x509.load_pem_x509_certificates(stack.fulcio.chain_pem())
    path.write_bytes(trusted_root_json(
        tlogs=[LogKey(stack.log.url, load_public_key(stack.log.public_key_pem(), "log"), SINCE)],
        certificate_authorities=[Authority(stack.fulcio.url, tuple(chain), SINCE)],
        ctlogs=[LogKey("https://ct.example", load_public_key(stack.fulcio.ct_log_public_key_pem(), "ct"), SINCE)],
        timestamp_authorities=[Authority(tsa.timestamp_url, tsa.authority.chain, SINCE)],
    ))  # fmt: skip
    return path


def _sign(cli: Any, tmp_path: Path, files: Files, tsa: TsaServer, *signing: str, name: str = "b") -> tuple[Path, Path]:
    blob, bundle = tmp_path / f"{name}.txt", tmp_path / f"{name}.sigstore.json"
    blob.write_bytes(f"artifact {name}\n".encode())
    log = ["--rekor-url", files.stack.log.url, "--rekor-public-key", str(files.rekor_key)]
    signed = cli("sign-blob", str(blob), "--bundle", str(bundle), *signing, *log, "--timestamp-server-url",
                 tsa.timestamp_url, env={**NO_AMBIENT_TOKEN, **PASSWORD})  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    return blob, bundle


def test_a_key_signed_blob_bundle_carries_a_timestamp_we_and_sigstore_js_verify(
    cli: Any, tmp_path: Path, files: Files, tsa: TsaServer
) -> None:
    blob, bundle = _sign(cli, tmp_path, files, tsa, "--key", str(files.key))
    material = json.loads(bundle.read_bytes())["verificationMaterial"]
    assert list(material) == ["publicKey", "tlogEntries", "timestampVerificationData"]
    assert len(material["timestampVerificationData"]["rfc3161Timestamps"]) == 1
    root = _root(files, tsa, tmp_path / "root.json")
    ok = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(files.pub), "--trusted-root", str(root),
             "--json")  # fmt: skip
    assert ok.exit_code == 0, ok.stderr
    assert "1 RFC 3161 timestamp(s) over the signature verified with a trusted timestamp authority" in json.loads(
        ok.stdout
    )["checks"]
    result = sigstore_js_verify(bundle, root, artifact=blob, public_key=files.pub)
    assert result["ok"], result


def test_a_keyless_bundle_with_a_timestamp_verifies_with_sigstore_js(
    cli: Any, tmp_path: Path, files: Files, tsa: TsaServer
) -> None:
    blob, bundle = _sign(cli, tmp_path, files, tsa, *files.sign_args())
    root = _root(files, tsa, tmp_path / "root.json")
    verify = [*files.verify_args(), "--ca-intermediates", str(files.intermediates), "--trusted-root", str(root)]
    ok = cli("verify-blob", str(blob), "--bundle", str(bundle), *verify)
    assert ok.exit_code == 0, ok.stderr
    result = sigstore_js_verify(bundle, root, artifact=blob, identity=files.identity, issuer=files.issuer)
    assert result["ok"], result


def test_a_timestamp_over_another_signature_is_no_time(cli: Any, tmp_path: Path, files: Files, tsa: TsaServer) -> None:
    """Without the log's time (--insecure-ignore-tlog) the timestamp is the only time; one over another
    signature proves nothing, so the keyless certificate cannot be checked: refused."""
    blob, bundle = _sign(cli, tmp_path, files, tsa, *files.sign_args(), name="one")
    _, other = _sign(cli, tmp_path, files, tsa, *files.sign_args(), name="two")
    document = json.loads(bundle.read_bytes())
    document["verificationMaterial"]["timestampVerificationData"] = json.loads(other.read_bytes())[
        "verificationMaterial"]["timestampVerificationData"]  # fmt: skip
    bundle.write_text(json.dumps(document))
    root = _root(files, tsa, tmp_path / "root.json")
    verify = [*files.verify_args(), "--ca-intermediates", str(files.intermediates), "--trusted-root", str(root)]
    refused = cli("verify-blob", str(blob), "--bundle", str(bundle), *verify, "--insecure-ignore-tlog")
    assert refused.exit_code == 10
    assert "the RFC 3161 timestamp does not verify" in refused.stderr


def test_a_timestamp_outside_the_certificates_validity_is_refused(
    cli: Any, tmp_path: Path, files: Files, late_tsa: TsaServer
) -> None:
    blob, bundle = _sign(cli, tmp_path, files, late_tsa, *files.sign_args())
    root = _root(files, late_tsa, tmp_path / "root.json")
    verify = [*files.verify_args(), "--ca-intermediates", str(files.intermediates), "--trusted-root", str(root)]
    refused = cli("verify-blob", str(blob), "--bundle", str(bundle), *verify)
    assert refused.exit_code == 10
    assert "certificate" in refused.stderr and "valid" in refused.stderr


def test_timestamps_need_the_v3_bundle_and_a_trusted_tsa(cli: Any, tmp_path: Path, files: Files,
                                                         tsa: TsaServer) -> None:  # fmt: skip
    blob = tmp_path / "b"
    blob.write_bytes(b"x")
    legacy = cli("sign-blob", str(blob), "--key", str(files.key), "--no-tlog-upload", "--bundle-format", "legacy",
                 "--timestamp-server-url", tsa.timestamp_url, env=PASSWORD)  # fmt: skip
    assert legacy.exit_code == 2 and "needs --bundle-format v3" in legacy.stderr
    remote = cli("sign-blob", str(blob), "--key", str(files.key), "--no-tlog-upload",
                 "--timestamp-server-url", "https://tsa.example/api/v1/timestamp", env=PASSWORD)  # fmt: skip
    assert remote.exit_code == 2 and "needs its certificate chain" in remote.stderr


@pytest.mark.parametrize("bundle_format", ["legacy", "both"])
def test_a_legacy_sig_layer_carries_cosigns_rfc3161_timestamp_annotation(
    cli: Any, plain_registry: RegistryProcess, tmp_path: Path, files: Files, tsa: TsaServer, bundle_format: str
) -> None:
    """cosign's ``dev.sigstore.cosign/rfc3161timestamp`` = ``{"SignedRFC3161Timestamp": <b64 DER>}``, a timestamp
    over the raw signature bytes (cosign internal/pkg/cosign/tsa), which verification then checks."""
    with make_client() as registry:
        _, digest = push_image(registry, plain_registry.ref(f"tsa/legacy-{bundle_format}:v1"), bundle_format.encode())
    image = f"{plain_registry.ref(f'tsa/legacy-{bundle_format}')}@{digest}"
    log = ["--rekor-url", files.stack.log.url, "--rekor-public-key", str(files.rekor_key)]
    signed = cli("sign", image, "--key", str(files.key), "--bundle-format", bundle_format, *log,
                 "--timestamp-server-url", tsa.timestamp_url, env=PASSWORD)  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    with make_client() as registry:
        sig_ref = parse_reference(plain_registry.ref(f"tsa/legacy-{bundle_format}:sha256-{digest.split(':')[1]}.sig"))
        manifest = json.loads(registry.get_manifest(sig_ref).data)
    [layer] = manifest["layers"]
    annotation = json.loads(layer["annotations"]["dev.sigstore.cosign/rfc3161timestamp"])
    assert list(annotation) == ["SignedRFC3161Timestamp"]
    signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    response = base64.b64decode(annotation["SignedRFC3161Timestamp"])
    assert hashlib.sha256(signature).digest() in response  # the message imprint: the raw signature's digest
    root = _root(files, tsa, tmp_path / "root.json")
    verified = cli("verify", image, "--key", str(files.pub), "--trusted-root", str(root), "--json")
    assert verified.exit_code == 0, verified.stderr
    checks = [c for s in json.loads(verified.stdout)[0]["signatures"] for c in s["checks"]]
    assert any("RFC 3161 timestamp annotation over the signature verified" in c for c in checks), checks


def test_a_legacy_att_layer_carries_cosigns_rfc3161_timestamp_annotation(
    cli: Any, plain_registry: RegistryProcess, tmp_path: Path, files: Files, tsa: TsaServer
) -> None:
    """An attestation's ``.att`` layer gets the same annotation, over the layer's bytes (the envelope JSON:
    an attestation has no detached signature, and cosign's VerifyRFC3161Timestamp then checks its payload)."""
    with make_client() as registry:
        _, digest = push_image(registry, plain_registry.ref("tsa/attested:v1"), b"attested image")
    image = f"{plain_registry.ref('tsa/attested')}@{digest}"
    predicate = tmp_path / "predicate.json"
    predicate.write_text(json.dumps({"builder": "tsa test"}))
    log = ["--rekor-url", files.stack.log.url, "--rekor-public-key", str(files.rekor_key)]
    attested = cli("attest", image, "--predicate", str(predicate), "--type", "custom", "--key", str(files.key),
                   "--bundle-format", "legacy", *log, "--timestamp-server-url", tsa.timestamp_url,
                   env=PASSWORD)  # fmt: skip
    assert attested.exit_code == 0, attested.stderr
    with make_client() as registry:
        att_ref = parse_reference(plain_registry.ref(f"tsa/attested:sha256-{digest.split(':')[1]}.att"))
        manifest = json.loads(registry.get_manifest(att_ref).data)
        [layer] = manifest["layers"]
        envelope = registry.get_blob(att_ref.repo, layer["digest"])
    response = base64.b64decode(json.loads(layer["annotations"]["dev.sigstore.cosign/rfc3161timestamp"])
                                ["SignedRFC3161Timestamp"])  # fmt: skip
    assert hashlib.sha256(envelope).digest() in response  # the message imprint: the envelope's digest
    root = _root(files, tsa, tmp_path / "root.json")
    verify = ["verify-attestation", image, "--type", "custom", "--key", str(files.pub), "--json"]
    verified = cli(*verify, "--trusted-root", str(root))
    assert verified.exit_code == 0, verified.stderr
    [attestation] = json.loads(verified.stdout)[0]["attestations"]
    assert "the RFC 3161 timestamp annotation verified with a trusted timestamp authority" in attestation["checks"]
    # a TSA the trusted root does not name: no time from it, said so, and the log entry still verifies
    other = tmp_path / "other-root.json"
    other.write_text(json.dumps({**json.loads(root.read_text()), "timestampAuthorities": []}))
    untrusted = cli(*verify, "--trusted-root", str(other))
    assert untrusted.exit_code == 0, untrusted.stderr
    [attestation] = json.loads(untrusted.stdout)[0]["attestations"]
    assert "the RFC 3161 timestamp annotation was NOT verified: no timestamp authority is trusted" in \
        attestation["checks"], attestation["checks"]  # fmt: skip


def test_a_v3_image_bundle_carries_a_timestamp(
    cli: Any, plain_registry: RegistryProcess, tmp_path: Path, files: Files, tsa: TsaServer
) -> None:
    with make_client() as registry:
        _, digest = push_image(registry, plain_registry.ref("tsa/app:v1"), b"timestamped image")
    image = f"{plain_registry.ref('tsa/app')}@{digest}"
    log = ["--rekor-url", files.stack.log.url, "--rekor-public-key", str(files.rekor_key)]
    signed = cli("sign", image, "--key", str(files.key), "--bundle-format", "v3", *log,
                 "--timestamp-server-url", tsa.timestamp_url, env=PASSWORD)  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    root = _root(files, tsa, tmp_path / "root.json")
    verified = cli("verify", image, "--key", str(files.pub), "--trusted-root", str(root), "--json")
    assert verified.exit_code == 0, verified.stderr
    [report] = json.loads(verified.stdout)
    [signature] = report["signatures"]
    assert signature["format"] == "v3"
    assert any("RFC 3161 timestamp(s) over the signature verified" in check for check in signature["checks"])
