"""The attestation commands, registered by one import in ``pipeline/cli/__init__.py``."""

from __future__ import annotations

from pipeline.cli import attest, attest_blob

__all__ = ["attest", "attest_blob"]
