"""OCI image layouts (image-spec ``image-layout.md``): written as a copy's sink, read as its source, and
read like a registry by an offline ``verify-release``.

A layout made here: ``oci-layout``, ``index.json`` listing each tagged manifest with
``org.opencontainers.image.ref.name`` = its original ``repository:tag``, ``blobs/sha256/<hex>``. Nothing
read from a layout is trusted: every blob and manifest is checked against its digest as it is read, a
name in ``index.json`` must be a valid digest (so no path leaves ``blobs/``), and :func:`check_layout`
hashes everything before an import sends anything. A tar is unpacked only if every member is a plain
file or directory inside the destination (no ``..``, no absolute name, no link, no device).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tarfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from pipeline import jsonbounded
from pipeline.errors import LayoutError, NotFoundError
from pipeline.mirror.manifests import Ref
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from pipeline.oci.client import Descriptor, Manifest
from pipeline.oci.reference import Reference, Repository

REF_NAME: Final = "org.opencontainers.image.ref.name"
LAYOUT_FILE: Final = "oci-layout"
LAYOUT_CONTENT: Final = b'{"imageLayoutVersion":"1.0.0"}'
INDEX_FILE: Final = "index.json"
MAX_INDEX_BYTES: Final = 64 * 1024 * 1024
CHUNK: Final = 1024 * 1024


def _blob_path(root: Path, digest: str, where: str) -> Path:
    if not digests.is_valid(digest) or digests.algorithm_of(digest) != digests.SHA256:
        raise LayoutError(f"not a sha256 digest: {digest!r}", where=where)
    return root / "blobs" / "sha256" / digests.hex_of(digest)


def _media_type_of(data: bytes, where: str) -> str:
    try:
        document = jsonbounded.loads(data, source=where, what="manifest")
    except (ValueError, UnicodeDecodeError):
        raise LayoutError("manifest is not JSON", where=where) from None
    declared = document.get("mediaType") if isinstance(document, dict) else None
    if isinstance(declared, str) and declared:
        return declared
    if isinstance(document, dict) and "manifests" in document:
        return mediatypes.OCI_INDEX
    return mediatypes.OCI_MANIFEST


# --- writing ----------------------------------------------------------------------------------


class LayoutSink:
    """Writes a layout under ``root`` (a fresh directory the caller renames into place when done)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, dict[str, object]] = {}
        self._lock = threading.Lock()

    def manifest(self, repo: Repository, identifier: str) -> Manifest | None:
        digest = self.manifest_digest(repo, identifier)
        if digest is None:
            return None
        data = _blob_path(self.root, digest, str(self.root)).read_bytes()
        return Manifest(data, _media_type_of(data, digest), digest)

    def manifest_digest(self, repo: Repository, identifier: str) -> str | None:
        if ":" in identifier:
            return identifier if self.has_blob(repo, identifier) else None
        with self._lock:
            entry = self._entries.get(f"{repo.name}:{identifier}")
        return None if entry is None else str(entry["digest"])

    def has_blob(self, repo: Repository, digest: str) -> bool:
        return _blob_path(self.root, digest, str(self.root)).is_file()

    def mount_blob(self, repo: Repository, digest: str, source: Repository) -> bool:
        return False  # one blob store for every repository: has_blob already answered

    def put_blob(self, repo: Repository, digest: str, size: int, body: Iterable[bytes]) -> None:
        path = _blob_path(self.root, digest, str(self.root))
        partial = path.with_name(f"{path.name}.partial-{threading.get_ident()}")
        hasher = hashlib.sha256()
        total = 0
        with partial.open("wb") as out:
            for chunk in body:
                hasher.update(chunk)
                total += len(chunk)
                out.write(chunk)
        if total != size or f"sha256:{hasher.hexdigest()}" != digest:
            partial.unlink()
            raise LayoutError(f"blob of {total} bytes does not match {digest}", where=f"{repo.name}@{digest}")
        os.replace(partial, path)

    def put_manifest(self, repo: Repository, identifier: str, data: bytes, media_type: str) -> None:
        digest = digests.compute(data)
        if ":" in identifier and identifier != digest:
            raise LayoutError(f"manifest bytes have digest {digest}", where=f"{repo.name}@{identifier}")
        if not self.has_blob(repo, digest):
            self.put_blob(repo, digest, len(data), (data,))
        if ":" not in identifier:
            name = f"{repo.name}:{identifier}"
            entry: dict[str, object] = {"mediaType": media_type, "digest": digest, "size": len(data),
                                        "annotations": {REF_NAME: name}}  # fmt: skip
            with self._lock:
                self._entries[name] = entry

    def has_referrers_api(self, repo: Repository, digest: str) -> bool:
        return False  # a layout lists referrers in the fallback index at tag sha256-<hex>

    def finish(self, files: dict[str, bytes]) -> None:
        """Write ``index.json``, ``oci-layout`` and the extra ``files`` (top-level names)."""
        with self._lock:
            entries = [self._entries[name] for name in sorted(self._entries)]
        index = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": entries}
        (self.root / INDEX_FILE).write_bytes(json.dumps(index, indent=2).encode() + b"\n")
        (self.root / LAYOUT_FILE).write_bytes(LAYOUT_CONTENT)
        for name, content in files.items():
            (self.root / name).write_bytes(content)


def write_tar(directory: Path, target: Path) -> None:
    """``directory``'s content as a tar at ``target`` (sorted names, zero times and owners: reproducible)."""
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(directory.rglob("*")):
            name = path.relative_to(directory).as_posix()
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
                continue
            info.size, info.mode = path.stat().st_size, 0o644
            with path.open("rb") as content:
                archive.addfile(info, content)


def extract_tar(archive_path: Path, destination: Path) -> None:
    """Unpack a layout tar into the empty ``destination``, refusing (LayoutError) any member that is
    not a plain file or directory, or whose name is absolute or climbs out with ``..``."""
    where = str(archive_path)
    try:
        archive = tarfile.open(archive_path, "r:")  # noqa: SIM115  (closed by the with below)
    except (tarfile.TarError, OSError) as exc:
        raise LayoutError(f"not a readable tar: {exc}", where=where) from None
    with archive:
        members = archive.getmembers()
        for member in members:
            parts = Path(member.name).parts
            if member.name.startswith(("/", "\\")) or ".." in parts or not parts:
                raise LayoutError(f"tar member {member.name!r} leaves the layout", where=where)
            if not (member.isfile() or member.isdir()):
                raise LayoutError(f"tar member {member.name!r} is a link or special file", where=where)
        for member in members:
            path = destination.joinpath(*Path(member.name).parts)
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            with source, path.open("wb") as out:
                shutil.copyfileobj(source, out, CHUNK)


# --- reading ----------------------------------------------------------------------------------


class _FileBlob:
    def __init__(self, path: Path, digest: str, size: int, where: str) -> None:
        self.path, self.digest, self.size, self.where = path, digest, size, where

    def __iter__(self) -> Iterator[bytes]:
        hasher = hashlib.sha256()
        total = 0
        with self.path.open("rb") as content:
            while chunk := content.read(CHUNK):
                hasher.update(chunk)
                total += len(chunk)
                yield chunk
        if total != self.size or f"sha256:{hasher.hexdigest()}" != self.digest:
            raise LayoutError(f"layout blob does not match its digest {self.digest}", where=self.where)


class LayoutSource:
    """A layout read back: as a copy's :class:`~pipeline.mirror.ends.Source`, and through the registry
    read methods (``get_manifest``, ``head_manifest``, ``get_blob``, ``get_referrers``, ``list_tags``)
    that ``verify-release`` uses, with repositories named as ``index.json`` names them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        where = str(root / INDEX_FILE)
        if not (root / LAYOUT_FILE).is_file() or not (root / INDEX_FILE).is_file():
            raise LayoutError("not an OCI image layout (no oci-layout or index.json)", where=str(root))
        with (root / INDEX_FILE).open("rb") as index_file:
            data = index_file.read(MAX_INDEX_BYTES + 1)
        if len(data) > MAX_INDEX_BYTES:
            raise LayoutError("index.json is too large", where=where)
        try:
            document = jsonbounded.loads(data, source=where, what="index.json", max_bytes=MAX_INDEX_BYTES)
        except (ValueError, UnicodeDecodeError):
            raise LayoutError("index.json is not JSON", where=where) from None
        listed = document.get("manifests") if isinstance(document, dict) else None
        if not isinstance(listed, list):
            raise LayoutError("index.json lists no manifests", where=where)
        self.names: dict[str, str] = {}
        for entry in listed:
            name = entry.get("annotations", {}).get(REF_NAME) if isinstance(entry, dict) else None
            digest = entry.get("digest") if isinstance(entry, dict) else None
            if not isinstance(digest, str):
                raise LayoutError("index.json has an entry without a digest", where=where)
            path = _blob_path(root, digest, where)
            if not path.is_file() or path.is_symlink():
                raise LayoutError(f"index.json names {digest}, which is not a blob of the layout", where=where)
            if isinstance(name, str):
                self.names[name] = digest

    # --- as a copy's source ---

    def _digest_for(self, repo: Repository, identifier: str) -> str | None:
        if ":" in identifier:
            path = _blob_path(self.root, identifier, f"{repo.name}@{identifier}")
            return identifier if path.is_file() and not path.is_symlink() else None
        return self.names.get(f"{repo.name}:{identifier}")

    def manifest(self, repo: Repository, identifier: str) -> Manifest | None:
        digest = self._digest_for(repo, identifier)
        if digest is None:
            return None
        where = f"{repo.name}@{digest}"
        path = _blob_path(self.root, digest, where)
        if path.stat().st_size > mediatypes.MAX_MANIFEST_BYTES:
            raise LayoutError("manifest too large", where=where)
        data = path.read_bytes()
        if not digests.matches(data, digest):
            raise LayoutError(f"layout blob does not match its digest {digest}", where=where)
        return Manifest(data, _media_type_of(data, where), digest)

    def blob(self, repo: Repository, digest: str, size: int) -> Iterable[bytes]:
        where = f"{repo.name}@{digest}"
        path = _blob_path(self.root, digest, where)
        if not path.is_file() or path.is_symlink():
            raise LayoutError("blob missing from the layout", where=where)
        return _FileBlob(path, digest, size, where)

    def tags(self, repo: Repository) -> tuple[str, ...]:
        prefix = f"{repo.name}:"
        return tuple(name[len(prefix) :] for name in self.names if name.startswith(prefix))

    def referrers(self, repo: Repository, digest: str) -> tuple[Ref, ...] | None:
        return None

    # --- as a read-only registry, for verify-release ---

    def head_manifest(self, ref: Reference, accept: Iterable[str] = mediatypes.ALL_MANIFESTS) -> Descriptor | None:
        found = self.manifest(ref.repo, ref.identifier)
        return None if found is None else found.descriptor()

    def get_manifest(self, ref: Reference, accept: Iterable[str] = mediatypes.ALL_MANIFESTS) -> Manifest:
        found = self.manifest(ref.repo, ref.identifier)
        if found is None:
            raise NotFoundError("manifest not in the layout", where=str(ref))
        return found

    def get_blob(
        self, target: Reference | Repository, digest: str, *, max_bytes: int = 256 * 1024 * 1024,
        size: int | None = None,
    ) -> bytes:  # fmt: skip
        repo = target.repo if isinstance(target, Reference) else target
        where = f"{repo.name}@{digest}"
        path = _blob_path(self.root, digest, where)
        if not path.is_file() or path.is_symlink():
            raise NotFoundError("blob not in the layout", where=where)
        if path.stat().st_size > max_bytes:
            raise LayoutError("blob too large", where=where)
        data = path.read_bytes()
        if not digests.matches(data, digest):
            raise LayoutError(f"layout blob does not match its digest {digest}", where=where)
        return data

    def get_referrers(
        self, target: Reference | Repository, digest: str, artifact_type: str | None = None
    ) -> Manifest | None:
        return None  # the fallback tag sha256-<hex> lists them

    def list_tags(self, target: Reference | Repository) -> list[str]:
        return list(self.tags(target.repo if isinstance(target, Reference) else target))

    def put_manifest(self, target: Reference | Repository, tag_or_digest: str | None, data: bytes,
                     media_type: str) -> str:  # fmt: skip
        raise LayoutError("an OCI layout is read-only here", where=str(self.root))

    def upload_blob(self, target: Reference | Repository, data: bytes, mount_from: Reference | Repository | None = None,
                    *, check_exists: bool = True) -> str:  # fmt: skip
        raise LayoutError("an OCI layout is read-only here", where=str(self.root))


def check_layout(root: Path) -> None:
    """Every blob of the layout matches its name, and nothing in ``blobs/`` is a link or stray file
    (LayoutError naming the first that does not): run before an import sends anything."""
    blobs = root / "blobs"
    for folder in (root, blobs, blobs / "sha256", root / INDEX_FILE):
        if folder.is_symlink():
            raise LayoutError("a link where the layout must hold its own file or folder", where=str(folder))
    for path in sorted(blobs.rglob("*")) if blobs.is_dir() else ():
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            continue
        relative = path.relative_to(blobs).as_posix()
        if not stat.S_ISREG(mode) or not relative.startswith("sha256/"):
            raise LayoutError("not a blob of an OCI layout", where=str(path))
        digest = f"sha256:{path.name}"
        if not digests.is_valid(digest):
            raise LayoutError("blob file name is not a sha256 digest", where=str(path))
        hasher = hashlib.sha256()
        with path.open("rb") as content:
            while chunk := content.read(CHUNK):
                hasher.update(chunk)
        if f"sha256:{hasher.hexdigest()}" != digest:
            raise LayoutError("layout blob does not match its digest", where=str(path))
