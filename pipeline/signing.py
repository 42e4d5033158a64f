"""Signing images in their registries, in cosign's legacy layout.

For each image: resolve the reference once to its manifest digest, build the simple-signing payload
for that digest, and append one signature layer to the ``sha256-<hex>.sig`` manifest beside it. A
signature by the same key over the same payload (and annotations) already there means the image is
signed: nothing is written, so re-runs are idempotent. Images are independent: one failing does not
stop the others, and every outcome is reported.

With a transparency log (a :class:`TransparencyLog` port, e.g. :class:`pipeline.sigstore.rekor_client.RekorClient`)
each new signature is uploaded as a ``hashedrekord`` entry (sha256 of the payload, the signature, the
public key PEM) and the log's answer goes into the layer's ``dev.sigstore.cosign/bundle`` annotation in
cosign's shape. An existing layer then counts as "signed" only if it also carries a bundle that verifies
with the log's trusted keys for that very signature: an image signed earlier without the log gets a
new layer with a bundle; one signed with it gets nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Protocol

from pipeline.bundles_oci import (
    BundleFormat,
    as_dsse_log,
    bundle_registry,
    formats_of,
    has_valid_bundle,
    sign_digest_v3,
)
from pipeline.cosign.keys import PublicKey, SigningKey, public_key_to_pem, signing_hash
from pipeline.cosign.payload import simple_signing_payload
from pipeline.cosign.rekor import bundle_annotation, parse_rekor_bundle, verify_rekor_bundle
from pipeline.cosign.sigmanifest import (
    BUNDLE_ANNOTATION,
    LayerRef,
    SignatureLayer,
    SignatureManifest,
    append_signature,
    find_signed,
    read_signature_manifest,
    signature_tag,
)
from pipeline.errors import InvalidInputError, NotFoundError, ReleaseVectorError, UsageError
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from pipeline.oci.client import Descriptor, Manifest
from pipeline.oci.reference import Reference, Repository
from pipeline.sigstore.tlog import TransparencyLog

DEFAULT_CONCURRENCY = 16

SignStatus = Literal["signed", "already signed", "failed"]


class SigningRegistry(Protocol):
    """The registry operations signing needs (``RegistryClient`` provides them)."""

    def head_manifest(self, ref: Reference) -> Descriptor | None: ...

    def get_manifest(self, ref: Reference) -> Manifest: ...

    def put_manifest(
        self, target: Reference | Repository, tag_or_digest: str | None, data: bytes, media_type: str
    ) -> str: ...

    def upload_blob(
        self,
        target: Reference | Repository,
        data: bytes,
        mount_from: Reference | Repository | None = None,
        *,
        check_exists: bool = True,
    ) -> str: ...


class KeylessPort(Protocol):
    """Keyless signing for one run (:class:`pipeline.keyless_signing.KeylessSigning` provides it): whether an
    image already carries a keyless signature for the run's identity, and adding one."""

    def is_signed(
        self,
        registry: SigningRegistry,
        image: Reference,
        digest: str,
        annotations: Mapping[str, str],
        *,
        docker_reference: str | None,
        tlog: TransparencyLog | None,
        bundle_format: BundleFormat,
    ) -> bool: ...

    def sign(
        self,
        registry: SigningRegistry,
        image: Reference,
        digest: str,
        annotations: Mapping[str, str],
        *,
        docker_reference: str | None,
        tlog: TransparencyLog | None,
        bundle_format: BundleFormat,
        created: str | None,
    ) -> SignStatus: ...


def logged_by(tlog: TransparencyLog | None, payload: bytes, public_key: PublicKey) -> Callable[[LayerRef], bool]:
    """A layer test: with a log, the layer's bundle must verify (SET with the trusted keys) for its signature."""
    if tlog is None:
        return lambda _layer: True
    signer_pem = public_key_to_pem(public_key)
    trusted = tuple(tlog.trusted_keys)

    def check(layer: LayerRef) -> bool:
        text = layer.annotations.get(BUNDLE_ANNOTATION)
        signature_b64 = layer.signature_b64
        if not text or not signature_b64:
            return False
        try:
            verify_rekor_bundle(
                parse_rekor_bundle(text, layer.digest),
                trusted_keys=trusted,
                payload=payload,
                signature=base64.b64decode(signature_b64, validate=True),
                signer_pem=signer_pem,
                where=layer.digest,
            )
        except (ReleaseVectorError, ValueError):
            return False
        return True

    return check


def sign_payload(key: SigningKey, payload: bytes, tlog: TransparencyLog | None) -> SignatureLayer:
    """The signature layer for ``payload``: signed, and logged (bundle annotation) when there is a log."""
    signature = key.sign(payload)
    bundle = None
    if tlog is not None:
        algorithm = signing_hash(key.public_key).name
        logged = tlog.upload(hashlib.new(algorithm, payload).hexdigest(), signature, key.public_key_pem(), algorithm)
        bundle = bundle_annotation(logged)
    return SignatureLayer(payload=payload, signature_b64=base64.b64encode(signature).decode(), bundle=bundle)


@dataclass(frozen=True)
class SignOutcome:
    """What happened to one image: ``reference`` as given, the digest signed, and the status."""

    reference: str
    repository: str
    digest: str | None
    status: SignStatus
    error: ReleaseVectorError | None = None

    @property
    def pinned(self) -> str:
        """``repository@digest``: exactly what was signed."""
        return f"{self.repository}@{self.digest}" if self.digest else self.reference

    def to_json(self) -> dict[str, object]:
        return {
            "reference": self.reference,
            "pinned": self.pinned,
            "digest": self.digest,
            "status": self.status,
            "error": self.error.one_line() if self.error else None,
        }


def signature_reference(image: Reference, digest: str) -> Reference:
    """Where cosign keeps the signatures of ``digest``: tag ``sha256-<hex>.sig`` in the same repository."""
    return image.repo.tag(signature_tag(digest))


class SignatureReads:
    """The ``.sig`` manifests a release's read-only look read, each handed once to the signing that follows.

    A release looks (is the image signed?) and then signs what is not: without this, every newly signed
    image's ``.sig`` manifest would be read twice, once by each step. A copy is handed out at most once,
    and only within ``max_age`` seconds of its read; later, or a second time (a retry), the signing reads
    afresh. Another signer's layer written between the look and our write would be lost, the same
    read-then-write window cosign itself has, kept short by ``max_age``. Thread-safe.
    """

    def __init__(self, max_age: float = 60.0) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, SignatureManifest | None]] = {}

    def record(self, sig_ref: Reference, manifest: SignatureManifest | None) -> None:
        with self._lock:
            self._entries[str(sig_ref)] = (time.monotonic(), manifest)

    def take(self, sig_ref: Reference) -> tuple[bool, SignatureManifest | None]:
        """(True, what the look read) if a fresh copy is there (it is removed); else (False, None)."""
        with self._lock:
            entry = self._entries.pop(str(sig_ref), None)
        if entry is None or time.monotonic() - entry[0] > self.max_age:
            return False, None
        return True, entry[1]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def read_existing_signatures(registry: SigningRegistry, sig_ref: Reference) -> SignatureManifest | None:
    try:  # one GET, a 404 meaning "no signatures yet" (a HEAD first would cost a request per image)
        manifest = registry.get_manifest(sig_ref)
    except NotFoundError:
        return None
    return read_signature_manifest(manifest.data, str(sig_ref))


def signed_payload(
    image: Reference, digest: str, annotations: Mapping[str, str], docker_reference: str | None
) -> bytes:
    """The payload we sign for ``digest``; ``docker_reference`` overrides the repository's name (mirrors)."""
    return simple_signing_payload(docker_reference or image.cosign_name, digest, annotations or None)


def is_signed(
    registry: SigningRegistry,
    image: Reference,
    digest: str,
    public_key: PublicKey,
    annotations: Mapping[str, str] | None = None,
    *,
    docker_reference: str | None = None,
    tlog: TransparencyLog | None = None,
    reads: SignatureReads | None = None,
) -> bool:
    """Read-only: does ``image@digest`` already carry a valid signature by ``public_key`` over our payload
    (and, with ``tlog``, a bundle for it that verifies with the log's trusted keys)?

    Only the public key is needed, so a dry run can plan without the private key. ``reads`` keeps the
    ``.sig`` manifest read, for the :func:`sign_digest` that follows.
    """
    sig_ref = signature_reference(image, digest)
    existing = read_existing_signatures(registry, sig_ref)
    if reads is not None:
        reads.record(sig_ref, existing)
    payload = signed_payload(image, digest, annotations or {}, docker_reference)
    if existing is None:
        return False
    return find_signed(existing.layers, payload, public_key, accept=logged_by(tlog, payload, public_key)) is not None


def sign_digest(
    registry: SigningRegistry,
    image: Reference,
    digest: str,
    key: SigningKey,
    annotations: Mapping[str, str],
    *,
    docker_reference: str | None = None,
    tlog: TransparencyLog | None = None,
    reads: SignatureReads | None = None,
) -> SignStatus:
    """Add our signature of ``image@digest`` unless a valid one by this key is already there.

    ``image`` is where the signature is written (a mirror, in rehearsals); ``docker_reference``, when
    given, is the name the payload records (the name the release vector lists). With ``tlog`` the new
    signature is logged first and carries its bundle, and only a logged existing one counts. ``reads``:
    the ``.sig`` manifest :func:`is_signed` just read is used instead of reading it again.
    """
    payload = signed_payload(image, digest, annotations, docker_reference)
    sig_ref = signature_reference(image, digest)
    known, existing = reads.take(sig_ref) if reads is not None else (False, None)
    if not known:
        existing = read_existing_signatures(registry, sig_ref)
    accept = logged_by(tlog, payload, key.public_key)
    if existing is not None and find_signed(existing.layers, payload, key.public_key, accept=accept):
        return "already signed"
    layer = sign_payload(key, payload, tlog)
    update = append_signature(existing, layer, public_key=key.public_key)
    if update.manifest is None:
        return "already signed"
    upload_blobs(registry, image.repo, [blob.data for blob in update.blobs])
    registry.put_manifest(image.repo, sig_ref.tag, update.manifest, update.media_type)
    return "signed"


def upload_blobs(registry: SigningRegistry, repo: Repository, blobs: Sequence[bytes]) -> None:
    """Upload a signature's blobs (its payload and its config) side by side, as cosign's registry library
    does: each upload is two round trips (POST, then PUT), so this halves the time before the manifest
    can be written. Every upload finishes before the first error, if any, is raised."""
    if len(blobs) <= 1:
        for data in blobs:
            registry.upload_blob(repo, data, check_exists=False)
        return
    with ThreadPoolExecutor(max_workers=len(blobs)) as pool:
        uploads = [pool.submit(registry.upload_blob, repo, data, check_exists=False) for data in blobs]
    for upload in uploads:
        upload.result()


def is_signed_in(
    registry: SigningRegistry,
    image: Reference,
    digest: str,
    public_key: PublicKey,
    annotations: Mapping[str, str] | None = None,
    *,
    docker_reference: str | None = None,
    tlog: TransparencyLog | None = None,
    bundle_format: BundleFormat = "legacy",
    reads: SignatureReads | None = None,
) -> bool:
    """:func:`is_signed` in every format ``bundle_format`` stands for (``v3``: a cosign v3 bundle referrer)."""
    for fmt in formats_of(bundle_format):
        if fmt == "legacy":
            done = is_signed(registry, image, digest, public_key, annotations,
                             docker_reference=docker_reference, tlog=tlog, reads=reads)  # fmt: skip
        else:
            done = has_valid_bundle(bundle_registry(registry), image, digest, public_key, annotations,
                                    tlog=as_dsse_log(tlog))  # fmt: skip
        if not done:
            return False
    return True


def sign_digest_in(
    registry: SigningRegistry,
    image: Reference,
    digest: str,
    key: SigningKey,
    annotations: Mapping[str, str],
    *,
    docker_reference: str | None = None,
    tlog: TransparencyLog | None = None,
    bundle_format: BundleFormat = "legacy",
    created: str | None = None,
    reads: SignatureReads | None = None,
) -> SignStatus:
    """:func:`sign_digest` in every format ``bundle_format`` stands for; "signed" if any format was written.

    ``created`` is the v3 referrer manifest's ``org.opencontainers.image.created`` (default: now).
    """
    statuses: list[SignStatus] = []
    for fmt in formats_of(bundle_format):
        if fmt == "legacy":
            statuses.append(sign_digest(registry, image, digest, key, annotations,
                                        docker_reference=docker_reference, tlog=tlog, reads=reads))  # fmt: skip
        else:
            statuses.append(sign_digest_v3(bundle_registry(registry), image, digest, key, annotations,
                                           tlog=as_dsse_log(tlog), created=created))  # fmt: skip
    return "signed" if "signed" in statuses else "already signed"


def is_signed_all(
    registry: SigningRegistry,
    image: Reference,
    digest: str,
    public_key: PublicKey | None,
    keyless: KeylessPort | None,
    annotations: Mapping[str, str] | None = None,
    *,
    docker_reference: str | None = None,
    tlog: TransparencyLog | None = None,
    bundle_format: BundleFormat = "legacy",
    reads: SignatureReads | None = None,
) -> bool:
    """Read-only: signed by the key (when there is one) AND keyless (when signing keyless), in every format.

    ``reads`` keeps the key's ``.sig`` manifest read for :func:`sign_digest_all` (keyless signing appends
    after the key's layer, so it always reads afresh).
    """
    notes = dict(annotations or {})
    if public_key is not None and not is_signed_in(
        registry, image, digest, public_key, notes, docker_reference=docker_reference, tlog=tlog,
        bundle_format=bundle_format, reads=reads,
    ):  # fmt: skip
        return False
    return keyless is None or keyless.is_signed(
        registry, image, digest, notes, docker_reference=docker_reference, tlog=tlog, bundle_format=bundle_format
    )


def sign_digest_all(
    registry: SigningRegistry,
    image: Reference,
    digest: str,
    key: SigningKey | None,
    keyless: KeylessPort | None,
    annotations: Mapping[str, str],
    *,
    docker_reference: str | None = None,
    tlog: TransparencyLog | None = None,
    bundle_format: BundleFormat = "legacy",
    created: str | None = None,
    reads: SignatureReads | None = None,
) -> SignStatus:
    """Sign with the key and/or keyless, one after the other (both append to the same ``.sig`` manifest);
    "signed" if anything was written. ``reads``: what :func:`is_signed_all` read, for the key's signature."""
    if key is None and keyless is None:
        raise UsageError("signing needs a key or keyless signing")
    statuses: list[SignStatus] = []
    if key is not None:
        statuses.append(sign_digest_in(registry, image, digest, key, annotations, docker_reference=docker_reference,
                                       tlog=tlog, bundle_format=bundle_format, created=created,
                                       reads=reads))  # fmt: skip
    if keyless is not None:
        statuses.append(keyless.sign(registry, image, digest, annotations, docker_reference=docker_reference,
                                     tlog=tlog, bundle_format=bundle_format, created=created))  # fmt: skip
    return "signed" if "signed" in statuses else "already signed"


def index_children(manifest: Manifest, where: str) -> list[str]:
    """The digests of the manifests an image index lists (its platform images)."""
    try:
        document = json.loads(manifest.data)
        children = [entry["digest"] for entry in document["manifests"]]
    except (ValueError, KeyError, TypeError):
        raise InvalidInputError("the image index is malformed (no manifests[].digest)", where=where) from None
    for child in children:
        if not isinstance(child, str) or not digests.is_valid(child):
            raise InvalidInputError(f"the image index lists an invalid digest {child!r}", where=where)
    return list(dict.fromkeys(children))


@dataclass(frozen=True)
class _Target:
    label: str
    image: Reference
    digest: str


def _resolve_targets(registry: SigningRegistry, image: Reference, recursive: bool) -> list[_Target]:
    """The image's digest (what gets signed) and, with ``recursive`` on an index, its children's."""
    manifest = registry.get_manifest(image)
    targets = [_Target(str(image), image, manifest.digest)]
    if recursive and manifest.media_type in mediatypes.INDEXES:
        for child in index_children(manifest, str(image)):
            targets.append(_Target(f"{image.name}@{child}", image.repo.digest(child), child))
    return targets


def sign_images(
    registry: SigningRegistry,
    images: Sequence[Reference],
    key: SigningKey | None,
    *,
    keyless: KeylessPort | None = None,
    annotations: Mapping[str, str] | None = None,
    recursive: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_progress: Callable[[SignOutcome], None] | None = None,
    tlog: TransparencyLog | None = None,
    bundle_format: BundleFormat = "legacy",
    created: str | None = None,
) -> list[SignOutcome]:
    """Sign every image (and with ``recursive`` every platform manifest of an index), concurrently.

    Two phases: resolve every reference once to its digest, then sign each unique repository+digest
    once (two references to the same image must not race to append to the same ``.sig`` manifest).
    The result lists one outcome per reference and per child manifest, in input order.
    ``bundle_format`` ``v3``/``both`` also (or instead) attaches cosign v3 bundles (:mod:`pipeline.bundles_oci`).
    With ``keyless`` every image also (or, with ``key`` None, only) gets a keyless signature.
    """
    if key is None and keyless is None:
        raise UsageError("signing needs a key or keyless signing")
    notes = dict(annotations or {})
    unique = list(dict.fromkeys(images))
    workers = max(1, min(concurrency, len(unique) or 1))

    def resolve_one(image: Reference) -> list[_Target] | SignOutcome:
        try:
            return _resolve_targets(registry, image, recursive)
        except ReleaseVectorError as error:
            outcome = SignOutcome(str(image), image.name, image.digest, "failed", error)
            if on_progress is not None:
                on_progress(outcome)
            return outcome

    def sign_one(target: _Target) -> SignStatus | ReleaseVectorError:
        try:
            return sign_digest_all(registry, target.image, target.digest, key, keyless, notes, tlog=tlog,
                                   bundle_format=bundle_format, created=created)  # fmt: skip
        except ReleaseVectorError as error:
            return error

    with ThreadPoolExecutor(max_workers=workers) as pool:
        resolved = list(pool.map(resolve_one, unique))
        targets = [t for r in resolved if not isinstance(r, SignOutcome) for t in r]
        by_digest: dict[tuple[Repository, str], _Target] = {}
        for target in targets:
            by_digest.setdefault((target.image.repo, target.digest), target)
        signed: dict[tuple[Repository, str], SignStatus | ReleaseVectorError] = {}

        def sign_and_report(item: tuple[tuple[Repository, str], _Target]) -> None:
            result = sign_one(item[1])
            signed[item[0]] = result
            if on_progress is not None:
                on_progress(_outcome(item[1], result))

        list(pool.map(sign_and_report, by_digest.items()))

    outcomes: list[SignOutcome] = []
    for item in resolved:
        if isinstance(item, SignOutcome):
            outcomes.append(item)
            continue
        outcomes.extend(_outcome(target, signed[(target.image.repo, target.digest)]) for target in item)
    return outcomes


def _outcome(target: _Target, result: SignStatus | ReleaseVectorError) -> SignOutcome:
    if isinstance(result, ReleaseVectorError):
        return SignOutcome(target.label, target.image.name, target.digest, "failed", result)
    return SignOutcome(target.label, target.image.name, target.digest, result)
