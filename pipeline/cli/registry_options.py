"""Building the registry client from the options every registry command shares."""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipeline.cli.option_groups import option_group
from pipeline.errors import ReleaseVectorError, UsageError
from pipeline.network_defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_REQUEST_TIMEOUT,
    REQUEST_TIMEOUT_ENV,
    set_request_timeout,
)
from pipeline.oci.reference import Reference, Repository, parse_reference, parse_repository

if TYPE_CHECKING:  # the HTTP stack loads when a command makes a client, not with its options (start-up time)
    from pipeline.oci.client import RegistryClient, RegistryOptions

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
CREDENTIALS_FOR_OPTION = typer.Option(
    [],
    "--registry-credentials-for",
    envvar="RELEASE_VECTOR_REGISTRY_CREDENTIALS_FOR",
    metavar="HOST",
    help="Registry (HOST or HOST:PORT, as images name it) that also gets REGISTRY_USERNAME/REGISTRY_PASSWORD, "
    "or token realm host that may receive a registry's credentials. Repeatable (env: space-separated). "
    "Without it those go only to the registries named on the command line (--repository, image arguments), "
    "never to registries named in a source file.",
)


def _apply_request_timeout(value: float | None) -> float | None:
    set_request_timeout(value)  # one setting for every client of this run (pipeline.http reads it); no httpx yet
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
SIGNATURE_REPOSITORY_OPTION = typer.Option(
    None,
    "--signature-repository",
    envvar="COSIGN_REPOSITORY",
    help="Repository holding the signatures (.sig and .att tags, referrers) of every image instead of its own "
    "repository, as cosign's COSIGN_REPOSITORY: for images in registries you cannot write to. Its registry gets "
    "REGISTRY_USERNAME/REGISTRY_PASSWORD as a registry named on the command line.",
)


def parse_signature_repository(text: str | None) -> Repository | None:
    """``--signature-repository`` (or ``COSIGN_REPOSITORY``): a repository without tag or digest; None if unset."""
    if not text:
        return None
    try:
        return parse_repository(text)
    except ReleaseVectorError as error:
        raise UsageError(error.message, where="--signature-repository or COSIGN_REPOSITORY") from None


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


_HOST = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?"
)


def parse_credential_hosts(texts: Iterable[str]) -> frozenset[str]:
    """The ``--registry-credentials-for`` values: ``host`` or ``host:port``, lower case; nothing else."""
    hosts: set[str] = set()
    for text in texts:
        host = text.strip().lower()
        if not _HOST.fullmatch(host):
            raise UsageError(
                f"{text!r} is not a registry host (HOST or HOST:PORT, without scheme or path)",
                where="--registry-credentials-for",
            )
        hosts.add(host)
    return frozenset(hosts)


MAX_CONNECTIONS = 64
"""Pooled connections per run: at least the highest --concurrency users set, or workers wait for a socket."""


def registry_options(
    named: Iterable[Reference],
    *,
    credentials_for: Collection[str] = (),
    allow_http: bool,
    cacert: Path | None,
    max_connections: int = MAX_CONNECTIONS,
) -> RegistryOptions:
    """Options whose REGISTRY_USERNAME/PASSWORD apply only to the registries of ``named`` (references the
    user typed: image arguments, --repository) and the ``credentials_for`` hosts, never to a registry that
    only a file names; those hosts may also receive credentials as a token realm."""
    from pipeline.oci.auth import load_credentials
    from pipeline.oci.client import RegistryOptions

    hosts = parse_credential_hosts(credentials_for)
    registries = {image.registry for image in named} | hosts
    credentials = load_credentials(os.environ, env_registries=registries)
    return RegistryOptions(
        allow_http=allow_http,
        cacert=cacert,
        credentials=credentials,
        max_connections=max_connections,
        credential_hosts=hosts,
    )


def registry_client(
    named: Iterable[Reference], *, credentials_for: Collection[str] = (), allow_http: bool, cacert: Path | None
) -> RegistryClient:
    """A client for :func:`registry_options`: env credentials only for ``named`` and ``credentials_for``."""
    from pipeline.oci.client import RegistryClient

    return RegistryClient(
        registry_options(named, credentials_for=credentials_for, allow_http=allow_http, cacert=cacert)
    )


@dataclass(frozen=True)
class RegistryFlags:
    """How registries are reached: ``--allow-http-registry``, ``--registry-cacert``,
    ``--registry-credentials-for``, ``--request-timeout`` (applied by its option's callback)."""

    allow_http_registry: bool
    registry_cacert: Path | None
    registry_credentials_for: list[str]
    request_timeout: float | None

    def client(self, named: Iterable[Reference], signatures: Repository | None = None) -> RegistryClient:
        """:func:`registry_client` with these options: env credentials for ``named``, the named hosts and the
        ``--signature-repository`` (typed on the command line, and written to) only."""
        extra = [signatures.tag("latest")] if signatures is not None else []
        return registry_client(
            [*named, *extra],
            credentials_for=self.registry_credentials_for,
            allow_http=self.allow_http_registry,
            cacert=self.registry_cacert,
        )


REGISTRY_OPTIONS = option_group(
    RegistryFlags,
    "Registry",
    allow_http_registry=(bool, ALLOW_HTTP_OPTION),
    registry_cacert=(Path | None, CACERT_OPTION),
    registry_credentials_for=(list[str], CREDENTIALS_FOR_OPTION),
    request_timeout=(float | None, REQUEST_TIMEOUT_OPTION),
)
"""The registry options of every command that talks to registries."""
