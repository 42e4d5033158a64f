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
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol

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
from pipeline.artifact import (
    ANNOTATION_VERSION,
    MAX_VECTOR_BYTES,
    ArtifactAnnotations,
    make_artifact,
    parse_source_date_epoch,
)
from pipeline.assemble import build_vector
from pipeline.binaries import BinaryFetcher, fetch_binaries
from pipeline.cosign.keys import load_public_key, public_key_der
from pipeline.cosign.verify import VerificationPolicy
from pipeline.errors import ReleaseVectorError, is_unchecked
from pipeline.http import parallel_map
from pipeline.oci import digest as digests
from pipeline.oci.client import RegistryClient
from pipeline.oci.mirror import Mirrors
from pipeline.oci.reference import Reference, Repository, parse_reference
from pipeline.plan import SIGN_PINNED, Action, DesiredRelease, Plan, build_plan
from pipeline.provenance import (
    PREDICATE_TYPE,
    BuildEnvironment,
    ProvenanceExpectations,
    ProvenanceInputs,
    provenance_predicate,
    provenance_problems,
    summary,
    timestamp,
    without_run_times,
)
from pipeline.publish import pull_vector
from pipeline.signatures.attest import attestation_layouts, verify_image_attestations
from pipeline.signatures.attestation import Attestation
from pipeline.signatures.layout import Format, Layout
from pipeline.signatures.presence import formats_carried
from pipeline.signatures.verify import ImageVerification, verify_image
from pipeline.targets.base import ReleaseTarget
from pipeline.vector import KIND_IMAGE, ImageEntry, Source, Vector, read_vector

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
MAX_PUBLIC_KEY_BYTES = 64 * 1024  # a PEM public key is well under 1 KiB


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
    provenance: BuildEnvironment | None = None  # attest SLSA provenance on the vector, built here (None: no)


class ReleaseProgress(Protocol):
    """Where a release reports while it runs (the CLI: stderr, a progress bar on a terminal)."""

    def note(self, text: str) -> None:
        """One line about the run (assembled, a warning)."""

    def applying(self, version: str, total: int) -> AbstractContextManager[OnDone]:
        """Around the apply of ``total`` actions: the callback each finished action is reported to."""


class QuietProgress:
    """Reports nothing."""

    def note(self, text: str) -> None:
        pass

    @contextmanager
    def applying(self, version: str, total: int) -> Iterator[OnDone]:
        yield lambda _action, _outcome: None


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


@dataclass(frozen=True)
class ReleaseResult:
    """What a release did (or, on a dry run, would do): the plan, the vector, the time of each phase."""

    request: ReleaseRequest
    desired: DesiredRelease
    plan: Plan
    dry_run: bool
    seconds: dict[str, float]  # assemble, plan, apply (apply absent on a dry run)
    signatures: Repository | None = None  # --signature-repository (None: beside what they sign)

    @property
    def pinned(self) -> str:
        return f"{self.request.artifact_reference}@{self.request.artifact.digest}"

    @cached_property
    def _pins(self) -> tuple[tuple[str, str], ...]:
        """(name, digest) of every image and OCI artifact the vector pins, in its order (read once)."""
        pinned = read_vector(self.request.vector, f"release vector {self.request.version}").pinned_oci_references()
        return tuple((p.reference.name, str(p.reference.digest)) for p in pinned)

    @property
    def unsigned(self) -> tuple[str, ...]:
        """``REPO@DIGEST`` of every image and OCI artifact the vector pins but the release does not sign
        (``--exclude-image``: third-party images whose registries take no signatures of ours)."""
        names = (f"{name}@{digest}" for name, digest in self._pins if is_excluded(name, self.request.excluded))
        return tuple(dict.fromkeys(names))

    def summary(self) -> str:
        """How many are signed and where, and how many are pinned but not signed: the vector's entries, and
        apart from them the platform manifests ``--recursive`` adds (they are not entries of the vector)."""
        pins = set(self._pins)
        entries = [image for image in self.desired.images if (image.name, image.digest) in pins]
        images = sum(1 for image in entries if image.kind == KIND_IMAGE)
        artifacts = len(entries) - images
        platforms = len(self.desired.images) - len(entries)
        unsigned = len(self.unsigned)
        where = str(self.signatures) if self.signatures is not None else "their own repositories"
        signed = "to be signed" if self.dry_run else "signed"  # a dry run signs nothing: it says what it would
        with_platforms = f", with {_counted(platforms, 'platform manifest')} (--recursive)" if platforms else ""
        return (f"{_counted(images, 'image')} and {_counted(artifacts, 'oci artifact')} {signed} in {where}"
                f"{with_platforms}; {unsigned} pinned but not signed (--exclude-image)")  # fmt: skip

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
            "images": sum(1 for image in self.desired.images if image.kind == "image"),
            "actions": self.plan.to_json(),
            "target": self.desired.target,
            "keyless": keyless,
            "seconds": self.seconds,
            "oci_artifacts": sum(1 for image in self.desired.images if image.kind != KIND_IMAGE),
            "published": self.desired.target is not None,
            "signatures_in": str(self.signatures) if self.signatures is not None else "own repositories",
            "signed": len(self.desired.images),
            "unsigned": list(self.unsigned),
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
    if spec.provenance is not None:
        ports = dataclasses.replace(ports, vector_attestations=_provenance_layouts(spec, settings, ports, request))
    assembled = time.monotonic()
    pinned = f"{len({i.reference for i in spec.source.images})} images"
    if spec.source.artifacts:
        pinned += f" and {len({a.reference for a in spec.source.artifacts})} oci artifacts"
    report.note(f"assembled {spec.source_path}: {pinned} pinned, vector {request.artifact.digest}")
    desired = desired_release(request, settings, ports)
    plan = build_plan(desired, observe_release(desired, request, settings, ports))
    planned = time.monotonic()
    seconds = {"assemble": round(assembled - started, 3), "plan": round(planned - assembled, 3)}
    if spec.dry_run:
        return ReleaseResult(request, desired, plan, True, seconds, settings.signatures)
    if ports.keyless is not None and any(a.kind in ("sign-vector", *SIGN_PINNED) for a in plan.actions):
        ports.keyless.certified_key()  # the certificate first: a refused token fails before anything is written
    with report.applying(spec.version, len(plan.actions)) as on_done:
        apply_plan(plan, request, settings, ports, on_done=on_done)
    seconds["apply"] = round(time.monotonic() - planned, 3)
    return ReleaseResult(request, desired, plan, False, seconds, settings.signatures)


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
        binaries=ports.binaries,
    )
    if spec.source.binaries and ports.binaries is None:
        report.note(f"note: {len(spec.source.binaries)} binaries not downloaded (--no-binaries): their urls get no "
                    "digest")  # fmt: skip
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
    if ports.keyless is not None:
        identity = ports.keyless.identity
        request = dataclasses.replace(request, keyless_identity=(identity.identity, identity.issuer))
    return request


def _provenance_layouts(
    spec: ReleaseSpec, settings: ReleaseSettings, ports: ReleasePorts, request: ReleaseRequest
) -> tuple[Layout, ...]:
    """The vector's provenance attestation, in the release's bundle format(s): the vector's signers sign it
    with its signature (``ReleasePorts.vector_layouts``), so a release missing it plans ``sign-vector``."""
    assert spec.provenance is not None
    started = timestamp(spec.source_date_epoch)
    inputs = ProvenanceInputs(
        version=spec.version,
        repository=spec.repository.name,
        source_path=str(spec.source_path),
        source_sha256=spec.source.sha256,
        mirrors=tuple(f"{m.source}={m.target}" for m in settings.mirrors.rules),
        excludes=spec.excluded,
        started=started,
        finished=timestamp(spec.source_date_epoch),
        environment=spec.provenance,
    )
    predicate = provenance_predicate(read_vector(request.vector, f"release vector {spec.version}"), inputs)
    attestation = Attestation(PREDICATE_TYPE, predicate, same=_same_provenance)
    return attestation_layouts(settings.bundle_format, ports.registry, attestation, created=settings.created,
                               reads=ports.signature_reads, confirmations=ports.confirmations,
                               timestamps=ports.timestamps)  # fmt: skip


def _same_provenance(existing: bytes, ours: bytes) -> bool:
    return without_run_times(existing) == without_run_times(ours)


# --- verify-release ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageCheck:
    """One pinned image or OCI artifact: the signature on its digest, and whether its tag still points there.

    ``kind`` and ``yaml_path`` say what and where the vector names it (the first entry, when several do)."""

    name: str
    tag: str
    digest: str
    verification: ImageVerification | None
    problems: tuple[str, ...]  # what was found wrong
    kind: str = KIND_IMAGE
    yaml_path: str = ""
    formats: tuple[Format, ...] = ()  # the signature formats the image carries (verified or only present)
    unchecked: ReleaseVectorError | None = None  # what kept a check from happening (exit 5/4, not 10)

    @property
    def ok(self) -> bool:
        return not self.problems and self.unchecked is None

    @property
    def label(self) -> str:
        """How messages name it: ``oci artifact REPO:TAG@DIGEST at helm-charts.x.y`` (images: no kind)."""
        what = f"{self.name}:{self.tag}@{self.digest}"
        if self.kind != KIND_IMAGE:
            what = f"oci artifact {what}"
        return f"{what} at {self.yaml_path}" if self.yaml_path else what

    def to_json(self) -> dict[str, object]:
        verified = self.verification.formats if self.verification is not None else ()
        return {
            "image": f"{self.name}:{self.tag}",
            "kind": self.kind,
            "yaml_path": self.yaml_path,
            "digest": self.digest,
            "ok": self.ok,
            "problems": list(self.problems),
            "formats": list(self.formats),
            "verified_formats": list(verified),
            "unchecked": self.unchecked.one_line() if self.unchecked is not None else None,
        }


@dataclass(frozen=True)
class ReleaseCheck:
    """One check of the release as a whole (``version``, ``cosign.pub``, ``release.yaml``): passed or not,
    one line saying what was found, where (a URL or a path), and a hint when failed."""

    name: str
    ok: bool
    detail: str
    where: str | None = None
    hint: str | None = None

    def line(self) -> str:
        return f"{self.detail} ({self.where})" if self.where else self.detail

    def to_json(self) -> dict[str, object]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "where": self.where}


@dataclass(frozen=True)
class BinaryCheck:
    """One binary of the vector downloaded again (``--check-binaries``): its bytes against the pinned digest."""

    url: str
    yaml_path: str
    line: int
    pinned: str | None
    problem: str | None  # None: the bytes are the pinned ones (or, with ``unchecked``, none was reached)
    unchecked: ReleaseVectorError | None = None  # what kept the download from happening (exit 5, not 10)

    @property
    def ok(self) -> bool:
        return self.problem is None and self.unchecked is None

    @property
    def label(self) -> str:
        return f"binary {self.url} at {self.yaml_path}"

    def to_json(self) -> dict[str, object]:
        return {"url": self.url, "yaml_path": self.yaml_path, "digest": self.pinned, "ok": self.ok,
                "problem": self.problem,
                "unchecked": self.unchecked.one_line() if self.unchecked is not None else None}  # fmt: skip


@dataclass(frozen=True)
class ReleaseVerification:
    reference: str
    artifact_digest: str
    version: str | None
    images: tuple[ImageCheck, ...]
    checks: tuple[ReleaseCheck, ...]
    binaries: tuple[BinaryCheck, ...] = ()  # only with --check-binaries
    provenance: dict[str, object] | None = None  # the verified provenance's summary (--require-provenance)

    @property
    def release_problems(self) -> tuple[str, ...]:
        return tuple(check.line() for check in self.checks if not check.ok)

    @property
    def ok(self) -> bool:
        return (
            all(check.ok for check in self.checks)
            and all(image.ok for image in self.images)
            and all(binary.ok for binary in self.binaries)
        )


ALLOW_MISMATCH_HINT = (
    "a floating tag (latest, a branch) names no version: add --allow-version-mismatch to accept the vector it points at"
)


def check_version_tag(
    tag: str | None, recorded: str | None, annotated: object, *, allow_mismatch: bool, where: str | None = None
) -> ReleaseCheck:
    """The tag asked for must name the release the vector records (its ``release-vector: version``) and the
    artifact's ``org.opencontainers.image.version`` annotation, if it has one: a version tag moved onto another
    release's (validly signed) vector is refused. A reference by digest has no tag: nothing to compare."""
    if tag is None:
        return ReleaseCheck("version", True, f"version {recorded or '(none recorded)'}: referenced by digest, "
                            "no tag to compare")  # fmt: skip
    if recorded is None:
        problem = f"tag {tag} cannot be confirmed: the vector records no version (no release-vector block)"
    elif recorded != tag:
        problem = f"tag {tag} points at the vector of release {recorded}"
    elif annotated is not None and annotated != tag:
        shown = annotated if isinstance(annotated, str) else repr(annotated)
        problem = f"tag {tag} points at an artifact whose {ANNOTATION_VERSION} annotation is {shown[:130]}"
    else:
        return ReleaseCheck("version", True, f"tag {tag} is the vector's version")
    if allow_mismatch:
        return ReleaseCheck("version", True, f"{problem}: accepted (--allow-version-mismatch)", where)
    return ReleaseCheck("version", False, problem, where, ALLOW_MISMATCH_HINT)


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
    allow_version_mismatch: bool = False,
    binaries: BinaryFetcher | None = None,
    provenance: ProvenanceExpectations | None = None,
    signatures: Repository | None = None,
    carried_formats: bool = True,
) -> ReleaseVerification:
    """The vector's signature (a VerificationError if it fails: nothing else is trusted then), the tag asked
    for against the vector's version, every image, and with a target the published cosign.pub and release.yaml
    (the very bytes signed). With ``binaries`` every binary the vector pins is downloaded again and compared.
    ``signatures``: the repository holding every signature (``--signature-repository``; None: beside each).
    ``carried_formats``: also look up the formats each image carries beyond the one verified (``formats`` in
    ``--json``; one more request per image, so the plain report, which does not show them, skips it)."""
    pulled = pull_vector(registry, reference, policy, all_formats=False,  # one valid signature is enough
                         signatures=signatures)  # fmt: skip
    vector = read_vector(pulled.content, f"release vector {pulled.pinned}")
    entries: dict[tuple[str, str, str | None], ImageEntry] = {}
    for entry in vector.oci_entries:  # images, then OCI artifacts (charts, roles); each first entry names it
        if entry.kind != KIND_IMAGE and entry.digest is None:
            continue  # a vector assembled before OCI artifacts were pinned: nothing signed to check
        if not is_excluded(entry.repository.name, excluded):
            entries.setdefault((entry.repository.name, entry.tag, entry.digest), entry)

    def check(key: tuple[str, str, str | None]) -> ImageCheck:
        name, tag, digest = key
        entry = entries[key]
        if digest is None:
            return ImageCheck(name, tag, "", None, (f"the vector pins no digest for this {entry.label}",),
                              entry.kind, entry.yaml_path)  # fmt: skip
        original = parse_reference(f"{name}:{tag}@{digest}")
        mirrored = mirrors.apply(original)
        result = verify_image(registry, mirrored.with_digest(digest), policy, all_formats=False, signatures=signatures)
        problems = [] if result.ok or result.unchecked else [result.reason()]
        unchecked = result.unchecked
        store = signatures.digest(digest) if signatures is not None else mirrored
        carried: tuple[Format, ...] = ()
        if not unchecked:
            carried = (formats_carried(registry, store, digest, result.found, skip=result.looked)
                       if carried_formats else tuple(result.found))  # fmt: skip
        if check_tags:
            try:
                descriptor = registry.head_manifest(mirrored.with_tag(tag))
            except ReleaseVectorError as error:
                if is_unchecked(error):
                    unchecked = unchecked or error
                else:
                    problems.append(f"tag {tag} cannot be read: {error.message}")
            else:
                if descriptor is None:
                    problems.append(f"tag {tag} no longer exists")
                elif descriptor.digest != digest:
                    problems.append(f"tag moved: {tag} now points at {descriptor.digest}, the vector pins {digest}")
        return ImageCheck(name, tag, digest, result, tuple(problems), entry.kind, entry.yaml_path, carried, unchecked)

    keys = list(entries)
    checks = tuple(parallel_map(check, keys, concurrency=max(1, concurrency)))
    version = vector.metadata.version if vector.metadata is not None else None
    release_checks = [
        check_version_tag(
            reference.tag,
            version,
            pulled.annotations.get(ANNOTATION_VERSION),
            allow_mismatch=allow_version_mismatch,
            where=str(pulled.pinned),
        )
    ]
    if target is not None:
        artifact = reference.with_digest(pulled.digest)
        release_checks += _check_published(target, version, policy, registry, artifact, pulled.content, signatures)
    provenance_summary = None
    if provenance is not None:
        found, provenance_summary = check_provenance(registry, reference.with_digest(pulled.digest), policy, vector,
                                                     provenance, signatures)  # fmt: skip
        release_checks.append(found)
    binary_checks = check_binaries(binaries, vector, concurrency) if binaries is not None else ()
    return ReleaseVerification(str(reference), pulled.digest, version, checks, tuple(release_checks),
                               binaries=binary_checks, provenance=provenance_summary)  # fmt: skip


def check_provenance(
    registry: RegistryClient,
    artifact: Reference,
    policy: VerificationPolicy,
    vector: Vector,
    expected: ProvenanceExpectations,
    signatures: Repository | None = None,
) -> tuple[ReleaseCheck, dict[str, object] | None]:
    """The vector's provenance: verifies with the release's trust, names exactly the digests the vector pins,
    and matches the expected builder and source; the summary of the one that passed."""

    def fits(payload: bytes, where: str) -> list[str]:
        return provenance_problems(payload, vector, expected)

    result = verify_image_attestations(registry, artifact, policy, PREDICATE_TYPE, statement_check=fits,
                                       digest=artifact.digest, signatures=signatures)  # fmt: skip
    if not result.ok:
        return ReleaseCheck("provenance", False, f"provenance: {result.reason()}", str(artifact)), None
    first = result.verified[0]
    found = summary(first.payload)
    detail = (f"the vector's provenance ({first.format}) verifies, names the {found['dependencies']} pinned digests, "
              f"builder {found['builder_id']}")  # fmt: skip
    return ReleaseCheck("provenance", True, detail, str(artifact)), {**found, "format": first.format}




def check_binaries(fetcher: BinaryFetcher, vector: Vector, concurrency: int) -> tuple[BinaryCheck, ...]:
    """Every binary of ``vector`` downloaded again (each url once) and its sha256 compared with the pin."""
    fetched = fetch_binaries(fetcher, [b.url for b in vector.binaries if b.digest is not None], concurrency=concurrency)
    checks = []
    for binary in vector.binaries:
        problem: str | None = None
        unchecked: ReleaseVectorError | None = None
        got = fetched.digests.get(binary.url)
        failure = fetched.failures.get(binary.url)
        if binary.digest is None:
            problem = "the vector pins no digest for this binary (assembled with --no-binaries?)"
        elif failure is not None and is_unchecked(failure):  # unreachable, 5xx, timeout: no verdict (exit 5)
            unchecked = failure
        elif failure is not None:  # the server answered that it is not there (404, 410), or the URL is bad
            problem = f"cannot download it again: {failure.one_line()}"
        elif got != binary.digest:
            problem = f"the bytes changed: the download is {got}, the vector pins {binary.digest}"
        checks.append(BinaryCheck(binary.url, binary.yaml_path, binary.line, binary.digest, problem, unchecked))
    return tuple(checks)


def _check_published(
    target: ReleaseTarget,
    version: str | None,
    policy: VerificationPolicy,
    registry: RegistryClient,
    artifact: Reference,
    vector: bytes,
    signatures: Repository | None = None,
) -> list[ReleaseCheck]:
    where = target.describe()
    if version is None:
        return [ReleaseCheck("release", False, "the vector names no version, so its release cannot be found", where)]
    return [_check_published_key(target, version, policy, registry, artifact, signatures),
            _check_published_vector(target, version, vector)]  # fmt: skip


def _check_published_vector(target: ReleaseTarget, version: str, vector: bytes) -> ReleaseCheck:
    """The release.yaml published with the release is the signed vector, byte for byte (read at most the
    vector's size limit: it cannot be equal if larger)."""
    fetched = target.fetch_asset(version, VECTOR_ASSET, max_bytes=MAX_VECTOR_BYTES)
    if fetched.content is None:
        return ReleaseCheck(VECTOR_ASSET, False, fetched.problem or f"no {VECTOR_ASSET}", fetched.where)
    if fetched.content != vector:
        return ReleaseCheck(
            VECTOR_ASSET,
            False,
            f"the {VECTOR_ASSET} published with release {version} is not the signed vector "
            f"({len(fetched.content)} bytes {digests.compute(fetched.content)}; signed: {len(vector)} bytes "
            f"{digests.compute(vector)})",
            fetched.where,
        )
    return ReleaseCheck(VECTOR_ASSET, True, f"the {VECTOR_ASSET} published with release {version} is the signed "
                        "vector", fetched.where)  # fmt: skip


def _check_published_key(
    target: ReleaseTarget,
    version: str,
    policy: VerificationPolicy,
    registry: RegistryClient,
    artifact: Reference,
    signatures: Repository | None = None,
) -> ReleaseCheck:
    """With ``--key``: the release is published with a cosign.pub that is that key. Keyless: a cosign.pub on
    it (a release signed with both) must have signed the vector too; a keyless-only release publishes none."""
    fetched = target.fetch_asset(version, PUBLIC_KEY_ASSET, max_bytes=MAX_PUBLIC_KEY_BYTES)
    where = fetched.where
    if fetched.content is None:
        if policy.public_key is None and fetched.missing:
            return ReleaseCheck(PUBLIC_KEY_ASSET, True, f"release {version} publishes no {PUBLIC_KEY_ASSET}"
                                " (keyless only)", where)  # fmt: skip
        return ReleaseCheck(PUBLIC_KEY_ASSET, False, fetched.problem or f"no {PUBLIC_KEY_ASSET}", where)
    try:
        published = load_public_key(fetched.content, f"{where} {PUBLIC_KEY_ASSET}")
    except ReleaseVectorError as error:
        return ReleaseCheck(PUBLIC_KEY_ASSET, False, error.one_line())
    if policy.public_key is not None:
        if public_key_der(published) != public_key_der(policy.public_key):
            return ReleaseCheck(PUBLIC_KEY_ASSET, False, f"the {PUBLIC_KEY_ASSET} published with release {version}"
                                " is not the key given", where)  # fmt: skip
        return ReleaseCheck(PUBLIC_KEY_ASSET, True, f"the {PUBLIC_KEY_ASSET} published with release {version} is "
                            "the key given", where)  # fmt: skip
    only_published = VerificationPolicy(published, None, policy.rekor_keys, policy.ignore_tlog,
                                        timestamp_authorities=policy.timestamp_authorities,
                                        strict_timestamps=policy.strict_timestamps)  # fmt: skip
    checked = verify_image(registry, artifact, only_published, signatures=signatures)
    if not checked.ok:
        return ReleaseCheck(PUBLIC_KEY_ASSET, False, f"the {PUBLIC_KEY_ASSET} published with release {version} did"
                            f" not sign the release vector: {checked.reason()}", where)  # fmt: skip
    return ReleaseCheck(PUBLIC_KEY_ASSET, True, f"the {PUBLIC_KEY_ASSET} published with release {version} signed "
                        "the release vector too", where)  # fmt: skip
