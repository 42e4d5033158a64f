"""Release and verify-release as core functions: settings and ports in, a result out.

``release`` is what ``release-vector release`` runs: assemble the vector (every image pinned), look at
every target read-only, plan, and (unless a dry run) apply the plan (:mod:`pipeline.apply`). The caller
builds the ports (registry client, keys, transparency log, keyless signing, release target) and prints
the result; nothing here reads the environment, prints or exits: progress goes to a
:class:`ReleaseProgress`.

``verify_release`` is what an operator runs: the vector artifact's signature, then every image the
vector pins — a valid signature on the pinned digest, and (deployments pull by tag) the tag still
pointing there — and, with a release target, that the published ``cosign.pub`` is the key used.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from pipeline.apply import (
    PUBLIC_KEY_ASSET,
    VECTOR_ASSET,
    ReleasePorts,
    ReleaseRequest,
    ReleaseSettings,
    apply_plan,
    desired_release,
    is_excluded,
    observe_release,
)
from pipeline.artifact import ArtifactAnnotations, make_artifact, parse_source_date_epoch
from pipeline.assemble import build_vector
from pipeline.cosign.keys import load_public_key, public_key_der
from pipeline.cosign.verify import VerificationPolicy
from pipeline.errors import ReleaseVectorError
from pipeline.keyless_signing import KeylessIdentity
from pipeline.oci.client import RegistryClient
from pipeline.oci.mirror import Mirrors
from pipeline.oci.reference import Reference, Repository, parse_reference
from pipeline.plan import Action, DesiredRelease, Plan, build_plan
from pipeline.publish import pull_vector
from pipeline.targets.base import ReleaseTarget
from pipeline.vector import Source, read_vector
from pipeline.verification import ImageVerification, verify_image

__all__ = [
    "ImageCheck",
    "ReleasePorts",
    "ReleaseProgress",
    "ReleaseResult",
    "ReleaseSettings",
    "ReleaseSpec",
    "ReleaseVerification",
    "release",
    "verify_release",
]

OnDone = Callable[[Action, str], None]


@dataclass(frozen=True)
class ReleaseSpec:
    """What to release, decided before any I/O: the version, the loaded source definition, where the vector goes."""

    version: str
    source: Source = field(repr=False)
    source_path: Path
    repository: Repository
    public_key_pem: bytes | None = field(repr=False)  # None: a keyless-only release (no cosign.pub)
    git_revision: str | None = None  # None: the HEAD of the checkout holding the source
    source_url: str | None = None  # the org.opencontainers.image.source annotation
    source_date_epoch: str | None = None  # SOURCE_DATE_EPOCH as the caller found it (None: unset)
    recursive: bool = False
    excluded: tuple[str, ...] = ()
    dry_run: bool = False


class ReleaseProgress(Protocol):
    """Where a release reports while it runs (the CLI: stderr, a progress bar on a terminal)."""

    def note(self, text: str) -> None:
        """One line about the run (assembled, a warning)."""

    def applying(self, version: str, total: int) -> AbstractContextManager[OnDone]:
        """Around the apply of ``total`` actions: the callback each finished action is reported to."""


@runtime_checkable
class KeylessRun(Protocol):
    """What a release needs of its keyless signing beyond signing: who it signs as (for the release notes
    and the result) and its certificate up front (a refused token fails before anything is written)."""

    @property
    def identity(self) -> KeylessIdentity: ...

    def signer(self) -> object: ...


def _keyless_run(ports: ReleasePorts) -> KeylessRun | None:
    if ports.keyless is None:
        return None
    if not isinstance(ports.keyless, KeylessRun):
        raise TypeError(f"keyless signing {type(ports.keyless).__name__} has no identity or signer()")
    return ports.keyless


class QuietProgress:
    """Reports nothing."""

    def note(self, text: str) -> None:
        pass

    @contextmanager
    def applying(self, version: str, total: int) -> Iterator[OnDone]:
        yield lambda _action, _outcome: None


@dataclass(frozen=True)
class ReleaseResult:
    """What a release did (or, on a dry run, would do): the plan, the vector, the time of each phase."""

    request: ReleaseRequest
    desired: DesiredRelease
    plan: Plan
    dry_run: bool
    seconds: dict[str, float]  # assemble, plan, apply (apply absent on a dry run)

    @property
    def pinned(self) -> str:
        return f"{self.request.artifact_reference}@{self.request.artifact.digest}"

    def to_json(self) -> dict[str, object]:
        """The result ``release --json`` prints."""
        request = self.request
        keyless = None
        if request.keyless_identity is not None:
            identity, issuer = request.keyless_identity
            keyless = {"identity": identity, "issuer": issuer}
        return {
            "version": request.version,
            "artifact": str(request.artifact_reference),
            "artifact_digest": request.artifact.digest,
            "images": len(self.desired.images),
            "actions": self.plan.to_json(),
            "target": self.desired.target,
            "keyless": keyless,
            "seconds": self.seconds,
        }


def release(
    spec: ReleaseSpec,
    settings: ReleaseSettings,
    ports: ReleasePorts,
    *,
    progress: ReleaseProgress | None = None,
    started: float | None = None,
) -> ReleaseResult:
    """Assemble, look, plan and (unless ``spec.dry_run``) apply one release.

    Looks at every target read-only first and does only what is missing: a re-run after success writes
    nothing, a re-run after a failure completes the release. ``started``: the ``time.monotonic()`` the
    caller's run began (the assemble phase is timed from it; default: now).
    """
    report = progress if progress is not None else QuietProgress()
    started = time.monotonic() if started is None else started
    request = _assemble(spec, settings, ports, report)
    assembled = time.monotonic()
    report.note(f"assembled {spec.source_path}: {len(spec.source.references())} images pinned, "
                f"vector {request.artifact.digest}")  # fmt: skip
    desired = desired_release(request, settings, ports)
    plan = build_plan(desired, observe_release(desired, request, settings, ports))
    planned = time.monotonic()
    seconds = {"assemble": round(assembled - started, 3), "plan": round(planned - assembled, 3)}
    if spec.dry_run:
        return ReleaseResult(request, desired, plan, True, seconds)
    keyless = _keyless_run(ports)
    if keyless is not None and any(a.kind in ("sign-vector", "sign-image") for a in plan.actions):
        keyless.signer()  # the certificate first: a refused token fails before anything is written
    with report.applying(spec.version, len(plan.actions)) as on_done:
        apply_plan(plan, request, settings, ports, on_done=on_done)
    seconds["apply"] = round(time.monotonic() - planned, 3)
    return ReleaseResult(request, desired, plan, False, seconds)


def _assemble(
    spec: ReleaseSpec, settings: ReleaseSettings, ports: ReleasePorts, report: ReleaseProgress
) -> ReleaseRequest:
    """The vector (every image pinned through ``ports.registry``) and the request to publish it."""
    built = build_vector(
        ports.registry,
        spec.source,
        spec.source_path,
        spec.version,
        spec.git_revision,
        settings.mirrors,
        concurrency=settings.concurrency,
        source_date_epoch=spec.source_date_epoch,
        on_warning=report.note,
    )
    epoch_text = (spec.source_date_epoch or "").strip()
    epoch = parse_source_date_epoch(epoch_text) if epoch_text else None
    annotations = ArtifactAnnotations.from_epoch(
        version=spec.version, revision=built.metadata.git_revision, source=spec.source_url, epoch=epoch
    )
    request = ReleaseRequest(
        version=spec.version,
        vector=built.vector,
        artifact=make_artifact(built.vector, annotations, mtime=epoch or 0),
        repository=spec.repository,
        public_key_pem=spec.public_key_pem,
        target_commitish=built.metadata.git_revision,
        recursive=spec.recursive,
        excluded=spec.excluded,
    )
    keyless = _keyless_run(ports)
    if keyless is not None:
        identity = keyless.identity
        request = dataclasses.replace(request, keyless_identity=(identity.identity, identity.issuer))
    return request


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
