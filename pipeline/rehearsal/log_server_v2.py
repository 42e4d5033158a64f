"""An embedded transparency log speaking Rekor v2's write API (rekor-tiles), for rehearsals and tests.

``POST /api/v2/log/entries`` takes rekor-tiles' ``CreateEntryRequest`` in protojson
(``api/proto/rekor/v2/entry.proto``) and checks it as Rekor v2 does before anything is logged:

* ``hashedRekordRequestV002`` ``{digest, signature{content, verifier}}``: the signature must verify over the
  digest (prehashed: ECDSA or RSA PKCS#1 v1.5) with the verifier's key or certificate;
* ``dsseRequestV002`` ``{envelope, verifiers[]}``: every envelope signature must verify over the DSSE PAE
  with one of the verifiers.

A verifier is ``{publicKey{rawBytes: DER SPKI} | x509Certificate{rawBytes: DER}, keyDetails}``. The entry
logged is the canonical JSON (keys sorted, compact) of ``{apiVersion: "0.0.2", kind, spec{hashedRekordV002 |
dsseV002}}`` — the body shape of the real staging bundle in ``tests/vectors/sigstore-rekor-v2/`` — and the
answer (201) is a ``TransparencyLogEntry``: ``logIndex``, ``logId.keyId`` (the C2SP key hash of the log key
under the checkpoint origin), ``kindVersion`` 0.0.2, an inclusion proof with a signed-note checkpoint
(``<origin>\\n<size>\\n<b64 root>\\n\\n— <origin> <b64(keyhash[:4] ‖ Ed25519 signature)>``), and
``canonicalizedBody``. No SignedEntryTimestamp, no integratedTime. ``GET /api/v2/checkpoint`` is the latest
checkpoint. As on the v1 stand-in, the origin is the host of the log's URL (``127.0.0.1:PORT``).

Where it differs from real Rekor v2: it answers at once (rekor-tiles batches entries and answers once a
checkpoint covers them), serves no tiles or entry bundles, keeps everything in memory, takes a duplicate as
a new answer for the existing entry, and does not check certificate chains against a Fulcio root.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from pipeline.cosign.keys import PublicKey, signature_verifies
from pipeline.cosign.rekor import CHECKPOINT_KEY_HINT_SIZE, CHECKPOINT_SIGNATURE_PREFIX, merkle_leaf_hash
from pipeline.rehearsal.log_server import BadEntry, MerkleTree, b64_field, canonical_json, object_field, origin_of
from pipeline.rehearsal.standin_http import Request, Response, StandinHTTPServer, StandinServer, json_response
from pipeline.sigstore.dsse import dsse_pae
from pipeline.sigstore.rekor_v2 import V2_VERSION, c2sp_key_id

V2_ENTRIES_PATH: Final = "/api/v2/log/entries"
V2_CHECKPOINT_PATH: Final = "/api/v2/checkpoint"
_PREHASH: Final[dict[int, Callable[[], hashes.HashAlgorithm]]] = {
    32: hashes.SHA256,
    48: hashes.SHA384,
    64: hashes.SHA512,
}
_DIGEST_NAMES: Final = {32: "SHA2_256", 48: "SHA2_384", 64: "SHA2_512"}


def _verifier(value: object, name: str) -> tuple[PublicKey, dict[str, object]]:
    """The key of a request's verifier, and the verifier as the entry records it."""
    verifier = object_field(value, name)
    details = verifier.get("keyDetails")
    if not isinstance(details, str) or not details:
        raise BadEntry(f"{name}.keyDetails is missing")
    try:
        if verifier.get("x509Certificate") is not None:
            der = b64_field(object_field(verifier["x509Certificate"], f"{name}.x509Certificate").get("rawBytes"),
                       f"{name}.x509Certificate.rawBytes")  # fmt: skip
            key: object = x509.load_der_x509_certificate(der).public_key()
            recorded: dict[str, object] = {"x509Certificate": {"rawBytes": base64.b64encode(der).decode()}}
        else:
            der = b64_field(object_field(verifier.get("publicKey"), f"{name}.publicKey").get("rawBytes"),
                       f"{name}.publicKey.rawBytes")  # fmt: skip
            key = serialization.load_der_public_key(der)
            recorded = {"publicKey": {"rawBytes": base64.b64encode(der).decode()}}
    except ValueError:
        raise BadEntry(f"{name} is not a DER public key or certificate") from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise BadEntry(f"unsupported public key type {type(key).__name__}")
    return key, {"keyDetails": details, **recorded}


def hashedrekord_v002_body(request: Mapping[str, Any]) -> bytes:
    """Check a ``hashedRekordRequestV002`` (the signature verifies over the digest) and return its body."""
    digest = b64_field(request.get("digest"), "digest")
    if len(digest) not in _PREHASH:
        raise BadEntry("digest is not a SHA-256, SHA-384 or SHA-512 digest")
    signature_spec = object_field(request.get("signature"), "signature")
    signature = b64_field(signature_spec.get("content"), "signature.content")
    key, verifier = _verifier(signature_spec.get("verifier"), "signature.verifier")
    prehashed = Prehashed(_PREHASH[len(digest)]())
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(prehashed))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        else:
            raise BadEntry("Ed25519 hashedrekord entries are not supported by this stand-in")
    except InvalidSignature:
        raise BadEntry("verifying signature: the signature does not verify over the digest") from None
    return canonical_json(
        {
            "apiVersion": V2_VERSION,
            "kind": "hashedrekord",
            "spec": {
                "hashedRekordV002": {
                    "data": {"algorithm": _DIGEST_NAMES[len(digest)], "digest": base64.b64encode(digest).decode()},
                    "signature": {"content": base64.b64encode(signature).decode(), "verifier": verifier},
                }
            },
        }
    )


def dsse_v002_body(request: Mapping[str, Any]) -> bytes:
    """Check a ``dsseRequestV002`` (every signature verifies over the PAE with a verifier); its body."""
    envelope = object_field(request.get("envelope"), "envelope")
    payload_type = envelope.get("payloadType")
    if not isinstance(payload_type, str) or not payload_type:
        raise BadEntry("envelope.payloadType is missing")
    payload = b64_field(envelope.get("payload"), "envelope.payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise BadEntry("the DSSE envelope must contain 1 or more signatures")
    raw_verifiers = request.get("verifiers")
    if not isinstance(raw_verifiers, list) or not raw_verifiers:
        raise BadEntry("verifiers must list 1 or more verifiers")
    verifiers = [_verifier(v, f"verifiers[{i}]") for i, v in enumerate(raw_verifiers)]
    message = dsse_pae(payload_type, payload)
    payload_hash = hashlib.sha256(payload).digest()
    recorded: list[dict[str, object]] = []
    for index, item in enumerate(signatures):
        where = f"envelope.signatures[{index}]"
        signature = b64_field(object_field(item, where).get("sig"), f"{where}.sig")
        match = next((v for key, v in verifiers if signature_verifies(key, message, signature, pure_ed25519=True)),
                     None)  # fmt: skip
        if match is None:
            raise BadEntry(f"envelope.signatures[{index}] verifies with none of the verifiers")
        recorded.append({"content": base64.b64encode(signature).decode(), "verifier": match})
    return canonical_json(
        {
            "apiVersion": V2_VERSION,
            "kind": "dsse",
            "spec": {
                "dsseV002": {
                    "payloadHash": {"algorithm": "SHA2_256", "digest": base64.b64encode(payload_hash).decode()},
                    "signatures": recorded,
                }
            },
        }
    )


class LogServerV2(StandinServer):
    """The embedded Rekor v2 log on 127.0.0.1 (an Ed25519 key, as the real shards'). Thread-safe."""

    thread_name = "release-vector-log-v2"

    def __init__(self, signing_key: ed25519.Ed25519PrivateKey | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, origin: str | None = None) -> None:  # fmt: skip
        super().__init__(host=host, port=port)
        self._key = signing_key if signing_key is not None else ed25519.Ed25519PrivateKey.generate()
        self.public_key = self._key.public_key()
        self.origin = origin or "release-vector.local"
        self._fixed_origin = origin
        self._lock = threading.Lock()
        self._tree = MerkleTree()
        self._bodies: list[bytes] = []
        self._kinds: list[str] = []
        self._index: dict[bytes, int] = {}

    def __repr__(self) -> str:  # the key never shows
        return f"LogServerV2(url={self.url if self._server else None!r}, entries={len(self._bodies)})"

    def _make_server(self, address: tuple[str, int]) -> StandinHTTPServer:
        server = super()._make_server(address)
        if self._fixed_origin is None:
            self.origin = origin_of(f"http://{self._host}:{server.server_address[1]}")
        return server

    def _not_running(self) -> RuntimeError:
        return RuntimeError("the Rekor v2 log server is not running")

    def public_key_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def log_id(self) -> bytes:
        """``logId.keyId`` of its entries and of its trusted-root listing: the C2SP key hash under its origin."""
        return c2sp_key_id(self.origin, self.public_key)

    def error_response(self, status: int, message: str) -> Response:
        return json_response(status, {"code": status, "message": message})

    def checkpoint(self, size: int, root: bytes) -> str:
        note = f"{self.origin}\n{size}\n{base64.b64encode(root).decode()}\n"
        signature = self.log_id[:CHECKPOINT_KEY_HINT_SIZE] + self._key.sign(note.encode("utf-8"))
        return f"{note}\n{CHECKPOINT_SIGNATURE_PREFIX}{self.origin} {base64.b64encode(signature).decode()}\n"

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if request.method in ("GET", "HEAD") and path == V2_CHECKPOINT_PATH:
            with self._lock:
                size, root = len(self._tree), self._tree.root()
            return Response(200, self.checkpoint(size, root).encode(), "text/plain; charset=utf-8")
        if request.method != "POST" or path != V2_ENTRIES_PATH:
            return self.error_response(404, f"path {request.path} was not found")
        try:
            try:
                proposed = object_field(json.loads(request.body), "the request")
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise BadEntry("the request body is not JSON") from None
            if "hashedRekordRequestV002" in proposed:
                kind, body = "hashedrekord", hashedrekord_v002_body(object_field(proposed["hashedRekordRequestV002"],
                                                                            "hashedRekordRequestV002"))  # fmt: skip
            elif "dsseRequestV002" in proposed:
                kind, body = "dsse", dsse_v002_body(object_field(proposed["dsseRequestV002"], "dsseRequestV002"))
            else:
                raise BadEntry("the request holds neither hashedRekordRequestV002 nor dsseRequestV002")
        except BadEntry as problem:
            return self.error_response(400, str(problem))
        return json_response(201, self._add(kind, body))

    def _add(self, kind: str, body: bytes) -> dict[str, object]:
        leaf = merkle_leaf_hash(body)
        with self._lock:
            index = self._index.get(leaf)
            if index is None:
                index = self._tree.append(leaf)
                self._bodies.append(body)
                self._kinds.append(kind)
                self._index[leaf] = index
            size = len(self._tree)
            root = self._tree.root(size)
            path = self._tree.inclusion_proof(index, size)
        return {
            "logIndex": str(index),
            "logId": {"keyId": base64.b64encode(self.log_id).decode()},
            "kindVersion": {"kind": kind, "version": V2_VERSION},
            "inclusionProof": {
                "logIndex": str(index),
                "rootHash": base64.b64encode(root).decode(),
                "treeSize": str(size),
                "hashes": [base64.b64encode(h).decode() for h in path],
                "checkpoint": {"envelope": self.checkpoint(size, root)},
            },
            "canonicalizedBody": base64.b64encode(body).decode(),
        }

    def __len__(self) -> int:
        with self._lock:
            return len(self._bodies)
