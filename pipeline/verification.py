"""Verifying image signatures in their registries, as ``cosign verify`` does, in both formats.

For each image: its digest (from the reference, or one HEAD for a tag), then

* the **legacy** layout: the ``sha256-<hex>.sig`` manifest, and for every signature layer: the blob's
  digest, the payload naming the image's digest, the ``-a`` annotations, the signature under the key
  or a trusted certificate, and the Rekor bundle unless the policy skips the log;
* the **cosign v3** layout (:mod:`pipeline.bundles_oci`): Sigstore bundles attached as OCI referrers
  (referrers API, else the ``sha256-<hex>`` fallback index), each a DSSE envelope over an in-toto
  statement naming the digest (and the ``-a`` annotations), with its ``dsse`` log entry.

An image passes when at least one signature in either format passes (as cosign); every image is
checked, and each failing one carries the reasons of all its signatures. ``--check-reference`` applies
to legacy payloads only: a v3 statement names no repository, only the digest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Protocol

from pipeline.bundles_oci import VerifiedBundle, verify_image_bundles
from pipeline.cosign.payload import SimpleSigningPayload, parse_simple_signing_payload
from pipeline.cosign.rekor import parse_rekor_bundle
from pipeline.cosign.sigmanifest import (
    BUNDLE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    LayerRef,
    read_signature_manifest,
    signature_tag,
)
from pipeline.cosign.verify import VerificationPolicy, VerifiedSignature, verify_signed_payload
from pipeline.errors import NotFoundError, ReleaseVectorError, VerificationError
from pipeline.oci.client import Descriptor, Manifest
from pipeline.oci.reference import Reference, Repository, parse_reference

DEFAULT_CONCURRENCY = 16

Format = Literal["legacy", "v3"]


class VerifyingRegistry(Protocol):
    """The registry reads verification needs (``RegistryClient`` provides them)."""

    def head_manifest(self, ref: Reference) -> Descriptor | None: ...

    def get_manifest(self, ref: Reference) -> Manifest: ...

    def get_blob(self, target: Reference | Repository, digest: str) -> bytes: ...


@dataclass(frozen=True)
class VerifiedLayer:
    payload: bytes
    parsed: SimpleSigningPayload
    signature: VerifiedSignature


@dataclass(frozen=True)
class ImageVerification:
    """The result for one image: verified signatures, or the reasons none verified."""

    reference: str
    digest: str | None
    verified: tuple[VerifiedLayer, ...]  # legacy signatures that verified
    failures: tuple[str, ...]
    bundles: tuple[VerifiedBundle, ...] = ()  # cosign v3 bundles that verified
    found: tuple[Format, ...] = ()  # the formats in which signatures were found (verified or not)
    hints: tuple[str, ...] = ()  # what the user can do about the failures (e.g. the --insecure-* way out)

    @property
    def ok(self) -> bool:
        return bool(self.verified or self.bundles)

    @property
    def formats(self) -> tuple[Format, ...]:
        """The formats of the signatures that verified."""
        legacy: tuple[Format, ...] = ("legacy",) if self.verified else ()
        return legacy + (("v3",) if self.bundles else ())

    def reason(self) -> str:
        return "; ".join(dict.fromkeys(self.failures)) or "no valid signature"


def check_annotations(parsed: SimpleSigningPayload, required: Mapping[str, str], where: str) -> None:
    optional = parsed.optional or {}
    for key, value in required.items():
        if key not in optional:
            raise VerificationError(f"annotation {key} is missing from the signature payload", where=where)
        if str(optional[key]) != value:
            raise VerificationError(
                f"annotation {key} is {optional[key]!r} in the signature payload, not {value!r}", where=where
            )


def check_reference(parsed: SimpleSigningPayload, image: Reference, where: str) -> None:
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


def verify_layer(
    registry: VerifyingRegistry,
    image: Reference,
    digest: str,
    layer: LayerRef,
    policy: VerificationPolicy,
    *,
    annotations: Mapping[str, str],
    require_reference: bool,
) -> VerifiedLayer:
    where = f"{image.name}@{digest} signature layer {layer.index}"
    payload = registry.get_blob(image.repo, layer.digest)
    parsed = parse_simple_signing_payload(payload, where)
    if parsed.manifest_digest != digest:
        raise VerificationError(
            f"digest mismatch: the signature is for {parsed.manifest_digest}, not {digest}", where=where
        )
    check_annotations(parsed, annotations, where)
    if require_reference:
        check_reference(parsed, image, where)
    signature = layer.to_signature_layer(payload, where).signature
    bundle_text = layer.annotations.get(BUNDLE_ANNOTATION)
    rekor_bundle = parse_rekor_bundle(bundle_text, f"{where} bundle") if bundle_text else None
    certificate = layer.annotations.get(CERTIFICATE_ANNOTATION)
    chain = layer.annotations.get(CHAIN_ANNOTATION)
    verified = verify_signed_payload(
        payload,
        signature,
        certificate_pem=certificate.encode() if certificate else None,
        chain_pem=chain.encode() if chain else None,
        rekor_bundle=rekor_bundle,
        policy=policy,
        where=where,
    )
    return VerifiedLayer(payload, parsed, verified)


def verify_image(
    registry: VerifyingRegistry,
    image: Reference,
    policy: VerificationPolicy,
    *,
    annotations: Mapping[str, str] | None = None,
    require_reference: bool = False,
    all_formats: bool = True,
) -> ImageVerification:
    """Check every signature of one image, legacy and v3; never raises for a verification problem, reports it.

    ``all_formats=False`` (one valid signature is enough, as verify-release needs): the cosign v3 bundles
    are looked up only when no legacy signature verified, which saves the referrers requests.
    """
    label = str(image)
    try:
        digest = image.digest
        if digest is None:  # a digest reference needs only the signatures, not the image
            descriptor = registry.head_manifest(image)
            if descriptor is None:
                return ImageVerification(label, None, (), ("image not found",))
            digest = descriptor.digest
    except ReleaseVectorError as error:
        return ImageVerification(label, image.digest, (), (error.one_line(),))
    verified, failures, legacy_found, legacy_missing, hints = _verify_legacy(
        registry, image, digest, policy, annotations or {}, require_reference
    )
    if verified and not all_formats:
        return ImageVerification(label, digest, tuple(verified), tuple(failures), (), ("legacy",))
    v3 = verify_image_bundles(registry, image, digest, policy, annotations=annotations)
    found: tuple[Format, ...] = ("legacy",) if legacy_found else ()
    found += ("v3",) if v3.found else ()
    failures += [f"cosign v3 bundle: {failure}" for failure in v3.failures]
    if not found:
        where = v3.source or "the referrers"
        failures = [f"no signatures found ({legacy_missing}; no cosign v3 signature bundle via {where})"]
    return ImageVerification(
        label, digest, tuple(verified), tuple(failures), v3.verified, found, tuple(dict.fromkeys(hints))
    )


def _verify_legacy(
    registry: VerifyingRegistry,
    image: Reference,
    digest: str,
    policy: VerificationPolicy,
    annotations: Mapping[str, str],
    require_reference: bool,
) -> tuple[list[VerifiedLayer], list[str], bool, str, list[str]]:
    """(verified layers, failures, whether the .sig manifest holds signatures, why none were found, hints)."""
    try:
        sig_ref = image.repo.tag(signature_tag(digest))
        manifest = read_signature_manifest(registry.get_manifest(sig_ref).data, str(sig_ref))
    except NotFoundError:  # one GET, a 404 meaning "not signed in this layout" (no HEAD first)
        return [], [], False, f"{sig_ref} does not exist", []
    except ReleaseVectorError as error:
        return [], [error.one_line()], True, "", []
    if not manifest.signature_layers:
        return [], [], False, f"no signatures in {sig_ref}", []
    verified: list[VerifiedLayer] = []
    failures: list[str] = []
    hints: list[str] = []
    for layer in manifest.signature_layers:
        try:
            verified.append(
                verify_layer(
                    registry, image, digest, layer, policy, annotations=annotations, require_reference=require_reference
                )
            )
        except ReleaseVectorError as error:
            failures.append(error.message)
            if error.hint:
                hints.append(error.hint)
    return verified, failures, True, "", hints


def verify_images(
    registry: VerifyingRegistry,
    images: Sequence[Reference],
    policy: VerificationPolicy,
    *,
    annotations: Mapping[str, str] | None = None,
    require_reference: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[ImageVerification]:
    """Every image checked (not just up to the first failure), results in input order."""

    def one(image: Reference) -> ImageVerification:
        return verify_image(registry, image, policy, annotations=annotations, require_reference=require_reference)

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(images) or 1))) as pool:
        return list(pool.map(one, images))
