"""Signing into a Rekor v2 log chosen by the signing config (majorApiVersion 2): the v2 stand-in, the
hashedrekord/dsse 0.0.2 entries it answers, the timestamp a v2 entry needs, and their verification by us and by
sigstore-js with a trusted root built from the stand-ins' keys."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from pipeline.cosign.keys import load_public_key
from pipeline.rehearsal.log_server_v2 import LogServerV2
from pipeline.rehearsal.tsa_server import TsaServer
from pipeline.sigstore.rekor_v2 import c2sp_key_id
from pipeline.sigstore.trusted_root_writer import Authority, LogKey, trusted_root_json
from tests.cli.test_keyless_cli import NO_AMBIENT_TOKEN, Files, files
from tests.oci.helpers import client as make_client
from tests.oci.helpers import push_image
from tests.registry_fixtures import RegistryProcess
from tests.sigstore.keyless_fixtures import keyless_stack
from tests.sigstore.sigstore_js import sigstore_js_verify

__all__ = ["files", "keyless_stack"]

ENV = {**NO_AMBIENT_TOKEN, "COSIGN_PASSWORD": "pw"}
SINCE = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def v2log() -> Iterator[LogServerV2]:
    with LogServerV2() as server:
        yield server


@pytest.fixture(scope="module")
def tsa() -> Iterator[TsaServer]:
    with TsaServer() as server:
        yield server


def _service(url: str, version: int) -> dict[str, object]:
    return {"url": url, "majorApiVersion": version, "validFor": {"start": "2020-01-01T00:00:00Z"}, "operator": "t"}


def _config(path: Path, files: Files, log: LogServerV2, tsa: TsaServer | None) -> Path:
    path.write_text(json.dumps({
        "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
        "caUrls": [_service(files.stack.fulcio.url, 1)], "oidcUrls": [],
        "rekorTlogUrls": [_service(files.stack.log.url, 1), _service(log.url, 2)],
        "tsaUrls": [_service(tsa.timestamp_url, 1)] if tsa is not None else [],
        "rekorTlogConfig": {"selector": "ANY"}, "tsaConfig": {"selector": "ANY"},
    }))  # fmt: skip
    return path


def _root(path: Path, files: Files, log: LogServerV2, tsa: TsaServer) -> Path:
    stack = files.stack
    path.write_bytes(trusted_root_json(
        tlogs=[LogKey(log.url, log.public_key, SINCE, log_id=log.log_id)],
        certificate_authorities=[Authority(stack.fulcio.url, tuple(x509.load_pem_x509_certificates(
            stack.fulcio.chain_pem())), SINCE)],
        ctlogs=[LogKey("https://ct.example", load_public_key(stack.fulcio.ct_log_public_key_pem(), "ct"), SINCE)],
        timestamp_authorities=[Authority(tsa.timestamp_url, tsa.authority.chain, SINCE)],
    ))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def v2pub(tmp_path_factory: pytest.TempPathFactory, v2log: LogServerV2) -> Path:
    path = tmp_path_factory.mktemp("v2") / "rekor-v2.pub"
    path.write_bytes(v2log.public_key_pem())
    return path


def _keyless(files: Files, v2pub: Path) -> list[str]:
    return ["--keyless", "--identity-token", str(files.token), "--fulcio-ca-roots", str(files.chain),
            "--rekor-public-key", str(v2pub), "--ct-log-public-key", str(files.ct_log)]  # fmt: skip


def _sign_blob(cli: Any, tmp_path: Path, files: Files, v2log: LogServerV2, tsa: TsaServer, *signing: str,
               name: str = "b") -> tuple[Path, Path]:  # fmt: skip
    blob, bundle = tmp_path / f"{name}.txt", tmp_path / f"{name}.sigstore.json"
    blob.write_bytes(f"rekor v2 artifact {name}\n".encode())
    config = _config(tmp_path / "signing_config.json", files, v2log, tsa)
    signed = cli("sign-blob", str(blob), "--bundle", str(bundle), "--signing-config", str(config), *signing, env=ENV)
    assert signed.exit_code == 0, signed.stderr
    return blob, bundle


def test_a_key_signed_blob_goes_into_the_v2_log_and_verifies_with_us_and_sigstore_js(
    cli: Any, tmp_path: Path, files: Files, v2log: LogServerV2, v2pub: Path, tsa: TsaServer
) -> None:
    before = len(v2log)
    blob, bundle = _sign_blob(cli, tmp_path, files, v2log, tsa, "--key", str(files.key), "--rekor-public-key",
                              str(v2pub))  # fmt: skip
    assert len(v2log) == before + 1
    material = json.loads(bundle.read_bytes())["verificationMaterial"]
    [entry] = material["tlogEntries"]
    assert entry["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.2"}
    assert "inclusionPromise" not in entry and "integratedTime" not in entry
    assert base64.b64decode(entry["logId"]["keyId"]) == c2sp_key_id(v2log.origin, v2log.public_key)
    assert len(material["timestampVerificationData"]["rfc3161Timestamps"]) == 1
    root = _root(tmp_path / "root.json", files, v2log, tsa)
    ok = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(files.pub), "--trusted-root", str(root),
             "--json")  # fmt: skip
    assert ok.exit_code == 0, ok.stderr
    assert any("Rekor v2" in check for check in json.loads(ok.stdout)["checks"])
    result = sigstore_js_verify(bundle, root, artifact=blob, public_key=files.pub)
    assert result["ok"], result


def test_a_keyless_blob_in_the_v2_log_verifies_with_us_and_sigstore_js(
    cli: Any, tmp_path: Path, files: Files, v2log: LogServerV2, v2pub: Path, tsa: TsaServer
) -> None:
    blob, bundle = _sign_blob(cli, tmp_path, files, v2log, tsa, *_keyless(files, v2pub))
    root = _root(tmp_path / "root.json", files, v2log, tsa)
    verify = [*files.verify_args(), "--ca-intermediates", str(files.intermediates), "--trusted-root", str(root)]
    ok = cli("verify-blob", str(blob), "--bundle", str(bundle), *verify)
    assert ok.exit_code == 0, ok.stderr
    result = sigstore_js_verify(bundle, root, artifact=blob, identity=files.identity, issuer=files.issuer)
    assert result["ok"], result


def test_a_v3_image_bundle_in_the_v2_log_verifies_with_us_and_sigstore_js(
    cli: Any, plain_registry: RegistryProcess, tmp_path: Path, files: Files, v2log: LogServerV2, v2pub: Path,
    tsa: TsaServer,
) -> None:  # fmt: skip
    with make_client() as registry:
        _, digest = push_image(registry, plain_registry.ref("v2/app:v1"), b"rekor v2 image")
    image = f"{plain_registry.ref('v2/app')}@{digest}"
    config = _config(tmp_path / "signing_config.json", files, v2log, tsa)
    signed = cli("sign", image, "--key", str(files.key), "--bundle-format", "v3", "--signing-config", str(config),
                 "--rekor-public-key", str(v2pub), env=ENV)  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    entries = len(v2log)
    again = cli("sign", image, "--key", str(files.key), "--bundle-format", "v3", "--signing-config", str(config),
                "--rekor-public-key", str(v2pub), "--json", env=ENV)  # fmt: skip
    assert again.exit_code == 0, again.stderr
    assert len(v2log) == entries, "a re-run found its v2 bundle (dated by the TSA) and signed nothing"
    root = _root(tmp_path / "root.json", files, v2log, tsa)
    verified = cli("verify", image, "--key", str(files.pub), "--trusted-root", str(root), "--json")
    assert verified.exit_code == 0, verified.stderr
    [report] = json.loads(verified.stdout)
    [signature] = report["signatures"]
    assert signature["format"] == "v3"
    assert any("Rekor v2" in check for check in signature["checks"]), signature["checks"]


def test_a_v2_log_needs_a_timestamp_authority_and_the_v3_layout(
    cli: Any, tmp_path: Path, files: Files, v2log: LogServerV2, v2pub: Path, tsa: TsaServer
) -> None:
    blob = tmp_path / "b"
    blob.write_bytes(b"x")
    no_tsa = _config(tmp_path / "no-tsa.json", files, v2log, None)
    refused = cli("sign-blob", str(blob), "--key", str(files.key), "--signing-config", str(no_tsa),
                  "--rekor-public-key", str(v2pub), env=ENV)  # fmt: skip
    assert refused.exit_code == 2
    assert "needs a timestamp authority" in refused.stderr and v2log.url in refused.stderr
    config = _config(tmp_path / "cfg.json", files, v2log, tsa)
    image = "127.0.0.1:9/a/b@sha256:" + "1" * 64
    legacy = cli("sign", image, "--key", str(files.key), "--bundle-format", "both", "--signing-config", str(config),
                 "--rekor-public-key", str(v2pub), env=ENV)  # fmt: skip
    assert legacy.exit_code == 2
    assert "cannot go into cosign's legacy layout" in legacy.stderr


def test_a_v2_log_answer_signed_by_another_key_is_refused_when_signing(
    cli: Any, tmp_path: Path, files: Files, v2log: LogServerV2, tsa: TsaServer
) -> None:
    """The checkpoint must verify with the key the operator trusts, not with one the log hands out."""
    other = tmp_path / "other.pub"
    with LogServerV2(ed25519.Ed25519PrivateKey.generate()) as stranger:
        other.write_bytes(stranger.public_key_pem())
    blob = tmp_path / "b"
    blob.write_bytes(b"x")
    config = _config(tmp_path / "cfg.json", files, v2log, tsa)
    refused = cli("sign-blob", str(blob), "--key", str(files.key), "--signing-config", str(config),
                  "--rekor-public-key", str(other), env=ENV)  # fmt: skip
    assert refused.exit_code == 5, refused.stderr
    assert "does not verify" in refused.stderr and "checkpoint" in refused.stderr


def test_attest_blob_writes_a_dsse_entry_into_the_v2_log_we_and_sigstore_js_verify(
    cli: Any, tmp_path: Path, files: Files, v2log: LogServerV2, v2pub: Path, tsa: TsaServer
) -> None:
    blob, predicate, bundle = tmp_path / "a.txt", tmp_path / "p.json", tmp_path / "a.sigstore.json"
    blob.write_bytes(b"attested in rekor v2\n")
    predicate.write_text('{"built": "here"}')
    config = _config(tmp_path / "cfg.json", files, v2log, tsa)
    signed = cli("attest-blob", str(blob), "--predicate", str(predicate), "--type", "custom", "--key",
                 str(files.key), "--bundle", str(bundle), "--signing-config", str(config), "--rekor-public-key",
                 str(v2pub), env=ENV)  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    [entry] = json.loads(bundle.read_bytes())["verificationMaterial"]["tlogEntries"]
    assert entry["kindVersion"] == {"kind": "dsse", "version": "0.0.2"}
    root = _root(tmp_path / "root.json", files, v2log, tsa)
    ok = cli("verify-blob-attestation", str(blob), "--bundle", str(bundle), "--type", "custom", "--key",
             str(files.pub), "--trusted-root", str(root))  # fmt: skip
    assert ok.exit_code == 0, ok.stderr
    result = sigstore_js_verify(bundle, root, public_key=files.pub)
    assert result["ok"], result


def test_attest_writes_a_v3_attestation_into_the_v2_log(
    cli: Any, plain_registry: RegistryProcess, tmp_path: Path, files: Files, v2log: LogServerV2, v2pub: Path,
    tsa: TsaServer,
) -> None:  # fmt: skip
    with make_client() as registry:
        _, digest = push_image(registry, plain_registry.ref("v2/att:v1"), b"rekor v2 attested image")
    image = f"{plain_registry.ref('v2/att')}@{digest}"
    predicate = tmp_path / "p.json"
    predicate.write_text('{"built": "here"}')
    config = _config(tmp_path / "cfg.json", files, v2log, tsa)
    before = len(v2log)
    signed = cli("attest", image, "--predicate", str(predicate), "--type", "custom", "--key", str(files.key),
                 "--bundle-format", "v3", "--signing-config", str(config), "--rekor-public-key", str(v2pub),
                 env=ENV)  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    assert len(v2log) == before + 1
    root = _root(tmp_path / "root.json", files, v2log, tsa)
    ok = cli("verify-attestation", image, "--type", "custom", "--key", str(files.pub), "--trusted-root", str(root))
    assert ok.exit_code == 0, ok.stderr


def _resign_checkpoint(envelope: str, key: ed25519.Ed25519PrivateKey, log: LogServerV2) -> str:
    """The same note, signed by ``key`` under the log's name (a forged checkpoint)."""
    note = envelope[: envelope.index("\n\n") + 1]
    hint = c2sp_key_id(log.origin, key.public_key())[:4]
    signature = base64.b64encode(hint + key.sign(note.encode())).decode()
    return f"{note}\n\u2014 {log.origin} {signature}\n"


@pytest.mark.parametrize("tamper", ["checkpoint by another key", "proof for another leaf"])
def test_a_forged_v2_entry_is_refused_with_its_reason(
    cli: Any, tmp_path: Path, files: Files, v2log: LogServerV2, v2pub: Path, tsa: TsaServer, tamper: str
) -> None:
    args = ["--key", str(files.key), "--rekor-public-key", str(v2pub)]
    blob, bundle = _sign_blob(cli, tmp_path, files, v2log, tsa, *args, name="one")
    _, other = _sign_blob(cli, tmp_path, files, v2log, tsa, *args, name="two")
    document = json.loads(bundle.read_bytes())
    [entry] = document["verificationMaterial"]["tlogEntries"]
    if tamper == "checkpoint by another key":
        proof = entry["inclusionProof"]["checkpoint"]
        proof["envelope"] = _resign_checkpoint(proof["envelope"], ed25519.Ed25519PrivateKey.generate(), v2log)
        reason = "the checkpoint is signed by none of the trusted Rekor keys"
    else:
        [theirs] = json.loads(other.read_bytes())["verificationMaterial"]["tlogEntries"]
        entry["inclusionProof"], entry["logIndex"] = theirs["inclusionProof"], theirs["logIndex"]
        reason = "inclusion proof"
    bundle.write_text(json.dumps(document))
    root = _root(tmp_path / "root.json", files, v2log, tsa)
    refused = cli("verify-blob", str(blob), "--bundle", str(bundle), "--key", str(files.pub), "--trusted-root",
                  str(root))  # fmt: skip
    assert refused.exit_code == 10, refused.stderr
    assert reason in refused.stderr, refused.stderr
    assert not sigstore_js_verify(bundle, root, artifact=blob, public_key=files.pub)["ok"]
