"""``--help`` as plain text that fits the terminal (80 columns at least) with nothing cut.

Every command made with ``@app.command`` renders with :func:`command_help` (``app`` is a :class:`HelpTyper`,
which gives each command the :class:`HelpCommand` class): options in panels by topic (an option group's
``panel``, else :mod:`pipeline.cli.help_names`' rules), metavars that say what a value is (none on flags),
the env var and default under the description, paragraphs wrapped as paragraphs. A long option name moves
its description to the next line instead of squeezing it. ``release-vector --help`` lists the commands in
their groups with the first sentence of each one's help (:func:`group_help`).
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Callable, Iterable
from typing import Any

import typer
from typer._click.exceptions import UsageError
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

from pipeline.cli import help_names as names
from pipeline.cli import plain_values
from pipeline.cli.usage_errors import suggest_command

MIN_WIDTH, MAX_WIDTH = 60, 120
DESCRIPTION_COLUMN = 30  # where descriptions start; option names longer than this get a line of their own


def terminal_width() -> int:
    return max(MIN_WIDTH, min(shutil.get_terminal_size((80, 24)).columns, MAX_WIDTH))


def paragraphs(text: str | None) -> list[str]:
    """A docstring's paragraphs (blank-line separated), each one line: its hard line breaks are not kept."""
    text = (text or "").replace("\b", "")
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", textwrap.dedent(text).strip()) if block.strip()]


def summary(help_text: str | None) -> str:
    """The first sentence of the first paragraph: a command's line in ``release-vector --help``."""
    first = (paragraphs(help_text) or [""])[0]
    sentence = re.split(r"(?<=[.;:!?])\s", first, maxsplit=1)[0]
    return sentence.rstrip(".;:")


def _long_name(param: Any) -> str:
    return next((opt for opt in param.opts if opt.startswith("--")), param.opts[0] if param.opts else "")


def panel_of(param: Any) -> str:
    """An option's panel: its ``rich_help_panel`` (set by its option group), else by its name (help_names)."""
    if getattr(param, "rich_help_panel", None):
        return str(param.rich_help_panel)
    name = _long_name(param)
    if name in names.PANEL_BY_OPTION:
        return names.PANEL_BY_OPTION[name]
    return next((panel for prefix, panel in names.PANEL_BY_PREFIX if name.startswith(prefix)), names.OPTIONS_PANEL)


def is_flag(param: Any) -> bool:
    return bool(getattr(param, "is_flag", False)) or param.bare_type() == "bool"


def metavar(param: Any) -> str:
    """What the value is (``KEY``, ``REF``, ``FROM=TO``, ``URL``…); empty for a flag."""
    if param.param_type_name == "argument":
        base = param.metavar or names.ARGUMENT_METAVARS.get(param.name, param.name.upper())
        return str(base) + ("..." if param.nargs == -1 else "")
    if is_flag(param):
        return ""
    if param.metavar:
        return str(param.metavar)
    name = _long_name(param)
    if name in names.METAVAR_BY_OPTION:
        return names.METAVAR_BY_OPTION[name]
    if name.endswith("-url"):
        return "URL"
    if name.endswith("-regexp"):
        return "REGEX"
    if name.endswith(("-dir", "-folder")):
        return "DIR"
    return names.TYPE_METAVARS.get(param.bare_type(), "VALUE")


def _default_text(param: Any) -> str | None:
    default = param.default
    if param.required or default is None or default == [] or default == "" or callable(default):
        return None
    if is_flag(param):
        return "on" if default and param.secondary_opts else None
    return str(default)


def _notes(param: Any) -> str:
    notes = []
    if getattr(param, "envvar", None) and not getattr(param, "hidden", False):
        envvars = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar)
        notes.append("env: " + ", ".join(envvars))
    default = _default_text(param)
    if default is not None:
        notes.append(f"default: {default}")
    if param.required:
        notes.append("required")
    repeatable = getattr(param, "multiple", False) or param.nargs == -1
    if repeatable and "repeatable" not in (getattr(param, "help", None) or "").lower():
        notes.append("repeatable")
    return f"[{'; '.join(notes)}]" if notes else ""


def param_names(param: Any) -> str:
    if param.param_type_name == "argument":
        return metavar(param)
    names_text = ", ".join(param.opts) + "".join(f" / {opt}" for opt in param.secondary_opts)
    value = metavar(param)
    return f"{names_text} {value}" if value else names_text


def _entry(label: str, description: list[str], width: int, column: int = DESCRIPTION_COLUMN) -> list[str]:
    """``  label   description…`` with the description wrapped in its column (or below a long label)."""
    lines = [line for block in description if block for line in _wrap(block, width - column)]
    indent = " " * column
    head = f"  {label}"
    if len(head) <= column - 2 and lines:
        return [head.ljust(column) + lines[0], *(indent + line for line in lines[1:])]
    return [head, *(indent + line for line in lines)]


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]


def param_entry(param: Any, width: int) -> list[str]:
    return _entry(param_names(param), [" ".join(paragraphs(getattr(param, "help", None))), _notes(param)], width)


def visible_params(command: Any, ctx: Any) -> list[Any]:
    return [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]


def is_verifying(command: Any) -> bool:
    name = command.name or ""
    return name.startswith("verify") or name == "pull"


def _panels(command: Any, params: Iterable[Any]) -> dict[str, list[Any]]:
    """Arguments first, then each panel in the order its first option comes; the general options last."""
    panels: dict[str, list[Any]] = {"Arguments": []}
    for param in params:
        panel = "Arguments" if param.param_type_name == "argument" else panel_of(param)
        if is_verifying(command):
            panel = names.VERIFYING_PANELS.get(panel, panel)
        panels.setdefault(panel, []).append(param)
    general = panels.pop(names.OPTIONS_PANEL, [])
    return {name: entries for name, entries in panels.items() if entries} | ({names.OPTIONS_PANEL: general}
                                                                             if general else {})  # fmt: skip


def usage(command: Any, ctx: Any) -> str:
    arguments = [param for param in command.get_params(ctx) if param.param_type_name == "argument"]
    pieces = [metavar(p) if p.required else f"[{metavar(p)}]" for p in arguments]
    if isinstance(command, TyperGroup):
        pieces = ["COMMAND [ARGS]..."]
    return " ".join(["Usage:", ctx.command_path, "[OPTIONS]", *pieces])


def _description(help_text: str | None, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in paragraphs(help_text):
        lines += ["", *("  " + line for line in _wrap(paragraph, width - 2))]
    return lines


def command_help(command: Any, ctx: Any, width: int) -> str:
    """A command's whole ``--help`` at ``width`` columns."""
    lines = _wrap(usage(command, ctx), width)
    lines += _description(command.help, width)
    for panel, params in _panels(command, visible_params(command, ctx)).items():
        lines += ["", f"{panel}:"]
        for param in params:
            lines += param_entry(param, width)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _peek(group: Any, ctx: Any, name: str) -> Any:
    """A command as far as the list needs it: loaded, or its lazy stand-in (name, help; nothing imported)."""
    from pipeline.cli.lazy import lazy_commands

    if name in getattr(group, "commands", {}) or name not in lazy_commands():
        return group.get_command(ctx, name)
    lazy = lazy_commands()[name]
    return _Summary(lazy.help, lazy.hidden)


class _Summary:
    short_help = None
    rich_help_panel = None

    def __init__(self, help_text: str | None, hidden: bool) -> None:
        self.help, self.hidden = help_text, hidden


def command_panels(group: Any, ctx: Any) -> dict[str, list[str]]:
    """The group's visible commands by panel, in :data:`help_names.COMMAND_PANELS`' order, the others last."""
    commands = {name: _peek(group, ctx, name) for name in group.list_commands(ctx)}
    visible = {name: command for name, command in commands.items() if command is not None and not command.hidden}
    panels: dict[str, list[str]] = {panel: [n for n in listed if n in visible]
                                    for panel, listed in names.COMMAND_PANELS.items()}  # fmt: skip
    listed = {name for entries in panels.values() for name in entries}
    for name, command in visible.items():
        if name not in listed:
            panel = getattr(command, "rich_help_panel", None) or names.OTHER_COMMANDS
            panels.setdefault(panel, []).append(name)
    return {panel: entries for panel, entries in panels.items() if entries}


def command_column(panels: dict[str, list[str]]) -> int:
    """Where the command list's summaries start: two spaces after the longest name."""
    return max((len(name) for entries in panels.values() for name in entries), default=0) + 4


def command_summary(command: Any) -> str:
    return str(command.short_help or summary(command.help))


def group_help(group: Any, ctx: Any, width: int) -> str:
    """``release-vector --help``: usage, description, the global options, the commands by group."""
    lines = _wrap(usage(group, ctx), width) + _description(group.help, width)
    lines += ["", "Options:"]
    for param in visible_params(group, ctx):
        lines += param_entry(param, width)
    panels = command_panels(group, ctx)
    column = command_column(panels)
    for panel, entries in panels.items():
        lines += ["", f"{panel}:"]
        for name in entries:
            lines += _entry(name, [command_summary(_peek(group, ctx, name))], width, column)
    lines += ["", f"Run '{ctx.command_path} COMMAND --help' for a command's options."]
    return "\n".join(line.rstrip() for line in lines) + "\n"


class HelpCommand(TyperCommand):
    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        """The context with the config file's settings as option defaults (pipeline.cli.config)."""
        from pipeline.cli.config import default_map
        from pipeline.cli.state import STATE

        extra.setdefault("default_map", default_map(self, STATE.config) or None)
        return super().make_context(info_name, args, parent, **extra)

    def get_params(self, ctx: Any) -> list[Any]:
        return plain_values.install(super().get_params(ctx))  # option values without importing pydantic

    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(command_help(self, ctx, terminal_width()))


class HelpGroup(TyperGroup):
    """The top-level group: lists the lazy commands too (pipeline.cli.lazy); the application's group
    (``pipeline.cli.app``) loads one when it is looked up."""

    def get_params(self, ctx: Any) -> list[Any]:
        return plain_values.install(super().get_params(ctx))  # the global options' values without pydantic

    def list_commands(self, ctx: Any) -> list[str]:
        from pipeline.cli.lazy import lazy_commands

        return [*super().list_commands(ctx), *(name for name in lazy_commands() if name not in self.commands)]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as error:
            suggest_command(error, args[0] if args else "", self.list_commands(ctx))
            raise

    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(group_help(self, ctx, terminal_width()))


class HelpTyper(typer.Typer):
    """A Typer whose commands render their help with :func:`command_help`."""

    def command(  # the same parameters, cls defaulting to HelpCommand
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(name, cls=cls or HelpCommand, **kwargs)
