"""OCI pieces: references, digests, media types (pure) and the registry client (I/O)."""

from __future__ import annotations

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
