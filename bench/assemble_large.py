"""Benchmark of ``release-vector assemble --no-resolve`` over a large synthetic source (no network).

Writes a metal-stack-shaped source with N entries under ``docker-images`` (each ``name`` + ``tag``, in groups of
1,000), runs ``assemble --no-resolve`` on it in a fresh Python process per N
(so peak RSS is that run's), and prints wall time, CPU time, peak RSS and the exit code. Goal: time and memory
growing linearly in N, and a source over ``pipeline.vector.MAX_IMAGE_ENTRIES`` (50,000) refused early and
cheaply (exit 3) while the limit itself assembles in <= 10 s and <= 300 MB.

    python -m bench.assemble_large [--entries 10000 50000 100000] [--no-limit]

``--no-limit`` lifts the entry limit to measure what a larger source would cost.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def write_source(path: Path, count: int) -> None:
    lines = ["# synthetic release definition (bench/assemble_large.py)", "docker-images:"]
    for index in range(count):
        if index % 1000 == 0:
            lines.append(f"  group-{index // 1000}:")
        lines += [
            f"    c{index}:",
            f"      name: ghcr.io/bench/c{index}",
            f"      tag: v1.{index % 100}.0",
        ]
    path.write_text("\n".join(lines) + "\n")


def child(source: str, output: str, *, no_limit: bool = False) -> int:
    """What ``assemble --no-resolve --output OUTPUT`` does, through the core (the CLI adds only printing)."""
    from pipeline import vector
    from pipeline.assemble import Resolution, assemble, vector_metadata
    from pipeline.errors import ReleaseVectorError
    from pipeline.localfiles import read_bounded
    from pipeline.vector import MAX_DOCUMENT_BYTES, load_source

    if no_limit:
        vector.MAX_IMAGE_ENTRIES = 10**9  # type: ignore[misc]

    started, cpu = time.perf_counter(), time.process_time()
    try:
        path = Path(source)
        loaded = load_source(read_bounded(path, "source definition", limit=MAX_DOCUMENT_BYTES), str(path))
        metadata = vector_metadata(loaded, path, "v0.0.0", "0" * 40)
        Path(output).write_bytes(assemble(loaded, Resolution(), metadata))
        code = 0
    except ReleaseVectorError as exc:  # over a limit: exit 3, as the CLI would
        code = int(exc.exit_code)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"code": code, "wall": wall, "cpu": cpu, "peak_rss_kib": peak_kib}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark assemble --no-resolve over a large source.")
    parser.add_argument("--entries", type=int, nargs="+", default=[10000, 50000, 100000])
    parser.add_argument("--no-limit", action="store_true", help="lift the entry limit (measure beyond it)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child, no_limit=args.no_limit)
    print(f"{'entries':>8} {'MiB':>6} {'wall s':>7} {'cpu s':>7} {'peak RSS MiB':>12} {'exit':>4}")
    with tempfile.TemporaryDirectory(prefix="bench-assemble-large-") as temp:
        for count in args.entries:
            source, output = Path(temp) / f"release-{count}.yaml", Path(temp) / "vector.yaml"
            write_source(source, count)
            command = [sys.executable, "-m", "bench.assemble_large", "--child", str(source), str(output)]
            command += ["--no-limit"] if args.no_limit else []
            done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
            if done.returncode != 0 or not done.stdout.strip():
                raise SystemExit(f"child failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if result["code"] not in (0, 3):  # 3: refused, over the entry limit
                raise SystemExit(f"assemble exited {result['code']}: {done.stderr}")
            size = source.stat().st_size / 2**20
            print(
                f"{count:>8} {size:>6.1f} {result['wall']:>7.2f} {result['cpu']:>7.2f} "
                f"{result['peak_rss_kib'] / 1024:>12.1f} {result['code']:>4}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
