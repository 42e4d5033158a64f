"""The narrow interface every release target offers, and the pure diff a planner builds on it.

A *release target* is where a release is published: a GitHub release (:mod:`pipeline.targets.github`)
or a local folder (:mod:`pipeline.targets.release_dir`). Both follow the same life cycle:

    (nothing) --ensure_draft--> draft --upload_asset...--> draft with every asset --publish--> published

and the same rules: a release stays a draft until every asset is there; an asset already present with
the same content is skipped, with different content it is a :class:`~pipeline.errors.ConflictError`;
a published release is never written to (a published release that lacks one of our assets, or holds a
different one, is a conflict with a hint, never a silent partial).

:func:`diff_release` tells, read-only, what remains to be done for a wanted set of assets given what
:meth:`ReleaseTarget.observe` saw; :func:`sync_release` does it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Protocol, runtime_checkable

from pipeline.errors import ConflictError, InvalidInputError
from pipeline.oci import digest as digests

UPLOADED: Final = "uploaded"
"""An asset whose content is complete."""
STARTER: Final = "starter"
"""An incomplete asset (GitHub leaves one after a failed upload; a folder, a file without its record)."""

_VERSION_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
_ASSET_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$")



def check_version(version: str) -> str:
    """A version usable as a git tag and as a folder name (``v1.2.3``, ``v0.22.19-rc.1``), or InvalidInputError."""
    if not _VERSION_RE.match(version) or ".." in version:
        raise InvalidInputError(
            f"release version {version!r} is not usable as a tag and folder name",
            hint="use letters, digits and . _ + - (for example v1.2.3)",
        )
    return version


def check_asset_name(name: str) -> str:
    """An asset name GitHub keeps as it is (it renames others) and a safe file name, or InvalidInputError."""
    if not _ASSET_NAME_RE.match(name) or ".." in name:
        raise InvalidInputError(f"release asset name {name!r} is not a plain file name (letters, digits, . _ -)")
    return name


# --- what a target reports ----------------------------------------------------------------------


@dataclass(frozen=True)
class AssetState:
    """One asset of a release: its size, its ``sha256:<hex>`` digest when the target tells it, its state."""

    name: str
    size: int
    digest: str | None
    state: str = UPLOADED

    @property
    def complete(self) -> bool:
        return self.state == UPLOADED


def _freeze_assets(assets: Mapping[str, AssetState]) -> Mapping[str, AssetState]:
    return MappingProxyType({a.name: a for a in assets.values()})


@dataclass(frozen=True)
class ReleaseState:
    """What a target holds for one version: nothing, a draft, or a published release, and its assets."""

    version: str
    exists: bool = False
    draft: bool = False
    assets: Mapping[str, AssetState] = field(default_factory=lambda: MappingProxyType({}))
    where: str = ""
    """Where the release lives (a URL or a path), for messages and plans."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "assets", _freeze_assets(self.assets))

    @property
    def published(self) -> bool:
        return self.exists and not self.draft


@dataclass(frozen=True)
class ReleaseHandle:
    """A draft release as :meth:`ReleaseTarget.ensure_draft` returned it; opaque to callers.

    ``ident`` is the target's own key (GitHub: the release id; a folder: the release's path);
    ``upload_url`` is GitHub's ``upload_url`` template (None for a folder).
    """

    version: str
    ident: str
    upload_url: str | None = None
    where: str = ""


@dataclass(frozen=True)
class FetchedAsset:
    """An asset of a published release as ``verify-release`` reads it: its bytes, or None and why not.

    ``where`` is where it is (or would be): the release's URL, or the file's path.
    """

    content: bytes | None = field(repr=False)
    where: str
    problem: str | None = None  # with content None: why (no published release, absent, incomplete, too large)
    missing: bool = False  # the release is published without an asset of that name


@dataclass(frozen=True)
class WantedAsset:
    """An asset a release should carry: its exact bytes and media type."""

    name: str
    data: bytes = field(repr=False)
    content_type: str = "application/octet-stream"

    def __post_init__(self) -> None:
        check_asset_name(self.name)

    @property
    def digest(self) -> str:
        return digests.compute(self.data)

    @property
    def size(self) -> int:
        return len(self.data)


# --- the interface ---------------------------------------------------------------------------


@runtime_checkable
class ReleaseTarget(Protocol):
    """Where a release is published. Every method is safe to call again after a failure."""

    def describe(self) -> str:
        """Short name for plans and messages: ``github.com/owner/repo``, ``dir:/path``."""
        ...

    def observe(self, version: str) -> ReleaseState:
        """Read-only: the release for ``version`` (a draft too) and its assets."""
        ...

    def check_writable(self, version: str) -> None:
        """Read-only look, before anything is written anywhere: an error if writes to ``version``'s
        release cannot succeed (a release folder that is a file or read-only)."""
        ...

    def ensure_draft(self, version: str, *, target_commitish: str | None, name: str, body: str) -> ReleaseHandle:
        """The draft release for ``version``, created if there is none.

        A published release for ``version`` is a :class:`~pipeline.errors.ConflictError`: it is never
        turned back into a draft nor written to.
        """
        ...

    def upload_asset(self, handle: ReleaseHandle, name: str, data: bytes, content_type: str) -> bool:
        """Put an asset on the draft; True if written, False if the same content was already there.

        Different content under that name is a :class:`~pipeline.errors.ConflictError`; an incomplete
        (starter) asset is replaced.
        """
        ...

    def publish(self, handle: ReleaseHandle) -> None:
        """Turn the draft into the published release (a no-op if it is published already)."""
        ...

    def read_asset(self, version: str, name: str, *, published_only: bool = True) -> bytes | None:
        """The content of an asset of the (published) release for ``version``; None if absent."""
        ...

    def fetch_asset(self, version: str, name: str, *, max_bytes: int) -> FetchedAsset:
        """An asset of the published release for ``version``, read only if at most ``max_bytes`` (a hostile
        server or folder cannot exhaust memory): its content, or None with the reason and where it was sought."""
        ...


# --- what remains to be done (pure) ----------------------------------------------------------


@dataclass(frozen=True)
class AssetConflict:
    """A reason the release cannot be completed without a human."""

    name: str
    message: str
    hint: str

    def error(self, where: str) -> ConflictError:
        return ConflictError(self.message, where=where, hint=self.hint)


@dataclass(frozen=True)
class ReleaseDiff:
    """What remains for a target to carry the wanted assets, published.

    ``upload``: assets missing (or only a starter) on the draft. ``compare``: assets present whose
    digest the target does not tell; :meth:`ReleaseTarget.upload_asset` (draft) or a read
    (published) compares their content. ``conflicts``: what no re-run can fix.
    """

    version: str
    where: str
    create_draft: bool
    upload: tuple[str, ...]
    compare: tuple[str, ...]
    publish: bool
    conflicts: tuple[AssetConflict, ...] = ()

    @property
    def done(self) -> bool:
        """Nothing to write and nothing left unverified."""
        return not (self.create_draft or self.upload or self.compare or self.publish or self.conflicts)

    def raise_for_conflicts(self) -> None:
        if self.conflicts:
            raise self.conflicts[0].error(self.where)


def _published_hint(version: str) -> str:
    return (
        f"a published release cannot take assets (immutable releases); delete release {version} and its tag "
        "to release it again, or release a new version"
    )


def diff_release(state: ReleaseState, wanted: Sequence[WantedAsset]) -> ReleaseDiff:
    """Compare what a target holds with the wanted assets: the actions left, and the conflicts."""
    version = state.version
    upload: list[str] = []
    compare: list[str] = []
    conflicts: list[AssetConflict] = []
    for asset in wanted:
        present = state.assets.get(asset.name)
        if present is None or not present.complete:
            if state.published:
                conflicts.append(
                    AssetConflict(
                        asset.name,
                        f"release {version} is published without the asset {asset.name}",
                        _published_hint(version),
                    )
                )
            else:
                upload.append(asset.name)
            continue
        differs = (present.digest is not None and present.digest != asset.digest) or present.size != asset.size
        if differs:
            hint = (
                _published_hint(version)
                if state.published
                else f"delete the asset {asset.name} from the draft release {version} if it is stale, then re-run"
            )
            state_word = "published" if state.published else "draft"
            conflicts.append(
                AssetConflict(asset.name, f"{state_word} release {version} holds a different {asset.name}", hint)
            )
        elif present.digest is None:
            compare.append(asset.name)
    return ReleaseDiff(
        version=version,
        where=state.where,
        create_draft=not state.exists,
        upload=tuple(upload),
        compare=tuple(compare),
        publish=not state.published,
        conflicts=tuple(conflicts),
    )


# --- doing it ----------------------------------------------------------------------------------

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def sync_release(
    target: ReleaseTarget,
    version: str,
    wanted: Sequence[WantedAsset],
    *,
    target_commitish: str | None,
    name: str,
    body: str,
    progress: Progress = _quiet,
) -> ReleaseState:
    """Bring ``target`` to: release ``version`` published with exactly the wanted assets' content.

    Draft first, every asset, then publish; a failure anywhere leaves a draft a re-run completes. A
    published release is only checked (its assets read when their digest is unknown), never written.
    Returns what the target holds afterwards.
    """
    check_version(version)
    state = target.observe(version)
    diff = diff_release(state, wanted)
    diff.raise_for_conflicts()
    by_name = {a.name: a for a in wanted}
    if state.published:
        for asset_name in diff.compare:
            content = target.read_asset(version, asset_name, published_only=True)
            if content != by_name[asset_name].data:
                raise ConflictError(
                    f"published release {version} holds a different {asset_name}",
                    where=state.where or target.describe(),
                    hint=_published_hint(version),
                )
        return state
    handle = target.ensure_draft(version, target_commitish=target_commitish, name=name, body=body)
    for asset_name in (*diff.upload, *diff.compare):
        asset = by_name[asset_name]
        written = target.upload_asset(handle, asset.name, asset.data, asset.content_type)
        progress(f"{'uploaded' if written else 'already there'}: {asset.name}")
    target.publish(handle)
    progress(f"published {version} on {target.describe()}")
    return target.observe(version)
