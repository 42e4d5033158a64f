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

The work runs in phases, each one flat across every item (so ``concurrency`` requests are in flight
whatever the shape of the release, rather than one item's chain of manifest → blobs → manifest at a
time): the signature objects' manifests are read; every root is looked up at the sink (HEAD), then the
platform manifests of the absent indexes, level by level; every blob of every absent manifest is sent
(the first repository of a digest uploads it, the others mount it once it is there); manifests are
written bottom-up; referrers are listed in fallback indexes; tags go last (the vector's very last).
A blob that fails spares the rest: every manifest whose tree is whole is still written, then the
first failure is raised.

Signatures and attestations travel in every layout found at the source: cosign's ``sha256-<hex>.sig``
and ``.att`` tags, the OCI 1.1 referrers fallback index at tag ``sha256-<hex>``, and referrers listed
by the source's referrers API (Sigstore bundles; every artifact with ``include_referrers``) — of the
item and, for an index, of each of its platform manifests (``sign --recursive``). A referrer read
through the API is listed at a sink without that API in the fallback index of its subject, as cosign
does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from pipeline.errors import ExitCode, NotFoundError, ReleaseVectorError
from pipeline.http import parallel_map, parallel_unlocking
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
class Referrer:
    """A referrer the source's referrers API lists for ``subject`` (the item, or one of its platform manifests)."""

    subject: str
    ref: Ref

    @property
    def digest(self) -> str:
        return self.ref.digest


@dataclass(frozen=True)
class Planned:
    """An item as the source has it: its manifest (None: missing), its signature/attestation tags (of the
    item and of its platform manifests), the referrers to carry, and whether a signature of it was found."""

    item: Item
    manifest: Manifest | None
    tags: tuple[str, ...]
    referrers: tuple[Referrer, ...]
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
            or any(
                r.subject == self.item.digest and r.ref.artifact_type == mediatypes.SIGSTORE_BUNDLE_V03
                for r in self.referrers
            )
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
_Key = tuple[Repository, str]
"""A manifest or blob at the sink: (target repository, digest)."""


@dataclass(frozen=True)
class _Root:
    """A manifest to carry with its tree: an item, a signature tag's manifest or a referrer."""

    planned: Planned
    source_repo: Repository
    target_repo: Repository
    manifest: Manifest
    tag: str | None  # set last, over the manifest
    copied: Copied
    subject: str | None = None  # a referrer read through the API: listed in its subject's fallback index

    @property
    def key(self) -> _Key:
        return (self.target_repo, self.manifest.digest)


@dataclass(frozen=True)
class _Node:
    source_repo: Repository
    target_repo: Repository
    manifest: Manifest

    @property
    def key(self) -> _Key:
        return (self.target_repo, self.manifest.digest)

    @property
    def where(self) -> str:
        return f"{self.source_repo.name}@{self.manifest.digest}"

    @property
    def index(self) -> bool:
        return is_index(self.manifest.media_type, self.manifest.data)

    def below(self) -> tuple[Ref, ...]:
        return children(self.manifest.data, self.where) if self.index else blobs(self.manifest.data, self.where)


@dataclass(frozen=True)
class _Blob:
    source_repo: Repository
    target_repo: Repository
    ref: Ref


def _raise_first(errors: Iterable[BaseException | None]) -> None:
    for error in errors:
        if error is not None:
            raise error


class Engine:
    """Copies planned items from ``source`` to ``sink``; ``target_of`` maps an original repository to the
    sink's (for a layout: itself). At most ``concurrency`` requests (blob transfers) at once, through
    :mod:`pipeline.http`'s parallel helpers; at concurrency 1 everything is serial."""

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
        # Signatures of the platform manifests too (``sign --recursive``): their tags share the repository,
        # and the referrers API lists each platform manifest's referrers under its own digest.
        subjects = [item.digest]
        if is_index(manifest.media_type, manifest.data):
            subjects += [child.digest for child in children(manifest.data, f"{repo.name}@{item.digest}")]
        hex_tags = tuple(referrers_tag(digest) for digest in subjects)
        held = self.signatures or repo
        tags = tuple(
            t for t in self.source.tags(held) if any(t == h or t.startswith(f"{h}.") for h in hex_tags)
        )
        wanted: list[Referrer] = []
        for subject in dict.fromkeys(subjects):
            for ref in self.source.referrers(held, subject) or ():  # a source without the API: asked once
                if self.include_referrers or ref.artifact_type == mediatypes.SIGSTORE_BUNDLE_V03:
                    wanted.append(Referrer(subject, ref))
        return Planned(item, manifest, tags, tuple(wanted), self.signatures)

    # --- the copy ---------------------------------------------------------------------------------

    def copy(self, planned: Sequence[Planned]) -> list[Copied]:
        present = [p for p in planned if p.present]
        roots = self._roots(present)
        levels, failed = self._trees(roots)
        self._blobs(levels, failed)
        errors = self._write_manifests(levels, failed)
        self._list_referrers([r for r in roots if r.subject is not None and r.key not in failed])
        self._tags(roots, failed)
        self.counts.add(items=sum(1 for r in roots if r.manifest is r.planned.manifest and r.key not in failed))
        self._progress(self.counts)
        _raise_first(failed.values())
        _raise_first(errors)
        return [root.copied for root in roots]

    def _roots(self, present: Sequence[Planned]) -> list[_Root]:
        """Every manifest to carry with its tree, in output order: per item its signature tags, its
        referrers, then the item itself (the signature objects' manifests read side by side)."""
        jobs: list[tuple[Planned, str | Referrer]] = []
        for planned in present:
            jobs += [(planned, tag) for tag in planned.tags]
            jobs += [(planned, referrer) for referrer in planned.referrers]

        def read(job: tuple[Planned, str | Referrer]) -> _Root | None:
            planned, what = job
            # --signature-repository: the signature objects are read there and land beside the item
            source_repo = planned.signatures_from or planned.item.reference.repo
            target_repo = self.target_of(planned.item.reference.repo)
            if isinstance(what, str):
                manifest = self.source.manifest(source_repo, what)
                if manifest is None:
                    return None  # removed since the look: nothing to carry
                copied = Copied(_tag_kind(what), f"{source_repo.name}:{what}@{manifest.digest}",
                                f"{target_repo.name}:{what}@{manifest.digest}")  # fmt: skip
                return _Root(planned, source_repo, target_repo, manifest, what, copied)
            manifest = self.source.manifest(source_repo, what.digest)
            if manifest is None:
                return None
            copied = Copied(_referrer_kind(what.ref), f"{source_repo.name}@{what.digest}",
                            f"{target_repo.name}@{what.digest}")  # fmt: skip
            # the source's own fallback index travels as a tag: the target gets it as it is
            listed = None if referrers_tag(what.subject) in planned.tags else what.subject
            return _Root(planned, source_repo, target_repo, manifest, None, copied, listed)

        found = parallel_map(read, jobs, concurrency=self.concurrency)
        by_job = {id(job): root for job, root in zip(jobs, found, strict=True)}
        roots: list[_Root] = []
        for planned in present:
            roots += [r for job in jobs if job[0] is planned and (r := by_job[id(job)]) is not None]
            item = planned.item
            assert planned.manifest is not None
            source_repo = item.reference.repo
            target_repo = self.target_of(source_repo)
            tag = item.reference.tag
            target = f"{target_repo.name}:{tag}@{item.digest}" if tag else f"{target_repo.name}@{item.digest}"
            roots.append(_Root(planned, source_repo, target_repo, planned.manifest, tag,
                               Copied(planned.kind, str(item.reference), target)))  # fmt: skip
        return roots

    def _trees(self, roots: Sequence[_Root]) -> tuple[list[list[_Node]], dict[_Key, BaseException]]:
        """The manifests absent at the sink, by depth (roots first): a HEAD of every root, then of the
        manifests every absent index lists (read from the source only when absent), level by level."""
        depth: dict[_Key, int] = {}
        nodes: dict[_Key, _Node] = {}
        failed: dict[_Key, BaseException] = {}
        level = list({root.key: _Node(root.source_repo, root.target_repo, root.manifest) for root in roots}.values())
        present = parallel_map(lambda n: self._present(n.target_repo, n.manifest.digest), level,
                               concurrency=self.concurrency)  # fmt: skip
        level = [node for node, there in zip(level, present, strict=True) if not there]
        number = 0
        while level:
            for node in level:
                depth[node.key], nodes[node.key] = number, node
            jobs = list({(n.target_repo, ref.digest): (n, ref) for n in level if n.index for ref in n.below()}.values())
            found = parallel_map(self._child, jobs, concurrency=self.concurrency)
            level = []
            for (parent, ref), child in zip(jobs, found, strict=True):
                if isinstance(child, BaseException):
                    failed[(parent.target_repo, ref.digest)] = child
                elif isinstance(child, _Node) and depth.get(child.key, -1) <= number:
                    level.append(child)  # (a manifest listed at two depths is written at the deeper one)
            number += 1
        levels: list[list[_Node]] = [[] for _ in range(number)]
        for key, node in nodes.items():
            levels[depth[key]].append(node)
        return levels, failed

    def _present(self, repo: Repository, digest: str) -> bool:
        there = self.sink.manifest_digest(repo, digest) == digest
        if there:
            self.counts.add(manifests_skipped=1)
        return there

    def _child(self, job: tuple[_Node, Ref]) -> _Node | BaseException | None:
        parent, ref = job
        if self._present(parent.target_repo, ref.digest):
            return None
        found = self.source.manifest(parent.source_repo, ref.digest)
        if found is None:
            return NotFoundError(f"manifest {ref.digest} of the index is missing at the source", where=parent.where)
        return _Node(parent.source_repo, parent.target_repo, found)

    # --- blobs ------------------------------------------------------------------------------------

    def _blobs(self, levels: Sequence[Sequence[_Node]], failed: dict[_Key, BaseException]) -> None:
        """Every blob of every absent image manifest, ``concurrency`` at a time: the first repository of
        the sink's registry that needs a digest gets it first, the others then mount it from there."""
        wanted: dict[_Key, _Blob] = {}
        for node in (n for level in levels for n in level if not n.index):
            for ref in node.below():
                wanted.setdefault((node.target_repo, ref.digest), _Blob(node.source_repo, node.target_repo, ref))
        first: list[_Blob] = []
        later: dict[_Blob, list[_Blob]] = {}
        leader: dict[tuple[str, str], _Blob] = {}
        for blob in wanted.values():
            lead = leader.setdefault((blob.target_repo.registry, blob.ref.digest), blob)
            if lead is blob:
                first.append(blob)
            else:
                later.setdefault(lead, []).append(blob)
        done = parallel_unlocking(self._blob_or_error, first, later, concurrency=self.concurrency)
        for blob, error in done.items():
            if error is not None:
                failed[(blob.target_repo, blob.ref.digest)] = error

    def _blob_or_error(self, blob: _Blob) -> BaseException | None:
        try:
            self._blob(blob)
        except ReleaseVectorError as error:
            return error
        finally:
            self._progress(self.counts)
        return None

    def _blob(self, blob: _Blob) -> None:
        key = (blob.target_repo.registry, blob.ref.digest)
        with self._lock:
            holder = self._known.get(key)
        # a mount is one request whether or not the blob is there already; a HEAD and an upload are two or more
        if holder is not None and self.sink.mount_blob(blob.target_repo, blob.ref.digest, holder):
            self.counts.add(blobs_mounted=1)
        elif self.sink.has_blob(blob.target_repo, blob.ref.digest):
            self.counts.add(blobs_skipped=1)
        else:
            self._send(blob)
        with self._lock:
            self._known.setdefault(key, blob.target_repo)

    def _send(self, blob: _Blob) -> None:
        for attempt in range(1, BLOB_ATTEMPTS + 1):
            try:
                body = self.source.blob(blob.source_repo, blob.ref.digest, blob.ref.size)
                self.sink.put_blob(blob.target_repo, blob.ref.digest, blob.ref.size, body)
                break
            except ReleaseVectorError as error:
                if attempt == BLOB_ATTEMPTS or error.exit_code not in _RETRIED:
                    raise
        self.counts.add(blobs_sent=1, bytes_sent=blob.ref.size)

    # --- manifests, fallback indexes, tags ----------------------------------------------------------

    def _write_manifests(
        self, levels: Sequence[Sequence[_Node]], failed: dict[_Key, BaseException]
    ) -> list[BaseException | None]:
        """Bottom-up, a level at a time; a manifest whose tree is not whole is left out (marked failed)."""
        errors: list[BaseException | None] = []
        for level in reversed(levels):
            whole = []
            for node in level:
                broken = next((failed[k] for ref in node.below() if (k := (node.target_repo, ref.digest)) in failed),
                              None)  # fmt: skip
                if broken is not None:
                    failed[node.key] = broken
                else:
                    whole.append(node)

            def put(node: _Node) -> BaseException | None:
                try:
                    self.sink.put_manifest(node.target_repo, node.manifest.digest, node.manifest.data,
                                           node.manifest.media_type)  # fmt: skip
                except ReleaseVectorError as error:
                    failed[node.key] = error
                    return error
                self.counts.add(manifests_sent=1)
                return None

            errors += parallel_map(put, whole, concurrency=self.concurrency)
        return errors

    def _list_referrers(self, roots: Sequence[_Root]) -> None:
        """Referrers read through the API, listed in their subject's fallback index at a sink without the
        API: one read and one write per fallback index, however many referrers it gains."""
        groups: dict[tuple[Repository, str], list[_Root]] = {}
        for root in roots:
            assert root.subject is not None
            groups.setdefault((root.target_repo, root.subject), []).append(root)

        def merge(group: tuple[Repository, str]) -> None:
            repo, subject = group
            if self.sink.has_referrers_api(repo, subject):
                return
            tag = referrers_tag(subject)
            existing = self.sink.manifest(repo, tag)
            data = existing.data if existing else None
            changed = False
            for root in groups[group]:
                merged = fallback_index_with(data, root.manifest.data, f"{repo.name}:{tag}")
                if merged is not None:
                    data, changed = merged, True
            if changed and data is not None:
                self.sink.put_manifest(repo, tag, data, mediatypes.OCI_INDEX)
                self.counts.add(tags_set=1)

        parallel_map(merge, list(groups), concurrency=self.concurrency)

    def _tags(self, roots: Sequence[_Root], failed: dict[_Key, BaseException]) -> None:
        """Signature tags, then the items' tags, the vector's last of all; none over a broken tree."""
        tagged = [r for r in roots if r.tag is not None and r.key not in failed]
        signatures = [r for r in tagged if r.manifest is not r.planned.manifest]
        items = [r for r in tagged if r.manifest is r.planned.manifest]
        vector = [r for r in items if r.planned.item.kind == "vector"]
        for batch in (signatures, [r for r in items if r.planned.item.kind != "vector"], vector):
            parallel_map(self._tag, batch, concurrency=self.concurrency)

    def _tag(self, root: _Root) -> None:
        assert root.tag is not None
        if self.sink.manifest_digest(root.target_repo, root.tag) == root.manifest.digest:
            self.counts.add(tags_skipped=1)
        else:
            self.sink.put_manifest(root.target_repo, root.tag, root.manifest.data, root.manifest.media_type)
            self.counts.add(tags_set=1)
