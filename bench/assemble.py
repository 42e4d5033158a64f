"""Benchmark of ``release-vector assemble``: resolve N synthetic images through a slow network.

Starts a local docker-registry, seeds N tiny images (directly, not through the proxy), puts a
:class:`~bench.latency_proxy.LatencyProxy` (default +50 ms per request) in front of it, and runs
assemble (the core API, as ``release-vector assemble`` runs it) with the mirror ``ghcr.io=<proxy>/ghcr.io`` at
concurrency 1 and at the default. Each run is a fresh Python process (so peak RSS is that run's), timing
only the assemble itself.

Prints, per run: wall time, requests through the proxy (and per image, by kind), peak RSS.
Goal: 70 images in <= 0.5 s at the default concurrency, <= 1.2 requests per image, RSS flat in N.

    python -m bench.assemble [--images 70 1000] [--delay-ms 50] [--tags-per-repo 1] [--concurrency 1 16]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.latency_proxy import LatencyProxy  # noqa: E402
from pipeline.http import DEFAULT_CONCURRENCY, parallel_map  # noqa: E402  (the --concurrency default)

REVISION = "0" * 40


# --- registry ------------------------------------------------------------------------------------------


def start_registry(workdir: Path) -> tuple[str, Any]:
    """(host, stop) of a docker-registry on 127.0.0.1 (the test suite's starter if importable)."""
    try:
        from tests.registry_fixtures import start_registry as start
    except ImportError:
        start = None
    if start is not None:
        registry = start(workdir, name="bench")
        return registry.host, registry.stop
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = workdir / "config.yml"
    config.write_text(
        json.dumps(
            {
                "version": "0.1",
                "log": {"level": "error", "accesslog": {"disabled": True}},
                "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")}},
                "http": {"addr": f"127.0.0.1:{port}"},
            }
        )
    )
    process = subprocess.Popen(
        ["/usr/bin/docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    import httpx

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code in (200, 401):
                break
        except httpx.TransportError:
            time.sleep(0.05)

    def stop() -> None:
        process.terminate()
        process.wait(10)

    return f"127.0.0.1:{port}", stop


def image_names(count: int, tags_per_repo: int) -> list[str]:
    return [f"ghcr.io/bench/component-{i // tags_per_repo}:v1.{i % tags_per_repo}.0" for i in range(count)]


def seed(host: str, names: list[str]) -> None:
    from pipeline.oci import mediatypes
    from pipeline.oci.client import RegistryClient, RegistryOptions
    from pipeline.oci.reference import parse_reference

    config = mediatypes.OCI_EMPTY_DATA
    with RegistryClient(RegistryOptions(max_connections=16)) as client:

        def push(name: str) -> None:
            ref = parse_reference(f"{host}/{name}")
            layer = f"synthetic layer of {name}".encode()
            client.upload_blob(ref, config)
            layer_digest = client.upload_blob(ref, layer)
            manifest = {
                "schemaVersion": 2,
                "mediaType": mediatypes.OCI_MANIFEST,
                "config": {"mediaType": mediatypes.OCI_EMPTY, "digest": client_digest(config), "size": len(config)},
                "layers": [{"mediaType": mediatypes.OCI_LAYER_TAR_GZIP, "digest": layer_digest, "size": len(layer)}],
            }
            data = json.dumps(manifest, separators=(",", ":")).encode()
            client.put_manifest(ref, None, data, mediatypes.OCI_MANIFEST)

        parallel_map(push, names, concurrency=16)


def client_digest(data: bytes) -> str:
    from pipeline.oci import digest

    return digest.compute(data)


def write_source(path: Path, names: list[str]) -> None:
    lines = ["# synthetic release definition (bench/assemble.py)", "docker-images:", "  bench:"]
    for index, ref in enumerate(names):
        name, _, tag = ref.rpartition(":")
        lines += [
            f"    image-{index}:",
            f"      name: {name}",
            f"      repository: https://github.com/bench/component-{index}",
            f"      tag: {tag}",
        ]
    path.write_text("\n".join(lines) + "\n")


# --- one run (child process) ----------------------------------------------------------------------------


def child(args: argparse.Namespace) -> int:
    """One assemble through the core API, as ``release-vector assemble`` runs it (one client, its pool as
    large as the concurrency), writing the vector to ``--output``."""
    from pipeline.assemble import assemble, resolve_source, vector_metadata
    from pipeline.oci.client import RegistryClient, RegistryOptions
    from pipeline.oci.mirror import parse_mirrors
    from pipeline.vector import load_source

    concurrency = args.concurrency or DEFAULT_CONCURRENCY
    started = time.perf_counter()
    source_path = Path(args.source)
    source = load_source(source_path.read_bytes(), str(source_path))
    mirrors = parse_mirrors([f"ghcr.io={args.proxy}/ghcr.io"])
    metadata = vector_metadata(source, source_path, "v0.0.0", REVISION)
    with RegistryClient(RegistryOptions(max_connections=max(concurrency, 1))) as client:
        resolution = resolve_source(client, source, mirrors=mirrors, concurrency=concurrency)
    code = 0
    if resolution.ok:
        Path(args.output).write_bytes(assemble(source, resolution, metadata))
    else:
        code = int(resolution.unresolved[0].error.exit_code)
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"code": code, "wall": wall, "peak_rss_kib": peak_kib}))
    return 0


def run_once(proxy: LatencyProxy, source: Path, output: Path, concurrency: int | None) -> dict[str, Any]:
    proxy.reset()
    command = [
        sys.executable,
        "-m",
        "bench.assemble",
        "--child",
        "--source",
        str(source),
        "--output",
        str(output),
        "--proxy",
        proxy.host,
    ]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise SystemExit(f"assemble exited {result['code']}")
    result["requests"] = proxy.total()
    result["by_kind"] = proxy.counts()
    result["max_in_flight"] = proxy.max_in_flight
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark release-vector assemble through a slow proxy.")
    parser.add_argument("--images", type=int, nargs="+", default=[70, 1000])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, DEFAULT_CONCURRENCY])
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--tags-per-repo", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--proxy", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.concurrency = args.concurrency[0] if args.concurrency else None
        return child(args)

    with tempfile.TemporaryDirectory(prefix="bench-assemble-") as temp:
        workdir = Path(temp)
        host, stop = start_registry(workdir / "registry")
        try:
            names = image_names(max(args.images), args.tags_per_repo)
            started = time.perf_counter()
            seed(host, names)
            print(f"seeded {len(names)} images in {time.perf_counter() - started:.1f} s (registry {host})")
            with LatencyProxy(f"http://{host}", delay=args.delay_ms / 1000) as proxy:
                per_repo = f"{args.tags_per_repo} tag(s) per repository"
                print(f"proxy {proxy.host}: +{args.delay_ms:g} ms per request, {per_repo}; * = the default concurrency")
                print()
                header = f"{'images':>6} {'conc.':>7} {'wall s':>7} {'requests':>8} {'req/img':>7} {'peak RSS MiB':>12}"
                print(f"{header}  by kind")
                for count in args.images:
                    source = workdir / f"release-{count}.yaml"
                    write_source(source, names[:count])
                    for concurrency in args.concurrency:
                        shown = f"{concurrency}*" if concurrency == DEFAULT_CONCURRENCY else str(concurrency)
                        result = run_once(proxy, source, workdir / "vector.yaml", concurrency)
                        kinds = ", ".join(f"{k} {v}" for k, v in result["by_kind"].items())
                        print(
                            f"{count:>6} {shown:>7} {result['wall']:>7.3f} {result['requests']:>8} "
                            f"{result['requests'] / count:>7.3f} {result['peak_rss_kib'] / 1024:>12.1f}  {kinds}",
                            flush=True,
                        )
        finally:
            stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
