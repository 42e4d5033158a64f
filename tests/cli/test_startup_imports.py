"""Start-up (issue 18): what a command imports before it does anything, as module sets (no timed asserts).

Each case runs in a fresh interpreter, from a folder without a release-vector.yaml, and lists the modules
loaded once the command has finished. ``bench/startup.py`` measures the times these sets stand for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli.lazy import lazy_commands

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_KEY = ROOT / "tests/vectors/cosign/keys/podman-sigstore-key.pub"

# Never needed to show help or to resolve a command: the network stack, cryptography, the terminal UI,
# typer's pydantic-based converter (pipeline.cli.plain_values), the signing and verifying code.
NOT_FOR_HELP = (
    "cryptography", "nacl", "httpx", "httpcore", "h11", "certifi", "rich", "pydantic", "pydantic_core",
    "rfc3161_client", "yaml", "pipeline.http", "pipeline.oci.client", "pipeline.cosign.keys",
    "pipeline.cosign.verify", "pipeline.signatures", "pipeline.sigstore",
)  # fmt: skip
# Not needed by a verify run: signing (keyless, Fulcio, OIDC, the signing configs), the terminal UI, pydantic,
# httpx's own command-line tool (click, rich, pygments; see pipeline/__init__.py).
NOT_FOR_VERIFY = (
    "rich", "pygments", "click", "pydantic", "pydantic_core", "httpx._main", "pipeline.sigstore.keyless",
    "pipeline.sigstore.fulcio_client", "pipeline.sigstore.oidc", "pipeline.sigstore.signing_config",
    "pipeline.cli.signing_config_options", "pipeline.signatures.sign", "pipeline.signatures.keystores",
    # Checking a signature's timestamp, decrypting a private key, reading YAML: nothing of it happens before
    # the first request, which fails against an unreachable registry.
    "rfc3161_client", "nacl", "yaml",
    # Nor X.509 (a certificate is read with the first keyless signature or timestamp), nor the Sigstore bundle
    # verifier and writers: the signature layouts import them when they check or write one.
    "cryptography.x509", "pipeline.cosign.certificate", "pipeline.cosign.sct", "pipeline.sigstore.verify",
    "pipeline.sigstore.writer", "pipeline.sigstore.blob_writer",
)  # fmt: skip

_PROBE = """
import json, sys
from pipeline.cli import run
code = run(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(m for m in sys.modules if sys.modules[m] is not None)}))
"""


def _loaded(tmp_path: Path, *argv: str) -> tuple[int, set[str]]:
    env = {**os.environ, "RELEASE_VECTOR_CONFIG": "", "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["code"], set(result["modules"])


def _offending(modules: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in forbidden))


# Every command's help, and the application's: a new command is checked without being listed here.
HELP_CASES = [["--help"], *([name, "--help"] for name in sorted(lazy_commands()))]


@pytest.mark.parametrize("argv", HELP_CASES, ids=" ".join)
def test_help_loads_no_heavy_module(tmp_path: Path, argv: list[str]) -> None:
    code, modules = _loaded(tmp_path, *argv)
    assert code == 0
    assert _offending(modules, NOT_FOR_HELP) == []


def test_verify_run_loads_no_signing_stack(tmp_path: Path) -> None:
    image = "127.0.0.1:1/startup/app@sha256:" + "0" * 64  # nothing listens on port 1: unchecked, exit 5
    code, modules = _loaded(tmp_path, "verify", image, "--key", str(PUBLIC_KEY), "--request-timeout", "0.2")
    assert code == 5
    assert "pipeline.signatures.verify" in modules  # it did run the verification
    assert _offending(modules, NOT_FOR_VERIFY) == []


def test_httpx_works_without_its_command_line_tool() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import pipeline, httpx, sys; print(httpx.Client, 'rich' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert proc.stdout.split()[-1] == "False"


def test_the_request_timeout_option_is_set_without_the_http_stack() -> None:
    # Its callback runs while the command line is parsed, before the command's work: it must not load httpx.
    probe = (
        "import sys; from pipeline.cli.registry_options import _apply_request_timeout; _apply_request_timeout(0.2);"
        " from pipeline.network_defaults import request_timeout; print(request_timeout(), 'httpx' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["0.2", "False"]
