"""A mistyped command gets typer's "did you mean" although most commands load only when they run."""

from __future__ import annotations

from typing import Any


def test_a_mistyped_lazy_command_is_suggested(cli: Any) -> None:
    result = cli("verfy", "x")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: no such command 'verfy' (release-vector)",
        "hint: did you mean 'verify', 'verify-blob'? (see 'release-vector --help')",
    ]


def test_nothing_close_gets_only_the_help_hint(cli: Any) -> None:
    result = cli("zzz")
    assert result.stderr.splitlines() == ["error: no such command 'zzz' (release-vector)",
                                          "hint: see 'release-vector --help'"]  # fmt: skip
