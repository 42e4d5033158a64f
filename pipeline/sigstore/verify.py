"""Offline verification of a Sigstore bundle, as ``cosign verify-blob`` and cosign v3 ``verify`` do it (pure).

Two shapes are checked:

* **a blob** (:func:`verify_bundle_for_artifact`): a ``messageSignature`` over the artifact bytes, logged
  as a ``hashedrekord`` 0.0.1 entry that records the artifact's sha256, the signature and the signer;
* **an image** (:func:`verify_bundle_for_image`): what cosign v3 writes for ``cosign sign`` and
  ``cosign attest`` — a DSSE envelope (payloadType ``application/vnd.in-toto+json``) whose signature is
  over the DSSE pre-authentication encoding (PAE), not over the payload; the payload is an in-toto
  Statement whose subject is the image manifest digest; logged as a ``dsse`` 0.0.1 entry.

The log evidence of a Rekor v1 entry is checked as in :mod:`pipeline.cosign.rekor`: the logId names a
trusted Rekor key (sha256 of its DER SPKI), the SignedEntryTimestamp verifies over the canonical JSON of
``{body, integratedTime, logID, logIndex}`` (the entry's global logIndex), the inclusion proof leads from
the body to its root hash using the proof's own (shard-local) logIndex, and the checkpoint, when present,
is signed by the log and commits to that root. RFC 3161 timestamps (``timestampVerificationData``) are
verified over the signature with the trusted timestamp authorities (:mod:`pipeline.cosign.timestamp`). A
keyless certificate is checked at every verified time: integratedTime and each verified timestamp.

A blob bundle may also hold a DSSE envelope (:func:`verify_dsse_bundle_for_artifact`): one of its
statement's subjects must name the artifact's digest. With a key, ``publicKey.hint`` is not compared:
the key given is what verifies.

Rekor v2 entries (kind version 0.0.2: no SET, no integratedTime) are proven by the inclusion proof and a C2SP
signed-note checkpoint of a trusted log (:mod:`pipeline.sigstore.rekor_v2`); their time comes from the RFC 3161
timestamps alone, and a v2 entry without a verified timestamp is refused. The dsse body's
``envelopeHash`` is not re-derived: producers serialise the envelope differently (Go struct order with an
empty ``keyid``, or protojson order without it), so the check rests on ``payloadHash`` and the signature.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pipeline.cosign.certificate import certificate_identity
from pipeline.cosign.keys import PublicKey, encode_pem, public_key_der, public_key_to_pem, verify_signature
from pipeline.cosign.rekor import (
    HASHEDREKORD_API_VERSION,
    HASHEDREKORD_KIND,
    RekorBundle,
    signed_entry_timestamp_message,
    trusted_key_for_log,
    verify_checkpoint,
    verify_inclusion_proof,
    verify_rekor_bundle,
)
from pipeline.cosign.timestamp import OTHER_DATA, verify_timestamps
from pipeline.cosign.verify import VerificationPolicy, VerifiedSignature, verify_keyless_certificate
from pipeline.errors import InvalidInputError, VerificationError
from pipeline.sigstore.bundle import (
    COSIGN_SIGN_PREDICATE_TYPE,
    SHA2_256,
    InTotoStatement,
    SigstoreBundle,
    TransparencyLogEntry,
    parse_in_toto_statement,
)
from pipeline.sigstore.dsse import (
    DSSE_API_VERSION,
    DSSE_KIND,
    IN_TOTO_PAYLOAD_TYPE,
    DsseEnvelope,
    check_dsse_body,
    dsse_pae,
)
from pipeline.sigstore.rekor_v2 import V2_VERSION, check_dsse_v002, check_hashedrekord_v002, verify_signed_note

_SHA256_DIGEST_RE: Final = re.compile(r"sha256:([0-9a-f]{64})")
_MESSAGE_DIGESTS: Final = {SHA2_256: "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}
_TLOG_SKIPPED: Final = "the transparency log was NOT checked (--insecure-ignore-tlog)"


# --- who signed ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Signer:
    key: PublicKey
    pem: bytes  # the PUBLIC KEY or CERTIFICATE PEM a log entry must record
    leaf: x509.Certificate | None
    chain: tuple[x509.Certificate, ...]


def _load_certificate(der: bytes, name: str, where: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise InvalidInputError(f"the Sigstore bundle's {name} is not a DER X.509 certificate", where=where) from None


def _signer(bundle: SigstoreBundle, policy: VerificationPolicy, where: str) -> _Signer:
    material = bundle.verification_material
    if policy.public_key is not None:
        # publicKey.hint is opaque (the bundle spec calls it a hint; cosign ignores it): the key given
        # is what verifies, whatever the hint says.
        return _Signer(policy.public_key, public_key_to_pem(policy.public_key), None, ())
    if material.certificate is None:
        raise VerificationError(
            "the bundle carries no certificate for keyless verification (it was signed with a key)",
            where=where,
            hint="verify it with --key",
        )
    leaf = _load_certificate(material.certificate, "certificate", where)
    chain = tuple(
        _load_certificate(der, f"x509CertificateChain.certificates[{index + 1}]", where)
        for index, der in enumerate(material.chain)
    )
    key = leaf.public_key()
    if not isinstance(key, PublicKey):
        raise VerificationError("the bundle certificate's key type is not supported", where=where)
    return _Signer(key, encode_pem("CERTIFICATE", material.certificate), leaf, chain)


# --- the transparency log ----------------------------------------------------------------------


def _as_rekor_bundle(entry: TransparencyLogEntry, signed_entry_timestamp: bytes) -> RekorBundle:
    """The entry in the legacy bundle's shape, whose SET message is the same canonical JSON."""
    return RekorBundle(
        signed_entry_timestamp=signed_entry_timestamp,
        body=entry.canonicalized_body,
        body_b64=base64.b64encode(entry.canonicalized_body).decode("ascii"),
        integrated_time=entry.integrated_time,
        log_index=entry.log_index,
        log_id=entry.log_id_hex,
    )


def _promise(entry: TransparencyLogEntry, where: str) -> bytes:
    if entry.signed_entry_timestamp is None:
        raise VerificationError(
            "the transparency-log entry has no inclusionPromise (SignedEntryTimestamp);"
            " entries without one (Rekor v2) are not supported offline",
            where=where,
        )
    return entry.signed_entry_timestamp


def _verify_set(entry: TransparencyLogEntry, policy: VerificationPolicy, where: str) -> None:
    """The SET of an entry of any kind (rekor.verify_rekor_bundle does this only with a hashedrekord body)."""
    log_key = trusted_key_for_log(entry.log_id_hex, policy.rekor_keys, where)
    promise = _promise(entry, where)
    message = signed_entry_timestamp_message(_as_rekor_bundle(entry, promise))
    try:
        verify_signature(log_key, message, promise, where=where)
    except VerificationError:
        raise VerificationError(
            "the transparency-log entry's SignedEntryTimestamp does not verify with the Rekor key"
            " (the entry was altered or was not signed by this log)",
            where=where,
        ) from None


def _verify_inclusion(entry: TransparencyLogEntry, policy: VerificationPolicy, where: str) -> list[str]:
    proof = entry.inclusion_proof
    if proof is None:
        return []
    verify_inclusion_proof(
        entry.canonicalized_body, proof.log_index, proof.tree_size, proof.hashes, proof.root_hash, where
    )
    checks = [f"the inclusion proof (leaf {proof.log_index} of {proof.tree_size}) leads to the log's root hash"]
    if proof.checkpoint is not None:
        verify_checkpoint(
            proof.checkpoint,
            trusted_keys=policy.rekor_keys,
            root_hash=proof.root_hash,
            tree_size=proof.tree_size,
            where=where,
        )
        checks.append("the checkpoint is signed by a trusted Rekor key and commits to that root hash")
    return checks


def _check_dsse_body(entry: TransparencyLogEntry, envelope: DsseEnvelope, signer_pem: bytes, where: str) -> None:
    check_dsse_body(entry.canonicalized_body, envelope, signer_pem, where)


def _signer_der(signer: _Signer) -> tuple[bytes, bytes]:
    """(the certificate's DER, or the SPKI for a key; the SPKI): what a Rekor v2 entry's verifier records."""
    spki = public_key_der(signer.key)
    return (signer.leaf.public_bytes(Encoding.DER) if signer.leaf is not None else spki), spki


def _verify_v2_evidence(entry: TransparencyLogEntry, policy: VerificationPolicy, where: str) -> list[str]:
    """A Rekor v2 entry: no SET; the inclusion proof and the C2SP checkpoint of a trusted log prove it."""
    proof = entry.inclusion_proof
    if proof is None or proof.checkpoint is None:
        raise VerificationError("the Rekor v2 entry has no inclusion proof with a checkpoint", where=where)
    verify_inclusion_proof(
        entry.canonicalized_body, proof.log_index, proof.tree_size, proof.hashes, proof.root_hash, where
    )
    verify_signed_note(proof.checkpoint, policy.rekor_keys, entry.log_id, proof.root_hash, proof.tree_size, where)
    return [
        f"the inclusion proof (leaf {proof.log_index} of {proof.tree_size}) leads to the log's root hash",
        "the checkpoint (a signed note) is signed by the trusted Rekor v2 log key the entry's logId names"
        " and commits to that root hash",
    ]


def _verify_tlog(
    bundle: SigstoreBundle,
    kind: str,
    version: str,
    check_entry: Callable[[TransparencyLogEntry], list[str]],
    where: str,
    *,
    also: tuple[str, str] | None = None,
) -> tuple[TransparencyLogEntry, list[str]]:
    """The first entry of ``kind`` ``version`` (or its Rekor v2 version 0.0.2, or ``also`` = (kind, version))
    that ``check_entry`` accepts; else the first entry's failure."""
    versions = (version, V2_VERSION)
    entries = [e for e in bundle.verification_material.tlog_entries
               if (e.kind == kind and e.kind_version in versions) or (e.kind, e.kind_version) == also]  # fmt: skip
    if not entries:
        present = ", ".join(f"{e.kind} {e.kind_version}" for e in bundle.verification_material.tlog_entries)
        raise VerificationError(
            f"the bundle has no {kind} {version} transparency-log entry ({present or 'it has none'})",
            where=where,
            hint="sign with a Rekor upload, or accept the risk with --insecure-ignore-tlog",
        )
    failures: list[VerificationError] = []
    for entry in entries:
        try:
            return entry, check_entry(entry)
        except VerificationError as exc:
            failures.append(exc)
    raise failures[0]


# --- the certificate and the result ------------------------------------------------------------


def _signed_integrated_time(entry: TransparencyLogEntry | None) -> int | None:
    """The entry's integratedTime where its SET signs it (a Rekor v1 entry, verified through its SET), else None.

    A Rekor v2 entry (0.0.2: proven by its inclusion proof and checkpoint, which sign no time) has no SET: an
    integratedTime written into it is anyone's claim, never a verified time (sigstore-go, sigstore-python and
    sigstore-js take its time from RFC 3161 timestamps alone)."""
    if entry is None or entry.kind_version == V2_VERSION or entry.integrated_time <= 0:
        return None
    return entry.integrated_time


def _check_times(
    bundle: SigstoreBundle,
    signature: bytes,
    entry: TransparencyLogEntry | None,
    policy: VerificationPolicy,
    where: str,
    *,
    needs_time: bool,
) -> tuple[list[datetime], list[str]]:
    """The verified times the signature is proven to exist at (the log's integratedTime, each RFC 3161
    timestamp a trusted TSA signed over the signature), and the checks made.

    As sigstore-python: a timestamp that does not verify is not a source of time (it is reported).
    ``needs_time`` (a keyless certificate is checked at those times): with a log entry or timestamps,
    at least one verified time is required.
    """
    times: list[datetime] = []
    checks: list[str] = []
    if (logged := _signed_integrated_time(entry)) is not None:
        times.append(datetime.fromtimestamp(logged, UTC))
    responses = bundle.verification_material.rfc3161_timestamps
    problem: str | None = None
    if responses and not policy.timestamp_authorities:
        checks.append("the bundle's RFC 3161 timestamps were NOT verified: no timestamp authority is trusted")
        problem = "the bundle's RFC 3161 timestamps cannot be verified: no timestamp authority is trusted"
    elif responses:
        results = verify_timestamps(responses, signature, policy.timestamp_authorities, where)
        times += results.times
        if results.times:
            checks.append(f"{len(results.times)} RFC 3161 timestamp(s) over the signature verified with a trusted"
                          " timestamp authority")  # fmt: skip
        if results.problems:
            checks.append(f"{len(results.problems)} RFC 3161 timestamp(s) did not verify and were not used:"
                          f" {results.problems[0]}")  # fmt: skip
            problem = results.problems[0]
    if needs_time and not times and (entry is not None or responses):
        unsigned = entry is not None and entry.integrated_time > 0  # a Rekor v2 entry's: signed by nothing
        raise VerificationError(
            problem
            or "the transparency-log entry has no integratedTime and the bundle no RFC 3161 timestamp to check the"
            " certificate at"
            + (" (the Rekor v2 entry's integratedTime is signed by nothing: not a verified time)" if unsigned else ""),
            where=where,
            hint="give a --trusted-root whose timestampAuthorities include the bundle's TSA"
            if responses and OTHER_DATA not in (problem or "")
            else None,
        )
    return times, checks


def _check_certificate(
    signer: _Signer,
    bundle: SigstoreBundle,
    signature: bytes,
    entry: TransparencyLogEntry | None,
    policy: VerificationPolicy,
    where: str,
) -> list[str]:
    """The times the signature is proven at, and (keyless) the certificate valid at each of them."""
    keyless = signer.leaf is not None and policy.keyless is not None
    rekor_v2 = entry is not None and entry.kind_version == V2_VERSION  # its time is only a timestamp's
    times, checks = _check_times(bundle, signature, entry, policy, where, needs_time=keyless or rekor_v2)
    if signer.leaf is None or policy.keyless is None:
        return checks
    certificate_checks: list[str] = []
    for at in times or [policy.now]:  # no verified time (the log is not checked, no timestamp): now
        certificate_checks = verify_keyless_certificate(signer.leaf, signer.chain, policy.keyless, at, where)
    return checks + certificate_checks


def _result(
    bundle: SigstoreBundle,
    signer: _Signer,
    entry: TransparencyLogEntry | None,
    checks: list[str],
) -> VerifiedSignature:
    if signer.leaf is not None:
        sans, issuer = certificate_identity(signer.leaf)
        name = ", ".join(sans) or "(no identity)"
    else:
        name, issuer = "public key", None
    return VerifiedSignature(
        signer=name,
        issuer=issuer,
        integrated_time=_signed_integrated_time(entry),
        log_index=None if entry is None else entry.log_index,
        checks=tuple(checks),
    )


# --- a blob -------------------------------------------------------------------------------------


def verify_bundle_for_artifact(
    bundle: SigstoreBundle, artifact: bytes, policy: VerificationPolicy, where: str
) -> VerifiedSignature:
    """Check a ``messageSignature`` bundle over ``artifact``; VerificationError with the reason, or what verified."""
    message = bundle.message_signature
    if message is None:
        return verify_dsse_bundle_for_artifact(bundle, artifact, policy, where)
    signer = _signer(bundle, policy, where)
    checks: list[str] = []
    if message.digest_algorithm is not None:
        algorithm = _MESSAGE_DIGESTS.get(message.digest_algorithm)
        if algorithm is None:
            raise VerificationError(
                f"the bundle's message digest uses {message.digest_algorithm}; only"
                f" {', '.join(_MESSAGE_DIGESTS)} are supported",
                where=where,
            )
        actual = hashlib.new(algorithm, artifact).digest()
        if message.digest != actual:
            raise VerificationError(
                f"the bundle is for another artifact ({algorithm}:{message.digest.hex()} in the bundle,"
                f" {algorithm}:{actual.hex()} given)",
                where=where,
            )
        checks.append(f"the bundle's message digest is the artifact's {algorithm}")
    verify_signature(signer.key, artifact, message.signature, where=where)
    checks.append(
        "the signature was verified against the "
        + ("certificate's public key" if signer.leaf is not None else "specified public key")
    )

    entry: TransparencyLogEntry | None = None
    if policy.ignore_tlog:
        checks.append(_TLOG_SKIPPED)
    else:

        def check_entry(candidate: TransparencyLogEntry) -> list[str]:
            if candidate.kind_version == V2_VERSION:
                check_hashedrekord_v002(candidate.canonicalized_body, artifact, message.signature,
                                        *_signer_der(signer), where)  # fmt: skip
                return ["the hashedrekord 0.0.2 (Rekor v2) log entry records this artifact, signature and signer",
                        *_verify_v2_evidence(candidate, policy, where)]  # fmt: skip
            verify_rekor_bundle(
                _as_rekor_bundle(candidate, _promise(candidate, where)),
                trusted_keys=policy.rekor_keys,
                payload=artifact,
                signature=message.signature,
                signer_pem=signer.pem,
                where=where,
            )
            return [
                "the hashedrekord log entry records this artifact, signature and signer",
                "the log entry's signed entry timestamp was verified offline with a trusted Rekor key",
                *_verify_inclusion(candidate, policy, where),
            ]

        entry, entry_checks = _verify_tlog(bundle, HASHEDREKORD_KIND, HASHEDREKORD_API_VERSION, check_entry, where)
        checks += entry_checks
    checks += _check_certificate(signer, bundle, message.signature, entry, policy, where)
    return _result(bundle, signer, entry, checks)


# --- an image -----------------------------------------------------------------------------------


def _statement(envelope: DsseEnvelope, where: str) -> InTotoStatement:
    try:
        return parse_in_toto_statement(envelope.payload, where)
    except InvalidInputError as exc:
        raise VerificationError(f"the signed payload is unusable: {exc.message}", where=where) from None


def _check_statement(
    statement: InTotoStatement,
    digest_hex: str,
    predicate_type: str,
    annotations: Mapping[str, str],
    where: str,
    subject: str = "image",
) -> None:
    if statement.predicate_type != predicate_type:
        raise VerificationError(
            f"the in-toto statement's predicateType is {statement.predicate_type}, not {predicate_type}",
            where=where,
        )
    subjects = [s for s in statement.subjects if s.digest.get("sha256") == digest_hex]
    if not subjects:
        signed = ", ".join(f"sha256:{s.digest['sha256']}" for s in statement.subjects if "sha256" in s.digest)
        raise VerificationError(
            f"the signature is for another {subject} (the statement names {signed or 'no sha256 digest'},"
            f" not sha256:{digest_hex})",
            where=where,
        )
    for key, value in annotations.items():
        if not any(subject.annotations.get(key) == value for subject in subjects):
            found = subjects[0].annotations.get(key)
            raise VerificationError(
                f"the signature's annotation {key}={value} is missing"
                + (f" (it has {key}={found})" if found is not None else ""),
                where=where,
            )


def _verify_dsse(
    bundle: SigstoreBundle,
    policy: VerificationPolicy,
    where: str,
    check_statement: Callable[[InTotoStatement], list[str]],
) -> VerifiedSignature:
    """A DSSE bundle: the one signature over the PAE, the statement (``check_statement`` says what it must
    name), the ``dsse`` log entry, and the certificate at the verified times. Shared by image signatures,
    attestations and blob bundles holding an envelope."""
    envelope = bundle.dsse_envelope
    if envelope is None:
        raise VerificationError(
            "the bundle holds a message signature, not the DSSE envelope cosign v3 signs images with", where=where
        )
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(
            f"the DSSE payloadType is {envelope.payload_type!r}, not {IN_TOTO_PAYLOAD_TYPE!r}", where=where
        )
    if len(envelope.signatures) != 1:
        raise VerificationError(
            f"the DSSE envelope holds {len(envelope.signatures)} signatures; exactly one is supported", where=where
        )
    signer = _signer(bundle, policy, where)
    try:
        verify_signature(
            signer.key,
            dsse_pae(envelope.payload_type, envelope.payload),
            envelope.signatures[0].sig,
            where=where,
            pure_ed25519=True,
        )
    except VerificationError:
        raise VerificationError(
            "the DSSE signature does not verify (over the pre-authentication encoding) with the "
            + ("certificate's key" if signer.leaf is not None else "given key"),
            where=where,
        ) from None
    checks = [
        "the DSSE signature was verified against the "
        + ("certificate's public key" if signer.leaf is not None else "specified public key")
    ]
    checks += check_statement(_statement(envelope, where))

    entry: TransparencyLogEntry | None = None
    if policy.ignore_tlog:
        checks.append(_TLOG_SKIPPED)
    else:

        def check_entry(candidate: TransparencyLogEntry) -> list[str]:
            if candidate.kind == HASHEDREKORD_KIND:
                # rekor-v2-spec 6.1.4 (as sigstore-python verifies it): Rekor v2 may log an envelope as a
                # hashedrekord 0.0.2 over the pre-authentication encoding, with the envelope's signature
                check_hashedrekord_v002(candidate.canonicalized_body, dsse_pae(envelope.payload_type, envelope.payload),
                                        envelope.signatures[0].sig, *_signer_der(signer), where)  # fmt: skip
                return ["the hashedrekord 0.0.2 (Rekor v2) log entry records this envelope's PAE, signature and signer",
                        *_verify_v2_evidence(candidate, policy, where)]  # fmt: skip
            if candidate.kind_version == V2_VERSION:
                check_dsse_v002(candidate.canonicalized_body, envelope.payload, envelope.signatures[0].sig,
                                *_signer_der(signer), where)  # fmt: skip
                return ["the dsse 0.0.2 (Rekor v2) log entry records this payload, signature and signer",
                        *_verify_v2_evidence(candidate, policy, where)]  # fmt: skip
            _verify_set(candidate, policy, where)
            _check_dsse_body(candidate, envelope, signer.pem, where)
            return [
                "the log entry's signed entry timestamp was verified offline with a trusted Rekor key",
                "the dsse log entry records this payload, signature and signer",
                *_verify_inclusion(candidate, policy, where),
            ]

        entry, entry_checks = _verify_tlog(bundle, DSSE_KIND, DSSE_API_VERSION, check_entry, where,
                                           also=(HASHEDREKORD_KIND, V2_VERSION))  # fmt: skip
        checks += entry_checks
    checks += _check_certificate(signer, bundle, envelope.signatures[0].sig, entry, policy, where)
    return _result(bundle, signer, entry, checks)


def verify_bundle_for_image(
    bundle: SigstoreBundle,
    manifest_digest: str,
    policy: VerificationPolicy,
    where: str,
    annotations: Mapping[str, str] | None = None,
    *,
    predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE,
    subject: str = "image",
) -> VerifiedSignature:
    """Check a cosign v3 DSSE bundle for the image whose manifest digest is ``manifest_digest`` (``sha256:<hex>``).

    ``predicate_type`` is cosign's image-signature type by default; pass the attestation's type (e.g.
    ``https://cosign.sigstore.dev/attestation/v1``) to verify an attestation. Every ``annotations`` pair
    (``cosign verify -a k=v``) must be in the matching subject's ``annotations``. ``subject``: what the
    digest is of, in messages (``file`` for a blob's attestation).
    """
    match = _SHA256_DIGEST_RE.fullmatch(manifest_digest)
    if match is None:
        raise InvalidInputError(f"{manifest_digest!r} is not a sha256 image manifest digest", where=where)
    digest_hex = match.group(1)

    def check_statement(statement: InTotoStatement) -> list[str]:
        _check_statement(statement, digest_hex, predicate_type, annotations or {}, where, subject)
        checks = [f"the in-toto statement ({predicate_type}) names the {subject} digest sha256:{digest_hex}"]
        if annotations:
            checks.append("the statement's subject carries the expected annotations")
        return checks

    return _verify_dsse(bundle, policy, where, check_statement)


def verify_dsse_bundle_for_artifact(
    bundle: SigstoreBundle, artifact: bytes, policy: VerificationPolicy, where: str
) -> VerifiedSignature:
    """A DSSE bundle over ``artifact`` (cosign v3 ``verify-blob`` and sigstore-go accept one): an in-toto
    statement subject's digest must be the artifact's (sha256, or sha512 where the subject states only
    that); any predicateType."""
    digests = {name: hashlib.new(name, artifact).hexdigest() for name in ("sha256", "sha512")}

    def check_statement(statement: InTotoStatement) -> list[str]:
        for subject in statement.subjects:
            for name, value in digests.items():
                if subject.digest.get(name) == value:
                    return [f"the in-toto statement ({statement.predicate_type}) names the artifact's {name}"]
        named = ", ".join(f"{k}:{v}" for s in statement.subjects for k, v in s.digest.items())
        raise VerificationError(
            f"the statement is for another artifact (its subjects name {named or 'no digest'},"
            f" not sha256:{digests['sha256']})",
            where=where,
        )

    return _verify_dsse(bundle, policy, where, check_statement)
