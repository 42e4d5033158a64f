"""``mirror``, ``export``, ``import``: carry a signed release into another registry or an OCI layout
(:mod:`pipeline.mirror.run`), with progress on stderr and the result (lines or ``--json``) on stdout."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipeline.cli.app import app
from pipeline.cli.common import print_json, read_input_file
from pipeline.cli.keys import KEY_HELP
from pipeline.cli.option_groups import grouped
from pipeline.cli.progress import say
from pipeline.cli.registry_options import (
    CONCURRENCY_OPTION,
    REGISTRY_OPTIONS,
    SIGNATURE_REPOSITORY_OPTION,
    RegistryFlags,
    parse_signature_repository,
)
from pipeline.cli.release_options import MIRRORS_OPTION
from pipeline.cli.trust_options import VERIFY_OPTIONS, verification_policy
from pipeline.cosign.policy import TrustOptions
from pipeline.errors import UsageError
from pipeline.localfiles import KEY_LIMIT
from pipeline.mirror.names import parse_destination
from pipeline.oci.mirror import parse_mirrors
from pipeline.oci.reference import parse_reference

if TYPE_CHECKING:  # the carrying itself (cryptography, the registry client) loads when a command runs (start-up)
    from pipeline.cosign.verify import VerificationPolicy
    from pipeline.mirror.copy import Counts
    from pipeline.mirror.run import CarryResult
    from pipeline.provenance import ProvenanceExpectations
    from pipeline.release import ReleaseVerification

REFERRERS_OPTION = typer.Option(
    False, "--include-referrers", help="Also carry every OCI 1.1 referrer (SBOMs, any artifact), not only "
    "Sigstore signatures and attestations.",
)  # fmt: skip
DRY_RUN_OPTION = typer.Option(False, "--dry-run", help="Look at the source and print the plan; write nothing.")
ALLOW_UNSIGNED_OPTION = typer.Option(
    False, "--allow-unsigned", envvar="RELEASE_VECTOR_ALLOW_UNSIGNED",
    help="Carry what is there even if an item is missing or unsigned at the source (listed; exit 0).",
)  # fmt: skip
JSON_OPTION = typer.Option(False, "--json", help="Print one JSON result.")
KEY_OPTION = typer.Option(None, "--key", help=KEY_HELP + " Verifies the vector (and each item) at the source.")


def _policy(key: Path | None, trust: TrustOptions) -> VerificationPolicy | None:
    """A policy when verify options are given (a key or a keyless identity), else None: presence only."""
    keyless = trust.certificate_identity or trust.certificate_identity_regexp
    return verification_policy(key, trust) if key is not None or keyless else None


class _Progress:
    """Items, blobs, bytes and rate: redrawn on a terminal; otherwise (CI) a plain line at most every
    ``PLAIN_EVERY`` seconds and when the items are done (blobs go before any item completes)."""

    PLAIN_EVERY = 5.0

    def __init__(self, verb: str) -> None:
        self.verb, self.started, self.tty, self.items = verb, time.monotonic(), sys.stderr.isatty(), -1
        self.said = self.started

    def __call__(self, counts: Counts) -> None:
        rate = counts.bytes_sent / max(0.001, time.monotonic() - self.started) / 1024**2
        mib = counts.bytes_sent / 1024**2
        line = (
            f"{self.verb}: {counts.items} item(s); blobs {counts.blobs_sent} sent, {counts.blobs_mounted} mounted, "
            f"{counts.blobs_skipped} present; {mib:.1f} MiB at {rate:.1f} MiB/s"
        )
        if self.tty:
            print(f"\r{line}\x1b[K", end="", file=sys.stderr, flush=True)
        elif counts.items != self.items or time.monotonic() - self.said >= self.PLAIN_EVERY:
            self.items, self.said = counts.items, time.monotonic()
            say(line)

    def done(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _report(verb: str, result: CarryResult, *, dry_run: bool, json_output: bool) -> None:
    if dry_run:
        plan = result.plan_json()
        if json_output:
            print_json({"plan": plan, "registry_mirrors": list(result.registry_mirrors)})
        else:
            for entry in plan:
                print(f"{entry['kind']:<10} {entry['source']} -> {entry['target']}"
                      f" ({len(entry['signature_tags']) + len(entry['referrers'])} signature object(s))")  # type: ignore[arg-type]  # fmt: skip
        say(f"{verb} (dry run): {len(plan)} item(s) to {result.destination}; nothing written")
        return
    if json_output:
        print_json(result.to_json())
    else:
        for copied in result.copied:
            print(f"{copied.kind:<11} {copied.source} -> {copied.target}")
    for skipped in result.skipped:
        say(f"warning: not carried or unsigned: {skipped}")
    c = result.counts
    say(f"{verb}: {c.items} item(s) to {result.destination}; manifests {c.manifests_sent} sent, "
        f"{c.manifests_skipped} present; blobs {c.blobs_sent} sent, {c.blobs_mounted} mounted, {c.blobs_skipped} "
        f"present; {c.bytes_sent} bytes; tags {c.tags_set} set; {result.seconds:.1f} s")  # fmt: skip
    for rule in result.registry_mirrors:
        say(f"verify with: --registry-mirror {rule}")


@app.command("mirror")
@grouped
def mirror_command(
    reference: str = typer.Argument(
        ..., help="The release vector: REGISTRY/REPO:VERSION or @DIGEST.", show_default=False
    ),
    to: str = typer.Option(..., "--to", help="REGISTRY or REGISTRY/PREFIX: names go to REGISTRY/PREFIX/<host>/<path>."),
    include_referrers: bool = REFERRERS_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    dry_run: bool = DRY_RUN_OPTION,
    allow_unsigned: bool = ALLOW_UNSIGNED_OPTION,
    key: Path | None = KEY_OPTION,
    trust: TrustOptions = VERIFY_OPTIONS,
    registry_mirror: list[str] = MIRRORS_OPTION,
    registry: RegistryFlags = REGISTRY_OPTIONS,
    signature_repository: str | None = SIGNATURE_REPOSITORY_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Copy a signed release to another registry.

    Every digest is kept: the vector artifact, every image it
    pins (every platform, every blob) and their signatures and attestations (.sig/.att tags, OCI 1.1
    referrers, the sha256-<hex> fallback index). Re-runs send only what is missing."""
    from pipeline.mirror.run import CarrySettings, mirror_release

    ref, destination = parse_reference(reference), parse_destination(to)
    settings = CarrySettings(include_referrers, concurrency, dry_run, allow_unsigned, _policy(key, trust),
                             parse_mirrors(registry_mirror),
                             parse_signature_repository(signature_repository))  # fmt: skip
    progress = _Progress("mirror")
    named = [ref, parse_reference(f"{destination}/x:x".replace("//", "/"))]
    with registry.client(named, settings.signatures) as client:
        result = mirror_release(client, ref, destination, settings, progress)
    progress.done()
    _report("mirror", result, dry_run=dry_run, json_output=json_output)


@app.command("export")
@grouped
def export_command(
    reference: str = typer.Argument(
        ..., help="The release vector: REGISTRY/REPO:VERSION or @DIGEST.", show_default=False
    ),
    to: Path = typer.Option(..., "--to", help="A new directory, or FILE.tar: an OCI image layout."),
    include_referrers: bool = REFERRERS_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    dry_run: bool = DRY_RUN_OPTION,
    allow_unsigned: bool = ALLOW_UNSIGNED_OPTION,
    key: Path | None = KEY_OPTION,
    trust: TrustOptions = VERIFY_OPTIONS,
    registry_mirror: list[str] = MIRRORS_OPTION,
    registry: RegistryFlags = REGISTRY_OPTIONS,
    signature_repository: str | None = SIGNATURE_REPOSITORY_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Write a signed release to an OCI layout (dir or tar).

    For an air gap: index.json names each manifest by its original reference; cosign.pub (with --key), the
    trusted root and release-vector.json beside it. Written under a temporary name, renamed when complete."""
    from pipeline.cosign.trust import default_trusted_root
    from pipeline.mirror.run import KEY_FILE, TRUSTED_ROOT_FILE, CarrySettings, export_release

    ref = parse_reference(reference)
    settings = CarrySettings(include_referrers, concurrency, dry_run, allow_unsigned, _policy(key, trust),
                             parse_mirrors(registry_mirror),
                             parse_signature_repository(signature_repository))  # fmt: skip
    files = {TRUSTED_ROOT_FILE: read_input_file(trust.trusted_root, "trusted root")
             if trust.trusted_root else default_trusted_root()}  # fmt: skip
    if key is not None:
        files[KEY_FILE] = read_input_file(key, "public key", limit=KEY_LIMIT)
    progress = _Progress("export")
    with registry.client([ref], settings.signatures) as client:
        result = export_release(client, ref, to, settings, files=files, progress=progress)
    progress.done()
    _report("export", result, dry_run=dry_run, json_output=json_output)


@app.command("import")
@grouped
def import_command(
    layout: Path = typer.Argument(..., help="An export: its directory or FILE.tar.", show_default=False),
    to: str = typer.Option(..., "--to", help="REGISTRY or REGISTRY/PREFIX: names go to REGISTRY/PREFIX/<host>/<path>."),
    concurrency: int = CONCURRENCY_OPTION,
    dry_run: bool = DRY_RUN_OPTION,
    allow_unsigned: bool = ALLOW_UNSIGNED_OPTION,
    key: Path | None = KEY_OPTION,
    trust: TrustOptions = VERIFY_OPTIONS,
    registry: RegistryFlags = REGISTRY_OPTIONS,
    json_output: bool = JSON_OPTION,
) -> None:
    """Copy an export into a registry (names as mirror's). Every blob of the layout is
    checked against its digest first; a bad layout is refused (exit 3) before anything is sent."""
    from pipeline.mirror.run import CarrySettings, import_release

    destination = parse_destination(to)
    settings = CarrySettings(False, concurrency, dry_run, allow_unsigned, _policy(key, trust))
    progress = _Progress("import")
    with registry.client([parse_reference(f"{destination}/x:x")]) as client:
        result = import_release(client, layout, destination, settings, progress)
    progress.done()
    _report("import", result, dry_run=dry_run, json_output=json_output)


OCI_LAYOUT_HELP = (
    "Verify an export (its directory or FILE.tar) offline instead of a registry: the vector's signature, then "
    "every image it pins, present and signed in the layout (and, with --require-provenance, its provenance)."
)


def verify_exported(
    reference: str | None, layout: Path | None, policy: VerificationPolicy, concurrency: int,
    provenance: ProvenanceExpectations | None = None,
) -> ReleaseVerification:  # fmt: skip
    from pipeline.mirror.run import verify_layout

    if layout is None or reference is not None:
        raise UsageError("give a release REF or --oci-layout DIR, one of the two")
    return verify_layout(layout, policy, concurrency=concurrency, provenance=provenance)
