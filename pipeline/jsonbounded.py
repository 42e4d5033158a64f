"""One JSON loader for every document that comes from outside: bounded in size and in nesting depth.

Python's ``json`` recurses once per nested array or object, so 200,000 brackets from a hostile server
or file raise ``RecursionError``, which no caller expects (exit 1, and a multi-image command loses
every other image's result). Here such a document is an :class:`~pipeline.errors.InvalidInputError`
naming its source, like any other malformed input. Syntax errors stay ``ValueError``
(``json.JSONDecodeError``) so that callers keep their own wording for "not JSON".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from pipeline.errors import InvalidInputError

MAX_DEPTH: Final = 100
"""Nesting levels accepted: every format read here needs fewer than 10."""

MAX_BYTES: Final = 16 * 1024 * 1024
"""Default size limit; the network layer caps bodies before they get here, usually far lower."""


def loads(
    data: bytes | bytearray | str,
    *,
    source: str,
    what: str = "JSON document",
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
    parse_constant: Callable[[str], Any] | None = None,
) -> Any:
    """``json.loads(data)``, refusing documents over ``max_bytes`` or nested deeper than ``max_depth``.

    ``source`` names where the document came from (a file, a URL, an image reference) for the message."""
    if len(data) > max_bytes:
        raise InvalidInputError(f"{what} too large ({len(data)} bytes; the limit is {max_bytes} bytes)", where=source)
    try:
        document = json.loads(data, object_pairs_hook=object_pairs_hook, parse_constant=parse_constant)
    except RecursionError:
        raise _too_deep(what, max_depth, source) from None
    if depth_exceeds(document, max_depth):
        raise _too_deep(what, max_depth, source)
    return document


def depth_exceeds(document: object, max_depth: int) -> bool:
    """True if ``document`` nests lists and dicts deeper than ``max_depth`` (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: list[object] = list(node.values())
        elif isinstance(node, list | tuple):
            children = list(node)
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | tuple))
    return False


def _too_deep(what: str, max_depth: int, source: str) -> InvalidInputError:
    return InvalidInputError(f"{what} nested deeper than {max_depth} levels", where=source)
