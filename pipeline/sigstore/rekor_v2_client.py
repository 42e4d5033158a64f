"""A Rekor v2 (rekor-tiles) client: ``POST /api/v2/log/entries``, answered with a ``TransparencyLogEntry``.

The request is protojson of rekor-tiles' ``CreateEntryRequest`` (``api/proto/rekor/v2/entry.proto``)::

    {"hashedRekordRequestV002": {"digest": <b64>, "signature": {"content": <b64>,
        "verifier": {"publicKey": {"rawBytes": <b64 DER SPKI>} | "x509Certificate": {"rawBytes": <b64 DER>},
                     "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}}
    {"dsseRequestV002": {"envelope": {"payload", "payloadType", "signatures": [{"sig", "keyid"}]},
                         "verifiers": [<verifier as above>]}}

and the answer (201) is the ``dev.sigstore.rekor.v1.TransparencyLogEntry`` that goes into a bundle's
``tlogEntries[]`` unchanged: kind version 0.0.2, an inclusion proof with a C2SP signed-note checkpoint, no
SignedEntryTimestamp and no integratedTime. Before it is used it is checked offline with the *trusted* log
keys, as the v1 client checks its answers: the body records our digest, signature and signer
(:mod:`pipeline.sigstore.rekor_v2`), the inclusion proof leads to the checkpoint's root, and the
checkpoint is signed by the trusted key whose C2SP key hash is the entry's ``logId``.

A v2 entry has no log time, so whatever is logged in one must also carry an RFC 3161 timestamp (the
CLI refuses a v2 log without a timestamp authority); and cosign's legacy ``dev.sigstore.cosign/bundle``
annotation has no place for it (:meth:`RekorV2Client.upload` refuses: sign those with a v1 log).
HTTP behaviour (timeouts, retries, one :class:`~pipeline.errors.TransparencyLogError` naming the URL) is
the v1 client's.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Final

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pipeline import jsonbounded
from pipeline.cosign.keys import PublicKey, public_key_der
from pipeline.cosign.rekor import HASHEDREKORD_KIND, RekorBundle, verify_inclusion_proof
from pipeline.cosign.timestamp import TimestampAuthority
from pipeline.cosign.trust import load_rekor_public_keys
from pipeline.errors import InvalidInputError, ReleaseVectorError, TransparencyLogError, UsageError
from pipeline.sigstore.bundle import TransparencyLogEntry, parse_tlog_entry
from pipeline.sigstore.dsse import DSSE_KIND, DsseEnvelope
from pipeline.sigstore.rekor_client import RekorClient, RekorOptions
from pipeline.sigstore.rekor_v2 import (
    V2_VERSION,
    RekorV2Entry,
    check_dsse_v002,
    check_hashedrekord_v002,
    verify_signed_note,
)
from pipeline.sigstore.trusted_root_writer import key_details

V2_ENTRIES_PATH: Final = "/api/v2/log/entries"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def signer_verifier(signer_pem: bytes, key: PublicKey) -> tuple[dict[str, object], bytes, bytes]:
    """(the request's ``verifier``, the DER it records, the key's SPKI) for a certificate or key PEM."""
    spki = public_key_der(key)
    if b"-----BEGIN CERTIFICATE-----" in signer_pem:
        der = x509.load_pem_x509_certificate(signer_pem).public_bytes(Encoding.DER)
        return {"x509Certificate": {"rawBytes": _b64(der)}, "keyDetails": key_details(key)}, der, spki
    return {"publicKey": {"rawBytes": _b64(spki)}, "keyDetails": key_details(key)}, spki, spki


def _signer_key(signer_pem: bytes) -> PublicKey:
    if b"-----BEGIN CERTIFICATE-----" in signer_pem:
        key = x509.load_pem_x509_certificate(signer_pem).public_key()
        if not isinstance(key, PublicKey):
            raise ValueError("unsupported certificate key type")
        return key
    return load_rekor_public_keys(signer_pem, "the signer's key")[0]


def verify_v2_answer(entry: TransparencyLogEntry, trusted_keys: Sequence[PublicKey], kind: str, where: str) -> None:
    """The answer is a v2 entry of ``kind`` whose inclusion proof and checkpoint a trusted key vouches for."""
    if entry.kind != kind or entry.kind_version != V2_VERSION:
        raise TransparencyLogError(f"the log answered a {entry.kind} {entry.kind_version} entry, not {kind}"
                                   f" {V2_VERSION}", where=where)  # fmt: skip
    proof = entry.inclusion_proof
    if proof is None or proof.checkpoint is None:
        raise TransparencyLogError("the log's answer has no inclusion proof with a checkpoint", where=where)
    verify_inclusion_proof(
        entry.canonicalized_body, proof.log_index, proof.tree_size, proof.hashes, proof.root_hash, where
    )
    verify_signed_note(proof.checkpoint, trusted_keys, entry.log_id, proof.root_hash, proof.tree_size, where)


class RekorV2Client:
    """Uploads to one Rekor v2 log and verifies its answers with ``trusted_keys``. A context manager."""

    major_api_version: Final = 2

    def __init__(
        self,
        url: str,
        trusted_keys: Sequence[PublicKey],
        options: RekorOptions | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        # The v1 client's HTTP side (URL checks, timeouts, retries, error mapping) serves both APIs.
        self._http = RekorClient(url, trusted_keys, options, transport=transport)
        self.url = self._http.url
        self._authorities: tuple[TimestampAuthority, ...] = ()

    def __repr__(self) -> str:
        return f"RekorV2Client(url={self.url!r}, trusted_keys={len(self.trusted_keys)})"

    def __enter__(self) -> RekorV2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def trusted_keys(self) -> tuple[PublicKey, ...]:
        return self._http.trusted_keys

    @property
    def timestamp_authorities(self) -> tuple[TimestampAuthority, ...]:
        return self._authorities

    def date_with(self, authorities: Sequence[TimestampAuthority]) -> None:
        """Trust ``authorities`` (the run's TSA) to date this log's entries: whether an existing signature is
        this run's is decided with them (a v2 entry without a verified timestamp proves no time)."""
        self._authorities = tuple(authorities)

    # --- the TransparencyLog port ------------------------------------------------------------------

    def upload(
        self, payload_sha256: str, signature: bytes, signer_pem: bytes, algorithm: str = "sha256"
    ) -> RekorBundle:
        raise UsageError(
            "a Rekor v2 log's entries cannot go into cosign's legacy .sig layout (its bundle annotation needs a"
            " SignedEntryTimestamp, which Rekor v2 does not give)",
            where=self.url,
            hint="sign with --bundle-format v3, or name a Rekor v1 log",
        )

    def create_hashedrekord_entry(
        self, payload_sha256: str | bytes, signature: bytes, public_key_or_cert_pem: bytes, algorithm: str = "sha256"
    ) -> RekorV2Entry:
        """Log a ``hashedrekord`` 0.0.2 entry for the digest (by ``algorithm``) the signature is over."""
        digest = bytes.fromhex(payload_sha256) if isinstance(payload_sha256, str) else payload_sha256
        if len(digest) != hashlib.new(algorithm).digest_size:
            raise ValueError(f"the payload digest must be a {algorithm} digest")
        key = _signer_key(public_key_or_cert_pem)
        verifier, signer_der, spki = signer_verifier(public_key_or_cert_pem, key)
        signed = {"content": _b64(signature), "verifier": verifier}
        request = {"hashedRekordRequestV002": {"digest": _b64(digest), "signature": signed}}
        answer = self._create(request, HASHEDREKORD_KIND)
        where = f"{self.url}{V2_ENTRIES_PATH}"
        try:
            check_hashedrekord_v002(answer.entry.canonicalized_body, b"", signature, signer_der, spki, where,
                                    digest=(algorithm, digest))  # fmt: skip
        except ReleaseVectorError as error:
            raise _not_verified(error, where) from None
        return answer

    def upload_dsse(self, envelope: DsseEnvelope, signer_pem: bytes) -> RekorV2Entry:
        """Log a ``dsse`` 0.0.2 entry for ``envelope`` (one signature); the answer is verified."""
        key = _signer_key(signer_pem)
        verifier, signer_der, spki = signer_verifier(signer_pem, key)
        request = {
            "dsseRequestV002": {
                "envelope": {
                    "payload": _b64(envelope.payload),
                    "payloadType": envelope.payload_type,
                    "signatures": [{"sig": _b64(s.sig), "keyid": s.keyid} for s in envelope.signatures],
                },
                "verifiers": [verifier],
            }
        }
        answer = self._create(request, DSSE_KIND)
        where = f"{self.url}{V2_ENTRIES_PATH}"
        try:
            check_dsse_v002(answer.entry.canonicalized_body, envelope.payload, envelope.signatures[0].sig,
                            signer_der, spki, where)  # fmt: skip
        except ReleaseVectorError as error:
            raise _not_verified(error, where) from None
        return answer

    def _create(self, request: Mapping[str, object], kind: str) -> RekorV2Entry:
        url = f"{self.url}{V2_ENTRIES_PATH}"
        response = self._http._send("POST", url, content=json.dumps(request).encode())
        if response.status_code not in (200, 201):
            raise self._http._failure(response, "the transparency log refused the entry", url)
        try:
            document = jsonbounded.loads(response.content, source=url, what="the log's answer")
            if not isinstance(document, Mapping):
                raise InvalidInputError("the log's answer is not a TransparencyLogEntry object", where=url)
            entry = parse_tlog_entry(document, url)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise TransparencyLogError("the log's answer is not JSON", where=url) from None
        except InvalidInputError as error:
            raise TransparencyLogError(f"the log's answer is malformed: {error.message}", where=url) from None
        try:
            verify_v2_answer(entry, self.trusted_keys, kind, url)
        except ReleaseVectorError as error:
            if isinstance(error, TransparencyLogError):
                raise
            raise _not_verified(error, url) from None
        return RekorV2Entry(document, entry)


def _not_verified(error: ReleaseVectorError, where: str) -> TransparencyLogError:
    return TransparencyLogError(
        f"the transparency log's answer does not verify: {error.message}",
        where=where,
        hint="is the trusted Rekor key (--rekor-public-key) the key of this log?",
    )
