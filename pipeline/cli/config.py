"""``release-vector.yaml``: settings read as option defaults, so a repository's release is one short command.

Found at ``--config FILE``, else ``RELEASE_VECTOR_CONFIG`` (set but empty: no file), else
``release-vector.yaml`` in the working directory. Keys are long option names without ``--``; a key at the
top level applies to every command that has that option, a key under a command's name only to it::

    source: release/release.yaml
    exclude-image: ["docker.io/*"]
    release:
      key: env://COSIGN_PRIVATE_KEY
      recursive: true

Precedence: the command line, then the option's env var, then this file, then the built-in default (click's
own order for ``default_map``). Secrets are refused (exit 3 naming the key): a ``password``/``token``/``secret``
key (``identity-token: env://NAME`` names a source, and is allowed) or a PEM body in any value.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import InvalidInputError

CONFIG_ENV = "RELEASE_VECTOR_CONFIG"
DEFAULT_CONFIG = Path("release-vector.yaml")
CONFIG_LIMIT = 256 * 1024
_SECRET_KEY = re.compile(r"password|token|secret|credential", re.IGNORECASE)
_KEY = re.compile(r"[a-z][a-z0-9-]*")


@dataclass(frozen=True)
class Config:
    """The file's settings: ``shared`` for every command, ``commands[name]`` for one; ``path`` for messages."""

    path: Path | None = None
    shared: dict[str, Any] = field(default_factory=dict)
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)

    def for_command(self, name: str) -> dict[str, tuple[Any, str]]:
        """Option name -> (value, where it was set) for command ``name``, its own keys over shared ones."""
        where = str(self.path)
        found = {key: (value, where) for key, value in self.shared.items()}
        found |= {key: (value, f"{where}: {name}") for key, value in self.commands.get(name, {}).items()}
        return found


def config_path(option: Path | None, env: os._Environ[str] | dict[str, str]) -> Path | None:
    """``--config``, else ``RELEASE_VECTOR_CONFIG`` (empty: none), else ./release-vector.yaml if it exists."""
    if option is not None:
        return option
    if CONFIG_ENV in env:
        return Path(env[CONFIG_ENV]) if env[CONFIG_ENV] else None
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def _refuse_secret(key: str, value: Any, where: str) -> None:
    texts = value if isinstance(value, list) else [value]
    if any(isinstance(text, str) and "-----BEGIN" in text for text in texts):
        raise InvalidInputError(f"setting {key!r} holds a PEM body: keys belong in files or env://NAME", where=where)
    allowed = key == "identity-token" and isinstance(value, str) and value.startswith("env://")
    if _SECRET_KEY.search(key) and not allowed:
        raise InvalidInputError(
            f"setting {key!r} looks like a secret: a config file is committed, secrets are not",
            where=where,
            hint="pass it through the environment (COSIGN_PASSWORD, GITHUB_TOKEN, REGISTRY_PASSWORD, env://NAME)",
        )


def _settings(mapping: dict[Any, Any], where: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, value in mapping.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise InvalidInputError(f"setting {key!r} is not a long option name (like bundle-format)", where=where)
        if isinstance(value, dict):
            raise InvalidInputError(f"setting {key!r} is a mapping: only commands hold settings", where=where)
        _refuse_secret(key, value, where)
        settings[key] = value
    return settings


def parse_config(data: bytes, path: Path) -> Config:
    """The settings of a config file's bytes (YAML mapping); every problem exit 3 naming the file."""
    import yaml  # only when there is a file to read

    where = str(path)
    try:
        document = yaml.safe_load(data.decode("utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInputError(f"the config file is not valid YAML: {type(exc).__name__}", where=where) from None
    if not isinstance(document, dict):
        raise InvalidInputError("the config file is not a YAML mapping of settings", where=where)
    shared = {key: value for key, value in document.items() if not isinstance(value, dict)}
    commands = {key: value for key, value in document.items() if isinstance(value, dict)}
    return Config(
        path,
        _settings(shared, where),
        {str(name): _settings(settings, f"{where}: {name}") for name, settings in commands.items()},
    )


def load_config(path: Path | None) -> Config:
    if path is None:
        return Config()
    from pipeline.localfiles import read_bounded

    return parse_config(read_bounded(path, "config file", limit=CONFIG_LIMIT), path)


def default_map(command: Any, config: Config) -> dict[str, Any]:
    """click's ``default_map`` for ``command``: its parameters' names -> the config's values."""
    settings = config.for_command(command.name or "")
    defaults = {}
    for param in command.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("--") and opt[2:] in settings:
                defaults[param.name] = settings[opt[2:]][0]
    return defaults
