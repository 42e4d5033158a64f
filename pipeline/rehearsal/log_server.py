"""An embedded transparency log speaking Rekor v1's HTTP API (rehearsals and tests).

A real HTTP server (the stand-ins' shared one, :mod:`pipeline.rehearsal.standin_http`: 127.0.0.1,
``TCP_NODELAY``, backlog 128) over a real RFC 6962 Merkle tree, with Rekor's paths, status codes and
JSON shapes (rekor's ``openapi.yaml``):

==========================================  ==================================================================
``POST /api/v1/log/entries``                a ``hashedrekord`` 0.0.1 proposed entry (the signature must verify
                                            with the given key or certificate over the given digest, as Rekor
                                            checks it: prehashed) or a ``dsse`` 0.0.1 one (every envelope
                                            signature must verify over the DSSE PAE with a verifier).
                                            201 ``{entryID: LogEntry}`` with ``ETag`` and ``Location``;
                                            an entry already in the log is 409 with ``Location``.
``GET /api/v1/log/entries/{uuid}``          the entry (64-hex leaf hash or 80-hex entry ID), with a fresh proof
``GET /api/v1/log/entries?logIndex=N``      the entry at an index
``POST /api/v1/log/entries/retrieve``       ``{entryUUIDs|logIndexes|entries}`` → a list of ``{entryID: LogEntry}``
``GET /api/v1/log``                         ``LogInfo``: rootHash, treeSize, signedTreeHead, treeID
``GET /api/v1/log/publicKey``               the log's public key (PEM)
==========================================  ==================================================================

A ``LogEntry`` is ``{body, integratedTime, logID, logIndex, verification{inclusionProof{checkpoint, hashes,
logIndex, rootHash, treeSize}, signedEntryTimestamp}}``: the body is base64 of the canonical entry (keys
sorted, compact: Rekor's RFC 8785 form), the SET is ECDSA-P256/SHA-256 over the canonical JSON of
``{body, integratedTime, logID, logIndex}``, and the checkpoint is a signed note by the same key, exactly
what :mod:`pipeline.cosign.rekor` and :mod:`pipeline.sigstore.verify` check for the real log. As Rekor's
(``rekor.sigstore.dev - <tree id>``), the checkpoint's origin and signer name are the host of the log's
URL (``127.0.0.1:PORT``): sigstore-js refuses a checkpoint whose signer name does not match the log's URL.

The log lives in memory. Usage::

    with LogServer() as log:            # a fresh P-256 key unless one is given
        log.url                         # http://127.0.0.1:PORT
        log.public_key_pem()            # what clients must trust (``--rekor-public-key``)

``inject_failures`` makes the next requests fail (503/429, optionally with ``Retry-After``) to exercise
client retries in tests and rehearsal fault drills.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from pipeline.cosign import ed25519ph
from pipeline.cosign.keys import PublicKey, signature_verifies
from pipeline.cosign.rekor import (
    CHECKPOINT_SIGNATURE_PREFIX,
    HASHEDREKORD_API_VERSION,
    HASHEDREKORD_KIND,
    checkpoint_key_hint,
    log_id_of,
    merkle_leaf_hash,
)
from pipeline.rehearsal.standin_http import LISTEN_BACKLOG as LISTEN_BACKLOG  # re-exported (shared)
from pipeline.rehearsal.standin_http import MAX_REQUEST_BYTES as MAX_REQUEST_BYTES
from pipeline.rehearsal.standin_http import Request, Response, StandinHTTPServer, StandinServer, json_response
from pipeline.sigstore.dsse import DsseEnvelope, DsseSignature, dsse_pae
from pipeline.sigstore.intoto import INTOTO_API_VERSION, INTOTO_KIND, canonical_intoto

ENTRIES_PATH: Final = "/api/v1/log/entries"
RETRIEVE_PATH: Final = "/api/v1/log/entries/retrieve"
LOG_INFO_PATH: Final = "/api/v1/log"
PUBLIC_KEY_PATH: Final = "/api/v1/log/publicKey"
DEFAULT_ORIGIN: Final = "release-vector.local"
DSSE_KIND: Final = "dsse"
DSSE_API_VERSION: Final = "0.0.1"
_HASH_ALGORITHMS: Final[dict[str, tuple[Callable[[], hashes.HashAlgorithm], int]]] = {
    "sha256": (hashes.SHA256, 32),
    "sha384": (hashes.SHA384, 48),
    "sha512": (hashes.SHA512, 64),
}


class BadEntry(ValueError):
    """A proposed entry Rekor would refuse with 400 (the message goes into the error JSON)."""


def canonical_json(value: object) -> bytes:
    """Rekor's canonical form for our values (strings of base64/hex/ASCII, integers): keys sorted, compact."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


# --- the Merkle tree (RFC 6962) -----------------------------------------------------------------


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (RFC 6962's k), for size > 1."""
    return 1 << ((size - 1).bit_length() - 1)


class MerkleTree:
    """An append-only RFC 6962 tree of leaf hashes. Not thread-safe: the log holds the lock.

    Complete, aligned subtrees never change once their leaves exist, so their hashes are cached: a
    root or an audit path costs O(log n) hash look-ups after the first computation.
    """

    def __init__(self) -> None:
        self._leaves: list[bytes] = []
        self._complete: dict[tuple[int, int], bytes] = {}

    def __len__(self) -> int:
        return len(self._leaves)

    def append(self, leaf_hash: bytes) -> int:
        self._leaves.append(leaf_hash)
        return len(self._leaves) - 1

    def _hash(self, start: int, size: int) -> bytes:
        if size == 1:
            return self._leaves[start]
        complete = size & (size - 1) == 0
        if complete and (start, size) in self._complete:
            return self._complete[(start, size)]
        k = _split(size)
        value = _node_hash(self._hash(start, k), self._hash(start + k, size - k))
        if complete:
            self._complete[(start, size)] = value
        return value

    def root(self, size: int | None = None) -> bytes:
        size = len(self._leaves) if size is None else size
        if not 0 <= size <= len(self._leaves):
            raise ValueError(f"tree size {size} is beyond the log's {len(self._leaves)} leaves")
        return self._hash(0, size) if size else hashlib.sha256(b"").digest()

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 PATH(index, D[0:size]): the audit path, leaf to root."""
        size = len(self._leaves) if size is None else size
        if not 0 <= index < size <= len(self._leaves):
            raise ValueError(f"leaf {index} is not in a tree of size {size}")
        path: list[bytes] = []
        start = 0
        while size > 1:
            k = _split(size)
            if index < k:
                path.append(self._hash(start + k, size - k))
                size = k
            else:
                path.append(self._hash(start, k))
                start, index, size = start + k, index - k, size - k
        path.reverse()
        return path


# --- entries --------------------------------------------------------------------------------------


def b64_field(value: object, name: str) -> bytes:
    """A request's base64 field, decoded (BadEntry naming it when missing or not base64)."""
    if not isinstance(value, str) or not value:
        raise BadEntry(f"{name} is missing or not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadEntry(f"{name} is not valid base64") from None


def object_field(value: object, name: str) -> Mapping[str, Any]:
    """A request's object field (BadEntry naming it when missing or not an object)."""
    if not isinstance(value, Mapping):
        raise BadEntry(f"{name} is missing or not an object")
    return value


def _verifier(pem: bytes, name: str = "spec.signature.publicKey.content") -> tuple[PublicKey, bytes]:
    """The key of a PUBLIC KEY or CERTIFICATE PEM (Rekor's x509 public key type) and its canonical PEM."""
    try:
        if b"-----BEGIN CERTIFICATE-----" in pem:
            certificate = x509.load_pem_x509_certificate(pem)
            key: object = certificate.public_key()
            canonical = certificate.public_bytes(serialization.Encoding.PEM)
        else:
            loaded = serialization.load_pem_public_key(pem)
            key = loaded
            canonical = loaded.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BadEntry(f"{name} is not a PEM public key or certificate") from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise BadEntry(f"unsupported public key type {type(key).__name__}")
    return key, canonical


def _verifier_key(pem: bytes) -> PublicKey:
    return _verifier(pem)[0]


def _verifies(key: PublicKey, signature: bytes, message: bytes) -> bool:
    """A DSSE signature over the PAE (pure Ed25519 for Ed25519 keys)."""
    return signature_verifies(key, message, signature, pure_ed25519=True)


def canonical_dsse(proposed: Mapping[str, Any]) -> bytes:
    """Validate a proposed ``dsse`` 0.0.1 entry (``spec.proposedContent{envelope, verifiers}``) as Rekor does
    and return its canonical body: envelope and payload hashes, and each signature with its verifier.

    Every signature of the envelope must verify (over the DSSE PAE) with one of the verifiers.
    """
    if proposed.get("apiVersion") != DSSE_API_VERSION:
        raise BadEntry(f"dsse apiVersion {proposed.get('apiVersion')!r} is not supported (only 0.0.1)")
    content = object_field(object_field(proposed.get("spec"), "spec").get("proposedContent"), "spec.proposedContent")
    envelope_text = content.get("envelope")
    if not isinstance(envelope_text, str):
        raise BadEntry("spec.proposedContent.envelope is missing or not a string")
    try:
        envelope = object_field(json.loads(envelope_text), "the DSSE envelope")
    except json.JSONDecodeError:
        raise BadEntry("the DSSE envelope is not JSON") from None
    payload_type = envelope.get("payloadType")
    if not isinstance(payload_type, str):
        raise BadEntry("the DSSE envelope has no payloadType")
    payload = b64_field(envelope.get("payload"), "the DSSE envelope's payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise BadEntry("DSSE envelope must contain 1 or more signatures")
    verifiers_raw = content.get("verifiers")
    if not isinstance(verifiers_raw, list) or not verifiers_raw:
        raise BadEntry("spec.proposedContent.verifiers must list 1 or more public keys")
    verifiers = [_verifier(b64_field(v, "a verifier"), "a verifier") for v in verifiers_raw]
    message = dsse_pae(payload_type, payload)
    recorded: dict[str, bytes] = {}
    for item in signatures:
        sig_text = object_field(item, "a DSSE signature").get("sig")
        signature = b64_field(sig_text, "a DSSE signature")
        assert isinstance(sig_text, str)
        match = next((canonical for key, canonical in verifiers if _verifies(key, signature, message)), None)
        if match is None:
            raise BadEntry("could not verify envelope: a signature verifies with none of the verifiers")
        recorded[sig_text] = match
    return canonical_json(
        {
            "apiVersion": DSSE_API_VERSION,
            "kind": DSSE_KIND,
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(envelope_text.encode()).hexdigest()},
                "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
                "signatures": [
                    {"signature": sig, "verifier": base64.b64encode(recorded[sig]).decode("ascii")}
                    for sig in sorted(recorded)
                ],
            },
        }
    )


def canonical_body(proposed: Mapping[str, Any]) -> bytes:
    """The canonical body of a proposed entry of a kind this log accepts (BadEntry otherwise)."""
    kind = proposed.get("kind")
    if kind == HASHEDREKORD_KIND:
        return canonical_hashedrekord(proposed)
    if kind == DSSE_KIND:
        return canonical_dsse(proposed)
    if kind == INTOTO_KIND:
        return canonical_intoto_entry(proposed)
    raise BadEntry(f"entry kind {kind!r} is not supported by this log (only hashedrekord, dsse and intoto)")


def canonical_intoto_entry(proposed: Mapping[str, Any]) -> bytes:
    """Validate a proposed ``intoto`` 0.0.2 entry as Rekor does (the envelope's payload and signatures are
    base64 of base64 text; each signature must verify over the PAE with its own public key) and return
    its canonical body."""
    if proposed.get("apiVersion") != INTOTO_API_VERSION:
        raise BadEntry(f"intoto apiVersion {proposed.get('apiVersion')!r} is not supported (only 0.0.2)")
    content = object_field(object_field(proposed.get("spec"), "spec").get("content"), "spec.content")
    sent = object_field(content.get("envelope"), "spec.content.envelope")
    hash_ = object_field(content.get("hash"), "spec.content.hash")
    if hash_.get("algorithm") != "sha256" or not isinstance(hash_.get("value"), str):
        raise BadEntry("spec.content.hash must be a sha256 value")
    payload_type = sent.get("payloadType")
    if not isinstance(payload_type, str):
        raise BadEntry("missing payload type in intoto v0.0.2 entry")
    encoded = b64_field(sent.get("payload"), "the envelope payload").decode("ascii", "replace")
    payload = b64_field(encoded, "the payload")
    signatures = sent.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise BadEntry("missing signatures")
    parsed: list[DsseSignature] = []
    for item in signatures:
        entry = object_field(item, "a signature")
        signature = b64_field(b64_field(entry.get("sig"), "a sig").decode("ascii", "replace"), "a sig")
        key, _canonical = _verifier(b64_field(entry.get("publicKey"), "a publicKey"), "a publicKey")
        if not _verifies(key, signature, dsse_pae(payload_type, payload)):
            raise BadEntry("could not verify envelope: a signature does not verify with its public key")
        parsed.append(DsseSignature(signature, ""))
    return canonical_intoto(proposed, DsseEnvelope(payload, payload_type, tuple(parsed)))


def canonical_hashedrekord(proposed: Mapping[str, Any]) -> bytes:
    """Validate a proposed ``hashedrekord`` 0.0.1 entry as Rekor does and return its canonical body.

    The signature must verify with the key (or certificate) over the digest: ECDSA or RSA PKCS#1 v1.5
    of the *prehashed* value, since only the digest reaches the log.
    """
    if proposed.get("apiVersion") != HASHEDREKORD_API_VERSION:
        raise BadEntry(f"hashedrekord apiVersion {proposed.get('apiVersion')!r} is not supported (only 0.0.1)")
    spec = object_field(proposed.get("spec"), "spec")
    signature_spec = object_field(spec.get("signature"), "spec.signature")
    signature = b64_field(signature_spec.get("content"), "spec.signature.content")
    public_key_spec = object_field(signature_spec.get("publicKey"), "spec.signature.publicKey")
    pem = b64_field(public_key_spec.get("content"), "spec.signature.publicKey.content")
    hash_spec = object_field(object_field(spec.get("data"), "spec.data").get("hash"), "spec.data.hash")
    algorithm, value = hash_spec.get("algorithm"), hash_spec.get("value")
    if algorithm not in _HASH_ALGORITHMS:
        raise BadEntry(f"spec.data.hash.algorithm {algorithm!r} is not one of sha256, sha384, sha512")
    assert isinstance(algorithm, str)
    hash_factory, size = _HASH_ALGORITHMS[algorithm]
    if not isinstance(value, str) or len(value) != 2 * size:
        raise BadEntry("invalid value for hash")
    try:
        digest = bytes.fromhex(value)
    except ValueError:
        raise BadEntry("invalid value for hash (not hex)") from None
    key = _verifier_key(pem)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):  # as Rekor: Ed25519ph over a SHA-512 digest only
            if algorithm != "sha512":
                raise BadEntry(f"ed25519 signatures need a sha512 digest, not {algorithm}")
            if not ed25519ph.verify_prehashed(key, signature, digest):
                raise InvalidSignature
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(Prehashed(hash_factory())))
        else:
            key.verify(signature, digest, padding.PKCS1v15(), Prehashed(hash_factory()))
    except InvalidSignature:
        raise BadEntry("verifying signature: invalid signature when validating ASN.1 encoded signature") from None
    return canonical_json(
        {
            "apiVersion": HASHEDREKORD_API_VERSION,
            "kind": HASHEDREKORD_KIND,
            "spec": {
                "data": {"hash": {"algorithm": algorithm, "value": value}},
                "signature": {
                    "content": base64.b64encode(signature).decode("ascii"),
                    "publicKey": {"content": base64.b64encode(pem).decode("ascii")},
                },
            },
        }
    )


@dataclass(frozen=True)
class StoredEntry:
    """One integrated entry: its leaf hash (Rekor's UUID), body, time, index and SET."""

    uuid: str
    body_b64: str
    integrated_time: int
    log_index: int
    signed_entry_timestamp: bytes


class TransparencyLogState:
    """The log itself (thread-safe): entries, the Merkle tree, and the key that signs SETs and checkpoints."""

    def __init__(
        self,
        signing_key: ec.EllipticCurvePrivateKey,
        *,
        origin: str = DEFAULT_ORIGIN,
        tree_id: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(signing_key.curve, ec.SECP256R1):
            raise ValueError("the log key must be ECDSA P-256 (as Rekor v1's)")
        self._key = signing_key
        self.public_key = signing_key.public_key()
        self.log_id = log_id_of(self.public_key)
        self.origin = origin
        self.tree_id = tree_id if tree_id is not None else int(self.log_id[:16], 16) & ((1 << 63) - 1)
        self._clock = clock
        self._lock = threading.Lock()
        self._tree = MerkleTree()
        self._entries: list[StoredEntry] = []
        self._by_uuid: dict[str, StoredEntry] = {}
        self._checkpoint_lock = threading.Lock()
        self._checkpoint: tuple[int, str] | None = None

    def set_origin(self, origin: str) -> None:
        """Sign checkpoints for ``origin`` from now on (the log server sets its URL's host once it has a port)."""
        with self._checkpoint_lock:
            self.origin = origin
            self._checkpoint = None

    def entry_id(self, entry: StoredEntry) -> str:
        """Rekor's entry ID: the 16-hex tree ID, then the 64-hex UUID."""
        return f"{self.tree_id:016x}{entry.uuid}"

    def _sign(self, message: bytes) -> bytes:
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))

    def add(self, canonical_body: bytes) -> tuple[StoredEntry, bool]:
        """Integrate a canonical body; (entry, True) if new, (the existing entry, False) if already there."""
        leaf = merkle_leaf_hash(canonical_body)
        uuid = leaf.hex()
        with self._lock:
            existing = self._by_uuid.get(uuid)
            if existing is not None:
                return existing, False
            index = len(self._entries)
            body_b64 = base64.b64encode(canonical_body).decode("ascii")
            integrated_time = int(self._clock())
            payload = {"body": body_b64, "integratedTime": integrated_time, "logID": self.log_id, "logIndex": index}
            entry = StoredEntry(uuid, body_b64, integrated_time, index, self._sign(canonical_json(payload)))
            self._tree.append(leaf)
            self._entries.append(entry)
            self._by_uuid[uuid] = entry
            return entry, True

    def find(self, uuid_or_entry_id: str) -> StoredEntry | None:
        key = uuid_or_entry_id.lower()
        if len(key) == 80:
            if key[:16] != f"{self.tree_id:016x}":
                return None
            key = key[16:]
        with self._lock:
            return self._by_uuid.get(key)

    def at(self, index: int) -> StoredEntry | None:
        with self._lock:
            return self._entries[index] if 0 <= index < len(self._entries) else None

    def checkpoint(self, size: int, root: bytes) -> str:
        """The signed note over (origin, size, root), as Rekor v1 signs its tree heads.

        The latest one is kept, so every answer for one tree size carries the same signed note.
        """
        with self._checkpoint_lock:
            if self._checkpoint is not None and self._checkpoint[0] == size:
                return self._checkpoint[1]
            note = f"{self.origin} - {self.tree_id}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"
            signature = checkpoint_key_hint(self.public_key) + self._sign(note.encode("utf-8"))
            text = f"{note}\n{CHECKPOINT_SIGNATURE_PREFIX}{self.origin} {base64.b64encode(signature).decode('ascii')}\n"
            if self._checkpoint is None or self._checkpoint[0] < size:
                self._checkpoint = (size, text)
            return text

    def log_info(self) -> dict[str, object]:
        with self._lock:
            size = len(self._tree)
            root = self._tree.root(size)
        return {
            "rootHash": root.hex(),
            "signedTreeHead": self.checkpoint(size, root),
            "treeID": str(self.tree_id),
            "treeSize": size,
        }

    def entry_json(self, entry: StoredEntry) -> dict[str, object]:
        """``{entryID: LogEntry}`` with an inclusion proof against the current tree."""
        with self._lock:
            size = len(self._tree)
            root = self._tree.root(size)
            path = self._tree.inclusion_proof(entry.log_index, size)
        return {
            self.entry_id(entry): {
                "body": entry.body_b64,
                "integratedTime": entry.integrated_time,
                "logID": self.log_id,
                "logIndex": entry.log_index,
                "verification": {
                    "inclusionProof": {
                        "checkpoint": self.checkpoint(size, root),
                        "hashes": [h.hex() for h in path],
                        "logIndex": entry.log_index,
                        "rootHash": root.hex(),
                        "treeSize": size,
                    },
                    "signedEntryTimestamp": base64.b64encode(entry.signed_entry_timestamp).decode("ascii"),
                },
            }
        }

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


# --- HTTP -----------------------------------------------------------------------------------------


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Rekor's error JSON: ``{"code": status, "message": …}``."""
    return json_response(status, {"code": status, "message": message}, headers)


def _json_body(request: Request) -> object:
    try:
        return json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadEntry("the request body is not JSON") from None


def origin_of(url: str) -> str:
    """The checkpoint origin of a log at ``url``: its host (with the port, if the URL names one).

    Rekor signs its checkpoints as ``rekor.sigstore.dev - <tree id>`` (``— rekor.sigstore.dev <sig>``),
    and sigstore-js accepts a checkpoint signature only when its name matches the log's URL."""
    return urlsplit(url).netloc


class LogServer(StandinServer):
    """The embedded log on 127.0.0.1: ``with LogServer() as log: ... log.url``. Thread-safe.

    Served by the stand-ins' shared HTTP server (:mod:`pipeline.rehearsal.standin_http`): request
    recording, injected failures and the body limit come from there."""

    thread_name = "release-vector-log"

    def __init__(
        self,
        signing_key: ec.EllipticCurvePrivateKey | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        origin: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = signing_key if signing_key is not None else ec.generate_private_key(ec.SECP256R1())
        super().__init__(host=host, port=port)
        self._fixed_origin = origin
        self.log = TransparencyLogState(key, origin=origin or DEFAULT_ORIGIN, clock=clock)

    def __repr__(self) -> str:  # the key never shows
        return f"LogServer(url={self.url if self._server else None!r}, entries={len(self.log)})"

    def _make_server(self, address: tuple[str, int]) -> StandinHTTPServer:
        server = super()._make_server(address)
        if self._fixed_origin is None:  # the port is known only now; set before the first request
            self.log.set_origin(origin_of(f"http://{self._host}:{server.server_address[1]}"))
        return server

    def _not_running(self) -> RuntimeError:
        return RuntimeError("the log server is not running")

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.log.public_key

    @property
    def log_id(self) -> str:
        return self.log.log_id

    def public_key_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def error_response(self, status: int, message: str) -> Response:
        return _error(status, message)

    # routes

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if request.method in ("GET", "HEAD"):
            return self._get(path, request)
        try:
            if path == ENTRIES_PATH:
                return self._create(_json_body(request))
            if path == RETRIEVE_PATH:
                return self._retrieve(_json_body(request))
        except BadEntry as problem:
            return _error(400, str(problem))
        return _error(404, f"path {path} was not found")

    def _get(self, path: str, request: Request) -> Response:
        log = self.log
        if path == LOG_INFO_PATH:
            return json_response(200, log.log_info())
        if path == PUBLIC_KEY_PATH:
            return Response(200, self.public_key_pem(), "application/x-pem-file")
        if path == ENTRIES_PATH:
            values = request.query.get("logIndex", ())
            if len(values) != 1 or not values[0].isdigit():
                return _error(400, "logIndex is required and must be a non-negative integer")
            entry = log.at(int(values[0]))
            if entry is None:
                return _error(404, f"no entry at logIndex {values[0]}")
            return json_response(200, log.entry_json(entry))
        if path.startswith(ENTRIES_PATH + "/"):
            uuid = path[len(ENTRIES_PATH) + 1 :]
            if len(uuid) not in (64, 80) or not all(c in "0123456789abcdefABCDEF" for c in uuid):
                return _error(400, "entryUUID must be 64 or 80 hexadecimal characters")
            entry = log.find(uuid)
            if entry is None:
                return _error(404, f"no entry with UUID {uuid}")
            return json_response(200, log.entry_json(entry))
        return _error(404, f"path {request.path} was not found")

    def _create(self, proposed: object) -> Response:
        log = self.log
        entry, created = log.add(canonical_body(object_field(proposed, "the proposed entry")))
        entry_id = log.entry_id(entry)
        location = f"{ENTRIES_PATH}/{entry_id}"
        if not created:
            message = f"an equivalent entry already exists in the transparency log with UUID {entry_id}"
            return _error(409, message, {"Location": location})
        return json_response(201, log.entry_json(entry), {"ETag": entry_id, "Location": location})

    def _retrieve(self, query: object) -> Response:
        query = object_field(query, "the search query")
        log = self.log
        found: list[StoredEntry | None] = []
        for uuid in query.get("entryUUIDs") or []:
            found.append(log.find(uuid) if isinstance(uuid, str) else None)
        for index in query.get("logIndexes") or []:
            found.append(log.at(index) if type(index) is int else None)
        for proposed in query.get("entries") or []:
            found.append(log.find(merkle_leaf_hash(canonical_body(object_field(proposed, "entries[]"))).hex()))
        return json_response(200, [log.entry_json(entry) for entry in found if entry is not None])
