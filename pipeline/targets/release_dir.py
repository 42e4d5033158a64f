"""The local release target: ``DIR/VERSION/`` for rehearsals and air-gapped sites (``--release-dir``).

Layout::

    DIR/VERSION/cosign.pub      the assets, each written atomically (temporary file + rename)
    DIR/VERSION/release.yaml
    DIR/VERSION/release.json    {"version": ..., "state": "draft"|"published",
                                 "assets": {name: {"sha256": <hex>, "size": <bytes>}}}

``release.json`` is the record: an asset counts only once the record lists it with the digest of the
file on disk (a file without that is a leftover of an interrupted run, like GitHub's starter asset,
and is replaced on a draft). The draft-then-publish semantics are GitHub's: ``publish`` flips
``state``; a published release is never written to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Final

from pipeline import jsonbounded
from pipeline.errors import ConflictError, InvalidInputError
from pipeline.targets.base import (
    STARTER,
    UPLOADED,
    AssetState,
    FetchedAsset,
    ReleaseHandle,
    ReleaseState,
    check_asset_name,
    check_version,
)

RECORD: Final = "release.json"
DRAFT: Final = "draft"
PUBLISHED: Final = "published"


class ReleaseDirError(InvalidInputError):
    """The release folder cannot be read or written (a file-system failure, named with its path; exit 3)."""


ASSET_MODE: Final = 0o644  # published files: readable by whoever serves or mirrors the folder


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), ASSET_MODE)  # mkstemp makes 0600
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _TooLarge(Exception):
    """Internal: a file over the read limit (its message says how large, or what else it is)."""


def _read_capped(path: Path, limit: int) -> bytes:
    """A regular file's bytes, never reading more than ``limit`` + 1 (a huge file or a device is refused)."""
    with path.open("rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _TooLarge("not a regular file")
        if info.st_size > limit:
            raise _TooLarge(f"{info.st_size} bytes, over the limit of {limit}")
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise _TooLarge(f"over the limit of {limit} bytes")
    return data


def _hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ReleaseDirTarget:
    """:class:`~pipeline.targets.base.ReleaseTarget` on a local folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return f"dir:{self.root}"

    # --- reading -------------------------------------------------------------------------------

    def _dir(self, version: str) -> Path:
        return self.root / check_version(version)

    def _read_record(self, version: str) -> dict[str, Any] | None:
        path = self._dir(version) / RECORD
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ReleaseDirError(f"cannot read the release record: {exc.strerror}", where=str(path)) from None
        try:
            record = jsonbounded.loads(raw, source=str(path), what="release record")
        except (ValueError, UnicodeDecodeError):
            raise InvalidInputError("release record is not JSON", where=str(path)) from None
        if (
            not isinstance(record, dict)
            or record.get("version") != version
            or record.get("state") not in (DRAFT, PUBLISHED)
            or not isinstance(record.get("assets"), dict)
        ):
            raise InvalidInputError(
                f"release record is not one of release {version} (version, state, assets)", where=str(path)
            )
        return record

    def _write_record(self, version: str, record: dict[str, Any]) -> None:
        path = self._dir(version) / RECORD
        data = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8")
        try:
            _atomic_write(path, data)
        except OSError as exc:
            raise ReleaseDirError(f"cannot write the release record: {exc.strerror}", where=str(path)) from None

    def _file(self, version: str, name: str) -> bytes | None:
        path = self._dir(version) / check_asset_name(name)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ReleaseDirError(f"cannot read the asset: {exc.strerror}", where=str(path)) from None

    def _asset_state(self, version: str, name: str, entry: object) -> AssetState | None:
        data = self._file(version, name)
        if data is None:
            return None
        recorded = isinstance(entry, dict) and entry.get("sha256") == _hex(data) and entry.get("size") == len(data)
        return AssetState(name, len(data), "sha256:" + _hex(data), UPLOADED if recorded else STARTER)

    def _check_directories(self, version: str) -> Path:
        """``DIR/VERSION``, after checking that no existing part of it is something else than a folder."""
        directory = self._dir(version)
        for part in (directory, *directory.parents):
            if os.path.lexists(part) and not part.is_dir():
                raise ReleaseDirError("the release folder is not a directory", where=str(part))
        return directory

    def observe(self, version: str) -> ReleaseState:
        directory = self._check_directories(version)
        record = self._read_record(version)
        if record is None:
            return ReleaseState(version, where=str(directory))
        assets: list[AssetState] = []
        recorded: dict[str, Any] = record["assets"]
        names = set(recorded)
        if directory.is_dir():
            names |= {p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")}
        names.discard(RECORD)
        for name in sorted(names):
            try:
                check_asset_name(name)
            except InvalidInputError:
                continue  # a stray file we would never have written
            state = self._asset_state(version, name, recorded.get(name))
            if state is not None:
                assets.append(state)
        return ReleaseState(version, True, record["state"] == DRAFT, {a.name: a for a in assets}, where=str(directory))

    def read_asset(self, version: str, name: str, *, published_only: bool = True) -> bytes | None:
        record = self._read_record(version)
        if record is None or (published_only and record["state"] != PUBLISHED):
            return None
        state = self._asset_state(version, name, record["assets"].get(name))
        if state is None or not state.complete:
            return None
        return self._file(version, name)

    def fetch_asset(self, version: str, name: str, *, max_bytes: int) -> FetchedAsset:
        directory = self._dir(version)
        path = directory / check_asset_name(name)
        record = self._read_record(version)
        if record is None or record["state"] != PUBLISHED:
            return FetchedAsset(None, str(directory), f"release {version} is not published")
        try:
            data = _read_capped(path, max_bytes)
        except FileNotFoundError:
            return FetchedAsset(None, str(path), f"release {version} is published without {name}", missing=True)
        except _TooLarge as large:
            return FetchedAsset(None, str(path), f"{name} of release {version} is {large}")
        except OSError as exc:
            raise ReleaseDirError(f"cannot read the asset: {exc.strerror}", where=str(path)) from None
        entry = record["assets"].get(name)
        if not (isinstance(entry, dict) and entry.get("sha256") == _hex(data) and entry.get("size") == len(data)):
            return FetchedAsset(None, str(path), f"{name} of release {version} does not match the release record "
                                f"{RECORD} (incomplete or changed)")  # fmt: skip
        return FetchedAsset(data, str(path))

    # --- writing -------------------------------------------------------------------------------

    def check_writable(self, version: str) -> None:
        """Part of the look, before anything is pushed or signed: ``DIR/VERSION`` can be written.

        Every existing part of the path must be a directory, and the deepest existing one must take a new
        file: tried by creating and removing a probe file (permission bits do not stop root, a read-only
        mount does; the probe sees both). Nothing is left behind, nothing is created when it works.
        """
        directory = self._check_directories(version)
        existing = directory
        while not os.path.lexists(existing) and existing != existing.parent:
            existing = existing.parent
        try:
            fd, probe = tempfile.mkstemp(prefix=".release-vector-probe.", dir=existing)
        except OSError as exc:
            raise ReleaseDirError(
                f"the release folder is not writable: {exc.strerror or exc}",
                where=str(existing),
                hint="--release-dir must name a folder this user can write",
            ) from None
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)

    def ensure_draft(self, version: str, *, target_commitish: str | None, name: str, body: str) -> ReleaseHandle:
        directory = self._dir(version)
        record = self._read_record(version)
        if record is None:
            record = {"version": version, "state": DRAFT, "assets": {}}
            self._write_record(version, record)
        elif record["state"] == PUBLISHED:
            raise ConflictError(
                f"release {version} is already published",
                where=str(directory),
                hint=f"a published release is not written to again; remove {directory} to redo it, or release a "
                "new version",
            )
        return ReleaseHandle(version, str(directory), None, str(directory))

    def upload_asset(self, handle: ReleaseHandle, name: str, data: bytes, content_type: str) -> bool:
        version = handle.version
        if check_asset_name(name) == RECORD:
            raise InvalidInputError(f"{RECORD} is the release record, not an asset name", where=str(self._dir(version)))
        directory = self._dir(version)
        path = directory / name
        record = self._read_record(version)
        if record is None:
            raise ConflictError(
                f"release {version} has no draft to upload {name} to", where=str(directory), hint="re-run the release"
            )
        present = self._asset_state(version, name, record["assets"].get(name))
        if present is not None and present.complete:
            if present.digest == "sha256:" + _hex(data):
                return False
            hint = (
                f"remove {path} if it is stale, then re-run"
                if record["state"] == DRAFT
                else f"a published release is not written to again; remove {directory} to redo it"
            )
            raise ConflictError(f"release {version} holds a different {name}", where=str(path), hint=hint)
        if record["state"] == PUBLISHED:
            raise ConflictError(
                f"release {version} is published without the asset {name}",
                where=str(directory),
                hint=f"a published release is not written to again; remove {directory} to redo it, or release a "
                "new version",
            )
        try:
            _atomic_write(path, data)
        except OSError as exc:
            raise ReleaseDirError(f"cannot write the asset: {exc.strerror}", where=str(path)) from None
        record["assets"][name] = {"sha256": _hex(data), "size": len(data)}
        self._write_record(version, record)
        return True

    def publish(self, handle: ReleaseHandle) -> None:
        version = handle.version
        record = self._read_record(version)
        if record is None:
            raise ConflictError(
                f"release {version} has no draft to publish", where=str(self._dir(version)), hint="re-run the release"
            )
        if record["state"] == PUBLISHED:
            return
        record["state"] = PUBLISHED
        self._write_record(version, record)
