"""Commands whose modules load when the command runs (or its help is asked for), not at start-up.

``release-vector --help`` and a command that needs little should not pay for importing every command's
dependencies (the network stack, cryptography, rich). The modules in :data:`LAZY_MODULES` are read, not
imported, to learn their commands' names and docstrings (:func:`lazy_commands`: ``@app.command("name")``
decorators found with ``ast``); a command is imported by :func:`load` when it is looked up. A module imported
eagerly (a line in ``pipeline/cli/__init__.py``) works as before.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAZY_MODULES = (
    "pipeline.cli.vector",
    "pipeline.cli.artifact",
    "pipeline.cli.images",
    "pipeline.cli.blobs",
    "pipeline.cli.keys",
    "pipeline.cli.rehearse",
    "pipeline.cli.release",
    "pipeline.cli.config_command",
    "pipeline.cli.attest",
    "pipeline.cli.attest_blob",
    "pipeline.cli.carry",
)


@dataclass(frozen=True)
class LazyCommand:
    name: str
    module: str
    help: str | None
    hidden: bool = False


def _command_name(decorator: ast.expr) -> tuple[str, bool] | None:
    """``("sign", hidden)`` for an ``@app.command("sign", …)`` decorator, else None."""
    if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
        return None
    if decorator.func.attr != "command" or not decorator.args:
        return None
    first = decorator.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None
    hidden = any(k.arg == "hidden" and isinstance(k.value, ast.Constant) and k.value.value for k in decorator.keywords)
    return first.value, hidden


def scan(module: str) -> list[LazyCommand]:
    """The commands ``module`` registers, from its source (nothing imported)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return []
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                named = _command_name(decorator)
                if named is not None:
                    found.append(LazyCommand(named[0], module, ast.get_docstring(node), named[1]))
    return found


@functools.cache
def lazy_commands() -> dict[str, LazyCommand]:
    return {command.name: command for module in LAZY_MODULES for command in scan(module)}


def load(group: Any, name: str, app: Any) -> None:
    """Import the module of command ``name`` (if lazy and not yet loaded) and add the commands it registers on
    ``app`` (the typer application) to ``group`` (its click group)."""
    lazy = lazy_commands().get(name)
    if lazy is None or name in group.commands:
        return
    importlib.import_module(lazy.module)
    add_registered(group, app)


def add_registered(group: Any, app: Any) -> None:
    """Every command registered on ``app`` that ``group`` does not have yet, built as typer builds them."""
    from typer.main import get_command_from_info

    for info in app.registered_commands:
        command = get_command_from_info(
            info, pretty_exceptions_short=app.pretty_exceptions_short, rich_markup_mode=app.rich_markup_mode
        )
        if command.name is not None and command.name not in group.commands:
            group.add_command(command)


def load_all() -> None:
    """Import every lazy command module (tests that look at ``app.registered_commands``)."""
    for module in LAZY_MODULES:
        importlib.import_module(module)
