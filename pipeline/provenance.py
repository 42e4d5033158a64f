"""SLSA Provenance v1 for a release (pure): what ``release --attest provenance`` attests on the vector
artifact, and what ``verify-release --require-provenance`` checks against the vector.

The predicate (https://slsa.dev/spec/v1.0/provenance):

* ``buildDefinition.buildType``: :data:`BUILD_TYPE`, naming this project's release build;
* ``externalParameters``: the version, the vector's repository, the source file (path and sha256), the
  registry mirrors and the excluded images, and (inside GitHub Actions) the workflow's repository and ref;
* ``resolvedDependencies``: one resource descriptor per pinned entry of the vector, built by
  :func:`pinned_dependencies` alone (every pinned image, OCI artifact — chart, role — and binary) —
  name the YAML path, ``uri`` the reference or URL, ``digest`` its digest, ``annotations.kind`` what it is;
* ``runDetails.builder.id``: the workflow identity inside GitHub Actions
  (``https://github.com/<owner>/<repo>/.github/workflows/release.yml@<ref>``, from ``GITHUB_WORKFLOW_REF``),
  elsewhere ``local://<user>@<host>`` with ``builder.version.local = "true"``; ``metadata`` start and finish
  times (``SOURCE_DATE_EPOCH`` for both when set, so a re-run attests the same statement).

The statement is signed by the release's signers and stored in its bundle format(s), on the vector digest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from pipeline import __version__
from pipeline.errors import InvalidInputError
from pipeline.sigstore.intoto import SLSA_PROVENANCE_V1
from pipeline.vector import Vector

# A URI of this project that resolves to the build type's definition (docs/buildtypes/release-v1.md): what
# externalParameters and resolvedDependencies mean; a change in meaning gets release-v2.md and a new URI.
BUILD_TYPE: Final = "https://github.com/release-vector/release-vector/blob/main/docs/buildtypes/release-v1.md"
PREDICATE_TYPE: Final = SLSA_PROVENANCE_V1
GITHUB: Final = "https://github.com/"


@dataclass(frozen=True)
class BuildEnvironment:
    """Who builds: the CI's identity (from GitHub Actions' environment) or this machine; the CLI reads it."""

    builder_id: str
    local: bool
    source_repository: str | None = None  # OWNER/REPO
    source_ref: str | None = None  # refs/tags/v1.2.3
    source_revision: str | None = None  # the commit
    invocation_id: str | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str], *, user: str, host: str) -> BuildEnvironment:
        """GitHub Actions (``GITHUB_ACTIONS=true`` and ``GITHUB_WORKFLOW_REF``) or a local build."""
        workflow_ref = env.get("GITHUB_WORKFLOW_REF", "")
        if env.get("GITHUB_ACTIONS") == "true" and workflow_ref:
            server = env.get("GITHUB_SERVER_URL", GITHUB.rstrip("/")).rstrip("/")
            run = env.get("GITHUB_RUN_ID")
            repository = env.get("GITHUB_REPOSITORY") or None
            invocation = (f"{server}/{repository}/actions/runs/{run}/attempts/{env.get('GITHUB_RUN_ATTEMPT', '1')}"
                          if run and repository else None)  # fmt: skip
            return cls(f"{server}/{workflow_ref}", False, repository, env.get("GITHUB_REF") or None,
                       env.get("GITHUB_SHA") or None, invocation)  # fmt: skip
        return cls(f"local://{user}@{host}", True)


@dataclass(frozen=True)
class ProvenanceInputs:
    """What the release knew when it built the vector (all decided before the provenance is made)."""

    version: str
    repository: str  # the vector artifact's repository
    source_path: str
    source_sha256: str
    mirrors: tuple[str, ...] = ()  # FROM=TO
    excludes: tuple[str, ...] = ()
    started: str = ""  # RFC 3339 UTC
    finished: str = ""
    environment: BuildEnvironment = field(default_factory=lambda: BuildEnvironment("local://unknown", True))


def timestamp(epoch: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> str:
    """RFC 3339 UTC seconds: ``SOURCE_DATE_EPOCH`` when set, else now."""
    if epoch and epoch.strip():
        try:
            moment = datetime.fromtimestamp(int(epoch.strip()), UTC)
        except (ValueError, OverflowError, OSError):
            raise InvalidInputError(f"SOURCE_DATE_EPOCH {epoch!r} is not a number of seconds",
                                    where="SOURCE_DATE_EPOCH") from None  # fmt: skip
    else:
        moment = now()
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pinned_dependencies(vector: Vector) -> list[dict[str, object]]:
    """Every pinned entry of the vector as an in-toto resource descriptor, each once per YAML path: the
    images and OCI artifacts (charts, roles, …: :meth:`Vector.pinned_oci_references`), then the binaries by
    URL. The one place that enumerates what a vector pins for provenance."""
    dependencies: list[dict[str, object]] = []
    for pinned in vector.pinned_oci_references():
        entry = pinned.entry
        assert entry.digest is not None  # pinned_oci_references lists pinned entries only
        algorithm, hex_digest = entry.digest.split(":", 1)
        dependencies.append({
            "name": pinned.yaml_path,
            "uri": f"oci://{entry.repository.name}:{entry.tag}",
            "digest": {algorithm: hex_digest},
            "annotations": {"kind": pinned.kind},
        })  # fmt: skip
    for binary in vector.binaries:
        if binary.digest is None:
            continue
        algorithm, hex_digest = binary.digest.split(":", 1)
        dependencies.append({
            "name": binary.yaml_path,
            "uri": binary.url,
            "digest": {algorithm: hex_digest},
            "annotations": {"kind": "binary"},
        })  # fmt: skip
    return dependencies


def provenance_predicate(vector: Vector, inputs: ProvenanceInputs) -> dict[str, object]:
    """The SLSA Provenance v1 predicate (see the module doc)."""
    environment = inputs.environment
    external: dict[str, object] = {
        "version": inputs.version,
        "repository": inputs.repository,
        "source": {"path": inputs.source_path, "digest": {"sha256": inputs.source_sha256}},
        "mirrors": list(inputs.mirrors),
        "excludes": list(inputs.excludes),
    }
    if environment.source_repository is not None:
        external["workflow"] = {"repository": f"{GITHUB}{environment.source_repository}",
                                "ref": environment.source_ref, "revision": environment.source_revision}  # fmt: skip
    builder: dict[str, object] = {"id": environment.builder_id, "version": {"release-vector": __version__}}
    if environment.local:
        builder["version"] = {"release-vector": __version__, "local": "true"}
    metadata: dict[str, object] = {"startedOn": inputs.started, "finishedOn": inputs.finished}
    if environment.invocation_id is not None:
        metadata = {"invocationId": environment.invocation_id, **metadata}
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "resolvedDependencies": pinned_dependencies(vector),
        },
        "runDetails": {"builder": builder, "metadata": metadata},
    }


def without_run_times(payload: bytes) -> object:
    """A statement without its run's times and invocation: two attestations of the same release by the same
    signer that differ only there are the same provenance (a re-run without SOURCE_DATE_EPOCH)."""
    document = json.loads(payload)
    run = document.get("predicate", {}).get("runDetails", {}) if isinstance(document, dict) else {}
    if isinstance(run, dict):
        run.pop("metadata", None)
    return document


# --- verifying ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvenanceExpectations:
    """What ``verify-release --require-provenance`` asks of the provenance beyond its signature."""

    builder_id: str | None = None
    builder_id_regexp: str | None = None
    source_repository: str | None = None  # OWNER/REPO
    source_ref: str | None = None


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def provenance_problems(payload: bytes, vector: Vector, expected: ProvenanceExpectations) -> list[str]:
    """Why a verified provenance statement does not fit the vector and the expectations (empty: it fits)."""
    predicate = _obj(_obj(json.loads(payload)).get("predicate"))
    if not predicate:
        return ["the provenance has no predicate"]
    definition = _obj(predicate.get("buildDefinition"))
    problems: list[str] = []
    if definition.get("buildType") != BUILD_TYPE:
        problems.append(f"the provenance's buildType is {definition.get('buildType')!r}, not {BUILD_TYPE}")
    recorded = _dependency_set(definition.get("resolvedDependencies"))
    pinned = _dependency_set(pinned_dependencies(vector))
    if recorded != pinned:
        missing, extra = sorted(pinned - recorded), sorted(recorded - pinned)
        parts = []
        if missing:
            parts.append("not in the provenance: " + ", ".join(f"{n} {d}" for n, d in missing[:3]))
        if extra:
            parts.append("not pinned by the vector: " + ", ".join(f"{n} {d}" for n, d in extra[:3]))
        problems.append(f"the provenance's resolvedDependencies differ from the vector's pins ({'; '.join(parts)})")
    builder_id = _obj(_obj(predicate.get("runDetails")).get("builder")).get("id")
    if expected.builder_id is not None and builder_id != expected.builder_id:
        problems.append(f"the provenance's builder is {builder_id!r}, not {expected.builder_id!r}")
    if expected.builder_id_regexp is not None and not (
        isinstance(builder_id, str) and re.search(expected.builder_id_regexp, builder_id)
    ):
        problems.append(f"the provenance's builder {builder_id!r} does not match {expected.builder_id_regexp!r}")
    workflow = _obj(_obj(definition.get("externalParameters")).get("workflow"))
    if expected.source_repository is not None and workflow.get("repository") != GITHUB + expected.source_repository:
        problems.append(f"the provenance's source repository is {workflow.get('repository')!r}, not "
                        f"{GITHUB}{expected.source_repository}")  # fmt: skip
    if expected.source_ref is not None and workflow.get("ref") != expected.source_ref:
        problems.append(f"the provenance's source ref is {workflow.get('ref')!r}, not {expected.source_ref!r}")
    return problems


def _dependency_set(value: object) -> set[tuple[str, str]]:
    """(``<yaml path> <uri>``, ``<algorithm>:<hex>``) of each descriptor."""
    found: set[tuple[str, str]] = set()
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict) and isinstance(item.get("digest"), dict):
            for algorithm, hex_digest in sorted(item["digest"].items()):
                found.add((f"{item.get('name')} {item.get('uri')}", f"{algorithm}:{hex_digest}"))
    return found


def summary(payload: bytes) -> dict[str, object]:
    """What ``verify-release --json`` reports of the provenance."""
    predicate = _obj(_obj(json.loads(payload)).get("predicate"))
    run, definition = _obj(predicate.get("runDetails")), _obj(predicate.get("buildDefinition"))
    metadata = _obj(run.get("metadata"))
    return {
        "builder_id": _obj(run.get("builder")).get("id"),
        "build_type": definition.get("buildType"),
        "workflow": _obj(definition.get("externalParameters")).get("workflow"),
        "dependencies": len(definition.get("resolvedDependencies") or []),
        "started": metadata.get("startedOn"),
        "finished": metadata.get("finishedOn"),
    }


__all__: Sequence[str] = [
    "BUILD_TYPE",
    "BuildEnvironment",
    "ProvenanceExpectations",
    "ProvenanceInputs",
    "pinned_dependencies",
    "provenance_predicate",
    "provenance_problems",
]
