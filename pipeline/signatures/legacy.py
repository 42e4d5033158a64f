"""cosign's legacy layout: the ``sha256-<hex>.sig`` manifest in the image's repository.

Each signature is one layer: the simple-signing payload naming the digest (and the ``-a``
annotations), the base64 signature, the Rekor bundle when it was logged, and for keyless signatures
the certificate and its chain. Signing appends a layer (existing ones are kept as they were); a layer
whose signature counts as the signer's (:meth:`Signer.policy`) means the image is signed and nothing
is written. Verifying checks every layer, as ``cosign verify``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.cosign.keys import signing_hash
from pipeline.cosign.payload import SimpleSigningPayload, parse_simple_signing_payload, simple_signing_payload
from pipeline.cosign.rekor import bundle_annotation, parse_rekor_bundle
from pipeline.cosign.sigmanifest import (
    BUNDLE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    RFC3161_TIMESTAMP_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    LayerRef,
    SignatureLayer,
    SignatureManifest,
    append_signature,
    find_duplicate,
    read_signature_manifest,
    signature_tag,
)
from pipeline.cosign.timestamp import parse_rfc3161_annotation, rfc3161_annotation
from pipeline.cosign.verify import VerificationPolicy, VerifiedSignature, verify_signed_payload
from pipeline.errors import NotFoundError, ReleaseVectorError, VerificationError, is_unchecked
from pipeline.oci import digest as digests
from pipeline.oci.reference import Reference, parse_reference
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
from pipeline.signatures.target import SignatureTarget

if TYPE_CHECKING:  # signing's side (sign-blob's bundle writers, the signers, the log): not needed to verify
    from pipeline.signatures.blob import TimestampSource
    from pipeline.signatures.signers import Signer
    from pipeline.sigstore.tlog import TransparencyLog


@dataclass(frozen=True)
class VerifiedLayer:
    payload: bytes
    parsed: SimpleSigningPayload
    signature: VerifiedSignature


def signature_reference(image: Reference, digest: str) -> Reference:
    """Where cosign keeps the signatures of ``digest``: tag ``sha256-<hex>.sig`` in the same repository."""
    return image.repo.tag(signature_tag(digest))


def signed_payload(target: SignatureTarget) -> bytes:
    """The payload signed for the target; ``docker_reference`` overrides the repository's name (mirrors)."""
    name = target.docker_reference or target.image.cosign_name
    return simple_signing_payload(name, target.digest, target.annotations or None)


def _layer_verifies(layer: LayerRef, payload: bytes, policy: VerificationPolicy, where: str) -> VerifiedSignature:
    """The layer's signature, certificate and Rekor bundle over ``payload``, checked under ``policy``."""
    signature = layer.signature_b64
    if not signature:
        raise VerificationError("the layer carries no signature", where=where)
    bundle = layer.annotations.get(BUNDLE_ANNOTATION)
    certificate = layer.annotations.get(CERTIFICATE_ANNOTATION)
    chain = layer.annotations.get(CHAIN_ANNOTATION)
    timestamp = layer.annotations.get(RFC3161_TIMESTAMP_ANNOTATION)
    try:
        signature_bytes = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("the signature annotation is not valid base64", where=where) from None
    return verify_signed_payload(
        payload,
        signature_bytes,
        certificate_pem=certificate.encode() if certificate else None,
        chain_pem=chain.encode() if chain else None,
        rekor_bundle=parse_rekor_bundle(bundle, f"{where} bundle") if bundle else None,
        policy=policy,
        where=where,
        rfc3161_timestamp=parse_rfc3161_annotation(timestamp, f"{where} timestamp") if timestamp else None,
    )


def holds_signature(manifest: SignatureManifest, payload: bytes, policy: VerificationPolicy, where: str) -> bool:
    """A layer holding ``payload`` whose signature (certificate, Rekor bundle) verifies under ``policy``."""
    digest = digests.compute(payload)
    for layer in manifest.signature_layers:
        if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE or layer.digest != digest:
            continue
        try:
            _layer_verifies(layer, payload, policy, f"{where} signature layer {layer.index}")
        except (ReleaseVectorError, ValueError):
            continue
        return True
    return False


def _check_annotations(parsed: SimpleSigningPayload, required: dict[str, str], where: str) -> None:
    optional = parsed.optional or {}
    for key, value in required.items():
        if key not in optional:
            raise VerificationError(f"annotation {key} is missing from the signature payload", where=where)
        if str(optional[key]) != value:
            raise VerificationError(
                f"annotation {key} is {optional[key]!r} in the signature payload, not {value!r}", where=where
            )


def _check_reference(parsed: SimpleSigningPayload, image: Reference, where: str) -> None:
    """The payload's docker-reference must name the image's repository (containers/image's matchRepository)."""
    try:
        signed = parse_reference(parsed.docker_reference).repo
    except ReleaseVectorError:
        raise VerificationError(
            f"the payload's docker-reference {parsed.docker_reference!r} is not a valid reference", where=where
        ) from None
    if signed != image.repo:
        raise VerificationError(
            f"the payload names repository {parsed.docker_reference}, not {image.name}", where=where
        )


class LegacyLayout:
    """The ``.sig`` tag. ``reads``: the manifests a release's look read, handed to its signing once."""

    format: Format = "legacy"

    def __init__(
        self,
        registry: SignatureRegistry,
        *,
        reads: SignatureReads | None = None,
        confirmations: WriteConfirmations | None = None,
        timestamps: TimestampSource | None = None,
    ) -> None:
        self.registry = registry
        self.reads = reads
        self.confirmations = confirmations  # None: each write is read back before ensure returns
        self.timestamps = timestamps  # a TSA: each new layer carries cosign's rfc3161timestamp annotation

    def _read(self, sig_ref: Reference) -> SignatureManifest | None:
        data = manifest_if_there(self.registry, sig_ref)  # a 404 means "no signatures yet"
        return read_signature_manifest(data, str(sig_ref)) if data is not None else None

    def is_signed(self, target: SignatureTarget, signer: Signer, log: TransparencyLog | None) -> bool:
        """Read-only; the ``.sig`` manifest read is kept in ``reads`` for the :meth:`ensure` that follows."""
        policy = signer.policy(log)
        sig_ref = signature_reference(target.store, target.digest)
        existing = self._read(sig_ref)
        if self.reads is not None:
            self.reads.record(sig_ref, existing)
        return existing is not None and holds_signature(existing, signed_payload(target), policy, target.where)

    def _timestamp(self, signature: bytes) -> tuple[tuple[str, str], ...]:
        """cosign's ``{"SignedRFC3161Timestamp": <base64 DER TimeStampResp>}`` over the raw signature bytes
        (cosign ``internal/pkg/cosign/tsa``), or nothing without a TSA."""
        if self.timestamps is None:
            return ()
        return ((RFC3161_TIMESTAMP_ANNOTATION, rfc3161_annotation(self.timestamps.timestamp(signature))),)

    def ensure(self, target: SignatureTarget, signer: Signer, log: TransparencyLog | None) -> SignStatus:
        policy = signer.policy(log)
        payload = signed_payload(target)
        sig_ref = signature_reference(target.store, target.digest)
        known, existing = self.reads.take(sig_ref) if self.reads is not None else (False, None)
        if not known:
            existing = self._read(sig_ref)
        if existing is not None and holds_signature(existing, payload, policy, target.where):
            return "already signed"
        signature = signer.sign(payload)
        material = signature.material
        bundle = None
        if log is not None:
            algorithm = signing_hash(material.public_key).name
            digest = hashlib.new(algorithm, payload).hexdigest()
            bundle = bundle_annotation(log.upload(digest, signature.value, material.log_pem, algorithm))
        layer = SignatureLayer(
            payload=payload,
            signature_b64=base64.b64encode(signature.value).decode("ascii"),
            bundle=bundle,
            certificate=material.certificate_annotation,
            chain=material.chain_annotation,
            extra_annotations=self._timestamp(signature.value),
        )

        def prepare(manifest: SignatureManifest | None) -> Callable[[], object] | None:
            update = append_signature(manifest, layer, public_key=material.public_key)
            new_manifest = update.manifest
            if new_manifest is None:
                return None
            upload_blobs(self.registry, target.repository, [blob.data for blob in update.blobs])
            return lambda: self.registry.put_manifest(target.repository, sig_ref.tag, new_manifest, update.media_type)

        def present(manifest: SignatureManifest | None) -> bool:
            return manifest is not None and find_duplicate(manifest.layers, layer) is not None

        written = write_until_present(
            existing,
            lambda: self._read(sig_ref),
            prepare,
            present,
            where=str(sig_ref),
            confirmations=self.confirmations,
            subject=f"{target.repository}@{target.digest}",
        )
        return "signed" if written else "already signed"

    def verify(self, target: SignatureTarget, verifier: Verifier) -> LayoutVerification:
        """Every layer checked; never raises for a verification problem, reports it."""
        sig_ref = signature_reference(target.store, target.digest)
        try:
            manifest = read_signature_manifest(self.registry.get_manifest(sig_ref).data, str(sig_ref))
        except NotFoundError:  # one GET, a 404 meaning "not signed in this layout" (no HEAD first)
            return LayoutVerification((), (), False, f"{sig_ref} does not exist")
        except ReleaseVectorError as error:
            if is_unchecked(error):
                return LayoutVerification((), (), False, "", unchecked=error)
            return LayoutVerification((), (error.one_line(),), True)
        if not manifest.signature_layers:
            return LayoutVerification((), (), False, f"no signatures in {sig_ref}")
        verified: list[VerifiedLayer] = []
        failures: list[str] = []
        hints: list[str] = []
        unchecked: ReleaseVectorError | None = None
        for layer in manifest.signature_layers:
            try:
                verified.append(self._verify_layer(target, layer, verifier))
            except ReleaseVectorError as error:
                if is_unchecked(error):
                    unchecked = unchecked or error
                    continue
                failures.append(error.message)
                if error.hint:
                    hints.append(error.hint)
        return LayoutVerification(tuple(verified), tuple(failures), True, "", tuple(hints), unchecked)

    def _verify_layer(self, target: SignatureTarget, layer: LayerRef, verifier: Verifier) -> VerifiedLayer:
        where = f"{target.where} signature layer {layer.index}"
        payload = self.registry.get_blob(target.repository, layer.digest)
        parsed = parse_simple_signing_payload(payload, where)
        if parsed.manifest_digest != target.digest:
            raise VerificationError(
                f"digest mismatch: the signature is for {parsed.manifest_digest}, not {target.digest}", where=where
            )
        _check_annotations(parsed, dict(verifier.annotations), where)
        if verifier.require_reference:
            _check_reference(parsed, target.image, where)
        layer.to_signature_layer(payload, where)  # the blob is the one the layer names
        return VerifiedLayer(payload, parsed, _layer_verifies(layer, payload, verifier.policy, where))
