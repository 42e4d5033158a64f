"""Assembling a release vector: resolve every image tag of a source to a digest, then render.

The pure parts live in :mod:`pipeline.vector` (validation, rendering) and :mod:`pipeline.oci.mirror`;
this module does the I/O: HEAD requests through anything that has ``head_manifest`` (a
:class:`~pipeline.oci.client.RegistryClient` in production, a fake in tests), and reading the git
revision of a checkout.

Resolution order keeps requests to a minimum while staying concurrent: for each registry one image
goes first (its ``/v2/`` ping and, on a token registry, its token are then cached); then the first
image of every other repository of that registry; then the remaining tags of each repository once
its first one is done (so a repository's pull token is fetched once, not by several threads at the
same time). Every distinct ``repository:tag`` is resolved once, however many entries name it. Every
failure is collected; nothing stops at the first one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

from pipeline.binaries import BinaryFetcher, BinaryResolution, fetch_binaries
from pipeline.errors import ErrorList, RegistryError, ReleaseVectorError, UsageError
from pipeline.http import DEFAULT_CONCURRENCY, parallel_map, parallel_unlocking
from pipeline.oci.client import Descriptor
from pipeline.oci.mirror import Mirrors
from pipeline.oci.reference import Reference, Repository
from pipeline.vector import ImageEntry, Source, VectorMetadata, created_from_epoch, render_vector

"""Images handled at once by every command (``--concurrency``): resolving, signing, verifying."""


class ManifestHeads(Protocol):
    """The one registry operation assembling needs."""

    def head_manifest(self, ref: Reference) -> Descriptor | None: ...


@dataclass(frozen=True)
class Unresolved:
    """An image that could not be resolved: as the source names it, where it was read, and why."""

    reference: Reference
    read_at: Reference
    error: ReleaseVectorError

    @property
    def reason(self) -> str:
        return self.reason_as("image")

    def reason_as(self, label: str) -> str:
        """Why, naming the entry as what it is (``image``, ``oci artifact``: a chart or role)."""
        mirrored = f" (read at {self.read_at})" if self.read_at != self.reference else ""
        return f"cannot resolve {label} {self.reference}{mirrored}: {' '.join(self.error.message.split())}"


@dataclass(frozen=True)
class Resolution:
    """Digests of the resolved images (keyed by the source's normalised ``repository:tag``), and failures."""

    digests: Mapping[Reference, str] = field(default_factory=dict)
    unresolved: tuple[Unresolved, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.unresolved

    def failed_entries(self, source: Source) -> list[tuple[ImageEntry, Unresolved]]:
        """Every entry of ``source`` whose image failed, in document order (with the failure)."""
        failures = {failure.reference: failure for failure in self.unresolved}
        return [(entry, failures[entry.reference]) for entry in source.oci_entries if entry.reference in failures]


def _schedule(targets: Mapping[Reference, Reference]) -> tuple[list[Reference], dict[Reference, list[Reference]]]:
    """The images to start with, and what each image's completion unlocks (see the module notes)."""
    by_registry: dict[str, dict[Repository, list[Reference]]] = {}
    for ref, target in targets.items():
        by_registry.setdefault(target.registry, {}).setdefault(target.repo, []).append(ref)
    first: list[Reference] = []
    unlocks: dict[Reference, list[Reference]] = {}
    for repos in by_registry.values():
        groups = list(repos.values())
        lead = groups[0][0]
        first.append(lead)
        unlocks[lead] = groups[0][1:] + [group[0] for group in groups[1:]]
        for group in groups[1:]:
            unlocks[group[0]] = group[1:]
    return first, unlocks


def resolve_images(
    client: ManifestHeads,
    references: Sequence[Reference],
    *,
    mirrors: Mirrors | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_resolved: Callable[[Reference, str], None] | None = None,
) -> Resolution:
    """HEAD every distinct reference (read at its mirror, if one applies) and collect digests and failures.

    ``on_resolved`` is called (from the calling thread) for each image resolved, for progress output.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    mirrors = mirrors or Mirrors()
    unique = list(dict.fromkeys(references))
    targets = {ref: mirrors.apply(ref) for ref in unique}
    first, unlocks = _schedule(targets)

    def head(ref: Reference) -> tuple[Reference, str | None, ReleaseVectorError | None]:
        target = targets[ref]
        try:
            descriptor = client.head_manifest(target)
        except ReleaseVectorError as exc:
            return ref, None, exc
        if descriptor is None:
            return ref, None, RegistryError("manifest not found", where=str(target), hint=mirror_hint(mirrors, ref))
        return ref, descriptor.digest, None

    found: dict[Reference, str] = {}
    failed: dict[Reference, ReleaseVectorError] = {}

    def arrived(ref: Reference, outcome: tuple[Reference, str | None, ReleaseVectorError | None]) -> None:
        _, digest, error = outcome
        if digest is not None:
            found[ref] = digest
            if on_resolved is not None:
                on_resolved(ref, digest)
        elif error is not None:
            failed[ref] = error

    parallel_unlocking(head, first, unlocks, concurrency=concurrency, on_result=arrived)
    return Resolution(
        digests={ref: found[ref] for ref in unique if ref in found},
        unresolved=tuple(Unresolved(ref, targets[ref], failed[ref]) for ref in unique if ref in failed),
    )


def mirror_hint(mirrors: Mirrors, ref: Reference) -> str | None:
    """For an image not found where no mirror rule sent it, while rules exist for other hosts: the rule it lacks."""
    if not mirrors or mirrors.rule_for(ref.repo) is not None:
        return None
    sources = ", ".join(sorted({rule.source for rule in mirrors.rules}))
    return (f"no --registry-mirror rule covers {ref.registry} (rules for: {sources}); if it is mirrored too, add"
            f" {ref.registry}=MIRROR/{ref.registry}")  # fmt: skip


def resolve_source(
    client: ManifestHeads,
    source: Source,
    *,
    mirrors: Mirrors | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_resolved: Callable[[Reference, str], None] | None = None,
) -> Resolution:
    """:func:`resolve_images` over every image of ``source``."""
    return resolve_images(
        client, source.references(), mirrors=mirrors, concurrency=concurrency, on_resolved=on_resolved
    )


def assemble(
    source: Source, resolution: Resolution, metadata: VectorMetadata, binaries: BinaryResolution | None = None
) -> bytes:
    """The vector's bytes (see :func:`pipeline.vector.render_vector`); only for a complete resolution.
    ``binaries``: the digests of the binaries fetched (None: none pinned, ``--no-binaries``)."""
    if not resolution.ok or (binaries is not None and not binaries.ok):
        raise ValueError("assemble needs every image resolved (or an empty resolution for --no-resolve)")
    return render_vector(source, resolution.digests, metadata, binaries.digests if binaries is not None else None)


def resolve_binaries(
    fetcher: BinaryFetcher, source: Source, *, concurrency: int = DEFAULT_CONCURRENCY
) -> BinaryResolution:
    """Every binary URL of ``source`` fetched once and hashed (see :mod:`pipeline.binaries`)."""
    wanted = [binary.url for binary in source.binaries if binary.digest is None]  # a source's own pins are kept
    return fetch_binaries(fetcher, wanted, concurrency=concurrency)


def binary_errors(source: Source, binaries: BinaryResolution) -> list[ReleaseVectorError]:
    """Every binary that could not be fetched, as an error naming its YAML line (its own exit code)."""
    errors: list[ReleaseVectorError] = []
    for binary in source.binaries:
        failure = binaries.failures.get(binary.url)
        if failure is None:
            continue
        fetched_at = f" (read at {failure.where})" if failure.where and failure.where != binary.url else ""
        error = ReleaseVectorError(
            f"cannot fetch binary {binary.url}{fetched_at}: {' '.join(failure.message.split())}",
            where=f"{source.where}:{binary.line}",
            hint=failure.hint,
        )
        error.exit_code = failure.exit_code
        errors.append(error)
    return errors



def vector_metadata(
    source: Source,
    source_path: Path,
    version: str,
    revision: str | None,
    *,
    source_date_epoch: str | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> VectorMetadata:
    """Version, git revision (``--git-revision`` or the checkout's HEAD), source hash, and ``created`` from
    ``source_date_epoch`` (the caller's SOURCE_DATE_EPOCH; the core does not read the environment)."""
    if revision is None:
        found = git_revision(source_path.resolve())
        revision = found.hexsha
        if found.dirty and on_warning is not None:
            on_warning(f"warning: the git checkout has uncommitted changes; recording HEAD {revision}")
    epoch = (source_date_epoch or "").strip()
    return VectorMetadata(
        version=version,
        git_revision=revision.strip().lower(),
        source_sha256=source.sha256,
        created=created_from_epoch(epoch) if epoch else None,
    )


@dataclass(frozen=True)
class BuiltVector:
    source: Source
    metadata: VectorMetadata
    vector: bytes


def unresolved_error(source: Source, resolution: Resolution, binaries: BinaryResolution | None = None) -> ErrorList:
    """Every image (and binary) that could not be resolved (fetched), at once: an ErrorList naming each YAML line."""
    errors: list[ReleaseVectorError] = []
    for image, failure in resolution.failed_entries(source):
        where = f"{source.where}:{image.line}"
        error = ReleaseVectorError(failure.reason_as(image.label), where=where, hint=failure.error.hint)
        error.exit_code = failure.error.exit_code
        errors.append(error)
    total = len(source.references())
    what = "images" if not source.artifacts else "images and oci artifacts"
    summary = f"{len(resolution.unresolved)} of {total} {what} could not be resolved"
    if binaries is not None and not binaries.ok:
        errors += binary_errors(source, binaries)
        count = len(binaries.failures) + len(binaries.digests)
        fetched = f"{len(binaries.failures)} of {count} binaries could not be fetched"
        summary = fetched if resolution.ok else f"{summary}; {fetched}"
    return ErrorList(errors, summary)


def build_vector(
    client: ManifestHeads,
    source: Source,
    source_path: Path,
    version: str,
    revision: str | None,
    mirrors: Mirrors,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    source_date_epoch: str | None = None,
    on_warning: Callable[[str], None] | None = None,
    binaries: BinaryFetcher | None = None,
) -> BuiltVector:
    """Assemble as ``assemble`` does, for callers that go on with the vector (``release``), through
    ``client`` (the release's own registry client). ``source`` is the definition loaded from ``source_path``.

    Every image that cannot be resolved is reported at once (an ErrorList naming each YAML line).
    """
    metadata = vector_metadata(
        source, source_path, version, revision, source_date_epoch=source_date_epoch, on_warning=on_warning
    )
    fetcher = binaries

    def images() -> Resolution:
        return resolve_source(client, source, mirrors=mirrors, concurrency=concurrency)

    def fetch() -> BinaryResolution | None:
        if fetcher is None or not source.binaries:
            return None
        return resolve_binaries(fetcher, source, concurrency=concurrency)

    # The images' HEADs and the binaries' downloads side by side: different hosts, and a download is long.
    both = parallel_map(lambda work: work(), [images, fetch], concurrency=2)
    resolution, fetched = cast(Resolution, both[0]), cast(BinaryResolution | None, both[1])
    if not resolution.ok or (fetched is not None and not fetched.ok):
        raise unresolved_error(source, resolution, fetched)
    return BuiltVector(source, metadata, assemble(source, resolution, metadata, fetched))

# --- git ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitRevision:
    """The commit checked out (full hex id) and whether the working tree has uncommitted changes."""

    hexsha: str
    dirty: bool


def git_revision(start: Path) -> GitRevision:
    """The HEAD commit of the git checkout containing ``start`` (GitPython)."""
    hint = "run inside the release's git checkout, or pass --git-revision REV"
    try:
        import git  # GitPython; imported here: it needs a git executable when imported
    except ImportError as exc:
        raise UsageError(f"cannot read the git revision: {' '.join(str(exc).split())[:200]}", hint=hint) from None
    directory = start if start.is_dir() else start.parent
    try:
        repo = git.Repo(directory if str(directory) else Path(), search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError("not inside a git checkout", where=str(directory), hint=hint) from None
    try:
        with repo:
            hexsha = repo.head.commit.hexsha
            dirty = repo.is_dirty(untracked_files=False)
    except ValueError:
        raise UsageError("the git checkout has no commit yet", where=str(repo.working_dir), hint=hint) from None
    except git.GitError as exc:
        raise UsageError(
            f"cannot read the git revision: {' '.join(str(exc).split())[:200]}", where=str(directory), hint=hint
        ) from None
    return GitRevision(hexsha, dirty)
