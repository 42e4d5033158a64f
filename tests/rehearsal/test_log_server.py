"""The embedded Rekor v1 log: its HTTP contract, its Merkle tree, and that what it signs passes the same
offline checks as the real public-good log's entries (the vectors in ``tests/vectors/cosign``)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.cosign.keys import PublicKey, SigningKey, load_public_key, public_key_to_pem
from pipeline.cosign.rekor import (
    RekorBundle,
    log_id_of,
    merkle_leaf_hash,
    parse_rekor_bundle,
    verify_checkpoint,
    verify_inclusion_proof,
)
from pipeline.cosign.verify import VerificationPolicy, verify_signed_payload
from pipeline.errors import VerificationError
from pipeline.rehearsal.log_server import (
    LISTEN_BACKLOG,
    BadEntry,
    LogServer,
    MerkleTree,
    canonical_hashedrekord,
)
from tests.conftest import COSIGN_VECTORS

IMAGE_SIGNATURES = COSIGN_VECTORS / "image-signatures"
KEY_SIGNED = COSIGN_VECTORS / "bundle-v03" / "key-signed"


@pytest.fixture(scope="module")
def log() -> object:
    with LogServer() as server:
        yield server


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), "test key")


def proposal(digest_hex: str, signature: bytes, pem: bytes) -> dict[str, object]:
    """A proposed hashedrekord, written here from rekor's schema (keys deliberately unsorted)."""
    return {
        "kind": "hashedrekord",
        "apiVersion": "0.0.1",
        "spec": {
            "signature": {
                "publicKey": {"content": base64.b64encode(pem).decode()},
                "content": base64.b64encode(signature).decode(),
            },
            "data": {"hash": {"value": digest_hex, "algorithm": "sha256"}},
        },
    }


def sign_and_propose(signer: SigningKey, payload: bytes) -> tuple[bytes, dict[str, object]]:
    signature = signer.sign(payload)
    return signature, proposal(hashlib.sha256(payload).hexdigest(), signature, signer.public_key_pem())


def post(server: LogServer, body: object) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/log/entries", json=body)


def as_bundle(entry: dict[str, object], where: str = "log") -> RekorBundle:
    verification = entry["verification"]
    assert isinstance(verification, dict)
    return parse_rekor_bundle(
        {
            "SignedEntryTimestamp": verification["signedEntryTimestamp"],
            "Payload": {k: entry[k] for k in ("body", "integratedTime", "logIndex", "logID")},
        },
        where,
    )


# --- the Merkle tree ------------------------------------------------------------------------------


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 MTH, written out independently (leaf hashes in, recursion on k)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])).digest()


def test_tree_roots_and_every_audit_path_agree_with_rfc_6962() -> None:
    tree = MerkleTree()
    leaves: list[bytes] = []
    assert tree.root() == hashlib.sha256(b"").digest()
    for n in range(1, 34):
        data = f"leaf {n}".encode()
        leaves.append(merkle_leaf_hash(data))
        tree.append(leaves[-1])
        assert tree.root() == reference_root(leaves)
        for index in range(n):
            path = tree.inclusion_proof(index, n)
            verify_inclusion_proof(f"leaf {index + 1}".encode(), index, n, path, tree.root(n), "tree")
    # A proof for an older, smaller tree still holds (the cache never changes a finished subtree).
    verify_inclusion_proof(b"leaf 3", 2, 7, tree.inclusion_proof(2, 7), reference_root(leaves[:7]), "tree")
    with pytest.raises(ValueError):
        tree.inclusion_proof(5, 5)


# --- the HTTP contract ----------------------------------------------------------------------------


def test_created_entry_has_rekors_shape_and_verifies_offline(log: LogServer, signer: SigningKey) -> None:
    payload = b"an artifact"
    signature, body = sign_and_propose(signer, payload)
    response = post(log, body)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    [(entry_id, entry)] = response.json().items()
    assert len(entry_id) == 80 and response.headers["ETag"] == entry_id
    assert response.headers["Location"] == f"/api/v1/log/entries/{entry_id}"
    assert set(entry) == {"body", "integratedTime", "logID", "logIndex", "verification"}
    assert set(entry["verification"]) == {"inclusionProof", "signedEntryTimestamp"}
    proof = entry["verification"]["inclusionProof"]
    assert set(proof) == {"checkpoint", "hashes", "logIndex", "rootHash", "treeSize"}
    assert entry["logID"] == log_id_of(log.public_key)

    canonical = base64.b64decode(entry["body"])
    assert json.loads(canonical) == {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}},
            "signature": {
                "content": base64.b64encode(signature).decode(),
                "publicKey": {"content": base64.b64encode(signer.public_key_pem()).decode()},
            },
        },
    }
    assert canonical == json.dumps(json.loads(canonical), sort_keys=True, separators=(",", ":")).encode()
    assert entry_id.endswith(merkle_leaf_hash(canonical).hex())

    # The SET, independently: ECDSA over the sorted compact JSON of the four fields.
    message = json.dumps(
        {k: entry[k] for k in ("body", "integratedTime", "logID", "logIndex")}, sort_keys=True, separators=(",", ":")
    ).encode()
    signed_entry_timestamp = base64.b64decode(entry["verification"]["signedEntryTimestamp"])
    log.public_key.verify(signed_entry_timestamp, message, ec.ECDSA(hashes.SHA256()))

    keys: list[PublicKey] = [log.public_key]
    hashes_ = [bytes.fromhex(h) for h in proof["hashes"]]
    root = bytes.fromhex(proof["rootHash"])
    verify_inclusion_proof(canonical, proof["logIndex"], proof["treeSize"], hashes_, root, "proof")
    verify_checkpoint(proof["checkpoint"], trusted_keys=keys, root_hash=root, tree_size=proof["treeSize"], where="cp")
    origin, size, root_b64 = proof["checkpoint"].split("\n")[:3]
    assert origin == f"{log.log.origin} - {log.log.tree_id}"
    assert int(size) == proof["treeSize"] and base64.b64decode(root_b64) == root


def test_duplicate_is_409_with_the_location_of_the_existing_entry(log: LogServer, signer: SigningKey) -> None:
    _, body = sign_and_propose(signer, b"logged twice")
    first = post(log, body)
    assert first.status_code == 201
    [(entry_id, entry)] = first.json().items()
    size = len(log.log)
    again = post(log, body)
    assert again.status_code == 409
    assert again.headers["Location"] == f"/api/v1/log/entries/{entry_id}"
    error = again.json()
    assert error["code"] == 409 and entry_id in error["message"]
    assert len(log.log) == size, "nothing appended"
    fetched = httpx.get(f"{log.url}{again.headers['Location']}")
    assert fetched.status_code == 200
    [(same_id, same)] = fetched.json().items()
    assert same_id == entry_id
    assert {k: same[k] for k in ("body", "integratedTime", "logID", "logIndex")} == {
        k: entry[k] for k in ("body", "integratedTime", "logID", "logIndex")
    }
    assert same["verification"]["signedEntryTimestamp"] == entry["verification"]["signedEntryTimestamp"]
    # The 64-hex UUID form and the index query find it too.
    assert httpx.get(f"{log.url}/api/v1/log/entries/{entry_id[16:]}").json() == fetched.json()
    by_index = httpx.get(f"{log.url}/api/v1/log/entries", params={"logIndex": entry["logIndex"]})
    assert by_index.json() == fetched.json()


def test_old_entries_get_proofs_against_the_grown_tree(log: LogServer, signer: SigningKey) -> None:
    _, body = sign_and_propose(signer, b"early entry")
    [(entry_id, _)] = post(log, body).json().items()
    for n in range(5):
        assert post(log, sign_and_propose(signer, f"later {n}".encode())[1]).status_code == 201
    [(_, entry)] = httpx.get(f"{log.url}/api/v1/log/entries/{entry_id}").json().items()
    proof = entry["verification"]["inclusionProof"]
    info = httpx.get(f"{log.url}/api/v1/log").json()
    assert proof["treeSize"] == info["treeSize"] == len(log.log)
    assert proof["rootHash"] == info["rootHash"] and info["treeID"] == str(log.log.tree_id)
    root = bytes.fromhex(proof["rootHash"])
    verify_inclusion_proof(
        base64.b64decode(entry["body"]), proof["logIndex"], proof["treeSize"],
        [bytes.fromhex(h) for h in proof["hashes"]], root, "proof",
    )  # fmt: skip
    verify_checkpoint(info["signedTreeHead"], trusted_keys=[log.public_key], root_hash=root,
                      tree_size=info["treeSize"], where="sth")  # fmt: skip


def test_public_key_endpoint_serves_the_pem(log: LogServer) -> None:
    response = httpx.get(f"{log.url}/api/v1/log/publicKey")
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-pem-file"
    assert response.content == log.public_key_pem()
    assert public_key_to_pem(load_public_key(response.content, "log")) == log.public_key_pem()


def test_retrieve_finds_entries_by_uuid_index_and_content(log: LogServer, signer: SigningKey) -> None:
    _, body = sign_and_propose(signer, b"searched")
    [(entry_id, entry)] = post(log, body).json().items()
    query = {"entryUUIDs": [entry_id, "0" * 64], "logIndexes": [entry["logIndex"]], "entries": [body]}
    found = httpx.post(f"{log.url}/api/v1/log/entries/retrieve", json=query)
    assert found.status_code == 200
    assert [list(item) for item in found.json()] == [[entry_id]] * 3


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b["spec"]["data"]["hash"].update(value=hashlib.sha256(b"other").hexdigest()), "verifying signature"),
        (lambda b: b["spec"]["data"]["hash"].update(value="abc"), "invalid value for hash"),
        (lambda b: b["spec"]["data"]["hash"].update(algorithm="md5"), "algorithm"),
        (lambda b: b["spec"]["signature"].update(content="%%%"), "not valid base64"),
        (lambda b: b["spec"]["signature"]["publicKey"].update(content=base64.b64encode(b"junk").decode()), "PEM"),
        (lambda b: b.update(kind="rekord"), "not supported"),
        (lambda b: b.update(apiVersion="0.0.2"), "apiVersion"),
        (lambda b: b.pop("spec"), "spec is missing"),
    ],
)
def test_bad_entries_are_400_with_rekors_error_json(log: LogServer, signer: SigningKey, mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    _, body = sign_and_propose(signer, b"bad entry")
    mutate(body)
    size = len(log.log)
    response = post(log, body)
    assert response.status_code == 400
    assert response.json()["code"] == 400 and reason in response.json()["message"]
    assert len(log.log) == size


def test_not_json_and_unknown_paths(log: LogServer) -> None:
    not_json = httpx.post(
        f"{log.url}/api/v1/log/entries", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["message"]
    assert httpx.get(f"{log.url}/api/v1/log/entries/{'f' * 64}").status_code == 404
    assert httpx.get(f"{log.url}/api/v1/log/entries/xyz").status_code == 400
    assert httpx.get(f"{log.url}/api/v2/whatever").status_code == 404


def test_certificate_signers_are_accepted(log: LogServer) -> None:
    """A real keyless entry's signer (a Fulcio certificate) re-logged here: Rekor verifies with the cert's key."""
    folder = IMAGE_SIGNATURES / "dir-img-cosign-fulcio-rekor-valid"
    payload = (folder / "payload.json").read_bytes()
    signature = base64.b64decode((folder / "signature.b64").read_text().strip())
    body = proposal(hashlib.sha256(payload).hexdigest(), signature, (folder / "cert.pem").read_bytes())
    assert post(log, body).status_code in (201, 409)


def test_canonical_body_is_byte_for_byte_the_real_logs() -> None:
    """The real public-good entry of the v0.3 key-signed bundle, re-proposed with keys shuffled."""
    bundle = json.loads((KEY_SIGNED / "bundle.sigstore.json").read_text())
    real = base64.b64decode(bundle["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"])
    spec = json.loads(real)["spec"]
    proposed = proposal(
        spec["data"]["hash"]["value"],
        base64.b64decode(spec["signature"]["content"]),
        base64.b64decode(spec["signature"]["publicKey"]["content"]),
    )
    assert canonical_hashedrekord(proposed) == real
    with pytest.raises(BadEntry, match="verifying signature"):
        proposed["spec"]["data"]["hash"]["value"] = "0" * 64  # type: ignore[index]
        canonical_hashedrekord(proposed)


def test_same_verify_path_for_our_entries_and_the_real_logs(log: LogServer, signer: SigningKey) -> None:
    """verify_signed_payload accepts a real public-good entry with the real key and ours with our key —
    and neither with the other's key."""
    real_folder = IMAGE_SIGNATURES / "dir-img-cosign-key-rekor-valid"
    real_key = load_public_key((IMAGE_SIGNATURES / "rekor.pub").read_bytes(), "rekor.pub")
    real = (
        (real_folder / "payload.json").read_bytes(),
        base64.b64decode((real_folder / "signature.b64").read_text().strip()),
        parse_rekor_bundle((real_folder / "bundle.json").read_text(), "real"),
        load_public_key((IMAGE_SIGNATURES / "cosign2.pub").read_bytes(), "cosign2.pub"),
    )
    payload = b'{"critical":{},"optional":null}'
    signature, body = sign_and_propose(signer, payload)
    [(_, entry)] = post(log, body).json().items()
    ours = (payload, signature, as_bundle(entry), signer.public_key)

    for (data, sig, bundle, signing_key), log_key, other_key in (
        (real, real_key, log.public_key),
        (ours, log.public_key, real_key),
    ):
        policy = VerificationPolicy(signing_key, None, (log_key,))
        verified = verify_signed_payload(
            data, sig, certificate_pem=None, chain_pem=None, rekor_bundle=bundle, policy=policy, where="w"
        )
        assert verified.log_index == bundle.log_index and verified.integrated_time == bundle.integrated_time
        with pytest.raises(VerificationError, match="matches none of the 1 trusted Rekor keys"):
            verify_signed_payload(
                data, sig, certificate_pem=None, chain_pem=None, rekor_bundle=bundle,
                policy=VerificationPolicy(signing_key, None, (other_key,)), where="w",
            )  # fmt: skip


def test_concurrent_uploads_get_distinct_indexes_and_valid_proofs(signer: SigningKey) -> None:
    with LogServer() as server:
        bodies = [sign_and_propose(signer, f"parallel {n}".encode())[1] for n in range(64)]
        http = httpx.Client()
        with http, ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda b: http.post(f"{server.url}/api/v1/log/entries", json=b), bodies))
            assert all(a.status_code == 201 for a in answers)
            entries = [next(iter(a.json().values())) for a in answers]
            assert sorted(e["logIndex"] for e in entries) == list(range(64))
            info = http.get(f"{server.url}/api/v1/log").json()
            assert info["treeSize"] == 64
            nows = [http.get(f"{server.url}/api/v1/log/entries", params={"logIndex": e["logIndex"]}) for e in entries]
        for answer in nows:
            [(_, now)] = answer.json().items()
            proof = now["verification"]["inclusionProof"]
            assert proof["rootHash"] == info["rootHash"]
            verify_inclusion_proof(
                base64.b64decode(now["body"]), proof["logIndex"], 64,
                [bytes.fromhex(h) for h in proof["hashes"]], bytes.fromhex(info["rootHash"]), "proof",
            )  # fmt: skip


def test_injected_failures_answer_first_then_normal_service(signer: SigningKey) -> None:
    with LogServer() as server:
        server.inject_failures(2, status=503, retry_after="1")
        first = httpx.get(f"{server.url}/api/v1/log")
        assert first.status_code == 503 and first.headers["Retry-After"] == "1"
        assert httpx.post(f"{server.url}/api/v1/log/entries", json={}).status_code == 503
        assert httpx.get(f"{server.url}/api/v1/log").status_code == 200
        assert [status for _, _, status in server.requests] == [503, 503, 200]


def test_given_key_socket_options_and_stop(signer: SigningKey) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    server = LogServer(key).start()
    try:
        assert server.public_key_pem() == key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert server.log_id == log_id_of(key.public_key())
        assert server._server is not None and server._server.request_queue_size == LISTEN_BACKLOG
        with socket.create_connection(("127.0.0.1", server.port)) as connection:
            connection.sendall(b"GET /api/v1/log HTTP/1.1\r\nHost: x\r\n\r\n")
            assert connection.recv(64).startswith(b"HTTP/1.1 200")
        assert "key" not in repr(server).lower().replace("entries", "")
        port = server.port
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/api/v1/log", timeout=2)
    with pytest.raises(ValueError, match="P-256"):
        LogServer(ec.generate_private_key(ec.SECP384R1()))


# --- dsse 0.0.1 entries (cosign v3's kind) ------------------------------------------------------------

V3_BUNDLE = COSIGN_VECTORS / "bundle-v03" / "cosign-sign-image-v3" / "kubewarden-controller-v1.34.0.bundle.pretty.json"


def dsse_proposal(envelope: dict[str, object], verifier_pem: bytes) -> dict[str, object]:
    return {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "proposedContent": {
                "envelope": json.dumps(envelope),
                "verifiers": [base64.b64encode(verifier_pem).decode()],
            }
        },
    }


def test_dsse_body_matches_the_real_logs_but_for_the_envelope_bytes() -> None:
    """The real cosign v3 entry, re-proposed: payload hash and signatures match Rekor's body; the envelope
    hash is over the exact JSON text the client sent, which the bundle does not keep."""
    from pipeline.rehearsal.log_server import canonical_body

    bundle = json.loads(V3_BUNDLE.read_text())
    real = json.loads(base64.b64decode(bundle["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"]))
    certificate = base64.b64decode(bundle["verificationMaterial"]["certificate"]["rawBytes"])
    from cryptography import x509

    pem = x509.load_der_x509_certificate(certificate).public_bytes(serialization.Encoding.PEM)
    proposed = dsse_proposal(bundle["dsseEnvelope"], pem)
    ours = json.loads(canonical_body(proposed))
    assert ours["spec"]["payloadHash"] == real["spec"]["payloadHash"]
    assert ours["spec"]["signatures"] == real["spec"]["signatures"]
    assert set(ours) == set(real) and set(ours["spec"]) == set(real["spec"])
    text = proposed["spec"]["proposedContent"]["envelope"]  # type: ignore[index]
    assert ours["spec"]["envelopeHash"]["value"] == hashlib.sha256(text.encode()).hexdigest()


def test_dsse_entries_are_logged_and_bad_ones_refused(log: LogServer, signer: SigningKey) -> None:
    from pipeline.sigstore.dsse import dsse_pae

    payload = b'{"_type":"https://in-toto.io/Statement/v1"}'
    signature = signer.sign(dsse_pae("application/vnd.in-toto+json", payload))
    envelope = {
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"sig": base64.b64encode(signature).decode()}],
    }
    created = post(log, dsse_proposal(envelope, signer.public_key_pem()))
    assert created.status_code == 201, created.text
    [(_, entry)] = created.json().items()
    body = json.loads(base64.b64decode(entry["body"]))
    assert body["kind"] == "dsse" and body["spec"]["payloadHash"]["value"] == hashlib.sha256(payload).hexdigest()
    bundle = as_bundle(entry)
    message = json.dumps(
        {"body": bundle.body_b64, "integratedTime": bundle.integrated_time, "logID": bundle.log_id,
         "logIndex": bundle.log_index}, sort_keys=True, separators=(",", ":"),
    ).encode()  # fmt: skip
    log.public_key.verify(bundle.signed_entry_timestamp, message, ec.ECDSA(hashes.SHA256()))
    assert post(log, dsse_proposal(envelope, signer.public_key_pem())).status_code == 409

    other = SigningKey(ec.generate_private_key(ec.SECP256R1()), "other")
    refused = post(log, dsse_proposal(envelope, other.public_key_pem()))
    assert refused.status_code == 400 and "verifies with none of the verifiers" in refused.json()["message"]
    empty = post(log, dsse_proposal({**envelope, "signatures": []}, signer.public_key_pem()))
    assert empty.status_code == 400 and "1 or more signatures" in empty.json()["message"]


SIGSTORE_JS_CHECKPOINT = Path("/usr/lib/node_modules/npm/node_modules/@sigstore/verify/dist/tlog/checkpoint.js")
"""sigstore-js's checkpoint check, as npm itself ships it (npm verifies package provenance with it)."""

_NODE_VERIFY_CHECKPOINT = """
const { verifyCheckpoint } = require(process.argv[1]);
const crypto = require('crypto');
const input = JSON.parse(require('fs').readFileSync(0, 'utf-8'));
const tlog = { logID: Buffer.from(input.logID, 'hex'), publicKey: crypto.createPublicKey(input.publicKey),
               baseURL: input.baseURL };
try {
  verifyCheckpoint({ inclusionProof: { checkpoint: { envelope: input.envelope } } }, [tlog]);
  console.log('ok');
} catch (e) { console.log(e.message); }
"""


def test_checkpoint_origin_is_the_host_of_the_logs_url(log: LogServer) -> None:
    """As Rekor's checkpoints (``rekor.sigstore.dev - <tree id>``, signed as ``— rekor.sigstore.dev …``)."""
    info = httpx.get(f"{log.url}/api/v1/log").json()
    host = urlsplit(log.url).netloc
    note, signatures = info["signedTreeHead"].split("\n\n")
    assert note.split("\n")[0] == f"{host} - {info['treeID']}"
    assert signatures.startswith(f"\u2014 {host} ")
    assert log.log.origin == host
    # Our own verifier still accepts it.
    size, root = info["treeSize"], bytes.fromhex(info["rootHash"])
    verify_checkpoint(info["signedTreeHead"], trusted_keys=[log.public_key], root_hash=root, tree_size=size, where="t")


def test_an_explicit_origin_is_kept() -> None:
    with LogServer(origin="log.example") as server:
        assert httpx.get(f"{server.url}/api/v1/log").json()["signedTreeHead"].startswith("log.example - ")


@pytest.mark.skipif(not (shutil.which("node") and SIGSTORE_JS_CHECKPOINT.is_file()), reason="needs node and npm")
def test_sigstore_js_accepts_the_checkpoint_only_for_the_logs_own_url(log: LogServer) -> None:
    envelope = httpx.get(f"{log.url}/api/v1/log").json()["signedTreeHead"]

    def sigstore_js(base_url: str) -> str:
        request = {"envelope": envelope, "logID": log.log_id, "baseURL": base_url,
                   "publicKey": log.public_key_pem().decode()}  # fmt: skip
        node = [shutil.which("node") or "node", "-e", _NODE_VERIFY_CHECKPOINT, str(SIGSTORE_JS_CHECKPOINT)]
        done = subprocess.run(node, input=json.dumps(request), capture_output=True, text=True, timeout=60, check=True)
        return done.stdout.strip()

    assert sigstore_js(log.url) == "ok"
    assert sigstore_js("https://rekor.example") == "invalid checkpoint signature"
