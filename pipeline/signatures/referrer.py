"""cosign v3 image signatures in registries: Sigstore bundles attached to an image as OCI 1.1 referrers (the v3 layout).

What cosign v3 ``sign`` writes (COS ``pkg/oci/remote/write.go`` ``WriteReferrer``, see
``vectors/cosign/bundle-v03/README.md``), and what is read back here:

* the bundle (a DSSE envelope over an in-toto statement naming the image digest) is a blob; the
  referrer manifest — an OCI image manifest with the empty config (whose descriptor also carries the
  ``artifactType``), one layer ``application/vnd.dev.sigstore.bundle.v0.3+json``, the annotations
  ``dev.sigstore.bundle.content=dsse-envelope``, ``dev.sigstore.bundle.predicateType=<type>`` and
  ``org.opencontainers.image.created``, the image as ``subject``, and ``artifactType`` — is pushed by
  digest, never under a tag;
* a registry with the referrers API (``GET /v2/<name>/referrers/<digest>``) lists it by itself; for one
  without (GGCR's rule: 404/400/405/406, or a 200 that is no image index), the referrer is appended to
  the OCI index at tag ``sha256-<hex>`` (existing entries kept, annotations dropped, sorted by digest).

Readers list the referrers (API first, else the fallback tag), keep entries whose ``artifactType`` is
the bundle's, the OCI empty type (ghcr.io lists cosign's referrers so) or absent, fetch each manifest
and select it by its LAYER media type; the manifest's ``subject`` must be the image. The server-side
``artifactType`` filter is not sent: a registry that lists the bundles as ``application/vnd.oci.empty.v1+json``
would filter them all away.

Signing is idempotent: a bundle by this key over this digest with these annotations that verifies
(with the log's keys when signing into a log) means nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Final

from pipeline import jsonbounded
from pipeline.cosign.verify import VerificationPolicy, VerifiedSignature
from pipeline.errors import InvalidInputError, NotFoundError, ReleaseVectorError, is_unchecked
from pipeline.http import parallel_map
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from pipeline.oci.client import Descriptor
from pipeline.oci.reference import Reference, Repository
from pipeline.signatures.layout import (
    Format,
    KeyedLocks,
    LayoutVerification,
    SignStatus,
    Verifier,
    WriteConfirmations,
    retry_blob_race,
    write_until_present,
)
from pipeline.signatures.registry import KnownManifests, ReferrersApi, SignatureRegistry, manifest_if_there
from pipeline.signatures.target import SignatureTarget
from pipeline.sigstore.bundle import (
    BUNDLE_MEDIA_TYPE_PREFIX,
    COSIGN_SIGN_PREDICATE_TYPE,
    parse_in_toto_statement,
    parse_sigstore_bundle,
)
from pipeline.sigstore.dsse import IN_TOTO_PAYLOAD_TYPE, DsseEnvelope, DsseSignature, dsse_pae

if TYPE_CHECKING:  # signing's side (the signers, the log, sign-blob's module): not needed to verify
    from pipeline.signatures.blob import TimestampSource
    from pipeline.signatures.signers import Signer
    from pipeline.sigstore.tlog import TransparencyLog

BUNDLE_ARTIFACT_TYPE: Final = mediatypes.SIGSTORE_BUNDLE_V03
CONTENT_ANNOTATION: Final = "dev.sigstore.bundle.content"
PREDICATE_TYPE_ANNOTATION: Final = "dev.sigstore.bundle.predicateType"
CREATED_ANNOTATION: Final = "org.opencontainers.image.created"
DSSE_CONTENT: Final = "dsse-envelope"
EMPTY_DIGEST: Final = digests.compute(mediatypes.OCI_EMPTY_DATA)
_LISTED_TYPES: Final = frozenset({BUNDLE_ARTIFACT_TYPE, mediatypes.OCI_EMPTY, ""})

# --- pure: names, manifests, the fallback index --------------------------------------------------


def referrers_tag(digest: str) -> str:
    """``sha256:<hex>`` → ``sha256-<hex>``: the referrers fallback tag (OCI distribution spec)."""
    if not digests.is_valid(digest):
        raise InvalidInputError(f"{digest!r} is not a manifest digest")
    algorithm, hex_part = digest.split(":", 1)
    return f"{algorithm}-{hex_part}"


def created_now(source_date_epoch: str | None = None) -> str:
    """``org.opencontainers.image.created``: RFC 3339 UTC seconds, from SOURCE_DATE_EPOCH when given."""
    if source_date_epoch:
        try:
            moment = datetime.fromtimestamp(int(source_date_epoch), UTC)
        except (ValueError, OverflowError, OSError):
            raise InvalidInputError(
                f"SOURCE_DATE_EPOCH {source_date_epoch!r} is not a Unix time in seconds", where="SOURCE_DATE_EPOCH"
            ) from None
    else:
        moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def referrer_manifest(
    bundle: bytes, subject: Descriptor, *, created: str, predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE
) -> bytes:
    """The referrer manifest, key for key as cosign v3 (Go ``json.Marshal`` of ``referrerManifest``)."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {
            "mediaType": mediatypes.OCI_EMPTY,
            "size": len(mediatypes.OCI_EMPTY_DATA),
            "digest": EMPTY_DIGEST,
            "artifactType": BUNDLE_ARTIFACT_TYPE,
        },
        "layers": [{"mediaType": BUNDLE_ARTIFACT_TYPE, "size": len(bundle), "digest": digests.compute(bundle)}],
        "annotations": {
            CONTENT_ANNOTATION: DSSE_CONTENT,
            PREDICATE_TYPE_ANNOTATION: predicate_type,
            CREATED_ANNOTATION: created,
        },
        "subject": {"mediaType": subject.media_type, "size": subject.size, "digest": subject.digest},
        "artifactType": BUNDLE_ARTIFACT_TYPE,
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


def fallback_index_with(existing: bytes | None, manifest: bytes, where: str) -> bytes | None:
    """The fallback index with the referrer ``manifest`` added (GGCR ``commitSubjectReferrers``), or None
    when it is listed already. The entry: media type, size, digest, artifactType; no annotations."""
    document: dict[str, object]
    if existing is None:
        document = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": []}
    else:
        try:
            parsed: object = jsonbounded.loads(existing, source=where, what="the referrers fallback index")
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("manifests", []), list):
            raise InvalidInputError("the referrers fallback tag holds no OCI image index", where=where)
        document = parsed
    listed = document.get("manifests")
    entries: list[object] = list(listed) if isinstance(listed, list) else []
    digest = digests.compute(manifest)
    if any(isinstance(e, dict) and e.get("digest") == digest for e in entries):
        return None
    parsed_manifest = jsonbounded.loads(manifest, source="the referrer manifest")
    artifact_type = parsed_manifest.get("artifactType") or parsed_manifest.get("config", {}).get("mediaType")
    entry: dict[str, object] = {"mediaType": parsed_manifest.get("mediaType", mediatypes.OCI_MANIFEST),
                                "size": len(manifest), "digest": digest}  # fmt: skip
    if artifact_type:
        entry["artifactType"] = artifact_type
    entries.append(entry)
    entries.sort(key=lambda e: str(e.get("digest", "")) if isinstance(e, dict) else "")
    document["manifests"] = entries
    return json.dumps(document, separators=(",", ":")).encode()


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Referrer:
    digest: str
    artifact_type: str
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class ReferrerList:
    """The image's referrers and where they were listed (``referrers API`` or ``tag sha256-<hex>``)."""

    referrers: tuple[Referrer, ...]
    source: str
    api: bool
    index: bytes | None = None  # the fallback tag's bytes as read (None: absent, or listed by the API)


def _index_entries(data: bytes, where: str) -> tuple[Referrer, ...]:
    try:
        document: object = jsonbounded.loads(data, source=where, what="the referrers index")
    except (ValueError, UnicodeDecodeError):
        document = None
    manifests = document.get("manifests") if isinstance(document, dict) else None
    if not isinstance(manifests, list):
        raise InvalidInputError("the referrers list is not an OCI image index", where=where)
    found: list[Referrer] = []
    for entry in manifests:
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            raise InvalidInputError("the referrers list has an entry without a digest", where=where)
        if not digests.is_valid(entry["digest"]):
            raise InvalidInputError(f"the referrers list names an invalid digest {entry['digest']!r}", where=where)
        annotations = entry.get("annotations")
        found.append(
            Referrer(
                entry["digest"],
                str(entry.get("artifactType") or ""),
                {str(k): str(v) for k, v in annotations.items()} if isinstance(annotations, dict) else {},
            )
        )
    return tuple(found)


def list_referrers(registry: SignatureRegistry, image: Reference, digest: str) -> ReferrerList:
    """The referrers of ``digest``: through the referrers API when the registry has it, else the fallback tag."""
    where = f"{image.name}@{digest}"
    if isinstance(registry, ReferrersApi):
        index = registry.get_referrers(image.repo, digest)
        if index is not None:
            return ReferrerList(_index_entries(index.data, f"{where} referrers"), "the referrers API", True)
    tag = image.repo.tag(referrers_tag(digest))
    index_data = manifest_if_there(registry, tag)
    if index_data is None:
        return ReferrerList((), f"tag {tag.tag}", False)
    return ReferrerList(_index_entries(index_data, str(tag)), f"tag {tag.tag}", False, index_data)


@dataclass(frozen=True)
class FoundBundle:
    """A bundle layer of a referrer manifest of the image, as fetched (digest-checked)."""

    manifest_digest: str
    data: bytes
    where: str


@dataclass(frozen=True)
class BundleSearch:
    found: tuple[FoundBundle, ...]
    failures: tuple[str, ...]  # referrers that could not be read (each with its reason)
    source: str
    api: bool
    listing: ReferrerList | None = None


def _bundle_layers(manifest: bytes, digest: str, predicate_type: str, where: str) -> list[tuple[str, str]]:
    """(media type, digest) of each Sigstore bundle layer of a referrer manifest of ``digest``."""
    try:
        document: object = jsonbounded.loads(manifest, source=where, what="the referrer manifest")
    except (ValueError, UnicodeDecodeError):
        document = None
    if not isinstance(document, dict):
        raise InvalidInputError("the referrer manifest is not JSON", where=where)
    layers = document.get("layers")
    if not isinstance(layers, list):
        return []
    bundles = [
        (str(layer.get("mediaType")), str(layer.get("digest")))
        for layer in layers
        if isinstance(layer, dict) and str(layer.get("mediaType", "")).startswith(BUNDLE_MEDIA_TYPE_PREFIX)
    ]
    if not bundles:
        return []
    annotations = document.get("annotations")
    stated = annotations.get(PREDICATE_TYPE_ANNOTATION) if isinstance(annotations, dict) else None
    if isinstance(stated, str) and stated != predicate_type:
        return []  # another kind of attestation (cosign attest), not what is looked for
    subject = document.get("subject")
    subject_digest = subject.get("digest") if isinstance(subject, dict) else None
    if subject_digest != digest:
        raise InvalidInputError(
            f"the referrer manifest's subject is {subject_digest or 'missing'}, not the image {digest}", where=where
        )
    return bundles


def find_bundles(
    registry: SignatureRegistry,
    image: Reference,
    digest: str,
    *,
    predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE,
) -> BundleSearch:
    """Every Sigstore bundle attached to ``image@digest`` (never raises for a bad referrer: reports it)."""
    listing = list_referrers(registry, image, digest)
    found: list[FoundBundle] = []
    failures: list[str] = []
    for referrer in listing.referrers:
        if referrer.artifact_type not in _LISTED_TYPES:
            continue
        stated = referrer.annotations.get(PREDICATE_TYPE_ANNOTATION)
        if stated is not None and stated != predicate_type:
            continue
        where = f"{image.name}@{referrer.digest}"
        try:
            try:
                manifest = registry.get_manifest(image.repo.digest(referrer.digest))
            except NotFoundError:
                raise NotFoundError(
                    f"the referrers list ({listing.source}) names manifest {referrer.digest}, which is missing",
                    where=where,
                ) from None
            for media_type, layer_digest in _bundle_layers(manifest.data, digest, predicate_type, where):
                layer_where = f"{where} bundle layer {layer_digest}"
                if media_type != BUNDLE_ARTIFACT_TYPE:
                    raise InvalidInputError(
                        f"the bundle layer's media type is {media_type}, not {BUNDLE_ARTIFACT_TYPE}", where=layer_where
                    )
                found.append(FoundBundle(referrer.digest, registry.get_blob(image.repo, layer_digest), layer_where))
        except ReleaseVectorError as error:
            failures.append(error.one_line())
    return BundleSearch(tuple(found), tuple(failures), listing.source, listing.api, listing)


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle that verified for the image: where it is, the statement it signs, and what was checked."""

    manifest_digest: str
    payload: bytes  # the in-toto statement (DSSE payload), verified
    signature: VerifiedSignature


@dataclass(frozen=True)
class BundleVerification:
    verified: tuple[VerifiedBundle, ...]
    failures: tuple[str, ...]
    found: int  # bundles and unreadable referrers found (0: the image has no v3 signature)
    source: str
    unchecked: ReleaseVectorError | None = None  # the referrers could not be listed (is_unchecked)
    listing: ReferrerList | None = None  # how they were listed (the fallback index's bytes): for a write after


def verify_found_bundle(
    bundle: FoundBundle,
    digest: str,
    policy: VerificationPolicy,
    *,
    annotations: Mapping[str, str] | None = None,
    predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE,
) -> VerifiedBundle:
    """Parse and verify one found bundle; a ReleaseVectorError says why it does not verify."""
    from pipeline.sigstore.verify import verify_bundle_for_image  # X.509, RFC 3161: with the first bundle found

    parsed = parse_sigstore_bundle(bundle.data, bundle.where)
    if parsed.media_type != BUNDLE_ARTIFACT_TYPE:
        raise InvalidInputError(
            f"the bundle's mediaType is {parsed.media_type}, but its layer says {BUNDLE_ARTIFACT_TYPE}",
            where=bundle.where,
        )
    verified = verify_bundle_for_image(
        parsed, digest, policy, bundle.where, annotations, predicate_type=predicate_type
    )
    assert parsed.dsse_envelope is not None  # verify_bundle_for_image accepts DSSE bundles only
    return VerifiedBundle(bundle.manifest_digest, parsed.dsse_envelope.payload, verified)


def verify_image_bundles(
    registry: SignatureRegistry,
    image: Reference,
    digest: str,
    policy: VerificationPolicy,
    *,
    annotations: Mapping[str, str] | None = None,
    predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE,
) -> BundleVerification:
    """Every v3 bundle of ``image@digest`` checked; never raises for a verification problem, reports it."""
    try:
        search = find_bundles(registry, image, digest, predicate_type=predicate_type)
    except ReleaseVectorError as error:
        if is_unchecked(error):
            return BundleVerification((), (), 0, "", unchecked=error)
        return BundleVerification((), (error.one_line(),), 1, "")
    verified: list[VerifiedBundle] = []
    failures = list(search.failures)
    for bundle in search.found:
        try:
            verified.append(
                verify_found_bundle(bundle, digest, policy, annotations=annotations, predicate_type=predicate_type)
            )
        except ReleaseVectorError as error:
            failures.append(error.message)
    return BundleVerification(tuple(verified), tuple(failures), len(search.found) + len(search.failures),
                              search.source, listing=search.listing)  # fmt: skip


# --- the layout ---------------------------------------------------------------------------------


def _same_annotations(bundle: VerifiedBundle, digest: str, annotations: Mapping[str, str]) -> bool:
    statement = parse_in_toto_statement(bundle.payload, "the verified statement")
    hex_part = digest.split(":", 1)[1]
    return any(
        s.digest.get("sha256") == hex_part and dict(s.annotations) == dict(annotations) for s in statement.subjects
    )


def has_bundle_verifying(
    registry: SignatureRegistry,
    image: Reference,
    digest: str,
    policy: VerificationPolicy,
    annotations: Mapping[str, str] | None = None,
) -> bool:
    """Read-only: does a v3 bundle with exactly these annotations verify for ``image@digest`` under ``policy``
    (a key, or keyless trust for one identity)?"""
    return _look(registry, image, digest, policy, annotations)[0]


def _look(
    registry: SignatureRegistry,
    image: Reference,
    digest: str,
    policy: VerificationPolicy,
    annotations: Mapping[str, str] | None,
) -> tuple[bool, ReferrerList | None]:
    """:func:`has_bundle_verifying`, and how the referrers were listed (for the write that may follow)."""
    notes = dict(annotations or {})
    result = verify_image_bundles(registry, image, digest, policy, annotations=notes)
    return any(_same_annotations(bundle, digest, notes) for bundle in result.verified), result.listing


FALLBACK_INDEX_TURNS: Final = KeyedLocks()
"""Referrers of one subject attached at once (the vector's signature and its provenance) write its fallback
index in turn; their bundles and manifests are uploaded side by side."""


def attach_bundle(
    registry: SignatureRegistry,
    repository: Repository,
    subject: Descriptor,
    bundle: bytes,
    *,
    created: str | None = None,
    predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE,
    confirmations: WriteConfirmations | None = None,
    listed: ReferrerList | None = None,
) -> str:
    """Push ``bundle`` as a referrer of ``subject`` as cosign's ``WriteReferrer`` does; returns the
    referrer manifest's digest. Without a referrers API, the fallback index at ``sha256-<hex>`` gets it.
    ``listed``: how the caller just listed the subject's referrers (whether the registry has the API, the
    fallback index's bytes), so neither is asked again; the index is read afresh right before its PUT anyway."""
    manifest = referrer_manifest(bundle, subject, created=created or created_now(), predicate_type=predicate_type)

    def write() -> str:
        # The empty config and the bundle side by side (two round trips, not four); the empty config is
        # the same blob for every referrer: the registry client uploads it once and mounts it elsewhere.
        def upload(blob: tuple[bytes, bool]) -> str:
            return registry.upload_blob(repository, blob[0], check_exists=blob[1])

        # the bundle is a new signature: no HEAD to ask first
        parallel_map(upload, [(mediatypes.OCI_EMPTY_DATA, True), (bundle, False)], concurrency=2)
        return registry.put_manifest(repository, digests.compute(manifest), manifest, mediatypes.OCI_MANIFEST)

    manifest_digest = retry_blob_race(write)
    if listed is not None:
        if listed.api:
            return manifest_digest  # the registry lists the referrer itself
    elif isinstance(registry, ReferrersApi) and registry.get_referrers(repository, subject.digest) is not None:
        return manifest_digest
    tag = repository.tag(referrers_tag(subject.digest))

    def prepare(existing: bytes | None) -> Callable[[], object] | None:
        index = fallback_index_with(existing, manifest, str(tag))
        if index is None:
            return None
        return lambda: registry.put_manifest(repository, tag.tag, index, mediatypes.OCI_INDEX)

    def present(existing: bytes | None) -> bool:
        return existing is not None and fallback_index_with(existing, manifest, str(tag)) is None

    read = partial(manifest_if_there, registry, tag)
    with FALLBACK_INDEX_TURNS.hold(str(tag)):  # another referrer of this subject in this run: one at a time
        current = listed.index if listed is not None else read()
        write_until_present(current, read, prepare, present, where=str(tag), confirmations=confirmations,
                            subject=f"{repository}@{subject.digest}")  # fmt: skip
    return manifest_digest


class ReferrerLayout:
    """cosign v3: a Sigstore bundle (DSSE over an in-toto statement) attached as an OCI 1.1 referrer.

    ``created`` is the referrer manifest's ``org.opencontainers.image.created`` (default: now; it makes
    the manifest differ per run, as cosign's does)."""

    format: Format = "v3"

    def __init__(
        self,
        registry: SignatureRegistry,
        *,
        created: str | None = None,
        confirmations: WriteConfirmations | None = None,
        timestamps: TimestampSource | None = None,
    ) -> None:
        self.registry = registry
        self.created = created
        self.confirmations = confirmations  # None: a fallback-index write is read back before ensure returns
        self.timestamps = timestamps  # a TSA: each new bundle carries a timestamp over its signature

    def is_signed(self, target: SignatureTarget, signer: Signer, log: TransparencyLog | None) -> bool:
        """Read-only: a bundle with exactly the target's annotations that counts as the signer's."""
        policy = signer.policy(log)
        return has_bundle_verifying(self.registry, target.store, target.digest, policy, target.annotations)

    def ensure(self, target: SignatureTarget, signer: Signer, log: TransparencyLog | None) -> SignStatus:
        signed, listed = _look(self.registry, target.store, target.digest, signer.policy(log), target.annotations)
        if signed:
            return "already signed"
        # The subject's descriptor as the assemble read it (a tag's HEAD, by this client), else a HEAD.
        subject = (self.registry.known_manifest(target.subject) if isinstance(self.registry, KnownManifests)
                   else None) or self.registry.head_manifest(target.subject)  # fmt: skip
        if subject is None:
            raise NotFoundError("the image to sign is not in the registry", where=target.where)
        from pipeline.sigstore.writer import cosign_sign_statement, dsse_bundle

        statement = cosign_sign_statement(target.digest.split(":", 1)[1], dict(target.annotations))
        signature = signer.sign(dsse_pae(IN_TOTO_PAYLOAD_TYPE, statement), pure_ed25519=True)
        envelope = DsseEnvelope(statement, IN_TOTO_PAYLOAD_TYPE, (DsseSignature(signature.value, ""),))
        material = signature.material
        entry = log.upload_dsse(envelope, material.log_pem) if log is not None else None
        stamps = (self.timestamps.timestamp(signature.value),) if self.timestamps is not None else ()
        bundle = dsse_bundle(envelope, material.public_key, entry, certificate_der=material.certificate_der,
                             timestamps=stamps)  # fmt: skip
        attach_bundle(self.registry, target.repository, subject, bundle, created=self.created,
                      confirmations=self.confirmations, listed=listed)  # fmt: skip
        return "signed"

    def verify(self, target: SignatureTarget, verifier: Verifier) -> LayoutVerification:
        """Every v3 bundle checked (``-a`` annotations in the statement's subject; a v3 statement names no
        repository, so ``require_reference`` does not apply)."""
        annotations = dict(verifier.annotations) or None
        result = verify_image_bundles(self.registry, target.store, target.digest, verifier.policy,
                                      annotations=annotations)  # fmt: skip
        failures = tuple(f"cosign v3 bundle: {failure}" for failure in result.failures)
        where = result.source or "the referrers"
        return LayoutVerification(result.verified, failures, bool(result.found),
                                  f"no cosign v3 signature bundle via {where}", unchecked=result.unchecked)  # fmt: skip
