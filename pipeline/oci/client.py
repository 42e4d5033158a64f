"""A thin OCI distribution client on httpx: manifests and blobs, nothing more.

What it guarantees:

- Bytes are exact: a manifest comes back as the bytes the registry sent, with its media type and the
  digest of those bytes (checked against the digest asked for, and against ``Docker-Content-Digest``);
  a manifest is PUT from the caller's bytes, and the digest the registry reports must be ours.
- Auth: anonymous, Basic, or the Bearer token flow (realm, service, scopes per repository and actions),
  tokens cached per registry and scopes and fetched again once on a 401. Credentials and tokens go only
  to the registry they belong to (and its token realm if on the same host, Docker Hub's realm, or a host
  in ``credential_hosts``): never across a redirect to another host.
- Transport: HTTPS with verification (plus an optional private CA); plain HTTP only for a loopback
  registry or with ``allow_http``; explicit timeouts; one pooled ``httpx.Client``; bounded retries
  with exponential backoff and jitter, honouring ``Retry-After``, on 408/429/5xx and connection errors
  (every request this client makes is safe to repeat: reads, content-addressed blob uploads, PUTs of
  manifests by tag or digest).
- Failures are :class:`~pipeline.errors.RegistryError` (network, registry, wrong bytes),
  :class:`~pipeline.errors.AuthError` (401/403, refused credentials) or
  :class:`~pipeline.errors.InvalidInputError` (the caller's data), each one line naming the reference
  or URL, never a credential or token.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NoReturn, TypeVar

import httpx

from pipeline import __version__, jsonbounded
from pipeline.errors import AuthError, InvalidInputError, NotFoundError, RegistryError
from pipeline.http import (
    ClosingClient,
    Retryable,
    describe_transport_error,
    http_client,
    is_cert_error,
    is_loopback_host,
    iter_capped,
    read_capped,
    read_prefix,
    retry_delay,
    retrying,
    send,
    ssl_context,
)
from pipeline.http import RetryPolicy as RetryPolicy  # re-exported (lives in pipeline.http)
from pipeline.http import Timeouts as Timeouts
from pipeline.http import parse_retry_after as parse_retry_after
from pipeline.http import scrub_url as scrub_url
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from pipeline.oci.auth import (
    Challenge,
    CredentialStore,
    NoCredentials,
    Scope,
    TokenCache,
    merge_scopes,
    parse_www_authenticate,
    realm_may_receive_credentials,
)
from pipeline.oci.reference import Reference, Repository
from pipeline.secret import Secret, is_header_token

T = TypeVar("T")

PULL: Final = "pull"
PUSH: Final = "push"
MAX_REDIRECTS: Final = 5
DEFAULT_MAX_BLOB_BYTES: Final = 256 * 1024 * 1024
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_GENERIC_CONTENT_TYPES: Final = frozenset({"", "application/json", "text/plain", "application/octet-stream"})
_ERROR_BODY_LIMIT: Final = 64 * 1024
_ERROR_BODY_DEPTH: Final = 8
MAX_TOKEN_ANSWER_BYTES: Final = 1024 * 1024
MAX_TAG_LIST_BYTES: Final = 16 * 1024 * 1024
_NO_REFERRERS_API: Final = frozenset({400, 404, 405, 406})
_NO_MONOLITHIC_POST: Final = frozenset({400, 405, 413, 415, 501})  # a POST ?digest= refused: not supported
MONOLITHIC_POST_MAX_BYTES: Final = 1024 * 1024
"""Blobs up to this size are sent in the upload's POST (``?digest=``: one request where the registry takes it)."""
BLOB_WAIT_SECONDS: Final = 30.0  # how long an upload waits for another thread's upload of the same blob
_KNOWN_LIMIT: Final = 100_000  # (registry, digest) pairs remembered; beyond, nothing more is (memory)


# --- configuration and results --------------------------------------------------------------


@dataclass(frozen=True)
class RegistryOptions:
    """How to reach registries. ``credentials`` answers per registry (see :mod:`pipeline.oci.auth`)."""

    allow_http: bool = False
    cacert: Path | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    retries: RetryPolicy = field(default_factory=RetryPolicy)
    credentials: CredentialStore = field(default_factory=NoCredentials)
    proxy: str | None = None
    user_agent: str = f"release-vector/{__version__}"
    max_connections: int = 10
    credential_hosts: frozenset[str] = frozenset()
    """Hosts (``host[:port]``) besides a registry's own that may receive its credentials as its token realm."""


@dataclass(frozen=True)
class Descriptor:
    """What a HEAD tells: media type, digest and size of a manifest (or blob)."""

    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """A manifest's exact bytes, the media type the registry gave, and the digest of those bytes."""

    data: bytes
    media_type: str
    digest: str

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.data))


@dataclass(frozen=True)
class _Endpoint:
    """What the ``GET /v2/`` ping taught about a registry: its base URL and the challenge it sends."""

    base: str
    challenge: Challenge | None


# --- helpers --------------------------------------------------------------------------------


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"https": 443, "http": 80}.get(url.scheme)
    return (url.scheme, url.host, url.port if url.port is not None else default)


def _media_type(response: httpx.Response) -> str:
    value: str = response.headers.get("Content-Type", "")
    return value.split(";", 1)[0].strip().lower()


def _error_summary(body: bytes) -> str:
    """``CODE: message`` from an OCI error body (``{"errors": [...]}``), or ''."""
    try:
        data = jsonbounded.loads(body[:_ERROR_BODY_LIMIT], source="registry error", max_depth=_ERROR_BODY_DEPTH)
    except (ValueError, UnicodeDecodeError, InvalidInputError):
        return ""
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = []
    for item in errors[:3]:
        if isinstance(item, dict):
            code = str(item.get("code", "")).strip()
            message = str(item.get("message", "")).strip()
            parts.append(": ".join(p for p in (code, message) if p))
    return " ".join("; ".join(p for p in parts if p).split())[:300]


def _error_codes(body: bytes) -> set[str]:
    try:
        data = jsonbounded.loads(body[:_ERROR_BODY_LIMIT], source="registry error", max_depth=_ERROR_BODY_DEPTH)
    except (ValueError, UnicodeDecodeError, InvalidInputError):
        return set()
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return set()
    return {str(e.get("code")) for e in errors if isinstance(e, dict)}


def _describe_transport_error(exc: httpx.TransportError) -> str:
    return describe_transport_error(exc, "the registry")


def _as_repo(target: Reference | Repository) -> Repository:
    return target.repo if isinstance(target, Reference) else target


# --- the client -----------------------------------------------------------------------------


class _BlobHomes:
    """Where this client has seen each blob, by content: the repositories (per registry) it uploaded it
    to, mounted it into or found it in. Blobs are content-addressed, so a blob once there stays there for a
    run (registries collect garbage offline); uploading it again is then no request at all, and into another
    repository of the same registry one mount (``POST ?mount=&from=``) instead of HEAD, POST and PUT.

    ``claim`` lets one thread upload a blob that several want at once (every v3 referrer's empty config
    ``{}``): the others wait for it and mount it from where it went. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._homes: dict[tuple[str, str], list[str]] = {}
        self._uploading: dict[tuple[str, str], threading.Event] = {}

    def has(self, repo: Repository, digest: str) -> bool:
        with self._lock:
            return repo.path in self._homes.get((repo.registry, digest), ())

    def elsewhere(self, repo: Repository, digest: str) -> Repository | None:
        """Another repository of the same registry known to hold the blob."""
        with self._lock:
            paths = self._homes.get((repo.registry, digest), ())
            other = next((path for path in paths if path != repo.path), None)
        return Repository(repo.registry, other) if other is not None else None

    def add(self, repo: Repository, digest: str) -> None:
        with self._lock:
            paths = self._homes.get((repo.registry, digest))
            if paths is None:
                if len(self._homes) >= _KNOWN_LIMIT:
                    return
                paths = self._homes[(repo.registry, digest)] = []
            if repo.path not in paths and len(paths) < 16:
                paths.append(repo.path)

    def forget(self, repo: Repository) -> None:
        """The registry refused a manifest of ``repo`` for a missing blob: nothing known there is trusted."""
        with self._lock:
            for (registry, _digest), paths in self._homes.items():
                if registry == repo.registry and repo.path in paths:
                    paths.remove(repo.path)

    def claim(self, repo: Repository, digest: str) -> threading.Event | None:
        """None: the caller uploads the blob (and calls :meth:`done`); else the event to wait for."""
        with self._lock:
            event = self._uploading.get((repo.registry, digest))
            if event is None:
                self._uploading[(repo.registry, digest)] = threading.Event()
            return event

    def done(self, repo: Repository, digest: str) -> None:
        with self._lock:
            event = self._uploading.pop((repo.registry, digest), None)
        if event is not None:
            event.set()


class RegistryClient(ClosingClient):
    """The registry operations release-vector needs. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        options: RegistryOptions | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options or RegistryOptions()
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._tokens = TokenCache(clock)
        self._endpoints: dict[str, _Endpoint] = {}
        self._withheld: dict[str, str] = {}  # registry -> the realm host its credentials were kept from
        self._ping_locks: dict[str, threading.Lock] = {}
        self._no_referrers_api: set[str] = set()  # registries that answered they have no referrers API
        self._referrers_api: set[str] = set()  # registries that answered with a referrers index
        self._referrers_probe = threading.Lock()  # the first ask per registry, alone: the others wait for it
        self._no_monolithic_post: set[str] = set()  # registries that answered a POST ?digest= with 202
        self._blobs = _BlobHomes()
        self._manifests: dict[tuple[str, str, str], Descriptor] = {}  # (registry, path, digest): seen this run
        self._ping_locks_guard = threading.Lock()
        self._http = http_client(
            verify=ssl_context(
                self.options.cacert,
                "registry CA certificate file is not a readable PEM certificate",
                missing="registry CA certificate file not found",
            ),
            timeout=self.options.timeouts.to_httpx(),
            limits=httpx.Limits(
                max_connections=self.options.max_connections,
                max_keepalive_connections=self.options.max_connections,
            ),
            proxy=self.options.proxy,
            headers={"User-Agent": self.options.user_agent},
            transport=transport,
        )

    # --- manifests ------------------------------------------------------------------------------

    def head_manifest(self, ref: Reference, accept: Iterable[str] = mediatypes.ALL_MANIFESTS) -> Descriptor | None:
        """The manifest's descriptor, or None if the registry has no such manifest (404)."""
        accepted = tuple(accept)
        where = str(ref)
        response = self._request(
            "HEAD",
            ref.repo,
            f"/v2/{ref.repository}/manifests/{ref.identifier}",
            scopes=(Scope.of(ref.repository, PULL),),
            headers={"Accept": ", ".join(accepted)},
            where=where,
        )
        status = response.status_code
        response.close()
        if status == 404:
            return None
        if status != 200:
            raise RegistryError(f"registry answered {status} to HEAD of the manifest", where=where)
        media_type = _media_type(response)
        reported = response.headers.get("Docker-Content-Digest")
        length = response.headers.get("Content-Length")
        if (
            media_type in _GENERIC_CONTENT_TYPES
            or reported is None
            or not digests.is_valid(reported)
            or length is None
            or not length.isdigit()
        ):
            return self.get_manifest(ref, accepted).descriptor()  # the HEAD told too little: read it
        if media_type not in accepted:
            raise RegistryError(f"unexpected manifest media type {media_type!r}", where=where)
        if ref.digest is not None and reported != ref.digest:
            raise RegistryError(f"registry reports digest {reported} for a manifest asked for by digest", where=where)
        size = int(length)
        if size > mediatypes.MAX_MANIFEST_BYTES:
            raise RegistryError(self._too_large_message(size), where=where)
        return self._seen(ref.repo, Descriptor(media_type, reported, size))

    def _seen(self, repo: Repository, descriptor: Descriptor) -> Descriptor:
        """Remember a manifest's descriptor (content-addressed: what a digest names never changes)."""
        if len(self._manifests) < _KNOWN_LIMIT:
            self._manifests[(repo.registry, repo.path, descriptor.digest)] = descriptor
        return descriptor

    def known_manifest(self, ref: Reference) -> Descriptor | None:
        """The descriptor of manifest ``ref`` (by digest) as this client last read it (a tag's HEAD or GET,
        by the assemble or the look), without a request; None if it has not seen it. It says the manifest
        was there then: a caller that must know it is there now asks :meth:`head_manifest`."""
        if ref.digest is None:
            return None
        return self._manifests.get((ref.registry, ref.repository, ref.digest))

    def get_manifest(self, ref: Reference, accept: Iterable[str] = mediatypes.ALL_MANIFESTS) -> Manifest:
        """The manifest's exact bytes, its media type, and their digest (checked when ``ref`` has one)."""
        accepted = tuple(accept)
        where = str(ref)
        response = self._request(
            "GET",
            ref.repo,
            f"/v2/{ref.repository}/manifests/{ref.identifier}",
            scopes=(Scope.of(ref.repository, PULL),),
            headers={"Accept": ", ".join(accepted)},
            where=where,
        )
        try:
            if response.status_code != 200:
                self._raise_for_status(response, "GET the manifest", where, not_found="manifest not found")
            data = self._read_limited(response, mediatypes.MAX_MANIFEST_BYTES, where, manifest=True)
        finally:
            response.close()
        media_type = self._manifest_media_type(response, data, accepted, where)
        algorithm = digests.algorithm_of(ref.digest) if ref.digest is not None else digests.SHA256
        actual = digests.compute(data, algorithm)
        if ref.digest is not None and actual != ref.digest:
            raise RegistryError(
                f"registry returned a manifest whose digest is {actual}, not the one asked for", where=where
            )
        reported = response.headers.get("Docker-Content-Digest")
        if reported and digests.is_valid(reported) and not digests.matches(data, reported):
            raise RegistryError(
                f"registry's Docker-Content-Digest {reported} does not match the manifest it sent ({actual})",
                where=where,
            )
        self._seen(ref.repo, Descriptor(media_type, actual, len(data)))
        return Manifest(data, media_type, actual)

    def put_manifest(
        self,
        target: Reference | Repository,
        tag_or_digest: str | None,
        data: bytes,
        media_type: str,
    ) -> str:
        """PUT ``data`` as a manifest at a tag or digest (None: the one in ``target``); returns its digest."""
        repo = _as_repo(target)
        identifier = tag_or_digest
        if identifier is None:
            if not isinstance(target, Reference):
                raise InvalidInputError("a tag or digest is needed to put a manifest", where=str(target))
            identifier = target.identifier
        local = digests.compute(data)
        ref = repo.digest(identifier) if ":" in identifier else repo.tag(identifier)
        where = str(ref)
        if len(data) > mediatypes.MAX_MANIFEST_BYTES:
            raise InvalidInputError(self._too_large_message(len(data)), where=where)
        if ref.digest is not None and not digests.matches(data, ref.digest):
            raise InvalidInputError(f"manifest bytes have digest {local}, not the digest given", where=where)
        if not media_type or "/" not in media_type:
            raise InvalidInputError(f"not a media type: {media_type!r}", where=where)
        response = self._request(
            "PUT",
            repo,
            f"/v2/{repo.path}/manifests/{identifier}",
            scopes=(Scope.of(repo.path, PULL, PUSH),),
            headers={"Content-Type": media_type},
            content=data,
            where=where,
        )
        try:
            if response.status_code not in (200, 201, 202, 204):
                try:
                    self._raise_for_status(response, "PUT the manifest", where)
                except RegistryError as error:
                    if error.codes & {"BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"}:
                        self._blobs.forget(repo)  # a blob remembered here is not usable: upload afresh
                    raise
        finally:
            response.close()
        reported = response.headers.get("Docker-Content-Digest")
        if reported and reported.startswith(f"{digests.SHA256}:") and reported != local:
            raise RegistryError(f"registry stored the manifest as {reported}, but its bytes are {local}", where=where)
        return local if ref.digest is None else ref.digest

    # --- blobs ----------------------------------------------------------------------------------

    def blob_exists(self, target: Reference | Repository, digest: str) -> bool:
        repo = _as_repo(target)
        where = f"{repo.name}@{digest}"
        digests.validate(digest, where=where)
        response = self._request(
            "HEAD", repo, f"/v2/{repo.path}/blobs/{digest}", scopes=(Scope.of(repo.path, PULL),), where=where
        )
        response.close()
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise RegistryError(f"registry answered {response.status_code} to HEAD of the blob", where=where)

    def get_blob(
        self,
        target: Reference | Repository,
        digest: str,
        *,
        max_bytes: int = DEFAULT_MAX_BLOB_BYTES,
        size: int | None = None,
    ) -> bytes:
        """The blob's bytes, checked against ``digest``; blobs over ``max_bytes`` are refused, and so are
        blobs longer than ``size`` (the descriptor's), which also scales the request's deadline."""
        repo = _as_repo(target)
        where = f"{repo.name}@{digest}"
        digests.validate(digest, where=where)
        limit = max_bytes if size is None or size < 0 else min(max_bytes, size)
        response = self._request(
            "GET", repo, f"/v2/{repo.path}/blobs/{digest}", scopes=(Scope.of(repo.path, PULL),), where=where,
            size=limit,
        )  # fmt: skip
        try:
            if response.status_code != 200:
                self._raise_for_status(response, "GET the blob", where, not_found="blob not found")
            data = self._read_limited(response, limit, where, manifest=False)
        finally:
            response.close()
        if not digests.matches(data, digest):
            raise RegistryError(
                f"registry returned a blob whose digest is {digests.compute(data, digests.algorithm_of(digest))}",
                where=where,
            )
        return data

    def upload_blob(
        self,
        target: Reference | Repository,
        data: bytes,
        mount_from: Reference | Repository | None = None,
        *,
        check_exists: bool = True,
    ) -> str:
        """Make ``data`` a blob of the repository; returns its digest.

        Nothing is sent if the blob is there already (this client put it or saw it there: no request;
        else a HEAD); with ``mount_from`` (another repository of the same registry that has the blob), or
        another repository this client knows holds it, the registry is asked to mount it instead of
        receiving the bytes (one request); otherwise an upload: one ``POST ?digest=`` carrying the bytes
        where the registry takes it (the OCI spec's single-request upload), else POST, then one PUT.
        ``check_exists=False`` skips the HEAD for blobs that are almost surely new (a signature's payload):
        uploading content that is there already is harmless, and the HEAD would cost one request per blob.
        Several threads uploading the same blob into one registry at once: one uploads, the others wait
        for it and mount it.
        """
        repo = _as_repo(target)
        digest = digests.compute(data)
        if check_exists and self._blobs.has(repo, digest):
            return digest
        claimed = False
        source = _as_repo(mount_from) if mount_from is not None else None
        if check_exists and source is None:
            source = self._blobs.elsewhere(repo, digest)
            if source is None:
                waiting = self._blobs.claim(repo, digest)
                claimed = waiting is None
                if waiting is not None and waiting.wait(BLOB_WAIT_SECONDS):
                    if self._blobs.has(repo, digest):
                        return digest
                    source = self._blobs.elsewhere(repo, digest)
        try:
            self._upload_blob(repo, data, digest, source, check_exists=check_exists and source is None)
        finally:
            if claimed:
                self._blobs.done(repo, digest)
        return digest

    def _upload_blob(
        self, repo: Repository, data: bytes, digest: str, source: Repository | None, *, check_exists: bool
    ) -> None:
        where = f"{repo.name}@{digest}"
        if check_exists and self.blob_exists(repo, digest):
            self._blobs.add(repo, digest)
            return
        if source is not None and (source.registry != repo.registry or source.path == repo.path):
            source = None  # a mount works only within one registry
        start: httpx.Response | None = None
        if source is not None:
            try:
                start = self._request(
                    "POST",
                    repo,
                    f"/v2/{repo.path}/blobs/uploads/",
                    scopes=(Scope.of(repo.path, PULL, PUSH), Scope.of(source.path, PULL)),
                    params={"mount": digest, "from": source.path},
                    content=b"",
                    where=where,
                )
            except AuthError:
                source = None  # no pull access to the source: send the bytes instead
        monolithic = False
        if start is None:
            monolithic = len(data) <= MONOLITHIC_POST_MAX_BYTES and repo.registry not in self._no_monolithic_post
            start = self._request(
                "POST",
                repo,
                f"/v2/{repo.path}/blobs/uploads/",
                scopes=(Scope.of(repo.path, PULL, PUSH),),
                headers={"Content-Type": "application/octet-stream"} if monolithic else None,
                params={"digest": digest} if monolithic else None,
                content=data if monolithic else b"",
                where=where,
            )
        try:
            if start.status_code == 201 and (source is not None or monolithic):
                self._check_blob_digest(start, digest, where)
                self._blobs.add(repo, digest)
                return
            if monolithic and start.status_code in _NO_MONOLITHIC_POST:
                self._no_monolithic_post.add(repo.registry)  # refused rather than ignored: start plainly
                return self._upload_blob(repo, data, digest, None, check_exists=False)
            if start.status_code != 202:
                self._raise_for_status(start, "start the blob upload", where)
        finally:
            start.close()
        if monolithic:  # the registry opened an upload session instead (Distribution 2.x): PUT the bytes
            self._no_monolithic_post.add(repo.registry)
        location = start.headers.get("Location")
        if not location:
            raise RegistryError("registry started an upload but sent no Location", where=where)
        upload_url = start.url.join(location)
        upload_url = upload_url.copy_merge_params({"digest": digest})
        response = self._request(
            "PUT",
            repo,
            str(upload_url),
            scopes=(Scope.of(repo.path, PULL, PUSH),),
            headers={"Content-Type": "application/octet-stream"},
            content=data,
            where=where,
            size=len(data),
        )
        try:
            if response.status_code in (201, 204):
                self._check_blob_digest(response, digest, where)
                self._blobs.add(repo, digest)
                return
            body = read_prefix(response, _ERROR_BODY_LIMIT)
        finally:
            response.close()
        lost = response.status_code == 404 and "BLOB_UPLOAD_UNKNOWN" in _error_codes(body)
        if lost and self.blob_exists(repo, digest):
            return  # an earlier attempt of this PUT went through before the connection broke
        self._raise_for_status(response, "upload the blob", where, body=body)

    def iter_blob(self, target: Reference | Repository, digest: str, *, size: int) -> Iterator[bytes]:
        """The blob's bytes chunk by chunk (memory does not grow with its size); the registry's answer
        is checked as it streams: no more than ``size`` bytes, and at the end exactly ``size`` bytes with
        ``digest`` (RegistryError otherwise, raised from the iteration)."""
        repo = _as_repo(target)
        where = f"{repo.name}@{digest}"
        digests.validate(digest, where=where)
        response = self._request(
            "GET", repo, f"/v2/{repo.path}/blobs/{digest}", scopes=(Scope.of(repo.path, PULL),), where=where,
            size=size,
        )  # fmt: skip
        if response.status_code != 200:
            self._raise_for_status(response, "GET the blob", where, not_found="blob not found")
        hasher = hashlib.new(digests.algorithm_of(digest))
        total = 0
        fail: Callable[[str], RegistryError] = lambda message: RegistryError(message, where=where)  # noqa: E731
        for chunk in iter_capped(response, size, fail=fail, what="blob", service="the registry"):
            hasher.update(chunk)
            total += len(chunk)
            yield chunk
        actual = f"{digests.algorithm_of(digest)}:{hasher.hexdigest()}"
        if total != size or actual != digest:
            raise RegistryError(f"registry returned a blob of {total} bytes whose digest is {actual}", where=where)

    def mount_blob(self, target: Reference | Repository, digest: str, source: Repository) -> bool:
        """Ask the registry to mount ``digest`` from ``source`` (same registry) into the repository
        (``POST .../blobs/uploads/?mount=&from=``); False when it will not (then send the bytes)."""
        repo = _as_repo(target)
        where = f"{repo.name}@{digest}"
        if source.registry != repo.registry or source.path == repo.path:
            return False
        try:
            response = self._request(
                "POST", repo, f"/v2/{repo.path}/blobs/uploads/",
                scopes=(Scope.of(repo.path, PULL, PUSH), Scope.of(source.path, PULL)),
                params={"mount": digest, "from": source.path}, content=b"", where=where,
            )  # fmt: skip
        except AuthError:
            return False  # no pull access to the source: the caller sends the bytes
        try:
            if response.status_code == 201:
                self._check_blob_digest(response, digest, where)
                return True
            if response.status_code != 202:
                self._raise_for_status(response, "mount the blob", where)
        finally:
            response.close()
        return False  # the registry opened an upload instead; it expires unused

    def upload_blob_stream(
        self, target: Reference | Repository, digest: str, size: int, body: Iterable[bytes]
    ) -> str:
        """Upload ``size`` bytes from ``body`` as blob ``digest`` (POST, then one streaming PUT); ``body``
        must be iterable again for a retried PUT (a fresh read of the source), not a one-shot generator."""
        repo = _as_repo(target)
        where = f"{repo.name}@{digest}"
        start = self._request(
            "POST", repo, f"/v2/{repo.path}/blobs/uploads/", scopes=(Scope.of(repo.path, PULL, PUSH),),
            content=b"", where=where,
        )  # fmt: skip
        try:
            if start.status_code != 202:
                self._raise_for_status(start, "start the blob upload", where)
        finally:
            start.close()
        location = start.headers.get("Location")
        if not location:
            raise RegistryError("registry started an upload but sent no Location", where=where)
        upload_url = start.url.join(location).copy_merge_params({"digest": digest})
        response = self._request(
            "PUT", repo, str(upload_url), scopes=(Scope.of(repo.path, PULL, PUSH),),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            content=body, where=where, size=size,
        )  # fmt: skip
        try:
            if response.status_code in (201, 204):
                self._check_blob_digest(response, digest, where)
                return digest
            body_text = read_prefix(response, _ERROR_BODY_LIMIT)
        finally:
            response.close()
        lost = response.status_code == 404 and "BLOB_UPLOAD_UNKNOWN" in _error_codes(body_text)
        if lost and self.blob_exists(repo, digest):
            return digest
        self._raise_for_status(response, "upload the blob", where, body=body_text)

    # --- referrers (OCI 1.1) ------------------------------------------------------------------------

    def get_referrers(
        self, target: Reference | Repository, digest: str, artifact_type: str | None = None
    ) -> Manifest | None:
        """The referrers API's image index for ``digest`` (pages merged), or None without that API.

        As GGCR decides it: 404, 400, 405 or 406 — or a 200 that is not an OCI image index — means the
        registry has no referrers API (the caller then reads the fallback tag ``sha256-<hex>``).
        ``artifact_type`` is sent as the ``artifactType`` filter; registries may ignore it.
        """
        repo = _as_repo(target)
        where = f"{repo.name} referrers of {digest}"
        digests.validate(digest, where=where)
        if repo.registry in self._no_referrers_api:  # asked once per registry: a request per image saved
            return None
        if repo.registry not in self._referrers_api:
            with self._referrers_probe:  # sixteen threads at once would each find out for themselves
                if repo.registry in self._no_referrers_api:
                    return None
                return self._get_referrers(repo, digest, artifact_type)
        return self._get_referrers(repo, digest, artifact_type)

    def _get_referrers(self, repo: Repository, digest: str, artifact_type: str | None) -> Manifest | None:
        where = f"{repo.name} referrers of {digest}"
        url: str = f"/v2/{repo.path}/referrers/{digest}"
        params: dict[str, str] | None = {"artifactType": artifact_type} if artifact_type else None
        pages: list[bytes] = []
        for _ in range(100):
            response = self._request(
                "GET", repo, url, scopes=(Scope.of(repo.path, PULL),), params=params, where=where,
                headers={"Accept": mediatypes.OCI_INDEX},
            )  # fmt: skip
            try:
                if not pages and (
                    response.status_code in _NO_REFERRERS_API
                    or (response.status_code == 200 and _media_type(response) != mediatypes.OCI_INDEX)
                ):
                    self._no_referrers_api.add(repo.registry)
                    return None
                if response.status_code != 200:
                    self._raise_for_status(response, "GET the referrers", where)
                pages.append(self._read_limited(response, mediatypes.MAX_MANIFEST_BYTES, where, manifest=True))
            finally:
                response.close()
            link = response.links.get("next", {}).get("url")
            if not link:
                break
            url, params = str(response.url.join(link)), None
        else:
            raise RegistryError("registry's referrers list does not end", where=where)
        data = pages[0] if len(pages) == 1 else _merge_index_pages(pages, where)
        self._referrers_api.add(repo.registry)
        return Manifest(data, mediatypes.OCI_INDEX, digests.compute(data))

    # --- tags -------------------------------------------------------------------------------------

    def list_tags(self, target: Reference | Repository) -> list[str]:
        """Every tag of the repository ([] if the repository does not exist), following pagination."""
        repo = _as_repo(target)
        where = repo.name
        tags: list[str] = []
        url: str = f"/v2/{repo.path}/tags/list"
        params: dict[str, str] | None = {"n": "1000"}
        for _ in range(1000):
            response = self._request("GET", repo, url, scopes=(Scope.of(repo.path, PULL),), params=params, where=where)
            try:
                if response.status_code == 404:
                    return tags
                if response.status_code != 200:
                    self._raise_for_status(response, "list the tags", where)
                body = read_capped(
                    response, MAX_TAG_LIST_BYTES, fail=lambda m: RegistryError(m, where=where), what="tag list",
                    service="the registry",
                )  # fmt: skip
            finally:
                response.close()
            try:
                page = jsonbounded.loads(body, source=where, what="registry's tag list", max_bytes=MAX_TAG_LIST_BYTES)
            except ValueError:
                raise RegistryError("registry's tag list is not JSON", where=where) from None
            page_tags = page.get("tags") if isinstance(page, dict) else None
            if isinstance(page_tags, list):
                tags.extend(t for t in page_tags if isinstance(t, str))
            link = response.links.get("next", {}).get("url")
            if not link:
                return tags
            url, params = str(response.url.join(link)), None
        raise RegistryError("registry's tag list does not end", where=where)

    # --- internals: endpoints and auth ------------------------------------------------------------

    def _schemes(self, repo: Repository) -> tuple[str, ...]:
        if self.options.allow_http or is_loopback_host(repo.registry):
            return ("https", "http")
        return ("https",)

    def _endpoint(self, repo: Repository, where: str) -> _Endpoint:
        endpoint = self._endpoints.get(repo.registry)
        if endpoint is not None:
            return endpoint
        with self._ping_locks_guard:
            lock = self._ping_locks.setdefault(repo.registry, threading.Lock())
        with lock:  # one ping per registry, however many threads start at once; the others wait for it
            endpoint = self._endpoints.get(repo.registry)
            if endpoint is None:
                endpoint = self._ping(repo, where)
                self._endpoints[repo.registry] = endpoint
        return endpoint

    def _ping(self, repo: Repository, where: str) -> _Endpoint:
        """``GET /v2/`` (https first, then http where allowed) to learn the base URL and the challenge."""
        host = repo.endpoint_host

        def attempt() -> _Endpoint:
            reason = ""
            for scheme in self._schemes(repo):
                base = f"{scheme}://{host}"
                url = f"{base}/v2/"
                try:
                    response = send(self._http, self._http.build_request("GET", url))
                    read_prefix(response, _ERROR_BODY_LIMIT)  # the body tells nothing; bounded, then closed
                except httpx.TransportError as exc:
                    if is_cert_error(exc):
                        raise RegistryError(
                            f"the TLS certificate of {url} is not trusted",
                            where=where,
                            hint="pass the CA that issued it with --registry-cacert PEM",
                        ) from None
                    reason = f"{_describe_transport_error(exc)} at {url}"
                    continue
                status = response.status_code
                if status in (200, 401):
                    challenges = parse_www_authenticate(response.headers.get_list("WWW-Authenticate"))
                    return _Endpoint(base, _pick_challenge(challenges) if status == 401 else None)
                if status in (408, 429) or (status >= 500 and status not in (501, 505)):
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    raise Retryable(f"registry at {url} answered {status}", retry_after)
                if status == 404:
                    raise RegistryError(f"not an OCI registry: GET {url} answered 404", where=where)
                return _Endpoint(base, None)
            raise Retryable(reason)

        return self._retrying(attempt, where)

    def _authorization(
        self, endpoint: _Endpoint, repo: Repository, scopes: tuple[Scope, ...], where: str
    ) -> str | None:
        challenge = endpoint.challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            credential = self.options.credentials.get(repo.registry)
            if credential is None or credential.password is None:
                return None
            return credential.basic_header()
        if challenge.scheme == "bearer":
            token = self._tokens.get(repo.registry, scopes)
            if token is None:
                token = self._fetch_token(repo, challenge, scopes, where)
            return "Bearer " + token.reveal().decode("ascii")  # checked by _fetch_token
        return None

    def _fetch_token(self, repo: Repository, challenge: Challenge, scopes: tuple[Scope, ...], where: str) -> Secret:
        realm = challenge.realm
        if not realm:
            raise RegistryError("registry asks for a bearer token but names no realm", where=where)
        try:
            realm_url = httpx.URL(realm)
        except (httpx.InvalidURL, ValueError):
            raise RegistryError("registry names a token realm that is not a URL", where=where) from None
        if realm_url.scheme not in ("https", "http") or not realm_url.host:
            raise RegistryError("registry names a token realm that is not an HTTP(S) URL", where=where)
        if realm_url.scheme == "http" and not (self.options.allow_http or is_loopback_host(realm_url.host)):
            raise AuthError(
                "registry's token realm is plain HTTP; credentials are not sent there",
                where=scrub_url(realm_url),
                hint="use --allow-http-registry only for a registry you trust on a trusted network",
            )
        realm_where = scrub_url(realm_url)
        credential = self.options.credentials.get(repo.registry)
        realm_host = _host_port(realm_url)
        withheld = credential is not None and not realm_may_receive_credentials(
            repo.registry, repo.endpoint_host, realm_url.scheme, realm_host, self.options.credential_hosts
        )
        if withheld:
            credential = None  # a realm elsewhere is asked anonymously: a registry cannot redirect our password
            self._withheld[repo.registry] = realm_host
        scope_strings = [str(s) for s in scopes]

        def attempt() -> httpx.Response:
            headers: dict[str, str] = {}
            if credential is not None and credential.identity_token is not None:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": credential.identity_token.reveal().decode("utf-8"),
                    "client_id": "release-vector",
                    "scope": " ".join(scope_strings),
                }
                if challenge.service:
                    form["service"] = challenge.service
                request = self._http.build_request("POST", realm_url, data=form)
            else:
                query: list[tuple[str, str | int | float | bool | None]] = []
                if challenge.service:
                    query.append(("service", challenge.service))
                query += [("scope", s) for s in scope_strings]
                if credential is not None and credential.password is not None:
                    headers["Authorization"] = credential.basic_header()
                    if credential.username:
                        query.append(("account", credential.username))
                query.append(("client_id", "release-vector"))
                request = self._http.build_request("GET", realm_url, params=query, headers=headers)
            return self._send_once(request)

        response = self._retrying(attempt, realm_where)
        body = read_capped(
            response,
            MAX_TOKEN_ANSWER_BYTES,
            fail=lambda message: RegistryError(message, where=realm_where),
            what="token server's answer",
            service="the token server",
        )
        status = response.status_code
        if status in (401, 403):
            who = "the credentials" if credential is not None else "anonymous access"
            hint = None if credential is not None else "docker login, or set REGISTRY_USERNAME/REGISTRY_PASSWORD"
            if withheld:
                hint = self._credential_hint(repo)
            raise AuthError(f"token server refused {who} for {repo.name}", where=realm_where, hint=hint)
        if status != 200:
            summary = _error_summary(body)
            raise RegistryError(
                f"token server answered {status}" + (f": {summary}" if summary else ""), where=realm_where
            )
        try:
            answer = jsonbounded.loads(body, source=realm_where, what="token server's answer")
        except (ValueError, UnicodeDecodeError):
            raise RegistryError("token server answered something that is not JSON", where=realm_where) from None
        token = answer.get("token") or answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError("token server answered without a token", where=realm_where)
        if not is_header_token(token):
            raise AuthError(
                "token server answered a token that is not printable ASCII (unusable in a header)", where=realm_where
            )
        expires_in = answer.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else None
        secret = Secret(token)
        self._tokens.put(repo.registry, scopes, secret, lifetime)
        return secret

    # --- internals: sending -----------------------------------------------------------------------

    def _send_once(self, request: httpx.Request, size: int | None = None) -> httpx.Response:
        """One try: a streaming response (under the request's deadline, see :func:`pipeline.http.send`),
        or Retryable for a failure worth repeating."""
        try:
            response = send(self._http, request, size=size)
        except httpx.TransportError as exc:
            if is_cert_error(exc):
                raise RegistryError(
                    "the registry's TLS certificate is not trusted",
                    where=scrub_url(request.url),
                    hint="pass the CA that issued it with --registry-cacert PEM",
                ) from None
            raise Retryable(_describe_transport_error(exc)) from None
        status = response.status_code
        if status in (408, 429) or (status >= 500 and status not in (501, 505)):
            body = read_prefix(response, _ERROR_BODY_LIMIT)
            summary = _error_summary(body)
            raise Retryable(
                f"registry answered {status}" + (f": {summary}" if summary else ""),
                parse_retry_after(response.headers.get("Retry-After")),
            )
        return response

    def _retrying(self, attempt: Callable[[], T], where: str) -> T:
        return retrying(
            attempt,
            self.options.retries,
            who="the registry",
            fail=lambda message: RegistryError(message, where=where),
            sleep=self._sleep,
            delay=self._delay,
        )

    def _delay(self, number: int, retry_after: float | None) -> float:
        return retry_delay(self.options.retries, number, retry_after, self._rng)

    def _request(
        self,
        method: str,
        repo: Repository,
        path_or_url: str,
        *,
        scopes: tuple[Scope, ...],
        where: str,
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        params: Mapping[str, str] | None = None,
        size: int | None = None,
    ) -> httpx.Response:
        """Send with auth, retries, one token refresh on 401, and redirects (GET/HEAD) without credentials."""
        scopes = merge_scopes(scopes)
        endpoint = self._endpoint(repo, where)
        url = httpx.URL(endpoint.base + path_or_url if path_or_url.startswith("/") else path_or_url)
        if params:
            url = url.copy_merge_params(dict(params))
        home = _origin(httpx.URL(endpoint.base))
        refreshed = False
        redirects = 0
        while True:
            request_headers = dict(headers or {})
            if _origin(url) == home:
                authorization = self._authorization(endpoint, repo, scopes, where)
                if authorization is not None:
                    request_headers["Authorization"] = authorization

            def attempt(target: httpx.URL = url, sent: dict[str, str] = request_headers) -> httpx.Response:
                return self._send_once(self._http.build_request(method, target, headers=sent, content=content), size)

            response = self._retrying(attempt, where)
            status = response.status_code
            if status in _REDIRECTS and method in ("GET", "HEAD"):
                location = response.headers.get("Location")
                response.close()
                redirects += 1
                if not location or redirects > MAX_REDIRECTS:
                    raise RegistryError(f"registry redirected {redirects} times, or nowhere", where=where)
                url = url.join(location)
                continue
            if status == 401 and _origin(url) == home:
                body = read_prefix(response, _ERROR_BODY_LIMIT) if method != "HEAD" else b""
                response.close()
                challenges = parse_www_authenticate(response.headers.get_list("WWW-Authenticate"))
                challenge = _pick_challenge(challenges)
                if not refreshed and challenge is not None and challenge.scheme == "bearer":
                    refreshed = True
                    self._tokens.invalidate(repo.registry, scopes)
                    if endpoint.challenge != challenge:
                        endpoint = _Endpoint(endpoint.base, challenge)
                        self._endpoints[repo.registry] = endpoint
                    continue
                if not refreshed and challenge is not None and endpoint.challenge is None:
                    refreshed = True  # the ping promised anonymous access; this repository wants Basic
                    endpoint = _Endpoint(endpoint.base, challenge)
                    self._endpoints[repo.registry] = endpoint
                    continue
                raise self._auth_error(repo, challenge, body, where)
            if status == 403:
                body = read_prefix(response, _ERROR_BODY_LIMIT) if method != "HEAD" else b""
                response.close()
                summary = _error_summary(body)
                raise AuthError(
                    "access denied by the registry (403)" + (f": {summary}" if summary else ""),
                    where=where,
                    hint=self._credential_hint(repo),
                )
            return response

    def _credential_hint(self, repo: Repository) -> str:
        realm_host = self._withheld.get(repo.registry)
        if realm_host is not None:
            return (
                f"the registry's token realm {realm_host} is another host than {repo.registry}: credentials go "
                f"there only if you trust it (--registry-credentials-for {realm_host})"
            )
        if self.options.credentials.get(repo.registry) is None:
            return f"no credentials for {repo.registry}: docker login, or REGISTRY_USERNAME/REGISTRY_PASSWORD"
        return f"check that the credentials for {repo.registry} grant this access"

    def _auth_error(self, repo: Repository, challenge: Challenge | None, body: bytes, where: str) -> AuthError:
        summary = _error_summary(body)
        credential = self.options.credentials.get(repo.registry)
        if challenge is not None and challenge.error == "insufficient_scope":
            message = "not authorized for this repository (insufficient scope)"
        elif credential is None:
            message = "authentication required"
        elif challenge is not None and challenge.scheme not in ("basic", "bearer"):
            message = f"registry asks for unsupported authentication {challenge.scheme!r}"
        else:
            message = "the registry refused the credentials (401)"
        if summary:
            message += f": {summary}"
        return AuthError(message, where=where, hint=self._credential_hint(repo))

    # --- internals: responses ---------------------------------------------------------------------

    def _raise_for_status(
        self,
        response: httpx.Response,
        action: str,
        where: str,
        *,
        not_found: str | None = None,
        body: bytes | None = None,
    ) -> NoReturn:
        if body is None:
            body = read_prefix(response, _ERROR_BODY_LIMIT) if response.request.method != "HEAD" else b""
        summary = _error_summary(body)
        codes = _error_codes(body)
        if response.status_code == 404 and not_found is not None:
            message = "repository not found" if "NAME_UNKNOWN" in codes else not_found
            if summary:
                message += f": {summary}"
            raise NotFoundError(message, where=where)
        message = f"registry answered {response.status_code} to {action}"
        if summary:
            message += f": {summary}"
        error = RegistryError(message, where=where)
        error.codes = frozenset(codes)
        raise error

    def _read_limited(self, response: httpx.Response, limit: int, where: str, *, manifest: bool) -> bytes:
        def fail(message: str) -> RegistryError:
            return RegistryError(message, where=where)

        return read_capped(response, limit, fail=fail, what="manifest" if manifest else "blob", service="the registry")

    @staticmethod
    def _too_large_message(
        size: int, limit: int = mediatypes.MAX_MANIFEST_BYTES, manifest: bool = True, *, at_least: bool = False
    ) -> str:
        what = "manifest" if manifest else "blob"
        amount = f"over {limit} bytes" if at_least else f"{size} bytes"
        return f"{what} too large ({amount}; the limit is {limit} bytes)"

    def _manifest_media_type(self, response: httpx.Response, data: bytes, accepted: tuple[str, ...], where: str) -> str:
        media_type = _media_type(response)
        if media_type in _GENERIC_CONTENT_TYPES:
            try:
                declared = jsonbounded.loads(data, source=where, what="manifest").get("mediaType")
            except (ValueError, AttributeError, UnicodeDecodeError):
                declared = None
            if isinstance(declared, str) and declared:
                media_type = declared
        if media_type not in accepted:
            shown = media_type or "(none)"
            raise RegistryError(f"unexpected manifest media type {shown!r}", where=where)
        return media_type

    @staticmethod
    def _check_blob_digest(response: httpx.Response, digest: str, where: str) -> None:
        reported = response.headers.get("Docker-Content-Digest")
        if reported and reported != digest:
            raise RegistryError(f"registry stored the blob as {reported}, not as {digest}", where=where)


def _merge_index_pages(pages: list[bytes], where: str) -> bytes:
    """The ``manifests`` of every page of a paginated referrers answer, in one index (as GGCR merges them)."""
    merged: dict[str, object] | None = None
    entries: list[object] = []
    for page in pages:
        try:
            document = jsonbounded.loads(page, source=where, what="a page of the referrers list")
        except (ValueError, UnicodeDecodeError):
            document = None
        if not isinstance(document, dict) or not isinstance(document.get("manifests"), list):
            raise RegistryError("a page of the referrers list is not an image index", where=where)
        merged = merged if merged is not None else document
        entries.extend(document["manifests"])
    assert merged is not None
    return json.dumps({**merged, "manifests": entries}, separators=(",", ":")).encode()


def _host_port(url: httpx.URL) -> str:
    """``host`` or ``host:port`` (a port only if not the scheme's default), as registries are named."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return host if url.port is None else f"{host}:{url.port}"


def _pick_challenge(challenges: tuple[Challenge, ...]) -> Challenge | None:
    """Bearer (with a realm) over Basic over anything else."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme and (scheme != "bearer" or challenge.realm):
                return challenge
    return challenges[0] if challenges else None
