"""Start-up cost of the CLI: the total import time (``python -X importtime``) of a few invocations.

Each case runs in a fresh interpreter (``python -X importtime -m pipeline …``); the figure is the sum of the
top-level modules' cumulative import times, in seconds, i.e. what the process spent importing before and
while the command ran. Goal (issue 18): ``--help`` and ``verify`` start in 0.15 s of import time or less.
Usage: ``.venv/bin/python -m bench.startup [--runs N]`` (the best of N runs per case, default 5). Does not
import the CLI package itself (it runs it as a program).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = ROOT / "tests/vectors/cosign/keys/podman-sigstore-key.pub"
CASES: dict[str, list[str]] = {
    "release-vector --help": ["--help"],
    "release-vector verify --help": ["verify", "--help"],
    "release-vector verify IMAGE --key K (unreachable)": [
        "verify", "127.0.0.1:1/bench/app@sha256:" + "0" * 64, "--key", str(KEY), "--request-timeout", "0.2",
    ],
}  # fmt: skip
_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")


def import_seconds(argv: list[str]) -> float:
    """Total import time of one run: the cumulative times of the top-level imports (no leading spaces)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pipeline", *argv],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    total = 0
    for line in proc.stderr.splitlines():
        match = _LINE.match(line)
        if match and not match.group(2).startswith(" "):
            total += int(match.group(1))
    return total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    for label, argv in CASES.items():
        best = min(import_seconds(argv) for _ in range(runs))
        print(f"{label:55} import time {best:.3f} s (best of {runs})")


if __name__ == "__main__":
    main()
