"""The state the global options set (``--debug``, ``--no-progress``, ``--config``), read by the help, the
progress lines and the commands; apart from the typer application so that none of them imports it."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.cli.config import Config


@dataclass
class GlobalState:
    debug: bool = False
    progress: bool = True  # --no-progress: no progress bars or [n/N] lines, only the summaries
    config: Config = field(default_factory=Config)  # release-vector.yaml: option defaults (pipeline.cli.config)


STATE = GlobalState()
