"""``release`` (assemble → plan → push, sign all, publish) and ``verify-release``: parse the options, build
the ports, call :mod:`pipeline.release`, print the result."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipeline.cli import binary_options as bins
from pipeline.cli.app import app
from pipeline.cli.bundle_options import BUNDLE_FORMAT_OPTION, parse_bundle_format, referrer_created
from pipeline.cli.carry import OCI_LAYOUT_HELP, verify_exported
from pipeline.cli.common import load_signing_key, read_input_file
from pipeline.cli.keyless_options import SIGN_OPTIONS, KeylessOptions, check_keyless_options, keyless_signer
from pipeline.cli.keys import KEY_HELP
from pipeline.cli.option_groups import grouped
from pipeline.cli.progress import StderrProgress
from pipeline.cli.provenance_options import (
    ATTEST_OPTION,
    PROVENANCE_OPTIONS,
    ProvenanceCheckOptions,
    build_environment,
)
from pipeline.cli.registry_options import (
    CONCURRENCY_OPTION,
    REGISTRY_OPTIONS,
    SIGNATURE_REPOSITORY_OPTION,
    RegistryFlags,
    parse_signature_repository,
)
from pipeline.cli.release_options import (
    EXCLUDE_OPTION,
    MIRRORS_OPTION,
    NO_PUBLISH_OPTION,
    TARGET_OPTIONS,
    TargetOptions,
    check_destination,
    release_target,
)
from pipeline.cli.release_report import print_release, report_verification
from pipeline.cli.signing_config_options import date_log_entries, timestamp_client, with_signing_config
from pipeline.cli.trust_options import (
    TLOG_OPTIONS,
    VERIFY_OPTIONS,
    TlogOptions,
    transparency_log,
    verification_policy,
)
from pipeline.cli.vector import DEFAULT_SOURCE, SOURCE_DATE_EPOCH, load_source_file
from pipeline.cosign.keyref import is_key_uri
from pipeline.cosign.policy import TrustOptions
from pipeline.localfiles import KEY_LIMIT
from pipeline.oci.mirror import parse_mirrors
from pipeline.oci.reference import parse_reference, parse_repository

if TYPE_CHECKING:  # the release's core (cryptography, the registry client) loads when a command runs (start-up)
    from pipeline.cosign.keys import PrivateKeyHandle
    from pipeline.release import ReleasePorts, ReleaseResult, ReleaseSettings, ReleaseSpec


def _key_for(spec: str | None, dry_run: bool) -> tuple[PrivateKeyHandle | None, bytes | None]:
    """(signing key or None, public key PEM; both None without ``--key``). A dry run may be given a public key:
    it writes nothing."""
    from pipeline.cosign.keys import PUBLIC_KEY_LABEL, decode_pem, load_public_key, public_key_to_pem

    if spec is None:
        return None, None
    if dry_run and not spec.startswith("env://") and not is_key_uri(spec):
        data = read_input_file(Path(spec), "key", limit=KEY_LIMIT)
        if decode_pem(data, spec).label == PUBLIC_KEY_LABEL:
            return None, public_key_to_pem(load_public_key(data, spec))
    signing_key = load_signing_key(spec)
    return signing_key, signing_key.public_key_pem()


GIT_REVISION_OPTION = typer.Option(
    None, "--git-revision", envvar="RELEASE_VECTOR_GIT_REVISION", help="Commit id (default: the checkout's HEAD)."
)
SOURCE_URL_OPTION = typer.Option(
    None, "--source-url", envvar="RELEASE_VECTOR_SOURCE_URL", help="org.opencontainers.image.source annotation."
)


@app.command("release")
@grouped
def release_command(
    version: str = typer.Argument(..., help="The version to release (the vector artifact's tag).", show_default=False),
    source: Path = typer.Option(DEFAULT_SOURCE, "--source", envvar="RELEASE_VECTOR_SOURCE", help="Source definition."),
    repository: str = typer.Option(
        ..., "--repository", envvar="RELEASE_VECTOR_REPOSITORY", help="REGISTRY/REPO of the vector artifact."
    ),
    key: str | None = typer.Option(
        None, "--key", envvar="RELEASE_VECTOR_KEY", help=KEY_HELP + " A dry run also takes a public key."
    ),
    keyless_options: KeylessOptions = SIGN_OPTIONS,
    target_options: TargetOptions = TARGET_OPTIONS,
    no_publish: bool = NO_PUBLISH_OPTION,
    registry_mirror: list[str] = MIRRORS_OPTION,
    no_binaries: bool = bins.NO_BINARIES_OPTION,
    binary_flags: bins.BinaryFlags = bins.BINARY_OPTIONS,
    git_revision: str | None = GIT_REVISION_OPTION,
    source_url: str | None = SOURCE_URL_OPTION,
    recursive: bool = typer.Option(False, "--recursive", help="Also sign each platform manifest of image indexes."),
    exclude_image: list[str] = EXCLUDE_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    dry_run: bool = typer.Option(
        False, "--dry-run", envvar="RELEASE_VECTOR_DRY_RUN", help="Print the plan and write nothing anywhere."
    ),
    registry: RegistryFlags = REGISTRY_OPTIONS,
    signature_repository: str | None = SIGNATURE_REPOSITORY_OPTION,
    tlog_options: TlogOptions = TLOG_OPTIONS,
    bundle_format: str = BUNDLE_FORMAT_OPTION,
    attest: str | None = ATTEST_OPTION,
    json_output: bool = typer.Option(False, "--json", help="Print the plan (dry run) or the result as JSON."),
) -> None:
    """Cut a release: assemble the vector, push it, sign it and every image it pins, publish.

    Looks at every target read-only first and does only what is missing: a re-run after success
    writes nothing, a re-run after a failure completes the release. The release (GitHub or
    --release-dir) is published last, after every signature and asset exists. Every signature is
    recorded in the transparency log (Rekor) unless --no-tlog-upload; a signature made earlier without
    the log is then not enough and gets a logged one beside it. With --keyless every signature is also
    (without --key: only) made keyless; a keyless-only release publishes no cosign.pub.
    """
    from pipeline.release import ReleaseSettings, ReleaseSpec

    started = time.monotonic()
    check_destination(target_options, no_publish)
    check_keyless_options(key, keyless_options, tlog_upload=tlog_options.tlog_upload)
    chosen_format = parse_bundle_format(bundle_format)
    tlog_options, keyless_options = with_signing_config(tlog_options, keyless_options, timestamps=chosen_format)
    created = referrer_created() if chosen_format != "legacy" else None
    settings = ReleaseSettings(parse_mirrors(registry_mirror), concurrency, chosen_format, created,
                               parse_signature_repository(signature_repository))  # fmt: skip
    artifact_repository, (signing_key, public_pem) = parse_repository(repository), _key_for(key, dry_run)
    spec = ReleaseSpec(
        version, load_source_file(source), source, artifact_repository, public_pem, git_revision, source_url,
        os.environ.get(SOURCE_DATE_EPOCH), recursive, tuple(exclude_image), dry_run, build_environment(attest),
    )  # fmt: skip
    binaries = None if no_binaries else binary_flags
    edges = _Edges(key, signing_key, keyless_options, tlog_options, registry, target_options, binaries)
    print_release(_run_release(spec, settings, edges, started), json_output)


@dataclass(frozen=True)
class _Edges:
    """What the release's ports are built from: the key (as given and loaded) and the option groups."""

    key: str | None
    signing_key: PrivateKeyHandle | None
    keyless: KeylessOptions
    tlog: TlogOptions
    registry: RegistryFlags
    target: TargetOptions
    binaries: bins.BinaryFlags | None  # None: --no-binaries


def _run_release(spec: ReleaseSpec, settings: ReleaseSettings, edges: _Edges, started: float) -> ReleaseResult:
    from pipeline.release import release

    with _release_ports(spec, settings, edges) as ports:
        return release(spec, settings, ports, progress=StderrProgress(), started=started)


@contextmanager
def _release_ports(spec: ReleaseSpec, settings: ReleaseSettings, edges: _Edges) -> Iterator[ReleasePorts]:
    """One registry client for the whole release (assemble, look, sign): one ping, one pool of connections."""
    # REGISTRY_USERNAME/PASSWORD go to --repository's registry (and --registry-credentials-for), never to the
    # registries the source names: those may be third parties (docker.io, quay.io) excluded from signing.
    # The --signature-repository is typed on the command line and written to, as --repository is.
    from pipeline.cosign.keys import load_public_key
    from pipeline.release import ReleasePorts

    named = [spec.repository.tag(spec.version)]
    public_pem = spec.public_key_pem
    with (
        edges.registry.client(named, settings.signatures) as client,
        transparency_log(edges.tlog) as tlog,
        keyless_signer(edges.keyless, tlog) as keyless,
        timestamp_client(edges.tlog) as tsa,
        release_target(edges.target) as target,
        bins.binary_fetcher(edges.binaries, edges.registry.registry_cacert) as binaries,
    ):
        date_log_entries(tlog, tsa)
        yield ReleasePorts(
            registry=client,
            public_key=load_public_key(public_pem, edges.key or "--key") if public_pem is not None else None,
            key=edges.signing_key,
            target=target,
            tlog=tlog,
            keyless=keyless,
            binaries=binaries,
            timestamps=tsa,
        )


ALLOW_VERSION_MISMATCH_OPTION = typer.Option(
    False,
    "--allow-version-mismatch",
    envvar="RELEASE_VECTOR_ALLOW_VERSION_MISMATCH",
    help="Accept a tag that is not the vector's recorded version (floating tags such as latest or a branch). "
    "Without it the tag asked for must equal the vector's version and its org.opencontainers.image.version "
    "annotation; a reference by digest has no tag and is not compared.",
)


@app.command("verify-release")
@grouped
def verify_release_command(
    reference: str | None = typer.Argument(
        None, help="REGISTRY/REPO:VERSION or REGISTRY/REPO@DIGEST (not with --oci-layout).", show_default=False
    ),
    key: Path | None = typer.Option(None, "--key", help="Public key (PKIX PEM) of the release."),
    oci_layout: Path | None = typer.Option(None, "--oci-layout", help=OCI_LAYOUT_HELP),
    trust: TrustOptions = VERIFY_OPTIONS,
    ignore_tags: bool = typer.Option(
        False, "--ignore-tags", help="Do not check that each image's tag still points at the pinned digest."
    ),
    target_options: TargetOptions = TARGET_OPTIONS,
    registry_mirror: list[str] = MIRRORS_OPTION,
    exclude_image: list[str] = EXCLUDE_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    registry: RegistryFlags = REGISTRY_OPTIONS,
    signature_repository: str | None = SIGNATURE_REPOSITORY_OPTION,
    allow_version_mismatch: bool = ALLOW_VERSION_MISMATCH_OPTION,
    check_binaries: bool = bins.CHECK_BINARIES_OPTION,
    binary_flags: bins.BinaryFlags = bins.BINARY_OPTIONS,
    provenance: ProvenanceCheckOptions = PROVENANCE_OPTIONS,
    json_output: bool = typer.Option(False, "--json", help="Print one JSON result."),
) -> None:
    """Verify a whole release: the vector's signature, that the tag asked for is the vector's version, then
    every image it pins (signature on the pinned digest, tag still pointing there) and, with a release target,
    the published cosign.pub and release.yaml (byte for byte the signed vector)."""
    from pipeline.release import verify_release

    policy = verification_policy(key, trust)
    expected = provenance.expectations()
    if oci_layout is not None or reference is None:
        report_verification(verify_exported(reference, oci_layout, policy, concurrency, expected), json_output)
        return
    ref = parse_reference(reference)
    mirrors = parse_mirrors(registry_mirror)
    signatures = parse_signature_repository(signature_repository)
    with (
        registry.client([ref], signatures) as client,
        release_target(target_options) as target,
        bins.binary_fetcher(binary_flags if check_binaries else None, registry.registry_cacert) as fetcher,
    ):
        result = verify_release(
            client,
            ref,
            policy,
            mirrors=mirrors,
            check_tags=not ignore_tags,
            target=target,
            concurrency=concurrency,
            excluded=exclude_image,
            allow_version_mismatch=allow_version_mismatch,
            binaries=fetcher,
            provenance=expected,
            signatures=signatures,
            carried_formats=json_output,  # only --json reports them
        )
    report_verification(result, json_output)
