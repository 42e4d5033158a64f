"""A whole release's writes: observe the targets read-only, plan, apply.

``observe_release`` looks at the registry and the release target without writing; ``build_plan``
(pure, :mod:`pipeline.plan`) lists the missing writes; ``apply_plan`` performs them in order through
the same ports. Every action is idempotent and the order keeps the release safe at any crash point:
the GitHub release (or release folder) is published last, after every signature and asset exists,
so a re-run after a failure completes it and a re-run after success plans nothing.

:mod:`pipeline.release` runs a whole release through here, and verifies one.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

from pipeline.artifact import VectorArtifact
from pipeline.binaries import BinaryFetcher
from pipeline.cosign.keys import PrivateKeyHandle, PublicKey
from pipeline.errors import ConflictError, ReleaseVectorError, UsageError
from pipeline.http import DEFAULT_CONCURRENCY, parallel_map
from pipeline.oci import mediatypes
from pipeline.oci.client import RegistryClient
from pipeline.oci.mirror import Mirrors
from pipeline.oci.reference import Reference, Repository, parse_reference
from pipeline.plan import SIGN_PINNED, Action, DesiredRelease, ImageToSign, ObservedRelease, Plan
from pipeline.publish import observe_artifact, push_artifact
from pipeline.signatures.blob import TimestampSource
from pipeline.signatures.formats import BundleFormat, layouts_for
from pipeline.signatures.layout import Layout, SignatureReads, SignStatus, WriteConfirmations
from pipeline.signatures.sign import index_children, is_signed, sign
from pipeline.signatures.signers import KeylessSigner, KeySigner, Signer
from pipeline.signatures.target import SignatureTarget
from pipeline.sigstore.tlog import TransparencyLog
from pipeline.targets.base import (
    ReleaseDiff,
    ReleaseHandle,
    ReleaseTarget,
    WantedAsset,
    diff_release,
)
from pipeline.vector import Vector, read_vector

T = TypeVar("T")

PUBLIC_KEY_ASSET = "cosign.pub"
VECTOR_ASSET = "release.yaml"


@dataclass(frozen=True)
class ReleaseRequest:
    """Everything decided before looking at any target: the bytes to publish and where."""

    version: str
    vector: bytes = field(repr=False)
    artifact: VectorArtifact = field(repr=False)
    repository: Repository
    public_key_pem: bytes | None = field(repr=False)  # None: a keyless-only release (no cosign.pub)
    target_commitish: str | None = None
    recursive: bool = False
    excluded: tuple[str, ...] = ()  # globs of image names the release does not sign (third-party images)
    keyless_identity: tuple[str, str] | None = None  # (certificate identity, OIDC issuer) when signing keyless

    @property
    def artifact_reference(self) -> Reference:
        return self.repository.tag(self.version)

    def assets(self) -> tuple[WantedAsset, ...]:
        vector = WantedAsset(VECTOR_ASSET, self.vector, "application/yaml")
        if self.public_key_pem is None:
            return (vector,)
        return (WantedAsset(PUBLIC_KEY_ASSET, self.public_key_pem, "application/x-pem-file"), vector)


@dataclass(frozen=True)
class ReleaseSettings:
    """How a release runs, not what it talks to: the mirror mapping (where images are read and signed), how
    many images at once, the signature format(s) written, the v3 referrers' creation time, and the repository
    every signature goes to (``--signature-repository``, cosign's ``COSIGN_REPOSITORY``: the vector's and every
    pinned image's; None: each beside what it signs)."""

    mirrors: Mirrors = field(default_factory=Mirrors)
    concurrency: int = DEFAULT_CONCURRENCY
    bundle_format: BundleFormat = "both"  # legacy .sig tags, cosign v3 bundle referrers, or both (the default)
    created: str | None = None  # v3 referrer manifests' org.opencontainers.image.created (None: now)
    signatures: Repository | None = None

    def image_target(self, name: str, digest: str) -> SignatureTarget:
        """A pinned image or OCI artifact: read (and, in the own-repository case, signed) at its mirror, its
        legacy payload naming the vector's name for it, its signatures in the signature repository if any."""
        original = parse_reference(f"{name}@{digest}")
        return SignatureTarget(self.mirrors.apply(original), digest, docker_reference=original.cosign_name,
                               signatures=self.signatures)  # fmt: skip


@dataclass(frozen=True)
class ReleasePorts:
    """The I/O a release goes through (a RegistryClient, the key, the target, and the transparency log every
    signature is uploaded to; None: signatures are not logged). With ``keyless`` every signature is also
    (``public_key`` None: only) made keyless. ``signature_reads`` carries the ``.sig`` manifests the look
    read over to the signing (one request less per newly signed image)."""

    registry: RegistryClient
    public_key: PublicKey | None  # None: keyless only
    key: PrivateKeyHandle | None  # None: plan only (a dry run needs only the public key), or keyless only
    target: ReleaseTarget | None
    tlog: TransparencyLog | None = None
    keyless: KeylessSigner | None = None  # keyless signing for this run (in addition to the key, or instead)
    binaries: BinaryFetcher | None = None  # fetches the source's binaries to pin them (None: not pinned)
    signature_reads: SignatureReads = field(default_factory=SignatureReads, repr=False, compare=False)
    confirmations: WriteConfirmations = field(default_factory=WriteConfirmations, repr=False, compare=False)
    vector_attestations: tuple[Layout, ...] = ()  # the vector's too: its provenance (release --attest provenance)
    timestamps: TimestampSource | None = None  # a TSA: every new signature carries its RFC 3161 timestamp

    def signers(self, key: PrivateKeyHandle | None = None) -> list[Signer]:
        """The key (only its public half for a look; ``key`` to sign) and the keyless signer, in signing order."""
        signers: list[Signer] = []
        public_key = self.public_key or (key.public_key if key is not None else None)
        if public_key is not None:
            signers.append(KeySigner(public_key, key))
        if self.keyless is not None:
            signers.append(self.keyless)
        return signers

    def layouts(self, settings: ReleaseSettings) -> tuple[Layout, ...]:
        """Where the settings' signature format(s) live, read and written through this run's registry."""
        return layouts_for(settings.bundle_format, self.registry, reads=self.signature_reads,
                           created=settings.created, confirmations=self.confirmations,
                           timestamps=self.timestamps)  # fmt: skip

    def vector_layouts(self, settings: ReleaseSettings) -> tuple[Layout, ...]:
        """The vector's: its signature's layouts, then its attestations' (signed by the same signers)."""
        return self.layouts(settings) + self.vector_attestations


def _call(work: Callable[[], T]) -> T:
    return work()


class ActionHook(Protocol):
    def __call__(self, action: Action) -> None: ...


def _images_of(vector: Vector) -> tuple[ImageToSign, ...]:
    """Each distinct repository@digest the vector pins, images and OCI artifacts (unpinned ones are an error);
    a digest named both as an image and as an artifact is signed once, as what it is named first."""
    vector.pinned_references()  # an InvalidDefinitionError listing every unpinned entry
    chosen: dict[tuple[str, str], ImageToSign] = {}
    for pinned in vector.pinned_oci_references():
        key = (pinned.reference.name, str(pinned.reference.digest))
        chosen.setdefault(key, ImageToSign(key[0], key[1], pinned.kind))
    return tuple(chosen.values())


def _mirrored(settings: ReleaseSettings, name: str, digest: str) -> Reference:
    return settings.mirrors.apply(parse_reference(f"{name}@{digest}"))


def expand_indexes(
    settings: ReleaseSettings, ports: ReleasePorts, images: Sequence[ImageToSign]
) -> tuple[ImageToSign, ...]:
    """With ``--recursive``: each image index's platform manifests are signed too."""

    def children(image: ImageToSign) -> list[ImageToSign]:
        manifest = ports.registry.get_manifest(_mirrored(settings, image.name, image.digest))
        if manifest.media_type not in mediatypes.INDEXES:
            return [image]
        children = index_children(manifest, image.name)
        return [image, *(ImageToSign(image.name, child, image.kind) for child in children)]

    groups = parallel_map(children, images, concurrency=max(1, settings.concurrency))
    expanded = [item for group in groups for item in group]
    return tuple(dict.fromkeys(expanded))


def is_excluded(name: str, patterns: Sequence[str]) -> bool:
    """``--exclude-image`` globs (``docker.io/*``, ``quay.io/prometheus/*``) match the normalised name."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def desired_release(request: ReleaseRequest, settings: ReleaseSettings, ports: ReleasePorts) -> DesiredRelease:
    images = tuple(
        image
        for image in _images_of(read_vector(request.vector, f"release vector {request.version}"))
        if not is_excluded(image.name, request.excluded)
    )
    if request.recursive:
        images = expand_indexes(settings, ports, images)
    return DesiredRelease(
        version=request.version,
        artifact=str(request.artifact_reference),
        artifact_digest=request.artifact.digest,
        images=images,
        target=ports.target.describe() if ports.target is not None else None,
        assets=request.assets(),
    )


def observe_release(
    desired: DesiredRelease, request: ReleaseRequest, settings: ReleaseSettings, ports: ReleasePorts
) -> ObservedRelease:
    """The read-only look: which writes are already done. Nothing is written here.

    The vector artifact, the images' signatures and the release target are looked at concurrently
    (every look is a read); a conflict found on the artifact is reported first, then any image's error,
    then the target's.
    """
    registry = ports.registry

    def look_at_artifact() -> tuple[bool, bool]:
        artifact_state = observe_artifact(registry, request.repository, request.version, request.artifact.digest)
        if artifact_state == "different":
            raise ConflictError(
                f"version tag {request.version} already points at another release vector",
                where=str(request.artifact_reference),
                hint="a released version is not moved: release a new version (or delete that tag first)",
            )
        artifact_ref = request.repository.digest(request.artifact.digest)
        artifact_signed = artifact_state == "same" and is_signed(
            SignatureTarget(artifact_ref, request.artifact.digest, signatures=settings.signatures), ports.signers(),
            ports.vector_layouts(settings),
            ports.tlog,
        )
        return artifact_state == "same", artifact_signed

    def signed(image: ImageToSign) -> bool:
        target = settings.image_target(image.name, image.digest)
        return is_signed(target, ports.signers(), ports.layouts(settings), ports.tlog)

    images = list(dict.fromkeys(desired.images))
    # Every look at once; one failure decides (the looks not started yet are not made), reported in this
    # order: the artifact's, an image's, the target's.
    looks: list[Callable[[], object]] = [look_at_artifact, *(functools.partial(signed, image) for image in images)]
    if ports.target is not None:
        looks.append(functools.partial(_observe_target, request, ports, desired))
    seen = parallel_map(_call, looks, concurrency=max(1, min(settings.concurrency, len(looks))), fail_fast=True)
    artifact_pushed, artifact_signed = cast(tuple[bool, bool], seen[0])
    flags = [bool(flag) for flag in seen[1 : 1 + len(images)]]
    release = cast(ReleaseDiff, seen[-1]) if ports.target is not None else None
    signed_images = frozenset((i.name, i.digest) for i, done in zip(images, flags, strict=True) if done)
    return ObservedRelease(artifact_pushed, artifact_signed, signed_images, release)


def _observe_target(request: ReleaseRequest, ports: ReleasePorts, desired: DesiredRelease) -> ReleaseDiff:
    target = ports.target
    assert target is not None
    state = target.observe(request.version)
    release = diff_release(state, desired.assets)
    if state.published:  # assets whose digest the target does not tell are compared by content
        for name in release.compare:
            wanted = next(a for a in desired.assets if a.name == name)
            if target.read_asset(request.version, name, published_only=True) != wanted.data:
                raise ConflictError(
                    f"published release {request.version} holds a different {name}",
                    where=state.where or target.describe(),
                    hint="a published release is not changed: release a new version",
                )
        release = dataclasses.replace(release, compare=())
    # Whether the target will take writes is found now, in the look: a read-only release folder found
    # only after the vector was pushed and signed would leave a half-done release.
    if not release.done:
        target.check_writable(request.version)
    return release


@dataclass
class _ApplyState:
    key: PrivateKeyHandle | None
    handle: ReleaseHandle | None = None


VECTOR_LANE = ("push-vector", "sign-vector")


def apply_plan(
    plan: Plan,
    request: ReleaseRequest,
    settings: ReleaseSettings,
    ports: ReleasePorts,
    *,
    on_done: Callable[[Action, str], None] | None = None,
    before_action: ActionHook | None = None,
) -> None:
    """Perform every action; stops at the first failure, after the work in flight has finished.

    The vector (push, then sign) and the image signatures (``concurrency`` at a time) run side by side
    (with ``concurrency`` 1: one after the other, in plan order); the release target is written only
    once every signature exists (draft, assets, then publish), so a failure never leaves a release
    (not even a draft) without its signatures: what was done stays, and a re-run plans the rest.
    ``before_action`` runs before each action (the tests inject crashes there); ``on_done`` is called
    once per finished action, never concurrently.
    """
    key = ports.key
    if (key is None and ports.public_key is not None) or (key is None and ports.keyless is None):
        raise UsageError("applying a release needs the private key (a dry run needs only the public key)")
    state = _ApplyState(key)
    report_lock = threading.Lock()

    def done(action: Action, outcome: str) -> None:
        if on_done is not None:
            with report_lock:
                on_done(action, outcome)

    def perform(action: Action) -> None:
        if before_action is not None:
            before_action(action)
        done(action, _perform(action, request, settings, ports, state))

    def run_lane(actions: Sequence[Action]) -> None:
        for action in actions:
            perform(action)

    def settle() -> None:
        """Every signature written so far read back (issue 12: a concurrent signer's write can replace
        ours); before anything is written to the target, so a release is never published without one."""
        lost = ports.confirmations.settle(settings.concurrency)
        if lost:
            raise lost[0][1]

    def sign_images(actions: Sequence[Action]) -> None:
        """Every image signature is attempted (one failing does not stop the others); then the first error."""
        if not actions:
            return

        def sign_one(action: Action) -> ReleaseVectorError | None:
            try:
                perform(action)
            except ReleaseVectorError as error:
                return error
            return None

        outcomes = parallel_map(sign_one, actions, concurrency=max(1, settings.concurrency))
        failures = [error for error in outcomes if error is not None]
        if failures:
            raise failures[0]

    actions = plan.actions
    if settings.concurrency <= 1:  # strictly in plan order (consecutive image signatures as one batch)
        batch: list[Action] = []
        for action in actions:
            if action.kind in SIGN_PINNED:
                batch.append(action)
                continue
            sign_images(batch)
            batch.clear()
            if action.kind not in VECTOR_LANE:
                settle()
            perform(action)
        sign_images(batch)
        settle()
        return
    vector = [a for a in actions if a.kind in VECTOR_LANE]
    images = [a for a in actions if a.kind in SIGN_PINNED]
    rest = [a for a in actions if a.kind not in (*VECTOR_LANE, *SIGN_PINNED)]  # the target's, in order
    # The two lanes side by side; both run to their end, then the first failure in plan order is raised
    # (the vector's, then the images').
    lanes = [functools.partial(run_lane, vector), functools.partial(sign_images, images)]
    parallel_map(_call, lanes, concurrency=2)
    settle()
    run_lane(rest)


def vector_lanes(layouts: Sequence[Layout]) -> list[tuple[Layout, ...]]:
    """The vector's layouts (its signature's, its provenance's) as lanes that run side by side, each alone:
    the ``.sig`` and the ``.att`` tag are different manifests, and the referrers of one subject, which share
    the ``sha256-<hex>`` fallback index of a registry without the referrers API, write it in turn
    (:data:`~pipeline.signatures.referrer.FALLBACK_INDEX_TURNS`) while their uploads overlap."""
    return [(layout,) for layout in layouts]


def _perform(
    action: Action, request: ReleaseRequest, settings: ReleaseSettings, ports: ReleasePorts, state: _ApplyState
) -> str:
    if action.kind == "push-vector":
        push_artifact(ports.registry, request.repository, [request.version], request.artifact)
        return "pushed"
    if action.kind == "sign-vector":
        digest = request.artifact.digest
        vector = SignatureTarget(request.repository.digest(digest), digest, signatures=settings.signatures)
        signers = ports.signers(state.key)

        def sign_lane(lane: tuple[Layout, ...]) -> SignStatus:
            return sign(vector, signers, lane, ports.tlog)

        lanes = vector_lanes(ports.vector_layouts(settings))
        statuses = parallel_map(sign_lane, lanes, concurrency=max(1, min(len(lanes), settings.concurrency)))
        return "signed" if "signed" in statuses else "already signed"
    if action.kind in SIGN_PINNED:
        assert action.digest is not None
        image = settings.image_target(action.target, action.digest)
        return sign(image, ports.signers(state.key), ports.layouts(settings), ports.tlog,
                    layouts_at_once=min(2, settings.concurrency))  # fmt: skip
    target = ports.target
    if target is None:  # pragma: no cover - the planner plans target actions only with a target
        raise ReleaseVectorError(f"no release target for {action.kind}")
    if state.handle is None:
        state.handle = target.ensure_draft(
            request.version, target_commitish=request.target_commitish, name=request.version,
            body=_body(request, settings),
        )
    if action.kind == "create-draft":
        return "draft ready"
    if action.kind == "upload-asset":
        asset = next(a for a in request.assets() if a.name == action.target)
        written = target.upload_asset(state.handle, asset.name, asset.data, asset.content_type)
        return "uploaded" if written else "already there"
    if action.kind == "publish":
        target.publish(state.handle)
        return "published"
    raise ReleaseVectorError(f"unknown action {action.kind}")  # pragma: no cover


def _body(request: ReleaseRequest, settings: ReleaseSettings) -> str:
    artifact = request.repository.digest(request.artifact.digest)
    commands = []
    where = f" \\\n  --signature-repository {settings.signatures}" if settings.signatures is not None else ""
    if request.public_key_pem is not None:
        commands.append(f"release-vector verify-release {request.artifact_reference} --key {PUBLIC_KEY_ASSET}{where}")
    if request.keyless_identity is not None:
        identity, issuer = request.keyless_identity
        commands.append(
            f"release-vector verify-release {request.artifact_reference} \\\n"
            f"  --certificate-identity {identity} \\\n  --certificate-oidc-issuer {issuer}{where}"
        )
    return (
        f"Release vector: `{request.artifact_reference}` (`{artifact}`).\n\n"
        f"Verify it and every image it pins:\n\n"
        + "".join(f"```sh\n{command}\n```\n" for command in commands)
    )
