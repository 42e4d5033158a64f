"""Pushing the release vector artifact to a registry and pulling it back (the I/O around ``artifact``).

Push is idempotent and careful: every tag is looked at first, read-only (one HEAD each); a version tag
(``v0.22.19``, ``1.2.3-rc.1``) that already points at another digest is refused before anything is
written, unless forced; floating tags (``latest``, branch names) move, as metal-stack's workflow moves
them. Tags already at our digest are left alone: a re-run writes nothing. Otherwise the config and
layer blobs are uploaded (each skipped if present) and the manifest is PUT by the first tag to write,
then by the others.

Pull reads the manifest once, by tag or digest; with a policy it verifies the signature on *that*
manifest's digest before it fetches the layer, so what is returned is what was verified.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from pipeline.artifact import (
    MAX_LAYER_BYTES,
    ArtifactAnnotations,
    VectorArtifact,
    make_artifact,
    manifest_annotations,
    select_vector_layer,
    unpack_vector,
)
from pipeline.cosign.verify import VerificationPolicy
from pipeline.errors import ConflictError, InvalidInputError, RegistryError, VerificationError
from pipeline.oci import mediatypes
from pipeline.oci.client import Descriptor, Manifest
from pipeline.oci.reference import Reference, Repository
from pipeline.signatures.verify import ImageVerification, verify_image

Observation = Literal["absent", "same", "different"]
TagStatus = Literal["created", "unchanged", "moved"]

VERSION_TAG_RE: Final = re.compile(r"^v?[0-9]+(?:\.[0-9]+)+(?:[-.][0-9A-Za-z][0-9A-Za-z.-]*)?$")


class ArtifactRegistry(Protocol):
    """The registry operations push and pull need (``RegistryClient`` provides them)."""

    def head_manifest(self, ref: Reference, accept: Iterable[str] = ...) -> Descriptor | None: ...

    def get_manifest(self, ref: Reference, accept: Iterable[str] = ...) -> Manifest: ...

    def put_manifest(
        self, target: Reference | Repository, tag_or_digest: str | None, data: bytes, media_type: str
    ) -> str: ...

    def upload_blob(
        self,
        target: Reference | Repository,
        data: bytes,
        mount_from: Reference | Repository | None = ...,
        *,
        check_exists: bool = ...,
    ) -> str: ...

    def get_blob(self, target: Reference | Repository, digest: str, *, max_bytes: int = ...) -> bytes: ...


def is_version_tag(tag: str) -> bool:
    """A tag naming a release (``v0.22.19``, ``v0.22.19-rc.1``, ``1.2``): published once, never moved."""
    return VERSION_TAG_RE.match(tag) is not None


# --- observing (read-only) -----------------------------------------------------------------------


@dataclass(frozen=True)
class TagObservation:
    """What a tag points at now, compared with the digest we would push."""

    tag: str
    state: Observation
    current: str | None  # the digest the tag points at, None if absent


def observe_tag(client: ArtifactRegistry, repository: Repository, tag: str, digest: str) -> TagObservation:
    """One HEAD: is ``repository:tag`` absent, at ``digest``, or at something else?"""
    descriptor = client.head_manifest(repository.tag(tag), mediatypes.ALL_MANIFESTS)
    if descriptor is None:
        return TagObservation(tag, "absent", None)
    return TagObservation(tag, "same" if descriptor.digest == digest else "different", descriptor.digest)


def observe_artifact(client: ArtifactRegistry, repository: Repository, tag: str, digest: str) -> Observation:
    """``'absent'``, ``'same'`` or ``'different'``: for a plan, without writing anything."""
    return observe_tag(client, repository, tag, digest).state


# --- push ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagOutcome:
    tag: str
    status: TagStatus
    previous: str | None = None  # for "moved": the digest the tag pointed at before


@dataclass(frozen=True)
class PushResult:
    repository: Repository
    digest: str
    size: int
    tags: tuple[TagOutcome, ...]

    @property
    def reference(self) -> Reference:
        return self.repository.digest(self.digest)

    @property
    def written(self) -> tuple[str, ...]:
        return tuple(t.tag for t in self.tags if t.status != "unchanged")

    @property
    def unchanged(self) -> tuple[str, ...]:
        return tuple(t.tag for t in self.tags if t.status == "unchanged")

    def to_json(self) -> dict[str, object]:
        return {
            "repository": self.repository.name,
            "digest": self.digest,
            "reference": str(self.reference),
            "size": self.size,
            "tags": [{"tag": t.tag, "status": t.status, "previous": t.previous} for t in self.tags],
        }


def _unique_tags(repository: Repository, tags: Sequence[str]) -> tuple[str, ...]:
    if not tags:
        raise InvalidInputError("no tag to push", where=repository.name, hint="give --tag")
    for tag in tags:
        repository.tag(tag)  # validates
    return tuple(dict.fromkeys(tags))


def push_artifact(
    client: ArtifactRegistry,
    repository: Repository,
    tags: Sequence[str],
    artifact: VectorArtifact,
    *,
    force: bool = False,
    on_progress: Callable[[str], None] | None = None,
) -> PushResult:
    """Make every tag point at ``artifact``; refuse to move a version tag unless ``force``."""
    wanted = _unique_tags(repository, tags)
    say = on_progress or (lambda _message: None)
    observations = [observe_tag(client, repository, tag, artifact.digest) for tag in wanted]
    conflicts = [o for o in observations if o.state == "different" and is_version_tag(o.tag)]
    if conflicts and not force:
        first = conflicts[0]
        raise ConflictError(
            f"tag {first.tag} already points at {first.current}, not at {artifact.digest}",
            where=str(repository.tag(first.tag)),
            hint="a published version is not moved; pass --force to move it anyway",
        )
    to_write = [o for o in observations if o.state != "same"]
    if to_write:
        client.upload_blob(repository, artifact.config)
        client.upload_blob(repository, artifact.layer)
        for observation in to_write:
            stored = client.put_manifest(repository, observation.tag, artifact.manifest, artifact.media_type)
            if stored != artifact.digest:
                raise RegistryError(
                    f"registry stored the manifest as {stored}, not {artifact.digest}",
                    where=str(repository.tag(observation.tag)),
                )
            verb = "moved" if observation.state == "different" else "tagged"
            say(f"{verb} {repository.tag(observation.tag)} -> {artifact.digest}")
    outcomes = tuple(
        TagOutcome(o.tag, "unchanged")
        if o.state == "same"
        else TagOutcome(o.tag, "moved", o.current)
        if o.state == "different"
        else TagOutcome(o.tag, "created")
        for o in observations
    )
    return PushResult(repository, artifact.digest, len(artifact.manifest), outcomes)


def push_vector(
    client: ArtifactRegistry,
    repository: Repository,
    tags: Sequence[str],
    vector: bytes,
    annotations: ArtifactAnnotations,
    force: bool = False,
    *,
    mtime: int = 0,
    on_progress: Callable[[str], None] | None = None,
) -> PushResult:
    """Pack ``vector`` (bytes as they are, never re-serialised) and push it (see :func:`push_artifact`)."""
    artifact = make_artifact(vector, annotations, mtime=mtime)
    return push_artifact(client, repository, tags, artifact, force=force, on_progress=on_progress)


# --- pull ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PulledVector:
    """The vector's bytes, the manifest digest they came from, and the verification (None: not verified)."""

    reference: Reference
    digest: str
    content: bytes
    verification: ImageVerification | None
    annotations: Mapping[str, object] = field(default_factory=dict)  # the artifact manifest's

    @property
    def pinned(self) -> Reference:
        return self.reference.with_digest(self.digest)


def pull_vector(
    client: ArtifactRegistry,
    ref: Reference,
    policy: VerificationPolicy | None,
    *,
    all_formats: bool = True,
    signatures: Repository | None = None,
) -> PulledVector:
    """Fetch the artifact at ``ref``; with ``policy``, verify its signature first (VerificationError if not).

    ``all_formats=False``: one valid signature is enough (see :func:`verify_image`); ``signatures``: the
    repository holding its signatures (``--signature-repository``; None: its own).
    """
    manifest = client.get_manifest(ref, mediatypes.ALL_MANIFESTS)
    pinned = ref.with_digest(manifest.digest)
    verification: ImageVerification | None = None
    if policy is not None:
        verification = verify_image(client, pinned, policy, all_formats=all_formats, signatures=signatures)
        if not verification.ok and verification.unchecked is not None:
            raise verification.unchecked  # could not check (exit 5, or 4): not a bad signature
        if not verification.ok:
            raise VerificationError(
                f"signature verification failed: {verification.reason()}",
                where=str(pinned),
                hint="; ".join(verification.hints) or None,
            )
    layer = select_vector_layer(manifest.data, str(pinned))
    where = f"{ref.name}@{layer.digest}"
    blob = client.get_blob(ref.repo, layer.digest, max_bytes=MAX_LAYER_BYTES)
    if len(blob) != layer.size:
        raise InvalidInputError(f"the layer is {len(blob)} bytes, the manifest says {layer.size}", where=where)
    content = unpack_vector(blob, where)
    return PulledVector(ref, manifest.digest, content, verification, manifest_annotations(manifest.data))
