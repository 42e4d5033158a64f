"""Shared fixtures: the interop vectors (``tests/vectors``) and a CLI runner."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# The interop vectors live in the repository (tests/vectors/, each folder's README names its sources), so a
# fresh clone runs its own tests.
VECTORS = REPO_ROOT / "tests" / "vectors"
COSIGN_VECTORS = VECTORS / "cosign"


@pytest.fixture
def cosign_vectors() -> Path:
    return COSIGN_VECTORS


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture(autouse=True, scope="session")
def _no_config_file() -> Iterator[None]:
    """The repository's own release-vector.yaml is not the tests' (an empty RELEASE_VECTOR_CONFIG: no file),
    for the whole session: module- and session-scoped fixtures run the CLI too (a release, a rehearsal)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELEASE_VECTOR_CONFIG", "")
        yield


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

# Key stores (issue 19): a SoftHSM2 token and moto's KMS server, one each per session.
from tests.keystore_fixtures import aws_env, kms, softhsm  # noqa: E402

__all__ += ["aws_env", "kms", "softhsm"]
