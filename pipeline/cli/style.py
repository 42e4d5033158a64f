"""Colour on a terminal: ``error:`` red, ``warning:`` yellow, ``note:``/``hint:`` lines dim; results plain.

Applied by the stderr stream (:class:`pipeline.cli.common.PrintableStream`) to every line it is given, so each
printer (this CLI's and any command's) gets it without asking. Off when stderr is not a terminal, with
``NO_COLOR`` set (https://no-color.org), or ``--no-color`` (``RELEASE_VECTOR_NO_COLOR``); ``--no-progress``
(``RELEASE_VECTOR_NO_PROGRESS``) likewise turns the progress bars into nothing but the summary lines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TextIO

NO_COLOR_ENV = "NO_COLOR"
NO_COLOR_OPTION_ENV = "RELEASE_VECTOR_NO_COLOR"

_RED, _YELLOW, _DIM, _RESET = "\x1b[1;31m", "\x1b[33m", "\x1b[2m", "\x1b[0m"
_LABEL = re.compile(r"^(error:|warning:|WARNING:)", re.MULTILINE)
_DIM_LINE = re.compile(r"^((?:hint|note):[^\n]*)", re.MULTILINE)


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


def colour_wanted(stream: TextIO, args: Sequence[str], env: dict[str, str] | os._Environ[str]) -> bool:
    """Colour only for a terminal, and not with NO_COLOR (any non-empty value), --no-color or its env var."""
    if env.get(NO_COLOR_ENV) or _truthy(env.get(NO_COLOR_OPTION_ENV)) or "--no-color" in args:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str) -> str:
    """``text`` with its ``error:``/``warning:`` labels coloured and its ``hint:``/``note:`` lines dimmed."""
    text = _LABEL.sub(lambda m: (_RED if m.group(1) == "error:" else _YELLOW) + m.group(1) + _RESET, text)
    return _DIM_LINE.sub(lambda m: _DIM + m.group(1) + _RESET, text)
