"""Small builders shared by the OCI tests."""

from __future__ import annotations

import json
from collections.abc import Callable

from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from pipeline.oci.auth import CredentialStore, NoCredentials
from pipeline.oci.client import RegistryClient, RegistryOptions, RetryPolicy, Timeouts

FAST_RETRIES = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.004, max_retry_after=5.0)
SHORT_TIMEOUTS = Timeouts(connect=3.0, read=10.0, write=10.0, pool=3.0)


def options(credentials: CredentialStore | None = None, **overrides: object) -> RegistryOptions:
    values: dict[str, object] = {
        "retries": FAST_RETRIES,
        "timeouts": SHORT_TIMEOUTS,
        "credentials": credentials or NoCredentials(),
    }
    values.update(overrides)
    return RegistryOptions(**values)  # type: ignore[arg-type]


def client(
    credentials: CredentialStore | None = None, sleep: Callable[[float], None] | None = None, **overrides: object
) -> RegistryClient:
    return RegistryClient(options(credentials, **overrides), sleep=sleep or (lambda _seconds: None))


def image_manifest(
    layer: bytes, *, layer_type: str = mediatypes.OCI_LAYER_TAR_GZIP, annotations: dict[str, str] | None = None
) -> bytes:
    """Compact bytes of an OCI image manifest: the empty config and one layer."""
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {
            "mediaType": mediatypes.OCI_EMPTY,
            "digest": digests.compute(mediatypes.OCI_EMPTY_DATA),
            "size": len(mediatypes.OCI_EMPTY_DATA),
        },
        "layers": [{"mediaType": layer_type, "digest": digests.compute(layer), "size": len(layer)}],
    }
    if annotations:
        manifest["annotations"] = annotations
    return json.dumps(manifest, separators=(",", ":")).encode()


def push_image(registry_client: RegistryClient, ref_text: str, layer: bytes) -> tuple[bytes, str]:
    """Upload the blobs and PUT the manifest at ``ref_text``; returns (manifest bytes, digest)."""
    from pipeline.oci.reference import parse_reference

    ref = parse_reference(ref_text)
    registry_client.upload_blob(ref, mediatypes.OCI_EMPTY_DATA)
    registry_client.upload_blob(ref, layer)
    data = image_manifest(layer)
    return data, registry_client.put_manifest(ref, None, data, mediatypes.OCI_MANIFEST)
