"""The Rekor client against the embedded log server: upload, 409 reuse, answers checked with the trusted
key (and refused when they do not verify), retries on 5xx/429 honouring Retry-After, one-line errors."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.cosign.keys import SigningKey
from pipeline.cosign.rekor import verify_rekor_bundle
from pipeline.errors import ExitCode, InvalidInputError, TransparencyLogError
from pipeline.oci.client import RetryPolicy
from pipeline.rehearsal.log_server import LogServer
from pipeline.sigstore.rekor_client import (
    DEFAULT_REKOR_URL,
    RekorClient,
    RekorOptions,
    check_log_url,
    fetch_log_public_keys,
)


@pytest.fixture(scope="module")
def log() -> Iterator[LogServer]:
    with LogServer() as server:
        yield server


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), "test key")


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(url: str, keys: list[object], sleeps: Sleeps | None = None, **kwargs: object) -> RekorClient:
    return RekorClient(url, keys, sleep=sleeps if sleeps is not None else Sleeps(), **kwargs)  # type: ignore[arg-type]


def signed(signer: SigningKey, payload: bytes) -> tuple[str, bytes, bytes]:
    return hashlib.sha256(payload).hexdigest(), signer.sign(payload), signer.public_key_pem()


def test_upload_returns_a_verified_bundle_with_its_proof(log: LogServer, signer: SigningKey) -> None:
    payload = b"release vector v1"
    digest, signature, pem = signed(signer, payload)
    with client(log.url, [log.public_key]) as rekor:
        entry = rekor.create_hashedrekord_entry(digest, signature, pem)
        bundle = rekor.upload_hashedrekord(bytes.fromhex(digest), signature, pem)  # bytes digest: same entry
    assert bundle == entry.bundle
    verify_rekor_bundle(bundle, trusted_keys=[log.public_key], payload=payload, signature=signature,
                        signer_pem=pem, where="t")  # fmt: skip
    assert entry.inclusion_proof is not None and entry.inclusion_proof.tree_size >= 1
    assert entry.entry_id.endswith(hashlib.sha256(b"\x00" + bundle.body).hexdigest())


def test_existing_entry_is_fetched_and_reused(log: LogServer, signer: SigningKey) -> None:
    digest, signature, pem = signed(signer, b"logged once")
    with client(log.url, [log.public_key]) as rekor:
        first = rekor.upload(digest, signature, pem)
        size = len(log.log)
        before = len(log.requests)
        again = rekor.upload(digest, signature, pem)
    assert again == first and len(log.log) == size
    assert [(m, s) for m, _, s in log.requests[before:]] == [("POST", 409), ("GET", 200)]


def test_an_answer_that_does_not_verify_with_the_trusted_key_is_refused(log: LogServer, signer: SigningKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    digest, signature, pem = signed(signer, b"wrong log key")
    with client(log.url, [other]) as rekor, pytest.raises(TransparencyLogError) as caught:
        rekor.upload(digest, signature, pem)
    error = caught.value
    assert error.exit_code == ExitCode.REGISTRY
    assert "does not verify" in error.message and "trusted Rekor keys" in error.message
    assert error.where == f"{log.url}/api/v1/log/entries" and "--rekor-public-key" in (error.hint or "")


def _tampering_transport(log: LogServer, change: object) -> httpx.MockTransport:
    """Forwards to the real log, then lets ``change`` alter the entry it answers."""
    upstream = httpx.Client()

    def handler(request: httpx.Request) -> httpx.Response:
        answer = upstream.request(request.method, str(request.url), content=request.content, headers=request.headers)
        if answer.status_code not in (200, 201):
            return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
        document = answer.json()
        [(entry_id, entry)] = document.items()
        change(entry)  # type: ignore[operator]
        return httpx.Response(answer.status_code, json={entry_id: entry})

    return httpx.MockTransport(handler)


def _swap_signature(entry: dict[str, object]) -> None:
    body = json.loads(base64.b64decode(entry["body"]))  # type: ignore[arg-type]
    body["spec"]["signature"]["content"] = base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()
    entry["body"] = base64.b64encode(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).decode()


def _forge_set(entry: dict[str, object]) -> None:
    verification = entry["verification"]
    assert isinstance(verification, dict)
    raw = bytearray(base64.b64decode(verification["signedEntryTimestamp"]))
    raw[-1] ^= 1
    verification["signedEntryTimestamp"] = base64.b64encode(bytes(raw)).decode()


def _shift_time(entry: dict[str, object]) -> None:
    entry["integratedTime"] = int(entry["integratedTime"]) + 1  # type: ignore[call-overload]


def _forge_proof(entry: dict[str, object]) -> None:
    proof = entry["verification"]["inclusionProof"]  # type: ignore[index]
    proof["rootHash"] = "00" * 32


def _no_set(entry: dict[str, object]) -> None:
    entry["verification"] = {}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_forge_set, "SignedEntryTimestamp does not verify"),
        (_shift_time, "SignedEntryTimestamp does not verify"),
        (_swap_signature, "SignedEntryTimestamp does not verify"),
        (_forge_proof, "inclusion proof does not lead to the tree's root"),
        (_no_set, "malformed: the log entry has no verification.signedEntryTimestamp"),
    ],
    ids=["forged-set", "shifted-time", "other-signature", "forged-proof", "no-set"],
)
def test_tampered_answers_are_refused(log: LogServer, signer: SigningKey, change: object, reason: str) -> None:
    digest, signature, pem = signed(signer, f"tampered {reason}".encode())
    transport = _tampering_transport(log, change)
    with client(log.url, [log.public_key], transport=transport) as rekor, pytest.raises(TransparencyLogError) as caught:
        rekor.upload(digest, signature, pem)
    assert reason in caught.value.message and "\n" not in str(caught.value)


def test_an_entry_for_another_signature_is_refused(log: LogServer, signer: SigningKey) -> None:
    """A log answering (with a valid SET) an entry that is not the one proposed: its own earlier entry."""
    digest, signature, pem = signed(signer, b"the decoy")
    with client(log.url, [log.public_key]) as rekor:
        decoy = rekor.create_hashedrekord_entry(digest, signature, pem)
    decoy_url = f"{log.url}/api/v1/log/entries/{decoy.entry_id}"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json=httpx.get(decoy_url).json())

    other_digest, other_signature, _ = signed(signer, b"what was asked")
    transport = httpx.MockTransport(handler)
    with (
        client(log.url, [log.public_key], transport=transport) as rekor,
        pytest.raises(TransparencyLogError, match="the log recorded digest"),
    ):
        rekor.upload(other_digest, other_signature, pem)


def test_5xx_and_429_are_retried_honouring_retry_after(log: LogServer, signer: SigningKey) -> None:
    digest, signature, pem = signed(signer, b"flaky log")
    sleeps = Sleeps()
    log.inject_failures(1, status=503)
    log.inject_failures(1, status=429, retry_after="2")
    with client(log.url, [log.public_key], sleeps) as rekor:
        bundle = rekor.upload(digest, signature, pem)
    assert bundle.log_index >= 0
    assert len(sleeps) == 2 and sleeps[1] >= 2.0


def test_retries_are_bounded_and_end_in_one_line(log: LogServer, signer: SigningKey) -> None:
    digest, signature, pem = signed(signer, b"down for good")
    sleeps = Sleeps()
    log.inject_failures(3, status=502)
    options = RekorOptions(retries=RetryPolicy(attempts=3, backoff=0.01))
    with (
        client(log.url, [log.public_key], sleeps, options=options) as rekor,
        pytest.raises(TransparencyLogError) as caught,
    ):
        rekor.upload(digest, signature, pem)
    assert (
        str(caught.value)
        == f"the transparency log answered 502: Bad Gateway (after 3 attempts) ({log.url}/api/v1/log/entries)"
    )
    assert len(sleeps) == 2


def test_a_long_retry_after_stops_at_once(log: LogServer, signer: SigningKey) -> None:
    digest, signature, pem = signed(signer, b"come back tomorrow")
    log.inject_failures(1, status=503, retry_after="86400")
    sleeps = Sleeps()
    with client(log.url, [log.public_key], sleeps) as rekor, pytest.raises(TransparencyLogError, match="86400 s"):
        rekor.upload(digest, signature, pem)
    assert sleeps == []


def test_refused_entry_carries_the_logs_message(log: LogServer, signer: SigningKey) -> None:
    digest, _, pem = signed(signer, b"signed")
    bad_signature = signer.sign(b"something else")
    with client(log.url, [log.public_key]) as rekor, pytest.raises(TransparencyLogError) as caught:
        rekor.upload(digest, bad_signature, pem)
    assert "refused the entry: HTTP 400: verifying signature" in caught.value.message


def test_unreachable_log_is_a_one_line_network_error(signer: SigningKey) -> None:
    digest, signature, pem = signed(signer, b"nobody listening")
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    sleeps = Sleeps()
    with client("http://127.0.0.1:9", [key], sleeps) as rekor, pytest.raises(TransparencyLogError) as caught:
        rekor.upload(digest, signature, pem)
    assert str(caught.value) == (
        "cannot connect to the transparency log (after 4 attempts) (http://127.0.0.1:9/api/v1/log/entries)"
    )
    assert len(sleeps) == 3


def test_url_rules() -> None:
    assert str(check_log_url(DEFAULT_REKOR_URL)) == DEFAULT_REKOR_URL
    check_log_url("http://127.0.0.1:8080")
    check_log_url("http://localhost:1")
    with pytest.raises(InvalidInputError, match="plain HTTP"):
        check_log_url("http://rekor.example.com")
    with pytest.raises(InvalidInputError, match="http"):
        check_log_url("ftp://rekor.example.com")


def test_public_key_is_fetched_only_from_a_log_on_this_machine(log: LogServer) -> None:
    [key] = fetch_log_public_keys(log.url)
    assert key.public_numbers() == log.public_key.public_numbers()
    with pytest.raises(InvalidInputError, match="not fetched from the log itself"):
        fetch_log_public_keys("https://rekor.example.com")


def test_repr_and_credentials_are_scrubbed(log: LogServer) -> None:
    url = log.url.replace("http://", "http://user:secret@")
    with client(url, [log.public_key]) as rekor:
        assert "secret" not in repr(rekor) and "secret" not in rekor.url


# --- dsse entries (cosign v3 bundles) -----------------------------------------------------------


def test_upload_dsse_is_verified_reused_on_409_and_checked_against_the_trusted_key(
    log: LogServer, signer: SigningKey
) -> None:
    from pipeline.sigstore.dsse import check_dsse_body
    from pipeline.sigstore.rekor_client import dsse_proposal
    from pipeline.sigstore.writer import cosign_sign_statement, sign_dsse

    envelope = sign_dsse(signer, cosign_sign_statement("ab" * 32))
    pem = signer.public_key_pem()
    proposal = dsse_proposal(envelope, pem)
    assert proposal["kind"] == "dsse" and proposal["apiVersion"] == "0.0.1"
    with client(log.url, [log.public_key]) as rekor:
        first = rekor.upload_dsse(envelope, pem)
        again = rekor.upload_dsse(envelope, pem)  # the log answers 409: the entry is fetched and reused
    assert again.entry_id == first.entry_id and again.bundle.log_index == first.bundle.log_index
    assert first.inclusion_proof is not None
    check_dsse_body(first.bundle.body, envelope, pem, "test")
    assert ("POST", "/api/v1/log/entries", 409) in log.requests
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with client(log.url, [other]) as rekor, pytest.raises(TransparencyLogError, match="does not verify"):
        rekor.upload_dsse(envelope, pem)


def test_the_public_log_unreachable_hints_at_working_offline(signer: SigningKey) -> None:
    digest, signature, pem = signed(signer, b"offline")
    key = ec.generate_private_key(ec.SECP256R1()).public_key()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with client(DEFAULT_REKOR_URL, [key], transport=httpx.MockTransport(refuse)) as rekor, pytest.raises(
        TransparencyLogError
    ) as caught:
        rekor.upload(digest, signature, pem)
    assert caught.value.hint is not None and "--no-tlog-upload" in caught.value.hint
    assert "--insecure-ignore-tlog" in caught.value.hint and "--rekor-url" in caught.value.hint
    with client("http://127.0.0.1:9", [key]) as own, pytest.raises(TransparencyLogError) as other:
        own.upload(digest, signature, pem)
    assert other.value.hint is None  # your own log: no advice about the public one
