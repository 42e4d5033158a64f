"""Media types we read and write (OCI image spec, Docker v2 schema 2, cosign, metal-stack)."""

from __future__ import annotations

from typing import Final

# OCI image spec
OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR_GZIP: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY: Final = "application/vnd.oci.empty.v1+json"
OCI_EMPTY_DATA: Final = b"{}"
"""The content of the OCI empty descriptor: two bytes, ``{}``."""

# Docker image manifest v2 schema 2
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"

# cosign and Sigstore
SIGSTORE_BUNDLE_V03: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"

# metal-stack's release vector artifact
RELEASE_VECTOR_ARTIFACT: Final = "application/vnd.metal-stack.release-vector.v1"
RELEASE_VECTOR_LAYER: Final = "application/vnd.metal-stack.release-vector.v1.tar+gzip"

IMAGE_MANIFESTS: Final = (OCI_MANIFEST, DOCKER_MANIFEST)
"""Manifests of a single image (or artifact)."""
INDEXES: Final = (OCI_INDEX, DOCKER_MANIFEST_LIST)
"""Manifests that point at other manifests (multi-platform images)."""
ALL_MANIFESTS: Final = IMAGE_MANIFESTS + INDEXES
"""What a GET of a manifest accepts unless told otherwise."""

MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024
"""Manifests larger than 4 MiB are refused (the limit the OCI distribution spec lets registries set)."""
