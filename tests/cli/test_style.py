"""Colour on a terminal only (pipeline/cli/style.py), and usage errors as error:/hint: lines."""

from __future__ import annotations

import io

import pytest

from pipeline.cli import run
from pipeline.cli.common import PrintableStream
from pipeline.cli.style import colour_wanted, paint


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color() -> None:
    assert colour_wanted(Tty(), [], {})
    assert not colour_wanted(io.StringIO(), [], {})
    assert not colour_wanted(Tty(), [], {"NO_COLOR": "1"})
    assert not colour_wanted(Tty(), ["verify", "--no-color"], {})
    assert not colour_wanted(Tty(), [], {"RELEASE_VECTOR_NO_COLOR": "true"})


def test_labels_are_painted_and_results_are_not() -> None:
    assert paint("error: bad (x)") == "\x1b[1;31merror:\x1b[0m bad (x)"
    assert paint("warning: careful").startswith("\x1b[33mwarning:")
    assert paint("hint: try this") == "\x1b[2mhint: try this\x1b[0m"
    assert paint("ok      image@sha256:ab") == "ok      image@sha256:ab"


def test_the_stderr_stream_paints_what_any_printer_writes() -> None:
    raw = Tty()
    stream = PrintableStream(raw, colour=True)
    print("error: x\x1b]0;title\x07", file=stream)
    assert raw.getvalue() == "\x1b[1;31merror:\x1b[0m x]0;title\n"  # the escape character is dropped, ours kept


@pytest.mark.parametrize(
    ("argv", "error", "hint"),
    [
        (["verify", "--kye", "x"], "error: no such option: --kye (release-vector verify)",
         "hint: did you mean --key? (see 'release-vector verify --help')"),
        (["veify"], "error: no such command 'veify' (release-vector)",
         "hint: did you mean 'verify', 'verify-blob'? (see 'release-vector --help')"),
        (["release"], "error: missing argument 'version' (release-vector release)",
         "hint: see 'release-vector release --help'"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_error_line_and_a_hint(
    argv: list[str], error: str, hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [error, hint]
    assert captured.out == ""
