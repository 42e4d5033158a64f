"""The embedded local targets of a rehearsal: a registry process, synthetic images, a key pair, a folder.

``release-vector rehearse`` runs the real release against these, on one machine:

- :func:`start_registry`: CNCF Distribution (Debian's ``docker-registry``) on a free 127.0.0.1 port, with
  a temporary config and storage, a clean environment (no secret of ours reaches it) and its own log;
  :meth:`LocalRegistry.stop` ends it. A missing binary is a :class:`RehearsalError` with the install hint.
- :func:`mirror_specs` and :func:`seed_images`: every image of the source definition pushed as a small
  synthetic image under its mirrored name (``ghcr.io/x/y`` at ``127.0.0.1:PORT/ghcr.io/x/y``); every
  second one as a multi-arch OCI index of two platform manifests.
- :func:`padded_source`: the source plus N synthetic images, written as a new file (the source itself
  is never changed).
- :func:`throwaway_keys`: a fresh cosign key pair in the work folder, its password a :class:`Secret`.
- :func:`prepare_workdir`: the work folder, marked as the rehearsal's; a folder it did not make is
  refused unless forced (a rehearsal removes its earlier results there).

Nothing here prints; the rehearsal (:mod:`pipeline.rehearsal.run`) reports progress through its caller.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import yaml

from pipeline.cosign.keys import generate_key_pair
from pipeline.errors import ExitCode, FileConflictError, ReleaseVectorError
from pipeline.http import parallel_map
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from pipeline.oci.client import RegistryClient, RegistryOptions
from pipeline.oci.mirror import parse_mirrors
from pipeline.oci.reference import Reference
from pipeline.secret import Secret
from pipeline.vector import IMAGES_KEY, Source, load_source

DOCKER_REGISTRY: Path = Path(shutil.which("docker-registry") or "/usr/bin/docker-registry")
"""The registry binary (tests point this elsewhere to see the missing-binary error)."""
INSTALL_HINT: Final = "run `make install`, or `apt-get install docker-registry` (Debian's CNCF Distribution)"
STARTUP_TIMEOUT: Final = 20.0
PLACEHOLDER_REVISION: Final = "0" * 40
PADDING_GROUP: Final = "rehearsal-padding"
PLATFORMS: Final = (("linux", "amd64"), ("linux", "arm64"))


class RehearsalError(ReleaseVectorError):
    """The rehearsal's own set-up failed (registry binary, start-up, seeding), or a rehearsed step misbehaved."""

    exit_code = ExitCode.REGISTRY


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the registry process -------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalRegistry:
    """A running ``docker-registry``: ``host`` goes into references (``127.0.0.1:PORT/repo``)."""

    host: str
    url: str
    workdir: Path
    storage: Path
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False, compare=False)

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())


def registry_config(port: int, storage: Path) -> dict[str, Any]:
    return {
        "version": "0.1",
        "log": {"level": "warn", "accesslog": {"disabled": True}, "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
        "health": {"storagedriver": {"enabled": False}},
    }


def _wait_ready(registry: LocalRegistry, timeout: float) -> str | None:
    """None once ``/v2/`` answers; else why not."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if registry.process.poll() is not None:
                return f"docker-registry exited at start: {registry.log_tail() or 'no log output'}"
            try:
                if client.get(f"{registry.url}/v2/").status_code in (200, 401):
                    return None
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    return f"docker-registry did not answer within {timeout:g} s: {registry.log_tail() or 'no log output'}"


def start_registry(workdir: Path, *, detach: bool = False, timeout: float = STARTUP_TIMEOUT) -> LocalRegistry:
    """``docker-registry serve`` on a free 127.0.0.1 port, storage under ``workdir``; waits until it answers.

    ``detach``: its own session, so it outlives the rehearsal (``--keep``) and a terminal's Ctrl-C.
    """
    binary = DOCKER_REGISTRY
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise RehearsalError("the docker-registry binary is not installed", where=str(binary), hint=INSTALL_HINT)
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    # A clean environment: no REGISTRY_* overrides from the caller, no password or token of ours.
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(workdir)}
    problem = ""
    for _ in range(3):
        port = free_port()
        config = workdir / "config.yml"
        config.write_text(json.dumps(registry_config(port, storage), indent=2))  # JSON is YAML
        log = workdir / "registry.log"
        with log.open("ab") as log_file:
            process = subprocess.Popen(
                [str(binary), "serve", str(config)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=workdir,
                start_new_session=detach,
            )
        registry = LocalRegistry(f"127.0.0.1:{port}", f"http://127.0.0.1:{port}", workdir, storage, log, process)
        problem = _wait_ready(registry, timeout) or ""
        if not problem:
            return registry
        registry.stop()
        if "address already in use" not in problem:
            break
    raise RehearsalError(problem, where=str(binary), hint=f"see {workdir / 'registry.log'}")


# --- the source, its mirrors and synthetic images --------------------------------------------------


def mirror_specs(source: Source, host: str) -> list[str]:
    """``REGISTRY=HOST/REGISTRY`` for every registry the source names (``--registry-mirror`` values)."""
    registries = dict.fromkeys(ref.registry for ref in source.references())
    return [f"{registry}={host}/{registry}" for registry in registries]


def padded_source(source_path: Path, count: int, output: Path) -> Path:
    """The source definition plus ``count`` synthetic images under ``docker-images.rehearsal-padding``.

    Written to ``output`` (the source file is not changed); its comments are not carried over.
    """
    data = source_path.read_bytes()
    load_source(data, str(source_path))  # every problem of the source is reported as it would be
    document = yaml.safe_load(data) or {}
    images = document.setdefault(IMAGES_KEY, {})
    if not isinstance(images, dict):  # pragma: no cover - load_source accepted it, so it is a mapping
        raise RehearsalError(f"{IMAGES_KEY} is not a mapping", where=str(source_path))
    images[PADDING_GROUP] = {
        "synthetic": {
            f"image-{index:04d}": {
                "name": f"ghcr.io/rehearsal/synthetic-{index:04d}",
                "repository": "https://example.invalid/rehearsal",
                "tag": f"v1.{index}.0",
            }
            for index in range(count)
        }
    }
    header = f"# generated by release-vector rehearse: {source_path} plus {count} synthetic images\n"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False))
    return output


MINIMAL_SOURCE: Final = """\
# generated by release-vector rehearse: a minimal source definition (no release/release.yaml here)
docker-images:
  rehearsal:
    app:
      api:
        name: ghcr.io/rehearsal/api
        tag: v1.0.0
      worker:
        name: ghcr.io/rehearsal/worker
        tag: v1.0.0
    third-party:
      base:
        name: docker.io/library/python
        tag: 3.11-slim-bookworm
"""


@dataclass(frozen=True)
class SeededImage:
    reference: Reference  # the name the source uses
    mirrored: Reference  # where it lives in the local registry
    digest: str
    platforms: int  # 0: a single image manifest; else an index of this many


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


# What `helm push` writes (a chart is an OCI artifact: this config and one chart layer); the rehearsal seeds
# every OCI artifact of the source (charts, Ansible roles) in this shape.
HELM_CONFIG: Final = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART_LAYER: Final = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def _push_manifest(
    client: RegistryClient, ref: Reference, layer: bytes, platform: str | None, *, artifact: bool = False
) -> tuple[bytes, str]:
    if artifact:
        config = _compact({"apiVersion": "v2", "name": ref.repository.rsplit("/", 1)[-1], "version": ref.tag or "0"})
        config_type, layer_type = HELM_CONFIG, HELM_CHART_LAYER
    else:
        config = _compact({"architecture": platform or "amd64", "os": "linux", "rootfs": {"type": "layers"}})
        config_type, layer_type = mediatypes.OCI_CONFIG, mediatypes.OCI_LAYER_TAR_GZIP
    client.upload_blob(ref, config)
    client.upload_blob(ref, layer)
    manifest = _compact(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": digests.compute(config), "size": len(config)},
            "layers": [{"mediaType": layer_type, "digest": digests.compute(layer), "size": len(layer)}],
        }
    )
    tag = ref.tag if platform is None else None
    target = ref if tag is not None else ref.with_digest(digests.compute(manifest))
    return manifest, client.put_manifest(target, None, manifest, mediatypes.OCI_MANIFEST)


def _push_index(client: RegistryClient, ref: Reference, seed: str) -> str:
    entries = []
    for os_name, arch in PLATFORMS:
        manifest, digest = _push_manifest(client, ref, f"{seed} {os_name}/{arch}".encode(), arch)
        entries.append(
            {
                "mediaType": mediatypes.OCI_MANIFEST,
                "digest": digest,
                "size": len(manifest),
                "platform": {"os": os_name, "architecture": arch},
            }
        )
    index = _compact({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": entries})
    return client.put_manifest(ref, None, index, mediatypes.OCI_INDEX)


def seed_images(
    host: str,
    references: Iterable[Reference],
    specs: list[str],
    *,
    salt: str = "",
    multiarch_every: int = 2,
    concurrency: int = 8,
    artifacts: Iterable[Reference] = (),
    on_pushed: Callable[[], None] | None = None,
) -> list[SeededImage]:
    """Push a small distinct image for each reference at its mirrored name; every ``multiarch_every``-th
    (the 2nd, 4th, …) as an OCI index of two platform manifests. ``salt`` makes the content distinct.
    The references in ``artifacts`` (the source's OCI artifacts) get a Helm-chart-shaped manifest instead."""
    oci_artifacts = frozenset(artifacts)
    mirrors = parse_mirrors(specs)
    wanted = list(dict.fromkeys(references))
    with RegistryClient(RegistryOptions(max_connections=concurrency)) as client:

        def push(item: tuple[int, Reference]) -> SeededImage:
            number, ref = item
            mirrored = mirrors.apply(ref)
            if mirrored.registry != host:
                raise RehearsalError("image is not mirrored to the rehearsal registry", where=str(ref))
            seed = f"rehearsal {salt} {ref}"
            if ref in oci_artifacts:
                _, digest = _push_manifest(client, mirrored, seed.encode(), None, artifact=True)
                return SeededImage(ref, mirrored, digest, 0)
            if multiarch_every and number % multiarch_every == multiarch_every - 1:
                seeded = SeededImage(ref, mirrored, _push_index(client, mirrored, seed), len(PLATFORMS))
            else:
                seeded = SeededImage(ref, mirrored, _push_manifest(client, mirrored, seed.encode(), None)[1], 0)
            if on_pushed is not None:
                on_pushed()
            return seeded

        return parallel_map(push, list(enumerate(wanted)), concurrency=max(1, concurrency))


# --- keys and the work folder -----------------------------------------------------------------------


@dataclass(frozen=True)
class ThrowawayKeys:
    private_key: Path
    public_key: Path
    password: Secret = field(repr=False)

    @property
    def key_argument(self) -> str:
        """What ``release --key`` is given."""
        return str(self.private_key)


def throwaway_keys(directory: Path) -> ThrowawayKeys:
    """A fresh cosign key pair (``cosign.key`` mode 0600, ``cosign.pub``) with a random password."""
    password = Secret(secrets.token_urlsafe(24))
    pair = generate_key_pair(password)
    directory.mkdir(parents=True, exist_ok=True)
    private, public = directory / "cosign.key", directory / "cosign.pub"
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pair.private_pem.reveal())
    finally:
        os.close(fd)
    public.write_bytes(pair.public_pem)
    return ThrowawayKeys(private, public, password)


def git_revision_or_placeholder(source_path: Path) -> tuple[str, bool]:
    """(HEAD of the checkout holding the source, True), or (a fixed placeholder, False) outside git."""
    from pipeline.assemble import git_revision

    try:
        return git_revision(source_path.resolve()).hexsha, True
    except ReleaseVectorError:
        return PLACEHOLDER_REVISION, False
    except Exception:  # GitPython without a git executable, say: a rehearsal still works
        return PLACEHOLDER_REVISION, False


WORKDIR_MARKER: Final = ".release-vector-rehearsal"
"""The file that marks a work folder as a rehearsal's own: only there are earlier results removed."""
_MARKER_TEXT: Final = "made by release-vector rehearse: it removes and rewrites its files in this folder\n"


def reset_workdir(workdir: Path, names: Iterable[str]) -> None:
    """Remove what an earlier rehearsal left in ``workdir`` under these names (never anything else)."""
    for name in names:
        path = workdir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def prepare_workdir(workdir: Path, names: Iterable[str], *, force: bool = False) -> None:
    """Make ``workdir`` the rehearsal's: created if missing, marked, and cleared of ``names`` from an
    earlier rehearsal.

    A folder that holds anything but has no marker is someone else's (a key, a release folder): it is
    refused with :class:`FileConflictError` before anything is touched, unless ``force``.
    """
    if workdir.exists() and not workdir.is_dir():
        raise FileConflictError("the work folder is not a folder", where=str(workdir), hint="choose another --workdir")
    marker = workdir / WORKDIR_MARKER
    if workdir.is_dir() and not marker.is_file() and any(workdir.iterdir()) and not force:
        raise FileConflictError(
            "the work folder is not empty and was not made by a rehearsal",
            where=str(workdir),
            hint="choose a new or empty --workdir, or pass --force to let the rehearsal replace its"
            f" {', '.join(names)} there",
        )
    workdir.mkdir(parents=True, exist_ok=True)
    reset_workdir(workdir, names)
    if not marker.is_file():
        marker.write_text(_MARKER_TEXT)


def timed(phases: dict[str, float], name: str, action: Callable[[], Any]) -> Any:
    """Run ``action`` and record its wall time in ``phases[name]`` (seconds, 3 decimals)."""
    started = time.monotonic()
    try:
        return action()
    finally:
        phases[name] = round(time.monotonic() - started, 3)
