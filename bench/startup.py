"""Start-up cost of the CLI: the total import time (``python -X importtime``) of a few invocations.

Each case runs in a fresh interpreter (``python -X importtime -m pipeline …``) in an empty folder (no
release-vector.yaml: the tool's own cost, not YAML's); the figure is the sum of the top-level modules'
cumulative import times, in seconds, i.e. what the process spent importing before and while the command
ran, and the process's CPU time. Goal (issue 18): ``--help`` and ``verify`` start in 0.15 s of import time
or less. The ``floor`` rows import only third-party modules a case cannot do without (``python -c``): what
no change to this package can remove. Usage: ``.venv/bin/python -m bench.startup [--runs N]`` (the best of
N runs per case, default 5). Does not import the CLI package itself (it runs it as a program).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = ROOT / "tests/vectors/cosign/keys/podman-sigstore-key.pub"
CASES: dict[str, list[str]] = {
    "release-vector --help": ["-m", "pipeline", "--help"],
    "release-vector verify --help": ["-m", "pipeline", "verify", "--help"],
    "release-vector sign --help": ["-m", "pipeline", "sign", "--help"],
    "release-vector verify IMAGE --key K (unreachable)": [
        "-m", "pipeline", "verify", "127.0.0.1:1/bench/app@sha256:" + "0" * 64, "--key", str(KEY),
        "--request-timeout", "0.2",
    ],
    # What --help cannot go below: the interpreter's site and typer (the CLI framework).
    "floor of --help: import typer": ["-c", "import typer"],
    # What a verify run cannot go below: typer, the HTTP client a registry is read with, the X.509 and
    # key parsing of cryptography (the trusted root's certificates, the public key) and the RFC 3161 client.
    "floor of verify: typer httpx cryptography.x509 rfc3161_client": [
        "-c", "import pipeline, typer, httpx, cryptography.x509, rfc3161_client",
    ],
}  # fmt: skip
_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")


def import_seconds(argv: list[str]) -> tuple[float, float]:
    """(total import time, CPU seconds) of one run: import time = the cumulative times of the top-level
    imports (no leading spaces)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as empty:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, cwd=empty, check=False,
            env={**os.environ, "RELEASE_VECTOR_CONFIG": ""},
        )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = 0
    for line in proc.stderr.splitlines():
        match = _LINE.match(line)
        if match and not match.group(2).startswith(" "):
            total += int(match.group(1))
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return total / 1e6, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    # Byte-code as an installed wheel has it: with PYTHONDONTWRITEBYTECODE set (some CI and sandboxes) every
    # run would compile the package's sources again and count that as import time.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "pipeline")], check=True)
    for label, argv in CASES.items():
        results = [import_seconds(argv) for _ in range(runs)]
        imports, cpu = min(r[0] for r in results), min(r[1] for r in results)
        print(f"{label:62} import time {imports:.3f} s, CPU {cpu:.3f} s (best of {runs})")


if __name__ == "__main__":
    main()
