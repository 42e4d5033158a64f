"""The rehearsal's names the ``rehearse`` command shows before it runs (its ``--help``, its summary's phases),
importable without the rehearsal's servers, the HTTP stack and cryptography (start-up time, issue 18)."""

from __future__ import annotations

from typing import Final

DEFAULT_VERSION: Final = "v0.0.0-rehearsal"
PHASES: Final = ("registry", "seed", "keys", "release", "verify-release", "rerun")
"""The rehearsal's phases, in order: each one's seconds are in the result (and ``total``)."""
