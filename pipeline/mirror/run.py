"""mirror, export, import and the offline verification of an export, as core functions: a client (or a
layout), the vector's reference, settings in; a :class:`CarryResult` out. Nothing here prints or exits.

Each command runs the same three steps: read the vector (its signature verified first when a policy is
given) and list its items (:func:`pipeline.mirror.items.release_items`); look at each item at the source
and refuse (exit 10) if one is missing or unsigned, unless ``allow_unsigned``; copy with the engine.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, cast

from pipeline import jsonbounded
from pipeline.cosign.verify import VerificationPolicy
from pipeline.errors import ErrorList, FileConflictError, LayoutError, ReleaseVectorError, UnsignedItemError
from pipeline.http import DEFAULT_CONCURRENCY, parallel_map
from pipeline.mirror.copy import Copied, Counts, Engine, Planned, Progress
from pipeline.mirror.ends import RegistryEnd, Sink, Source
from pipeline.mirror.items import Item, release_items
from pipeline.mirror.layout import LayoutSink, LayoutSource, check_layout, extract_tar, write_tar
from pipeline.mirror.names import Destination, mirrors_for, target_repository
from pipeline.oci.client import RegistryClient
from pipeline.oci.mirror import Mirrors
from pipeline.oci.reference import Reference, Repository, parse_reference
from pipeline.provenance import ProvenanceExpectations
from pipeline.publish import pull_vector
from pipeline.release import ReleaseVerification, verify_release
from pipeline.signatures.registry import SignatureRegistry
from pipeline.signatures.verify import verify_image
from pipeline.vector import read_vector

RECORD_FILE: Final = "release-vector.json"
KEY_FILE: Final = "cosign.pub"
TRUSTED_ROOT_FILE: Final = "trusted_root.json"


@dataclass(frozen=True)
class CarrySettings:
    include_referrers: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    dry_run: bool = False
    allow_unsigned: bool = False
    policy: VerificationPolicy | None = None
    source_mirrors: Mirrors = field(default_factory=Mirrors)
    """Where the source's images are read (``--registry-mirror``); unused for a layout source."""
    signatures: Repository | None = None
    """Where the source's signatures are (``--signature-repository``); the sink gets them beside each item."""


@dataclass(frozen=True)
class CarryResult:
    reference: str
    digest: str
    destination: str
    planned: tuple[Planned, ...]
    copied: tuple[Copied, ...]
    registry_mirrors: tuple[str, ...]
    counts: Counts
    skipped: tuple[str, ...]
    seconds: float
    target_of: Callable[[Repository], Repository]

    def to_json(self) -> dict[str, object]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "destination": self.destination,
            "copied": [c.to_json() for c in self.copied],
            "registry_mirrors": list(self.registry_mirrors),
            "counts": self.counts.to_json(),
            "skipped": list(self.skipped),
            "seconds": round(self.seconds, 3),
        }

    def plan_json(self) -> list[dict[str, object]]:
        return [
            {
                "kind": p.kind,
                "source": str(p.item.reference),
                "target": f"{self.target_of(p.item.reference.repo).name}@{p.item.digest}",
                "present": p.present,
                "signed": p.signed,
                "signature_tags": list(p.tags),
                "referrers": [r.digest for r in p.referrers],
            }
            for p in self.planned
        ]


@dataclass(frozen=True)
class _Look:
    reference: Reference
    digest: str
    planned: tuple[Planned, ...]
    skipped: tuple[str, ...]


def _look(
    registry: SignatureRegistry, engine: Engine, ref: Reference, settings: CarrySettings,
    read_at: Callable[[Reference], Reference],
) -> _Look:  # fmt: skip
    """Read the vector (verified with a policy), look at every item, refuse missing or unsigned ones."""
    pulled = pull_vector(registry, ref, settings.policy, all_formats=False,  # type: ignore[arg-type]
                         signatures=settings.signatures)  # fmt: skip
    vector = read_vector(pulled.content, f"release vector {pulled.pinned}")
    pinned = Reference(ref.registry, ref.repository, tag=ref.tag, digest=pulled.digest)
    planned = tuple(engine.plan(release_items(pinned, vector)))
    found_problems = parallel_map(lambda found: _problem(registry, found, settings, read_at), planned,
                                  concurrency=settings.concurrency)  # fmt: skip
    problems: list[ReleaseVectorError] = [
        UnsignedItemError(problem, where=str(found.item.reference))
        for found, problem in zip(planned, found_problems, strict=True)
        if problem is not None
    ]
    if problems and not settings.allow_unsigned:
        raise ErrorList(problems, f"{len(problems)} item(s) missing or unsigned at the source (--allow-unsigned "
                                  "carries the rest)")  # fmt: skip
    return _Look(ref, pulled.digest, planned, tuple(e.one_line() for e in problems))


def _problem(
    registry: SignatureRegistry, found: Planned, settings: CarrySettings, read_at: Callable[[Reference], Reference]
) -> str | None:
    item = found.item
    if not found.present:
        return f"{item.kind} missing at the source"
    if settings.policy is None:
        return None if found.signed else f"{item.kind} has no signature at the source"
    if item.kind == "vector":
        return None  # verified as it was read
    result = verify_image(registry, read_at(item.reference.repo.digest(item.digest)), settings.policy,
                          all_formats=False, signatures=settings.signatures)  # fmt: skip
    return None if result.ok else f"{item.kind} signature does not verify: {result.reason()}"


def _carry(
    source: Source, registry: SignatureRegistry, sink: Sink, ref: Reference, settings: CarrySettings,
    target_of: Callable[[Repository], Repository], destination: str, progress: Progress | None,
    read_at: Callable[[Reference], Reference] = lambda r: r,
) -> tuple[CarryResult, _Look]:  # fmt: skip
    started = time.monotonic()
    engine = Engine(source, sink, target_of, include_referrers=settings.include_referrers,
                    concurrency=settings.concurrency, progress=progress, signatures=settings.signatures)  # fmt: skip
    look = _look(registry, engine, ref, settings, read_at)
    copied = () if settings.dry_run else tuple(engine.copy(look.planned))
    result = CarryResult(str(ref), look.digest, destination, look.planned, copied, (), engine.counts, look.skipped,
                         time.monotonic() - started, target_of)  # fmt: skip
    return result, look


def _registries(planned: tuple[Planned, ...]) -> set[str]:
    return {p.item.reference.registry for p in planned}


def mirror_release(
    client: RegistryClient, ref: Reference, destination: Destination, settings: CarrySettings,
    progress: Progress | None = None,
) -> CarryResult:  # fmt: skip
    """Copy the release at ``ref`` (its items read through ``settings.source_mirrors``) under ``destination``.

    A blob in transit holds two of the client's pooled connections (the GET it streams from and the PUT it
    streams into): more transfers than half the pool would wait on each other for a socket until the pool
    times out, so ``concurrency`` is capped there."""
    settings = replace(settings, concurrency=max(1, min(settings.concurrency, client.options.max_connections // 2)))
    source = RegistryEnd(client, settings.source_mirrors.apply_repository)

    def target_of(repo: Repository) -> Repository:
        return target_repository(destination, repo)

    result, look = _carry(source, client, RegistryEnd(client), ref, settings, target_of, str(destination),
                          progress, settings.source_mirrors.apply)  # fmt: skip
    rules = tuple(str(rule) for rule in mirrors_for(destination, _registries(look.planned)).rules)
    return _with_rules(result, rules)


def _with_rules(result: CarryResult, rules: tuple[str, ...]) -> CarryResult:
    return CarryResult(result.reference, result.digest, result.destination, result.planned, result.copied, rules,
                       result.counts, result.skipped, result.seconds, result.target_of)  # fmt: skip


def _partial_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial-{os.getpid()}")


def export_release(
    client: RegistryClient, ref: Reference, target: Path, settings: CarrySettings, *,
    files: dict[str, bytes], progress: Progress | None = None,
) -> CarryResult:  # fmt: skip
    """The release into an OCI layout at ``target`` (a directory, or a tar when it ends in ``.tar``),
    written under a temporary name and renamed into place: never half-written under its name."""
    if target.exists():
        raise FileConflictError("already exists; export to a new name", where=str(target))
    as_tar = target.suffix == ".tar"
    work = _partial_name(target.with_suffix("") if as_tar else target)
    source = RegistryEnd(client, settings.source_mirrors.apply_repository)
    try:
        sink = LayoutSink(work)
        result, look = _carry(source, client, sink, ref, settings, lambda r: r, str(target), progress,
                              settings.source_mirrors.apply)  # fmt: skip
        if settings.dry_run:
            return result
        record = {
            "reference": str(ref),
            "digest": look.digest,
            "items": [{"kind": p.kind, "reference": str(p.item.reference)} for p in look.planned if p.present],
            "files": sorted(files),
        }
        sink.finish({**files, RECORD_FILE: json.dumps(record, indent=2).encode() + b"\n"})
        if as_tar:
            partial_tar = _partial_name(target)
            write_tar(work, partial_tar)
            os.replace(partial_tar, target)
        else:
            os.replace(work, target)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if as_tar:
            _partial_name(target).unlink(missing_ok=True)


@contextmanager
def open_layout(path: Path) -> Iterator[tuple[LayoutSource, Reference]]:
    """A layout made by ``export`` (a directory or its tar, unpacked safely into a temporary directory),
    every blob checked against its digest first, and the vector's reference its record names."""
    if path.is_file():
        with tempfile.TemporaryDirectory(prefix="release-vector-layout-") as scratch:
            extract_tar(path, Path(scratch))
            yield _opened(Path(scratch), str(path))
        return
    if not path.is_dir():
        raise LayoutError("no such directory or tar file", where=str(path))
    yield _opened(path, str(path))


def _opened(root: Path, where: str) -> tuple[LayoutSource, Reference]:
    check_layout(root)
    layout = LayoutSource(root)
    record_path = root / RECORD_FILE
    if not record_path.is_file():
        raise LayoutError(f"no {RECORD_FILE}: not a release exported by release-vector", where=where)
    try:
        record = jsonbounded.loads(record_path.read_bytes()[: 1024 * 1024], source=where, what=RECORD_FILE)
        reference = parse_reference(str(record["reference"]))
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, ReleaseVectorError):
        raise LayoutError(f"{RECORD_FILE} names no vector reference", where=where) from None
    return layout, reference


def import_release(
    client: RegistryClient, path: Path, destination: Destination, settings: CarrySettings,
    progress: Progress | None = None,
) -> CarryResult:  # fmt: skip
    """An export (directory or tar) into the registry under ``destination``; a bad layout (LayoutError,
    exit 3) is refused before anything is sent."""
    with open_layout(path) as (layout, ref):

        def target_of(repo: Repository) -> Repository:
            return target_repository(destination, repo)

        result, look = _carry(layout, layout, RegistryEnd(client), ref, settings, target_of, str(destination),
                              progress)  # fmt: skip
    rules = tuple(str(rule) for rule in mirrors_for(destination, _registries(look.planned)).rules)
    return _with_rules(result, rules)


def verify_layout(
    path: Path, policy: VerificationPolicy, *, concurrency: int = DEFAULT_CONCURRENCY,
    provenance: ProvenanceExpectations | None = None,
) -> ReleaseVerification:  # fmt: skip
    """``verify-release --oci-layout``: the vector's signature, then every image it pins, all from the
    layout, offline (no registry, no log: the signatures' bundles carry their transparency-log proof); with
    ``provenance``, the vector's provenance attestation the export carries, as the online check reads it."""
    with open_layout(path) as (layout, ref):
        return verify_release(cast(RegistryClient, layout), ref, policy, mirrors=Mirrors(), concurrency=concurrency,
                              provenance=provenance)  # fmt: skip


__all__ = ["CarryResult", "CarrySettings", "Item", "export_release", "import_release", "mirror_release",
           "open_layout", "verify_layout"]  # fmt: skip
