"""ReleaseDirTarget: DIR/VERSION/ with draft-then-publish semantics and a release.json record."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from pipeline.errors import ConflictError, ExitCode, InvalidInputError
from pipeline.targets import ReleaseDirTarget, ReleaseHandle, ReleaseTarget, WantedAsset, diff_release, sync_release

PUB = b"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"
VECTOR = b"version: v1.2.3\n"
WANTED = [
    WantedAsset("cosign.pub", PUB, "application/x-pem-file"),
    WantedAsset("release.yaml", VECTOR, "application/yaml"),
]
V = "v1.2.3"


def sync(target: ReleaseDirTarget, wanted: list[WantedAsset] = WANTED) -> None:
    sync_release(target, V, wanted, target_commitish="abc", name=V, body="notes")


def record(root: Path) -> dict[str, object]:
    data = json.loads((root / V / "release.json").read_text())
    assert isinstance(data, dict)
    return data


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_fresh_release_writes_assets_and_a_published_record(tmp_path: Path) -> None:
    target = ReleaseDirTarget(tmp_path)
    assert isinstance(target, ReleaseTarget)
    assert target.describe() == f"dir:{tmp_path}"
    steps: list[str] = []
    sync_release(target, V, WANTED, target_commitish=None, name=V, body="", progress=steps.append)
    assert (tmp_path / V / "cosign.pub").read_bytes() == PUB
    assert (tmp_path / V / "release.yaml").read_bytes() == VECTOR
    assert record(tmp_path) == {
        "version": V,
        "state": "published",
        "assets": {
            "cosign.pub": {"sha256": sha(PUB), "size": len(PUB)},
            "release.yaml": {"sha256": sha(VECTOR), "size": len(VECTOR)},
        },
    }
    assert sorted(p.name for p in (tmp_path / V).iterdir()) == ["cosign.pub", "release.json", "release.yaml"]
    assert steps == ["uploaded: cosign.pub", "uploaded: release.yaml", f"published {V} on dir:{tmp_path}"]
    state = target.observe(V)
    assert state.published and diff_release(state, WANTED).done
    assert state.assets["cosign.pub"].digest == "sha256:" + sha(PUB)


def test_rerun_after_success_changes_nothing(tmp_path: Path) -> None:
    target = ReleaseDirTarget(tmp_path)
    sync(target)
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / V).iterdir()}
    sync(target)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / V).iterdir()} == stamps


def test_nothing_observed_before_the_first_run(tmp_path: Path) -> None:
    state = ReleaseDirTarget(tmp_path / "absent").observe(V)
    assert not state.exists and not state.published
    diff = diff_release(state, WANTED)
    assert (diff.create_draft, diff.upload, diff.publish) == (True, ("cosign.pub", "release.yaml"), True)


def test_interrupted_run_stays_a_draft_and_a_rerun_completes(tmp_path: Path) -> None:
    target = ReleaseDirTarget(tmp_path)
    handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
    assert target.upload_asset(handle, "cosign.pub", PUB, "application/x-pem-file") is True
    # crash here: no publish
    assert record(tmp_path)["state"] == "draft"
    assert target.read_asset(V, "cosign.pub") is None  # not published
    assert target.read_asset(V, "cosign.pub", published_only=False) == PUB
    diff = diff_release(target.observe(V), WANTED)
    assert (diff.create_draft, diff.upload, diff.publish) == (False, ("release.yaml",), True)
    sync(target)
    assert record(tmp_path)["state"] == "published"
    assert target.read_asset(V, "release.yaml") == VECTOR


def test_a_file_without_its_record_is_a_starter_and_replaced(tmp_path: Path) -> None:
    target = ReleaseDirTarget(tmp_path)
    handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
    (tmp_path / V / "release.yaml").write_bytes(b"half a vect")  # renamed, then crashed before the record
    state = target.observe(V)
    assert state.assets["release.yaml"].state == "starter"
    assert target.upload_asset(handle, "release.yaml", VECTOR, "application/yaml") is True
    assert (tmp_path / V / "release.yaml").read_bytes() == VECTOR


def test_same_content_is_skipped(tmp_path: Path) -> None:
    target = ReleaseDirTarget(tmp_path)
    handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
    assert target.upload_asset(handle, "cosign.pub", PUB, "application/x-pem-file") is True
    assert target.upload_asset(handle, "cosign.pub", PUB, "application/x-pem-file") is False


def test_different_content_on_the_draft_is_a_conflict(tmp_path: Path) -> None:
    target = ReleaseDirTarget(tmp_path)
    handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
    target.upload_asset(handle, "cosign.pub", b"another key", "application/x-pem-file")
    with pytest.raises(ConflictError) as caught:
        target.upload_asset(handle, "cosign.pub", PUB, "application/x-pem-file")
    assert caught.value.exit_code == ExitCode.CONFLICT
    assert str(caught.value) == f"release {V} holds a different cosign.pub ({tmp_path / V / 'cosign.pub'})"
    assert caught.value.hint and "remove" in caught.value.hint
    assert (tmp_path / V / "cosign.pub").read_bytes() == b"another key"


def test_published_with_different_content_is_a_conflict(tmp_path: Path) -> None:
    target = ReleaseDirTarget(tmp_path)
    sync(target)
    changed = [WantedAsset("cosign.pub", b"new key"), WANTED[1]]
    with pytest.raises(ConflictError, match=r"published release v1\.2\.3 holds a different cosign\.pub"):
        sync(target, changed)
    with pytest.raises(ConflictError, match="already published"):
        target.ensure_draft(V, target_commitish=None, name=V, body="")


def test_published_missing_an_asset_is_a_conflict_with_a_hint(tmp_path: Path) -> None:
    target = ReleaseDirTarget(tmp_path)
    sync(target, WANTED[:1])
    with pytest.raises(ConflictError) as caught:
        sync(target)
    assert "release v1.2.3 is published without the asset release.yaml" in str(caught.value)
    assert caught.value.hint
    assert not (tmp_path / V / "release.yaml").exists()
    assert target.observe(V).published
    with pytest.raises(ConflictError, match="published without the asset"):
        target.upload_asset(ReleaseHandle(V, str(tmp_path / V)), "release.yaml", VECTOR, "application/yaml")


def test_publish_is_idempotent(tmp_path: Path) -> None:
    target = ReleaseDirTarget(tmp_path)
    handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
    target.publish(handle)
    target.publish(handle)
    assert record(tmp_path)["state"] == "published"


def test_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = ReleaseDirTarget(tmp_path)
    handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
    target.upload_asset(handle, "cosign.pub", PUB, "application/x-pem-file")
    (tmp_path / V / "release.yaml").write_bytes(b"leftover")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(Exception, match="cannot write the asset: No space left on device"):
        target.upload_asset(handle, "release.yaml", VECTOR, "application/yaml")
    monkeypatch.undo()
    assert (tmp_path / V / "release.yaml").read_bytes() == b"leftover"
    assert sorted(p.name for p in (tmp_path / V).iterdir()) == ["cosign.pub", "release.json", "release.yaml"]
    assert record(tmp_path)["state"] == "draft"


def test_bad_inputs(tmp_path: Path) -> None:
    target = ReleaseDirTarget(tmp_path)
    for version in ("../escape", "v1/../../x", "", ".hidden"):
        with pytest.raises(InvalidInputError):
            target.observe(version)
    handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
    for name in ("../x", "a/b", "release.json/..", "release.json"):
        with pytest.raises(InvalidInputError):
            target.upload_asset(handle, name, b"x", "text/plain")
    assert json.loads((tmp_path / V / "release.json").read_text())["state"] == "draft"
    (tmp_path / V / "release.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match="not JSON"):
        target.observe(V)
    (tmp_path / V / "release.json").write_text(json.dumps({"version": "v9", "state": "draft", "assets": {}}))
    with pytest.raises(InvalidInputError, match="not one of release"):
        target.observe(V)


# --- fetch_asset: what verify-release reads, size-capped ------------------------------------------------


def test_fetch_asset_reads_a_published_asset_within_the_cap(tmp_path: Path) -> None:
    target = ReleaseDirTarget(tmp_path)
    assert target.fetch_asset(V, "release.yaml", max_bytes=1024).problem == f"release {V} is not published"
    sync(target)
    fetched = target.fetch_asset(V, "release.yaml", max_bytes=len(VECTOR))
    assert fetched.content == VECTOR and fetched.where == str(tmp_path / V / "release.yaml")
    missing = target.fetch_asset(V, "notes.txt", max_bytes=1024)
    assert missing.content is None and missing.missing and "published without notes.txt" in (missing.problem or "")


def test_fetch_asset_refuses_an_asset_over_the_cap_or_changed_behind_the_record(tmp_path: Path) -> None:
    target = ReleaseDirTarget(tmp_path)
    sync(target)
    large = target.fetch_asset(V, "release.yaml", max_bytes=len(VECTOR) - 1)
    assert large.content is None and not large.missing
    assert f"{len(VECTOR)} bytes, over the limit" in (large.problem or "")
    (tmp_path / V / "release.yaml").write_bytes(VECTOR + b"extra: 1\n")
    changed = target.fetch_asset(V, "release.yaml", max_bytes=1024)
    assert changed.content is None and "does not match the release record" in (changed.problem or "")


def test_fetch_asset_never_reads_a_device(tmp_path: Path) -> None:
    target = ReleaseDirTarget(tmp_path)
    sync(target)
    path = tmp_path / V / "release.yaml"
    path.unlink()
    path.symlink_to("/dev/zero")
    fetched = target.fetch_asset(V, "release.yaml", max_bytes=1024)
    assert fetched.content is None and "not a regular file" in (fetched.problem or "")


# --- writability before any write, modes -----------------------------------------------------------


def test_published_assets_and_record_are_world_readable(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        sync(ReleaseDirTarget(tmp_path))
    finally:
        os.umask(old)
    for name in ("cosign.pub", "release.yaml", "release.json"):
        assert (tmp_path / V / name).stat().st_mode & 0o777 == 0o644, name


def test_a_release_dir_that_is_a_file_is_found_by_the_look(tmp_path: Path) -> None:
    root = tmp_path / "releases"
    root.write_text("not a folder")
    target = ReleaseDirTarget(root)
    with pytest.raises(InvalidInputError) as info:
        target.check_writable(V)
    assert info.value.exit_code == ExitCode.INVALID_INPUT
    assert str(root) in info.value.one_line() and "not a directory" in info.value.one_line()
    with pytest.raises(InvalidInputError) as observed:  # the read-only look too: exit 3, not 1
        target.observe(V)
    assert observed.value.exit_code == ExitCode.INVALID_INPUT


def test_a_version_path_that_is_a_file_is_found_by_the_look(tmp_path: Path) -> None:
    (tmp_path / V).write_text("in the way")
    with pytest.raises(InvalidInputError, match="not a directory"):
        ReleaseDirTarget(tmp_path).check_writable(V)


def test_the_look_writes_nothing(tmp_path: Path) -> None:
    target = ReleaseDirTarget(tmp_path / "new" / "releases")
    target.check_writable(V)
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_a_read_only_release_dir_is_found_by_the_look(tmp_path: Path) -> None:
    root = tmp_path / "releases"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(InvalidInputError, match="not writable") as info:
            ReleaseDirTarget(root).check_writable(V)
        assert info.value.exit_code == ExitCode.INVALID_INPUT
    finally:
        root.chmod(0o755)


def test_an_unwritable_release_dir_is_found_by_the_probe_even_as_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check tries to create a file (permission bits do not stop root; a read-only mount does)."""
    import pipeline.targets.release_dir as module

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(module.tempfile, "mkstemp", refuse)
    with pytest.raises(InvalidInputError, match=r"not writable.*Read-only file system"):
        ReleaseDirTarget(tmp_path).check_writable(V)
