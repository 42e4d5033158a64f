"""The two sides of a copy. A :class:`Source` is read (a registry through ``--registry-mirror`` rules, an
OCI layout); a :class:`Sink` is written (a registry, an OCI layout). Both speak in repositories and
digests; the engine (:mod:`pipeline.mirror.copy`) decides what to read and write, in which order."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from pipeline.errors import NotFoundError
from pipeline.mirror.manifests import Ref, children
from pipeline.oci.client import Manifest, RegistryClient
from pipeline.oci.reference import Repository


class Source(Protocol):
    def manifest(self, repo: Repository, identifier: str) -> Manifest | None:
        """The manifest at a tag or digest, None when there is none."""

    def blob(self, repo: Repository, digest: str, size: int) -> Iterable[bytes]:
        """The blob's bytes, checked as they stream; iterable again (a retried upload reads it anew)."""

    def tags(self, repo: Repository) -> tuple[str, ...]: ...

    def referrers(self, repo: Repository, digest: str) -> tuple[Ref, ...] | None:
        """The referrers API's entries for ``digest``; None without that API."""


class Sink(Protocol):
    def manifest(self, repo: Repository, identifier: str) -> Manifest | None: ...

    def manifest_digest(self, repo: Repository, identifier: str) -> str | None:
        """The digest the tag (or digest) names at the sink, None when absent (a HEAD)."""

    def has_blob(self, repo: Repository, digest: str) -> bool: ...

    def mount_blob(self, repo: Repository, digest: str, source: Repository) -> bool: ...

    def put_blob(self, repo: Repository, digest: str, size: int, body: Iterable[bytes]) -> None: ...

    def put_manifest(self, repo: Repository, identifier: str, data: bytes, media_type: str) -> None: ...

    def has_referrers_api(self, repo: Repository, digest: str) -> bool: ...


class _BlobStream:
    """A re-iterable blob body: every iteration is a fresh GET (a retried PUT must not reuse a spent one)."""

    def __init__(self, client: RegistryClient, repo: Repository, digest: str, size: int) -> None:
        self._client, self._repo, self._digest, self._size = client, repo, digest, size

    def __iter__(self) -> Iterator[bytes]:
        return self._client.iter_blob(self._repo, self._digest, size=self._size)


class RegistryEnd:
    """A registry as source (names read where ``read_at`` says: the ``--registry-mirror`` rules) or sink."""

    def __init__(self, client: RegistryClient, read_at: Callable[[Repository], Repository] = lambda r: r) -> None:
        self.client = client
        self._read_at = read_at
        self._tags: dict[Repository, tuple[str, ...]] = {}
        self._apis: dict[str, bool] = {}
        self._lock = threading.Lock()

    def at(self, repo: Repository) -> Repository:
        return self._read_at(repo)

    def manifest(self, repo: Repository, identifier: str) -> Manifest | None:
        where = self.at(repo)
        ref = where.digest(identifier) if ":" in identifier else where.tag(identifier)
        try:
            return self.client.get_manifest(ref)
        except NotFoundError:
            return None

    def manifest_digest(self, repo: Repository, identifier: str) -> str | None:
        where = self.at(repo)
        ref = where.digest(identifier) if ":" in identifier else where.tag(identifier)
        descriptor = self.client.head_manifest(ref)
        return None if descriptor is None else descriptor.digest

    def blob(self, repo: Repository, digest: str, size: int) -> Iterable[bytes]:
        return _BlobStream(self.client, self.at(repo), digest, size)

    def tags(self, repo: Repository) -> tuple[str, ...]:
        with self._lock:
            known = self._tags.get(repo)
        if known is None:
            known = tuple(self.client.list_tags(self.at(repo)))
            with self._lock:
                self._tags[repo] = known
        return known

    def referrers(self, repo: Repository, digest: str) -> tuple[Ref, ...] | None:
        index = self.client.get_referrers(self.at(repo), digest)
        if index is None:
            return None
        return children(index.data, f"{repo.name} referrers of {digest}")

    def has_blob(self, repo: Repository, digest: str) -> bool:
        return self.client.blob_exists(self.at(repo), digest)

    def mount_blob(self, repo: Repository, digest: str, source: Repository) -> bool:
        return self.client.mount_blob(self.at(repo), digest, self.at(source))

    def put_blob(self, repo: Repository, digest: str, size: int, body: Iterable[bytes]) -> None:
        self.client.upload_blob_stream(self.at(repo), digest, size, body)

    def put_manifest(self, repo: Repository, identifier: str, data: bytes, media_type: str) -> None:
        self.client.put_manifest(self.at(repo), identifier, data, media_type)

    def has_referrers_api(self, repo: Repository, digest: str) -> bool:
        """Whether the sink's registry answers the referrers API (asked once per registry)."""
        registry = self.at(repo).registry
        with self._lock:
            known = self._apis.get(registry)
        if known is None:
            known = self.client.get_referrers(self.at(repo), digest) is not None
            with self._lock:
                self._apis[registry] = known
        return known
