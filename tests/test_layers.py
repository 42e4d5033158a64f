"""The package's layers: imports run downwards only (README "Architecture").

Each top-level module or package of ``pipeline`` has a rank; a module may import only from units of a
lower rank (or from its own unit). A new unit must be given a rank here, which is the point: where it
sits is decided, not drifted into.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PIPELINE = Path(__file__).resolve().parent.parent / "pipeline"

RANKS: dict[str, int] = {
    "__main__": 11,
    "cli": 10,
    "mirror": 9,  # carries a release (mirror, export, import): uses release, publish, signatures
    "rehearsal": 9,  # drives the CLI's commands through a port; nothing below imports it
    "release": 8,
    "apply": 7,
    "publish": 6,
    "signatures": 5,
    "provenance": 5,  # pure: the SLSA predicate of a release, from the vector (no I/O)
    "plan": 4,
    "assemble": 4,
    "sigstore": 4,
    "cosign": 3,
    "targets": 3,
    "artifact": 3,
    "vector": 3,
    "oci": 2,
    "binaries": 2,  # binaries named by URL: fetched and hashed through http
    "http": 1,
    "jsonbounded": 1,
    "network_defaults": 0,  # the HTTP defaults --help shows, without httpx (start-up time)
    "localfiles": 1,
    "errors": 0,
    "secret": 0,
    "": 0,  # pipeline/__init__.py (the version)
}


def _unit(module: str) -> str:
    """``pipeline.signatures.legacy`` -> ``signatures``; ``pipeline`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, unit) of every ``pipeline`` import in ``path``, at any depth (function-level imports too)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pipeline":
            if node.module == "pipeline":  # from pipeline import jsonbounded, __version__
                found += [(node.lineno, alias.name if alias.name in RANKS else "") for alias in node.names]
            else:
                found.append((node.lineno, _unit(node.module)))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, _unit(alias.name)) for alias in node.names if alias.name.startswith("pipeline.")]
    return found


def _module_unit(path: Path) -> str:
    relative = path.relative_to(PIPELINE)
    return relative.parts[0].removesuffix(".py") if relative.parts[0] != "__init__.py" else ""


MODULES = sorted(PIPELINE.rglob("*.py"))


def test_every_unit_has_a_rank() -> None:
    units = {_module_unit(path) for path in MODULES}
    assert units <= set(RANKS), f"give these a rank in tests/test_layers.py: {sorted(units - set(RANKS))}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PIPELINE)))
def test_imports_run_downwards(path: Path) -> None:
    own = _module_unit(path)
    upward = [
        f"{path.relative_to(PIPELINE.parent)}:{line} imports {unit or 'pipeline'} (rank {RANKS[unit]} >= {RANKS[own]})"
        for line, unit in _imports(path)
        if unit != own and RANKS.get(unit, 99) >= RANKS[own]
    ]
    assert not upward, upward
