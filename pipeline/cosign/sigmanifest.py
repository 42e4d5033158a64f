"""cosign's legacy signature image: the ``sha256-<hex>.sig`` manifest (pure, no I/O).

``cosign sign`` (and containers/image, and every policy controller) keeps an image's signatures in
the image's own repository under the tag ``sha256-<hex>.sig``: an OCI image manifest whose layers
are the signed payloads (media type ``application/vnd.dev.cosign.simplesigning.v1+json``), each
with the base64 signature in the ``dev.cosignproject.cosign/signature`` annotation and, optionally,
the Rekor bundle, the Fulcio certificate and its chain in further annotations.

cosign builds it with go-containerregistry (``empty.Image`` with OCI media types, then
``mutate.Append``), which fixes every byte, and this module reproduces them:

* the manifest is Go's compact ``json.Marshal`` of ``{schemaVersion, mediaType, config, layers}``;
  a layer descriptor is ``{mediaType, size, digest, annotations}`` with the annotation keys sorted;
* the config blob is ``{"architecture":"","created":"0001-01-01T00:00:00Z","history":[…],"os":"",
  "rootfs":{"type":"layers","diff_ids":[…]},"config":{}}``: one zero-time history entry and one
  diff_id (the payload's sha256, the layer being uncompressed) per layer, so it changes with the
  layers and holds no clock time (cosign's default; ``--record-creation-timestamp`` is not modelled).

Appending keeps every existing layer descriptor as it was and adds one; a signature already present
is not added again (see ``find_duplicate``). How the ``sign`` command uses this::

    raw = registry.get_manifest(repo, signature_tag(digest))          # bytes, or None on 404
    current = read_signature_manifest(raw, where) if raw else None
    payload = simple_signing_payload(repo_name, digest, annotations)
    if current and find_signed(current.signature_layers, payload, public_key):
        ...                                                          # already signed: plan nothing
    layer = SignatureLayer(payload, base64(key.sign(payload)))
    update = append_signature(current, layer, public_key=public_key)
    if update.manifest is not None:
        for blob in update.blobs: registry.ensure_blob(repo, blob.digest, blob.data)
        registry.put_manifest(repo, signature_tag(digest), update.manifest, update.media_type)
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from pipeline.cosign.keys import PublicKey, verify_signature
from pipeline.cosign.payload import go_sorted, is_digest, load_strict_json, marshal_go_json
from pipeline.errors import ConflictError, InvalidInputError, VerificationError
from pipeline.oci import digest as digests

SIGNATURE_ANNOTATION: Final = "dev.cosignproject.cosign/signature"
BUNDLE_ANNOTATION: Final = "dev.sigstore.cosign/bundle"
CERTIFICATE_ANNOTATION: Final = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION: Final = "dev.sigstore.cosign/chain"
RFC3161_TIMESTAMP_ANNOTATION: Final = "dev.sigstore.cosign/rfc3161timestamp"
KNOWN_ANNOTATIONS: Final = frozenset(
    {SIGNATURE_ANNOTATION, BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION}
)

SIMPLE_SIGNING_MEDIA_TYPE: Final = "application/vnd.dev.cosign.simplesigning.v1+json"
OCI_MANIFEST_MEDIA_TYPE: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG_MEDIA_TYPE: Final = "application/vnd.oci.image.config.v1+json"
# cosign writes these instead with COSIGN_DOCKER_MEDIA_TYPES=1; we keep them when we append to such a manifest.
DOCKER_MANIFEST_MEDIA_TYPE: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG_MEDIA_TYPE: Final = "application/vnd.docker.container.image.v1+json"
MANIFEST_MEDIA_TYPES: Final = frozenset({OCI_MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE})

SIGNATURE_TAG_SUFFIX: Final = "sig"
# cosign refuses to read a signature image with more layers than this (oci.NewMaxLayersExceeded).
MAX_LAYERS: Final = 1000
# go-containerregistry's zero v1.Time, which cosign leaves in "created" unless asked to record the time.
ZERO_TIME: Final = "0001-01-01T00:00:00Z"
DIR_SIGNATURE_PREFIX: Final = b"\x00sigstore-json\n"



def signature_tag(manifest_digest: str) -> str:
    """``sha256:<hex>`` → ``sha256-<hex>.sig``, the tag cosign stores the image's signatures under."""
    if not is_digest(manifest_digest):
        raise InvalidInputError(f"{manifest_digest!r} is not a manifest digest (sha256:<64 lowercase hex>)")
    algorithm, hex_part = manifest_digest.split(":", 1)
    return f"{algorithm}-{hex_part}.{SIGNATURE_TAG_SUFFIX}"


@dataclass(frozen=True)
class Blob:
    """Bytes to upload to the repository (content-addressed) before the manifest that names them."""

    media_type: str
    data: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return digests.compute(self.data)

    @property
    def size(self) -> int:
        return len(self.data)


def _decode_b64_signature(value: str, where: str) -> bytes:
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError("the signature annotation is not valid base64", where=where) from None
    if not decoded:
        raise InvalidInputError("the signature annotation is empty", where=where)
    return decoded


# --- one signature (a layer) ----------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureLayer:
    """One signature: the payload bytes (the layer blob) and what goes into the layer's annotations."""

    payload: bytes = field(repr=False)
    signature_b64: str
    bundle: str | None = None
    certificate: str | None = None
    chain: str | None = None
    extra_annotations: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        keys = [key for key, _value in self.extra_annotations]
        clash = sorted(KNOWN_ANNOTATIONS.intersection(keys))
        if clash:
            raise InvalidInputError(f"extra annotation {clash[0]!r} is a field of the signature", where=self.digest)
        if len(set(keys)) != len(keys):
            raise InvalidInputError("the extra annotations repeat a key", where=self.digest)

    @property
    def digest(self) -> str:
        return digests.compute(self.payload)

    @property
    def size(self) -> int:
        return len(self.payload)

    @property
    def media_type(self) -> str:
        return SIMPLE_SIGNING_MEDIA_TYPE

    @property
    def signature(self) -> bytes:
        """The decoded signature (InvalidInputError if the annotation is not base64)."""
        return _decode_b64_signature(self.signature_b64, self.digest)

    def annotations(self) -> dict[str, str]:
        """The layer annotations, keys in Go's map order (sorted), as cosign writes them."""
        result = dict(self.extra_annotations)
        result[SIGNATURE_ANNOTATION] = self.signature_b64
        for key, value in (
            (BUNDLE_ANNOTATION, self.bundle),
            (CERTIFICATE_ANNOTATION, self.certificate),
            (CHAIN_ANNOTATION, self.chain),
        ):
            if value is not None:
                result[key] = value
        return go_sorted(result)

    def descriptor(self) -> dict[str, object]:
        """The manifest's layer descriptor, fields in go-containerregistry's order."""
        return {
            "mediaType": self.media_type,
            "size": self.size,
            "digest": self.digest,
            "annotations": self.annotations(),
        }

    def blob(self) -> Blob:
        return Blob(self.media_type, self.payload)


def signature_layer_from_annotations(payload: bytes, annotations: Mapping[str, str], where: str) -> SignatureLayer:
    """A SignatureLayer from a payload and its layer annotations (the signature one is required)."""
    signature = annotations.get(SIGNATURE_ANNOTATION)
    if signature is None:
        raise InvalidInputError(f"the signature layer lacks the {SIGNATURE_ANNOTATION} annotation", where=where)
    extra = tuple((k, v) for k, v in go_sorted(annotations).items() if k not in KNOWN_ANNOTATIONS)
    return SignatureLayer(
        payload=payload,
        signature_b64=signature,
        bundle=annotations.get(BUNDLE_ANNOTATION),
        certificate=annotations.get(CERTIFICATE_ANNOTATION),
        chain=annotations.get(CHAIN_ANNOTATION),
        extra_annotations=extra,
    )


# --- reading a .sig manifest ------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerRef:
    """A layer descriptor as found in a manifest. ``descriptor`` is the JSON object as it was, in its
    key order, so that rewriting the manifest re-emits it unchanged."""

    index: int
    media_type: str
    size: int
    digest: str
    annotations: Mapping[str, str] = field(hash=False)
    descriptor: Mapping[str, object] = field(repr=False, compare=False)

    @property
    def is_signature(self) -> bool:
        return self.media_type == SIMPLE_SIGNING_MEDIA_TYPE

    @property
    def signature_b64(self) -> str | None:
        return self.annotations.get(SIGNATURE_ANNOTATION)

    def to_signature_layer(self, payload: bytes, where: str) -> SignatureLayer:
        """This layer with its fetched blob; VerificationError if the blob is not the one named."""
        if digests.compute(payload) != self.digest or len(payload) != self.size:
            raise VerificationError(f"the blob of signature layer {self.index} does not match its digest", where=where)
        return signature_layer_from_annotations(payload, self.annotations, where)


@dataclass(frozen=True)
class SignatureManifest:
    """A parsed ``.sig`` manifest: every layer in order, the signature ones, and the others (skipped)."""

    media_type: str | None
    config: Mapping[str, object] = field(hash=False)
    layers: tuple[LayerRef, ...]
    annotations: Mapping[str, str] | None = field(default=None, hash=False)
    artifact_type: str | None = None

    @property
    def signature_layers(self) -> tuple[LayerRef, ...]:
        return tuple(layer for layer in self.layers if layer.is_signature)

    @property
    def skipped_layers(self) -> tuple[LayerRef, ...]:
        """Layers of other media types: kept when appending, ignored as signatures."""
        return tuple(layer for layer in self.layers if not layer.is_signature)

    @property
    def uses_docker_media_types(self) -> bool:
        return self.media_type == DOCKER_MANIFEST_MEDIA_TYPE


def _string_map(value: object, what: str, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidInputError(f"the {what} are not a JSON object of strings", where=where)
    return value


def _descriptor(value: object, what: str, where: str) -> tuple[str, int, str, dict[str, object]]:
    if not isinstance(value, dict):
        raise InvalidInputError(f"the {what} is not a JSON object", where=where)
    media_type, size, digest = value.get("mediaType"), value.get("size"), value.get("digest")
    if not isinstance(media_type, str) or not media_type:
        raise InvalidInputError(f"the {what} has no mediaType", where=where)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInputError(f"the {what} has no valid size", where=where)
    if not isinstance(digest, str) or not is_digest(digest):
        raise InvalidInputError(f"the {what} has no valid digest", where=where)
    return media_type, size, digest, value


def read_signature_manifest(data: bytes, where: str) -> SignatureManifest:
    """Parse a ``.sig`` manifest (OCI, or Docker schema 2 as cosign writes with docker media types).

    Refused: non-JSON, duplicate keys, a schemaVersion other than 2, another manifest media type (an
    index, say), malformed descriptors, and a simplesigning layer without the signature annotation.
    Layers of other media types are kept in ``layers`` and listed in ``skipped_layers``.
    """
    document = load_strict_json(data, "signature manifest", where)
    if not isinstance(document, dict):
        raise InvalidInputError("the signature manifest is not a JSON object", where=where)
    if document.get("schemaVersion") != 2 or isinstance(document.get("schemaVersion"), bool):
        raise InvalidInputError("the signature manifest's schemaVersion is not 2", where=where)
    media_type = document.get("mediaType")
    if media_type is not None and media_type not in MANIFEST_MEDIA_TYPES:
        raise InvalidInputError(
            f"the signature manifest has media type {media_type!r}, not an image manifest", where=where
        )
    _descriptor(document.get("config"), "config descriptor", where)
    raw_layers = document.get("layers")
    if not isinstance(raw_layers, list):
        raise InvalidInputError("the signature manifest has no layers list", where=where)
    layers: list[LayerRef] = []
    for index, raw in enumerate(raw_layers):
        what = f"layer {index}"
        layer_type, size, digest, descriptor = _descriptor(raw, what, where)
        annotations = _string_map(descriptor.get("annotations", {}), f"{what} annotations", where)
        if layer_type == SIMPLE_SIGNING_MEDIA_TYPE and SIGNATURE_ANNOTATION not in annotations:
            raise InvalidInputError(f"signature {what} lacks the {SIGNATURE_ANNOTATION} annotation", where=where)
        layers.append(
            LayerRef(index, layer_type, size, digest, MappingProxyType(annotations), MappingProxyType(descriptor))
        )
    manifest_annotations = document.get("annotations")
    artifact_type = document.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise InvalidInputError("the signature manifest's artifactType is not a string", where=where)
    config = document["config"]
    assert isinstance(config, dict)
    return SignatureManifest(
        media_type=media_type,
        config=MappingProxyType(config),
        layers=tuple(layers),
        annotations=(
            MappingProxyType(_string_map(manifest_annotations, "manifest annotations", where))
            if manifest_annotations is not None
            else None
        ),
        artifact_type=artifact_type,
    )


def parse_signature_manifest(data: bytes, where: str) -> list[LayerRef]:
    """The signature layers of a ``.sig`` manifest (other layers are skipped; see read_signature_manifest)."""
    return list(read_signature_manifest(data, where).signature_layers)


# --- writing ---------------------------------------------------------------------------------------


def _layer_descriptor(layer: LayerRef | SignatureLayer) -> Mapping[str, object]:
    return layer.descriptor if isinstance(layer, LayerRef) else layer.descriptor()


def signature_config(layers: Sequence[LayerRef | SignatureLayer]) -> bytes:
    """The config blob go-containerregistry writes for these layers (cosign's, without a timestamp).

    A layer's diff_id is its digest: signature payloads are stored uncompressed.
    """
    config = {
        "architecture": "",
        "created": ZERO_TIME,
        **({"history": [{"created": ZERO_TIME} for _ in layers]} if layers else {}),
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers] if layers else None},
        "config": {},
    }
    return marshal_go_json(config)


def build_signature_manifest(
    layers: Sequence[LayerRef | SignatureLayer],
    config: bytes,
    *,
    docker_media_types: bool = False,
    annotations: Mapping[str, str] | None = None,
    artifact_type: str | None = None,
) -> bytes:
    """The manifest bytes: Go's compact JSON, existing descriptors re-emitted as they were."""
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_MEDIA_TYPE if docker_media_types else OCI_MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": DOCKER_CONFIG_MEDIA_TYPE if docker_media_types else OCI_CONFIG_MEDIA_TYPE,
            "size": len(config),
            "digest": digests.compute(config),
        },
        "layers": [dict(_layer_descriptor(layer)) for layer in layers],
    }
    if annotations:
        manifest["annotations"] = go_sorted(annotations)
    if artifact_type:
        manifest["artifactType"] = artifact_type
    return marshal_go_json(manifest)


# --- finding a signature that is already there ------------------------------------------------------


def _verifies(layer: LayerRef, payload: bytes, public_key: PublicKey) -> bool:
    signature = layer.signature_b64
    if not signature:
        return False
    try:
        verify_signature(public_key, payload, _decode_b64_signature(signature, layer.digest), where=layer.digest)
    except (InvalidInputError, VerificationError):
        return False
    return True


def find_signed(
    layers: Sequence[LayerRef],
    payload: bytes,
    public_key: PublicKey,
    *,
    annotations: Mapping[str, str] | None = None,
    accept: Callable[[LayerRef], bool] | None = None,
) -> LayerRef | None:
    """The first layer holding ``payload`` with a signature by ``public_key`` (cosign's dupe rule).

    ECDSA signatures are randomised, so signing the same payload twice never gives the same layer;
    cosign therefore treats a layer as a duplicate when it has the payload's digest and media type,
    carries every (non-signature) annotation the new layer would, and its signature verifies with the
    signer's key. Use it before signing to plan nothing for an image that is already signed.
    ``accept`` adds a requirement on the layer (a transparency-log bundle that verifies, say).
    """
    digest = digests.compute(payload)
    wanted = {k: v for k, v in (annotations or {}).items() if k != SIGNATURE_ANNOTATION}
    for layer in layers:
        if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE or layer.digest != digest:
            continue
        if any(layer.annotations.get(k) != v for k, v in wanted.items()):
            continue
        if _verifies(layer, payload, public_key) and (accept is None or accept(layer)):
            return layer
    return None


def find_duplicate(
    layers: Sequence[LayerRef], new_layer: SignatureLayer, *, public_key: PublicKey | None = None
) -> LayerRef | None:
    """An existing layer that makes ``new_layer`` redundant, or None.

    Always: same media type, same payload digest and exactly the same annotations. With
    ``public_key`` (the signer's), also cosign's rule: see ``find_signed``.
    """
    wanted = new_layer.annotations()
    for layer in layers:
        if (
            layer.media_type == new_layer.media_type
            and layer.digest == new_layer.digest
            and (dict(layer.annotations) == wanted)
        ):
            return layer
    if public_key is not None:
        return find_signed(layers, new_layer.payload, public_key, annotations=wanted)
    return None


@dataclass(frozen=True)
class SignatureManifestUpdate:
    """What to write for a new signature. ``manifest`` is None when there is nothing to write.

    Otherwise upload ``blobs`` (the new payload and the new config; skip those the repository
    already has) and then PUT ``manifest`` with ``media_type`` at the ``.sig`` tag.
    """

    manifest: bytes | None = field(repr=False)
    media_type: str
    blobs: tuple[Blob, ...]
    duplicate_of: LayerRef | None = None

    @property
    def needs_write(self) -> bool:
        return self.manifest is not None

    @property
    def manifest_digest(self) -> str | None:
        return digests.compute(self.manifest) if self.manifest is not None else None


def append_signature(
    existing: SignatureManifest | None, new_layer: SignatureLayer, *, public_key: PublicKey | None = None
) -> SignatureManifestUpdate:
    """Add ``new_layer`` to the ``.sig`` manifest ``existing`` (None: there is none yet).

    Every existing layer is kept exactly, other media types included, in order; the new one goes last.
    If the signature is already there (``find_duplicate``), nothing is written. Refuses (ConflictError)
    to grow past cosign's 1000-layer limit, which would make the image unverifiable for cosign.
    """
    docker = existing.uses_docker_media_types if existing is not None else False
    media_type = DOCKER_MANIFEST_MEDIA_TYPE if docker else OCI_MANIFEST_MEDIA_TYPE
    old_layers = existing.layers if existing is not None else ()
    duplicate = find_duplicate(old_layers, new_layer, public_key=public_key)
    if duplicate is not None:
        return SignatureManifestUpdate(manifest=None, media_type=media_type, blobs=(), duplicate_of=duplicate)
    if len(old_layers) + 1 > MAX_LAYERS:
        raise ConflictError(
            f"the signature manifest already holds {len(old_layers)} layers, cosign reads at most {MAX_LAYERS}",
            where=new_layer.digest,
        )
    layers: list[LayerRef | SignatureLayer] = [*old_layers, new_layer]
    config = signature_config(layers)
    manifest = build_signature_manifest(
        layers,
        config,
        docker_media_types=docker,
        annotations=existing.annotations if existing is not None else None,
        artifact_type=existing.artifact_type if existing is not None else None,
    )
    config_type = DOCKER_CONFIG_MEDIA_TYPE if docker else OCI_CONFIG_MEDIA_TYPE
    return SignatureManifestUpdate(
        manifest=manifest, media_type=media_type, blobs=(new_layer.blob(), Blob(config_type, config))
    )


# --- containers/image "dir" serialisation ------------------------------------------------------------


def decode_dir_signature(data: bytes, where: str) -> SignatureLayer:
    """One signature as containers/image's ``dir:`` transport stores it (``signature-N`` files):
    ``\\x00sigstore-json\\n`` then JSON ``{"mimeType":…,"payload":"<base64>","annotations":{…}}``."""
    if not data.startswith(DIR_SIGNATURE_PREFIX):
        raise InvalidInputError("not a containers/image sigstore signature (no \\x00sigstore-json header)", where=where)
    document = load_strict_json(data[len(DIR_SIGNATURE_PREFIX) :], "sigstore signature", where)
    if not isinstance(document, dict):
        raise InvalidInputError("the sigstore signature is not a JSON object", where=where)
    mime_type = document.get("mimeType")
    if mime_type != SIMPLE_SIGNING_MEDIA_TYPE:
        raise InvalidInputError(
            f"the sigstore signature has MIME type {mime_type!r}, not {SIMPLE_SIGNING_MEDIA_TYPE}", where=where
        )
    encoded = document.get("payload")
    if not isinstance(encoded, str):
        raise InvalidInputError("the sigstore signature has no payload", where=where)
    try:
        payload = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError("the sigstore signature's payload is not valid base64", where=where) from None
    annotations = document.get("annotations")
    return signature_layer_from_annotations(
        payload, _string_map(annotations if annotations is not None else {}, "annotations", where), where
    )


def encode_dir_signature(layer: SignatureLayer) -> bytes:
    """The ``dir:`` serialisation of ``layer``, byte for byte as containers/image writes it."""
    body = {
        "mimeType": layer.media_type,
        "payload": base64.b64encode(layer.payload).decode("ascii"),
        "annotations": layer.annotations(),
    }
    return DIR_SIGNATURE_PREFIX + marshal_go_json(body)
