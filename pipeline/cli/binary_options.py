"""The binaries' options (``assemble``, ``release``, ``verify-release``): where binaries are read, how large."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipeline.cli.option_groups import option_group
from pipeline.network_defaults import DEFAULT_BINARY_SIZE_LIMIT

if TYPE_CHECKING:  # the fetcher (the HTTP stack) loads when a command runs, not for its --help (start-up time)
    from pipeline.binaries import BinaryFetcher
    from pipeline.release import BinaryCheck

BINARY_MIRROR_OPTION = typer.Option(
    [],
    "--binary-mirror",
    envvar="RELEASE_VECTOR_BINARY_MIRROR",
    metavar="FROM=TO",
    help="Read a binary whose url starts with FROM at TO + the rest instead (URL prefixes; the vector keeps the "
    "original url). Repeatable; the longest FROM wins. Example: https://github.com=http://127.0.0.1:8080/gh",
)
BINARY_SIZE_LIMIT_OPTION = typer.Option(
    DEFAULT_BINARY_SIZE_LIMIT,
    "--binary-size-limit",
    envvar="RELEASE_VECTOR_BINARY_SIZE_LIMIT",
    min=1,
    metavar="BYTES",
    help="The largest binary downloaded (a larger one is exit 3 naming its url and YAML line).",
)
NO_BINARIES_OPTION = typer.Option(
    False,
    "--no-binaries",
    envvar="RELEASE_VECTOR_NO_BINARIES",
    help="Do not download the binaries (every url under binaries): their urls get no digest:, and a note says so.",
)


@dataclass(frozen=True)
class BinaryFlags:
    binary_mirror: list[str]
    binary_size_limit: int

    def fetcher(self, cacert: Path | None = None) -> BinaryFetcher:
        """A fetcher with these options (``cacert``: the private CA the registries use, trusted for binaries too)."""
        from pipeline.binaries import BinaryFetcher, BinaryOptions, parse_binary_mirrors

        options = BinaryOptions(self.binary_size_limit, parse_binary_mirrors(self.binary_mirror), cacert)
        return BinaryFetcher(options)


BINARY_OPTIONS = option_group(
    BinaryFlags,
    binary_mirror=(list[str], BINARY_MIRROR_OPTION),
    binary_size_limit=(int, BINARY_SIZE_LIMIT_OPTION),
)


CHECK_BINARIES_OPTION = typer.Option(
    False,
    "--check-binaries",
    envvar="RELEASE_VECTOR_CHECK_BINARIES",
    help="Also download every binary the vector pins and compare its sha256 (heavy: off by default).",
)


@contextmanager
def binary_fetcher(flags: BinaryFlags | None, cacert: Path | None) -> Iterator[BinaryFetcher | None]:
    """The fetcher of ``flags`` for the run (None: binaries are not downloaded)."""
    if flags is None:
        yield None
        return
    with flags.fetcher(cacert) as fetcher:
        yield fetcher


def print_binary_checks(checks: Sequence[BinaryCheck]) -> None:
    """``ok``/``FAILED`` lines on stdout, as verify-release prints its images."""
    for check in checks:
        if check.ok:
            print(f"ok      {check.label}")
        elif check.unchecked is not None:
            print(f"UNCHECKED {check.label}")  # why: once, on stderr (pipeline.cli.verdicts)
        else:
            print(f"FAILED  {check.label}: {check.problem}")
