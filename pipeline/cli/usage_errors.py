"""Usage errors (unknown option, missing option, bad value) in the ``error: … / hint: …`` form of every other
error, instead of typer's boxed panel: one line naming the command, typer's "did you mean" in the hint."""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Sequence

from typer._click.exceptions import ClickException, NoArgsIsHelpError, NoSuchOption, UsageError

from pipeline.cli.streams import one_line

_DID_YOU_MEAN = re.compile(r"\s*\(?(?:Did you mean|Possible options:)\s*(?P<what>[^)]*?)\??\)?\s*$")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def split_suggestion(message: str) -> tuple[str, str | None]:
    """``("No such command 'veify'", "did you mean 'verify'?")`` from typer's one-sentence message."""
    match = _DID_YOU_MEAN.search(message)
    if match is None:
        return message.rstrip(". "), None
    return message[: match.start()].rstrip(". "), f"did you mean {match.group('what').strip()}?"


def suggest_command(error: UsageError, typo: str, names: Sequence[str]) -> None:
    """Add typer's "Did you mean 'verify'?" to a no-such-command error: typer looks only at the commands
    loaded so far, and most load when they run (pipeline.cli.lazy)."""
    if error.message.startswith("No such command") and "Did you mean" not in error.message:
        matches = difflib.get_close_matches(typo, names)
        if matches:
            error.message = f"{error.message.rstrip('.')}. Did you mean {', '.join(repr(m) for m in matches)}?"


def usage_error_lines(error: ClickException) -> list[str]:
    """The ``error:`` line and the ``hint:`` line of a click/typer usage error."""
    message, suggestion = split_suggestion(error.format_message())
    if isinstance(error, NoSuchOption) and error.possibilities:
        message, suggestion = error.message, f"did you mean {', '.join(sorted(error.possibilities))}?"
    ctx = getattr(error, "ctx", None)
    place = f" ({ctx.command_path})" if ctx is not None else ""
    lines = [f"error: {one_line(_lower_first(message.rstrip('. ')))}{place}"]
    help_hint = f"see '{ctx.command_path} --help'" if ctx is not None else None
    hint = f"{suggestion} ({help_hint})" if suggestion and help_hint else suggestion or help_hint
    if hint:
        lines.append(f"hint: {hint}")
    return lines


def report_click_error(error: ClickException) -> int:
    """Print a usage error (or, for a bare group, its help) and return its exit code."""
    if isinstance(error, NoArgsIsHelpError):
        sys.stderr.write(error.format_message().rstrip("\n") + "\n")
        return error.exit_code
    for line in usage_error_lines(error):
        print(line, file=sys.stderr)
    return error.exit_code if isinstance(error, UsageError) else 2
