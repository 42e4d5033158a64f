"""The CLI stays thin (issue 13): no module under pipeline/cli/ over 300 lines, no function over 60 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

CLI = REPO_ROOT / "pipeline" / "cli"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
NOT_YET: set[str] = set()  # every CLI module is thin now


def modules() -> list[Path]:
    return sorted(path for path in CLI.glob("*.py") if path.name not in NOT_YET)


def long_functions(path: Path) -> list[str]:
    """Every function (with its decorators and signature) longer than the limit, as ``name: lines``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            assert node.end_lineno is not None
            lines = node.end_lineno - first + 1
            if lines > MAX_FUNCTION_LINES:
                found.append(f"{node.name}: {lines}")
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda path: path.name)
def test_cli_module_is_short(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


@pytest.mark.parametrize("path", modules(), ids=lambda path: path.name)
def test_cli_functions_are_short(path: Path) -> None:
    assert long_functions(path) == []


def test_the_measure_sees_a_long_function(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    sample.write_text(f"@decorator\ndef long() -> None:\n{body}\n\ndef short() -> None:\n    pass\n")
    assert long_functions(sample) == [f"long: {MAX_FUNCTION_LINES + 2}"]


def test_bench_drives_the_core_not_the_cli() -> None:
    users = [path.name for path in (REPO_ROOT / "bench").glob("*.py") if "pipeline.cli" in path.read_text()]
    assert users == []
