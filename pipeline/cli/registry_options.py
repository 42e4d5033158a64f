"""Building the registry client from the options every registry command shares."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import typer

from pipeline.errors import UsageError
from pipeline.http import DEFAULT_REQUEST_TIMEOUT, REQUEST_TIMEOUT_ENV, set_request_timeout
from pipeline.oci.auth import load_credentials
from pipeline.oci.client import RegistryClient, RegistryOptions
from pipeline.oci.reference import Reference, parse_reference

ALLOW_HTTP_OPTION = typer.Option(
    False,
    "--allow-http-registry",
    envvar="RELEASE_VECTOR_ALLOW_HTTP_REGISTRY",
    help="Allow plain HTTP to registries that are not on localhost (insecure).",
)
CACERT_OPTION = typer.Option(
    None,
    "--registry-cacert",
    envvar="RELEASE_VECTOR_REGISTRY_CACERT",
    help="PEM file of the CA that signed the registry's TLS certificate (a private CA).",
)
CONCURRENCY_OPTION = typer.Option(
    16, "--concurrency", envvar="RELEASE_VECTOR_CONCURRENCY", min=1, max=256, help="Images handled at once."
)


def _apply_request_timeout(value: float | None) -> float | None:
    set_request_timeout(value)  # one setting for every client of this run (pipeline.http reads it)
    return value


REQUEST_TIMEOUT_OPTION = typer.Option(
    None,
    "--request-timeout",
    envvar=REQUEST_TIMEOUT_ENV,
    min=0.1,
    callback=_apply_request_timeout,
    metavar="SECONDS",
    help=f"Total time one network request may take, answer included (default {DEFAULT_REQUEST_TIMEOUT:g} s;"
    " blobs get a few times that plus time for their size).",
)
ANNOTATION_OPTION = typer.Option(
    [], "-a", "--annotations", help="key=value annotation of the signature payload (repeatable)."
)


def parse_images(texts: Iterable[str]) -> list[Reference]:
    return [parse_reference(text) for text in texts]


def parse_annotations(pairs: Iterable[str]) -> dict[str, str]:
    annotations: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"annotation {pair!r} is not key=value", where="-a")
        annotations[key] = value
    return annotations


MAX_CONNECTIONS = 64
"""Pooled connections per run: at least the highest --concurrency users set, or workers wait for a socket."""


def registry_client(images: Iterable[Reference], *, allow_http: bool, cacert: Path | None) -> RegistryClient:
    """A client whose REGISTRY_USERNAME/PASSWORD apply only to the registries named on the command line."""
    registries = {image.registry for image in images}
    credentials = load_credentials(os.environ, env_registries=registries)
    options = RegistryOptions(
        allow_http=allow_http, cacert=cacert, credentials=credentials, max_connections=MAX_CONNECTIONS
    )
    return RegistryClient(options)
