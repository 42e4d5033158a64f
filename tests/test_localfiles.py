"""Reading a bounded local file: stat first, regular files only, never more than limit + 1 bytes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import ExitCode, InvalidInputError, KeyNotFoundError
from pipeline.localfiles import read_bounded


def test_reads_a_small_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    assert read_bounded(path, "thing", limit=5) == b"hello"


def test_over_the_limit_is_exit_3_naming_the_path_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big"
    with path.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: 50 MB that cost nothing to make
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd: int, size: int) -> bytes:
        reads.append(size)
        return real_read(fd, size)

    monkeypatch.setattr(os, "read", counting_read)
    with pytest.raises(InvalidInputError) as info:
        read_bounded(path, "release vector", limit=1024)
    assert info.value.exit_code == ExitCode.INVALID_INPUT
    assert str(path) in info.value.one_line() and "too large" in info.value.one_line()
    assert reads == [], "the size is checked before reading"


def test_dev_zero_and_other_non_regular_files_are_refused(tmp_path: Path) -> None:
    for path in (Path("/dev/zero"), tmp_path):
        with pytest.raises(InvalidInputError) as info:
            read_bounded(path, "key", limit=1024)
        assert info.value.exit_code == ExitCode.INVALID_INPUT
        assert str(path) in info.value.one_line()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        read_bounded(fifo, "key", limit=1024)  # and does not block waiting for a writer


def test_a_file_that_grows_after_the_check_is_still_read_at_most_limit_plus_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "growing"
    path.write_bytes(b"x" * 10)
    real_fstat = os.fstat

    def small_fstat(fd: int) -> Any:  # the file grows between the check and the read
        result = real_fstat(fd)
        path.write_bytes(b"x" * 5000)
        return result

    monkeypatch.setattr(os, "fstat", small_fstat)
    with pytest.raises(InvalidInputError, match="too large"):
        read_bounded(path, "thing", limit=100)


def test_missing_file_uses_the_given_error_type(tmp_path: Path) -> None:
    with pytest.raises(KeyNotFoundError, match="key file not found"):
        read_bounded(tmp_path / "nope", "key file", limit=10, missing=KeyNotFoundError)
    with pytest.raises(InvalidInputError, match="thing not found"):
        read_bounded(tmp_path / "nope", "thing", limit=10)


def test_cli_push_of_dev_zero_is_a_clear_error(cli: Any) -> None:
    result = cli("push", "/dev/zero", "--repository", "127.0.0.1:9/x/releases")
    assert result.exit_code == 3, result.stderr
    assert "not a regular file" in result.stderr and "/dev/zero" in result.stderr
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr


def test_cli_key_from_dev_zero_and_huge_env_are_clear_errors(cli: Any) -> None:
    result = cli("public-key", "--key", "/dev/zero", env={"COSIGN_PASSWORD": ""})
    assert result.exit_code == 3, result.stderr
    assert "/dev/zero" in result.stderr
    huge = cli("public-key", "--key", "env://HUGE_KEY", env={"COSIGN_PASSWORD": "", "HUGE_KEY": "A" * (2 << 20)})
    assert huge.exit_code == 3, huge.stderr
    assert "too large" in huge.stderr and "env://HUGE_KEY" in huge.stderr


def test_cli_source_over_the_limit_is_refused_before_reading(cli: Any, tmp_path: Path) -> None:
    source = tmp_path / "release.yaml"
    with source.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    result = cli("assemble", "--no-resolve", "--source", str(source), "--version", "v1", "--git-revision", "0" * 40)
    assert result.exit_code == 3, result.stderr
    assert "too large" in result.stderr and str(source) in result.stderr


def test_cli_bundle_and_trusted_root_from_dev_zero(cli: Any, tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"data")
    result = cli("verify-blob", str(blob), "--bundle", "/dev/zero", "--key", "/dev/null")
    assert result.exit_code == 3, result.stderr
    assert "/dev/" in result.stderr and "Traceback" not in result.stderr
