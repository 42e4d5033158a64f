"""Every registered command's ``--help`` at 80 and 120 columns: nothing cut, every option and env var there,
panels by topic, metavars that mean something, one short line per command in ``release-vector --help``."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main

from pipeline.cli import app, run
from pipeline.cli.help import command_column, command_help, command_panels, command_summary, group_help, metavar

GROUP = typer.main.get_command(app)
CONTEXT = GROUP.make_context("release-vector", ["--help"], resilient_parsing=True)
COMMANDS = sorted(GROUP.list_commands(CONTEXT))
WIDTHS = (80, 120)


def command_context(name: str) -> tuple[Any, Any]:
    command = GROUP.get_command(CONTEXT, name)
    return command, command.make_context(name, [], parent=CONTEXT, resilient_parsing=True)


def options_of(command: Any, ctx: Any) -> list[Any]:
    return [p for p in command.get_params(ctx) if p.param_type_name == "option" and not p.hidden]


def assert_fits(text: str, width: int) -> None:
    assert "…" not in text
    too_long = [line for line in text.splitlines() if len(line) > width]
    assert too_long == []


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_help_fits_and_lists_every_option(name: str, width: int) -> None:
    command, ctx = command_context(name)
    text = command_help(command, ctx, width)
    assert_fits(text, width)
    for option in options_of(command, ctx):
        for opt in [*option.opts, *option.secondary_opts]:
            assert opt in text, f"{name}: {opt} missing"
        envvars = [option.envvar] if isinstance(option.envvar, str) else list(option.envvar or [])
        for envvar in envvars:
            assert envvar in text, f"{name}: {envvar} missing"
    assert "<bool>" not in text and "<str>" not in text and "list[str]" not in text


@pytest.mark.parametrize("name", COMMANDS)
def test_flags_have_no_metavar_and_values_a_meaningful_one(name: str) -> None:
    command, ctx = command_context(name)
    for option in options_of(command, ctx):
        value = metavar(option)
        if option.is_flag:
            assert value == ""
        else:
            assert value and value.upper() not in {"VALUE", "<STR>", "STR"}, f"{name}: {option.opts}"


@pytest.mark.parametrize(("name", "shown"), [("sign-blob", "v3|legacy"), ("sign", "legacy|v3|both")])
def test_bundle_format_shows_the_formats_the_command_takes(name: str, shown: str) -> None:
    command, ctx = command_context(name)
    [option] = [o for o in options_of(command, ctx) if "--bundle-format" in o.opts]
    assert metavar(option) == shown  # a blob's one bundle file holds one format: "both" is refused there


@pytest.mark.parametrize("width", WIDTHS)
def test_top_level_help_groups_every_command_with_one_line(width: int) -> None:
    text = group_help(GROUP, CONTEXT, width)
    assert_fits(text, width)
    panels = command_panels(GROUP, CONTEXT)
    assert sorted(name for entries in panels.values() for name in entries) == COMMANDS
    column = command_column(panels)
    for name in COMMANDS:
        line = command_summary(GROUP.get_command(CONTEXT, name))
        assert len(line) <= 80 - column, f"{name}: its first sentence does not fit one line at 80 columns"
        assert f"  {name}".ljust(column) + line in text


def test_top_level_help_orders_the_release_commands_first() -> None:
    panels = command_panels(GROUP, CONTEXT)
    order = [panel for panel in panels if panel in ("Release", "Images", "Files", "Keys")]
    assert order == ["Release", "Images", "Files", "Keys"]
    assert panels["Release"][:6] == ["rehearse", "release", "verify-release", "assemble", "push", "pull"]
    assert panels["Images"] == ["sign", "verify"]
    assert panels["Keys"] == ["generate-key-pair", "public-key"]


def test_release_help_has_panels_by_topic() -> None:
    command, ctx = command_context("release")
    text = command_help(command, ctx, 80)
    for panel in ("Release:", "Signing:", "Keyless:", "Transparency log:", "Registry:", "Release target:", "Output:"):
        assert f"\n{panel}\n" in text
    assert "--registry-mirror FROM=TO" in text
    assert "--repository REGISTRY/REPO" in text


def test_paragraphs_are_rewrapped_not_broken_at_the_docstrings_line_ends() -> None:
    command, ctx = command_context("verify")
    text = command_help(command, ctx, 120)
    assert "Sigstore bundles attached as OCI referrers" in text


def test_help_through_the_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert run(["release", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: release-vector release [OPTIONS] VERSION")
    assert_fits(out, 80)


def test_shell_completion_completes_commands_and_options(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["--show-completion", "bash"]) == 0
    assert "_release_vector_completion" in capsys.readouterr().out
    monkeypatch.setenv("_RELEASE_VECTOR_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "release-vector verify-rel")
    monkeypatch.setenv("COMP_CWORD", "1")
    run([])
    assert capsys.readouterr().out.split() == ["verify-release"]
    monkeypatch.setenv("COMP_WORDS", "release-vector verify --check-ref")
    monkeypatch.setenv("COMP_CWORD", "2")
    run([])
    assert capsys.readouterr().out.split() == ["--check-reference"]
