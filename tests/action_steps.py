"""Runs action.yml's bash steps as a GitHub runner would (tests/test_action.py, tests/test_packaging.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO_ROOT

ACTION = REPO_ROOT / "action.yml"


def steps() -> dict[str, dict[str, Any]]:
    """action.yml's steps by id."""
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    return {step["id"]: step for step in action["runs"]["steps"] if "id" in step}


class Runner:
    """Runs one of action.yml's bash steps as the runner would: its env (values given by the test, as the
    expressions would evaluate), GITHUB_OUTPUT, RUNNER_TEMP, GITHUB_ACTION_PATH = this checkout."""

    def __init__(self, tmp_path: Path) -> None:
        self.temp = tmp_path / "runner-temp"
        self.temp.mkdir()
        self.output = tmp_path / "github-output"

    def run(
        self, step_id: str, env: Mapping[str, str], cwd: Path | None = None, runner_os: str = "Linux"
    ) -> tuple[int, dict[str, str], str]:
        step = steps()[step_id]
        assert step["shell"] == "bash" and set(env) <= set(step.get("env", {})), set(env) - set(step.get("env", {}))
        self.output.write_text("")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("RELEASE_VECTOR_", "COSIGN_"))}
        full = {**base, "GITHUB_OUTPUT": str(self.output), "RUNNER_TEMP": str(self.temp), "RUNNER_OS": runner_os,
                "RUNNER_ARCH": "X64", "GITHUB_ACTION_PATH": str(REPO_ROOT), **env}  # fmt: skip
        done = subprocess.run(["bash", "-c", step["run"]], env=full, cwd=cwd or self.temp, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        outputs = dict(line.split("=", 1) for line in self.output.read_text().splitlines() if "=" in line)
        return done.returncode, outputs, done.stdout + done.stderr
