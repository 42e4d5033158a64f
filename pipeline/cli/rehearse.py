"""``rehearse``: the whole release on embedded local targets, on one machine.

Starts a local registry (:mod:`pipeline.rehearsal`), seeds it with synthetic images under mirrored names
for every image of the source, makes a throwaway key pair, then runs the real commands in-process
through :func:`pipeline.cli.run`: ``release --recursive --registry-mirror … --release-dir …``,
``verify-release``, and ``release`` again, which must plan nothing. Progress on stderr, a summary on
stdout (``--json`` for scripts).

The key's password lives in a :class:`~pipeline.secret.Secret`; it is handed to the in-process
``release`` as ``COSIGN_PASSWORD`` only for the duration of that call (that is how the command takes
it) and restored afterwards; the registry process is started before, with a clean environment.

``--keyless`` adds the keyless stack, embedded too: a test OIDC issuer standing in for GitHub Actions
(its token service is reached through ``ACTIONS_ID_TOKEN_REQUEST_URL``/``_TOKEN``, set for the
in-process ``release`` only, as a runner sets them), a Fulcio stand-in trusting it, and the log. The
release signs with the throwaway key AND keyless; ``verify-release`` runs once with the key and once
keyless (``--certificate-identity`` the workflow's identity, ``--certificate-oidc-issuer`` the issuer,
``--ca-roots`` the stand-in's root, ``--ct-log-public-key`` the key of the CT log whose SCT the
stand-in embeds in every certificate); the re-run must plan nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from pipeline.cli.app import app
from pipeline.cli.common import PASSWORD_ENV, print_json, read_input_file
from pipeline.cli.vector import DEFAULT_SOURCE
from pipeline.errors import ExitCode
from pipeline.oci.reference import parse_reference
from pipeline.rehearsal.fulcio_server import FulcioServer, TrustedIssuer
from pipeline.rehearsal.log_server import LogServer
from pipeline.rehearsal.oidc_issuer import GitHubWorkflowClaims, OidcIssuer
from pipeline.rehearsal.targets import (
    MINIMAL_SOURCE,
    LocalRegistry,
    RehearsalError,
    git_revision_or_placeholder,
    mirror_specs,
    padded_source,
    reset_workdir,
    seed_images,
    start_registry,
    throwaway_keys,
    timed,
)
from pipeline.secret import Secret
from pipeline.sigstore.oidc import ACTIONS_REQUEST_TOKEN_ENV, ACTIONS_REQUEST_URL_ENV, SIGSTORE_ID_TOKEN_ENV
from pipeline.vector import load_source

DEFAULT_VERSION = "v0.0.0-rehearsal"
ARTIFACT_REPOSITORY = "rehearsal/releases"
OWNED = ("registry", "keys", "releases", "source.yaml")
"""What a rehearsal writes in its work folder (and removes there first when the folder is reused)."""


def _say(text: str) -> None:
    print(f"rehearse: {text}", file=sys.stderr, flush=True)


SHIELDED = (
    "REGISTRY_USERNAME",
    "REGISTRY_PASSWORD",
    SIGSTORE_ID_TOKEN_ENV,
    ACTIONS_REQUEST_URL_ENV,
    ACTIONS_REQUEST_TOKEN_ENV,
    "FULCIO_URL",
)
"""The caller's registry credentials and identity token sources: never used by the rehearsal."""


@contextlib.contextmanager
def _scoped_env(password: Secret | None = None, extra: Mapping[str, str] | None = None) -> Iterator[None]:
    """The environment of one in-process call: COSIGN_PASSWORD (and ``extra``: the keyless rehearsal's
    token service variables) set, never in argv, never for a child; the caller's registry credentials,
    token sources and RELEASE_VECTOR_* settings out of the way; then as it was."""
    names = [*SHIELDED, PASSWORD_ENV]
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


def _run_json(step: str, argv: list[str]) -> Any:
    """Run a command of this CLI in-process with ``--json``; its stdout is parsed, its stderr passes through."""
    from pipeline.cli import run  # the package imports this module: import at call time

    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = run([*argv, "--json"])
    if code != 0:
        error = RehearsalError(f"the rehearsed {step} failed with exit code {code} (its error is above)", where=step)
        error.exit_code = ExitCode(code) if code in ExitCode._value2member_map_ else ExitCode.UNEXPECTED
        raise error
    try:
        return json.loads(captured.getvalue())
    except ValueError:
        raise RehearsalError(f"the rehearsed {step} printed no JSON result", where=step) from None


def _command_line(words: list[str]) -> str:
    return " ".join(shlex.quote(word) for word in words)


@app.command("rehearse")
def rehearse_command(
    source: Path = typer.Option(
        DEFAULT_SOURCE, "--source", envvar="RELEASE_VECTOR_SOURCE", help="Source definition to rehearse."
    ),
    version: str = typer.Option(DEFAULT_VERSION, "--version", help="The version the rehearsal releases."),
    workdir: Path | None = typer.Option(
        None, "--workdir", help="Folder for the registry storage, keys and release folder (default: a temp folder)."
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
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Rehearse a whole release on one machine: a local registry seeded with synthetic images under mirrored
    names, a throwaway key pair and a release folder; then the real `release --recursive`, `verify-release`,
    and a re-run that must plan nothing. --keyless signs keyless too (embedded OIDC issuer and Fulcio).
    Needs Debian's docker-registry (`make install`)."""
    started = time.monotonic()
    phases: dict[str, float] = {}
    temporary = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="release-vector-rehearsal-")) if workdir is None else workdir
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    reset_workdir(folder, OWNED)
    registry: LocalRegistry | None = None
    log: LogServer | None = None
    stack = contextlib.ExitStack()
    finished = False
    try:
        source_path = source
        if not source.exists() and source == DEFAULT_SOURCE:
            source_path = folder / "source.yaml"
            source_path.write_text(MINIMAL_SOURCE)
            _say(f"{source} not found here: rehearsing a minimal source definition ({source_path})")
        if images:
            source_path = padded_source(source_path, images, folder / "source.yaml")
            _say(f"source padded with {images} synthetic images: {source_path}")
        loaded = load_source(read_input_file(source_path, "source definition"), str(source_path))
        revision, from_git = git_revision_or_placeholder(source)
        if not from_git:
            _say(f"not in a git checkout: recording the placeholder revision {revision}")

        _say(f"starting docker-registry in {folder / 'registry'}")
        registry = timed(phases, "registry", lambda: start_registry(folder / "registry", detach=keep))
        assert registry is not None
        _say(f"registry {registry.url} (pid {registry.pid})")
        mirrors = mirror_specs(loaded, registry.host)
        references = loaded.references()
        seeded = timed(
            phases, "seed", lambda: seed_images(registry.host, references, mirrors, salt=f"{registry.host} {version}")
        )
        indexes = sum(1 for image in seeded if image.platforms)
        _say(f"seeded {len(seeded)} images ({indexes} multi-arch indexes) under mirrored names")
        keys = timed(phases, "keys", lambda: throwaway_keys(folder / "keys"))
        # An embedded transparency log: every signature gets a Rekor entry whose SET verify-release
        # checks offline with this log's key (kept beside the keys; the log itself ends with the run).
        log = LogServer().start()
        rekor_public_key = folder / "keys" / "rekor.pub"
        rekor_public_key.write_bytes(log.public_key_pem())
        _say(f"transparency log {log.url} (Rekor v1 API)")
        release_dir = folder / "releases"
        repository = f"{registry.host}/{ARTIFACT_REPOSITORY}"
        mirror_args = [arg for spec in mirrors for arg in ("--registry-mirror", spec)]
        keyless_stack = stack.enter_context(_keyless_stack(folder / "keys", version)) if keyless else None
        if keyless_stack is not None:
            _say(
                f"keyless: OIDC issuer {keyless_stack.issuer}, Fulcio {keyless_stack.fulcio_url};"
                f" identity {keyless_stack.identity}"
            )
        release_argv = [
            "release",
            version,
            "--source",
            str(source_path),
            "--repository",
            repository,
            "--key",
            str(keys.private_key),
            "--release-dir",
            str(release_dir),
            "--git-revision",
            revision,
            "--recursive",
            "--rekor-url",
            log.url,
            "--rekor-public-key",
            str(rekor_public_key),
            *mirror_args,
            *(keyless_stack.sign_args if keyless_stack is not None else []),
        ]
        token_env = keyless_stack.actions_env if keyless_stack is not None else None
        _say("release (the real command, --recursive" + (", --key and --keyless)" if keyless else ")"))
        with _scoped_env(keys.password, token_env):
            first = timed(phases, "release", lambda: _run_json("release", release_argv))
        verify_argv = [
            "verify-release",
            f"{repository}:{version}",
            "--key",
            str(keys.public_key),
            "--rekor-public-key",
            str(rekor_public_key),
            "--release-dir",
            str(release_dir),
            *mirror_args,
        ]
        _say("verify-release")
        with _scoped_env():
            verified = timed(phases, "verify-release", lambda: _run_json("verify-release", verify_argv))
        if not verified.get("ok"):
            raise RehearsalError("verify-release did not report success", where="verify-release")
        keyless_verify_argv: list[str] = []
        if keyless_stack is not None:
            keyless_verify_argv = [
                "verify-release",
                f"{repository}:{version}",
                *keyless_stack.verify_args,
                "--rekor-public-key",
                str(rekor_public_key),
                "--release-dir",
                str(release_dir),
                *mirror_args,
            ]
            _say(
                "verify-release keyless (--certificate-identity, --certificate-oidc-issuer, --ca-roots,"
                " --ct-log-public-key)"
            )
            with _scoped_env():
                verified_keyless = timed(
                    phases, "verify-release-keyless", lambda: _run_json("verify-release (keyless)", keyless_verify_argv)
                )
            if not verified_keyless.get("ok"):
                raise RehearsalError("keyless verify-release did not report success", where="verify-release (keyless)")
        _say("release again: it must plan nothing")
        with _scoped_env(keys.password, token_env):
            again = timed(phases, "rerun", lambda: _run_json("release (re-run)", release_argv))
        if again["actions"]:
            kinds = ", ".join(sorted({str(action["kind"]) for action in again["actions"]}))
            raise RehearsalError(
                f"the re-run planned {len(again['actions'])} action(s) ({kinds}); a finished release must plan nothing",
                where="release (re-run)",
                hint="this is a bug: run with --keep and report the plan (release --dry-run)",
            )
        signed_images = sum(1 for action in first["actions"] if action["kind"] == "sign-image")
        signed_vector = any(action["kind"] == "sign-vector" for action in first["actions"])
        outputs = sorted(str(path) for path in (release_dir / version).iterdir() if path.is_file())
        verify_command = _command_line(["release-vector", *verify_argv])
        summary: dict[str, Any] = {
            "ok": True,
            "version": version,
            "source": str(source_path),
            "git_revision": revision,
            "images": len(references),
            "multiarch_indexes": indexes,
            "images_signed": signed_images,
            "vector_signed": signed_vector,
            "vector": {
                "reference": str(parse_reference(first["artifact"])),
                "digest": first["artifact_digest"],
            },
            "verified_images": len(verified["images"]),
            "rerun_actions": len(again["actions"]),
            "outputs": {
                "workdir": str(folder),
                "release_dir": str(release_dir / version),
                "files": outputs,
                "public_key": str(keys.public_key),
            },
            "registry": {
                "url": registry.url,
                "host": registry.host,
                "running": keep,
                "pid": registry.pid if keep else None,
                "stop": f"kill {registry.pid}" if keep else None,
            },
            "mirrors": mirrors,
            "transparency_log": {"url": log.url, "public_key": str(rekor_public_key), "running": False},
            "verify_command": verify_command,
            "keyless": (
                {
                    "identity": keyless_stack.identity,
                    "issuer": keyless_stack.issuer,
                    "fulcio_url": keyless_stack.fulcio_url,
                    "ca_roots": str(keyless_stack.roots),
                    "ct_log_public_key": str(keyless_stack.ct_log_public_key),
                    "verify_command": _command_line(["release-vector", *keyless_verify_argv]),
                }
                if keyless_stack is not None
                else None
            ),
            "seconds": {**phases, **{f"release.{k}": v for k, v in first["seconds"].items()}},
        }
        finished = True
    finally:
        stack.close()
        if log is not None:
            log.stop()
        if registry is not None and not (keep and finished):
            registry.stop()
        if temporary and not keep:
            shutil.rmtree(folder, ignore_errors=True)
    summary["seconds"]["total"] = round(time.monotonic() - started, 3)
    if not keep:
        summary["outputs"]["removed"] = temporary
    if json_output:
        print_json(summary)
        return
    seconds = summary["seconds"]
    phase_text = ", ".join(
        f"{name} {seconds[name]:.2f} s" for name in ("registry", "seed", "keys", "release", "verify-release", "rerun")
    )
    print(f"rehearsal of release {version}: ok")
    print(f"  images:   {summary['images']} in the source ({indexes} multi-arch), {signed_images} signatures added")
    print(f"  vector:   {summary['vector']['reference']}@{summary['vector']['digest']} (signed)")
    print(
        f"  verified: {summary['verified_images']} images and the vector, each with its transparency-log entry; "
        "the re-run planned nothing"
    )
    if summary["keyless"] is not None:
        print(f"  keyless:  identity {summary['keyless']['identity']}")
        print(f"            issuer   {summary['keyless']['issuer']} (verified keyless too)")
    where = "removed with the temp folder" if temporary and not keep else summary["outputs"]["release_dir"]
    print(f"  outputs:  {', '.join(Path(f).name for f in outputs)} ({where})")
    print(f"  time:     {phase_text}; total {seconds['total']:.2f} s")
    if keep and registry is not None:
        print(f"  registry: {registry.url} still running (pid {registry.pid}; stop it with: kill {registry.pid})")
        print(f"  mirrors:  {' '.join('--registry-mirror ' + spec for spec in mirrors)}")
        print(f"  verify:   {verify_command}")


@dataclass(frozen=True)
class _KeylessStack:
    """The embedded keyless stack of a rehearsal and the options that use it."""

    issuer: str
    identity: str
    fulcio_url: str
    roots: Path
    ct_log_public_key: Path
    actions_env: Mapping[str, str] = field(repr=False)

    @property
    def sign_args(self) -> list[str]:
        return [
            "--keyless",
            "--fulcio-url",
            self.fulcio_url,
            "--fulcio-ca-roots",
            str(self.roots),
            "--ct-log-public-key",
            str(self.ct_log_public_key),
        ]

    @property
    def verify_args(self) -> list[str]:
        return [
            "--certificate-identity",
            self.identity,
            "--certificate-oidc-issuer",
            self.issuer,
            "--ca-roots",
            str(self.roots),
            "--ct-log-public-key",
            str(self.ct_log_public_key),
        ]


@contextlib.contextmanager
def _keyless_stack(keys: Path, version: str) -> Iterator[_KeylessStack]:
    """An OIDC issuer issuing GitHub-workflow tokens (as a release workflow for ``version`` would get), a
    Fulcio stand-in trusting it; the stand-in's root written to ``keys/fulcio-root.pem``, its CT log's key
    to ``keys/ct-log.pub``."""
    workflow = GitHubWorkflowClaims(repository="rehearsal/releases", ref=f"refs/tags/{version}")
    with OidcIssuer("RS256", actions_claims=workflow) as issuer:
        fulcio = FulcioServer([TrustedIssuer(issuer.issuer, "github-workflow")])
        with fulcio:
            roots = keys / "fulcio-root.pem"
            roots.write_bytes(fulcio.roots_pem())
            ct_log = keys / "ct-log.pub"
            ct_log.write_bytes(fulcio.ct_log_public_key_pem())
            yield _KeylessStack(
                issuer.issuer, workflow.certificate_identity, fulcio.url, roots, ct_log, issuer.actions_env()
            )
