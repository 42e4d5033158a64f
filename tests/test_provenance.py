"""pipeline.provenance (pure): the builder from the environment, the predicate from a real metal-stack vector,
and the checks verify-release --require-provenance makes (dependencies, builder, source)."""

from __future__ import annotations

import json
import re

from pipeline.provenance import (
    BUILD_TYPE,
    BuildEnvironment,
    ProvenanceExpectations,
    ProvenanceInputs,
    pinned_dependencies,
    provenance_predicate,
    provenance_problems,
    timestamp,
    without_run_times,
)
from pipeline.vector import read_vector
from tests.conftest import REPO_ROOT

SOURCE = (REPO_ROOT / "tests" / "vectors" / "metal-stack" / "release-v0.22.19.yaml").read_bytes()
GHA = {"GITHUB_ACTIONS": "true", "GITHUB_WORKFLOW_REF": "acme/p/.github/workflows/release.yml@refs/tags/v1",
       "GITHUB_REPOSITORY": "acme/p", "GITHUB_REF": "refs/tags/v1", "GITHUB_SHA": "b" * 40, "GITHUB_RUN_ID": "7"}


def _pinned_vector() -> bytes:
    """The real metal-stack source with a digest after every image tag (what assemble writes)."""
    counter = iter(range(10_000))
    return re.sub(rb"(\n(\s*)tag: [^\n]+)", lambda m: m.group(1) + b"\n" + m.group(2)
                  + f"digest: sha256:{next(counter):064x}".encode(), SOURCE)  # fmt: skip


def _statement(vector_bytes: bytes, environment: BuildEnvironment) -> bytes:
    vector = read_vector(vector_bytes, "v")
    inputs = ProvenanceInputs("v0.22.19", "ghcr.io/acme/releases", "release.yaml", "c" * 64, ("a=b",), ("docker.io/*",),
                              "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", environment)  # fmt: skip
    return json.dumps({"predicate": provenance_predicate(vector, inputs)}).encode()


def test_the_builder_is_the_workflow_in_github_actions_else_the_local_host() -> None:
    github = BuildEnvironment.from_environment(GHA, user="u", host="h")
    assert github.builder_id == "https://github.com/acme/p/.github/workflows/release.yml@refs/tags/v1"
    assert (github.local, github.source_repository, github.source_ref) == (False, "acme/p", "refs/tags/v1")
    assert github.invocation_id == "https://github.com/acme/p/actions/runs/7/attempts/1"
    local = BuildEnvironment.from_environment({}, user="alice", host="build-1")
    assert (local.builder_id, local.local) == ("local://alice@build-1", True)
    assert timestamp("1775719409") == "2026-04-09T07:23:29Z"


def test_every_pinned_image_and_artifact_is_a_dependency_with_its_yaml_path() -> None:
    vector = read_vector(_pinned_vector(), "v")
    dependencies = pinned_dependencies(vector)
    pinned = vector.pinned_oci_references()
    assert len(dependencies) == len(pinned) > len(vector.images) > 50  # the charts and roles too
    kinds = {str(d["name"]): d["annotations"] for d in dependencies}
    assert all(kinds[p.yaml_path] == {"kind": p.kind} for p in pinned)
    assert {"kind": "oci-artifact"} in kinds.values()
    first = dependencies[0]
    assert first["name"] == vector.images[0].yaml_path and str(first["name"]).startswith("docker-images.")
    assert first["digest"] == {"sha256": "0" * 64} and first["annotations"] == {"kind": "image"}


def test_provenance_checks() -> None:
    vector_bytes = _pinned_vector()
    vector = read_vector(vector_bytes, "v")
    github = BuildEnvironment.from_environment(GHA, user="u", host="h")
    statement = _statement(vector_bytes, github)
    predicate = json.loads(statement)["predicate"]
    assert predicate["buildDefinition"]["buildType"] == BUILD_TYPE
    assert predicate["runDetails"]["builder"] == {"id": github.builder_id, "version": {"release-vector": "0.1.0"}}
    expected = ProvenanceExpectations(github.builder_id, None, "acme/p", "refs/tags/v1")
    assert provenance_problems(statement, vector, expected) == []

    other_builder = ProvenanceExpectations("https://github.com/evil/x/.github/workflows/r.yml@refs/heads/main")
    assert "the provenance's builder is" in provenance_problems(statement, vector, other_builder)[0]
    assert "does not match" in provenance_problems(statement, vector, ProvenanceExpectations(None, "^local://"))[0]

    changed = read_vector(vector_bytes.replace(b"sha256:" + b"0" * 64, b"sha256:" + b"f" * 64, 1), "v")
    [problem] = provenance_problems(statement, changed, ProvenanceExpectations())
    assert problem.startswith("the provenance's resolvedDependencies differ from the vector's pins")
    assert "f" * 64 in problem and "0" * 64 in problem


def test_run_times_do_not_make_another_provenance() -> None:
    vector_bytes = _pinned_vector()
    local = BuildEnvironment.from_environment({}, user="a", host="b")
    one = json.loads(_statement(vector_bytes, local))
    two = json.loads(_statement(vector_bytes, local))
    two["predicate"]["runDetails"]["metadata"]["finishedOn"] = "2030-01-01T00:00:00Z"
    assert without_run_times(json.dumps(one).encode()) == without_run_times(json.dumps(two).encode())
    two["predicate"]["buildDefinition"]["externalParameters"]["version"] = "v2"
    assert without_run_times(json.dumps(one).encode()) != without_run_times(json.dumps(two).encode())


def test_pinned_binaries_are_dependencies_by_url() -> None:
    text = (
        "docker-images:\n  a:\n    - name: ghcr.io/x/a\n      tag: v1\n      digest: sha256:" + "1" * 64 + "\n"
        "binaries:\n  kernel:\n    url: https://example.org/kernel\n    digest: sha256:" + "2" * 64 + "\n"
        "  initrd:\n    url: https://example.org/initrd\n"
    )
    dependencies = pinned_dependencies(read_vector(text.encode(), "v"))
    assert dependencies[-1] == {
        "name": "binaries.kernel",
        "uri": "https://example.org/kernel",
        "digest": {"sha256": "2" * 64},
        "annotations": {"kind": "binary"},
    }
    assert len(dependencies) == 2  # a binary without a digest (assembled with --no-binaries) pins nothing


def test_the_build_type_is_a_uri_of_this_project_that_resolves_to_its_definition() -> None:
    import tomllib

    source = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["urls"]["Source"]
    prefix = f"{source}/blob/main/"
    assert BUILD_TYPE.startswith(prefix)
    definition = (REPO_ROOT / BUILD_TYPE.removeprefix(prefix)).read_text()
    assert BUILD_TYPE in definition
    for documented in ("externalParameters", "resolvedDependencies", "builder.id", "local://<user>@<host>"):
        assert documented in definition
    assert BUILD_TYPE in (REPO_ROOT / "README.md").read_text()


def test_the_builder_on_github_enterprise_and_without_a_workflow_ref() -> None:
    enterprise = {**GHA, "GITHUB_SERVER_URL": "https://git.example.com"}
    ghes = BuildEnvironment.from_environment(enterprise, user="u", host="h")
    assert ghes.builder_id == "https://git.example.com/acme/p/.github/workflows/release.yml@refs/tags/v1"
    # GitHub Actions without a workflow ref (no identity to name): a local build, and marked so
    bare = BuildEnvironment.from_environment({"GITHUB_ACTIONS": "true"}, user="runner", host="fv-az1")
    assert (bare.builder_id, bare.local) == ("local://runner@fv-az1", True)
