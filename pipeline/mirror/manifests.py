"""What a manifest points at, read from its exact bytes (pure): an index's manifests, an image's blobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline import jsonbounded
from pipeline.errors import InvalidInputError
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes


@dataclass(frozen=True)
class Ref:
    """A descriptor: media type, digest, size (and the artifact type and annotations an index lists)."""

    media_type: str
    digest: str
    size: int
    artifact_type: str = ""
    annotations: tuple[tuple[str, str], ...] = ()

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)


def _document(data: bytes, where: str) -> dict[str, Any]:
    try:
        document = jsonbounded.loads(data, source=where, what="manifest")
    except (ValueError, UnicodeDecodeError):
        document = None
    if not isinstance(document, dict):
        raise InvalidInputError("manifest is not a JSON object", where=where)
    return document


def _descriptor(entry: object, where: str) -> Ref:
    if not isinstance(entry, dict):
        raise InvalidInputError("manifest has a descriptor that is not an object", where=where)
    digest, size, media_type = entry.get("digest"), entry.get("size"), entry.get("mediaType", "")
    if not isinstance(digest, str) or not digests.is_valid(digest):
        raise InvalidInputError(f"manifest names an invalid digest {digest!r}", where=where)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInputError(f"manifest gives {digest} no valid size", where=where)
    annotations = entry.get("annotations")
    pairs = tuple(sorted((str(k), str(v)) for k, v in annotations.items())) if isinstance(annotations, dict) else ()
    artifact_type = entry.get("artifactType")
    return Ref(str(media_type), digest, size, artifact_type if isinstance(artifact_type, str) else "", pairs)


def is_index(media_type: str, data: bytes) -> bool:
    if media_type in mediatypes.INDEXES:
        return True
    return media_type not in mediatypes.IMAGE_MANIFESTS and "manifests" in _document(data, "manifest")


def children(data: bytes, where: str) -> tuple[Ref, ...]:
    """The manifests an index lists."""
    listed = _document(data, where).get("manifests", [])
    if not isinstance(listed, list):
        raise InvalidInputError("index has no list of manifests", where=where)
    return tuple(_descriptor(entry, where) for entry in listed)


def blobs(data: bytes, where: str) -> tuple[Ref, ...]:
    """An image manifest's config and layers (non-distributable layers, kept elsewhere, left out)."""
    document = _document(data, where)
    found: list[Ref] = []
    if "config" in document:
        found.append(_descriptor(document["config"], where))
    layers = document.get("layers", [])
    if not isinstance(layers, list):
        raise InvalidInputError("manifest's layers are not a list", where=where)
    for entry in layers:
        ref = _descriptor(entry, where)
        if "nondistributable" in ref.media_type or "foreign" in ref.media_type:
            continue
        found.append(ref)
    return tuple(dict.fromkeys(found))
