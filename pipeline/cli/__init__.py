"""The ``release-vector`` command line: the only place that prints results and exits.

``run`` invokes the typer app and maps every error to one line on stderr and its exit code
(see ``pipeline.errors.ExitCode``); a traceback appears only with ``--debug``.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from typer._click.exceptions import ClickException
from typer.exceptions import Abort

from pipeline.cli.app import app
from pipeline.cli.config import Config
from pipeline.cli.state import STATE
from pipeline.cli.streams import PrintableStream
from pipeline.cli.style import colour_wanted
from pipeline.cli.usage_errors import report_click_error
from pipeline.errors import ErrorList, ExitCode, ReleaseVectorError, printable
from pipeline.network_defaults import set_request_timeout

__all__ = ["app", "main", "run"]


def print_error(error: ReleaseVectorError) -> None:
    lines = error.lines()
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    if len(lines) > 1 and not isinstance(error, ErrorList):
        print(f"error: {len(lines)} problems", file=sys.stderr)
    elif error.hint:
        print(f"hint: {' '.join(printable(error.hint).split())}", file=sys.stderr)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    STATE.debug, STATE.progress, STATE.config = False, True, Config()
    set_request_timeout(None)  # a run in the same process does not inherit the last one's option
    args = list(sys.argv[1:] if argv is None else argv)
    stdout, stderr = sys.stdout, sys.stderr
    colour = colour_wanted(stderr, args, os.environ)
    sys.stdout, sys.stderr = PrintableStream(stdout), PrintableStream(stderr, colour=colour)
    try:
        return _run(args)
    finally:
        common = sys.modules.get("pipeline.cli.common")  # loaded by every command that takes a key
        if common is not None:
            common.close_opened_keys()  # a token's or KMS key's session ends with the command
        sys.stdout, sys.stderr = stdout, stderr


def _run(args: list[str]) -> int:
    try:
        # Not standalone: usage errors come back here to be printed as every other error; typer.Exit's code
        # (help, --version, a command's own exit) is returned.
        code = app(args=args, prog_name="release-vector", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except ClickException as exc:
        return report_click_error(exc)
    except Abort:
        print("error: aborted", file=sys.stderr)
        return int(ExitCode.UNEXPECTED)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else int(ExitCode.UNEXPECTED))
    except ReleaseVectorError as exc:
        if STATE.debug:
            traceback.print_exc()
        print_error(exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one line, no locals, no secrets
        if STATE.debug:
            traceback.print_exc()
        print(f"error: unexpected {type(exc).__name__}: {' '.join(printable(str(exc)).split())}", file=sys.stderr)
        print("hint: run again with --debug for a traceback, and report it", file=sys.stderr)
        return int(ExitCode.UNEXPECTED)
    return 0  # pragma: no cover  (every path above returns)


def main() -> NoReturn:
    sys.exit(run())
