"""Resolving a source's images to digests: once per image, in a token-friendly order, every failure kept."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from pipeline.assemble import (
    Resolution,
    assemble,
    build_vector,
    git_revision,
    resolve_images,
    resolve_source,
    vector_metadata,
)
from pipeline.errors import AuthError, ErrorList, ExitCode, RegistryError, UsageError
from pipeline.oci import mediatypes
from pipeline.oci.auth import Credential, StaticCredentials
from pipeline.oci.client import Descriptor
from pipeline.oci.mirror import Mirrors, parse_mirrors
from pipeline.oci.reference import Reference, parse_reference
from pipeline.secret import Secret
from pipeline.vector import Source, VectorMetadata, load_source, read_vector
from tests.conftest import VECTORS
from tests.oci.helpers import client, push_image
from tests.registry_fixtures import TOKEN_USERS, RegistryProcess

METAL_STACK_FILES = sorted((VECTORS / "metal-stack").glob("release-v*.yaml"))
REV = "0123456789abcdef0123456789abcdef01234567"
SOURCE_REGISTRIES = ("ghcr.io", "docker.io", "quay.io", "europe-docker.pkg.dev")


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class FakeRegistry:
    """``head_manifest`` from a table; records (start, end) of every call, per thread-safe log."""

    def __init__(
        self,
        known: Iterable[str] = (),
        errors: dict[str, Exception] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.known = set(known)
        self.errors = errors or {}
        self.delay = delay
        self.log: list[tuple[str, str]] = []
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def head_manifest(self, ref: Reference) -> Descriptor | None:
        text = str(ref)
        with self._lock:
            self.calls.append(text)
            self.log.append(("start", text))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            if text in self.errors:
                raise self.errors[text]
            if text not in self.known:
                return None
            return Descriptor(mediatypes.OCI_MANIFEST, digest_of(text), 123)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.log.append(("end", text))


def refs(*texts: str) -> list[Reference]:
    return [parse_reference(t) for t in texts]


# --- with a fake registry -----------------------------------------------------------------------------


def test_each_distinct_image_is_resolved_once() -> None:
    source = load_source(
        b"docker-images:\n"
        b"  a: {name: postgres, tag: v1}\n"
        b"  b: {name: docker.io/library/postgres, tag: v1}\n"
        b"  c: {name: ghcr.io/x/c, tag: v2}\n",
        "release.yaml",
    )
    fake = FakeRegistry({"docker.io/library/postgres:v1", "ghcr.io/x/c:v2"})
    resolution = resolve_source(fake, source)
    assert sorted(fake.calls) == ["docker.io/library/postgres:v1", "ghcr.io/x/c:v2"]
    assert resolution.ok
    assert resolution.digests == {
        parse_reference("postgres:v1"): digest_of("docker.io/library/postgres:v1"),
        parse_reference("ghcr.io/x/c:v2"): digest_of("ghcr.io/x/c:v2"),
    }


def test_mirrors_change_where_images_are_read_not_their_names() -> None:
    mirrors = parse_mirrors(["ghcr.io=127.0.0.1:5000/ghcr.io"])
    fake = FakeRegistry({"127.0.0.1:5000/ghcr.io/x/a:v1", "quay.io/y/b:v2"})
    resolution = resolve_images(fake, refs("ghcr.io/x/a:v1", "quay.io/y/b:v2"), mirrors=mirrors)
    assert sorted(fake.calls) == ["127.0.0.1:5000/ghcr.io/x/a:v1", "quay.io/y/b:v2"]
    assert resolution.digests[parse_reference("ghcr.io/x/a:v1")] == digest_of("127.0.0.1:5000/ghcr.io/x/a:v1")


def test_every_failure_is_collected_with_every_entry_line() -> None:
    text = (
        "docker-images:\n"
        "  a: {name: ghcr.io/x/missing, tag: v1}\n"  # 2
        "  b: {name: ghcr.io/x/ok, tag: v1}\n"  # 3
        "  c: {name: quay.io/y/secret, tag: v1}\n"  # 4
        "  d: {name: ghcr.io/x/missing, tag: v1}\n"  # 5
    )
    source = load_source(text.encode(), "release/release.yaml")
    mirrors = parse_mirrors(["ghcr.io=localhost:5000/g"])
    fake = FakeRegistry(
        {"localhost:5000/g/x/ok:v1"},
        errors={"quay.io/y/secret:v1": AuthError("authentication required", where="quay.io/y/secret:v1")},
    )
    resolution = resolve_source(fake, source, mirrors=mirrors)
    assert not resolution.ok
    assert list(resolution.digests) == [parse_reference("ghcr.io/x/ok:v1")]
    failed = [(image.line, failure.reason) for image, failure in resolution.failed_entries(source)]
    assert failed == [
        (2, "cannot resolve image ghcr.io/x/missing:v1 (read at localhost:5000/g/x/missing:v1): manifest not found"),
        (4, "cannot resolve image quay.io/y/secret:v1: authentication required"),
        (5, "cannot resolve image ghcr.io/x/missing:v1 (read at localhost:5000/g/x/missing:v1): manifest not found"),
    ]
    assert isinstance(resolution.unresolved[0].error, RegistryError)
    assert resolution.unresolved[1].error.exit_code == ExitCode.AUTH
    # a chart or role is named as what it is
    assert resolution.unresolved[1].reason_as("oci artifact").startswith("cannot resolve oci artifact quay.io/y/")
    with pytest.raises(ValueError):
        assemble(source, resolution, VectorMetadata("v1", REV, source.sha256))


def test_build_vector_pins_every_image_through_the_given_client_and_takes_the_epoch_as_a_value() -> None:
    """The core reads no environment: SOURCE_DATE_EPOCH comes in as a value, warnings go to a callback."""
    source = load_source(b"docker-images:\n  a: {name: ghcr.io/x/ok, tag: v1}\n", "release.yaml")
    fake = FakeRegistry({"ghcr.io/x/ok:v1"})
    built = build_vector(fake, source, Path("release.yaml"), "v1", REV.upper(), Mirrors(), source_date_epoch="0")
    assert built.metadata == VectorMetadata("v1", REV, source.sha256, created="1970-01-01T00:00:00Z")
    assert digest_of("ghcr.io/x/ok:v1") in read_vector(built.vector, "vector").pinned_references()[0].digest


def test_build_vector_reports_every_unresolved_image_with_its_line() -> None:
    source = load_source(b"docker-images:\n  a: {name: ghcr.io/x/gone, tag: v1}\n", "release.yaml")
    with pytest.raises(ErrorList) as raised:
        build_vector(FakeRegistry(), source, Path("release.yaml"), "v1", REV, Mirrors())
    assert raised.value.lines()[0].endswith("(release.yaml:2)")


def test_vector_metadata_warns_through_the_callback_on_a_dirty_checkout(tmp_path: Path) -> None:
    git = pytest.importorskip("git")
    repo = git.Repo.init(tmp_path)
    path = tmp_path / "release.yaml"
    path.write_text("docker-images: {}\n")
    repo.index.add([str(path)])
    repo.index.commit("one")
    path.write_text("docker-images: {a: {name: x/y, tag: v1}}\n")
    warnings: list[str] = []
    metadata = vector_metadata(load_source(path.read_bytes(), str(path)), path, "v1", None, on_warning=warnings.append)
    assert metadata.git_revision == repo.head.commit.hexsha and metadata.created is None
    assert warnings == [f"warning: the git checkout has uncommitted changes; recording HEAD {metadata.git_revision}"]


def test_registry_lead_then_repository_leads_then_other_tags() -> None:
    images = [f"reg.example/r{r}:t{t}" for r in range(4) for t in range(3)]
    images += [f"other.example/q{r}:t0" for r in range(3)]
    fake = FakeRegistry(images, delay=0.01)
    resolution = resolve_images(fake, refs(*images), concurrency=8)
    assert resolution.ok and len(resolution.digests) == len(images)
    log = fake.log

    def index(event: str, ref: str) -> int:
        return log.index((event, ref))

    for registry, lead in (("reg.example", "reg.example/r0:t0"), ("other.example", "other.example/q0:t0")):
        others = [r for r in images if r.startswith(registry) and r != lead]
        assert all(index("end", lead) < index("start", r) for r in others), registry
    for r in range(4):
        first = f"reg.example/r{r}:t0"
        assert all(index("end", first) < index("start", f"reg.example/r{r}:t{t}") for t in (1, 2))
    assert fake.max_in_flight > 1  # the rest runs concurrently


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_is_bounded(concurrency: int) -> None:
    images = [f"reg.example/r{i}:v1" for i in range(12)]
    fake = FakeRegistry(images, delay=0.005)
    resolve_images(fake, refs(*images), concurrency=concurrency)
    assert fake.max_in_flight <= concurrency


def test_progress_callback_and_empty_input() -> None:
    seen: list[Reference] = []
    fake = FakeRegistry(["a.example/x:v1"])
    resolve_images(fake, refs("a.example/x:v1"), on_resolved=lambda ref, digest: seen.append(ref))
    assert seen == refs("a.example/x:v1")
    assert resolve_images(fake, []) == Resolution()


def test_unexpected_exceptions_are_not_swallowed() -> None:
    fake = FakeRegistry(errors={"a.example/x:v1": RuntimeError("bug")})
    with pytest.raises(RuntimeError, match="bug"):
        resolve_images(fake, refs("a.example/x:v1"))


# --- git ---------------------------------------------------------------------------------------------


def test_git_revision_of_a_checkout_and_outside_one(tmp_path: Path) -> None:
    import git

    repo = git.Repo.init(tmp_path / "repo")
    (tmp_path / "repo" / "release").mkdir()
    path = tmp_path / "repo" / "release" / "release.yaml"
    path.write_text("docker-images: {}\n")
    with pytest.raises(UsageError, match="no commit yet"):
        git_revision(path)
    repo.index.add([str(path)])
    commit = repo.index.commit("release", author=git.Actor("t", "t@example.com"))
    found = git_revision(path)
    assert (found.hexsha, found.dirty) == (commit.hexsha, False)
    path.write_text("docker-images: {a: 1}\n")
    assert git_revision(path).dirty
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with pytest.raises(UsageError, match="not inside a git checkout") as info:
        git_revision(outside / "release.yaml")
    assert info.value.hint is not None and "--git-revision" in info.value.hint


# --- against a real registry ---------------------------------------------------------------------------

_SEEDED: dict[tuple[str, Reference], str] = {}
_SEED_LOCK = threading.Lock()


def mirror_specs(registry: RegistryProcess, prefix: str = "ms") -> list[str]:
    """``ghcr.io=127.0.0.1:PORT/ms/ghcr.io`` and the same for every registry metal-stack names."""
    return [f"{name}={registry.host}/{prefix}/{name}" for name in SOURCE_REGISTRIES]


def seed(registry: RegistryProcess, references: Iterable[Reference], mirrors: Mirrors) -> dict[Reference, str]:
    """Push a tiny distinct image for each reference at its mirrored name (once per session)."""
    wanted = list(dict.fromkeys(references))
    todo = [ref for ref in wanted if (registry.host, ref) not in _SEEDED]

    def push(ref: Reference) -> tuple[Reference, str]:
        with client() as c:
            _, digest = push_image(c, str(mirrors.apply(ref)), f"synthetic layer of {ref}".encode())
        return ref, digest

    with ThreadPoolExecutor(8) as pool:
        for ref, digest in pool.map(push, todo):
            with _SEED_LOCK:
                _SEEDED[(registry.host, ref)] = digest
    return {ref: _SEEDED[(registry.host, ref)] for ref in wanted}


def seed_source(registry: RegistryProcess, source: Source, prefix: str = "ms") -> dict[Reference, str]:
    return seed(registry, source.references(), parse_mirrors(mirror_specs(registry, prefix)))


@pytest.mark.registry
@pytest.mark.parametrize("path", METAL_STACK_FILES, ids=lambda p: p.name)
def test_metal_stack_vectors_assemble_against_a_registry(plain_registry: RegistryProcess, path: Path) -> None:
    source = load_source(path.read_bytes(), path.name)
    pushed = seed_source(plain_registry, source)
    mirrors = parse_mirrors(mirror_specs(plain_registry))
    with client() as c:
        resolution = resolve_source(c, source, mirrors=mirrors)
    assert resolution.ok, [u.reason for u in resolution.unresolved]
    assert dict(resolution.digests) == pushed
    vector = assemble(source, resolution, VectorMetadata("v0.22.19", REV, source.sha256))
    read = read_vector(vector, "vector")
    assert all(image.digest == pushed[image.reference] for image in read.images)
    assert str(plain_registry.host) not in vector.decode()  # the vector keeps the original names
    assert yaml.safe_load(vector)["docker-images"]["third-party"]["gardener"]["virtual-garden-apiserver"] == {
        "tag": yaml.safe_load(path.read_bytes())["docker-images"]["third-party"]["gardener"][
            "virtual-garden-apiserver"
        ]["tag"]
    }


@pytest.mark.registry
def test_one_token_per_repository(token_registry: RegistryProcess) -> None:
    issuer = token_registry.token_issuer
    assert issuer is not None
    credentials = StaticCredentials(
        {token_registry.host: Credential("admin", Secret(TOKEN_USERS["admin"]), None, "test")}
    )
    names = [f"ghcr.io/tok/r{r}:t{t}" for r in range(5) for t in range(3)]
    mirrors = parse_mirrors([f"ghcr.io={token_registry.host}/assemble"])
    with client(credentials, credential_hosts=token_registry.credential_hosts) as admin:
        for name in names:
            push_image(admin, str(mirrors.apply(parse_reference(name))), name.encode())
    before = len(issuer.requests)
    with client(credentials, credential_hosts=token_registry.credential_hosts) as c:
        resolution = resolve_images(c, refs(*names), mirrors=mirrors, concurrency=8)
    assert resolution.ok
    scopes = sorted(s for request in issuer.requests[before:] for s in request.scopes)
    assert scopes == sorted(f"repository:assemble/tok/r{r}:pull" for r in range(5))


def test_an_image_not_found_outside_the_mirrors_hints_at_the_rule_it_lacks() -> None:
    mirrors = parse_mirrors(["ghcr.io=127.0.0.1:5000/ghcr.io"])
    fake = FakeRegistry({"127.0.0.1:5000/ghcr.io/x/a:v1"})
    resolution = resolve_images(fake, refs("ghcr.io/x/a:v1", "quay.io/y/b:v2", "ghcr.io/x/gone:v1"), mirrors=mirrors)
    hints = {str(failure.reference): failure.error.hint for failure in resolution.unresolved}
    assert hints["quay.io/y/b:v2"] == (
        "no --registry-mirror rule covers quay.io (rules for: ghcr.io); if it is mirrored too, add"
        " quay.io=MIRROR/quay.io"
    )
    assert hints["ghcr.io/x/gone:v1"] is None  # mirrored, and missing at the mirror: no rule to add
