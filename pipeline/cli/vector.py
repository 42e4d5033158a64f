"""``assemble``: the source definition becomes a release vector with every image pinned to its digest."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from pipeline.cli.app import app
from pipeline.cli.binary_options import BINARY_OPTIONS, NO_BINARIES_OPTION, BinaryFlags
from pipeline.cli.common import print_json, read_input_file, write_atomically
from pipeline.cli.counter import counter
from pipeline.cli.option_groups import grouped
from pipeline.cli.registry_options import CONCURRENCY_OPTION, REGISTRY_OPTIONS, RegistryFlags, registry_options
from pipeline.errors import UsageError
from pipeline.oci.mirror import Mirrors, parse_mirrors

if TYPE_CHECKING:  # the assembly, YAML and the registry client load when assemble runs, not for --help (start-up)
    from pipeline.assemble import Resolution
    from pipeline.binaries import BinaryResolution
    from pipeline.vector import Source

SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"
DEFAULT_SOURCE = Path("release/release.yaml")

MIRROR_HELP = (
    "FROM=TO: read images named under FROM (a registry, or registry/path) at TO instead; the vector keeps "
    "the original names. Repeatable; the longest matching FROM wins. Example: ghcr.io=127.0.0.1:5000/ghcr.io"
)
MIRRORS_OPTION = typer.Option([], "--registry-mirror", envvar="RELEASE_VECTOR_REGISTRY_MIRROR", help=MIRROR_HELP)


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
    from pipeline.vector import MAX_DOCUMENT_BYTES, load_source

    return load_source(read_input_file(path, "source definition", limit=MAX_DOCUMENT_BYTES), str(path))


def _resolve(source: Source, mirrors: Mirrors, *, concurrency: int, registry: RegistryFlags) -> Resolution:
    from pipeline.assemble import resolve_source
    from pipeline.oci.client import RegistryClient

    # No registry of a source file counts as named: REGISTRY_USERNAME/PASSWORD only for --registry-credentials-for.
    options = registry_options(
        (),
        credentials_for=registry.registry_credentials_for,
        allow_http=registry.allow_http_registry,
        cacert=registry.registry_cacert,
        max_connections=max(concurrency, 1),
    )
    with RegistryClient(options) as client, counter("resolving images", len(source.references())) as tick:
        return resolve_source(client, source, mirrors=mirrors, concurrency=concurrency,
                              on_resolved=lambda _ref, _digest: tick())  # fmt: skip


@app.command("assemble")
@grouped
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
    registry_mirror: list[str] = MIRRORS_OPTION,
    no_resolve: bool = typer.Option(
        False, "--no-resolve", help="Do not contact registries: a vector without digests (cannot be signed)."
    ),
    concurrency: int = CONCURRENCY_OPTION,
    registry: RegistryFlags = REGISTRY_OPTIONS,
    no_binaries: bool = NO_BINARIES_OPTION,
    binary_flags: BinaryFlags = BINARY_OPTIONS,
    json_output: bool = typer.Option(False, "--json", help="Print a JSON result on stdout (needs --output)."),
) -> None:
    """Write the release vector: every image, OCI artifact and binary pinned.

    The vector is the source, byte for byte, plus `digest: sha256:<hex>` after each image's tag (an OCI
    artifact's tag or version, a binary's url: the sha256 of its bytes) and a `release-vector` block
    (version, git revision, sha256 of the source; `created` only from SOURCE_DATE_EPOCH). Same source and
    digests, same bytes.
    """
    from pipeline.assemble import Resolution, assemble, vector_metadata

    if json_output and output is None:
        raise UsageError("--json needs --output: without it stdout carries the vector", where="--json")
    started = time.monotonic()
    source = load_source_file(source_path)
    mirrors = parse_mirrors(registry_mirror)  # usage errors before anything slow
    metadata = vector_metadata(
        source, source_path, version, revision, source_date_epoch=os.environ.get(SOURCE_DATE_EPOCH), on_warning=_err
    )
    fetched = _fetch_binaries(source, no_resolve or no_binaries, binary_flags, registry, concurrency)
    if no_resolve:
        resolution = Resolution()
        _err("warning: --no-resolve: the vector pins no digests; it cannot be signed or verified as is")
    else:
        resolution = _resolve(source, mirrors, concurrency=concurrency, registry=registry)
    if not resolution.ok or (fetched is not None and not fetched.ok):
        _fail_unresolved(source, resolution, output, no_resolve, json_output, fetched)
    vector = assemble(source, resolution, metadata, fetched)
    if output is None:
        _write_stdout(vector)
    else:
        _write_atomically(output, vector)
    _summary(source, output, vector, resolution, time.monotonic() - started, fetched)
    if json_output:
        print_json(_result(source, output, vector, resolution, no_resolve, fetched))


def _fetch_binaries(
    source: Source, skip: bool, flags: BinaryFlags, registry: RegistryFlags, concurrency: int
) -> BinaryResolution | None:
    """Every binary url fetched and hashed; with --no-binaries (or --no-resolve) none, and a note says so."""
    if not source.binaries:
        return None
    if skip:
        _err(f"note: {len(source.binaries)} binaries not downloaded (--no-binaries or --no-resolve): their urls "
             "get no digest")  # fmt: skip
        return None
    from pipeline.assemble import resolve_binaries

    with flags.fetcher(registry.registry_cacert) as fetcher:
        return resolve_binaries(fetcher, source, concurrency=concurrency)


def _summary(
    source: Source,
    output: Path | None,
    vector: bytes,
    resolution: Resolution,
    elapsed: float,
    fetched: BinaryResolution | None = None,
) -> None:
    for entry in source.tag_only:
        _err(f"note: {source.where}:{entry.line}: an entry with a tag but no name is kept, not resolved")
    target = str(output) if output is not None else "stdout"
    vector_digest = "sha256:" + hashlib.sha256(vector).hexdigest()
    hashed = len(fetched.digests) if fetched is not None else 0
    binaries = f", {len(source.binaries)} binaries ({hashed} distinct urls hashed)" if source.binaries else ""
    _err(
        f"assembled {source.where} -> {target}: {len(source.images)} image entries, {len(source.artifacts)} oci "
        f"artifact entries{binaries}, {len(source.references())} distinct, {len(resolution.digests)} digests pinned in "
        f"{elapsed:.2f} s; vector {vector_digest}"
    )


def _fail_unresolved(
    source: Source,
    resolution: Resolution,
    output: Path | None,
    no_resolve: bool,
    json_output: bool,
    fetched: BinaryResolution | None = None,
) -> NoReturn:
    """Every image (and binary) that could not be resolved, with its line, on stderr (and the JSON result); exits."""
    from pipeline.assemble import binary_errors

    codes = []
    for image, failure in resolution.failed_entries(source):
        _err(f"error: {failure.reason_as(image.label)} ({source.where}:{image.line})")
        codes.append(failure.error.exit_code)
    if not resolution.ok:
        what = "images" if not source.artifacts else "images and oci artifacts"
        _err(f"error: {len(resolution.unresolved)} of {len(source.references())} {what} could not be resolved")
        for hint in dict.fromkeys(failure.error.hint for failure in resolution.unresolved if failure.error.hint):
            _err(f"hint: {hint}")
    if fetched is not None and not fetched.ok:
        for error in binary_errors(source, fetched):
            _err(f"error: {error.one_line()}")
            codes.append(error.exit_code)
        total = len(fetched.digests) + len(fetched.failures)
        _err(f"error: {len(fetched.failures)} of {total} binaries could not be fetched")
        for hint in dict.fromkeys(error.hint for error in fetched.failures.values() if error.hint):
            _err(f"hint: {hint}")  # as release says them (--binary-size-limit, say)
    if json_output:
        print_json(_result(source, output, None, resolution, no_resolve, fetched))
    raise typer.Exit(int(codes[0]))


def _result(
    source: Source,
    output: Path | None,
    vector: bytes | None,
    resolution: Resolution,
    no_resolve: bool,
    fetched: BinaryResolution | None = None,
) -> dict[str, Any]:
    return {
        "binaries": len(source.binaries),
        "binary_digests": dict(fetched.digests) if fetched is not None else {},
        "source": source.where,
        "output": str(output) if output is not None else None,
        "written": vector is not None,
        "resolved": not no_resolve and resolution.ok,
        "image_entries": len(source.images),
        "images": len({image.reference for image in source.images}),
        "oci_artifact_entries": len(source.artifacts),
        "references": len(source.references()),
        "digests": len(resolution.digests),
        "unresolved": [
            {"image": str(failure.reference), "kind": image.kind, "line": image.line, "error": failure.reason}
            for image, failure in resolution.failed_entries(source)
        ],
        "vector_sha256": None if vector is None else "sha256:" + hashlib.sha256(vector).hexdigest(),
    }
