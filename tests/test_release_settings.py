"""Our own release is one command (issue 18): release-vector.yaml holds what .github/workflows/release.yml
used to pass, and the workflow runs ``release-vector release <tag>`` with nothing more."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github/workflows/release.yml"


def _steps(job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = yaml.safe_load(WORKFLOW.read_text())["jobs"][job]["steps"]
    return steps


def _release_settings(cli: Any) -> dict[str, Any]:
    result = cli("config", "release", "--json", env={"RELEASE_VECTOR_CONFIG": str(ROOT / "release-vector.yaml")})
    assert result.exit_code == 0, result.stderr  # every key is an option of its command, no secret
    rows = json.loads(result.stdout)["settings"]
    return {row["option"]: row["value"] for row in rows if row["source"].startswith("config")}


def test_the_settings_file_names_everything_the_release_needs(cli: Any) -> None:
    settings = _release_settings(cli)
    assert settings["source"] == "build/release.yaml"
    assert settings["key"] == "env://COSIGN_PRIVATE_KEY"
    assert settings["keyless"] is True and settings["recursive"] is True and settings["attest"] == "provenance"
    homepage = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Source"]
    assert homepage == f"https://github.com/{settings['github-repository']}"
    owner = settings["github-repository"].split("/")[0]
    assert settings["repository"] == f"ghcr.io/{owner.lower()}/releases"  # as the release notes name it


def test_the_release_step_passes_only_the_tag() -> None:
    step = next(s for s in _steps("release") if s.get("id") == "release")
    assert step["with"]["command"] == "release"
    assert step["with"]["args"] == "${{ needs.build.outputs.tag }}"
    assert not any(name.startswith("RELEASE_VECTOR_") for name in step["env"])  # settings live in the file


def test_the_source_definition_is_written_where_the_settings_say(cli: Any) -> None:
    source = _release_settings(cli)["source"]
    for job in ("release", "rehearse"):
        writes = [s["run"] for s in _steps(job) if "selfrelease.py source" in s.get("run", "")]
        assert len(writes) == 1 and f"--output {source}" in writes[0], job


def test_the_pull_request_dry_run_uses_the_same_settings_without_keyless() -> None:
    step = next(s for s in _steps("rehearse") if s.get("with", {}).get("command") == "release")
    assert step["with"]["args"].split() == ["${{", "needs.build.outputs.tag", "}}", "--dry-run", "--key",
                                            "release/cosign.pub"]  # fmt: skip
    assert step["env"]["RELEASE_VECTOR_KEYLESS"] == "false"
