"""The typer application and the state its global options set.

Command modules (``pipeline.cli.keys``, ``pipeline.cli.blobs``, …) register their commands on ``app``.
Pretty exceptions are off: rich tracebacks print local variables, and locals can hold secrets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import typer

from pipeline import __version__
from pipeline.cli.config import CONFIG_ENV, Config, config_path, load_config
from pipeline.cli.help import HelpGroup, HelpTyper

app = HelpTyper(
    name="release-vector",
    help="Cut signed, cosign-compatible releases described by a release vector.",
    pretty_exceptions_enable=False,
    cls=HelpGroup,
    rich_markup_mode=None,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class GlobalState:
    debug: bool = False
    progress: bool = True  # --no-progress: no progress bars or [n/N] lines, only the summaries
    config: Config = field(default_factory=Config)  # release-vector.yaml: option defaults (pipeline.cli.config)


STATE = GlobalState()


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
