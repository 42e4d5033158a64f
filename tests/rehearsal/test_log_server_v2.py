"""The Rekor v2 stand-in: it checks what it is sent (signature over the digest, DSSE signatures over the PAE) and
answers TransparencyLogEntry objects our v2 verification accepts."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.rehearsal.log_server_v2 import V2_CHECKPOINT_PATH, V2_ENTRIES_PATH, LogServerV2
from pipeline.sigstore.bundle import parse_tlog_entry
from pipeline.sigstore.dsse import dsse_pae
from pipeline.sigstore.rekor_v2_client import verify_v2_answer

KEY = ec.generate_private_key(ec.SECP256R1())
SPKI = KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
VERIFIER = {"publicKey": {"rawBytes": base64.b64encode(SPKI).decode()}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"}


@pytest.fixture(scope="module")
def log() -> Iterator[LogServerV2]:
    with LogServerV2() as server:
        yield server


def _hashedrekord(artifact: bytes, signed: bytes) -> dict[str, object]:
    signature = KEY.sign(signed, ec.ECDSA(hashes.SHA256()))
    return {"hashedRekordRequestV002": {"digest": base64.b64encode(hashlib.sha256(artifact).digest()).decode(),
                                        "signature": {"content": base64.b64encode(signature).decode(),
                                                      "verifier": VERIFIER}}}  # fmt: skip


def test_a_hashedrekord_entry_is_answered_as_rekor_v2_does(log: LogServerV2) -> None:
    request = _hashedrekord(b"a", b"a")
    answer = httpx.post(f"{log.url}{V2_ENTRIES_PATH}", json=request)
    assert answer.status_code == 201
    document = answer.json()
    assert list(document) == ["logIndex", "logId", "kindVersion", "inclusionProof", "canonicalizedBody"]
    entry = parse_tlog_entry(document, "test")
    verify_v2_answer(entry, [log.public_key], "hashedrekord", "test")
    assert entry.signed_entry_timestamp is None and entry.integrated_time == 0
    again = httpx.post(f"{log.url}{V2_ENTRIES_PATH}", json=request)
    assert again.json()["logIndex"] == document["logIndex"]  # the same entry, not a second one
    checkpoint = httpx.get(f"{log.url}{V2_CHECKPOINT_PATH}").text
    assert checkpoint.startswith(f"{log.origin}\n")


def test_a_signature_over_another_artifact_is_refused(log: LogServerV2) -> None:
    before = len(log)
    answer = httpx.post(f"{log.url}{V2_ENTRIES_PATH}", json=_hashedrekord(b"a", b"b"))
    assert answer.status_code == 400 and "does not verify" in answer.json()["message"]
    assert len(log) == before


def test_a_dsse_signature_that_does_not_verify_is_refused(log: LogServerV2) -> None:
    payload = b'{"_type":"https://in-toto.io/Statement/v1"}'
    good = KEY.sign(dsse_pae("application/vnd.in-toto+json", payload), ec.ECDSA(hashes.SHA256()))
    request = {"dsseRequestV002": {"envelope": {"payload": base64.b64encode(payload).decode(),
                                                "payloadType": "application/vnd.in-toto+json",
                                                "signatures": [{"sig": base64.b64encode(good).decode(), "keyid": ""}]},
                                   "verifiers": [VERIFIER]}}  # fmt: skip
    ok = httpx.post(f"{log.url}{V2_ENTRIES_PATH}", json=request)
    assert ok.status_code == 201 and ok.json()["kindVersion"] == {"kind": "dsse", "version": "0.0.2"}
    request["dsseRequestV002"]["envelope"]["payloadType"] = "text/plain"  # type: ignore[index]
    refused = httpx.post(f"{log.url}{V2_ENTRIES_PATH}", json=request)
    assert refused.status_code == 400 and "verifies with none of the verifiers" in refused.json()["message"]


def test_an_unknown_request_or_path_is_refused(log: LogServerV2) -> None:
    assert httpx.post(f"{log.url}{V2_ENTRIES_PATH}", json={"rekordRequest": {}}).status_code == 400
    assert httpx.post(f"{log.url}{V2_ENTRIES_PATH}", content=b"{").status_code == 400
    assert httpx.get(f"{log.url}/api/v1/log").status_code == 404
