"""Option values converted without pydantic where that conversion is plain (start-up time, issue 18).

typer (0.2x) converts every option value, defaults included, through a pydantic ``TypeAdapter``: the first
one imports pydantic (a good part of a command's start-up) although this CLI's options are only ``str``,
``Path``, ``int``, ``float``, ``bool`` and lists of them. :func:`install` gives each such parameter of a
command a :class:`PlainValue` converter before its values are processed: a value that already has its type,
or a plain string for a ``str``/``Path``/``int``/``float`` option, is converted here exactly as typer's
adapter would (``Path`` through typer's own path checks); anything else (``"1"`` for a flag from an env var,
`` 7 `` with spaces, an out-of-range number, a choice, a parser) goes to typer's converter, which gives
the same value and the same error messages as before. A typer without these internals is left as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

try:  # typer's private coercion layer (typer >= 0.2x); older typers convert with click's types: nothing to do
    from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
    from typer._param_types import coerce_cli_path
except ImportError:  # pragma: no cover
    RuntimeParam = None  # type: ignore[assignment,misc]

_UNSURE = object()
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def _number(annotation: type[Any], value: Any, info: Any) -> Any:
    if info.clamp:
        return _UNSURE
    if isinstance(value, str):
        if not (_INT if annotation is int else _FLOAT).fullmatch(value):
            return _UNSURE
    elif type(value) not in ((int,) if annotation is int else (int, float)):  # a bool is neither
        return _UNSURE
    number = annotation(value)
    if (info.min is not None and number < info.min) or (info.max is not None and number > info.max):
        return _UNSURE  # typer's converter says what is wrong, in its words
    return number


def plain_value(annotation: Any, info: Any, value: Any, param: Any = None, ctx: Any = None) -> Any:
    """``value`` converted for ``annotation`` as typer would, or ``_UNSURE`` (typer's converter decides)."""
    if get_origin(annotation) is list:
        if not isinstance(value, (list, tuple)):
            return _UNSURE
        items = [plain_value(get_args(annotation)[0], info, item, param, ctx) for item in value]
        return _UNSURE if any(item is _UNSURE for item in items) else items
    if annotation is str:
        return value if isinstance(value, str) else _UNSURE
    if annotation is bool:
        return value if isinstance(value, bool) else _UNSURE
    if annotation is int or annotation is float:
        return _number(annotation, value, info)
    if annotation is Path and info.path_type is None and not info.allow_dash and isinstance(value, (str, Path)):
        return coerce_cli_path(Path(value), info, path_type=Path, param=param, ctx=ctx)
    return _UNSURE


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class PlainValue(RuntimeParam):
        """Converts what :func:`plain_value` can; hands the rest to typer's converter (built once, when needed)."""

        descriptor: TypeDescriptor

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            plain = plain_value(self.annotation, self.parameter_info, value, param, ctx)
            if plain is not _UNSURE:
                return plain
            typer_own = build_runtime_param(self.descriptor)
            if param is not None:
                param._runtime_param = typer_own  # later values of this parameter go there directly
            return typer_own._coerce_value(value, param=param, ctx=ctx)


def install(params: list[Any]) -> list[Any]:
    """Give each parameter typer has not built a converter for yet a :class:`PlainValue`; ``params`` back."""
    if RuntimeParam is None:  # pragma: no cover
        return params
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", _UNSURE) is not None:
            continue
        info = descriptor.parameter_info
        if info.parser is None and descriptor.file_annotation is None and not descriptor.is_choice:
            param._runtime_param = PlainValue(info, descriptor.annotation, descriptor)
    return params
