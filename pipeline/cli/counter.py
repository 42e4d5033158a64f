"""Progress of a long step (resolving, verifying, …) on stderr: a rich bar on a terminal, a few plain
``[n/N] label`` lines otherwise (CI logs: about one line per tenth of the work, never one per item of a
thousand), nothing with ``--no-progress``. Thread-safe: the steps run their items in parallel."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pipeline.cli.state import STATE
from pipeline.cli.streams import raw_stream

PLAIN_LINES = 10


@contextmanager
def counter(label: str, total: int) -> Iterator[Callable[[], None]]:
    """``with counter("verifying", len(images)) as tick: … tick()`` once per item done."""
    if not STATE.progress or total <= 1:
        yield lambda: None
        return
    if sys.stderr.isatty():
        with _bar(label, total) as tick:
            yield tick
        return
    lock, done = threading.Lock(), [0]
    every = max(1, total // PLAIN_LINES)

    def line() -> None:
        with lock:
            done[0] += 1
            if done[0] % every == 0 or done[0] == total:
                print(f"[{done[0]}/{total}] {label}", file=sys.stderr, flush=True)

    yield line


@contextmanager
def _bar(label: str, total: int) -> Iterator[Callable[[], None]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(file=raw_stream(sys.stderr)), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.update(task, advance=1)
