"""Run sigstore-js (``@sigstore/verify``, installed by ``make install`` into ``.venv/node``) on a bundle.

The tests that use it skip (naming the reason) when node or the package is missing, as ``importorskip``
does for sigstore-python.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_PREFIX = ROOT / ".venv" / "node"
SCRIPT = Path(__file__).with_name("sigstore_js_verify.cjs")


def sigstore_js_verify(
    bundle: Path,
    trusted_root: Path,
    *,
    artifact: Path | None = None,
    public_key: Path | None = None,
    identity: str | None = None,
    issuer: str | None = None,
) -> dict[str, Any]:
    """sigstore-js's verdict: ``{"ok": True, ...}`` or ``{"ok": False, "code": ..., "message": ...}``."""
    node = shutil.which("node")
    if node is None or not (NODE_PREFIX / "node_modules" / "@sigstore" / "verify").is_dir():
        pytest.skip("sigstore-js (@sigstore/verify) is not installed: run make install")
    args: dict[str, object] = {"bundle": str(bundle), "trustedRoot": str(trusted_root)}
    for name, value in (("artifact", artifact), ("publicKey", public_key), ("identity", identity),
                        ("issuer", issuer)):  # fmt: skip
        if value is not None:
            args[name] = str(value)
    completed = subprocess.run(
        [node, str(SCRIPT), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "SIGSTORE_JS_PREFIX": str(NODE_PREFIX)},
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(completed.stdout)
    return result
