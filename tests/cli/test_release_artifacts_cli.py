"""OCI artifacts (Helm charts, Ansible roles) in a release: pinned by assemble, signed by release like images,
checked by verify-release; tampering with one is exit 10 naming the entry and its YAML path."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.oci.mirror import parse_mirrors
from pipeline.oci.reference import parse_reference
from pipeline.rehearsal.binary_server import BinaryServer
from pipeline.vector import load_source, read_vector
from tests.cli.test_release_cli import PASSWORD, REV, keys
from tests.oci.helpers import client as make_client
from tests.oci.helpers import push_image
from tests.registry_fixtures import RegistryProcess
from tests.test_assemble import mirror_specs

__all__ = ["keys"]

SOURCE_TEXT = """\
# a release with an image, a chart and a role
docker-images:
  app:
    api:
      name: ghcr.io/acme/api
      tag: v1.0.0
helm-charts:
  acme:
    control-plane:
      oci: ghcr.io/acme/helm-charts/control-plane   # pulled by tag
      repository: https://charts.acme.example
      tag: v0.8.8
      version: 0.8.8
    http-only:
      repository: https://charts.acme.example
      version: 1.2.3
ansible-roles:
  acme-roles:
    oci: ghcr.io/acme/roles
    repository: https://github.com/acme/roles
    version: v0.28.1
binaries:
  acme:
    kernel:
      url: https://downloads.acme.example/kernel/6.18/acme-kernel  # the kernel
      version: "6.18"
    cli:
      linux: {url: 'https://downloads.acme.example/cli/v1/cli-linux-amd64'}
"""
_COUNTER = itertools.count()


@pytest.fixture
def server() -> Iterator[BinaryServer]:
    with BinaryServer(salt="artifacts", size=50_000) as running:
        yield running


class World:
    """A source with a chart and a role, every reference pushed under its own mirror prefix."""

    def __init__(self, registry: RegistryProcess, tmp_path: Path, server: BinaryServer) -> None:
        self.prefix = f"art{next(_COUNTER)}"
        self.server = server
        self.registry = registry
        self.mirrors = mirror_specs(registry, self.prefix)
        self.repository = registry.ref(f"{self.prefix}/releases")
        self.release_dir = tmp_path / "releases"
        self.source = tmp_path / "release.yaml"
        self.source.write_text(SOURCE_TEXT)
        self.parsed = load_source(self.source.read_bytes(), "release.yaml")
        self.mapped = parse_mirrors(self.mirrors)
        with make_client() as c:
            for ref in self.parsed.references():
                push_image(c, str(self.mapped.apply(ref)), f"{self.prefix} {ref}".encode())

    def mirror_args(self) -> list[str]:
        binaries = [f"https://downloads.acme.example={self.server.url}/acme"]
        return [arg for spec in self.mirrors for arg in ("--registry-mirror", spec)] + [
            arg for spec in binaries for arg in ("--binary-mirror", spec)
        ]

    def release_args(self, key: Path, *extra: str) -> list[str]:
        return ["v1.0.0", "--source", str(self.source), "--repository", self.repository, "--git-revision", REV,
                "--key", str(key), "--release-dir", str(self.release_dir), "--no-tlog-upload",
                *self.mirror_args(), *extra]  # fmt: skip

    def verify_args(self, pub: Path) -> list[str]:
        return [f"{self.repository}:v1.0.0", "--key", str(pub), "--insecure-ignore-tlog",
                "--release-dir", str(self.release_dir), *self.mirror_args()]  # fmt: skip

    def mirrored(self, text: str) -> str:
        return str(self.mapped.apply(parse_reference(text)))


def test_release_signs_charts_and_roles_and_verify_release_checks_them(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, server: BinaryServer
) -> None:
    key, pub = keys
    world = World(plain_registry, tmp_path, server)
    dry = cli("release", *world.release_args(pub, "--dry-run"), "--json")
    assert dry.exit_code == 0, dry.stderr
    kinds = [(a["kind"], a["target"]) for a in json.loads(dry.stdout) if a["kind"].startswith("sign-")]
    assert kinds == [
        ("sign-vector", world.repository),
        ("sign-image", "ghcr.io/acme/api"),
        ("sign-artifact", "ghcr.io/acme/helm-charts/control-plane"),
        ("sign-artifact", "ghcr.io/acme/roles"),
    ]
    released = cli("release", *world.release_args(key), env={"COSIGN_PASSWORD": PASSWORD})
    assert released.exit_code == 0, released.stderr
    assert "1 image and 2 oci artifact signature(s) added" in released.stdout
    vector = read_vector((world.release_dir / "v1.0.0" / "release.yaml").read_bytes(), "release.yaml")
    assert [(p.kind, p.yaml_path) for p in vector.pinned_oci_references()] == [
        ("image", "docker-images.app.api"),
        ("oci-artifact", "helm-charts.acme.control-plane"),
        ("oci-artifact", "ansible-roles.acme-roles"),
    ]
    verified = cli("verify-release", *world.verify_args(pub), "--json")
    assert verified.exit_code == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert [(i["kind"], i["yaml_path"], i["ok"]) for i in report["images"]] == [
        ("image", "docker-images.app.api", True),
        ("oci-artifact", "helm-charts.acme.control-plane", True),
        ("oci-artifact", "ansible-roles.acme-roles", True),
    ]
    assert "3 of 3 images (incl. 2 oci artifacts) ok" in verified.stderr
    again = cli("release", *world.release_args(key), "--json", env={"COSIGN_PASSWORD": PASSWORD})
    assert again.exit_code == 0 and json.loads(again.stdout)["actions"] == []


def test_a_re_tagged_chart_and_a_deleted_role_signature_fail_naming_entry_and_yaml_path(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, server: BinaryServer
) -> None:
    key, pub = keys
    world = World(plain_registry, tmp_path, server)
    # the legacy layout alone: deleting the role's .sig then leaves it with no signature at all
    released = cli("release", *world.release_args(key), "--bundle-format", "legacy", env={"COSIGN_PASSWORD": PASSWORD})
    assert released.exit_code == 0, released.stderr
    assert cli("verify-release", *world.verify_args(pub)).exit_code == 0

    # the chart's tag re-pointed at other content
    with make_client() as c:
        push_image(c, world.mirrored("ghcr.io/acme/helm-charts/control-plane:v0.8.8"), b"other chart content")
    result = cli("verify-release", *world.verify_args(pub))
    assert result.exit_code == 10, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "tag moved: v0.8.8 now points at" in errors[0]
    assert "oci artifact ghcr.io/acme/helm-charts/control-plane:v0.8.8@sha256:" in errors[0]
    assert errors[0].endswith(" at helm-charts.acme.control-plane)")
    assert "Traceback" not in result.stderr

    # the role's signature deleted (with --ignore-tags the chart's moved tag is not looked at)
    role = read_vector((world.release_dir / "v1.0.0" / "release.yaml").read_bytes(), "v").artifacts[1]
    assert role.digest is not None
    sig_tag = role.digest.replace(":", "-") + ".sig"
    mirrored = parse_reference(world.mirrored(f"ghcr.io/acme/roles:{sig_tag}"))
    base = f"http://{plain_registry.host}/v2/{mirrored.repository}"
    head = httpx.head(f"{base}/manifests/{sig_tag}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert head.status_code == 200
    deleted = httpx.delete(f"{base}/manifests/{head.headers['Docker-Content-Digest']}")
    assert deleted.status_code == 202, deleted.text
    result = cli("verify-release", *world.verify_args(pub), "--ignore-tags", "--json")
    assert result.exit_code == 10
    failed = [i for i in json.loads(result.stdout)["images"] if not i["ok"]]
    assert [(i["kind"], i["yaml_path"]) for i in failed] == [("oci-artifact", "ansible-roles.acme-roles")]
    plain = cli("verify-release", *world.verify_args(pub), "--ignore-tags")
    assert plain.exit_code == 10
    assert "(oci artifact ghcr.io/acme/roles:v0.28.1@sha256:" in plain.stderr
    assert " at ansible-roles.acme-roles)" in plain.stderr


def test_an_invalid_oci_reference_is_exit_3_with_its_line_and_nothing_pushed(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, server: BinaryServer
) -> None:
    key, _ = keys
    world = World(plain_registry, tmp_path, server)
    world.source.write_text(SOURCE_TEXT.replace("oci: ghcr.io/acme/roles", "oci: 'ghcr.io/Acme Roles'"))
    result = cli("release", *world.release_args(key), env={"COSIGN_PASSWORD": PASSWORD})
    assert result.exit_code == 3
    line = SOURCE_TEXT.splitlines().index("    oci: ghcr.io/acme/roles") + 1
    assert result.stderr.startswith("error: oci 'ghcr.io/Acme Roles' is not a valid repository: ")
    assert result.stderr.splitlines()[0].endswith(f"({world.source}:{line})")
    tags = httpx.get(f"http://{plain_registry.host}/v2/{world.prefix}/releases/tags/list")
    assert tags.status_code == 404  # nothing pushed


def test_a_changed_binary_fails_check_binaries_naming_entry_and_yaml_path(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, server: BinaryServer
) -> None:
    key, pub = keys
    world = World(plain_registry, tmp_path, server)
    released = cli("release", *world.release_args(key), env={"COSIGN_PASSWORD": PASSWORD})
    assert released.exit_code == 0, released.stderr
    vector = read_vector((world.release_dir / "v1.0.0" / "release.yaml").read_bytes(), "v")
    assert [(b.yaml_path, b.digest is not None) for b in vector.binaries] == [
        ("binaries.acme.kernel", True),
        ("binaries.acme.cli.linux", True),
    ]
    text = (world.release_dir / "v1.0.0" / "release.yaml").read_text()
    assert "/acme-kernel  # the kernel\n      digest: sha256:" in text
    assert "cli-linux-amd64', digest: sha256:" in text
    checked = cli("verify-release", *world.verify_args(pub), "--check-binaries", "--json")
    assert checked.exit_code == 0, checked.stderr
    assert [b["ok"] for b in json.loads(checked.stdout)["binaries"]] == [True, True]
    assert "2 of 2 binaries ok" in checked.stderr

    server.put("/acme/kernel/6.18/acme-kernel", b"a kernel with a backdoor")
    assert cli("verify-release", *world.verify_args(pub)).exit_code == 0  # off by default: it is heavy
    result = cli("verify-release", *world.verify_args(pub), "--check-binaries")
    assert result.exit_code == 10
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: verification failed: the bytes changed: the download is sha256:")
    assert errors[0].endswith(
        "(binary https://downloads.acme.example/kernel/6.18/acme-kernel at binaries.acme.kernel)"
    )
    assert "FAILED  binary https://downloads.acme.example/kernel/6.18/acme-kernel" in result.stdout

    # Gone (404) is an answer: it fails (exit 10). Unreachable is no answer: exit 5, as for an image.
    server.missing("/acme/kernel/6.18/acme-kernel")
    gone = cli("verify-release", *world.verify_args(pub), "--check-binaries")
    assert gone.exit_code == 10, gone.stderr
    assert "cannot download it again: download failed: HTTP 404" in gone.stderr
    unreachable = [arg if not arg.startswith("https://downloads.acme.example=") else
                   "https://downloads.acme.example=http://127.0.0.1:9/acme" for arg in world.verify_args(pub)]
    cut_off = cli("verify-release", *unreachable, "--check-binaries", "--json")
    assert cut_off.exit_code == 5, cut_off.stderr
    checks = json.loads(cut_off.stdout)["binaries"]
    assert [(b["ok"], b["problem"], b["unchecked"] is not None) for b in checks] == [(False, None, True)] * 2
    assert "2 could not be checked" in cut_off.stderr and "Traceback" not in cut_off.stderr


FETCH_ERROR = (
    "error: cannot fetch binary https://downloads.acme.example/kernel/6.18/acme-kernel "
    "(read at {server}/acme/kernel/6.18/acme-kernel"
)


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ("url: ftp://downloads.acme.example/k", 3, "error: binary url ftp://downloads.acme.example/k is not an http"),
        ("url: 'https://[::1/k'", 3, "error: binary url https://[::1/k is not a valid URL (Invalid IPv6 URL)"),
        ("url: https://xn--bad-.example/k", 3, "error: binary url https://xn--bad-.example/k has a host name that"),
        ("url: https://downloads.acme.example:99999/k", 3, "error: binary url https://downloads.acme.example:99999/k "
                                                           "is not a valid URL (Port out of range"),
        ("url: https:///k", 3, "error: binary url https:///k has no host"),
        # user info is refused (the vector is published; the password would go to the server) and never shown
        ("url: https://release:hunter2@downloads.acme.example/k", 3,
         "error: binary url https://downloads.acme.example/k holds user info (user:password@)"),
        ("oversize", 3, f"{FETCH_ERROR}): binary too large (50000 bytes; the limit is 1000 bytes)"),
        ("missing", 5, f"{FETCH_ERROR}): download failed: HTTP 404"),
    ],
)
def test_bad_binaries_are_one_line_with_the_yaml_line_and_nothing_is_pushed(
    cli: Any,
    plain_registry: RegistryProcess,
    keys: tuple[Path, Path],
    tmp_path: Path,
    server: BinaryServer,
    change: str,
    code: int,
    message: str,
) -> None:
    key, _ = keys
    world = World(plain_registry, tmp_path, server)
    kernel = "      url: https://downloads.acme.example/kernel/6.18/acme-kernel  # the kernel"
    line = SOURCE_TEXT.splitlines().index(kernel) + 1
    extra: list[str] = []
    if change.startswith("url:"):
        world.source.write_text(SOURCE_TEXT.replace(kernel, f"      {change}"))
    elif change == "oversize":
        extra = ["--binary-size-limit", "1000"]
    else:
        server.missing("/acme/kernel/6.18/acme-kernel")
    result = cli("release", *world.release_args(key, *extra), env={"COSIGN_PASSWORD": PASSWORD})
    assert result.exit_code == code, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(message.replace("{server}", server.url)), result.stderr
    assert first.endswith(f"({world.source}:{line})")
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr + result.stdout
    tags = httpx.get(f"http://{plain_registry.host}/v2/{world.prefix}/releases/tags/list")
    assert tags.status_code == 404  # nothing pushed
    assert not world.release_dir.exists()


def test_a_vector_from_before_artifacts_were_pinned_still_verifies(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, server: BinaryServer
) -> None:
    """An older vector pins only its images: its charts and roles have no digest, so there is nothing to check."""
    key, pub = keys
    world = World(plain_registry, tmp_path, server)
    assert cli("release", *world.release_args(key), env={"COSIGN_PASSWORD": PASSWORD}).exit_code == 0
    lines = (world.release_dir / "v1.0.0" / "release.yaml").read_text().splitlines(keepends=True)
    old = tmp_path / "old.yaml"
    pins = ("tag: v0.8.8", "version: v0.28")
    artifact_digests = [i + 1 for i, line in enumerate(lines) if line.lstrip().startswith(pins)]
    old.write_text("".join(line for i, line in enumerate(lines) if i not in artifact_digests))
    assert len(read_vector(old.read_bytes(), "old").unpinned()) == 2
    pushed = cli("push", str(old), "--repository", world.repository, "--tag", "old", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    digest = json.loads(pushed.stdout)["digest"]
    signed = cli("sign", f"{world.repository}@{digest}", "--key", str(key), "--no-tlog-upload",
                 env={"COSIGN_PASSWORD": PASSWORD})  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    args = [f"{world.repository}:old", "--key", str(pub), "--insecure-ignore-tlog", "--allow-version-mismatch",
            *world.mirror_args(), "--json"]  # fmt: skip
    verified = cli("verify-release", *args)
    assert verified.exit_code == 0, verified.stderr
    assert [i["kind"] for i in json.loads(verified.stdout)["images"]] == ["image"]
