"""The network settings' defaults the command line shows in ``--help``, importable without the HTTP stack.

:mod:`pipeline.http` uses (and re-exports) them; the CLI's option modules take them from here, so that
resolving a command (and its ``--help``) does not import httpx (issue 18: start-up time). The request
timeout a run sets (``--request-timeout``) is kept here too: the option's callback sets it while the
command line is parsed, before the command has imported the HTTP stack.
"""

from __future__ import annotations

from typing import Final

DEFAULT_REQUEST_TIMEOUT: Final = 60.0
"""Seconds one request may take in all (connect, send, the whole answer), unless configured."""

REQUEST_TIMEOUT_ENV: Final = "RELEASE_VECTOR_REQUEST_TIMEOUT"

DEFAULT_CONCURRENCY: Final = 16
"""Images (requests) handled at once unless --concurrency says otherwise: one default for every command."""

DEFAULT_BINARY_SIZE_LIMIT: Final = 2 * 1024 * 1024 * 1024  # 2 GiB: a kernel or an initrd is tens of MiB
"""The largest binary downloaded unless --binary-size-limit says otherwise (:mod:`pipeline.binaries`)."""

DEFAULT_GITHUB_API_URL: Final = "https://api.github.com"
"""GitHub's REST API unless --github-api-url (env GITHUB_API_URL) says otherwise (:mod:`pipeline.targets.github`)."""

_request_timeout: float = DEFAULT_REQUEST_TIMEOUT


def set_request_timeout(seconds: float | None) -> None:
    """Set the total deadline of every request from now on (None: the default). The CLI calls this once
    per command from ``--request-timeout`` / ``RELEASE_VECTOR_REQUEST_TIMEOUT``."""
    global _request_timeout  # one process-wide setting, set by the composition root
    if seconds is not None and not seconds > 0:
        raise ValueError("the request timeout must be positive")
    _request_timeout = DEFAULT_REQUEST_TIMEOUT if seconds is None else float(seconds)


def request_timeout() -> float:
    """The total deadline of one small request, in seconds."""
    return _request_timeout
