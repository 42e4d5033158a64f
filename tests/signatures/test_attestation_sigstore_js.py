"""Our attestation bundle (DSSE, key-signed, logged in the embedded Rekor) verified by sigstore-js
(``@sigstore/verify``, installed by ``make install`` into .venv/node), through tests/js/sigstore_verify_dsse.cjs.
A changed payload is refused by it too."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.cosign.keys import SigningKey
from pipeline.rehearsal.log_server import LogServer
from pipeline.signatures.att_blob import attest_blob
from pipeline.signatures.signers import KeySigner
from pipeline.sigstore.intoto import SLSA_PROVENANCE_V1
from pipeline.sigstore.rekor_client import RekorClient
from tests.conftest import REPO_ROOT

MODULES = REPO_ROOT / ".venv" / "node" / "node_modules"
SCRIPT = REPO_ROOT / "tests" / "js" / "sigstore_verify_dsse.cjs"


def _der(key: object) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined, no-any-return]


def _root(log: LogServer, path: Path) -> Path:
    der = _der(log.public_key)
    path.write_text(json.dumps({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{"baseUrl": log.url, "hashAlgorithm": "SHA2_256",
                   "publicKey": {"rawBytes": base64.b64encode(der).decode(), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                 "validFor": {"start": "2000-01-01T00:00:00Z"}},
                   "logId": {"keyId": base64.b64encode(hashlib.sha256(der).digest()).decode()}}],
        "certificateAuthorities": [], "ctlogs": [], "timestampAuthorities": [],
    }))  # fmt: skip
    return path


def _verify(bundle: Path, root: Path, key: SigningKey) -> dict[str, object]:
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(SCRIPT), str(bundle), str(root), base64.b64encode(_der(key.public_key)).decode()],
        capture_output=True, text=True, env={"SIGSTORE_JS_MODULES": str(MODULES)}, check=False, timeout=60,
    )  # fmt: skip
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.skipif(not (MODULES / "@sigstore" / "verify").is_dir() or shutil.which("node") is None,
                    reason="sigstore-js is installed by make install (.venv/node)")  # fmt: skip
def test_sigstore_js_verifies_our_attestation_bundle(tmp_path: Path) -> None:
    key = SigningKey(ec.generate_private_key(ec.SECP256R1()), "test key")
    with LogServer() as log, RekorClient(log.url, [log.public_key]) as rekor:
        bundle = attest_blob("app.tar.gz", "ab" * 32, SLSA_PROVENANCE_V1, {"x": 1}, KeySigner.of(key), rekor)
        root = _root(log, tmp_path / "trusted_root.json")
    (tmp_path / "b.json").write_bytes(bundle)
    result = _verify(tmp_path / "b.json", root, key)
    assert result["ok"], result
    statement = json.loads(base64.b64decode(str(result["payload"])))
    assert statement["predicateType"] == SLSA_PROVENANCE_V1 and result["payloadType"] == "application/vnd.in-toto+json"

    document = json.loads(bundle)
    statement["predicate"] = {"x": 2}
    document["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (tmp_path / "changed.json").write_text(json.dumps(document))
    refused = _verify(tmp_path / "changed.json", root, key)
    assert not refused["ok"]
