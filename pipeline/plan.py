"""The Plan: every write a release makes, in order, as frozen data (pure).

``build_plan(desired, observed)`` compares what the release should be with what the targets hold now
(looked at read-only) and lists only what is missing. So a re-run after success plans nothing, and a
re-run after a crash plans exactly the rest. The order is the safety argument:

1. push the vector artifact (tag VERSION);
2. sign the vector artifact's digest;
3. sign every unique image and OCI artifact digest the vector pins;
4. create (or reuse) the draft release;
5. upload the assets (``cosign.pub``, ``release.yaml``);
6. publish — last, so nothing is published before every signature and asset exists.

``--dry-run`` prints this Plan and writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pipeline.targets.base import ReleaseDiff, WantedAsset

ActionKind = Literal[
    "push-vector", "sign-vector", "sign-image", "sign-artifact", "create-draft", "upload-asset", "publish"
]
# The signatures of what the vector pins: images, and OCI artifacts (Helm charts, Ansible roles; a manifest like
# any other, signed the same way). One kind each so the plan and the summary can count them apart.
SIGN_PINNED: tuple[ActionKind, ...] = ("sign-image", "sign-artifact")


@dataclass(frozen=True)
class Action:
    """One write. ``target`` names where it goes (a reference, an asset, a release); ``digest`` what."""

    kind: ActionKind
    target: str
    digest: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "target": self.target, "digest": self.digest, "detail": self.detail}


@dataclass(frozen=True)
class Plan:
    version: str
    actions: tuple[Action, ...]
    published: bool = True  # False: no release target (--no-publish); the text says so

    @property
    def unpublished(self) -> str:
        """What the plan's lines append when the release is not published (``--no-publish``), else ""."""
        return "" if self.published else "; not published (--no-publish)"

    @property
    def is_empty(self) -> bool:
        return not self.actions

    def count(self, kind: ActionKind) -> int:
        return sum(1 for action in self.actions if action.kind == kind)

    def to_json(self) -> list[dict[str, object]]:
        return [action.to_json() for action in self.actions]

    def render_text(self) -> str:
        """A plain table, one action a line (the CLI may render it with rich on a terminal)."""
        unpublished = self.unpublished
        if self.is_empty:
            return f"release {self.version}: nothing to do (everything is in place){unpublished}"
        width = max(len(action.kind) for action in self.actions)
        lines = [f"release {self.version}: {len(self.actions)} action(s){unpublished}"]
        for number, action in enumerate(self.actions, 1):
            digest = f"  {action.digest}" if action.digest else ""
            detail = f"  ({action.detail})" if action.detail else ""
            lines.append(f"{number:>4}. {action.kind:<{width}}  {action.target}{digest}{detail}")
        return "\n".join(lines)


@dataclass(frozen=True)
class ImageToSign:
    """An image (or OCI artifact, ``kind`` ``oci-artifact``) the vector pins: the name the vector lists and the
    digest it pins."""

    name: str
    digest: str
    kind: str = "image"


@dataclass(frozen=True)
class DesiredRelease:
    """What the release must be once applied (``target``: the release target's name, or None)."""

    version: str
    artifact: str  # REGISTRY/REPO:VERSION
    artifact_digest: str
    images: tuple[ImageToSign, ...]
    target: str | None
    assets: tuple[WantedAsset, ...]


@dataclass(frozen=True)
class ObservedRelease:
    """What the targets hold now (a read-only look). ``release`` is None when there is no target."""

    artifact_tagged: bool  # VERSION already points at artifact_digest
    artifact_signed: bool
    signed_images: frozenset[tuple[str, str]]  # (name, digest) already carrying our signature
    release: ReleaseDiff | None


def unique_images(images: Sequence[ImageToSign]) -> tuple[ImageToSign, ...]:
    """Each name@digest once, in first-seen order (an image listed under several keys is signed once)."""
    return tuple(dict.fromkeys(images))


def build_plan(desired: DesiredRelease, observed: ObservedRelease) -> Plan:
    """The writes still missing, in the safe order.

    A release the target cannot complete (a published release without our assets, a different asset
    on it) is a ConflictError here, before anything is written.
    """
    actions: list[Action] = []
    release = observed.release
    if release is not None:
        release.raise_for_conflicts()
    if not observed.artifact_tagged:
        actions.append(Action("push-vector", desired.artifact, desired.artifact_digest))
    if not observed.artifact_signed:
        actions.append(Action("sign-vector", desired.artifact.rsplit(":", 1)[0], desired.artifact_digest))
    for image in unique_images(desired.images):
        if (image.name, image.digest) not in observed.signed_images:
            kind: ActionKind = "sign-image" if image.kind == "image" else "sign-artifact"
            actions.append(Action(kind, image.name, image.digest))
    if release is not None and desired.target is not None:
        if release.create_draft:
            actions.append(Action("create-draft", desired.target, None, f"tag {desired.version}"))
        digests = {asset.name: asset.digest for asset in desired.assets}
        for name in release.upload:
            actions.append(Action("upload-asset", name, digests.get(name), desired.target))
        for name in release.compare:
            actions.append(Action("upload-asset", name, digests.get(name), "compare with the draft's copy"))
        if release.publish:
            actions.append(Action("publish", desired.target, None, f"tag {desired.version}"))
    return Plan(desired.version, tuple(actions), published=desired.target is not None)
