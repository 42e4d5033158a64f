"""The one place image signing and verification run work side by side (a bounded thread pool).

Kept apart so that the switch to the shared network layer's ``parallel_map`` is one edit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def concurrent_map(function: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """``function`` over ``items``, at most ``workers`` at a time, results in input order. Every call
    finishes before the first exception, if any, is raised."""
    todo = list(items)
    if not todo:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo)))) as pool:
        futures = [pool.submit(function, item) for item in todo]
    return [future.result() for future in futures]
