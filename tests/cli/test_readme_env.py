"""README's environment-variable table names every variable an option's --help shows (issue 18)."""

from __future__ import annotations

import re

import typer.main

from pipeline.cli import app
from tests.conftest import REPO_ROOT


def readme_variables() -> set[str]:
    text = (REPO_ROOT / "README.md").read_text()
    table = text.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))


def cli_variables() -> set[str]:
    group = typer.main.get_command(app)
    ctx = group.make_context("release-vector", ["--help"], resilient_parsing=True)
    commands = [group, *(group.get_command(ctx, name) for name in group.list_commands(ctx))]
    found = set()
    for command in commands:
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            found |= {envvar} if isinstance(envvar, str) else set(envvar or ())
    return found


def test_the_env_table_lists_every_variable_of_the_options() -> None:
    assert cli_variables() - readme_variables() == set()
