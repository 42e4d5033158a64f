"""cosign's legacy attestation layout: the ``sha256-<hex>.att`` manifest in the image's repository.

What ``cosign attest`` (without ``--new-bundle-format``) writes (COS ``cmd/cosign/cli/attest/attest.go``,
``pkg/oci/static``): one layer per attestation, media type ``application/vnd.dsse.envelope.v1+json``, the
blob the DSSE envelope JSON, annotations ``dev.cosignproject.cosign/signature`` (empty: the signature is in
the envelope), ``predicateType``, ``dev.sigstore.cosign/bundle`` (the Rekor entry, ``intoto`` 0.0.2 here, as
cosign v1/v2 logged it; ``dsse`` 0.0.1 from a log without intoto, as cosign v3 logs it by default), and for
keyless the certificate and chain. New layers are appended; existing ones are kept as they were. Read only:
``intoto`` 0.0.1, what cosign v1 and early v2 logged (tests/vectors/cosign/attestations holds one from ghcr.io).

Verifying reads every DSSE layer: the envelope's signature over the PAE (key, or certificate chaining to
the trusted roots with the expected identity), the log entry (SET with a trusted Rekor key; the body, of
kind intoto or dsse, records this payload, this signature and this signer), then the statement (predicate
type, subject digest). Idempotent: a layer whose statement is exactly ours and that verifies as the
signer's (``Signer.policy``) means nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline import jsonbounded
from pipeline.cosign.certificate import certificate_identity, load_certificates
from pipeline.cosign.keys import PublicKey, public_key_to_pem, verify_signature
from pipeline.cosign.payload import go_sorted
from pipeline.cosign.rekor import (
    RekorBundle,
    bundle_annotation,
    parse_rekor_bundle,
    signed_entry_timestamp_message,
    trusted_key_for_log,
)
from pipeline.cosign.sigmanifest import (
    BUNDLE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    RFC3161_TIMESTAMP_ANNOTATION,
    LayerRef,
    SignatureLayer,
    SignatureManifest,
    append_signature,
    find_duplicate,
    read_signature_manifest,
)
from pipeline.cosign.timestamp import parse_rfc3161_annotation, rfc3161_annotation
from pipeline.cosign.verify import (
    VerificationPolicy,
    VerifiedSignature,
    annotation_timestamp_times,
    verify_keyless_certificate,
)
from pipeline.errors import NotFoundError, ReleaseVectorError, VerificationError
from pipeline.oci import digest as digests
from pipeline.oci.reference import Reference
from pipeline.signatures.attestation import (
    DSSE_MEDIA_TYPE,
    PREDICATE_TYPE_ANNOTATION,
    Attestation,
    VerifiedAttestation,
    attestation_tag,
    check_statement,
)
from pipeline.signatures.blob import TimestampSource
from pipeline.signatures.layout import (
    Format,
    LayoutVerification,
    SignatureReads,
    SignStatus,
    Verifier,
    WriteConfirmations,
    write_until_present,
)
from pipeline.signatures.registry import SignatureRegistry, manifest_if_there, upload_blobs
from pipeline.signatures.signers import Signer
from pipeline.signatures.target import SignatureTarget
from pipeline.sigstore.dsse import DSSE_KIND, IN_TOTO_PAYLOAD_TYPE, DsseEnvelope, check_dsse_body, dsse_pae
from pipeline.sigstore.intoto import (
    INTOTO_KIND,
    check_intoto_body,
    envelope_json,
    in_toto_envelope,
    parse_envelope_json,
)
from pipeline.sigstore.tlog import IntotoLog, TransparencyLog, legacy_bundle


@dataclass(frozen=True)
class AttestationLayer(SignatureLayer):
    """One ``.att`` layer: the envelope JSON as the blob; no detached signature (the annotation is empty)."""

    predicate_type: str = ""

    @property
    def media_type(self) -> str:
        return DSSE_MEDIA_TYPE

    def annotations(self) -> dict[str, str]:
        result = super().annotations()
        result[PREDICATE_TYPE_ANNOTATION] = self.predicate_type
        return go_sorted(result)


def attestation_reference(image: Reference, digest: str) -> Reference:
    return image.repo.tag(attestation_tag(digest))


def _verify_set(bundle: RekorBundle, policy: VerificationPolicy, where: str) -> None:
    log_key = trusted_key_for_log(bundle.log_id, policy.rekor_keys, where)
    try:
        verify_signature(log_key, signed_entry_timestamp_message(bundle), bundle.signed_entry_timestamp, where=where)
    except VerificationError:
        raise VerificationError(
            "the Rekor bundle's SignedEntryTimestamp does not verify with the Rekor key", where=where
        ) from None


def _check_body(bundle: RekorBundle, envelope: DsseEnvelope, blob: bytes, signer_pem: bytes, where: str) -> str:
    try:
        body: object = jsonbounded.loads(bundle.body, source=where, what="the Rekor entry body")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VerificationError("the Rekor entry body is not JSON", where=where) from None
    kind = body.get("kind") if isinstance(body, dict) else None
    if kind == INTOTO_KIND:
        check_intoto_body(bundle.body, envelope, signer_pem, where, blob=blob)
    elif kind == DSSE_KIND:
        check_dsse_body(bundle.body, envelope, signer_pem, where)
    else:
        raise VerificationError(f"the attestation's log entry is of kind {kind!r}, not intoto or dsse", where=where)
    return str(kind)


def _timestamp_times(
    response: bytes, blob: bytes, envelope: DsseEnvelope, policy: VerificationPolicy, where: str
) -> tuple[list[datetime], str]:
    """The times a ``.att`` layer's RFC 3161 timestamp proves, and what the check found. cosign verifies an
    attestation's timestamp over the layer's bytes (the envelope JSON) and cosign v2 stamped those; cosign
    v3 stamps the DSSE signature (as a bundle's timestamp is): either counts, under the rule a ``.sig``
    layer's follows (:func:`pipeline.cosign.verify.annotation_timestamp_times`)."""
    return annotation_timestamp_times(response, (blob, envelope.signatures[0].sig), policy, where)


def verify_envelope_layer(
    blob: bytes, annotations: dict[str, str], policy: VerificationPolicy, where: str
) -> tuple[DsseEnvelope, VerifiedSignature]:
    """One ``.att`` layer's envelope, signature, certificate and log entry, checked under ``policy``."""
    envelope = parse_envelope_json(blob, where)
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(f"the DSSE payloadType is {envelope.payload_type!r}, not in-toto", where=where)
    if len(envelope.signatures) != 1:
        raise VerificationError(f"the envelope holds {len(envelope.signatures)} signatures, not one", where=where)
    certificate = annotations.get(CERTIFICATE_ANNOTATION)
    leaf = None
    if policy.public_key is not None:
        key: PublicKey = policy.public_key
        signer_pem, signer, issuer = public_key_to_pem(key), "public key", None
    else:
        if not certificate:
            raise VerificationError("the attestation carries no certificate for keyless verification", where=where)
        leaf = load_certificates(certificate.encode(), where)[0]
        leaf_key = leaf.public_key()
        if not isinstance(leaf_key, PublicKey):
            raise VerificationError("the certificate's key type is not supported", where=where)
        key, signer_pem = leaf_key, certificate.encode()
        sans, issuer = certificate_identity(leaf)
        signer = ", ".join(sans) or "(no identity)"
    try:
        verify_signature(key, dsse_pae(envelope.payload_type, envelope.payload), envelope.signatures[0].sig,
                         where=where, pure_ed25519=True)  # fmt: skip
    except VerificationError:
        raise VerificationError("the DSSE signature does not verify (the envelope or its payload was changed, "
                                "or another key signed it)", where=where) from None  # fmt: skip
    checks = ["the DSSE signature (over the pre-authentication encoding) verified"]
    integrated_time = log_index = None
    if policy.ignore_tlog:
        checks.append("the transparency log was NOT checked (--insecure-ignore-tlog)")
    else:
        raw = annotations.get(BUNDLE_ANNOTATION)
        if not raw:
            raise VerificationError("no transparency log entry (no Rekor bundle) for the attestation", where=where,
                                    hint="attest with a Rekor upload, or accept the risk with --insecure-ignore-tlog")
        bundle = parse_rekor_bundle(raw, f"{where} bundle")
        _verify_set(bundle, policy, where)
        kind = _check_body(bundle, envelope, blob, signer_pem, where)
        integrated_time, log_index = bundle.integrated_time, bundle.log_index
        checks.append(f"the {kind} log entry (SET verified with a trusted Rekor key) records this envelope and signer")
    times = [] if integrated_time is None else [datetime.fromtimestamp(integrated_time, UTC)]
    stamp = annotations.get(RFC3161_TIMESTAMP_ANNOTATION)
    if stamp:
        stamped, check = _timestamp_times(parse_rfc3161_annotation(stamp, f"{where} timestamp"), blob, envelope,
                                          policy, where)  # fmt: skip
        times += stamped
        checks.append(check)
    if policy.keyless is not None and leaf is not None:
        chain_text = annotations.get(CHAIN_ANNOTATION)
        chain = load_certificates(chain_text.encode(), where) if chain_text else []
        for at in times or [policy.now]:
            certificate_checks = verify_keyless_certificate(leaf, chain, policy.keyless, at, where)
        checks += certificate_checks
    return envelope, VerifiedSignature(signer, issuer, integrated_time, log_index, tuple(checks))


class LegacyAttestationLayout:
    """The ``.att`` tag, for one predicate type (and, to sign, one predicate)."""

    format: Format = "legacy"

    def __init__(
        self,
        registry: SignatureRegistry,
        attestation: Attestation,
        *,
        reads: SignatureReads | None = None,
        confirmations: WriteConfirmations | None = None,
        timestamps: TimestampSource | None = None,
    ) -> None:
        self.registry = registry
        self.attestation = attestation
        self.reads = reads  # the .att manifest a release's look read, handed to its ensure once
        self.confirmations = confirmations
        # a TSA: each new layer carries cosign's rfc3161timestamp annotation, over the layer's bytes (the
        # envelope JSON: what cosign's VerifyRFC3161Timestamp checks for an attestation, which has no
        # detached signature)
        self.timestamps = timestamps

    def _read(self, ref: Reference) -> SignatureManifest | None:
        data = manifest_if_there(self.registry, ref)
        return read_signature_manifest(data, str(ref)) if data is not None else None

    def _holds(self, manifest: SignatureManifest | None, target: SignatureTarget, statement: bytes,
               policy: VerificationPolicy) -> bool:  # fmt: skip
        for layer in manifest.layers if manifest is not None else ():
            if layer.media_type != DSSE_MEDIA_TYPE:
                continue
            where = f"{target.where} attestation layer {layer.index}"
            try:
                blob = self.registry.get_blob(target.repository, layer.digest)
                envelope, _ = verify_envelope_layer(blob, dict(layer.annotations), policy, where)
            except (ReleaseVectorError, ValueError):
                continue
            if self.attestation.matches(envelope.payload, statement):
                return True
        return False

    def is_signed(self, target: SignatureTarget, signer: Signer, log: TransparencyLog | None) -> bool:
        ref = attestation_reference(target.store, target.digest)
        existing = self._read(ref)
        if self.reads is not None:
            self.reads.record(ref, existing)
        return self._holds(existing, target, self.attestation.statement(target), signer.policy(log))

    def ensure(self, target: SignatureTarget, signer: Signer, log: TransparencyLog | None) -> SignStatus:
        ref = attestation_reference(target.store, target.digest)
        statement = self.attestation.statement(target)
        known, existing = self.reads.take(ref) if self.reads is not None else (False, None)
        if not known:
            existing = self._read(ref)
        if self._holds(existing, target, statement, signer.policy(log)):
            return "already signed"
        signature = signer.sign(dsse_pae(IN_TOTO_PAYLOAD_TYPE, statement), pure_ed25519=True)
        envelope = in_toto_envelope(statement, signature.value)
        blob = envelope_json(envelope)
        material = signature.material
        bundle = None
        if log is not None:
            logged = (log.upload_intoto(envelope, blob, material.log_pem) if isinstance(log, IntotoLog)
                      else legacy_bundle(log.upload_dsse(envelope, material.log_pem)))  # fmt: skip
            bundle = bundle_annotation(logged)
        stamped = () if self.timestamps is None else (
            (RFC3161_TIMESTAMP_ANNOTATION, rfc3161_annotation(self.timestamps.timestamp(blob))),)  # fmt: skip
        layer = AttestationLayer(payload=blob, signature_b64="", bundle=bundle,
                                 certificate=material.certificate_annotation, chain=material.chain_annotation,
                                 extra_annotations=stamped,
                                 predicate_type=self.attestation.predicate_type)  # fmt: skip

        def prepare(manifest: SignatureManifest | None) -> Callable[[], object] | None:
            update = append_signature(manifest, layer)
            new_manifest = update.manifest
            if new_manifest is None:
                return None
            upload_blobs(self.registry, target.repository, [b.data for b in update.blobs])
            return lambda: self.registry.put_manifest(target.repository, ref.tag, new_manifest, update.media_type)

        def present(manifest: SignatureManifest | None) -> bool:
            return manifest is not None and find_duplicate(manifest.layers, layer) is not None

        written = write_until_present(existing, lambda: self._read(ref), prepare, present, where=str(ref),
                                      confirmations=self.confirmations,
                                      subject=f"{target.repository}@{target.digest}")  # fmt: skip
        return "signed" if written else "already signed"

    def verify(self, target: SignatureTarget, verifier: Verifier) -> LayoutVerification:
        """Every DSSE layer of the predicate type checked; never raises for a verification problem."""
        ref = attestation_reference(target.store, target.digest)
        try:
            manifest = read_signature_manifest(self.registry.get_manifest(ref).data, str(ref))
        except NotFoundError:
            return LayoutVerification((), (), False, f"{ref} does not exist")
        except ReleaseVectorError as error:
            return LayoutVerification((), (error.one_line(),), True)
        wanted = self.attestation.predicate_type
        layers = [layer for layer in manifest.layers if layer.media_type == DSSE_MEDIA_TYPE]
        if not layers:
            return LayoutVerification((), (), False, f"no attestations in {ref}")
        verified: list[VerifiedAttestation] = []
        failures: list[str] = []
        for layer in layers:
            stated = layer.annotations.get(PREDICATE_TYPE_ANNOTATION)
            if stated is not None and stated != wanted:
                failures.append(f"{ref} layer {layer.index}: an attestation of predicate type {stated}, not {wanted}")
                continue
            try:
                verified.append(self._verify_layer(target, layer, verifier))
            except ReleaseVectorError as error:
                failures.append(f"{ref} layer {layer.index}: {error.message}")
        return LayoutVerification(tuple(verified), tuple(failures), True, "")

    def _verify_layer(self, target: SignatureTarget, layer: LayerRef, verifier: Verifier) -> VerifiedAttestation:
        where = f"{target.where} attestation layer {layer.index}"
        blob = self.registry.get_blob(target.repository, layer.digest)
        if digests.compute(blob) != layer.digest:
            raise VerificationError("the attestation blob does not match its digest", where=where)
        envelope, signature = verify_envelope_layer(blob, dict(layer.annotations), verifier.policy, where)
        check_statement(envelope.payload, target.digest, self.attestation.predicate_type, where)
        return VerifiedAttestation("legacy", envelope.payload, signature, where)

