"""The rehearsal itself: the whole release on embedded local targets, on one machine.

:func:`rehearse` takes :class:`RehearsalSettings` and returns a :class:`RehearsalResult`. It starts a
local registry (:mod:`.targets`), seeds it with synthetic images under mirrored names for every image of
the source, makes a throwaway key pair, starts a transparency log (:mod:`.log_server`), then runs the real
commands: ``release --recursive --registry-mirror … --release-dir …``, ``verify-release``, and ``release``
again, which must plan nothing.

It runs them through a :class:`Commands` port (the CLI passes one that runs its own commands in-process
with ``--json``): the rehearsal exercises exactly what a user runs, and imports stay downward (nothing
here imports the CLI). The throwaway key's password is handed to the port as a :class:`Secret`, to be
given to the command as it takes it (``COSIGN_PASSWORD``) for that call only.

``keyless`` adds the keyless stack, embedded too: a test OIDC issuer standing in for GitHub Actions (its
token service reached through ``ACTIONS_ID_TOKEN_REQUEST_URL``/``_TOKEN``, handed to the port for the
``release`` calls only, as a runner sets them), a Fulcio stand-in trusting it, and the log. The release
signs with the key AND keyless; ``verify-release`` runs once with the key and once keyless
(``--certificate-identity`` the workflow's identity, ``--certificate-oidc-issuer`` the issuer,
``--ca-roots`` the stand-in's root, ``--ct-log-public-key`` the key of the CT log whose SCT the stand-in
embeds in every certificate).

Nothing here prints: progress goes to the ``say`` callback.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Protocol

from pipeline.errors import ExitCode, InvalidInputError
from pipeline.oci.reference import parse_reference
from pipeline.rehearsal.binary_server import BinaryServer, binary_mirror_specs
from pipeline.rehearsal.defaults import DEFAULT_VERSION
from pipeline.rehearsal.fulcio_server import FulcioServer, TrustedIssuer
from pipeline.rehearsal.key_uri import UriKeys, uri_keys
from pipeline.rehearsal.log_server import LogServer
from pipeline.rehearsal.oidc_issuer import GitHubWorkflowClaims, OidcIssuer
from pipeline.rehearsal.signing import rehearsal_signing
from pipeline.rehearsal.targets import (
    MINIMAL_SOURCE,
    LocalRegistry,
    RehearsalError,
    ThrowawayKeys,
    git_revision_or_placeholder,
    mirror_specs,
    padded_source,
    prepare_workdir,
    seed_images,
    start_registry,
    throwaway_keys,
    timed,
)
from pipeline.secret import Secret
from pipeline.vector import Source, load_source

ARTIFACT_REPOSITORY: Final = "rehearsal/releases"
OWNED: Final = ("registry", "keys", "releases", "source.yaml")
"""What a rehearsal writes in its work folder (and removes there first when the folder is reused)."""
SEED_LINES: Final = 10  # "[n/N] seeded" lines while seeding (a large rehearsal takes seconds there)


def step_counter(say: Callable[[str], None], label: str, total: int) -> Callable[[], None] | None:
    """About :data:`SEED_LINES` ``[n/N] label`` lines over ``total`` items (None for a small step)."""
    if total < 50:
        return None
    lock, done, every = threading.Lock(), [0], max(1, total // SEED_LINES)

    def tick() -> None:
        with lock:
            done[0] += 1
            count = done[0]
        if count % every == 0 or count == total:
            say(f"[{count}/{total}] {label}")

    return tick


@dataclass(frozen=True)
class RehearsalSettings:
    source: Path
    version: str = DEFAULT_VERSION
    workdir: Path | None = None  # None: a temporary folder, removed afterwards (unless keep)
    images: int = 0  # synthetic images added to (a copy of) the source
    keep: bool = False  # leave the registry running and the work folder in place
    keyless: bool = False
    force: bool = False  # take over a non-empty work folder the rehearsal did not make
    minimal_source_if_missing: bool = False  # a missing source: rehearse a small generated one instead
    key_uri: str | None = None  # sign with this pkcs11:/awskms:// key instead of a throwaway key file
    rekor_v2: bool = False  # sign into a Rekor v2 log stand-in (chosen by a signing config), v3 bundles only


@dataclass(frozen=True)
class CommandOutcome:
    exit_code: int
    stdout: str


class Commands(Protocol):
    """Runs one command of this tool with ``--json`` appended; its stderr passes through to the user."""

    def __call__(
        self, argv: Sequence[str], *, password: Secret | None = None, env: Mapping[str, str] | None = None
    ) -> CommandOutcome: ...


@dataclass(frozen=True)
class KeylessOutcome:
    identity: str
    issuer: str
    fulcio_url: str
    ca_roots: Path
    ct_log_public_key: Path
    verify_command: str


@dataclass(frozen=True)
class RehearsalResult:
    version: str
    source: Path
    git_revision: str
    images: int
    multiarch_indexes: int
    images_signed: int
    vector_signed: bool
    vector_reference: str
    vector_digest: str
    verified_images: int
    rerun_actions: int
    workdir: Path
    release_dir: Path
    files: tuple[str, ...]
    public_key: Path
    registry_url: str
    registry_host: str
    registry_pid: int
    kept: bool
    temporary: bool  # the work folder was a temporary one
    mirrors: tuple[str, ...]
    log_url: str
    rekor_public_key: Path
    verify_command: str
    keyless: KeylessOutcome | None
    seconds: Mapping[str, float]
    artifacts_signed: int = 0  # OCI artifacts (charts, roles) the first release signed
    verified_binaries: int = 0  # binaries downloaded again from the local server and compared
    provenance: Mapping[str, Any] | None = None  # the vector's provenance, as verify-release verified it
    timestamp_authority: str | None = None  # the TSA stand-in every signature was timestamped by
    rekor_v2_url: str | None = None  # the Rekor v2 stand-in signatures went into (rehearse --rekor-v2)

    @property
    def removed(self) -> bool:
        """The work folder is gone (a temporary one, not kept)."""
        return self.temporary and not self.kept

    def summary(self) -> dict[str, Any]:
        """The JSON summary (``rehearse --json``)."""
        summary: dict[str, Any] = {
            "ok": True,
            "version": self.version,
            "source": str(self.source),
            "git_revision": self.git_revision,
            "images": self.images,
            "multiarch_indexes": self.multiarch_indexes,
            "images_signed": self.images_signed,
            "artifacts_signed": self.artifacts_signed,
            "vector_signed": self.vector_signed,
            "vector": {"reference": self.vector_reference, "digest": self.vector_digest},
            "verified_images": self.verified_images,
            "verified_binaries": self.verified_binaries,
            "rerun_actions": self.rerun_actions,
            "outputs": {
                "workdir": str(self.workdir),
                "release_dir": str(self.release_dir),
                "files": list(self.files),
                "public_key": str(self.public_key),
            },
            "registry": {
                "url": self.registry_url,
                "host": self.registry_host,
                "running": self.kept,
                "pid": self.registry_pid if self.kept else None,
                "stop": f"kill {self.registry_pid}" if self.kept else None,
            },
            "mirrors": list(self.mirrors),
            "transparency_log": {
                "url": self.log_url,
                "public_key": str(self.rekor_public_key),
                "running": False,
                "rekor_v2_url": self.rekor_v2_url,
            },
            "timestamp_authority": self.timestamp_authority,
            "verify_command": self.verify_command,
            "keyless": (
                {
                    "identity": self.keyless.identity,
                    "issuer": self.keyless.issuer,
                    "fulcio_url": self.keyless.fulcio_url,
                    "ca_roots": str(self.keyless.ca_roots),
                    "ct_log_public_key": str(self.keyless.ct_log_public_key),
                    "verify_command": self.keyless.verify_command,
                }
                if self.keyless is not None
                else None
            ),
            "seconds": dict(self.seconds),
            "provenance": dict(self.provenance) if self.provenance is not None else None,
        }
        if not self.kept:
            summary["outputs"]["removed"] = self.temporary
        return summary


def command_line(words: Sequence[str]) -> str:
    return " ".join(shlex.quote(word) for word in words)


def _run_json(commands: Commands, step: str, argv: list[str], **scope: Any) -> Any:
    outcome = commands(argv, **scope)
    if outcome.exit_code != 0:
        code = outcome.exit_code
        error = RehearsalError(f"the rehearsed {step} failed with exit code {code} (its error is above)", where=step)
        error.exit_code = ExitCode(code) if code in ExitCode._value2member_map_ else ExitCode.UNEXPECTED
        raise error
    try:
        return json.loads(outcome.stdout)
    except ValueError:
        raise RehearsalError(f"the rehearsed {step} printed no JSON result", where=step) from None


def _read_source(path: Path) -> Source:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInputError("source definition not found", where=str(path)) from None
    except IsADirectoryError:
        raise InvalidInputError("source definition is a directory", where=str(path)) from None
    except PermissionError:
        raise InvalidInputError("source definition is not readable (permission denied)", where=str(path)) from None
    return load_source(data, str(path))


@dataclass(frozen=True)
class _KeylessStack:
    """The embedded keyless stack of a rehearsal and the options that use it."""

    issuer: str
    identity: str
    fulcio_url: str
    roots: Path
    ct_log_public_key: Path
    actions_env: Mapping[str, str] = field(repr=False)
    chain: Path | None = None  # intermediate + root: a v3 bundle carries only the leaf, so a re-run's look
    # needs the intermediate to recognise this workflow's bundles before any certificate is obtained

    @property
    def sign_args(self) -> list[str]:
        return ["--keyless", "--fulcio-url", self.fulcio_url, "--fulcio-ca-roots", str(self.chain or self.roots),
                "--ct-log-public-key", str(self.ct_log_public_key)]  # fmt: skip

    @property
    def verify_args(self) -> list[str]:
        return ["--certificate-identity", self.identity, "--certificate-oidc-issuer", self.issuer,
                "--ca-roots", str(self.roots), "--ct-log-public-key", str(self.ct_log_public_key)]  # fmt: skip


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
            chain = keys / "fulcio-chain.pem"
            chain.write_bytes(fulcio.chain_pem())
            ct_log = keys / "ct-log.pub"
            ct_log.write_bytes(fulcio.ct_log_public_key_pem())
            yield _KeylessStack(
                issuer.issuer, workflow.certificate_identity, fulcio.url, roots, ct_log, issuer.actions_env(), chain
            )


@dataclass
class _Run:
    """What one rehearsal has started, so that it can be ended whatever happens."""

    settings: RehearsalSettings
    folder: Path
    temporary: bool
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    registry: LocalRegistry | None = None
    log: LogServer | None = None
    phases: dict[str, float] = field(default_factory=dict)

    def close(self, finished: bool) -> None:
        self.stack.close()
        if self.log is not None:
            self.log.stop()
        if self.registry is not None and not (self.settings.keep and finished):
            self.registry.stop()
        if self.temporary and not self.settings.keep:
            shutil.rmtree(self.folder, ignore_errors=True)


def _work_folder(settings: RehearsalSettings) -> tuple[Path, bool]:
    """The work folder (made the rehearsal's, see :func:`prepare_workdir`) and whether it is a temporary one."""
    if settings.workdir is None:
        folder = Path(tempfile.mkdtemp(prefix="release-vector-rehearsal-")).resolve()
        prepare_workdir(folder, OWNED)
        return folder, True
    folder = settings.workdir.resolve()
    prepare_workdir(folder, OWNED, force=settings.force)
    return folder, False


def _source_path(settings: RehearsalSettings, folder: Path, say: Callable[[str], None]) -> Path:
    source_path = settings.source
    if settings.minimal_source_if_missing and not settings.source.exists():
        source_path = folder / "source.yaml"
        source_path.write_text(MINIMAL_SOURCE)
        say(f"{settings.source} not found here: rehearsing a minimal source definition ({source_path})")
    if settings.images:
        source_path = padded_source(source_path, settings.images, folder / "source.yaml")
        say(f"source padded with {settings.images} synthetic images: {source_path}")
    return source_path


def rehearse(settings: RehearsalSettings, commands: Commands, say: Callable[[str], None]) -> RehearsalResult:
    """Rehearse a whole release (see the module docstring); a :class:`RehearsalError` when a step fails."""
    started = time.monotonic()
    folder, temporary = _work_folder(settings)
    run = _Run(settings, folder, temporary)
    finished = False
    try:
        result = _rehearse(run, commands, say)
        finished = True
    finally:
        run.close(finished)
    return replace(result, seconds={**result.seconds, "total": round(time.monotonic() - started, 3)})


@dataclass(frozen=True)
class _Targets:
    registry: LocalRegistry
    mirrors: list[str]
    multiarch_indexes: int
    keys: ThrowawayKeys | UriKeys
    log: LogServer
    rekor_public_key: Path


def _start_targets(run: _Run, loaded: Source, say: Callable[[str], None]) -> _Targets:
    """The registry (seeded under mirrored names), the throwaway keys and the transparency log."""
    folder, phases = run.folder, run.phases
    say(f"starting docker-registry in {folder / 'registry'}")
    detach = run.settings.keep  # a kept registry outlives the rehearsal (its own session)
    registry: LocalRegistry = timed(phases, "registry", lambda: start_registry(folder / "registry", detach=detach))
    run.registry = registry
    say(f"registry {registry.url} (pid {registry.pid})")
    mirrors = mirror_specs(loaded, registry.host)
    references = loaded.references()
    salt = f"{registry.host} {run.settings.version}"
    artifacts = [entry.reference for entry in loaded.artifacts]
    tick = step_counter(say, "seeded", len(references))
    seeded = timed(phases, "seed", lambda: seed_images(registry.host, references, mirrors, salt=salt,
                                                       artifacts=artifacts, on_pushed=tick))  # fmt: skip
    indexes = sum(1 for image in seeded if image.platforms)
    say(f"seeded {len(seeded)} images ({indexes} multi-arch indexes, {len(set(artifacts))} oci artifacts) "
        "under mirrored names")  # fmt: skip
    key_uri = run.settings.key_uri
    keys: ThrowawayKeys | UriKeys = timed(phases, "keys", lambda: throwaway_keys(folder / "keys")
                                          if key_uri is None else uri_keys(folder / "keys", key_uri))  # fmt: skip
    # An embedded transparency log: every signature gets a Rekor entry whose SET verify-release
    # checks offline with this log's key (kept beside the keys; the log itself ends with the run).
    log = run.log = LogServer().start()
    rekor_public_key = folder / "keys" / "rekor.pub"
    rekor_public_key.write_bytes(log.public_key_pem())
    say(f"transparency log {log.url} (Rekor v1 API)")
    return _Targets(registry, mirrors, indexes, keys, log, rekor_public_key)


def _rehearse(run: _Run, commands: Commands, say: Callable[[str], None]) -> RehearsalResult:
    settings, folder, phases, version = run.settings, run.folder, run.phases, run.settings.version
    source_path = _source_path(settings, folder, say)
    loaded = _read_source(source_path)
    revision, from_git = git_revision_or_placeholder(settings.source)
    if not from_git:
        say(f"not in a git checkout: recording the placeholder revision {revision}")

    targets = _start_targets(run, loaded, say)
    registry, mirrors, keys, log = targets.registry, targets.mirrors, targets.keys, targets.log
    binary_args: list[str] = []
    if loaded.binaries:
        # The binaries' urls (github.com, …) are read from a local server of synthetic bytes, as images are
        # read from the local registry under mirrored names: the vector keeps the original urls.
        server = run.stack.enter_context(BinaryServer(salt=f"{registry.host} {version}"))
        specs = binary_mirror_specs([binary.url for binary in loaded.binaries], server.url)
        binary_args = [arg for spec in specs for arg in ("--binary-mirror", spec)]
        say(f"binaries: {len(loaded.binaries)} urls served from {server.url}")
    rekor_public_key, references = targets.rekor_public_key, loaded.references()
    release_dir = folder / "releases"
    repository = f"{registry.host}/{ARTIFACT_REPOSITORY}"
    mirror_args = [arg for spec in mirrors for arg in ("--registry-mirror", spec)]
    keyless = run.stack.enter_context(_keyless_stack(folder / "keys", version)) if settings.keyless else None
    if keyless is not None:
        say(f"keyless: OIDC issuer {keyless.issuer}, Fulcio {keyless.fulcio_url}; identity {keyless.identity}")
    signing = rehearsal_signing(run.stack, folder / "keys", log, rekor_public_key, settings.rekor_v2,
                                keyless.fulcio_url if keyless is not None else None)  # fmt: skip
    say(signing.description)
    keyless_args = [] if keyless is None else keyless.sign_args
    if keyless is not None and settings.rekor_v2:  # the signing config names Fulcio
        keyless_args = [arg for arg in keyless_args if arg not in ("--fulcio-url", keyless.fulcio_url)]
    release_argv = [
        "release", version, "--source", str(source_path), "--repository", repository,
        "--key", keys.key_argument, "--release-dir", str(release_dir), "--git-revision", revision,
        "--recursive", *signing.sign_args, "--attest", "provenance",
        *mirror_args, *binary_args, *keyless_args,
    ]  # fmt: skip
    scope = {"password": keys.password, "env": keyless.actions_env if keyless is not None else None}
    say("release (the real command, --recursive" + (", --key and --keyless)" if keyless else ")"))
    first = timed(phases, "release", lambda: _run_json(commands, "release", release_argv, **scope))
    verify_argv = [
        "verify-release", f"{repository}:{version}", "--key", str(keys.public_key), *signing.verify_args,
        "--release-dir", str(release_dir), "--require-provenance", *mirror_args,
    ]  # fmt: skip
    # A binary the source pins itself (its sha256 beside its url) has real bytes this machine does not hold:
    # the local server's synthetic ones cannot match, so the download check runs only when nothing is so pinned.
    check = bool(binary_args) and all(binary.digest is None for binary in loaded.binaries)
    say("verify-release (with --require-provenance" + (", --check-binaries)" if check else ")"))
    checked = [*verify_argv, *binary_args, *(["--check-binaries"] if check else [])]
    verified = timed(phases, "verify-release", lambda: _run_json(commands, "verify-release", checked))
    if not verified.get("ok"):
        raise RehearsalError("verify-release did not report success", where="verify-release")
    keyless_outcome = None
    if keyless is not None:
        keyless_outcome = _verify_keyless(run, commands, say, keyless, repository, signing.verify_args, mirror_args)
    say("release again: it must plan nothing")
    again = timed(phases, "rerun", lambda: _run_json(commands, "release (re-run)", release_argv, **scope))
    if again["actions"]:
        kinds = ", ".join(sorted({str(action["kind"]) for action in again["actions"]}))
        raise RehearsalError(
            f"the re-run planned {len(again['actions'])} action(s) ({kinds}); a finished release must plan nothing",
            where="release (re-run)",
            hint="this is a bug: run with --keep and report the plan (release --dry-run)",
        )
    return RehearsalResult(
        version=version,
        source=source_path,
        git_revision=revision,
        images=len(references),
        multiarch_indexes=targets.multiarch_indexes,
        images_signed=sum(1 for action in first["actions"] if action["kind"] == "sign-image"),
        artifacts_signed=sum(1 for action in first["actions"] if action["kind"] == "sign-artifact"),
        vector_signed=any(action["kind"] == "sign-vector" for action in first["actions"]),
        vector_reference=str(parse_reference(first["artifact"])),
        vector_digest=first["artifact_digest"],
        verified_images=len(verified["images"]),
        verified_binaries=len(verified.get("binaries", [])),
        rerun_actions=len(again["actions"]),
        workdir=folder,
        release_dir=release_dir / version,
        files=tuple(sorted(str(path) for path in (release_dir / version).iterdir() if path.is_file())),
        public_key=keys.public_key,
        registry_url=registry.url,
        registry_host=registry.host,
        registry_pid=registry.pid,
        kept=settings.keep,
        temporary=run.temporary,
        mirrors=tuple(mirrors),
        log_url=log.url,
        rekor_public_key=rekor_public_key,
        verify_command=command_line(["release-vector", *verify_argv]),
        timestamp_authority=signing.tsa_url,
        rekor_v2_url=signing.rekor_v2_url,
        keyless=keyless_outcome,
        seconds={**phases, **{f"release.{k}": v for k, v in first["seconds"].items()}},
        provenance=verified.get("provenance"),
    )


def _verify_keyless(
    run: _Run,
    commands: Commands,
    say: Callable[[str], None],
    keyless: _KeylessStack,
    repository: str,
    trust_args: list[str],
    mirror_args: list[str],
) -> KeylessOutcome:
    release_dir = run.folder / "releases"
    argv = [
        "verify-release", f"{repository}:{run.settings.version}", *keyless.verify_args, *trust_args,
        "--release-dir", str(release_dir), *mirror_args,
    ]  # fmt: skip
    if run.settings.rekor_v2 and keyless.chain is not None:  # v3 bundles only: they carry the leaf alone
        argv += ["--ca-intermediates", str(keyless.chain)]
    say("verify-release keyless (--certificate-identity, --certificate-oidc-issuer, --ca-roots, --ct-log-public-key)")
    verified = timed(
        run.phases, "verify-release-keyless", lambda: _run_json(commands, "verify-release (keyless)", argv)
    )
    if not verified.get("ok"):
        raise RehearsalError("keyless verify-release did not report success", where="verify-release (keyless)")
    return KeylessOutcome(
        keyless.identity,
        keyless.issuer,
        keyless.fulcio_url,
        keyless.roots,
        keyless.ct_log_public_key,
        command_line(["release-vector", *argv]),
    )
