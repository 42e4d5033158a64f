"""The pure part: diff_release decides, read-only, what remains; sync_release follows it."""

from __future__ import annotations

import pytest

from pipeline.errors import ConflictError, InvalidInputError
from pipeline.oci import digest as digests
from pipeline.targets import (
    STARTER,
    AssetState,
    ReleaseState,
    WantedAsset,
    check_version,
    diff_release,
)

A = WantedAsset("cosign.pub", b"key", "application/x-pem-file")
B = WantedAsset("release.yaml", b"vector", "application/yaml")


def asset(
    w: WantedAsset, *, digest: str | None = "same", size: int | None = None, state: str = "uploaded"
) -> AssetState:
    return AssetState(w.name, w.size if size is None else size, w.digest if digest == "same" else digest, state)


def test_nothing_there_means_everything_to_do() -> None:
    diff = diff_release(ReleaseState("v1"), [A, B])
    assert (diff.create_draft, diff.upload, diff.compare, diff.publish, diff.conflicts) == (
        True,
        ("cosign.pub", "release.yaml"),
        (),
        True,
        (),
    )
    assert not diff.done


def test_draft_with_one_asset_and_a_starter() -> None:
    state = ReleaseState(
        "v1", True, True, {"cosign.pub": asset(A), "release.yaml": asset(B, digest=None, state=STARTER)}
    )
    diff = diff_release(state, [A, B])
    assert (diff.create_draft, diff.upload, diff.publish) == (False, ("release.yaml",), True)


def test_draft_complete_only_needs_publishing() -> None:
    diff = diff_release(ReleaseState("v1", True, True, {"cosign.pub": asset(A), "release.yaml": asset(B)}), [A, B])
    assert (diff.create_draft, diff.upload, diff.compare, diff.publish) == (False, (), (), True)


def test_unknown_digest_is_to_compare_unless_the_size_differs() -> None:
    state = ReleaseState(
        "v1", True, True, {"cosign.pub": asset(A, digest=None), "release.yaml": asset(B, digest=None, size=1)}
    )
    diff = diff_release(state, [A, B])
    assert diff.compare == ("cosign.pub",)
    assert [c.name for c in diff.conflicts] == ["release.yaml"]


def test_published_complete_is_done_and_published_partial_is_a_conflict() -> None:
    done = diff_release(ReleaseState("v1", True, False, {"cosign.pub": asset(A), "release.yaml": asset(B)}), [A, B])
    assert done.done
    partial = diff_release(ReleaseState("v1", True, False, {"cosign.pub": asset(A)}, where="here"), [A, B])
    assert not partial.upload and not partial.publish
    with pytest.raises(ConflictError) as caught:
        partial.raise_for_conflicts()
    assert str(caught.value) == "release v1 is published without the asset release.yaml (here)"
    assert caught.value.hint and "immutable" in caught.value.hint


def test_different_digest_is_a_conflict_draft_or_published() -> None:
    for draft in (True, False):
        state = ReleaseState("v1", True, draft, {"cosign.pub": asset(A, digest=digests.compute(b"kez"))})
        diff = diff_release(state, [A])
        assert [c.name for c in diff.conflicts] == ["cosign.pub"]


def test_state_is_frozen() -> None:
    state = ReleaseState("v1", True, True, {"cosign.pub": asset(A)})
    with pytest.raises(TypeError):
        state.assets["x"] = asset(B)  # type: ignore[index]
    assert state.assets["cosign.pub"].complete


def test_names_and_versions_are_checked() -> None:
    assert check_version("v0.22.19-rc.1") == "v0.22.19-rc.1"
    for bad in ("", "..", "../x", "v1/x", "-v1", "v1 2"):
        with pytest.raises(InvalidInputError):
            check_version(bad)
    with pytest.raises(InvalidInputError):
        WantedAsset("../cosign.pub", b"")
