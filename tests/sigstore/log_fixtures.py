"""The embedded transparency log (``pipeline.rehearsal.log_server``) as a pytest fixture for CLI tests.

Import ``local_log`` into a test module to use it (as conftest does for the registries).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.rehearsal.log_server import LogServer


@dataclass(frozen=True)
class LocalLog:
    """A running log, its public key file, and the options that sign into it."""

    server: LogServer
    public_key: Path

    @property
    def sign_args(self) -> list[str]:
        return ["--rekor-url", self.server.url, "--rekor-public-key", str(self.public_key)]

    @property
    def verify_args(self) -> list[str]:
        return ["--rekor-public-key", str(self.public_key)]

    @property
    def entries(self) -> int:
        return len(self.server.log)


@pytest.fixture(scope="module")
def local_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLog]:
    directory = tmp_path_factory.mktemp("rekor")
    with LogServer() as server:
        public_key = directory / "rekor.pub"
        public_key.write_bytes(server.public_key_pem())
        yield LocalLog(server, public_key)
