"""``assemble``: the source definition becomes a release vector with every image pinned to its digest."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from pipeline.assemble import DEFAULT_CONCURRENCY, Resolution, assemble, git_revision, resolve_source
from pipeline.cli.app import app
from pipeline.cli.common import print_json, read_input_file, write_atomically
from pipeline.cli.registry_options import ALLOW_HTTP_OPTION, CACERT_OPTION
from pipeline.errors import ErrorList, ReleaseVectorError, UsageError
from pipeline.oci.auth import load_credentials
from pipeline.oci.client import RegistryClient, RegistryOptions
from pipeline.oci.mirror import Mirrors, parse_mirrors
from pipeline.vector import MAX_DOCUMENT_BYTES, Source, VectorMetadata, created_from_epoch, load_source

SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"
DEFAULT_SOURCE = Path("release/release.yaml")

CONCURRENCY_OPTION = typer.Option(
    DEFAULT_CONCURRENCY,
    "--concurrency",
    envvar="RELEASE_VECTOR_CONCURRENCY",
    min=1,
    max=256,
    help="Images resolved at once (HEAD requests; at most this many connections per run).",
)
MIRROR_HELP = (
    "FROM=TO: read images named under FROM (a registry, or registry/path) at TO instead; the vector keeps "
    "the original names. Repeatable; the longest matching FROM wins. Example: ghcr.io=127.0.0.1:5000/ghcr.io"
)


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def _write_atomically(path: Path, data: bytes) -> None:
    write_atomically(path, data, "vector")


def _write_stdout(data: bytes) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        buffer.write(data)
        buffer.flush()
    else:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()


def load_source_file(path: Path) -> Source:
    """The source definition at ``path``, validated (every problem with its line)."""
    return load_source(read_input_file(path, "source definition", limit=MAX_DOCUMENT_BYTES), str(path))


def _resolve(
    source: Source,
    mirrors: Mirrors,
    *,
    concurrency: int,
    allow_http: bool,
    cacert: Path | None,
    client: RegistryClient | None = None,
) -> Resolution:
    if client is not None:
        return resolve_source(client, source, mirrors=mirrors, concurrency=concurrency)
    references = source.references()
    registries = {mirrors.apply(ref).registry for ref in references}
    credentials = load_credentials(os.environ, env_registries=registries)
    options = RegistryOptions(
        allow_http=allow_http, cacert=cacert, credentials=credentials, max_connections=max(concurrency, 1)
    )
    with RegistryClient(options) as client:
        return resolve_source(client, source, mirrors=mirrors, concurrency=concurrency)


def vector_metadata(source: Source, source_path: Path, version: str, revision: str | None) -> VectorMetadata:
    """Version, git revision (``--git-revision`` or the checkout's HEAD), source hash, SOURCE_DATE_EPOCH."""
    if revision is None:
        found = git_revision(source_path.resolve())
        revision = found.hexsha
        if found.dirty:
            _err(f"warning: the git checkout has uncommitted changes; recording HEAD {revision}")
    epoch = os.environ.get(SOURCE_DATE_EPOCH, "").strip()
    return VectorMetadata(
        version=version,
        git_revision=revision.strip().lower(),
        source_sha256=source.sha256,
        created=created_from_epoch(epoch) if epoch else None,
    )


@dataclass(frozen=True)
class BuiltVector:
    source: Source
    metadata: VectorMetadata
    vector: bytes


def build_vector(
    source_path: Path,
    version: str,
    revision: str | None,
    mirrors: Mirrors,
    *,
    concurrency: int,
    allow_http: bool,
    cacert: Path | None,
    client: RegistryClient | None = None,
    loaded: Source | None = None,
) -> BuiltVector:
    """Assemble as ``assemble`` does, for commands that go on with the vector (``release``).

    Every image that cannot be resolved is reported at once (an ErrorList naming each YAML line).
    ``client``: resolve through it (the release's own client) instead of a client of its own;
    ``loaded``: the source definition already loaded from ``source_path``.
    """
    source = loaded if loaded is not None else load_source_file(source_path)
    metadata = vector_metadata(source, source_path, version, revision)
    resolution = _resolve(
        source, mirrors, concurrency=concurrency, allow_http=allow_http, cacert=cacert, client=client
    )
    if not resolution.ok:
        errors: list[ReleaseVectorError] = []
        for image, failure in resolution.failed_entries(source):
            error = ReleaseVectorError(failure.reason, where=f"{source.where}:{image.line}", hint=failure.error.hint)
            error.exit_code = failure.error.exit_code
            errors.append(error)
        total = len(source.references())
        raise ErrorList(errors, f"{len(resolution.unresolved)} of {total} images could not be resolved")
    return BuiltVector(source, metadata, assemble(source, resolution, metadata))


@app.command("assemble")
def assemble_command(
    source_path: Path = typer.Option(
        DEFAULT_SOURCE, "--source", envvar="RELEASE_VECTOR_SOURCE", help="The source definition (release.yaml)."
    ),
    version: str = typer.Option(
        ..., "--version", envvar="RELEASE_VECTOR_VERSION", help="The release version (also the artifact's tag)."
    ),
    revision: str | None = typer.Option(
        None,
        "--git-revision",
        envvar="RELEASE_VECTOR_GIT_REVISION",
        help="Commit id to record; default: HEAD of the git checkout holding the source.",
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the vector here (default: stdout)."),
    registry_mirror: list[str] = typer.Option(
        [], "--registry-mirror", envvar="RELEASE_VECTOR_REGISTRY_MIRROR", help=MIRROR_HELP
    ),
    no_resolve: bool = typer.Option(
        False, "--no-resolve", help="Do not contact registries: a vector without digests (cannot be signed)."
    ),
    concurrency: int = CONCURRENCY_OPTION,
    allow_http_registry: bool = ALLOW_HTTP_OPTION,
    registry_cacert: Path | None = CACERT_OPTION,
    json_output: bool = typer.Option(False, "--json", help="Print a JSON result on stdout (needs --output)."),
) -> None:
    """Pin every image of the source definition to its current digest and write the release vector.

    The vector is the source, byte for byte, plus `digest: sha256:…` after each image's tag and a
    `release-vector` block (version, git revision, sha256 of the source; `created` only from
    SOURCE_DATE_EPOCH). Same source and digests, same bytes.
    """
    if json_output and output is None:
        raise UsageError("--json needs --output: without it stdout carries the vector", where="--json")
    started = time.monotonic()
    source = load_source_file(source_path)
    mirrors = parse_mirrors(registry_mirror)  # usage errors before anything slow
    metadata = vector_metadata(source, source_path, version, revision)
    references = source.references()
    if no_resolve:
        resolution = Resolution()
        _err("warning: --no-resolve: the vector pins no digests; it cannot be signed or verified as is")
    else:
        resolution = _resolve(
            source,
            mirrors,
            concurrency=concurrency,
            allow_http=allow_http_registry,
            cacert=registry_cacert,
        )
    if not resolution.ok:
        failed = resolution.failed_entries(source)
        for image, failure in failed:
            _err(f"error: {failure.reason} ({source.where}:{image.line})")
        _err(f"error: {len(resolution.unresolved)} of {len(references)} images could not be resolved")
        if json_output:
            print_json(_result(source, output, None, resolution, no_resolve))
        raise typer.Exit(int(resolution.unresolved[0].error.exit_code))
    vector = assemble(source, resolution, metadata)
    if output is None:
        _write_stdout(vector)
    else:
        _write_atomically(output, vector)
    for entry in source.tag_only:
        _err(f"note: {source.where}:{entry.line}: an entry with a tag but no name is kept, not resolved")
    elapsed = time.monotonic() - started
    target = str(output) if output is not None else "stdout"
    vector_digest = "sha256:" + hashlib.sha256(vector).hexdigest()
    _err(
        f"assembled {source.where} -> {target}: {len(source.images)} image entries, {len(references)} distinct, "
        f"{len(resolution.digests)} digests pinned in {elapsed:.2f} s; vector {vector_digest}"
    )
    if json_output:
        print_json(_result(source, output, vector, resolution, no_resolve))


def _result(
    source: Source, output: Path | None, vector: bytes | None, resolution: Resolution, no_resolve: bool
) -> dict[str, Any]:
    return {
        "source": source.where,
        "output": str(output) if output is not None else None,
        "written": vector is not None,
        "resolved": not no_resolve and resolution.ok,
        "image_entries": len(source.images),
        "images": len(source.references()),
        "digests": len(resolution.digests),
        "unresolved": [
            {"image": str(failure.reference), "line": image.line, "error": failure.reason}
            for image, failure in resolution.failed_entries(source)
        ],
        "vector_sha256": None if vector is None else "sha256:" + hashlib.sha256(vector).hexdigest(),
    }
