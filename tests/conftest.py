"""Shared fixtures: the team's interop vectors (``../shared/vectors``) and a CLI runner."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _find_vectors() -> Path:
    """``../shared/vectors`` beside the checkout (CI copies shared/ next to the clone)."""
    env = os.environ.get("RELEASE_VECTOR_TEST_VECTORS")
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT.parent / "shared" / "vectors", REPO_ROOT.parent.parent / "shared" / "vectors"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"shared vectors not found; looked in {[str(c) for c in candidates]}")


VECTORS = _find_vectors()
COSIGN_VECTORS = VECTORS / "cosign"


@pytest.fixture
def cosign_vectors() -> Path:
    return COSIGN_VECTORS


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Run ``release-vector`` in-process: ``cli("sign-blob", ..., env={...})`` → CliResult."""

    from pipeline.cli import run  # imported here so unit tests of the core need no CLI

    def invoke(*args: str, env: dict[str, str | None] | None = None) -> CliResult:
        with monkeypatch.context() as m:
            for name, value in (env or {}).items():
                if value is None:
                    m.delenv(name, raising=False)
                else:
                    m.setenv(name, value)
            capsys.readouterr()
            code = run(list(args))
            out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    yield invoke


# Real registries (Debian docker-registry), one process per flavour per session, shared by every test dir.
from tests.registry_fixtures import basic_registry, plain_registry, tls_registry, token_registry  # noqa: E402

__all__ = ["basic_registry", "plain_registry", "tls_registry", "token_registry"]
