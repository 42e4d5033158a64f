"""pipeline/cli/counter.py: a few [n/N] lines when not on a terminal, none with --no-progress."""

from __future__ import annotations

import pytest

from pipeline.cli.counter import counter
from pipeline.cli.state import STATE


def test_plain_lines_about_one_per_tenth(capsys: pytest.CaptureFixture[str]) -> None:
    with counter("verifying images", 100) as tick:
        for _ in range(100):
            tick()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10
    assert lines[0] == "[10/100] verifying images" and lines[-1] == "[100/100] verifying images"


def test_no_progress_prints_nothing(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(STATE, "progress", False)
    with counter("verifying images", 100) as tick:
        tick()
    assert capsys.readouterr().err == ""
