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
