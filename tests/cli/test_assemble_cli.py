"""``release-vector assemble`` end to end: a real registry (images under mirrored names), git, files, JSON."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.oci.mirror import parse_mirrors
from pipeline.rehearsal.binary_server import BinaryServer, binary_mirror_specs
from pipeline.vector import MAX_IMAGE_ENTRIES, Source, load_source, read_vector
from tests.conftest import REPO_ROOT, VECTORS, CliResult
from tests.registry_fixtures import RegistryProcess
from tests.test_assemble import mirror_specs, seed_source

Cli = Callable[..., CliResult]
METAL_STACK_FILES = sorted((VECTORS / "metal-stack").glob("release-v*.yaml"))
PROJECT_SOURCE = REPO_ROOT / "release" / "release.yaml"
REV = "b1065585a627ea6678a7ff5b84a88312aaae4b8e"
NO_EPOCH: dict[str, str | None] = {"SOURCE_DATE_EPOCH": None}


def mirror_args(registry: RegistryProcess) -> list[str]:
    args: list[str] = []
    for spec in mirror_specs(registry):
        args += ["--registry-mirror", spec]
    return args


def assemble_args(source: Path, registry: RegistryProcess | None, *extra: str) -> list[str]:
    args = ["assemble", "--source", str(source), "--version", "v0.22.19", "--git-revision", REV]
    if registry is not None:
        args += mirror_args(registry)
    return args + list(extra)


@pytest.fixture
def binaries() -> Iterator[BinaryServer]:
    """A local HTTP server answering every path with synthetic bytes (see pipeline.rehearsal.binary_server)."""
    with BinaryServer(salt="tests") as server:
        yield server


def binary_args(server: BinaryServer, source: Source) -> list[str]:
    specs = binary_mirror_specs([b.url for b in source.binaries], server.url)
    return [arg for spec in specs for arg in ("--binary-mirror", spec)]


def served_digest(server: BinaryServer, url: str) -> str:
    """The digest of what ``server`` answers for ``url`` through binary_args' mirror."""
    scheme, _, rest = url.partition("://")
    return "sha256:" + hashlib.sha256(server.content(f"/{scheme}/{rest}")).hexdigest()


def load_json(text: str) -> Any:
    return json.loads(text)


@pytest.mark.registry
@pytest.mark.parametrize("path", METAL_STACK_FILES, ids=lambda p: p.name)
def test_metal_stack_vectors_assemble(
    cli: Cli, plain_registry: RegistryProcess, binaries: BinaryServer, tmp_path: Path, path: Path
) -> None:
    """Every image, chart and role pinned against the registry (mirrored names), every binary from a local server."""
    source = load_source(path.read_bytes(), path.name)
    pushed = seed_source(plain_registry, source)
    output = tmp_path / "vector.yaml"
    args = assemble_args(path, plain_registry, "--output", str(output), "--json", *binary_args(binaries, source))
    result = cli(*args, env=NO_EPOCH)
    assert result.exit_code == 0, result.stderr
    vector = output.read_bytes()
    report = load_json(result.stdout)
    assert report == {
        "binaries": 5,
        "binary_digests": {b.url: served_digest(binaries, b.url) for b in source.binaries},
        "source": str(path),
        "output": str(output),
        "written": True,
        "resolved": True,
        "image_entries": len(source.images),
        "images": len(source.references()) - 5,
        "oci_artifact_entries": 5,
        "references": len(source.references()),
        "digests": len(pushed),
        "unresolved": [],
        "vector_sha256": "sha256:" + hashlib.sha256(vector).hexdigest(),
    }
    read = read_vector(vector, str(output))
    assert all(image.digest == pushed[image.reference] for image in read.images)
    assert [a.digest for a in read.artifacts] == [pushed[a.reference] for a in read.artifacts] and read.artifacts
    assert len(read.pinned_oci_references()) == len(read.images) + 5 and not read.unpinned()
    assert [b.digest for b in read.binaries] == [served_digest(binaries, b.url) for b in source.binaries]
    assert read.metadata is not None
    assert (read.metadata.version, read.metadata.git_revision, read.metadata.created) == ("v0.22.19", REV, None)
    assert read.metadata.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "assembled" in result.stderr and "digests pinned" in result.stderr
    assert f"{path}:" in result.stderr and "tag but no name" in result.stderr


@pytest.mark.registry
def test_vector_on_stdout_is_byte_identical_across_runs(
    cli: Cli, plain_registry: RegistryProcess, binaries: BinaryServer
) -> None:
    path = METAL_STACK_FILES[-1]
    source = load_source(path.read_bytes(), path.name)
    seed_source(plain_registry, source)
    env: dict[str, str | None] = {"SOURCE_DATE_EPOCH": "1784678400"}
    first = cli(*assemble_args(path, plain_registry, "--concurrency", "1", *binary_args(binaries, source)), env=env)
    second = cli(*assemble_args(path, plain_registry, *binary_args(binaries, source)), env=env)
    assert first.exit_code == 0, first.stderr
    assert first.stdout == second.stdout
    assert 'created: "2026-07-22T00:00:00Z"' in first.stdout
    assert first.stdout.startswith(path.read_text()[:150])  # the first digest: line comes after the first role
    assert "digest: sha256:" in first.stdout and "assembled" not in first.stdout


@pytest.mark.registry
def test_project_release_definition_assembles(cli: Cli, plain_registry: RegistryProcess, tmp_path: Path) -> None:
    source = load_source(PROJECT_SOURCE.read_bytes(), "release/release.yaml")
    pushed = seed_source(plain_registry, source)
    output = tmp_path / "vector.yaml"
    result = cli(*assemble_args(PROJECT_SOURCE, plain_registry, "-o", str(output), "--no-binaries"), env=NO_EPOCH)
    assert result.exit_code == 0, result.stderr
    assert "note: 2 binaries not downloaded (--no-binaries or --no-resolve): their urls get no digest" in result.stderr
    read = read_vector(output.read_bytes(), "v")
    assert len(read.pinned_references()) == len(pushed) < len(read.images)
    assert [b.digest for b in read.binaries] == [None, None]


def test_no_resolve_contacts_no_registry(cli: Cli, tmp_path: Path) -> None:
    output = tmp_path / "vector.yaml"
    args = assemble_args(PROJECT_SOURCE, None, "--no-resolve", "--output", str(output), "--json")
    result = cli(*args, "--registry-mirror", "ghcr.io=127.0.0.1:9/nowhere", env=NO_EPOCH)
    assert result.exit_code == 0, result.stderr
    assert "--no-resolve" in result.stderr and "pins no digests" in result.stderr
    assert b"digest:" not in output.read_bytes()
    assert load_json(result.stdout)["resolved"] is False
    assert load_json(result.stdout)["digests"] == 0


def test_validation_errors_are_listed_at_once(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "release.yaml"
    source.write_text(
        "docker-images:\n  a: {name: ghcr.io/x/a:v1, tag: v1}\n  b: {name: ghcr.io/x/b, tag: ''}\n  a: 1\n"
    )
    result = cli(*assemble_args(source, None))
    assert result.exit_code == 3
    lines = result.stderr.splitlines()
    assert lines[:3] == [
        f"error: image name ghcr.io/x/a:v1 is not a valid repository: expected a repository without tag or digest "
        f"({source}:2)",
        f"error: empty tag for image ghcr.io/x/b ({source}:3)",
        f"error: duplicate key a (first at line 2) ({source}:4)",
    ]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_missing_source_file(cli: Cli, tmp_path: Path) -> None:
    result = cli(*assemble_args(tmp_path / "nope.yaml", None))
    assert result.exit_code == 3
    assert result.stderr.startswith("error: source definition not found")


@pytest.mark.registry
def test_unresolvable_images_are_listed_with_their_lines(
    cli: Cli, plain_registry: RegistryProcess, tmp_path: Path
) -> None:
    ok = "ghcr.io/cli-test/present"
    seed_source(plain_registry, load_source(f"docker-images:\n  a: {{name: {ok}, tag: v1}}\n".encode(), "x"))
    source = tmp_path / "release.yaml"
    source.write_text(
        "docker-images:\n"
        f"  a: {{name: {ok}, tag: v1}}\n"
        "  b: {name: ghcr.io/cli-test/absent, tag: v1}\n"
        "  c: {name: quay.io/cli-test/absent, tag: v2}\n"
    )
    output = tmp_path / "vector.yaml"
    result = cli(*assemble_args(source, plain_registry, "--output", str(output), "--json"))
    assert result.exit_code == 5
    mirrored = parse_mirrors(mirror_specs(plain_registry))
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors[0].startswith("error: cannot resolve image ghcr.io/cli-test/absent:v1 (read at ")
    assert errors[0].endswith(f": manifest not found ({source}:3)")
    assert f"({source}:4)" in errors[1]
    assert errors[2] == "error: 2 of 3 images could not be resolved"
    assert not output.exists()
    report = load_json(result.stdout)
    assert report["written"] is False and report["vector_sha256"] is None
    assert [(u["image"], u["line"]) for u in report["unresolved"]] == [
        ("ghcr.io/cli-test/absent:v1", 3),
        ("quay.io/cli-test/absent:v2", 4),
    ]
    assert str(mirrored.rules[0].target) in errors[0]


def test_git_revision_comes_from_the_checkout(cli: Cli, tmp_path: Path) -> None:
    import git

    checkout = tmp_path / "checkout"
    (checkout / "release").mkdir(parents=True)
    shutil.copy(PROJECT_SOURCE, checkout / "release" / "release.yaml")
    repo = git.Repo.init(checkout)
    repo.index.add(["release/release.yaml"])
    commit = repo.index.commit("release", author=git.Actor("t", "t@example.com"))
    source = checkout / "release" / "release.yaml"
    result = cli("assemble", "--source", str(source), "--version", "v1.0.0", "--no-resolve", env=NO_EPOCH)
    assert result.exit_code == 0, result.stderr
    metadata = yaml.safe_load(result.stdout)["release-vector"]
    assert metadata == {
        "version": "v1.0.0",
        "git-revision": commit.hexsha,
        "source-sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
    }
    assert "uncommitted" not in result.stderr
    source.write_text(source.read_text() + "# changed\n")
    assert "uncommitted changes" in cli("assemble", "--source", str(source), "--version", "v1", "--no-resolve").stderr


def test_a_source_over_the_entry_limit_is_one_line_exit_3(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "release.yaml"
    lines = ["docker-images:"] + [f"  - {{name: ghcr.io/x/c{i}, tag: v1}}" for i in range(MAX_IMAGE_ENTRIES + 1)]
    source.write_text("\n".join(lines) + "\n")
    result = cli("assemble", "--source", str(source), "--version", "v1", "--no-resolve", "--git-revision", "0" * 40)
    assert result.exit_code == 3
    limit = MAX_IMAGE_ENTRIES
    assert result.stderr.splitlines() == [
        f"error: too many image entries: {limit + 1} 'tag' keys, the limit is {limit} ({source})"
    ]
    assert "Traceback" not in result.stderr


def test_outside_a_checkout_asks_for_git_revision(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "release.yaml"
    shutil.copy(PROJECT_SOURCE, source)
    result = cli("assemble", "--source", str(source), "--version", "v1", "--no-resolve")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: not inside a git checkout ({tmp_path})",
        "hint: run inside the release's git checkout, or pass --git-revision REV",
    ]


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--json"], 2, "--json needs --output"),
        (["--registry-mirror", "ghcr.io"], 2, "is not FROM=TO"),
        (["--version", "1.0+x"], 3, "is not usable as a tag"),
        (["--git-revision", "main"], 3, "is not a commit id"),
    ],
)
def test_usage_errors(cli: Cli, extra: list[str], code: int, message: str) -> None:
    result = cli(*assemble_args(PROJECT_SOURCE, None, "--no-resolve", *extra))
    assert result.exit_code == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_bad_source_date_epoch(cli: Cli) -> None:
    result = cli(*assemble_args(PROJECT_SOURCE, None, "--no-resolve"), env={"SOURCE_DATE_EPOCH": "yesterday"})
    assert result.exit_code == 3
    assert "SOURCE_DATE_EPOCH" in result.stderr


def test_help_names_the_options_and_env_vars(cli: Cli) -> None:
    result = cli("assemble", "--help", env={"COLUMNS": "250"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for word in ("--source", "--version", "--git-revision", "--output", "--registry-mirror", "--no-resolve"):
        assert word in text
    for env in ("RELEASE_VECTOR_VERSION", "RELEASE_VECTOR_GIT_REVISION", "RELEASE_VECTOR_REGISTRY_MIRROR"):
        assert env in text


def test_a_binary_over_the_limit_keeps_its_hint(cli: Cli, binaries: BinaryServer, tmp_path: Path) -> None:
    """assemble says what release says: the line, exit 3, and how to raise the limit."""
    source = tmp_path / "release.yaml"
    source.write_text("docker-images: {}\nbinaries:\n  kernel:\n    url: https://downloads.example.com/kernel\n")
    mirror = f"https://downloads.example.com={binaries.url}/dl"
    result = cli(*assemble_args(source, None, "--binary-mirror", mirror, "--binary-size-limit", "10"), env=NO_EPOCH)
    assert result.exit_code == 3, result.stderr
    assert result.stderr.splitlines()[0].endswith(f"({source}:4)")
    assert "hint: raise it with --binary-size-limit BYTES" in result.stderr
    assert "Traceback" not in result.stderr
