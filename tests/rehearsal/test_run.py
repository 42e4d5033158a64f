"""The rehearsal as a core function: settings in, a result out, commands through a port; imports downward."""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import pytest

from pipeline.errors import ExitCode, FileConflictError
from pipeline.rehearsal.run import CommandOutcome, RehearsalSettings, rehearse
from pipeline.rehearsal.targets import RehearsalError
from pipeline.secret import Secret
from tests.conftest import REPO_ROOT
from tests.registry_fixtures import requires_registry

SOURCE = REPO_ROOT / "release" / "release.yaml"
PIPELINE = REPO_ROOT / "pipeline"


class FailingRelease:
    """A Commands port whose every command fails with exit code 6, recording what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], Secret | None, Mapping[str, str] | None]] = []

    def __call__(
        self, argv: Sequence[str], *, password: Secret | None = None, env: Mapping[str, str] | None = None
    ) -> CommandOutcome:
        self.calls.append((list(argv), password, env))
        return CommandOutcome(6, "")


@requires_registry
def test_a_failing_step_is_an_error_with_its_exit_code_and_everything_is_ended(tmp_path: Path) -> None:
    commands, said = FailingRelease(), []
    settings = RehearsalSettings(source=SOURCE, workdir=tmp_path / "w")
    with pytest.raises(RehearsalError) as caught:
        rehearse(settings, commands, said.append)
    assert caught.value.message == "the rehearsed release failed with exit code 6 (its error is above)"
    assert caught.value.exit_code == ExitCode.KEY and caught.value.where == "release"
    [(argv, password, env)] = commands.calls
    assert argv[:2] == ["release", "v0.0.0-rehearsal"] and "--key" in argv and env is None
    assert isinstance(password, Secret) and password.reveal().decode() not in " ".join(argv)
    registry_url = next(text.split()[1] for text in said if text.startswith("registry http"))
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{registry_url}/v2/", timeout=1)
    assert (tmp_path / "w" / "keys" / "cosign.key").is_file(), "a given work folder stays for inspection"


def test_a_foreign_workdir_is_refused_before_any_command(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    commands = FailingRelease()
    with pytest.raises(FileConflictError):
        rehearse(RehearsalSettings(source=SOURCE, workdir=tmp_path), commands, print)
    assert commands.calls == [] and [p.name for p in tmp_path.iterdir()] == ["keys"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_imports_run_downwards_around_the_rehearsal() -> None:
    """Nothing below the rehearsal imports it; the rehearsal does not import the CLI."""
    for path in sorted(PIPELINE.rglob("*.py")):
        package = path.relative_to(PIPELINE).parts[0]
        imported = _imports(path)
        if package == "rehearsal":
            assert not any(name.startswith("pipeline.cli") for name in imported), path
        elif package != "cli":
            assert not any(name.startswith("pipeline.rehearsal") for name in imported), path
    assert not any(
        (PIPELINE / "sigstore" / f"{name}.py").exists()
        for name in ("log_server", "fulcio_server", "oidc_issuer", "standin_http")
    ), "pipeline/sigstore/ keeps clients, models and verification only"
