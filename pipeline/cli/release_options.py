"""The options ``release`` and ``verify-release`` share: the release target, mirrors, excluded images."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipeline.cli.option_groups import option_group
from pipeline.cli.vector import MIRRORS_OPTION
from pipeline.errors import UsageError
from pipeline.network_defaults import DEFAULT_GITHUB_API_URL

if TYPE_CHECKING:  # the targets (the HTTP stack) load when a release runs, not for --help (start-up time)
    from pipeline.targets import ReleaseTarget

__all__ = [
    "EXCLUDE_OPTION",
    "MIRRORS_OPTION",
    "NO_PUBLISH_OPTION",
    "TARGET_OPTIONS",
    "TargetOptions",
    "check_destination",
    "release_target",
]

GITHUB_TOKEN_ENV = "GITHUB_TOKEN"  # noqa: S105 (a variable name)

GITHUB_REPOSITORY_OPTION = typer.Option(
    None,
    "--github-repository",
    envvar="RELEASE_VECTOR_GITHUB_REPOSITORY",
    help="Publish to (verify against) the GitHub releases of OWNER/REPO; token from GITHUB_TOKEN.",
)
RELEASE_DIR_OPTION = typer.Option(
    None,
    "--release-dir",
    envvar="RELEASE_VECTOR_RELEASE_DIR",
    help="Local release target: DIR/VERSION/ gets cosign.pub, release.yaml and release.json.",
)
GITHUB_API_URL_OPTION = typer.Option(
    DEFAULT_GITHUB_API_URL,
    "--github-api-url",
    envvar="GITHUB_API_URL",
    help="GitHub REST API base URL (GitHub Enterprise: https://HOST/api/v3).",
)
EXCLUDE_OPTION = typer.Option(
    [],
    "--exclude-image",
    envvar="RELEASE_VECTOR_EXCLUDE_IMAGE",
    help="Glob of image names (as normalised: docker.io/library/python) that the release does not sign and "
    "verify-release does not check, e.g. third-party images you cannot push signatures to. Repeatable.",
)


@dataclass(frozen=True)
class TargetOptions:
    """Where the release is published (verified against): GitHub, a release folder, or neither."""

    github_repository: str | None
    release_dir: Path | None
    github_api_url: str


TARGET_OPTIONS = option_group(
    TargetOptions,
    "Release target",
    github_repository=(str | None, GITHUB_REPOSITORY_OPTION),
    release_dir=(Path | None, RELEASE_DIR_OPTION),
    github_api_url=(str, GITHUB_API_URL_OPTION),
)


NO_PUBLISH_OPTION = typer.Option(
    False,
    "--no-publish",
    envvar="RELEASE_VECTOR_NO_PUBLISH",
    help="Push and sign only, publish nothing (no --github-repository or --release-dir): the plan and the "
    "summary say 'not published'. Without it a release needs one of the two.",
)


def check_destination(options: TargetOptions, no_publish: bool) -> None:
    """A release always has a destination: a target, or ``--no-publish`` said out loud (never both)."""
    has_target = options.github_repository is not None or options.release_dir is not None
    if no_publish and has_target:
        raise UsageError("--no-publish publishes nothing: drop it, or drop --github-repository/--release-dir")
    if not no_publish and not has_target:
        raise UsageError(
            "a release needs --github-repository or --release-dir (where it is published), or --no-publish"
        )


@contextmanager
def release_target(options: TargetOptions) -> Iterator[ReleaseTarget | None]:
    """The release target the options name (None: none); the GitHub token from GITHUB_TOKEN."""
    from pipeline.targets import GitHubOptions, GitHubTarget, ReleaseDirTarget
    from pipeline.targets.github import github_token

    github_repository, release_dir = options.github_repository, options.release_dir
    if github_repository and release_dir:
        raise UsageError("give --github-repository or --release-dir, not both")
    if release_dir is not None:
        yield ReleaseDirTarget(release_dir)
        return
    if github_repository is None:
        yield None
        return
    token = github_token(os.environ.get(GITHUB_TOKEN_ENV), f"env://{GITHUB_TOKEN_ENV}")
    with GitHubTarget(github_repository, token, GitHubOptions(api_url=options.github_api_url)) as target:
        yield target
