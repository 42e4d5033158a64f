"""``rehearse``: the whole release on embedded local targets, on one machine (:mod:`pipeline.rehearsal.run`).

This module parses the options, hands the core its port for running this CLI's own commands in-process
(:class:`InProcessCommands`), and prints the result: progress on stderr, a summary on stdout (``--json``
for scripts). Errors reach :func:`pipeline.cli.run`, which maps them to exit codes.

The throwaway key's password reaches the in-process ``release`` as ``COSIGN_PASSWORD`` only for the
duration of that call (that is how the command takes it) and is restored afterwards; the registry process
is started before, with a clean environment.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipeline.cli.app import app
from pipeline.cli.common import PASSWORD_ENV, print_json
from pipeline.cli.config import CONFIG_ENV
from pipeline.cli.vector import DEFAULT_SOURCE
from pipeline.cosign.keyref import describe, is_key_uri
from pipeline.errors import UsageError
from pipeline.rehearsal.defaults import DEFAULT_VERSION as DEFAULT_VERSION
from pipeline.rehearsal.defaults import PHASES

if TYPE_CHECKING:  # the rehearsal itself (its servers, the HTTP stack) loads when it runs (start-up time)
    from pipeline.rehearsal.run import CommandOutcome, RehearsalResult
    from pipeline.secret import Secret


def _say(text: str) -> None:
    print(f"rehearse: {text}", file=sys.stderr, flush=True)


def shielded() -> tuple[str, ...]:
    """The caller's registry credentials and identity token sources: never used by the rehearsal."""
    from pipeline.sigstore.oidc import ACTIONS_REQUEST_TOKEN_ENV, ACTIONS_REQUEST_URL_ENV, SIGSTORE_ID_TOKEN_ENV

    return ("REGISTRY_USERNAME", "REGISTRY_PASSWORD", SIGSTORE_ID_TOKEN_ENV, ACTIONS_REQUEST_URL_ENV,
            ACTIONS_REQUEST_TOKEN_ENV, "FULCIO_URL")  # fmt: skip


@contextlib.contextmanager
def _scoped_env(password: Secret | None = None, extra: Mapping[str, str] | None = None) -> Iterator[None]:
    """The environment of one in-process call: COSIGN_PASSWORD (and ``extra``: the keyless rehearsal's
    token service variables) set, never in argv, never for a child; the caller's registry credentials,
    token sources and RELEASE_VECTOR_* settings out of the way; then as it was."""
    names = [*shielded(), PASSWORD_ENV]
    names += [name for name in os.environ if name.startswith("RELEASE_VECTOR_") and name != "RELEASE_VECTOR_DEBUG"]
    saved = {name: os.environ.get(name) for name in [*names, *(extra or {})]}
    for name in names:
        os.environ.pop(name, None)
    if password is not None:
        os.environ[PASSWORD_ENV] = password.reveal().decode("utf-8")
    os.environ.update(extra or {})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class InProcessCommands:
    """The rehearsal's :class:`~pipeline.rehearsal.run.Commands` port: this CLI's commands, run in-process
    with ``--json``; their stdout is captured, their stderr passes through."""

    def __call__(
        self, argv: Sequence[str], *, password: Secret | None = None, env: Mapping[str, str] | None = None
    ) -> CommandOutcome:
        from pipeline.cli import run  # the package imports this module: import at call time
        from pipeline.rehearsal.run import CommandOutcome

        captured = io.StringIO()
        # The caller's release-vector.yaml is not the rehearsal's: an empty RELEASE_VECTOR_CONFIG reads none.
        with _scoped_env(password, {CONFIG_ENV: "", **(env or {})}), contextlib.redirect_stdout(captured):
            code = run([*argv, "--json"])
        return CommandOutcome(code, captured.getvalue())


REKOR_V2_OPTION = typer.Option(
    False,
    "--rekor-v2",
    help="Sign into a Rekor v2 log stand-in named by a signing config (v3 bundles only, each with its RFC 3161"
    " timestamp) instead of the Rekor v1 one.",
)


@app.command("rehearse")
def rehearse_command(
    source: Path = typer.Option(
        DEFAULT_SOURCE, "--source", envvar="RELEASE_VECTOR_SOURCE", help="Source definition to rehearse."
    ),
    version: str = typer.Option(DEFAULT_VERSION, "--version", help="The version the rehearsal releases."),
    workdir: Path | None = typer.Option(
        None,
        "--workdir",
        help="Folder for the registry storage, keys and release folder (default: a temp folder). A non-empty"
        " folder the rehearsal did not make is refused (exit 8) unless --force.",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Use a non-empty --workdir the rehearsal did not make (its keys/, releases/ there are replaced).",
    ),
    images: int = typer.Option(0, "--images", min=0, max=100_000, help="Pad the source with N synthetic images."),
    keep: bool = typer.Option(
        False, "--keep", help="Leave the registry running and the work folder in place; print how to reach them."
    ),
    keyless: bool = typer.Option(
        False,
        "--keyless",
        help="Also sign keyless, with an embedded OIDC issuer (GitHub-workflow tokens) and Fulcio stand-in;"
        " verify-release then runs with the key and keyless.",
    ),
    key_uri: str | None = typer.Option(
        None, "--key-uri", help="Sign with this PKCS#11 or AWS KMS key (pkcs11:URI or awskms:URI), not a throwaway key."
    ),
    rekor_v2: bool = REKOR_V2_OPTION,
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Rehearse a whole release on one machine: a local registry seeded with synthetic images under mirrored
    names, a throwaway key pair and a release folder; then the real `release --recursive`, `verify-release`,
    and a re-run that must plan nothing. --keyless signs keyless too (embedded OIDC issuer and Fulcio).
    Needs Debian's docker-registry (`make install`)."""
    from pipeline.rehearsal.run import RehearsalSettings, rehearse

    if key_uri is not None and not is_key_uri(key_uri):  # before any server starts
        raise UsageError("--key-uri takes a pkcs11: or awskms:// key", where=describe(key_uri))
    settings = RehearsalSettings(source=source, version=version, workdir=workdir, images=images, keep=keep,
                                 keyless=keyless, force=force, minimal_source_if_missing=source == DEFAULT_SOURCE,
                                 key_uri=key_uri, rekor_v2=rekor_v2)  # fmt: skip
    result = rehearse(settings, InProcessCommands(), _say)
    if json_output:
        print_json(result.summary())
    else:
        _print_result(result)


def _print_result(result: RehearsalResult) -> None:
    seconds = result.seconds
    phase_text = ", ".join(f"{name} {seconds[name]:.2f} s" for name in PHASES)
    print(f"rehearsal of release {result.version}: ok")
    signers = 2 if result.keyless is not None else 1  # the key's signature, and the keyless one
    print(
        f"  images:   {result.images} in the source ({result.multiarch_indexes} multi-arch);"
        f" {result.images_signed} images signed, {result.images_signed * signers} signatures added"
        + (f", {result.artifacts_signed} oci artifact (chart/role) signatures" if result.artifacts_signed else "")
    )
    print(f"  vector:   {result.vector_reference}@{result.vector_digest} (signed)")
    print(
        f"  verified: {result.verified_images} images and the vector, each with its transparency-log entry; "
        + (f"{result.verified_binaries} binaries downloaded again; " if result.verified_binaries else "")
        + "the re-run planned nothing"
    )
    if result.provenance is not None:
        print(f"  provenance: SLSA v1 on the vector, attested and verified (builder {result.provenance['builder_id']},"
              f" {result.provenance['dependencies']} pinned digests)")  # fmt: skip
    if result.keyless is not None:
        print(f"  keyless:  identity {result.keyless.identity}")
        print(f"            issuer   {result.keyless.issuer} (verified keyless too)")
    where = "removed with the temp folder" if result.removed else str(result.release_dir)
    print(f"  outputs:  {', '.join(Path(f).name for f in result.files)} ({where})")
    print(f"  time:     {phase_text}; total {seconds['total']:.2f} s")
    if not result.removed:
        print(f"  workdir:  {result.workdir} (left in place: registry storage, keys, release folder)")
    if result.kept:
        pid = result.registry_pid
        print(f"  registry: {result.registry_url} still running (pid {pid}; stop it with: kill {pid})")
        print(f"  mirrors:  {' '.join('--registry-mirror ' + spec for spec in result.mirrors)}")
        print(f"  verify:   {result.verify_command}")
