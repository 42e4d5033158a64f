"""attest-blob / verify-blob-attestation through the CLI: our bundle round trip (key, embedded log), the
negative cases, bad input, and a real cosign attestation bundle (bundle-v03) checked by --digest."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COSIGN_VECTORS
from tests.sigstore.log_fixtures import LocalLog, local_log

__all__ = ["local_log"]

PASSWORD = {"COSIGN_PASSWORD": "pw"}
BUNDLE_V03 = COSIGN_VECTORS / "bundle-v03"


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from pipeline.cosign.keys import generate_key_pair
    from pipeline.secret import Secret

    directory = tmp_path_factory.mktemp("keys")
    pair = generate_key_pair(Secret("pw"))
    (directory / "cosign.key").write_bytes(pair.private_pem.reveal())
    (directory / "cosign.pub").write_bytes(pair.public_pem)
    return directory / "cosign.key", directory / "cosign.pub"


def test_attest_blob_round_trip_and_negatives(
    cli: Any, key_pair: tuple[Path, Path], local_log: LocalLog, tmp_path: Path
) -> None:
    key, pub = key_pair
    artifact = tmp_path / "app.tar.gz"
    artifact.write_bytes(b"the artifact")
    predicate = tmp_path / "sbom.json"
    predicate.write_text('{"bomFormat": "CycloneDX"}')
    bundle = tmp_path / "app.sigstore.json"
    done = cli("attest-blob", str(artifact), "--predicate", str(predicate), "--type", "cyclonedx", "--key", str(key),
               "--bundle", str(bundle), *local_log.sign_args, env=PASSWORD)  # fmt: skip
    assert done.exit_code == 0, done.stderr
    document = json.loads(bundle.read_bytes())
    assert document["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert document["verificationMaterial"]["tlogEntries"][0]["kindVersion"] == {"kind": "dsse", "version": "0.0.1"}
    statement = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    sha = hashlib.sha256(b"the artifact").hexdigest()
    assert statement["subject"] == [{"name": "app.tar.gz", "digest": {"sha256": sha}}]

    verify = ["--bundle", str(bundle), "--type", "cyclonedx", "--key", str(pub), *local_log.verify_args]
    ok = cli("verify-blob-attestation", str(artifact), *verify)
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["predicate"] == {"bomFormat": "CycloneDX"}
    assert cli("verify-blob-attestation", "--digest", sha, *verify).exit_code == 0

    wrong_type = cli("verify-blob-attestation", str(artifact), *verify[:2], "--type", "spdx", *verify[4:])
    assert wrong_type.exit_code == 10 and "predicateType is https://cyclonedx.org/bom" in wrong_type.stderr
    other = tmp_path / "other"
    other.write_bytes(b"another artifact")
    mismatch = cli("verify-blob-attestation", str(other), *verify)
    assert mismatch.exit_code == 10 and "the signature is for another file" in mismatch.stderr

    statement["predicate"] = {"bomFormat": "evil"}
    document["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(document))
    refused = cli("verify-blob-attestation", str(artifact), "--bundle", str(changed), *verify[2:])
    assert refused.exit_code == 10 and "DSSE signature does not verify" in refused.stderr


def test_bad_predicate_writes_no_bundle(cli: Any, key_pair: tuple[Path, Path], tmp_path: Path) -> None:
    key, _ = key_pair
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "p.json").write_text("[]")
    result = cli("attest-blob", str(tmp_path / "a"), "--predicate", str(tmp_path / "p.json"), "--key", str(key),
                 "--bundle", str(tmp_path / "out.json"), "--no-tlog-upload", env=PASSWORD)  # fmt: skip
    assert result.exit_code == 3 and "not a JSON object" in result.stderr
    assert not (tmp_path / "out.json").exists()


def test_a_real_cosign_attestation_bundle_verifies_by_digest(cli: Any) -> None:
    manifest = (BUNDLE_V03 / "cosign-attest-keyless" / "empty-image.manifest.derived.json").read_bytes()
    args = ["verify-blob-attestation", "--digest", hashlib.sha256(manifest).hexdigest(),
            "--bundle", str(BUNDLE_V03 / "cosign-attest-keyless" / "oci-attestation.sigstore.json"),
            "--type", "custom", "--certificate-identity", "cody@soyland.com",
            "--certificate-oidc-issuer", "https://github.com/login/oauth",
            "--trusted-root", str(BUNDLE_V03 / "trusted_root.public-good.json")]  # fmt: skip
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["predicateType"] == "https://cosign.sigstore.dev/attestation/v1"
    wrong = cli(*[a if a != "cody@soyland.com" else "someone@example.com" for a in args])
    assert wrong.exit_code == 10
