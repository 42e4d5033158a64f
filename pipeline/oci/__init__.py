"""OCI pieces: references, digests, media types (pure) and the registry client (I/O)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.oci.auth import (
        Credential,
        CredentialStore,
        DockerConfigCredentials,
        NoCredentials,
        StaticCredentials,
        load_credentials,
    )
    from pipeline.oci.client import Descriptor, Manifest, RegistryClient, RegistryOptions, RetryPolicy, Timeouts
    from pipeline.oci.reference import Reference, Repository, parse_reference, parse_repository

__all__ = [
    "Credential",
    "CredentialStore",
    "Descriptor",
    "DockerConfigCredentials",
    "Manifest",
    "NoCredentials",
    "Reference",
    "RegistryClient",
    "RegistryOptions",
    "Repository",
    "RetryPolicy",
    "StaticCredentials",
    "Timeouts",
    "load_credentials",
    "parse_reference",
    "parse_repository",
]

_HOMES = {
    **dict.fromkeys(["Credential", "CredentialStore", "DockerConfigCredentials", "NoCredentials", "StaticCredentials",
                     "load_credentials"], "pipeline.oci.auth"),
    **dict.fromkeys(["Descriptor", "Manifest", "RegistryClient", "RegistryOptions", "RetryPolicy", "Timeouts"],
                    "pipeline.oci.client"),
    **dict.fromkeys(["Reference", "Repository", "parse_reference", "parse_repository"], "pipeline.oci.reference"),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    """The names above, imported on first use: ``pipeline.oci.reference`` (pure) must not pull in the
    registry client and httpx with it (start-up time of the CLI's option modules, issue 18)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
