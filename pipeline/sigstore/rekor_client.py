"""A Rekor v1 client: upload a ``hashedrekord`` or ``dsse`` entry and bring back evidence that verifies.

``RekorClient(url, trusted_keys)`` posts to ``POST /api/v1/log/entries`` (rekor's ``openapi.yaml``:
201 → ``{entryID: LogEntry}``; 409 → the entry exists, its ``Location`` is fetched and reused), and
turns the answer into the legacy :class:`~pipeline.cosign.rekor.RekorBundle` cosign stores (body,
integratedTime, logIndex, logID, SignedEntryTimestamp). Before anything is returned it is checked
offline with the *trusted* log keys, never with a key the server hands out: the SET, that the body is
exactly the entry we proposed (digest, signature, signer), that the UUID is the body's leaf hash, and
the inclusion proof and signed checkpoint when the log sends them (it keeps them in :class:`LogEntry`).

Network behaviour: explicit timeouts; bounded retries with exponential backoff and jitter on
connection errors, timeouts, 408, 429 and 5xx, honouring ``Retry-After`` (a POST is safe to repeat:
a repeated entry is a 409 that is resolved by a GET). Every failure is one
:class:`~pipeline.errors.TransparencyLogError` (exit 5) naming the URL.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from pipeline import __version__, jsonbounded
from pipeline.cosign.keys import PublicKey, load_public_key, verify_signature
from pipeline.cosign.rekor import (
    HASHEDREKORD_API_VERSION,
    HASHEDREKORD_KIND,
    LogEntry,
    LogInclusionProof,
    RekorBundle,
    check_same_signer,
    merkle_leaf_hash,
    parse_rekor_bundle,
    signed_entry_timestamp_message,
    trusted_key_for_log,
    verify_checkpoint,
    verify_inclusion_proof,
)
from pipeline.cosign.timestamp import TimestampAuthority
from pipeline.errors import InvalidInputError, ReleaseVectorError, TransparencyLogError, VerificationError
from pipeline.http import (
    ClosingClient,
    Retryable,
    RetryPolicy,
    bare_url,
    check_service_url,
    describe_transport_error,
    exchange,
    is_loopback_host,
    json_service_client,
    parse_retry_after,
    request_sent,
    retry_delay,
    retrying,
)
from pipeline.sigstore.dsse import DSSE_API_VERSION, DSSE_KIND, DsseEnvelope, check_dsse_body
from pipeline.sigstore.intoto import check_intoto_body, intoto_proposal

DEFAULT_REKOR_URL: Final = "https://rekor.sigstore.dev"
OFFLINE_HINT: Final = (
    "offline? pass --no-tlog-upload (verifiers then need --insecure-ignore-tlog), or --rekor-url/--signing-config"
    " for your own log"
)
ENTRIES_PATH: Final = "/api/v1/log/entries"
PUBLIC_KEY_PATH: Final = "/api/v1/log/publicKey"
_RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
_MAX_ANSWER_BYTES: Final = 4 * 1024 * 1024
_DIGEST_HEX_SIZES: Final = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True)
class RekorOptions:
    """How to reach the log: timeouts (seconds), retries, an extra CA for a private log."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retries: RetryPolicy = field(default_factory=RetryPolicy)
    cacert: Path | None = None
    user_agent: str = f"release-vector/{__version__}"


def scrub_url(url: str | httpx.URL) -> str:
    """The URL without credentials or query, for messages."""
    return bare_url(url)


def check_log_url(url: str) -> httpx.URL:
    """A usable log base URL: https, or http only on a loopback host (the embedded log)."""
    return check_service_url(url, "Rekor", "a transparency log")


def _error_message(response: httpx.Response) -> str:
    """Rekor's ``{"code":…,"message":…}`` message, else a short text."""
    try:
        document = jsonbounded.loads(response.content, source=scrub_url(response.request.url), what="the log's answer")
    except (json.JSONDecodeError, UnicodeDecodeError, InvalidInputError):
        document = None
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        return " ".join(document["message"].split())[:300]
    return " ".join(response.text.split())[:200] if response.text else ""


def hashedrekord_proposal(
    payload_digest: str, signature: bytes, signer_pem: bytes, algorithm: str = "sha256"
) -> dict[str, object]:
    """The proposed entry: the digest, the signature and the key/certificate PEM, as cosign posts it."""
    return {
        "apiVersion": HASHEDREKORD_API_VERSION,
        "kind": HASHEDREKORD_KIND,
        "spec": {
            "data": {"hash": {"algorithm": algorithm, "value": payload_digest}},
            "signature": {
                "content": base64.b64encode(signature).decode("ascii"),
                "publicKey": {"content": base64.b64encode(signer_pem).decode("ascii")},
            },
        },
    }


def dsse_envelope_json(envelope: DsseEnvelope) -> str:
    """The envelope as sigstore-go sends it to Rekor (protojson field order, no empty keyid)."""
    return json.dumps(
        {
            "payload": base64.b64encode(envelope.payload).decode("ascii"),
            "payloadType": envelope.payload_type,
            "signatures": [
                {**({"keyid": s.keyid} if s.keyid else {}), "sig": base64.b64encode(s.sig).decode("ascii")}
                for s in envelope.signatures
            ],
        },
        separators=(",", ":"),
    )


def dsse_proposal(envelope: DsseEnvelope, signer_pem: bytes) -> dict[str, object]:
    """The proposed ``dsse`` 0.0.1 entry: the envelope JSON and the key/certificate PEM that verifies it."""
    return {
        "apiVersion": DSSE_API_VERSION,
        "kind": DSSE_KIND,
        "spec": {
            "proposedContent": {
                "envelope": dsse_envelope_json(envelope),
                "verifiers": [base64.b64encode(signer_pem).decode("ascii")],
            }
        },
    }


def _verify_entry_body(
    body: bytes, payload_digest: str, signature: bytes, signer_pem: bytes, where: str, algorithm: str = "sha256"
) -> None:
    """The log recorded exactly our entry: kind, digest, signature and signer."""
    try:
        entry: object = jsonbounded.loads(body, source=where, what="the entry body")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VerificationError("the entry body is not JSON", where=where) from None
    except InvalidInputError as error:
        raise VerificationError(error.message, where=where) from None
    spec = entry.get("spec") if isinstance(entry, dict) else None
    if not isinstance(entry, dict) or not isinstance(spec, dict):
        raise VerificationError("the entry body has no spec", where=where)
    if entry.get("kind") != HASHEDREKORD_KIND or entry.get("apiVersion") != HASHEDREKORD_API_VERSION:
        raise VerificationError(f"the log recorded a {entry.get('kind')} entry, not hashedrekord 0.0.1", where=where)
    data = spec.get("data")
    hash_ = data.get("hash") if isinstance(data, dict) else None
    value = hash_.get("value") if isinstance(hash_, dict) else None
    if not isinstance(hash_, dict) or hash_.get("algorithm") != algorithm or not isinstance(value, str):
        raise VerificationError(f"the entry body records no {algorithm} digest", where=where)
    if value.lower() != payload_digest.lower():
        raise VerificationError(f"the log recorded digest {algorithm}:{value}, not the one uploaded", where=where)
    signature_spec = spec.get("signature")
    content = signature_spec.get("content") if isinstance(signature_spec, dict) else None
    try:
        recorded = base64.b64decode(content, validate=True) if isinstance(content, str) else None
    except (binascii.Error, ValueError):
        recorded = None
    if recorded != signature:
        raise VerificationError("the log recorded a different signature than the one uploaded", where=where)
    public_key = signature_spec.get("publicKey") if isinstance(signature_spec, dict) else None
    check_same_signer(public_key.get("content") if isinstance(public_key, dict) else None, signer_pem, where)


def _hex_bytes(value: object, name: str, where: str) -> bytes:
    if not isinstance(value, str) or len(value) != _DIGEST_HEX_SIZES["sha256"]:
        raise InvalidInputError(f"the log's {name} is not a hex SHA-256", where=where)
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise InvalidInputError(f"the log's {name} is not hex", where=where) from None


def _int(value: object, name: str, where: str) -> int:
    if type(value) is not int or value < 0:
        raise InvalidInputError(f"the log's {name} is not a non-negative integer", where=where)
    return value


def parse_log_entry(answer: object, where: str) -> LogEntry:
    """Rekor's ``{entryID: LogEntry}`` answer (one entry) as a LogEntry; nothing is verified here."""
    if not isinstance(answer, dict) or len(answer) != 1:
        raise InvalidInputError("the log's answer is not one {entryID: LogEntry} object", where=where)
    ((entry_id, raw),) = answer.items()
    if not isinstance(raw, dict):
        raise InvalidInputError("the log entry is not a JSON object", where=where)
    verification = raw.get("verification")
    if not isinstance(verification, dict) or not verification.get("signedEntryTimestamp"):
        raise InvalidInputError("the log entry has no verification.signedEntryTimestamp", where=where)
    bundle = parse_rekor_bundle(
        {
            "SignedEntryTimestamp": verification.get("signedEntryTimestamp"),
            "Payload": {
                "body": raw.get("body"),
                "integratedTime": raw.get("integratedTime"),
                "logIndex": raw.get("logIndex"),
                "logID": raw.get("logID"),
            },
        },
        where,
    )
    proof = verification.get("inclusionProof")
    inclusion: LogInclusionProof | None = None
    if proof is not None:
        if not isinstance(proof, dict):
            raise InvalidInputError("the log entry's inclusionProof is not an object", where=where)
        hashes = proof.get("hashes")
        checkpoint = proof.get("checkpoint")
        if not isinstance(hashes, list) or not isinstance(checkpoint, str):
            raise InvalidInputError("the log entry's inclusionProof lacks hashes or checkpoint", where=where)
        inclusion = LogInclusionProof(
            log_index=_int(proof.get("logIndex"), "inclusionProof.logIndex", where),
            root_hash=_hex_bytes(proof.get("rootHash"), "inclusionProof.rootHash", where),
            tree_size=_int(proof.get("treeSize"), "inclusionProof.treeSize", where),
            hashes=tuple(_hex_bytes(h, "inclusionProof.hashes[]", where) for h in hashes),
            checkpoint=checkpoint,
        )
    return LogEntry(str(entry_id), bundle, inclusion)


def verify_log_entry(
    entry: LogEntry,
    *,
    trusted_keys: Sequence[PublicKey],
    payload_sha256: str,
    signature: bytes,
    signer_pem: bytes,
    where: str,
    algorithm: str = "sha256",
) -> None:
    """VerificationError unless the entry is ours and signed by a trusted log key (SET, proof, checkpoint).
    ``payload_sha256`` is the payload's digest by ``algorithm`` (sha256 unless the key signs with another)."""
    _verify_set(entry, trusted_keys, where)
    _verify_entry_body(entry.bundle.body, payload_sha256, signature, signer_pem, where, algorithm)
    _verify_evidence(entry, trusted_keys, where)


def verify_dsse_log_entry(
    entry: LogEntry,
    *,
    trusted_keys: Sequence[PublicKey],
    envelope: DsseEnvelope,
    signer_pem: bytes,
    where: str,
) -> None:
    """As :func:`verify_log_entry`, for a ``dsse`` 0.0.1 entry of ``envelope`` (payload, signature, signer)."""
    _verify_set(entry, trusted_keys, where)
    check_dsse_body(entry.bundle.body, envelope, signer_pem, where)
    _verify_evidence(entry, trusted_keys, where)


def _verify_set(entry: LogEntry, trusted_keys: Sequence[PublicKey], where: str) -> None:
    bundle = entry.bundle
    log_key = trusted_key_for_log(bundle.log_id, trusted_keys, where)
    try:
        verify_signature(log_key, signed_entry_timestamp_message(bundle), bundle.signed_entry_timestamp, where=where)
    except VerificationError:
        raise VerificationError(
            "the SignedEntryTimestamp does not verify with the trusted Rekor key", where=where
        ) from None


def _verify_evidence(entry: LogEntry, trusted_keys: Sequence[PublicKey], where: str) -> None:
    """The entry ID is the body's leaf hash; the inclusion proof and checkpoint, when sent, verify."""
    bundle = entry.bundle
    leaf = merkle_leaf_hash(bundle.body).hex()
    if not entry.entry_id.lower().endswith(leaf):
        raise VerificationError(f"the entry ID {entry.entry_id} is not the leaf hash of its body", where=where)
    proof = entry.inclusion_proof
    if proof is not None:
        verify_inclusion_proof(bundle.body, proof.log_index, proof.tree_size, proof.hashes, proof.root_hash, where)
        verify_checkpoint(
            proof.checkpoint,
            trusted_keys=trusted_keys,
            root_hash=proof.root_hash,
            tree_size=proof.tree_size,
            where=where,
        )


class RekorClient(ClosingClient):
    """Uploads to one Rekor v1 log and verifies its answers with ``trusted_keys``. A context manager."""

    def __init__(
        self,
        url: str,
        trusted_keys: Sequence[PublicKey],
        options: RekorOptions | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not trusted_keys:
            raise ValueError("a Rekor client needs at least one trusted log key")
        self._base = check_log_url(url)
        self.url = scrub_url(str(self._base)).rstrip("/")
        self._trusted = tuple(trusted_keys)
        self.options = options or RekorOptions()
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._http = json_service_client(
            service="Rekor", cacert=self.options.cacert, user_agent=self.options.user_agent,
            connect_timeout=self.options.connect_timeout, read_timeout=self.options.read_timeout, transport=transport,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"RekorClient(url={self.url!r}, trusted_keys={len(self._trusted)})"

    @property
    def trusted_keys(self) -> tuple[PublicKey, ...]:
        return self._trusted

    @property
    def timestamp_authorities(self) -> tuple[TimestampAuthority, ...]:
        return ()  # a v1 entry's integratedTime (under the SET) dates it

    # --- the TransparencyLog port (pipeline.sigstore.tlog) ---------------------------------------

    def upload(
        self, payload_sha256: str, signature: bytes, signer_pem: bytes, algorithm: str = "sha256"
    ) -> RekorBundle:
        return self.upload_hashedrekord(payload_sha256, signature, signer_pem, algorithm)

    def upload_hashedrekord(
        self, payload_sha256: str | bytes, signature: bytes, public_key_or_cert_pem: bytes, algorithm: str = "sha256"
    ) -> RekorBundle:
        """Log the signature (reusing an existing entry) and return cosign's bundle for it, verified."""
        return self.create_hashedrekord_entry(payload_sha256, signature, public_key_or_cert_pem, algorithm).bundle

    def create_hashedrekord_entry(
        self, payload_sha256: str | bytes, signature: bytes, public_key_or_cert_pem: bytes, algorithm: str = "sha256"
    ) -> LogEntry:
        """``payload_sha256``: the payload's digest by ``algorithm`` (sha256; sha384 or sha512 for keys that
        sign with those, as P-384, P-521 and Ed25519 keys do)."""
        size = _DIGEST_HEX_SIZES.get(algorithm)
        if size is None:
            raise ValueError(f"unsupported hashedrekord digest algorithm {algorithm!r}")
        digest_hex = payload_sha256.hex() if isinstance(payload_sha256, bytes) else payload_sha256.lower()
        if len(digest_hex) != size or any(c not in "0123456789abcdef" for c in digest_hex):
            raise ValueError(f"the payload digest must be a {algorithm} digest ({size} hex characters)")
        proposal = json.dumps(hashedrekord_proposal(digest_hex, signature, public_key_or_cert_pem, algorithm)).encode()

        def check(entry: LogEntry, url: str) -> None:
            verify_log_entry(
                entry,
                trusted_keys=self._trusted,
                payload_sha256=digest_hex,
                signature=signature,
                signer_pem=public_key_or_cert_pem,
                where=url,
                algorithm=algorithm,
            )

        return self._create_entry(proposal, check)

    def upload_dsse(self, envelope: DsseEnvelope, signer_pem: bytes) -> LogEntry:
        """Log a ``dsse`` 0.0.1 entry for ``envelope`` (reusing an existing one); the answer is verified."""
        return self.create_dsse_entry(envelope, signer_pem)

    def create_dsse_entry(self, envelope: DsseEnvelope, public_key_or_cert_pem: bytes) -> LogEntry:
        proposal = json.dumps(dsse_proposal(envelope, public_key_or_cert_pem)).encode()

        def check(entry: LogEntry, url: str) -> None:
            verify_dsse_log_entry(
                entry, trusted_keys=self._trusted, envelope=envelope, signer_pem=public_key_or_cert_pem, where=url
            )

        return self._create_entry(proposal, check)

    def upload_intoto(self, envelope: DsseEnvelope, envelope_json: bytes, signer_pem: bytes) -> RekorBundle:
        """Log an ``intoto`` 0.0.2 entry (reusing an existing one); the answer is verified: SET, proof,
        and a body that records this payload, signature and signer."""
        proposal = json.dumps(intoto_proposal(envelope, envelope_json, signer_pem)).encode()

        def check(entry: LogEntry, url: str) -> None:
            _verify_set(entry, self._trusted, url)
            check_intoto_body(entry.bundle.body, envelope, signer_pem, url)
            _verify_evidence(entry, self._trusted, url)

        return self._create_entry(proposal, check).bundle

    def _create_entry(self, proposal: bytes, check: Callable[[LogEntry, str], None]) -> LogEntry:
        """POST the proposed entry (a 409 fetches the existing one) and verify the answer with ``check``."""
        url = f"{self.url}{ENTRIES_PATH}"
        response = self._send("POST", url, content=proposal)
        if response.status_code == 409:
            location = response.headers.get("Location")
            if not location:
                raise TransparencyLogError(
                    "the log says the entry exists (409) but gives no Location for it", where=url
                )
            entry_url = str(self._base.join(location))
            if httpx.URL(entry_url).host != self._base.host:
                raise TransparencyLogError("the log's Location points at another host", where=scrub_url(entry_url))
            response = self._send("GET", entry_url)
            url = scrub_url(entry_url)
            if response.status_code != 200:
                raise self._failure(response, "fetching the existing entry failed", url)
        elif response.status_code != 201:
            raise self._failure(response, "the transparency log refused the entry", url)
        entry = self._parse(response, url)
        try:
            check(entry, url)
        except ReleaseVectorError as error:
            raise TransparencyLogError(
                f"the transparency log's answer does not verify: {error.message}",
                where=url,
                hint="is the trusted Rekor key (--rekor-public-key) the key of this log?",
            ) from None
        return entry

    # --- HTTP ----------------------------------------------------------------------------------

    def _parse(self, response: httpx.Response, where: str) -> LogEntry:
        try:
            return parse_log_entry(jsonbounded.loads(response.content, source=where, what="the log's answer"), where)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise TransparencyLogError("the log's answer is not JSON", where=where) from None
        except InvalidInputError as error:
            raise TransparencyLogError(f"the log's answer is malformed: {error.message}", where=where) from None

    def _failure(self, response: httpx.Response, what: str, where: str) -> TransparencyLogError:
        message = _error_message(response)
        return TransparencyLogError(
            f"{what}: HTTP {response.status_code}" + (f": {message}" if message else ""), where=where
        )

    def _send(self, method: str, url: str, *, content: bytes | None = None) -> httpx.Response:
        headers = {"Content-Type": "application/json"} if content is not None else None

        def attempt() -> httpx.Response:
            try:
                response = exchange(
                    self._http,
                    self._http.build_request(method, url, content=content, headers=headers),
                    _MAX_ANSWER_BYTES,
                    fail=lambda message: TransparencyLogError(message, where=scrub_url(url)),
                    what="the log's answer",
                    service="the transparency log",
                )
            except httpx.TransportError as exc:
                raise Retryable(describe_transport_error(exc, "the transparency log"), sent=request_sent(exc)) from None
            if response.status_code not in _RETRY_STATUSES:
                return response
            message = _error_message(response)
            raise Retryable(
                f"the transparency log answered {response.status_code}" + (f": {message}" if message else ""),
                parse_retry_after(response.headers.get("Retry-After")),
            )

        offline = OFFLINE_HINT if self.url.rstrip("/") == DEFAULT_REKOR_URL else None
        return retrying(
            attempt,
            self.options.retries,
            who="the log",
            fail=lambda message: TransparencyLogError(message, where=scrub_url(url), hint=offline),
            sleep=self._sleep,
            delay=self._delay,
        )

    def _delay(self, number: int, retry_after: float | None) -> float:
        return retry_delay(self.options.retries, number, retry_after, self._rng)


def fetch_log_public_keys(url: str, options: RekorOptions | None = None) -> list[PublicKey]:
    """``GET /api/v1/log/publicKey`` of a log on this machine (loopback only: trusting a key fetched
    from a remote log would let that log vouch for itself)."""
    base = check_log_url(url)
    if not is_loopback_host(base.host):
        raise InvalidInputError(
            "the key of a remote transparency log is not fetched from the log itself",
            where=scrub_url(url),
            hint="give the log's public key with --rekor-public-key",
        )
    target = f"{scrub_url(url).rstrip('/')}{PUBLIC_KEY_PATH}"
    opts = options or RekorOptions()
    policy = opts.retries
    last = ""
    with httpx.Client(timeout=opts.connect_timeout, trust_env=False, follow_redirects=False) as http:
        for number in range(policy.attempts):
            try:
                response = exchange(
                    http,
                    http.build_request("GET", target),
                    _MAX_ANSWER_BYTES,
                    fail=lambda message: TransparencyLogError(message, where=target),
                    what="the log's public key",
                    service="the transparency log",
                )
            except httpx.TransportError as exc:
                last = describe_transport_error(exc, "the transparency log")
            else:
                if response.status_code == 200:
                    try:
                        return [load_public_key(response.content, target)]
                    except ReleaseVectorError as error:
                        raise TransparencyLogError(
                            f"the log's public key is unreadable: {error.message}", where=target
                        ) from None
                last = f"the transparency log answered {response.status_code}"
                if response.status_code not in _RETRY_STATUSES:
                    break
            if number < policy.attempts - 1:
                time.sleep(retry_delay(policy, number, None))
    raise TransparencyLogError(f"cannot read the log's public key: {last}", where=target)
