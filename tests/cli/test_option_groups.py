"""pipeline/cli/option_groups.py: a frozen dataclass's options defined once, handed to a command as one object."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.cli.lazy import load_all
from pipeline.cli.option_groups import grouped, option_group
from pipeline.cli.trust_options import VERIFY_OPTIONS
from pipeline.cosign.policy import TrustOptions


@dataclass(frozen=True)
class Pair:
    left: str
    right: Path | None


PAIR = option_group(
    Pair,
    left=(str, typer.Option("l", "--left", envvar="TEST_LEFT", help="Left.")),
    right=(Path | None, typer.Option(None, "--right", help="Right.")),
)


def test_a_group_becomes_its_options_in_place_and_the_command_gets_the_object() -> None:
    seen: list[object] = []
    demo = typer.Typer()

    @demo.command()
    @grouped
    def command(first: int = typer.Option(1, "--first"), pair: Pair = PAIR, last: bool = typer.Option(False)) -> None:
        seen.append((first, pair, last))

    assert list(inspect.signature(command).parameters) == ["first", "left", "right", "last"]
    result = CliRunner().invoke(demo, ["--right", "r.pem", "--last"], env={"TEST_LEFT": "from-env"})
    assert result.exit_code == 0, result.output
    assert seen == [(1, Pair("from-env", Path("r.pem")), True)]
    assert "--left" in CliRunner().invoke(demo, ["--help"]).output


def test_a_group_must_name_every_field_and_nothing_else() -> None:
    with pytest.raises(TypeError, match="not its fields"):
        option_group(Pair, left=(str, typer.Option("l", "--left")))


def test_two_groups_with_a_common_parameter_are_refused() -> None:
    def command(one: Pair = PAIR, two: Pair = PAIR) -> None: ...

    with pytest.raises(TypeError, match="repeats a parameter name"):
        grouped(command)


@pytest.mark.parametrize("name", ["verify", "verify-blob", "pull", "verify-release"])
def test_every_verify_command_lists_the_one_set_of_verify_options(name: str) -> None:
    load_all()  # the command modules load lazily (pipeline.cli.lazy)
    command = next(c for c in app.registered_commands if c.name == name)
    assert command.callback is not None
    parameters = inspect.signature(command.callback).parameters
    fields = [option for option, _, _ in VERIFY_OPTIONS.options]
    assert fields == list(TrustOptions.__dataclass_fields__)
    assert all(parameters[field].default is option for field, _, option in VERIFY_OPTIONS.options)
