"""Signing images: every signer in every layout, for every image, concurrently.

For each image: resolve the reference once to its manifest digest, then
``for signer in signers: for layout in layouts: layout.ensure(target, signer, log)``. A signature that
counts as the signer's already there means nothing is written, so re-runs are idempotent. Images are
independent: one failing does not stop the others, and every outcome is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline import jsonbounded
from pipeline.errors import InvalidInputError, ReleaseVectorError, UsageError
from pipeline.http import DEFAULT_CONCURRENCY, parallel_map
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from pipeline.oci.client import Manifest
from pipeline.oci.reference import Reference, Repository
from pipeline.signatures.layout import Layout, SignStatus, WriteConfirmations
from pipeline.signatures.registry import SignatureRegistry
from pipeline.signatures.signers import Signer
from pipeline.signatures.target import SignatureTarget
from pipeline.sigstore.tlog import TransparencyLog


def is_signed(
    target: SignatureTarget, signers: Sequence[Signer], layouts: Sequence[Layout], log: TransparencyLog | None
) -> bool:
    """Read-only: signed by every signer in every layout (a dry run's signers need only public material)."""
    return all(layout.is_signed(target, signer, log) for signer in signers for layout in layouts)


def sign(
    target: SignatureTarget,
    signers: Sequence[Signer],
    layouts: Sequence[Layout],
    log: TransparencyLog | None,
    *,
    layouts_at_once: int = 1,
) -> SignStatus:
    """Every signer's signature in every layout; "signed" if anything was written.

    ``layouts_at_once`` > 1: a signer's layouts side by side (``--bundle-format both``: the ``.sig`` tag and the
    referrer touch no common manifest, so neither waits for the other's round trips); every layout is then
    attempted, and the first failure (in layout order) raised once all have ended."""
    if not signers:
        raise UsageError("signing needs a key or keyless signing")
    statuses: list[SignStatus] = []
    for signer in signers:
        def ensure(layout: Layout, signer: Signer = signer) -> SignStatus:
            return layout.ensure(target, signer, log)

        statuses += parallel_map(ensure, layouts, concurrency=max(1, layouts_at_once))
    return "signed" if "signed" in statuses else "already signed"


@dataclass(frozen=True)
class SignOutcome:
    """What happened to one image: ``reference`` as given, the digest signed, and the status."""

    reference: str
    repository: str
    digest: str | None
    status: SignStatus
    error: ReleaseVectorError | None = None

    @property
    def pinned(self) -> str:
        """``repository@digest``: exactly what was signed."""
        return f"{self.repository}@{self.digest}" if self.digest else self.reference

    def to_json(self) -> dict[str, object]:
        return {
            "reference": self.reference,
            "pinned": self.pinned,
            "digest": self.digest,
            "status": self.status,
            "error": self.error.one_line() if self.error else None,
        }


def index_children(manifest: Manifest, where: str) -> list[str]:
    """The digests of the manifests an image index lists (its platform images)."""
    try:
        document = jsonbounded.loads(manifest.data, source=where, what="the image index")
        children = [entry["digest"] for entry in document["manifests"]]
    except (ValueError, KeyError, TypeError):
        raise InvalidInputError("the image index is malformed (no manifests[].digest)", where=where) from None
    for child in children:
        if not isinstance(child, str) or not digests.is_valid(child):
            raise InvalidInputError(f"the image index lists an invalid digest {child!r}", where=where)
    return list(dict.fromkeys(children))


@dataclass(frozen=True)
class _Resolved:
    label: str
    image: Reference
    digest: str


def _resolve(registry: SignatureRegistry, image: Reference, recursive: bool) -> list[_Resolved]:
    """The image's digest (what gets signed) and, with ``recursive`` on an index, its children's."""
    manifest = registry.get_manifest(image)
    resolved = [_Resolved(str(image), image, manifest.digest)]
    if recursive and manifest.media_type in mediatypes.INDEXES:
        for child in index_children(manifest, str(image)):
            resolved.append(_Resolved(f"{image.name}@{child}", image.repo.digest(child), child))
    return resolved


def sign_images(
    registry: SignatureRegistry,
    images: Sequence[Reference],
    signers: Sequence[Signer],
    layouts: Sequence[Layout],
    *,
    log: TransparencyLog | None = None,
    annotations: dict[str, str] | None = None,
    recursive: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_progress: Callable[[SignOutcome], None] | None = None,
    confirmations: WriteConfirmations | None = None,
    signatures: Repository | None = None,
) -> list[SignOutcome]:
    """Sign every image (and with ``recursive`` every platform manifest of an index), concurrently.

    Two phases: resolve every reference once to its digest, then sign each unique repository+digest
    once (two references to the same image must not race to append to the same ``.sig`` manifest).
    ``confirmations``: the one the layouts were built with; settled here, after the last signature.
    The result lists one outcome per reference and per child manifest, in input order. ``signatures``: the
    repository the signatures go to (``--signature-repository``; None: each image's own).
    """
    if not signers:
        raise UsageError("signing needs a key or keyless signing")
    notes = dict(annotations or {})
    unique = list(dict.fromkeys(images))

    def resolve_one(image: Reference) -> list[_Resolved] | SignOutcome:
        try:
            return _resolve(registry, image, recursive)
        except ReleaseVectorError as error:
            outcome = SignOutcome(str(image), image.name, image.digest, "failed", error)
            if on_progress is not None:
                on_progress(outcome)
            return outcome

    resolved = parallel_map(resolve_one, unique, concurrency=concurrency)
    by_digest: dict[tuple[Repository, str], _Resolved] = {}
    for item in (r for group in resolved if not isinstance(group, SignOutcome) for r in group):
        by_digest.setdefault((item.image.repo, item.digest), item)

    def sign_one(item: _Resolved) -> SignStatus | ReleaseVectorError:
        try:
            target = SignatureTarget(item.image, item.digest, notes, signatures=signatures)
            result: SignStatus | ReleaseVectorError = sign(target, signers, layouts, log)
        except ReleaseVectorError as error:
            result = error
        if on_progress is not None:
            on_progress(_outcome(item, result))
        return result

    statuses = parallel_map(sign_one, list(by_digest.values()), concurrency=concurrency)
    signed = dict(zip(by_digest, statuses, strict=True))
    if confirmations is not None:  # the layouts' writes, read back once at the end (see WriteConfirmations)
        lost = dict(confirmations.settle(concurrency))
        for key, item in by_digest.items():
            error = lost.get(f"{signatures or item.image.repo}@{item.digest}")
            if error is not None:
                signed[key] = error
    outcomes: list[SignOutcome] = []
    for group in resolved:
        if isinstance(group, SignOutcome):
            outcomes.append(group)
            continue
        outcomes.extend(_outcome(item, signed[(item.image.repo, item.digest)]) for item in group)
    return outcomes


def _outcome(item: _Resolved, result: SignStatus | ReleaseVectorError) -> SignOutcome:
    if isinstance(result, ReleaseVectorError):
        return SignOutcome(item.label, item.image.name, item.digest, "failed", result)
    return SignOutcome(item.label, item.image.name, item.digest, result)
