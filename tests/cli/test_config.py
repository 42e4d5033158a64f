"""release-vector.yaml (pipeline/cli/config.py): option defaults, flag > env > config > default, no secrets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli.config import parse_config
from pipeline.errors import InvalidInputError

CONFIG = """\
source: {shared}
exclude-image: ["docker.io/*"]
assemble:
  version: v9.9.9
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "release-vector.yaml"
    path.write_text(CONFIG.format(shared=tmp_path / "from-config.yaml"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELEASE_VECTOR_CONFIG")  # read ./release-vector.yaml
    monkeypatch.delenv("RELEASE_VECTOR_SOURCE", raising=False)
    return path


def test_the_config_file_sets_defaults_per_command_and_shared(cli: Any, config: Path) -> None:
    result = cli("assemble", "--no-resolve")
    assert result.exit_code == 3
    assert "from-config.yaml" in result.stderr  # shared source; the version came from the assemble: block


def test_env_beats_the_config_file_and_a_flag_beats_both(cli: Any, config: Path, tmp_path: Path) -> None:
    from_env = cli("assemble", "--no-resolve", env={"RELEASE_VECTOR_SOURCE": str(tmp_path / "from-env.yaml")})
    assert "from-env.yaml" in from_env.stderr
    flag = cli("assemble", "--no-resolve", "--source", str(tmp_path / "from-flag.yaml"),
               env={"RELEASE_VECTOR_SOURCE": str(tmp_path / "from-env.yaml")})  # fmt: skip
    assert "from-flag.yaml" in flag.stderr


def test_config_prints_each_setting_with_its_source(cli: Any, config: Path) -> None:
    result = cli("config", "--json", env={"RELEASE_VECTOR_CONCURRENCY": "4"})
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["settings"]
    assemble = {row["option"]: row["source"] for row in rows if row["command"] == "assemble"}
    assert assemble["version"] == f"config {config.name}: assemble"
    assert assemble["source"] == f"config {config.name}"
    assert assemble["concurrency"] == "env RELEASE_VECTOR_CONCURRENCY"
    text = cli("config", "assemble")
    assert "assemble --version = 'v9.9.9'" in text.stdout and "(default)" in text.stdout


def test_a_key_that_is_no_option_is_named(cli: Any, config: Path) -> None:
    config.write_text("repositroy: ghcr.io/x/releases\n")
    result = cli("config")
    assert result.exit_code == 3
    assert "'repositroy' is no option of any command" in result.stderr


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("password: hunter2\n", "password"),
        ("release:\n  github-token: abc\n", "github-token"),
        ("key: |\n  -----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n  abc\n", "key"),
    ],
)
def test_secrets_are_refused_naming_the_key(cli: Any, config: Path, text: str, key: str) -> None:
    config.write_text(text)
    result = cli("config")
    assert result.exit_code == 3
    assert f"'{key}'" in result.stderr and "hunter2" not in result.stderr and "abc" not in result.stderr


def test_an_identity_token_source_is_not_a_secret() -> None:
    parsed = parse_config(b"release:\n  identity-token: env://SIGSTORE_ID_TOKEN\n", Path("c.yaml"))
    assert parsed.for_command("release")["identity-token"][0] == "env://SIGSTORE_ID_TOKEN"


def test_a_broken_file_is_named() -> None:
    with pytest.raises(InvalidInputError, match="not valid YAML"):
        parse_config(b"a: [", Path("c.yaml"))


def test_an_empty_env_var_reads_no_file(cli: Any, config: Path) -> None:
    result = cli("config", "--json", env={"RELEASE_VECTOR_CONFIG": ""})
    assert json.loads(result.stdout)["config"] is None
