"""The bounded JSON loader: deep or large documents are InvalidInputError naming their source."""

from __future__ import annotations

import json

import pytest

from pipeline import jsonbounded
from pipeline.errors import InvalidInputError


def test_200000_nested_brackets_are_invalid_input_naming_the_source() -> None:
    with pytest.raises(InvalidInputError, match="nested deeper than 100 levels") as caught:
        jsonbounded.loads(b"[" * 200_000 + b"]" * 200_000, source="https://x/token")
    assert caught.value.where == "https://x/token"


def test_depth_just_over_the_limit_is_refused_and_at_the_limit_accepted() -> None:
    assert jsonbounded.loads("[" * 100 + "]" * 100, source="s") is not None
    with pytest.raises(InvalidInputError):
        jsonbounded.loads('{"a":' * 101 + "1" + "}" * 101, source="s")


def test_size_limit() -> None:
    with pytest.raises(InvalidInputError, match="too large"):
        jsonbounded.loads(b"[" + b"1," * 100 + b"1]", source="s", max_bytes=100)


def test_syntax_errors_stay_value_errors_for_the_callers_wording() -> None:
    with pytest.raises(json.JSONDecodeError):
        jsonbounded.loads(b"{nope", source="s")


def test_hooks_are_passed_on() -> None:
    pairs = jsonbounded.loads('{"a":1}', source="s", object_pairs_hook=lambda p: p)
    assert pairs == [("a", 1)]
