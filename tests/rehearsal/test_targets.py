"""The rehearsal's local targets: the source it rehearses and its work folder (no registry needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ExitCode, FileConflictError
from pipeline.rehearsal import targets as rehearsal
from pipeline.rehearsal.targets import WORKDIR_MARKER, prepare_workdir
from tests.conftest import REPO_ROOT

SOURCE = REPO_ROOT / "release" / "release.yaml"
OWNED = ("registry", "keys", "releases", "source.yaml")


def test_padded_source_keeps_the_original_and_adds_images(tmp_path: Path) -> None:
    from pipeline.vector import load_source

    out = rehearsal.padded_source(SOURCE, 3, tmp_path / "padded.yaml")
    padded = load_source(out.read_bytes(), str(out))
    original = load_source(SOURCE.read_bytes(), str(SOURCE))
    assert len(padded.references()) == len(original.references()) + 3
    assert set(original.references()) <= set(padded.references())


def test_git_revision_outside_a_checkout_is_a_placeholder(tmp_path: Path) -> None:
    (tmp_path / "release.yaml").write_text("docker-images: {}\n")
    assert rehearsal.git_revision_or_placeholder(tmp_path / "release.yaml") == (rehearsal.PLACEHOLDER_REVISION, False)
    revision, from_git = rehearsal.git_revision_or_placeholder(SOURCE)
    if from_git:
        assert len(revision) == 40



def test_a_new_or_empty_workdir_becomes_the_rehearsals(tmp_path: Path) -> None:
    prepare_workdir(tmp_path / "new" / "deep", OWNED)
    assert [p.name for p in (tmp_path / "new" / "deep").iterdir()] == [WORKDIR_MARKER]
    (tmp_path / "empty").mkdir()
    prepare_workdir(tmp_path / "empty", OWNED)
    assert (tmp_path / "empty" / WORKDIR_MARKER).is_file()


def test_a_marked_workdir_is_cleared_of_the_rehearsals_files_only(tmp_path: Path) -> None:
    prepare_workdir(tmp_path, OWNED)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "cosign.key").write_text("throwaway")
    (tmp_path / "source.yaml").write_text("generated")
    (tmp_path / "notes.txt").write_text("kept")
    prepare_workdir(tmp_path, OWNED)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([WORKDIR_MARKER, "notes.txt"])


def test_a_foreign_workdir_is_refused_before_anything_is_touched(tmp_path: Path) -> None:
    """Issue 12: an existing DIR/keys/cosign.key and DIR/releases/ were wiped."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "cosign.key").write_text("my real key")
    (tmp_path / "releases").mkdir()
    with pytest.raises(FileConflictError) as caught:
        prepare_workdir(tmp_path, OWNED)
    assert caught.value.exit_code == ExitCode.CONFLICT and caught.value.where == str(tmp_path)
    assert "--force" in (caught.value.hint or "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys", "releases"]
    assert (tmp_path / "keys" / "cosign.key").read_text() == "my real key"


def test_force_takes_a_foreign_workdir_over(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "cosign.key").write_text("my real key")
    (tmp_path / "notes.txt").write_text("kept")
    prepare_workdir(tmp_path, OWNED, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([WORKDIR_MARKER, "notes.txt"])


def test_a_workdir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileConflictError, match="not a folder"):
        prepare_workdir(tmp_path / "file", OWNED, force=True)
    assert (tmp_path / "file").read_text() == "x"
