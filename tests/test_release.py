"""pipeline/release.py: release and verify-release as core functions (end to end: tests/cli/test_release_cli.py)."""

from __future__ import annotations

import pytest

from pipeline.apply import ReleaseRequest
from pipeline.artifact import ArtifactAnnotations, make_artifact
from pipeline.oci.reference import parse_repository
from pipeline.plan import Action, DesiredRelease, ImageToSign, Plan
from pipeline.release import (
    ReleasePorts,
    ReleaseResult,
    ReleaseSettings,
    check_version_tag,
)

DIGEST = "sha256:" + "a" * 64


def result(keyless: tuple[str, str] | None) -> ReleaseResult:
    vector = b"docker-images: {}\n"
    request = ReleaseRequest(
        version="v1",
        vector=vector,
        artifact=make_artifact(vector, ArtifactAnnotations(version="v1")),
        repository=parse_repository("registry.example/releases"),
        public_key_pem=None,
        keyless_identity=keyless,
    )
    images = (ImageToSign("ghcr.io/x/a", DIGEST),)
    desired = DesiredRelease("v1", "registry.example/releases:v1", request.artifact.digest, images, None, ())
    plan = Plan("v1", (Action("sign-image", "ghcr.io/x/a", DIGEST),))
    return ReleaseResult(request, desired, plan, False, {"assemble": 0.1, "plan": 0.2, "apply": 0.3})


def test_the_result_json_keeps_the_shape_release_json_prints() -> None:
    document = result(("ci@example.com", "https://issuer.example")).to_json()
    assert list(document) == ["version", "artifact", "artifact_digest", "images", "actions", "target", "keyless",
                              "seconds", "oci_artifacts", "published", "signatures_in", "signed",
                              "unsigned"]  # fmt: skip
    assert document["keyless"] == {"identity": "ci@example.com", "issuer": "https://issuer.example"}
    assert document["images"] == 1 and document["seconds"] == {"assemble": 0.1, "plan": 0.2, "apply": 0.3}
    assert result(None).to_json()["keyless"] is None
    assert result(None).pinned.startswith("registry.example/releases:v1@sha256:")


def test_settings_are_apart_from_the_ports() -> None:
    """Concurrency, format, created time and mirrors are settings; the ports hold only I/O."""
    assert {"mirrors", "concurrency", "bundle_format", "created"} <= set(ReleaseSettings.__dataclass_fields__)
    assert not {"mirrors", "concurrency", "bundle_format", "created"} & set(ReleasePorts.__dataclass_fields__)
    assert ReleaseSettings().concurrency == 16


@pytest.mark.parametrize("asked", ["v3.0.0", "latest"])
def test_version_check_is_pure(asked: str) -> None:
    assert not check_version_tag(asked, "v1.0.0", None, allow_mismatch=False).ok
    assert check_version_tag(asked, "v1.0.0", None, allow_mismatch=True).ok
    assert check_version_tag(None, "v1.0.0", None, allow_mismatch=False).ok  # by digest: nothing to compare
    assert check_version_tag("v1.0.0", "v1.0.0", "v1.0.0", allow_mismatch=False).ok
    annotated = check_version_tag("v1.0.0", "v1.0.0", asked, allow_mismatch=False)
    assert not annotated.ok and "org.opencontainers.image.version" in annotated.detail
    assert not check_version_tag("v1.0.0", None, None, allow_mismatch=False).ok  # nothing recorded to compare
