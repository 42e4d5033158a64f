from __future__ import annotations

import json
import sys
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


# --- hostile text from servers ----------------------------------------------------------------------

HOSTILE = "denied\x1b]0;pwned title\x07\x1b[2K\r\x1b[32mverified OK\x1b[0m\u202e\u2028next line\x9b31m"


def _hostile_registry() -> Any:
    from tests.registry_fixtures import Reply, ScriptedServer

    body = json.dumps({"errors": [{"code": "DENIED", "message": HOSTILE}]}).encode()
    headers = {"Content-Type": "application/json"}
    return ScriptedServer(lambda request: Reply(403 if request.url_path != "/v2/" else 200, headers, body))


def _assert_clean(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text and "\x9b" not in text
    assert "\u202e" not in text and "\u2028" not in text


def test_server_error_text_is_printed_without_control_characters(cli: Any) -> None:
    """ANSI/OSC sequences from a registry's error body could fake a 'verified' line or set the title."""
    with _hostile_registry() as server:
        result = cli("pull", f"{server.host}/x/releases:v1", "--allow-http-registry")
    assert result.exit_code != 0
    _assert_clean(result.stderr + result.stdout)
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines and "denied" in error_lines[0]
    assert not any(line.startswith(("verified", "next line")) for line in result.stderr.splitlines())


def test_every_printed_line_is_filtered_not_only_errors(cli: Any, monkeypatch: Any) -> None:
    """Result printers go through the same filter (a verify result line quoting a server's reason)."""
    from pipeline.cli.app import app

    @app.command("hostile-echo", hidden=True)
    def _echo() -> None:
        print(f"result: {HOSTILE}")
        print(f"note: {HOSTILE}", file=sys.stderr)

    try:
        result = cli("hostile-echo")
    finally:
        app.registered_commands[:] = [
            c for c in app.registered_commands if c.name != "hostile-echo"
        ]
    assert result.exit_code == 0
    _assert_clean(result.stdout + result.stderr)
    assert "result: denied" in result.stdout and "verified OK" in result.stdout
    assert result.stdout.count("\n") == 1  # a line separator cannot start a new line either
