"""A whole release: observe the targets read-only, plan, apply — and verify a release afterwards.

``observe_release`` looks at the registry and the release target without writing; ``build_plan``
(pure, :mod:`pipeline.plan`) lists the missing writes; ``apply_plan`` performs them in order through
the same ports. Every action is idempotent and the order keeps the release safe at any crash point:
the GitHub release (or release folder) is published last, after every signature and asset exists,
so a re-run after a failure completes it and a re-run after success plans nothing.

``verify_release`` is what an operator runs: the vector artifact's signature, then every image the
vector pins — a valid signature on the pinned digest, and (deployments pull by tag) the tag still
pointing there — and, with a release target, that the published ``cosign.pub`` is the key used.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.artifact import VectorArtifact
from pipeline.bundles_oci import BundleFormat
from pipeline.cosign.keys import PublicKey, SigningKey, load_public_key, public_key_der
from pipeline.cosign.verify import VerificationPolicy
from pipeline.errors import ConflictError, ReleaseVectorError, UsageError
from pipeline.oci import mediatypes
from pipeline.oci.client import RegistryClient
from pipeline.oci.mirror import Mirrors
from pipeline.oci.reference import Reference, Repository, parse_reference
from pipeline.plan import Action, DesiredRelease, ImageToSign, ObservedRelease, Plan
from pipeline.publish import observe_artifact, pull_vector, push_artifact
from pipeline.signing import (
    KeylessPort,
    SignatureReads,
    TransparencyLog,
    index_children,
    is_signed_all,
    sign_digest_all,
)
from pipeline.targets.base import ReleaseDiff, ReleaseHandle, ReleaseTarget, WantedAsset, diff_release
from pipeline.vector import Vector, read_vector
from pipeline.verification import ImageVerification, verify_image

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
class ReleasePorts:
    """The I/O a release goes through (a RegistryClient, the key, the target, the mirror mapping, and the
    transparency log every signature is uploaded to; None: signatures are not logged). With ``keyless``
    every signature is also (``public_key`` None: only) made keyless. ``signature_reads`` carries the
    ``.sig`` manifests the look read over to the signing (one request less per newly signed image)."""

    registry: RegistryClient
    public_key: PublicKey | None  # None: keyless only
    key: SigningKey | None  # None: plan only (a dry run needs only the public key), or keyless only
    target: ReleaseTarget | None
    mirrors: Mirrors
    concurrency: int = 16
    tlog: TransparencyLog | None = None
    bundle_format: BundleFormat = "legacy"  # legacy .sig tags, cosign v3 bundle referrers, or both
    created: str | None = None  # v3 referrer manifests' org.opencontainers.image.created (None: now)
    keyless: KeylessPort | None = None  # keyless signing for this run (in addition to the key, or instead)
    signature_reads: SignatureReads = field(default_factory=SignatureReads, repr=False, compare=False)


class ActionHook(Protocol):
    def __call__(self, action: Action) -> None: ...


def _images_of(vector: Vector) -> tuple[ImageToSign, ...]:
    """Each distinct repository@digest the vector pins (unpinned images are an error)."""
    return tuple(dict.fromkeys(ImageToSign(ref.name, str(ref.digest)) for ref in vector.pinned_references()))


def _mirrored(ports: ReleasePorts, name: str, digest: str) -> Reference:
    return ports.mirrors.apply(parse_reference(f"{name}@{digest}"))


def expand_indexes(ports: ReleasePorts, images: Sequence[ImageToSign]) -> tuple[ImageToSign, ...]:
    """With ``--recursive``: each image index's platform manifests are signed too."""

    def children(image: ImageToSign) -> list[ImageToSign]:
        manifest = ports.registry.get_manifest(_mirrored(ports, image.name, image.digest))
        if manifest.media_type not in mediatypes.INDEXES:
            return [image]
        return [image, *(ImageToSign(image.name, child) for child in index_children(manifest, image.name))]

    with ThreadPoolExecutor(max_workers=max(1, min(ports.concurrency, len(images) or 1))) as pool:
        expanded = [item for group in pool.map(children, images) for item in group]
    return tuple(dict.fromkeys(expanded))


def is_excluded(name: str, patterns: Sequence[str]) -> bool:
    """``--exclude-image`` globs (``docker.io/*``, ``quay.io/prometheus/*``) match the normalised name."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def desired_release(request: ReleaseRequest, ports: ReleasePorts) -> DesiredRelease:
    images = tuple(
        image
        for image in _images_of(read_vector(request.vector, f"release vector {request.version}"))
        if not is_excluded(image.name, request.excluded)
    )
    if request.recursive:
        images = expand_indexes(ports, images)
    return DesiredRelease(
        version=request.version,
        artifact=str(request.artifact_reference),
        artifact_digest=request.artifact.digest,
        images=images,
        target=ports.target.describe() if ports.target is not None else None,
        assets=request.assets(),
    )


def observe_release(desired: DesiredRelease, request: ReleaseRequest, ports: ReleasePorts) -> ObservedRelease:
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
        artifact_signed = artifact_state == "same" and is_signed_all(
            registry, artifact_ref, request.artifact.digest, ports.public_key, ports.keyless, tlog=ports.tlog,
            bundle_format=ports.bundle_format,
        )  # fmt: skip
        return artifact_state == "same", artifact_signed

    def signed(image: ImageToSign) -> bool:
        original = parse_reference(f"{image.name}@{image.digest}")
        mirrored = ports.mirrors.apply(original)
        return is_signed_all(
            registry,
            mirrored,
            image.digest,
            ports.public_key,
            ports.keyless,
            docker_reference=original.cosign_name,
            tlog=ports.tlog,
            bundle_format=ports.bundle_format,
            reads=ports.signature_reads,
        )

    images = list(dict.fromkeys(desired.images))
    with ThreadPoolExecutor(max_workers=max(1, min(ports.concurrency, len(images) + 2))) as pool:
        artifact_look = pool.submit(look_at_artifact)
        target_look = pool.submit(_observe_target, request, ports, desired) if ports.target is not None else None
        image_looks = [pool.submit(signed, image) for image in images]
        try:
            artifact_pushed, artifact_signed = artifact_look.result()
            flags = [look.result() for look in image_looks]
            release = target_look.result() if target_look is not None else None
        except BaseException:
            for look in image_looks:  # one failure decides: the looks not started yet are not made
                look.cancel()
            raise
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
    # A target that can tell whether it will take writes says so now, in the look: a read-only release
    # folder found only after the vector was pushed and signed would leave a half-done release.
    check_writable = getattr(target, "check_writable", None)
    if check_writable is not None and not release.done:
        check_writable(request.version)
    return release


@dataclass
class _ApplyState:
    key: SigningKey | None
    handle: ReleaseHandle | None = None


VECTOR_LANE = ("push-vector", "sign-vector")


def apply_plan(
    plan: Plan,
    request: ReleaseRequest,
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
        done(action, _perform(action, request, ports, state))

    def run_lane(actions: Sequence[Action]) -> None:
        for action in actions:
            perform(action)

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

        with ThreadPoolExecutor(max_workers=max(1, min(ports.concurrency, len(actions)))) as pool:
            failures = [error for error in pool.map(sign_one, actions) if error is not None]
        if failures:
            raise failures[0]

    actions = plan.actions
    if ports.concurrency <= 1:  # strictly in plan order (consecutive image signatures as one batch)
        batch: list[Action] = []
        for action in actions:
            if action.kind == "sign-image":
                batch.append(action)
                continue
            sign_images(batch)
            batch.clear()
            perform(action)
        sign_images(batch)
        return
    vector = [a for a in actions if a.kind in VECTOR_LANE]
    images = [a for a in actions if a.kind == "sign-image"]
    rest = [a for a in actions if a.kind not in (*VECTOR_LANE, "sign-image")]  # the target's, in order
    image_failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=1) as lane:
        vector_lane = lane.submit(run_lane, vector)
        try:
            sign_images(images)
        except BaseException as failure:  # raised below, once the vector lane has stopped
            image_failure = failure
    vector_lane.result()  # the first failure in plan order: the vector's, then the images'
    if image_failure is not None:
        raise image_failure
    run_lane(rest)


def _perform(action: Action, request: ReleaseRequest, ports: ReleasePorts, state: _ApplyState) -> str:
    if action.kind == "push-vector":
        push_artifact(ports.registry, request.repository, [request.version], request.artifact)
        return "pushed"
    if action.kind == "sign-vector":
        digest = request.artifact.digest
        return sign_digest_all(ports.registry, request.repository.digest(digest), digest, state.key, ports.keyless, {},
                               tlog=ports.tlog, bundle_format=ports.bundle_format, created=ports.created)  # fmt: skip
    if action.kind == "sign-image":
        assert action.digest is not None
        original = parse_reference(f"{action.target}@{action.digest}")
        return sign_digest_all(
            ports.registry,
            ports.mirrors.apply(original),
            action.digest,
            state.key,
            ports.keyless,
            {},
            docker_reference=original.cosign_name,
            tlog=ports.tlog,
            bundle_format=ports.bundle_format,
            created=ports.created,
            reads=ports.signature_reads,
        )
    target = ports.target
    if target is None:  # pragma: no cover - the planner plans target actions only with a target
        raise ReleaseVectorError(f"no release target for {action.kind}")
    if state.handle is None:
        state.handle = target.ensure_draft(
            request.version, target_commitish=request.target_commitish, name=request.version, body=_body(request)
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


def _body(request: ReleaseRequest) -> str:
    artifact = request.repository.digest(request.artifact.digest)
    commands = []
    if request.public_key_pem is not None:
        commands.append(f"release-vector verify-release {request.artifact_reference} --key {PUBLIC_KEY_ASSET}")
    if request.keyless_identity is not None:
        identity, issuer = request.keyless_identity
        commands.append(
            f"release-vector verify-release {request.artifact_reference} \\\n"
            f"  --certificate-identity {identity} \\\n  --certificate-oidc-issuer {issuer}"
        )
    return (
        f"Release vector: `{request.artifact_reference}` (`{artifact}`).\n\n"
        f"Verify it and every image it pins:\n\n"
        + "".join(f"```sh\n{command}\n```\n" for command in commands)
    )


# --- verify-release ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageCheck:
    """One pinned image: the signature on its digest, and whether its tag still points there."""

    name: str
    tag: str
    digest: str
    verification: ImageVerification | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, object]:
        return {
            "image": f"{self.name}:{self.tag}",
            "digest": self.digest,
            "ok": self.ok,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class ReleaseVerification:
    reference: str
    artifact_digest: str
    version: str | None
    images: tuple[ImageCheck, ...]
    release_problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.release_problems and all(image.ok for image in self.images)


def verify_release(
    registry: RegistryClient,
    reference: Reference,
    policy: VerificationPolicy,
    *,
    mirrors: Mirrors,
    check_tags: bool = True,
    target: ReleaseTarget | None = None,
    concurrency: int = 16,
    excluded: Sequence[str] = (),
) -> ReleaseVerification:
    """The vector's signature (a VerificationError if it fails: nothing else is trusted then), every image."""
    pulled = pull_vector(registry, reference, policy, all_formats=False)  # one valid signature is enough
    vector = read_vector(pulled.content, f"release vector {pulled.pinned}")
    entries = {
        (entry.repository.name, entry.tag, entry.digest): entry
        for entry in vector.images
        if not is_excluded(entry.repository.name, excluded)
    }

    def check(key: tuple[str, str, str | None]) -> ImageCheck:
        name, tag, digest = key
        if digest is None:
            return ImageCheck(name, tag, "", None, ("the vector pins no digest for this image",))
        original = parse_reference(f"{name}:{tag}@{digest}")
        mirrored = mirrors.apply(original)
        result = verify_image(registry, mirrored.with_digest(digest), policy, all_formats=False)
        problems = [] if result.ok else [result.reason()]
        if check_tags:
            try:
                descriptor = registry.head_manifest(mirrored.with_tag(tag))
            except ReleaseVectorError as error:
                problems.append(f"tag {tag} cannot be read: {error.message}")
            else:
                if descriptor is None:
                    problems.append(f"tag {tag} no longer exists")
                elif descriptor.digest != digest:
                    problems.append(f"tag moved: {tag} now points at {descriptor.digest}, the vector pins {digest}")
        return ImageCheck(name, tag, digest, result, tuple(problems))

    keys = list(entries)
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(keys) or 1))) as pool:
        checks = tuple(pool.map(check, keys))
    version = vector.metadata.version if vector.metadata is not None else None
    release_problems: list[str] = []
    if target is not None:
        artifact = reference.with_digest(pulled.digest)
        release_problems += _check_published_key(target, version, policy, registry, artifact)
    return ReleaseVerification(str(reference), pulled.digest, version, checks, tuple(release_problems))


def _check_published_key(
    target: ReleaseTarget,
    version: str | None,
    policy: VerificationPolicy,
    registry: RegistryClient,
    artifact: Reference,
) -> list[str]:
    """With ``--key``: the release is published with a cosign.pub that is that key. Keyless: the release is
    published (with its release.yaml); a cosign.pub on it (a release signed with both) must have signed
    the vector too; a keyless-only release publishes none."""
    where = target.describe()
    if version is None:
        return [f"the vector names no version, so its release on {where} cannot be found"]
    published = target.read_asset(version, PUBLIC_KEY_ASSET, published_only=True)
    if policy.public_key is None:
        return _check_published_keyless(target, version, policy, registry, artifact, published)
    if published is None:
        return [f"release {version} on {where} is not published with a {PUBLIC_KEY_ASSET}"]
    try:
        published_key = load_public_key(published, f"{where} {version}/{PUBLIC_KEY_ASSET}")
    except ReleaseVectorError as error:
        return [error.one_line()]
    if public_key_der(published_key) != public_key_der(policy.public_key):
        return [f"the {PUBLIC_KEY_ASSET} published with release {version} on {where} is not the key given"]
    return []


def _check_published_keyless(
    target: ReleaseTarget,
    version: str,
    policy: VerificationPolicy,
    registry: RegistryClient,
    artifact: Reference,
    published_key: bytes | None,
) -> list[str]:
    where = target.describe()
    if published_key is None:
        if target.read_asset(version, VECTOR_ASSET, published_only=True) is None:
            return [f"release {version} on {where} is not published with a {VECTOR_ASSET}"]
        return []  # keyless only: there is no key to check
    source = f"{where} {version}/{PUBLIC_KEY_ASSET}"
    try:
        key = load_public_key(published_key, source)
    except ReleaseVectorError as error:
        return [error.one_line()]
    checked = verify_image(registry, artifact, VerificationPolicy(key, None, policy.rekor_keys, policy.ignore_tlog))
    if not checked.ok:
        return [f"the {PUBLIC_KEY_ASSET} published with release {version} on {where} did not sign the release"
                f" vector: {checked.reason()}"]  # fmt: skip
    return []
