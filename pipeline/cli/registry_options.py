"""Building the registry client from the options every registry command shares."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import typer

from pipeline.assemble import DEFAULT_CONCURRENCY
from pipeline.cli.option_groups import option_group
from pipeline.errors import UsageError
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
    DEFAULT_CONCURRENCY,
    "--concurrency",
    envvar="RELEASE_VECTOR_CONCURRENCY",
    min=1,
    max=256,
    help="Images handled at once.",
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


@dataclass(frozen=True)
class RegistryFlags:
    """How registries are reached: ``--allow-http-registry``, ``--registry-cacert``."""

    allow_http_registry: bool
    registry_cacert: Path | None

    def client(self, images: Iterable[Reference]) -> RegistryClient:
        """:func:`registry_client` with these options."""
        return registry_client(images, allow_http=self.allow_http_registry, cacert=self.registry_cacert)


REGISTRY_OPTIONS = option_group(
    RegistryFlags, allow_http_registry=(bool, ALLOW_HTTP_OPTION), registry_cacert=(Path | None, CACERT_OPTION)
)
"""The registry options of every command that talks to registries."""
