"""The source definition (``release/release.yaml``) and the release vector: load, validate, render, read.

The source keeps metal-stack's shape: free-form nesting; an *image* is a mapping with ``name`` (a
repository, no tag) and ``tag`` anywhere under ``docker-images``; an *OCI artifact* (a Helm chart, an Ansible
role) is a mapping with ``oci`` (a repository) and ``tag`` (or, without one, ``version``: its OCI tag) under
any top-level key; a *binary* is a mapping with ``url`` (http or https) under ``binaries``. Everything else
is carried through untouched. A mapping with ``tag`` but no ``name`` is not an image (kept, never resolved).

The vector is the source's own text with two kinds of insertion and nothing else:

- ``digest: sha256:…`` right after each image's ``tag`` (its own line, at the ``tag`` key's
  indentation; ``, digest: …`` inside a flow mapping ``{name: …, tag: …}``), after each OCI artifact's
  ``tag`` (or ``version``) the same way, and after each binary's ``url`` (the sha256 of its bytes);
- one block at the end, under the top-level key ``release-vector``::

      release-vector:
        version: "v0.22.19"
        git-revision: "b1065585a627ea6678a7ff5b84a88312aaae4b8e"
        source-sha256: "<hex sha256 of the source file's bytes>"
        created: "2026-07-22T00:00:00Z"     # only when SOURCE_DATE_EPOCH is given

Inserting into the text (instead of re-serialising a parsed model) keeps every byte of the source —
keys, order, comments, quoting, indentation — so bots that patch ``release.yaml`` by YAML path keep
working and a diff between source and vector shows exactly the pins. The same source, digests and
metadata always give the same bytes. Each rendering is checked by reading it back: the images carry
the digests asked for, and the data without them equals the source's data.

Loading is safe: PyYAML's composer (libyaml when available) builds a node graph, nothing is
constructed from tags; documents over 10 MiB are refused; anchors and aliases (alias bombs) are
refused, as are merge keys and non-standard tags; duplicate keys are reported with their line.
Every problem of a document is reported at once, each one line ``<what> (<file>:<line>)``.

Public API: :func:`load_source`, :func:`render_vector`, :func:`read_vector` (what later commands use to
list the pinned images of an assembled vector; :meth:`Vector.pinned_oci_references` lists every pinned image
and OCI artifact with its kind and YAML path), :class:`ImageEntry`, :class:`BinaryEntry`, :class:`PinnedOci`,
:class:`VectorMetadata`,
:class:`Source`, :class:`Vector`, :class:`InvalidDefinitionError`, :func:`created_from_epoch`.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from pipeline.errors import InvalidInputError, ReleaseVectorError
from pipeline.oci import digest as digests
from pipeline.oci.reference import Reference, Repository, parse_repository

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER_FIRST: Final = frozenset(_BaseLoader.yaml_implicit_resolvers)
_FAST_RESOLVE: Final = None not in _RESOLVER_FIRST and not _BaseLoader.yaml_path_resolvers
_RESOLVED: dict[tuple[str, bool], str] = {}  # a few thousand short plain scalars ("name", "tag", "true")


class _Loader(_BaseLoader):  # type: ignore[misc]
    """The safe loader with the same tags resolved faster: a plain scalar whose first character starts no
    implicit resolver (most image names and tags) and a quoted one are strings without trying any pattern;
    short plain scalars are resolved once. The composer asks for every scalar of the document (a third of
    the time of composing a large source)."""

    def resolve(self, kind: Any, value: Any, implicit: tuple[bool, bool]) -> Any:
        if _FAST_RESOLVE and kind is yaml.ScalarNode:
            if not implicit[0] or (value and value[0] not in _RESOLVER_FIRST):
                return _STR
            if len(value) <= 32:
                known = _RESOLVED.get((value, implicit[1]))
                if known is None:
                    known = super().resolve(kind, value, implicit)
                    if len(_RESOLVED) < 4096:
                        _RESOLVED[(value, implicit[1])] = known
                return known
        return super().resolve(kind, value, implicit)


MAX_DOCUMENT_BYTES: Final = 10 * 1024 * 1024
# At most this many image entries (counted as ``tag`` keys before parsing). A metal-stack release names about
# 70; 50,000 assemble in about 5 s and 220 MB, 100,000 would take 10 s and 400 MB (bench/assemble_large.py):
# the node tree of the document costs about 2 KiB per entry.
MAX_IMAGE_ENTRIES: Final = 50_000
IMAGES_KEY: Final = "docker-images"
NAME_KEY: Final = "name"
TAG_KEY: Final = "tag"
DIGEST_KEY: Final = "digest"
OCI_KEY: Final = "oci"
VERSION_KEY: Final = "version"
OCI_SCHEME: Final = "oci://"  # Helm's way of writing an OCI chart reference; accepted, not required
BINARIES_KEY: Final = "binaries"
URL_KEY: Final = "url"
KIND_IMAGE: Final = "image"
KIND_OCI_ARTIFACT: Final = "oci-artifact"
METADATA_KEY: Final = "release-vector"
META_VERSION: Final = "version"
META_GIT_REVISION: Final = "git-revision"
META_SOURCE_SHA256: Final = "source-sha256"
META_CREATED: Final = "created"

_YAML: Final = "tag:yaml.org,2002:"
_STR: Final = _YAML + "str"
_NULL: Final = _YAML + "null"
_MERGE: Final = _YAML + "merge"
_STANDARD_TAGS: Final = frozenset(
    _YAML + name for name in ("str", "int", "float", "bool", "null", "timestamp", "binary", "map", "seq")
)
_TAG_RE: Final = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_VERSION_RE: Final = _TAG_RE  # the version becomes the artifact's tag
_REVISION_RE: Final = re.compile(r"^[0-9a-f]{4,64}$")
_HEX64_RE: Final = re.compile(r"^[0-9a-f]{64}$")
_CREATED_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_LONE_CR_RE: Final = re.compile(r"\r(?!\n)")
_DOC_END_RE: Final = re.compile(r"^\.\.\.(?:[ \t]|$)", re.MULTILINE)
# A ``tag`` key, plain or quoted, in block or flow style (also in comments and strings: an over-count only
# matters thousands of entries above any real source).
_TAG_KEY_RE: Final = re.compile(r"""(?<![^\s{,?])(["']?)tag\1[ \t]*:(?=[ \t\r\n,}]|$)""", re.MULTILINE)

YamlPath = tuple[str | int, ...]


# --- errors -------------------------------------------------------------------------------------


class InvalidDefinitionError(InvalidInputError):
    """Every problem found in a source definition or vector (exit 3); each is one line with file:line.

    ``problems`` holds them in document order; the exception itself reads as the first one, with a hint
    that counts the rest, so a handler that prints one error still says that there are more.
    """

    def __init__(self, problems: Sequence[InvalidInputError]) -> None:
        if not problems:
            raise ValueError("InvalidDefinitionError needs at least one problem")
        first = problems[0]
        more = len(problems) - 1
        hint = f"{more} more problem{'s' if more > 1 else ''} in the same file" if more else first.hint
        super().__init__(first.message, where=first.where, hint=hint)
        self.problems: tuple[InvalidInputError, ...] = tuple(problems)

    def lines(self) -> list[str]:
        """Every problem as ``<what> (<where>)``."""
        return [problem.one_line() for problem in self.problems]


class _Problems:
    def __init__(self, where: str) -> None:
        self.where = where
        self._items: list[tuple[int, int, str]] = []

    def add(self, line: int, message: str) -> None:
        self._items.append((line, len(self._items), message))

    def __bool__(self) -> bool:
        return bool(self._items)

    def error(self) -> InvalidDefinitionError:
        return InvalidDefinitionError(
            [InvalidInputError(message, where=f"{self.where}:{line}") for line, _, message in sorted(self._items)]
        )

    def raise_if_any(self) -> None:
        if self._items:
            raise self.error()


def _shown(text: str) -> str:
    if len(text) > 120:
        text = text[:120] + "…"
    return repr(text) if not text or any(c.isspace() or not c.isprintable() for c in text) else text


# --- the data -----------------------------------------------------------------------------------


def yaml_path_text(path: YamlPath) -> str:
    """A YAML path as messages show it: keys joined by dots, indices as ``[0]``."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
    return text


@dataclass(frozen=True, slots=True)
class ImageEntry:
    """One image entry: ``name`` and ``tag`` as written, the digest (vectors only), where it is.

    ``line`` is the line of its ``name`` key (1-based); ``path`` the keys (and sequence indices) from the
    top of the document to the entry's mapping, e.g. ``("docker-images", "metal-stack", "control-plane",
    "ipam")``; ``repository`` is ``name`` normalised (``postgres`` → ``docker.io/library/postgres``).
    """

    name: str
    tag: str
    line: int
    path: YamlPath
    repository: Repository
    digest: str | None = None
    kind: str = KIND_IMAGE  # KIND_IMAGE (docker-images name + tag) or KIND_OCI_ARTIFACT (oci + tag/version)

    @property
    def label(self) -> str:
        """``image`` or ``oci artifact``: how messages name the entry."""
        return "image" if self.kind == KIND_IMAGE else "oci artifact"

    @property
    def reference(self) -> Reference:
        """``repository:tag`` (without the digest): what the source names, normalised."""
        return Reference(self.repository.registry, self.repository.path, tag=self.tag)

    @property
    def pinned(self) -> Reference:
        """``repository:tag@digest``; an InvalidInputError if the entry carries no digest."""
        if self.digest is None:
            raise InvalidInputError(f"{self.label} {self.name}:{self.tag} has no digest", where=self.yaml_path)
        return Reference(self.repository.registry, self.repository.path, tag=self.tag, digest=self.digest)

    @property
    def yaml_path(self) -> str:
        """``docker-images.metal-stack.control-plane.ipam`` (indices as ``[0]``)."""
        return yaml_path_text(self.path)


@dataclass(frozen=True, slots=True)
class TagOnlyEntry:
    """A mapping under ``docker-images`` with a ``tag`` but no ``name``: no image reference, kept as is."""

    tag: str
    line: int
    path: YamlPath


@dataclass(frozen=True, slots=True)
class BinaryEntry:
    """A mapping under ``binaries`` with a ``url`` (http or https): where the binary is downloaded from, the
    sha256 of its bytes (``digest: sha256:…`` beside the URL, vectors only), where the entry is."""

    url: str
    line: int  # of the url key
    path: YamlPath
    digest: str | None = None

    @property
    def yaml_path(self) -> str:
        """``binaries.metalctl[0]``: where the entry is."""
        return yaml_path_text(self.path)


@dataclass(frozen=True)
class VectorMetadata:
    """The ``release-vector`` block: release version, git revision, sha256 (hex) of the source file's bytes,
    and ``created`` (RFC 3339 UTC) only when a fixed time is given (``SOURCE_DATE_EPOCH``)."""

    version: str
    git_revision: str
    source_sha256: str
    created: str | None = None

    def __post_init__(self) -> None:
        if not _VERSION_RE.match(self.version):
            raise InvalidInputError(
                f"version {_shown(self.version)} is not usable as a tag "
                "(letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')",
                where="--version",
            )
        if not _REVISION_RE.match(self.git_revision):
            raise InvalidInputError(
                f"git revision {_shown(self.git_revision)} is not a commit id (4 to 64 lowercase hex digits)",
                where="--git-revision",
            )
        if not _HEX64_RE.match(self.source_sha256):
            raise InvalidInputError("source-sha256 is not 64 lowercase hex digits", where=METADATA_KEY)
        if self.created is not None and not _CREATED_RE.match(self.created):
            raise InvalidInputError(
                f"created {_shown(self.created)} is not a UTC time like 2026-07-22T00:00:00Z", where=METADATA_KEY
            )

    def fields(self) -> list[tuple[str, str]]:
        """The block's keys and values, in the order they are written."""
        items = [
            (META_VERSION, self.version),
            (META_GIT_REVISION, self.git_revision),
            (META_SOURCE_SHA256, self.source_sha256),
        ]
        if self.created is not None:
            items.append((META_CREATED, self.created))
        return items


def created_from_epoch(value: str) -> str:
    """``SOURCE_DATE_EPOCH`` (seconds since 1970, UTC) as ``2026-07-22T00:00:00Z``."""
    text = value.strip()
    if not text.isdigit():
        raise InvalidInputError(
            f"SOURCE_DATE_EPOCH {_shown(value)} is not a non-negative whole number of seconds",
            where="SOURCE_DATE_EPOCH",
        )
    try:
        moment = datetime.fromtimestamp(int(text), UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidInputError(f"SOURCE_DATE_EPOCH {text} is out of range", where="SOURCE_DATE_EPOCH") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where an image's digest goes: ``prefix + digest + suffix`` inserted at ``index`` of the text."""

    index: int
    prefix: str
    suffix: str


@dataclass(frozen=True)
class _Layout:
    text: str  # the document without a BOM, ending with a line break
    bom: str
    newline: str
    slots: tuple[_Slot, ...]  # one per entry, same order as Source.oci_entries (images, then artifacts)
    metadata_index: int
    metadata_indent: str
    fingerprint: bytes  # of the source's node tree (see _fingerprint): what the read-back check compares
    binary_slots: tuple[_Slot, ...] = ()  # one per Source.binaries entry


@dataclass(frozen=True)
class Source:
    """A validated source definition: its exact bytes, every image, OCI artifact and tag-only entry, in order."""

    where: str
    data: bytes
    images: tuple[ImageEntry, ...]
    tag_only: tuple[TagOnlyEntry, ...]
    _layout: _Layout = field(repr=False, compare=False)
    artifacts: tuple[ImageEntry, ...] = ()  # the OCI artifacts (charts, roles): kind KIND_OCI_ARTIFACT
    binaries: tuple[BinaryEntry, ...] = ()  # every url under binaries

    @property
    def sha256(self) -> str:
        """Hex sha256 of the file's bytes (the metadata's ``source-sha256``)."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def oci_entries(self) -> tuple[ImageEntry, ...]:
        """Every entry assemble pins: the images, then the OCI artifacts (each in document order)."""
        return self.images + self.artifacts

    def references(self) -> tuple[Reference, ...]:
        """Every distinct ``repository:tag`` (images, then OCI artifacts), in document order (the same
        reference under two keys: once)."""
        return tuple(dict.fromkeys(entry.reference for entry in self.oci_entries))

    def entries(self, reference: Reference) -> tuple[ImageEntry, ...]:
        """The entries naming ``reference`` (normalised, without digest)."""
        return tuple(entry for entry in self.oci_entries if entry.reference == reference)


@dataclass(frozen=True, slots=True)
class PinnedOci:
    """One pinned OCI reference of a vector: what it is, where the vector names it, what it pins.

    ``kind`` is :data:`KIND_IMAGE` or :data:`KIND_OCI_ARTIFACT`; ``yaml_path`` e.g.
    ``helm-charts.metal-stack.metal-control-plane``; ``reference`` is ``repository:tag@digest`` (normalised).
    """

    kind: str
    yaml_path: str
    line: int
    reference: Reference
    entry: ImageEntry = field(repr=False, compare=False)


@dataclass(frozen=True)
class Vector:
    """What :func:`read_vector` found in an assembled vector (or any document of the source's shape)."""

    where: str
    images: tuple[ImageEntry, ...]
    tag_only: tuple[TagOnlyEntry, ...]
    metadata: VectorMetadata | None
    artifacts: tuple[ImageEntry, ...] = ()  # the OCI artifacts (charts, roles), see load_source
    binaries: tuple[BinaryEntry, ...] = ()  # every url under binaries, with its digest when pinned

    @property
    def oci_entries(self) -> tuple[ImageEntry, ...]:
        """Every image and OCI artifact entry (images first), pinned or not."""
        return self.images + self.artifacts

    def unpinned(self) -> tuple[ImageEntry, ...]:
        return tuple(entry for entry in self.oci_entries if entry.digest is None)

    def pinned_oci_references(self) -> tuple[PinnedOci, ...]:
        """Every pinned OCI reference the vector names — images and OCI artifacts (Helm charts, Ansible
        roles, …) — with its kind and YAML path, one per entry, in document order (images first).

        Entries without a digest are left out (see :meth:`unpinned`). This is the one list later work
        (signing, attestation provenance, mirroring) takes what a release pins from.
        """
        return tuple(
            PinnedOci(entry.kind, entry.yaml_path, entry.line, entry.pinned, entry)
            for entry in self.oci_entries
            if entry.digest is not None
        )

    def pinned_references(self) -> tuple[Reference, ...]:
        """Every distinct ``repository:tag@digest`` (images and OCI artifacts) in document order (sign each once).

        An :class:`InvalidDefinitionError` lists every entry without a digest (with its line) if any.
        """
        missing = self.unpinned()
        if missing:
            problems = _Problems(self.where)
            for entry in missing:
                problems.add(
                    entry.line,
                    f"{entry.label} {entry.name}:{entry.tag} has no digest (assemble it without --no-resolve)",
                )
            raise problems.error()
        return tuple(dict.fromkeys(entry.pinned for entry in self.oci_entries))


# --- parsing ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Found:
    """An image entry while parsing: the entry and the nodes rendering needs."""

    entry: ImageEntry
    mapping: yaml.MappingNode
    tag_key: yaml.Node
    tag_value: yaml.Node


@dataclass(slots=True)
class _FoundBinary:
    entry: BinaryEntry
    mapping: yaml.MappingNode
    url_key: yaml.Node
    url_value: yaml.Node


@dataclass
class _Document:
    text: str
    bom: str
    newline: str
    root: yaml.MappingNode
    found: list[_Found]
    tag_only: list[TagOnlyEntry]
    metadata: VectorMetadata | None
    doc_end: int | None
    artifacts: list[_Found] = field(default_factory=list)
    binaries: list[_FoundBinary] = field(default_factory=list)


def _line(node: yaml.Node | yaml.Event) -> int:
    mark = node.start_mark
    return int(mark.line) + 1 if mark is not None else 1


def _syntax_problem(exc: yaml.YAMLError, text: str) -> tuple[int, str]:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        return (int(mark.line) + 1 if mark is not None else 1), f"YAML syntax error: {what or 'malformed YAML'}"
    if isinstance(exc, yaml.reader.ReaderError):
        position = int(exc.position)
        return text.count("\n", 0, position) + 1, f"YAML syntax error: {exc.reason}"
    return 1, f"YAML syntax error: {' '.join(str(exc).split())}"


def _decode(data: bytes, problems: _Problems) -> tuple[str, str]:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidInputError(
            f"document too large ({len(data)} bytes; the limit is {MAX_DOCUMENT_BYTES} bytes)", where=problems.where
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.add(data.count(b"\n", 0, exc.start) + 1, "not UTF-8 text")
        raise problems.error() from None
    bom = ""
    if text.startswith("\ufeff"):
        bom, text = "\ufeff", text[1:]
    return bom, text


def _check_entry_count(text: str, where: str) -> None:
    """Refuse a document with more ``tag`` keys than :data:`MAX_IMAGE_ENTRIES` before composing it."""
    limit = MAX_IMAGE_ENTRIES
    if text.count("tag") <= limit:  # the cheap bound first: most documents stop here
        return
    count = sum(1 for _ in _TAG_KEY_RE.finditer(text))
    if count > limit:
        raise InvalidInputError(
            f"too many image entries: {count} 'tag' keys, the limit is {limit}",
            where=where,
        )


def _scan_events(text: str, problems: _Problems) -> int | None:
    """Anchors and aliases (refused) and the explicit document end (``...``), from the event stream."""
    doc_end: int | None = None
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                problems.add(_line(event), f"YAML alias *{event.anchor} is not allowed (no anchors or aliases)")
            elif isinstance(event, yaml.NodeEvent) and event.anchor is not None:
                problems.add(_line(event), f"YAML anchor &{event.anchor} is not allowed (no anchors or aliases)")
            elif isinstance(event, yaml.DocumentEndEvent) and event.explicit and doc_end is None:
                doc_end = int(event.start_mark.index) if event.start_mark is not None else None
    except yaml.YAMLError as exc:
        line, message = _syntax_problem(exc, text)
        problems.add(line, message)
        raise problems.error() from None
    except RecursionError:
        problems.add(1, "YAML nesting is too deep")
        raise problems.error() from None
    return doc_end


def _check_tree(root: yaml.Node, problems: _Problems, *, shared: bool = True) -> None:
    """Duplicate keys, merge keys and non-standard tags anywhere (each node visited once: no alias blow-up).

    ``shared``: the tree may hold a node twice (aliases); without, no set of visited nodes is kept.
    """
    seen_nodes: set[int] = set()
    stack: list[yaml.Node] = [root]
    while stack:
        node = stack.pop()
        if shared:
            if id(node) in seen_nodes:
                continue
            seen_nodes.add(id(node))
        if node.tag not in _STANDARD_TAGS:
            problems.add(_line(node), f"unsupported YAML tag {node.tag}")
        if isinstance(node, yaml.MappingNode):
            keys: dict[tuple[str, str], yaml.Node] = {}
            for key, value in node.value:
                if key.tag == _MERGE:
                    problems.add(_line(key), "merge keys (<<) are not allowed")
                elif isinstance(key, yaml.ScalarNode):
                    identity = (key.tag, key.value)
                    first = keys.setdefault(identity, key)
                    if first is not key:
                        problems.add(_line(key), f"duplicate key {_shown(key.value)} (first at line {_line(first)})")
                stack.append(value)
                stack.append(key)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))


_Pairs = dict[str, tuple[yaml.Node, yaml.Node]]


def _str_pairs(node: yaml.MappingNode) -> _Pairs:
    """The string-keyed pairs of a mapping (first occurrence wins; duplicates are reported elsewhere)."""
    pairs: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag == _STR and key.value not in pairs:
            pairs[key.value] = (key, value)
    return pairs


class _LazyShown:
    """An image name as messages show it, computed only when a message is made (not for every image)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return _shown(self.name) if self.name else "(no name)"


def _repository_of(
    key: yaml.Node,
    node: yaml.Node,
    what: str,
    problems: _Problems,
    *,
    known: Mapping[str, Repository],
    scheme: str = "",
) -> tuple[str, Repository | None]:
    """The name as written (empty when not a string) and its repository (None, with the problem added, when
    the name is not a valid one). ``known``: names parsed already (the source's, when reading its vector);
    ``scheme``: a prefix the name may carry (``oci://`` on an OCI artifact)."""
    if not isinstance(node, yaml.ScalarNode) or node.tag != _STR or not node.value:
        problems.add(_line(key), f"{what} must be a non-empty string (a repository without tag)")
        return "", None
    name = str(node.value)
    repository = known.get(name)
    if repository is None:
        try:
            repository = parse_repository(name.removeprefix(scheme) if scheme else name)
        except InvalidInputError as exc:
            reason = exc.message.removeprefix("malformed image reference: ")
            problems.add(_line(node), f"{what} {_shown(name)} is not a valid repository: {reason}")
    return name, repository


def _image(
    path: YamlPath,
    pairs: dict[str, tuple[yaml.Node, yaml.Node]],
    problems: _Problems,
    *,
    vector: bool,
    known: Mapping[str, Repository],
) -> tuple[ImageEntry, yaml.Node, yaml.Node] | None:
    name_key, name_node = pairs[NAME_KEY]
    tag_key, tag_node = pairs[TAG_KEY]
    name, repository = _repository_of(name_key, name_node, "image name", problems, known=known)
    ok = repository is not None
    shown_name = _LazyShown(name)
    tag = ""
    if not isinstance(tag_node, yaml.ScalarNode):
        problems.add(_line(tag_key), f"tag of image {shown_name} must be a string")
        ok = False
    elif tag_node.tag == _NULL or tag_node.value == "":
        problems.add(_line(tag_key), f"empty tag for image {shown_name}")
        ok = False
    elif tag_node.tag != _STR:
        problems.add(
            _line(tag_node),
            f"tag {tag_node.value} of image {shown_name} is not a string (YAML reads it as a "
            f"{tag_node.tag.removeprefix(_YAML)}); quote it: '{tag_node.value}'",
        )
        ok = False
    elif not _TAG_RE.match(tag_node.value):
        problems.add(_line(tag_node), f"malformed tag {_shown(tag_node.value)} for image {shown_name}")
        ok = False
    else:
        tag = tag_node.value
    digest, digest_ok = _pinned_digest(pairs, f"image {shown_name}", problems, allowed=vector, named_by="images by tag")
    ok = ok and digest_ok
    if not ok or repository is None:
        return None
    return ImageEntry(name, tag, _line(name_key), path, repository, digest), tag_key, tag_node


def _walk_mappings(
    root: yaml.Node, path: YamlPath, claim: Callable[[yaml.MappingNode, YamlPath, _Pairs], bool]
) -> None:
    """Calls ``claim`` on every mapping below ``root`` once (anchors make a graph), in document order;
    what a mapping holds is searched only when ``claim`` did not take the mapping (returned False)."""
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, YamlPath]] = [(root, path)]
    while stack:
        node, at = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(reversed([(item, (*at, index)) for index, item in enumerate(node.value)]))
            continue
        if not isinstance(node, yaml.MappingNode) or claim(node, at, _str_pairs(node)):
            continue
        children = []
        for key, value in node.value:
            label: str | int = key.value if isinstance(key, yaml.ScalarNode) else f"<{_line(key)}>"
            children.append((value, (*at, label)))
        stack.extend(reversed(children))


def _pinned_digest(
    pairs: _Pairs, what: str, problems: _Problems, *, allowed: bool, named_by: str
) -> tuple[str | None, bool]:
    """The entry's ``digest:`` (None without one) and whether it is acceptable: well-formed, and only where
    ``allowed`` (a vector; a source names ``what`` by ``named_by``)."""
    if DIGEST_KEY not in pairs:
        return None, True
    digest_key, digest_node = pairs[DIGEST_KEY]
    if not allowed:
        problems.add(_line(digest_key), f"{what} already has a digest; the source names {named_by} (assemble adds"
                     " digests)")  # fmt: skip
        return None, False
    if (
        not isinstance(digest_node, yaml.ScalarNode)
        or digest_node.tag != _STR
        or not digests.is_valid(digest_node.value)
    ):
        shown = _shown(digest_node.value) if isinstance(digest_node, yaml.ScalarNode) else "(not a string)"
        problems.add(_line(digest_key), f"malformed digest {shown} for {what}")
        return None, False
    return str(digest_node.value), True


def _find_images(
    images_node: yaml.Node, problems: _Problems, *, vector: bool, known: Mapping[str, Repository]
) -> tuple[list[_Found], list[TagOnlyEntry]]:
    found: list[_Found] = []
    tag_only: list[TagOnlyEntry] = []

    def claim(node: yaml.MappingNode, path: YamlPath, pairs: _Pairs) -> bool:
        if OCI_KEY in pairs and NAME_KEY not in pairs:
            return True  # an OCI artifact (see _find_artifacts)
        if TAG_KEY in pairs and NAME_KEY in pairs:
            result = _image(path, pairs, problems, vector=vector, known=known)
            if result is not None:
                entry, tag_key, tag_value = result
                found.append(_Found(entry, node, tag_key, tag_value))
            return True
        if TAG_KEY in pairs and isinstance(pairs[TAG_KEY][1], yaml.ScalarNode):
            key, value = pairs[TAG_KEY]
            tag_only.append(TagOnlyEntry(str(value.value), _line(key), path))
            return True
        if NAME_KEY in pairs and isinstance(pairs[NAME_KEY][1], yaml.ScalarNode):
            key, value = pairs[NAME_KEY]
            problems.add(_line(key), f"image {_shown(str(value.value))} has a name but no tag")
            return True
        return False

    _walk_mappings(images_node, (IMAGES_KEY,), claim)
    return found, tag_only


def _ref_value(node: yaml.Node, key_name: str, shown: str, problems: _Problems) -> str | None:
    """The tag (or version) of an OCI artifact entry, validated as an OCI tag."""
    if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL or node.value == "":
        problems.add(_line(node), f"{key_name} of oci artifact {shown} must be a non-empty string")
        return None
    if node.tag != _STR:
        problems.add(
            _line(node),
            f"{key_name} {node.value} of oci artifact {shown} is not a string (YAML reads it as a "
            f"{node.tag.removeprefix(_YAML)}); quote it: '{node.value}'",
        )
        return None
    if not _TAG_RE.match(node.value):
        problems.add(_line(node), f"malformed {key_name} {_shown(node.value)} for oci artifact {shown} "
                     "(it is the artifact's OCI tag)")  # fmt: skip
        return None
    return str(node.value)


def _artifact(
    mapping: yaml.MappingNode,
    path: YamlPath,
    pairs: dict[str, tuple[yaml.Node, yaml.Node]],
    problems: _Problems,
    *,
    vector: bool,
    known: Mapping[str, Repository],
) -> _Found | None:
    """An ``oci:`` mapping: the repository, its tag (``tag:``, else ``version:``), the digest (vectors)."""
    oci_key, oci_node = pairs[OCI_KEY]
    name, repository = _repository_of(oci_key, oci_node, "oci", problems, known=known, scheme=OCI_SCHEME)
    ok = repository is not None
    shown = _shown(name) if name else "(no oci)"
    ref_name = TAG_KEY if TAG_KEY in pairs else VERSION_KEY
    if ref_name not in pairs:
        problems.add(_line(oci_key), f"oci artifact {shown} has neither a tag nor a version")
        return None
    ref_key, ref_node = pairs[ref_name]
    tag = _ref_value(ref_node, ref_name, shown, problems)
    digest, digest_ok = _pinned_digest(
        pairs, f"oci artifact {shown}", problems, allowed=vector, named_by="artifacts by tag or version"
    )
    ok = ok and digest_ok
    if not ok or tag is None or repository is None:
        return None
    entry = ImageEntry(name, tag, _line(oci_key), path, repository, digest, KIND_OCI_ARTIFACT)
    return _Found(entry, mapping, ref_key, ref_node)


def _find_artifacts(
    root_pairs: dict[str, tuple[yaml.Node, yaml.Node]],
    problems: _Problems,
    *,
    vector: bool,
    known: Mapping[str, Repository],
) -> list[_Found]:
    """Every mapping with ``oci`` plus ``tag`` (or ``version``) under any top-level key but the metadata
    block; under ``docker-images`` a mapping with ``name`` is an image, never an artifact."""
    found: list[_Found] = []
    for top, (_key, top_node) in root_pairs.items():
        if top == METADATA_KEY:
            continue

        def claim(node: yaml.MappingNode, path: YamlPath, pairs: _Pairs, top: str = top) -> bool:
            if top == IMAGES_KEY and NAME_KEY in pairs:
                return True
            if OCI_KEY in pairs and not isinstance(pairs[OCI_KEY][1], yaml.CollectionNode):
                result = _artifact(node, path, pairs, problems, vector=vector, known=known)
                if result is not None:
                    found.append(result)
                return True
            return False

        _walk_mappings(top_node, (top,), claim)
    return found


_URL_SCHEMES: Final = ("http://", "https://")
_USER_INFO: Final = re.compile(r"(?<=//)[^/@]*@")
_HOST_LABEL: Final = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _url_problem(url: str) -> str | None:
    """What keeps an http(s) URL from being fetched (said after the URL), else None: no host, a bad port or
    host name, or user info, which would publish a password in the signed vector and send it to the server."""
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when out of range or not a number
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    host = parts.hostname or ""
    if parts.username is not None or parts.password is not None:
        return "holds user info (user:password@): the vector is published; serve the file without it"
    if not host:
        return "has no host"
    if port == 0:
        return "has port 0"
    if host.startswith("[") or ":" in host or host.replace(".", "").isdigit():
        return None  # an IP address (urlsplit checked an IPv6 literal's brackets)
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return f"has a host name that is not a valid domain name ({parts.hostname})"
    labels = host.rstrip(".").split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return f"has a host name that is not a valid domain name ({parts.hostname})"
    return None


def _find_binaries(
    root_pairs: dict[str, tuple[yaml.Node, yaml.Node]], problems: _Problems, *, vector: bool
) -> list[_FoundBinary]:
    """Every mapping with a ``url`` under ``binaries`` (an ``oci:`` mapping there is an OCI artifact)."""
    if BINARIES_KEY not in root_pairs:
        return []
    found: list[_FoundBinary] = []

    def claim(node: yaml.MappingNode, path: YamlPath, pairs: _Pairs) -> bool:
        if URL_KEY in pairs and OCI_KEY not in pairs and isinstance(pairs[URL_KEY][1], yaml.ScalarNode):
            result = _binary(node, path, pairs, problems, vector=vector)
            if result is not None:
                found.append(result)
            return True
        return False

    _walk_mappings(root_pairs[BINARIES_KEY][1], (BINARIES_KEY,), claim)
    return found


def _binary(
    mapping: yaml.MappingNode,
    path: YamlPath,
    pairs: dict[str, tuple[yaml.Node, yaml.Node]],
    problems: _Problems,
    *,
    vector: bool,
) -> _FoundBinary | None:
    url_key, url_node = pairs[URL_KEY]
    url = str(url_node.value)
    ok = True
    if url_node.tag != _STR or not url.lower().startswith(_URL_SCHEMES) or len(url) > 2048:
        problems.add(_line(url_node), f"binary url {_shown(url)} is not an http(s) URL")
        ok = False
    elif any(c.isspace() or not c.isprintable() for c in url):
        problems.add(_line(url_node), f"binary url {_shown(url)} holds spaces or control characters")
        ok = False
    elif (problem := _url_problem(url)) is not None:
        problems.add(_line(url_node), f"binary url {_shown(_USER_INFO.sub('', url))} {problem}")
        ok = False
    # A source may pin a binary itself (its sha256 known when the download is not reachable yet, e.g. an
    # asset of a draft release): assemble keeps that digest and downloads nothing for the entry.
    digest, digest_ok = _pinned_digest(pairs, f"binary {_shown(url)}", problems, allowed=True, named_by="")
    ok = ok and digest_ok
    if not ok:
        return None
    return _FoundBinary(BinaryEntry(url, _line(url_key), path, digest), mapping, url_key, url_node)


def _read_metadata(node: yaml.Node, key: yaml.Node, problems: _Problems) -> VectorMetadata | None:
    if not isinstance(node, yaml.MappingNode):
        problems.add(_line(key), f"{METADATA_KEY} must be a mapping")
        return None
    values: dict[str, str] = {}
    for name, (field_key, value) in _str_pairs(node).items():
        if not isinstance(value, yaml.ScalarNode) or value.tag != _STR:
            problems.add(_line(field_key), f"{METADATA_KEY}.{name} must be a string")
            continue
        values[name] = value.value
    missing = [name for name in (META_VERSION, META_GIT_REVISION, META_SOURCE_SHA256) if name not in values]
    if missing:
        problems.add(_line(key), f"{METADATA_KEY} lacks {', '.join(missing)}")
        return None
    try:
        return VectorMetadata(
            values[META_VERSION], values[META_GIT_REVISION], values[META_SOURCE_SHA256], values.get(META_CREATED)
        )
    except InvalidInputError as exc:
        problems.add(_line(key), f"{METADATA_KEY}: {exc.message}")
        return None


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while node trees are built and walked.

    A tree is millions of small acyclic objects for a large source; the collector's passes over them made
    assembling superlinear (200,000 entries: 68 s). Reference counting still frees everything.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse(data: bytes, where: str, *, vector: bool, known: Mapping[str, Repository] | None = None) -> _Document:
    """``known``: names already parsed as repositories (the read-back check passes the source's)."""
    problems = _Problems(where)
    bom, text = _decode(data, problems)
    newline = "\r\n" if "\r\n" in text else "\n"
    lone_cr = _LONE_CR_RE.search(text)
    if lone_cr:
        problems.add(text.count("\n", 0, lone_cr.start()) + 1, "line breaks must be LF or CRLF (found a lone CR)")
        raise problems.error()
    if not text.endswith("\n"):
        text += newline
    _check_entry_count(text, where)
    # The event scan finds anchors, aliases and an explicit document end; none can exist without a '&',
    # '*' or a line starting with '...', and the composer reports syntax errors the same way: skip it then
    # (it was a fifth of the time of a large source).
    maybe_marked = "&" in text or "*" in text or _DOC_END_RE.search(text) is not None
    doc_end = _scan_events(text, problems) if maybe_marked else None
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        line, message = _syntax_problem(exc, text)
        problems.add(line, message)
        raise problems.error() from None
    except RecursionError:
        problems.add(1, "YAML nesting is too deep")
        raise problems.error() from None
    if root is None:
        problems.add(1, "the document is empty; the top level must be a mapping")
        raise problems.error()
    if not isinstance(root, yaml.MappingNode):
        kind = "list" if isinstance(root, yaml.SequenceNode) else "scalar"
        problems.add(_line(root), f"the top level is a {kind}, not a mapping")
        raise problems.error()
    if root.flow_style:
        problems.add(_line(root), "the top level must be a block mapping, not a flow mapping ({...})")
    _check_tree(root, problems, shared=maybe_marked)
    pairs = _str_pairs(root)
    found: list[_Found] = []
    tag_only: list[TagOnlyEntry] = []
    if IMAGES_KEY not in pairs:
        problems.add(_line(root), f"missing {IMAGES_KEY} (the images of the release)")
    else:
        images_key, images_node = pairs[IMAGES_KEY]
        if not isinstance(images_node, yaml.MappingNode | yaml.SequenceNode):
            problems.add(_line(images_key), f"{IMAGES_KEY} must be a mapping")
        else:
            found, tag_only = _find_images(images_node, problems, vector=vector, known=known or {})
    # A second walk over the tree, skipped when no key can be ``oci`` (most large sources: images only).
    artifacts = _find_artifacts(pairs, problems, vector=vector, known=known or {}) if "oci" in text else []
    binaries = _find_binaries(pairs, problems, vector=vector)
    metadata: VectorMetadata | None = None
    if METADATA_KEY in pairs:
        meta_key, meta_node = pairs[METADATA_KEY]
        if vector:
            metadata = _read_metadata(meta_node, meta_key, problems)
        else:
            problems.add(
                _line(meta_key),
                f"top-level key {METADATA_KEY} is reserved for the vector's metadata (is this an assembled vector?)",
            )
    problems.raise_if_any()
    return _Document(text, bom, newline, root, found, tag_only, metadata, doc_end, artifacts, binaries)


def _slot(found: _Found | _FoundBinary, text: str, newline: str) -> _Slot:
    """Right after the tag (or version, or url) value: where the entry's ``digest`` goes."""
    key, value = (found.tag_key, found.tag_value) if isinstance(found, _Found) else (found.url_key, found.url_value)
    end = int(value.end_mark.index)
    if found.mapping.flow_style:
        return _Slot(end, f", {DIGEST_KEY}: ", "")
    indent = " " * int(key.start_mark.column)
    if end > 0 and text[end - 1] == "\n":  # a block scalar ends at the start of a line
        return _Slot(end, f"{indent}{DIGEST_KEY}: ", newline)
    line_end = text.find("\n", end)
    index = len(text) if line_end < 0 else line_end + 1
    return _Slot(index, f"{indent}{DIGEST_KEY}: ", newline)


def _layout(document: _Document) -> _Layout:
    text = document.text
    slots = tuple(_slot(found, text, document.newline) for found in (*document.found, *document.artifacts))
    first_key = document.root.value[0][0] if document.root.value else document.root
    indent = " " * int(first_key.start_mark.column)
    metadata_index = len(text)
    if document.doc_end is not None:
        metadata_index = document.doc_end
    else:
        match = _DOC_END_RE.search(text, int(document.root.end_mark.index))
        if match:
            metadata_index = match.start()
    fingerprint = _fingerprint(document.root)
    binary_slots = tuple(_slot(found, text, document.newline) for found in document.binaries)
    return _Layout(text, document.bom, document.newline, slots, metadata_index, indent, fingerprint, binary_slots)


def load_source(data: bytes, where: str) -> Source:
    """Validate a source definition (``where`` names it in messages: ``release/release.yaml``).

    Raises :class:`InvalidDefinitionError` (exit 3) listing every problem, each ``<what> (<where>:<line>)``.
    """
    with _gc_paused():
        document = _parse(data, where, vector=False)
        layout = _layout(document)
    return Source(
        where=where,
        data=data,
        images=tuple(found.entry for found in document.found),
        tag_only=tuple(document.tag_only),
        _layout=layout,
        artifacts=tuple(found.entry for found in document.artifacts),
        binaries=tuple(found.entry for found in document.binaries),
    )


def read_vector(data: bytes, where: str) -> Vector:
    """Read an assembled vector (or any document in the source's shape): its image entries with their
    digests (``None`` where an entry has none), tag-only entries, and the metadata block if present.

    ``where`` names the document in messages (a path, or the artifact reference it was pulled from).
    The same validation as :func:`load_source` applies, plus: every ``digest`` is well-formed, and a
    ``release-vector`` block has ``version``, ``git-revision`` and ``source-sha256``. Use
    :meth:`Vector.pinned_references` for the distinct ``repository:tag@digest`` to sign or verify.
    """
    with _gc_paused():
        document = _parse(data, where, vector=True)
    return Vector(
        where=where,
        images=tuple(found.entry for found in document.found),
        tag_only=tuple(document.tag_only),
        metadata=document.metadata,
        artifacts=tuple(found.entry for found in document.artifacts),
        binaries=tuple(found.entry for found in document.binaries),
    )


# --- rendering ----------------------------------------------------------------------------------


def _metadata_block(metadata: VectorMetadata, indent: str, newline: str) -> str:
    lines = [f"{indent}{METADATA_KEY}:"]
    lines += [f"{indent}  {key}: {json.dumps(value)}" for key, value in metadata.fields()]
    return newline.join(lines) + newline


def render_vector(
    source: Source,
    resolved: Mapping[Reference, str],
    metadata: VectorMetadata,
    binaries: Mapping[str, str] | None = None,
) -> bytes:
    """The vector's bytes: the source's text with ``digest`` after the tag of every image whose
    ``repository:tag`` (see :attr:`ImageEntry.reference`) is in ``resolved``, and the metadata block.

    Images missing from ``resolved`` get no digest (``--no-resolve`` passes an empty mapping). ``binaries``
    maps a binary's url to the sha256 digest of its bytes: each such entry gets ``digest`` after its ``url``.
    Deterministic; checked by reading the result back (a failed check is an internal error, exit 1).
    """
    layout = source._layout
    inserts: list[tuple[int, str]] = []
    expected: list[str | None] = []
    for image, slot in zip(source.oci_entries, layout.slots, strict=True):
        digest = resolved.get(image.reference)
        if digest is not None:
            digests.validate(digest, where=str(image.reference))
            inserts.append((slot.index, slot.prefix + digest + slot.suffix))
        expected.append(digest)
    binary_digests = binaries or {}
    expected_binaries: list[str | None] = []
    for binary, slot in zip(source.binaries, layout.binary_slots, strict=True):
        if binary.digest is not None:  # pinned by the source itself: kept as it is
            expected_binaries.append(binary.digest)
            continue
        digest = binary_digests.get(binary.url)
        if digest is not None:
            digests.validate(digest, where=binary.url)
            inserts.append((slot.index, slot.prefix + digest + slot.suffix))
        expected_binaries.append(digest)
    inserts.append((layout.metadata_index, _metadata_block(metadata, layout.metadata_indent, layout.newline)))
    inserts.sort(key=lambda item: item[0])  # stable: equal indices keep document order
    parts: list[str] = [layout.bom]
    position = 0
    for index, text in inserts:
        parts.append(layout.text[position:index])
        parts.append(text)
        position = index
    parts.append(layout.text[position:])
    output = "".join(parts).encode("utf-8")
    _check_rendered(source, output, expected, metadata, expected_binaries)
    return output


def _fingerprint(
    root: yaml.Node, *, strip_digests: frozenset[int] = frozenset(), strip_metadata: bool = False
) -> bytes:
    """sha256 over the node tree in document order: each node's kind, resolved tag and scalar text (length
    prefixed), each collection's size. Two trees with the same fingerprint hold the same data, in order.

    ``strip_digests`` (ids of mappings) leaves out their ``digest`` pairs, ``strip_metadata`` the root's
    ``release-vector`` pair: a rendered vector minus what rendering adds fingerprints as its source.
    Kept instead of the source's tree so the read-back check holds one tree at a time.
    """
    hasher = hashlib.sha256()
    parts: list[str] = []
    stack: list[yaml.Node] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            parts.append(f"s{node.tag}\0{len(node.value)}\0{node.value}")
        elif isinstance(node, yaml.MappingNode):
            pairs = node.value
            drop = DIGEST_KEY if id(node) in strip_digests else None
            if strip_metadata and node is root:
                drop = METADATA_KEY
            if drop is not None:
                pairs = [(k, v) for k, v in pairs if not (isinstance(k, yaml.ScalarNode) and k.value == drop)]
            parts.append(f"m{node.tag}\0{len(pairs)}")
            for key, value in reversed(pairs):
                stack.append(value)
                stack.append(key)
        elif isinstance(node, yaml.SequenceNode):
            parts.append(f"q{node.tag}\0{len(node.value)}")
            stack.extend(reversed(node.value))
        if len(parts) >= 4096:
            hasher.update("\n".join(parts).encode("utf-8", "surrogatepass") + b"\n")
            parts.clear()
    hasher.update("\n".join(parts).encode("utf-8", "surrogatepass"))
    return hasher.digest()


def _check_rendered(
    source: Source,
    output: bytes,
    expected: Iterable[str | None],
    metadata: VectorMetadata,
    expected_binaries: Sequence[str | None] = (),
) -> None:
    def fail(what: str) -> ReleaseVectorError:
        return ReleaseVectorError(f"internal error: the rendered vector {what}", where=source.where)

    with _gc_paused():
        _check_output(source, output, expected, metadata, fail, expected_binaries)


def _check_output(
    source: Source,
    output: bytes,
    expected: Iterable[str | None],
    metadata: VectorMetadata,
    fail: Callable[[str], ReleaseVectorError],
    expected_binaries: Sequence[str | None] = (),
) -> None:
    try:
        known = {image.name: image.repository for image in source.oci_entries}
        document = _parse(output, source.where, vector=True, known=known)
    except InvalidInputError as exc:
        raise fail(f"does not read back: {exc.one_line()}") from None
    found = [*document.found, *document.artifacts]
    got = [(f.entry.kind, f.entry.name, f.entry.tag, f.entry.digest) for f in found]
    want = [(e.kind, e.name, e.tag, digest) for e, digest in zip(source.oci_entries, expected, strict=True)]
    if got != want:
        raise fail("does not carry the digests at the images and artifacts")
    got_binaries = [(b.entry.url, b.entry.digest) for b in document.binaries]
    if got_binaries != [(b.url, d) for b, d in zip(source.binaries, expected_binaries, strict=True)]:
        raise fail("does not carry the digests at the binaries")
    if document.metadata != metadata:
        raise fail("does not carry the metadata")
    # What rendering added: the digests of the images and artifacts, and of the binaries the source left unpinned.
    binaries = zip(document.binaries, source.binaries, strict=True)
    added = [id(found.mapping) for found, entry in binaries if entry.digest is None]
    mappings = [id(f.mapping) for f in found] + added
    stripped = _fingerprint(document.root, strip_digests=frozenset(mappings), strip_metadata=True)
    if stripped != source._layout.fingerprint:
        raise fail("without digests and metadata differs from the source")
