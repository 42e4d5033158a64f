"""The network settings' defaults the command line shows in ``--help``, importable without the HTTP stack.

:mod:`pipeline.http` uses (and re-exports) them; the CLI's option modules take them from here, so that
resolving a command (and its ``--help``) does not import httpx (issue 18: start-up time).
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
