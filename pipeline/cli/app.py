"""The typer application and the state its global options set.

Command modules (``pipeline.cli.keys``, ``pipeline.cli.blobs``, …) register their commands on ``app``.
Pretty exceptions are off: rich tracebacks print local variables, and locals can hold secrets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from pipeline import __version__
from pipeline.cli.config import CONFIG_ENV, config_path, load_config
from pipeline.cli.help import HelpGroup, HelpTyper
from pipeline.cli.lazy import load
from pipeline.cli.state import STATE


class AppGroup(HelpGroup):
    """The application's group: a lazy command's module is imported when the command is looked up, and the
    commands it registers on ``app`` join the group."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        load(self, cmd_name, app)
        return super().get_command(ctx, cmd_name)


app = HelpTyper(
    name="release-vector",
    help="Cut signed, cosign-compatible releases described by a release vector.",
    pretty_exceptions_enable=False,
    cls=AppGroup,
    rich_markup_mode=None,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)




def _version(value: bool) -> None:
    if value:
        typer.echo(f"release-vector {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", envvar="RELEASE_VECTOR_DEBUG", help="Show a traceback on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    no_color: bool = typer.Option(
        False, "--no-color", envvar="RELEASE_VECTOR_NO_COLOR",
        help="No colour on stderr (also off when it is not a terminal, or with NO_COLOR set).",
    ),
    no_progress: bool = typer.Option(
        False, "--no-progress", envvar="RELEASE_VECTOR_NO_PROGRESS", help="No progress bars or [n/N] lines."
    ),
    config: Path | None = typer.Option(
        None, "--config", envvar=CONFIG_ENV, metavar="FILE", show_default=False,
        help="Settings file: long option names as keys, shared or per command (default: release-vector.yaml"
        " in the working directory, if there is one; an empty RELEASE_VECTOR_CONFIG: none).",
    ),
) -> None:
    """Cut signed, cosign-compatible releases described by a release vector."""
    STATE.debug = debug
    STATE.config = load_config(config_path(config, os.environ))
    STATE.progress = not no_progress  # --no-color is read before parsing (pipeline.cli.style): errors too
