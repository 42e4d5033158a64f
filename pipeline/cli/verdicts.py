"""How a verify command ends: each failure once on stderr, then the exit code that tells a tampered release
(10) from one that could not be checked (5: unreachable, refused, timeout, 5xx after retries; 4: credentials
refused). Some failed and some unchecked: 10, and the summary names the unchecked ones."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import typer

from pipeline.cli.common import one_line
from pipeline.errors import ExitCode, ReleaseVectorError, unchecked_exit_code

UNCHECKED_HINT = "the registry (or service) could not be reached or refused us: run again, or check the network"


@dataclass(frozen=True)
class Verdict:
    """One subject's outcome: ``problem`` None is a pass; ``unchecked`` set means no verdict was reached."""

    subject: str
    problem: str | None
    unchecked: ReleaseVectorError | None = None

    @property
    def failed(self) -> bool:
        return self.problem is not None and self.unchecked is None


def naming_once(text: str, subject: str) -> str:
    """``text (subject)``, unless ``text`` already names the subject."""
    text = one_line(text)
    return text if subject in text else f"{text} ({subject})"


def unchecked_line(subject: str, error: ReleaseVectorError) -> str:
    host = subject.split("/", 1)[0]
    named = not error.where or error.where.startswith(host) or error.where in error.message
    where = "" if named else f" ({error.where})"  # the message names the registry; the subject the image
    return one_line(f"could not check {subject}: {error.message}{where}")


def say(text: str) -> None:
    print(text, file=sys.stderr)


def finish(verdicts: Sequence[Verdict], hints: Iterable[str] = (), *, what: str = "images") -> None:
    """Print each failure once and exit with its code; return when every verdict passed."""
    failed = [v for v in verdicts if v.failed]
    unchecked = [v for v in verdicts if v.unchecked is not None]
    for verdict in failed:
        say(f"error: verification failed: {naming_once(verdict.problem or '', verdict.subject)}")
    for verdict in unchecked:
        assert verdict.unchecked is not None
        say(f"error: {unchecked_line(verdict.subject, verdict.unchecked)}")
    extra = [v.unchecked.hint for v in unchecked if v.unchecked is not None and v.unchecked.hint]
    for hint in dict.fromkeys([*hints, *extra]):
        say(f"hint: {one_line(hint)}")
    if failed and unchecked:
        names = ", ".join(v.subject for v in unchecked)
        say(f"error: {len(failed)} of {len(verdicts)} {what} failed verification; {len(unchecked)} could not be"
            f" checked: {names}")  # fmt: skip
        raise typer.Exit(int(ExitCode.VERIFICATION_FAILED))
    if failed:
        raise typer.Exit(int(ExitCode.VERIFICATION_FAILED))
    if unchecked:
        if not extra:
            say(f"hint: {UNCHECKED_HINT}")
        errors = [v.unchecked for v in unchecked if v.unchecked is not None]
        raise typer.Exit(int(unchecked_exit_code(errors)))
