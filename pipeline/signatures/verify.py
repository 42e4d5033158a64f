"""Verifying image signatures in their registries, as ``cosign verify`` does, in every layout.

For each image: its digest (from the reference, or one HEAD for a tag), then each layout in turn
(:func:`~pipeline.signatures.formats.all_layouts`: the legacy ``.sig`` tag, then the cosign v3 bundle
referrers) checks every signature it holds with the :class:`~pipeline.signatures.layout.Verifier`.
An image passes when at least one signature in any layout passes (as cosign); every image is checked,
and each failing one carries the reasons of all its signatures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.cosign.verify import VerificationPolicy
from pipeline.errors import ReleaseVectorError, is_unchecked
from pipeline.http import DEFAULT_CONCURRENCY, parallel_map
from pipeline.oci.reference import Reference, Repository
from pipeline.signatures.formats import all_layouts
from pipeline.signatures.layout import Format, LayoutVerification, Verifier
from pipeline.signatures.legacy import VerifiedLayer
from pipeline.signatures.referrer import VerifiedBundle
from pipeline.signatures.registry import SignatureRegistry
from pipeline.signatures.target import SignatureTarget


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
    looked: tuple[Format, ...] = ()  # the formats looked in (all_formats=False stops after the first valid one)
    unchecked: ReleaseVectorError | None = None  # not ok, and no signature found wrong: this kept it from a verdict

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


def verify_image(
    registry: SignatureRegistry,
    image: Reference,
    policy: VerificationPolicy,
    *,
    annotations: Mapping[str, str] | None = None,
    require_reference: bool = False,
    all_formats: bool = True,
    signatures: Repository | None = None,
) -> ImageVerification:
    """Check every signature of one image in every layout; never raises for a verification problem.

    ``signatures``: the repository holding the image's signatures (``--signature-repository``; None: its own).

    ``all_formats=False`` (one valid signature is enough, as verify-release needs): the layouts after the
    first one that verified are not looked at, which saves the referrers requests.
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
        unchecked = error if is_unchecked(error) else None
        return ImageVerification(label, image.digest, (), (error.one_line(),), unchecked=unchecked)
    target = SignatureTarget(image, digest, signatures=signatures)
    verifier = Verifier(policy, dict(annotations or {}), require_reference)
    results: dict[Format, LayoutVerification] = {}
    for layout in all_layouts(registry):
        results[layout.format] = result = layout.verify(target, verifier)
        if result.verified and not all_formats:
            break
    failures = [failure for result in results.values() for failure in result.failures]
    found = tuple(fmt for fmt, result in results.items() if result.found)
    verified = any(result.verified for result in results.values())
    # A signature found wrong is a verdict; otherwise an outage in any layout leaves the image unchecked.
    unchecked = next((r.unchecked for r in results.values() if r.unchecked), None) if not failures else None
    if unchecked is not None and not verified:
        failures = [unchecked.one_line()]
    elif not found and not verified:
        failures = [f"no signatures found ({'; '.join(r.missing for r in results.values() if r.missing)})"]
    legacy, v3 = results.get("legacy"), results.get("v3")
    return ImageVerification(
        label,
        digest,
        tuple(v for v in (legacy.verified if legacy else ()) if isinstance(v, VerifiedLayer)),
        tuple(failures),
        tuple(v for v in (v3.verified if v3 else ()) if isinstance(v, VerifiedBundle)),
        found,
        tuple(dict.fromkeys(hint for result in results.values() for hint in result.hints)),
        tuple(results),
        unchecked if not verified else None,
    )


def verify_images(
    registry: SignatureRegistry,
    images: Sequence[Reference],
    policy: VerificationPolicy,
    *,
    annotations: Mapping[str, str] | None = None,
    require_reference: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_result: Callable[[ImageVerification], None] | None = None,
    signatures: Repository | None = None,
) -> list[ImageVerification]:
    """Every image checked (not just up to the first failure), results in input order; ``on_result`` is
    called as each one is done (progress)."""

    def one(image: Reference) -> ImageVerification:
        result = verify_image(registry, image, policy, annotations=annotations, require_reference=require_reference,
                              signatures=signatures)  # fmt: skip
        if on_result is not None:
            on_result(result)
        return result

    return parallel_map(one, images, concurrency=concurrency)
