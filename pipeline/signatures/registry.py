"""The registry operations image signatures need (``RegistryClient`` provides them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pipeline.errors import NotFoundError
from pipeline.http import parallel_map
from pipeline.oci.client import Descriptor, Manifest
from pipeline.oci.reference import Reference, Repository


class SignatureRegistry(Protocol):
    def head_manifest(self, ref: Reference) -> Descriptor | None: ...

    def get_manifest(self, ref: Reference) -> Manifest: ...

    def get_blob(self, target: Reference | Repository, digest: str) -> bytes: ...

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


@runtime_checkable
class ReferrersApi(Protocol):
    """A registry client that can ask for the referrers API (None: the registry has none)."""

    def get_referrers(
        self, target: Reference | Repository, digest: str, artifact_type: str | None = None
    ) -> Manifest | None: ...


@runtime_checkable
class KnownManifests(Protocol):
    """A registry client that remembers the descriptors of manifests it has read (by digest), so a
    referrer's ``subject`` needs no HEAD of an image the assemble has just resolved."""

    def known_manifest(self, ref: Reference) -> Descriptor | None: ...


def manifest_if_there(registry: SignatureRegistry, ref: Reference) -> bytes | None:
    """The manifest's bytes, or None on a 404 (one GET: a HEAD first would cost a request per image)."""
    try:
        return registry.get_manifest(ref).data
    except NotFoundError:
        return None


def upload_blobs(registry: SignatureRegistry, repo: Repository, blobs: Sequence[bytes]) -> None:
    """Upload a signature's blobs (its payload and its config) side by side, as cosign's registry library
    does: each upload is two round trips (POST, then PUT), so this halves the time before the manifest
    can be written. Every upload finishes before the first error, if any, is raised."""
    def upload(data: bytes) -> str:
        return registry.upload_blob(repo, data, check_exists=False)

    parallel_map(upload, blobs, concurrency=max(1, len(blobs)))
