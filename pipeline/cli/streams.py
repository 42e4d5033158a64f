"""stdout and stderr as the CLI writes them: terminal control characters dropped, stderr's labels in colour.

Light to import (no cryptography, no network stack): ``run`` installs these before anything else loads.
"""

from __future__ import annotations

from typing import Any, TextIO

from pipeline.cli.style import paint
from pipeline.errors import printable


class PrintableStream:
    """A text stream that drops terminal control characters from everything written to it (see
    :func:`pipeline.errors.printable`): installed over stdout and stderr for the whole command, so every
    printer — errors, results, notes — is covered, whichever server text it quotes. ``buffer`` (binary
    writes: the vector, pulled content) passes through unchanged; ``raw`` is the stream underneath, for
    rich's progress bar and tables, which draw with escape sequences of their own (and strip control
    characters from the text they are given)."""

    def __init__(self, raw: TextIO, *, colour: bool = False) -> None:
        self.raw = raw
        self.colour = colour  # error:/warning:/hint: labels in colour (pipeline.cli.style), stderr on a terminal

    def write(self, text: str) -> int:
        clean = printable(text)
        self.raw.write(paint(clean) if self.colour else clean)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, buffer, isatty, fileno, encoding, …
        return getattr(self.raw, name)


def raw_stream(stream: TextIO | PrintableStream) -> TextIO:
    """The stream under a :class:`PrintableStream` (for rich), or the stream itself."""
    return stream.raw if isinstance(stream, PrintableStream) else stream


def one_line(text: str) -> str:
    """``text`` printable and on one line (a server's message can hold line breaks)."""
    return " ".join(printable(text).split())
