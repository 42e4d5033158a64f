"""build_plan: only what is missing, always in the safe order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import ConflictError
from pipeline.plan import (
    Asset,
    DesiredRelease,
    ImageToSign,
    ObservedRelease,
    build_plan,
)

IMAGES = (
    ImageToSign("ghcr.io/a/api", "sha256:" + "1" * 64),
    ImageToSign("ghcr.io/a/ui", "sha256:" + "2" * 64),
    ImageToSign("ghcr.io/a/api", "sha256:" + "1" * 64),  # listed twice in the vector
)
ASSETS = (Asset("cosign.pub", b"PUB", "application/x-pem-file"), Asset("release.yaml", b"v: 1\n", "application/yaml"))
DESIRED = DesiredRelease(
    version="v1.0.0",
    artifact="ghcr.io/a/releases:v1.0.0",
    artifact_digest="sha256:" + "9" * 64,
    images=IMAGES,
    target="github.com/a/releases",
    assets=ASSETS,
)
NOTHING = ObservedRelease(False, False, frozenset(), False, False, {})
EVERYTHING = ObservedRelease(
    True,
    True,
    frozenset((i.name, i.digest) for i in IMAGES),
    True,
    True,
    {"cosign.pub": "same", "release.yaml": "same"},
)


def test_fresh_release_plans_every_write_in_order() -> None:
    plan = build_plan(DESIRED, NOTHING)
    assert [a.kind for a in plan.actions] == [
        "push-vector",
        "sign-vector",
        "sign-image",
        "sign-image",
        "create-draft",
        "upload-asset",
        "upload-asset",
        "publish",
    ]
    assert plan.count("sign-image") == 2, "an image listed twice is signed once"
    assert plan.to_json()[0] == {
        "kind": "push-vector",
        "target": "ghcr.io/a/releases:v1.0.0",
        "digest": DESIRED.artifact_digest,
        "detail": "",
    }


def test_complete_release_plans_nothing() -> None:
    plan = build_plan(DESIRED, EVERYTHING)
    assert plan.is_empty
    assert "nothing to do" in plan.render_text()


def test_draft_with_one_asset_plans_the_rest() -> None:
    observed = ObservedRelease(True, True, EVERYTHING.signed_images, True, False, {"cosign.pub": "same"})
    plan = build_plan(DESIRED, observed)
    assert [(a.kind, a.target) for a in plan.actions] == [
        ("upload-asset", "github.com/a/releases release.yaml"),
        ("publish", "github.com/a/releases"),
    ]


def test_published_release_without_our_assets_is_a_conflict() -> None:
    observed = ObservedRelease(True, True, EVERYTHING.signed_images, True, True, {"cosign.pub": "same"})
    with pytest.raises(ConflictError, match="already published") as info:
        build_plan(DESIRED, observed)
    assert info.value.hint


def test_no_target_means_registry_actions_only() -> None:
    desired = DesiredRelease(**{**DESIRED.__dict__, "target": None})
    assert {a.kind for a in build_plan(desired, NOTHING).actions} == {"push-vector", "sign-vector", "sign-image"}


@given(
    artifact_tagged=st.booleans(),
    artifact_signed=st.booleans(),
    signed=st.sets(st.sampled_from([(i.name, i.digest) for i in IMAGES])),
    exists=st.booleans(),
    assets=st.dictionaries(st.sampled_from(["cosign.pub", "release.yaml"]), st.sampled_from(["same", "different"])),
)
def test_publish_is_always_last_and_only_with_everything_before_it(
    artifact_tagged: bool, artifact_signed: bool, signed: set[tuple[str, str]], exists: bool, assets: dict[str, str]
) -> None:
    observed = ObservedRelease(artifact_tagged, artifact_signed, frozenset(signed), exists, False, assets)  # type: ignore[arg-type]
    plan = build_plan(DESIRED, observed)
    kinds = [a.kind for a in plan.actions]
    assert kinds[-1] == "publish" and kinds.count("publish") == 1
    order = ["push-vector", "sign-vector", "sign-image", "create-draft", "upload-asset", "publish"]
    assert kinds == sorted(kinds, key=order.index)
    assert ("create-draft" in kinds) == (not exists)
