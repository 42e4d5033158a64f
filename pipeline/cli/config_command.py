"""``release-vector config``: the effective settings, each with where it comes from (flag > env > file > default)."""

from __future__ import annotations

import os
from typing import Any

import typer

from pipeline.cli.app import app
from pipeline.cli.common import print_json
from pipeline.cli.state import STATE
from pipeline.errors import InvalidInputError


def _long_options(command: Any) -> list[Any]:
    return [p for p in command.params if p.param_type_name == "option" and any(o.startswith("--") for o in p.opts)]


def _name(param: Any) -> str:
    return str(next(o for o in param.opts if o.startswith("--")))[2:]


def effective(command: Any) -> list[dict[str, Any]]:
    """Every long option of ``command``: its value and source (``env NAME``, the config file, or default)."""
    settings = STATE.config.for_command(command.name or "")
    rows = []
    for param in _long_options(command):
        name = _name(param)
        envvars = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or [])
        env = next((var for var in envvars if os.environ.get(var)), None)
        value: Any
        if env is not None:
            value, source = os.environ[env], f"env {env}"
        elif name in settings:
            value, where = settings[name]
            source = f"config {where}"
        else:
            value, source = param.default if not callable(param.default) else None, "default"
        rows.append({"command": command.name, "option": name, "value": value, "source": source})
    return rows


def check_known(commands: dict[str, Any]) -> None:
    """Every key of the config file names an option (of every command, or of its command): exit 3 if not."""
    config = STATE.config
    known = {_name(p) for command in commands.values() for p in _long_options(command)}
    for key in config.shared:
        if key not in known:
            raise InvalidInputError(f"setting {key!r} is no option of any command", where=str(config.path))
    for name, settings in config.commands.items():
        if name not in commands:
            raise InvalidInputError(f"{name!r} is no command", where=str(config.path))
        own = {_name(p) for p in _long_options(commands[name])}
        for key in settings:
            if key not in own:
                raise InvalidInputError(f"setting {key!r} is no option of {name}", where=f"{config.path}: {name}")


@app.command("config")
def config_command(
    ctx: typer.Context,
    command: str | None = typer.Argument(None, help="Show every option of this command (default: what is set)."),
    json_output: bool = typer.Option(False, "--json", help="Print the settings as a JSON array."),
) -> None:
    """Print the effective settings and their sources: env, the config file, or default.

    Without COMMAND only what the environment or the config file sets is listed; a key of the config file
    that is no option is an error (exit 3).
    """
    group: Any = ctx.parent.command if ctx.parent is not None else None
    names = [name for name in group.list_commands(ctx) if name != "config"]
    commands = {name: group.get_command(ctx, name) for name in names}
    check_known(commands)
    if command is not None and command not in commands:
        raise InvalidInputError(f"no command {command!r}", where="release-vector config")
    rows = [row for name in ([command] if command else names) for row in effective(commands[name])]
    rows = rows if command else [row for row in rows if row["source"] != "default"]
    if json_output:
        print_json({"config": str(STATE.config.path) if STATE.config.path else None, "settings": rows})
        return
    print(f"config file: {STATE.config.path or '(none)'}")
    for row in rows:
        print(f"{row['command']} --{row['option']} = {row['value']!r}  ({row['source']})")
