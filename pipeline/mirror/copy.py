"""The copy engine: a release's items, their signatures and referrers, from a Source to a Sink.

Guarantees, whatever fails in between (so a re-run only completes the work):

- digests are kept: every manifest is written from the exact bytes read, every blob is streamed
  (memory does not grow with its size) and its digest and size are checked on arrival;
- a manifest is written only after everything it points at (an index after its manifests, a
  manifest after its blobs), and a tag only after the manifest it names: a tag never points at a
  manifest whose blobs are missing;
- nothing present is sent: a manifest already at the sink by digest is skipped with its whole tree
  (it could only have been written after its blobs), a blob already there is skipped, a blob the
  sink's registry holds in another repository of this run is mounted instead of uploaded.

Signatures and attestations travel in every layout found at the source: cosign's ``sha256-<hex>.sig``
and ``.att`` tags, the OCI 1.1 referrers fallback index at tag ``sha256-<hex>``, and referrers listed
by the source's referrers API (Sigstore bundles; every artifact with ``include_referrers``). A referrer
read through the API is listed at a sink without that API in the fallback index, as cosign does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from pipeline.errors import ExitCode, NotFoundError, ReleaseVectorError
from pipeline.http import parallel_map
from pipeline.mirror.ends import Sink, Source
from pipeline.mirror.items import Item
from pipeline.mirror.manifests import Ref, blobs, children, is_index
from pipeline.oci import mediatypes
from pipeline.oci.client import Manifest
from pipeline.oci.reference import Repository
from pipeline.signatures.referrer import fallback_index_with, referrers_tag

SIGN_PREDICATE: Final = "https://sigstore.dev/cosign/sign/v1"
PREDICATE_ANNOTATION: Final = "dev.sigstore.bundle.predicateType"
BLOB_ATTEMPTS: Final = 3
"""Whole blob copies tried (a fresh read and a fresh upload each) before the blob's failure is final."""
_RETRIED: Final = frozenset({ExitCode.REGISTRY})
INNER_CONCURRENCY: Final = 4


@dataclass(frozen=True)
class Copied:
    """One object carried: ``kind`` (vector, image, index, chart, role, signature, attestation)."""

    kind: str
    source: str
    target: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "source": self.source, "target": self.target}


@dataclass
class Counts:
    """What a run did, counted as it goes (thread-safe through :meth:`add`)."""

    items: int = 0
    manifests_sent: int = 0
    manifests_skipped: int = 0
    blobs_sent: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    bytes_sent: int = 0
    tags_set: int = 0
    tags_skipped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def to_json(self) -> dict[str, int]:
        return {name: value for name, value in vars(self).items() if not name.startswith("_")}


@dataclass(frozen=True)
class Planned:
    """An item as the source has it: its manifest (None: missing), its signature/attestation tags, the
    referrers to carry, and whether a signature of it was found."""

    item: Item
    manifest: Manifest | None
    tags: tuple[str, ...]
    referrers: tuple[Ref, ...]
    signatures_from: Repository | None = None  # the tags' and referrers' repository when not the item's own

    @property
    def present(self) -> bool:
        return self.manifest is not None

    @property
    def signed(self) -> bool:
        hex_tag = referrers_tag(self.item.digest)
        return (
            f"{hex_tag}.sig" in self.tags
            or hex_tag in self.tags
            or any(r.artifact_type == mediatypes.SIGSTORE_BUNDLE_V03 for r in self.referrers)
        )

    @property
    def kind(self) -> str:
        if (
            self.item.kind == "image"
            and self.manifest is not None
            and is_index(self.manifest.media_type, self.manifest.data)
        ):
            return "index"
        return self.item.kind


def _tag_kind(tag: str) -> str:
    return "attestation" if tag.endswith(".att") else "signature"


def _referrer_kind(ref: Ref) -> str:
    predicate = ref.annotation(PREDICATE_ANNOTATION)
    return "signature" if predicate in (None, SIGN_PREDICATE) else "attestation"


Progress = Callable[[Counts], None]


class Engine:
    """Copies planned items from ``source`` to ``sink``; ``target_of`` maps an original repository to the
    sink's (for a layout: itself). ``concurrency`` items at once (:func:`pipeline.http.parallel_map`)."""

    def __init__(
        self,
        source: Source,
        sink: Sink,
        target_of: Callable[[Repository], Repository],
        *,
        include_referrers: bool = False,
        concurrency: int = 16,
        progress: Progress | None = None,
        signatures: Repository | None = None,
    ) -> None:
        self.source, self.sink, self.target_of = source, sink, target_of
        # --signature-repository: every item's signatures are read there, and land beside the item at the sink
        self.signatures = signatures
        self.include_referrers = include_referrers
        self.concurrency = max(1, concurrency)
        # Within one item, its platform manifests and a manifest's blobs go side by side too (a few at a
        # time: the items already run ``concurrency`` at once); at concurrency 1 everything is serial.
        self._inner = min(self.concurrency, INNER_CONCURRENCY)
        self.counts = Counts()
        self._progress = progress or (lambda counts: None)
        self._known: dict[tuple[str, str], Repository] = {}  # (sink registry, digest) -> a repository with it
        self._lock = threading.Lock()

    # --- the look at the source (read-only) ---------------------------------------------------

    def plan(self, items: Sequence[Item]) -> list[Planned]:
        return parallel_map(self._look, items, concurrency=self.concurrency)

    def _look(self, item: Item) -> Planned:
        repo = item.reference.repo
        manifest = self.source.manifest(repo, item.digest)
        if manifest is None:
            return Planned(item, None, (), ())
        # Signatures of the platform manifests too (``sign --recursive``): their tags share the repository.
        digests = [item.digest]
        if is_index(manifest.media_type, manifest.data):
            digests += [child.digest for child in children(manifest.data, f"{repo.name}@{item.digest}")]
        hex_tags = tuple(referrers_tag(digest) for digest in digests)
        held = self.signatures or repo
        tags = tuple(
            t for t in self.source.tags(held) if any(t == h or t.startswith(f"{h}.") for h in hex_tags)
        )
        listed = self.source.referrers(held, item.digest) or ()
        wanted = tuple(r for r in listed if self.include_referrers or r.artifact_type == mediatypes.SIGSTORE_BUNDLE_V03)
        return Planned(item, manifest, tags, wanted, self.signatures)

    # --- the copy ---------------------------------------------------------------------------------

    def copy(self, planned: Sequence[Planned]) -> list[Copied]:
        present = [p for p in planned if p.present]
        done = parallel_map(self._copy_item, present, concurrency=self.concurrency)
        return [copied for item in done for copied in item]

    def _copy_item(self, planned: Planned) -> list[Copied]:
        assert planned.manifest is not None
        item = planned.item
        source_repo = item.reference.repo
        target_repo = self.target_of(source_repo)
        self._tree(source_repo, target_repo, planned.manifest)
        copied = [Copied(planned.kind, f"{item.reference}", f"{target_repo.name}:{item.reference.tag}@{item.digest}"
                         if item.reference.tag else f"{target_repo.name}@{item.digest}")]  # fmt: skip
        held = planned.signatures_from or source_repo
        for tag in planned.tags:
            manifest = self.source.manifest(held, tag)
            if manifest is None:
                continue  # removed since the look: nothing to carry
            self._tree(held, target_repo, manifest)
            self._tag(target_repo, tag, manifest)
            copied.append(Copied(_tag_kind(tag), f"{held.name}:{tag}@{manifest.digest}",
                                 f"{target_repo.name}:{tag}@{manifest.digest}"))  # fmt: skip
        copied += self._referrers(planned, held, target_repo)
        if item.reference.tag:
            self._tag(target_repo, item.reference.tag, planned.manifest)
        self.counts.add(items=1)
        self._progress(self.counts)
        return copied

    def _referrers(self, planned: Planned, source_repo: Repository, target_repo: Repository) -> list[Copied]:
        copied: list[Copied] = []
        fallback = referrers_tag(planned.item.digest)
        for ref in planned.referrers:
            manifest = self.source.manifest(source_repo, ref.digest)
            if manifest is None:
                continue
            self._tree(source_repo, target_repo, manifest)
            if fallback not in planned.tags and not self.sink.has_referrers_api(target_repo, planned.item.digest):
                self._list_in_fallback(target_repo, fallback, manifest)
            copied.append(Copied(_referrer_kind(ref), f"{source_repo.name}@{ref.digest}",
                                 f"{target_repo.name}@{ref.digest}"))  # fmt: skip
        return copied

    def _list_in_fallback(self, repo: Repository, tag: str, referrer: Manifest) -> None:
        existing = self.sink.manifest(repo, tag)
        merged = fallback_index_with(existing.data if existing else None, referrer.data, f"{repo.name}:{tag}")
        if merged is not None:
            self.sink.put_manifest(repo, tag, merged, mediatypes.OCI_INDEX)
            self.counts.add(tags_set=1)

    def _tree(self, source_repo: Repository, target_repo: Repository, manifest: Manifest) -> None:
        """The manifest and all it points at, children first; a manifest present at the sink ends the descent."""
        if self.sink.manifest_digest(target_repo, manifest.digest) == manifest.digest:
            self.counts.add(manifests_skipped=1)
            return
        where = f"{source_repo.name}@{manifest.digest}"
        if is_index(manifest.media_type, manifest.data):

            def child_tree(child: Ref) -> None:
                found = self.source.manifest(source_repo, child.digest)
                if found is None:
                    raise _missing(f"manifest {child.digest} of the index is missing at the source", where)
                self._tree(source_repo, target_repo, found)

            parallel_map(child_tree, children(manifest.data, where), concurrency=self._inner)
        else:
            parallel_map(lambda blob: self._blob(source_repo, target_repo, blob), blobs(manifest.data, where),
                         concurrency=self._inner)  # fmt: skip
        self.sink.put_manifest(target_repo, manifest.digest, manifest.data, manifest.media_type)
        self.counts.add(manifests_sent=1)

    def _tag(self, repo: Repository, tag: str, manifest: Manifest) -> None:
        if self.sink.manifest_digest(repo, tag) == manifest.digest:
            self.counts.add(tags_skipped=1)
            return
        self.sink.put_manifest(repo, tag, manifest.data, manifest.media_type)
        self.counts.add(tags_set=1)

    def _blob(self, source_repo: Repository, target_repo: Repository, blob: Ref) -> None:
        key = (target_repo.registry, blob.digest)
        with self._lock:
            holder = self._known.get(key)
        if holder == target_repo or self.sink.has_blob(target_repo, blob.digest):
            self.counts.add(blobs_skipped=1)
        elif holder is not None and self.sink.mount_blob(target_repo, blob.digest, holder):
            self.counts.add(blobs_mounted=1)
        else:
            self._send(source_repo, target_repo, blob)
        with self._lock:
            self._known.setdefault(key, target_repo)
        self._progress(self.counts)

    def _send(self, source_repo: Repository, target_repo: Repository, blob: Ref) -> None:
        for attempt in range(1, BLOB_ATTEMPTS + 1):
            try:
                self.sink.put_blob(
                    target_repo, blob.digest, blob.size, self.source.blob(source_repo, blob.digest, blob.size)
                )
                break
            except ReleaseVectorError as error:
                if attempt == BLOB_ATTEMPTS or error.exit_code not in _RETRIED:
                    raise
        self.counts.add(blobs_sent=1, bytes_sent=blob.size)


def _missing(message: str, where: str) -> ReleaseVectorError:
    return NotFoundError(message, where=where)
