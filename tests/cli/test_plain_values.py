"""pipeline.cli.plain_values converts as typer's own (pydantic) converter does, or hands the value to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer._click.exceptions import BadParameter
from typer._coercion import build_runtime_param, resolve_type_descriptor
from typer.models import OptionInfo

from pipeline.cli import plain_values
from pipeline.cli.plain_values import _UNSURE, PlainValue, plain_value


class _Param:
    """What the converters read of a click parameter."""

    multiple = False
    nargs = 1
    name = "option"
    opts = ("--option",)
    human_readable_name = "--option"
    _runtime_param: Any = None

    def get_error_hint(self, ctx: Any = None) -> str:
        return "'--option'"


CASES: list[tuple[Any, dict[str, Any], Any]] = [
    (str, {}, "text"),
    (str, {}, ""),
    (str, {}, 5),  # from a config file: typer makes it "5"
    (bool, {}, True),
    (bool, {}, "1"),
    (bool, {}, "no"),
    (int, {}, "7"),
    (int, {}, 7),
    (int, {}, "-3"),
    (int, {}, "007"),
    (int, {}, " 7"),
    (int, {}, "x"),
    (int, {}, True),
    (int, {"min": 1, "max": 256}, "0"),
    (int, {"min": 1, "max": 256}, "256"),
    (int, {"min": 1, "max": 256}, 300),
    (int, {"min": 1, "clamp": True}, "0"),
    (float, {"min": 0.1}, "0.2"),
    (float, {"min": 0.1}, "0.05"),
    (float, {"min": 0.1}, 60),
    (float, {}, "1e3"),
    (float, {}, "inf"),
    (float, {}, "x"),
    (Path, {}, "some/file"),
    (Path, {}, Path("some/file")),
    (Path, {"exists": True}, "does/not/exist"),
    (list[str], {}, ("a", "b")),
    (list[str], {}, ["a", 1]),
    (list[str], {}, ()),
]


def _typer_own(annotation: Any, info: OptionInfo, value: Any) -> tuple[str, Any]:
    try:
        converter = build_runtime_param(resolve_type_descriptor(annotation, info))
        return "value", converter._coerce_value(value, param=_Param(), ctx=None)  # type: ignore[arg-type]
    except BadParameter as error:
        return "error", error.format_message()


def _ours(annotation: Any, info: OptionInfo, value: Any) -> tuple[str, Any]:
    try:
        converter = PlainValue(info, annotation, resolve_type_descriptor(annotation, info))
        return "value", converter._coerce_value(value, param=_Param(), ctx=None)  # type: ignore[arg-type]
    except BadParameter as error:
        return "error", error.format_message()


@pytest.mark.parametrize(("annotation", "settings", "value"), CASES, ids=repr)
def test_same_value_or_error_as_typer(annotation: Any, settings: dict[str, Any], value: Any) -> None:
    info = OptionInfo(**settings)
    ours, theirs = _ours(annotation, info, value), _typer_own(annotation, info, value)
    assert ours == theirs
    assert type(ours[1]) is type(theirs[1])


@pytest.mark.parametrize(
    ("annotation", "value"),
    [(str, "text"), (int, "7"), (float, "0.2"), (Path, "a"), (list[str], ("a",)), (bool, False)],
)
def test_plain_values_need_no_pydantic(annotation: Any, value: Any) -> None:
    assert plain_value(annotation, OptionInfo(), value) is not _UNSURE


def test_install_skips_what_typer_already_converts() -> None:
    param = _Param()
    param.type_descriptor = resolve_type_descriptor(str, OptionInfo())  # type: ignore[attr-defined]
    built = object()
    param._runtime_param = built
    plain_values.install([param])
    assert param._runtime_param is built
    param._runtime_param = None
    plain_values.install([param])
    assert isinstance(param._runtime_param, PlainValue)
