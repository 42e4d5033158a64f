from __future__ import annotations

from typing import Any


def test_help_lists_commands(cli: Any) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("generate-key-pair", "public-key"):
        assert command in result.stdout


def test_unknown_option_is_a_usage_error(cli: Any) -> None:
    result = cli("public-key", "--no-such-option")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


def test_python_dash_m_runs_the_cli() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pipeline", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.startswith("release-vector ")
