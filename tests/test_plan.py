"""build_plan: only what is missing, always in the safe order."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import ConflictError
from pipeline.plan import DesiredRelease, ImageToSign, ObservedRelease, build_plan
from pipeline.targets.base import AssetState, ReleaseState, WantedAsset, diff_release

IMAGES = (
    ImageToSign("ghcr.io/a/api", "sha256:" + "1" * 64),
    ImageToSign("ghcr.io/a/ui", "sha256:" + "2" * 64),
    ImageToSign("ghcr.io/a/api", "sha256:" + "1" * 64),  # listed twice in the vector
)
ASSETS = (WantedAsset("cosign.pub", b"PUB", "application/x-pem-file"), WantedAsset("release.yaml", b"v: 1\n"))
DESIRED = DesiredRelease(
    version="v1.0.0",
    artifact="ghcr.io/a/releases:v1.0.0",
    artifact_digest="sha256:" + "9" * 64,
    images=IMAGES,
    target="github.com/a/releases",
    assets=ASSETS,
)
ALL_SIGNED = frozenset((i.name, i.digest) for i in IMAGES)


def state(*, exists: bool, draft: bool, assets: dict[str, bytes]) -> ReleaseState:
    held = {
        name: AssetState(name, len(data), "sha256:" + hashlib.sha256(data).hexdigest())
        for name, data in assets.items()
    }
    return ReleaseState("v1.0.0", exists=exists, draft=draft, assets=held, where="github.com/a/releases")


NO_RELEASE = diff_release(state(exists=False, draft=False, assets={}), ASSETS)
PUBLISHED = diff_release(
    state(exists=True, draft=False, assets={"cosign.pub": b"PUB", "release.yaml": b"v: 1\n"}), ASSETS
)


def test_fresh_release_plans_every_write_in_order() -> None:
    plan = build_plan(DESIRED, ObservedRelease(False, False, frozenset(), NO_RELEASE))
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
    plan = build_plan(DESIRED, ObservedRelease(True, True, ALL_SIGNED, PUBLISHED))
    assert plan.is_empty
    assert "nothing to do" in plan.render_text()


def test_draft_with_one_asset_plans_the_rest() -> None:
    draft = diff_release(state(exists=True, draft=True, assets={"cosign.pub": b"PUB"}), ASSETS)
    plan = build_plan(DESIRED, ObservedRelease(True, True, ALL_SIGNED, draft))
    assert [(a.kind, a.target) for a in plan.actions] == [
        ("upload-asset", "release.yaml"),
        ("publish", "github.com/a/releases"),
    ]


def test_published_release_without_our_assets_is_a_conflict() -> None:
    published = diff_release(state(exists=True, draft=False, assets={"cosign.pub": b"PUB"}), ASSETS)
    with pytest.raises(ConflictError, match="published without") as info:
        build_plan(DESIRED, ObservedRelease(True, True, ALL_SIGNED, published))
    assert info.value.hint


def test_no_target_means_registry_actions_only() -> None:
    desired = dataclasses.replace(DESIRED, target=None)
    plan = build_plan(desired, ObservedRelease(False, False, frozenset(), None))
    assert {a.kind for a in plan.actions} == {"push-vector", "sign-vector", "sign-image"}


@given(
    artifact_tagged=st.booleans(),
    artifact_signed=st.booleans(),
    signed=st.sets(st.sampled_from([(i.name, i.digest) for i in IMAGES])),
    exists=st.booleans(),
    held=st.sets(st.sampled_from(["cosign.pub", "release.yaml"])),
)
def test_publish_is_always_last_and_only_with_everything_before_it(
    artifact_tagged: bool, artifact_signed: bool, signed: set[tuple[str, str]], exists: bool, held: set[str]
) -> None:
    contents = {a.name: a.data for a in ASSETS if a.name in held and exists}
    release = diff_release(state(exists=exists, draft=True, assets=contents), ASSETS)
    plan = build_plan(DESIRED, ObservedRelease(artifact_tagged, artifact_signed, frozenset(signed), release))
    kinds = [a.kind for a in plan.actions]
    assert kinds[-1] == "publish" and kinds.count("publish") == 1
    order = ["push-vector", "sign-vector", "sign-image", "create-draft", "upload-asset", "publish"]
    assert kinds == sorted(kinds, key=order.index)
    assert ("create-draft" in kinds) == (not exists)
    assert kinds.count("upload-asset") == 2 - len(contents)
