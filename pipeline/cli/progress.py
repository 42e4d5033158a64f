"""A release's progress on stderr, and its plan as a table: what ``release`` shows while it runs."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

from pipeline.cli.common import raw_stream
from pipeline.cli.state import STATE

if TYPE_CHECKING:  # the plan's module loads with the release it reports on, not with --help (start-up time)
    from pipeline.plan import Action, Plan


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class StderrProgress:
    """A release's progress on stderr: its notes, and a rich progress bar on a terminal (one plain line per
    action otherwise)."""

    def note(self, text: str) -> None:
        say(text)

    def applying(self, version: str, total: int) -> AbstractContextManager[Callable[[Action, str], None]]:
        return _progress_reporter(version, total)


@contextmanager
def _progress_reporter(version: str, total: int) -> Iterator[Callable[[Action, str], None]]:
    from pipeline.plan import SIGN_PINNED

    count = 0

    def line(action: Action, outcome: str) -> None:
        nonlocal count
        count += 1
        digest = f"@{action.digest}" if action.digest and action.kind in SIGN_PINNED else ""
        say(f"[{count}/{total}] {action.kind} {action.target}{digest}: {outcome}")

    if not STATE.progress:
        yield lambda action, outcome: None
        return
    if not sys.stderr.isatty() or total == 0:
        yield line
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(file=raw_stream(sys.stderr))) as bar:
        task = bar.add_task(f"release {version}", total=total)

        def advance(action: Action, outcome: str) -> None:
            bar.update(task, advance=1, description=f"release {version}: {action.kind} {outcome}")

        yield advance


def print_plan_table(plan: Plan) -> None:
    """The plan as a rich table (on a terminal only: scripts get plain lines or --json)."""
    from rich.console import Console
    from rich.table import Table

    title = f"release {plan.version}: {len(plan.actions)} action(s), nothing written (dry run){plan.unpublished}"
    table = Table(title=title)
    for column in ("#", "action", "target", "digest", "note"):
        table.add_column(column)
    for number, action in enumerate(plan.actions, 1):
        table.add_row(str(number), action.kind, action.target, action.digest or "", action.detail)
    Console(file=raw_stream(sys.stdout)).print(table)
