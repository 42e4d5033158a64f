"""Start-up cost of the CLI: the total import time (``python -X importtime``) of a few invocations.

Each case runs in a fresh interpreter (``python -X importtime -m pipeline …``) in an empty folder (no
release-vector.yaml: the tool's own cost, not YAML's); the figure is the sum of the top-level modules'
cumulative import times, in seconds, i.e. what the process spent importing before and while the command
ran, and the process's CPU time. Goal (issue 18): ``--help`` and ``verify`` start in 0.15 s of import time
or less.

A case that runs a command (not ``--help``) also shows its ``start``: the import time spent before the
command's own work began, i.e. the sum of the top-level imports -X importtime lists before the first module
the work imports (:data:`WORK_BEGINS`: for ``verify``, ``pipeline.signatures.verify``, the first import in
its function). That is the interpreter's start, the CLI framework, the application and the command's module
with its options; the rest of the total is what the work itself imported (the HTTP client, the verification
code) by the time the command ended. A run in which that module is not imported at the top level (then it
came with something else) shows no start.

The ``floor`` rows import only third-party modules a case cannot do without (``python -c``): what
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
    # What a verify run cannot go below before its first request: typer, the HTTP client a registry is read
    # with, and cryptography's key parsing (the --key file, the trusted root's Rekor keys are read before any
    # request, so that a bad key is exit 3 before the network). X.509 and the RFC 3161 client come with the
    # first signature checked, which an unreachable registry never gives.
    "floor of verify: typer httpx cryptography's key parsing": [
        "-c", "import pipeline, typer, httpx, cryptography.hazmat.primitives.serialization",
    ],
}  # fmt: skip
WORK_BEGINS: dict[str, str] = {
    "release-vector verify IMAGE --key K (unreachable)": "pipeline.signatures.verify",
}
"""For a case that runs a command: the first module its work imports (the first import in its function)."""
_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")


def import_seconds(argv: list[str], work_begins: str | None = None) -> tuple[float, float, float | None]:
    """(total import time, CPU seconds, start) of one run: import time = the cumulative times of the top-level
    imports (no leading spaces); start = those listed before ``work_begins`` (None: not a run, or that module
    was not imported at the top level)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as empty:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, cwd=empty, check=False,
            env={**os.environ, "RELEASE_VECTOR_CONFIG": ""},
        )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total, start = 0, None
    for line in proc.stderr.splitlines():
        match = _LINE.match(line)
        if match and not match.group(2).startswith(" "):
            if match.group(2) == work_begins and start is None:
                start = total
            total += int(match.group(1))
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return total / 1e6, cpu, None if start is None else start / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    # Byte-code as an installed wheel has it: with PYTHONDONTWRITEBYTECODE set (some CI and sandboxes) every
    # run would compile the package's sources again and count that as import time.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "pipeline")], check=True)
    for label, argv in CASES.items():
        results = [import_seconds(argv, WORK_BEGINS.get(label)) for _ in range(runs)]
        imports, cpu = min(r[0] for r in results), min(r[1] for r in results)
        starts = [r[2] for r in results if r[2] is not None]
        start = f" (start {min(starts):.3f} s)" if starts else ""
        print(f"{label:62} import time {imports:.3f} s{start}, CPU {cpu:.3f} s (best of {runs})")


if __name__ == "__main__":
    main()
