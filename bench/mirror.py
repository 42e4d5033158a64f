"""Benchmark of ``release-vector mirror``: a multi-arch release copied between two registries through a
slow network.

Starts two local docker-registries, seeds N multi-arch images into the first (an OCI index of two
platforms, each a config and 3 layers of --layer-mib MiB of random bytes) and a vector pinning them,
puts a :class:`~bench.latency_proxy.LatencyProxy` (default +50 ms per request) in front of each
registry (each proxy in its own process: two proxies pumping every byte in one interpreter share one
GIL, and the bench would measure that rather than the mirror), and mirrors the release (the core API,
as ``release-vector mirror`` runs it, with ``--allow-unsigned``: the images are not signed here) at the
default concurrency and at 1, each into a fresh prefix of the second registry, then runs the default
once more into the first prefix (the re-run: every object present). Each run is a fresh Python process
(so its peak RSS is its own).

Prints, per run: wall time, requests through both proxies, requests per object (manifests + blobs +
tags of the release), bytes sent, peak RSS, the mirror's and the proxies' CPU seconds, and the load
average as the run ended (the machine may be shared: compare the ratio default/1 more than times).
``--large-mib 256`` adds a run of 2 images with one 256 MiB layer each, to show that peak RSS does not
grow with blob size.
Goals: default >= 8x faster than concurrency 1; re-run <= 1 request per object; RSS flat in blob size.

    python -m bench.mirror [--images 70] [--layer-mib 1] [--delay-ms 50] [--large-mib 256]
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

from bench.assemble import start_registry  # noqa: E402
from bench.latency_proxy import ProxyControl  # noqa: E402
from pipeline.http import DEFAULT_CONCURRENCY, parallel_map  # noqa: E402  (the --concurrency default)

VERSION = "v1.0.0"


def seed(
    host: str, count: int, layer_bytes: int, layers: int = 3, platforms: int = 2, group: str = "bench"
) -> tuple[str, int]:
    """N multi-arch images and a vector pinning them at ``host/GROUP/releases:v1.0.0``; returns the vector
    reference and the number of objects (manifests, blobs and tags) the release holds."""
    from pipeline.artifact import ArtifactAnnotations
    from pipeline.oci import digest as digests
    from pipeline.oci import mediatypes
    from pipeline.oci.client import RegistryClient, RegistryOptions
    from pipeline.oci.reference import parse_reference, parse_repository
    from pipeline.publish import push_vector

    def descriptor(media_type: str, data: bytes) -> dict[str, object]:
        return {"mediaType": media_type, "digest": digests.compute(data), "size": len(data)}

    with RegistryClient(RegistryOptions(max_connections=16)) as client:

        def push(index: int) -> str:
            ref = parse_reference(f"{host}/{group}/component-{index}:v1.0.0")
            entries = []
            for platform in range(platforms):
                config = json.dumps({"architecture": f"arch{platform}", "os": "linux", "image": index}).encode()
                blobs = [os.urandom(layer_bytes) for _ in range(layers)]
                for blob in (config, *blobs):
                    client.upload_blob(ref, blob, check_exists=False)
                layer_list = [descriptor(mediatypes.OCI_LAYER_TAR_GZIP, b) for b in blobs]
                manifest = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
                                       "config": descriptor(mediatypes.OCI_CONFIG, config),
                                       "layers": layer_list}).encode()  # fmt: skip
                client.put_manifest(ref.repo, digests.compute(manifest), manifest, mediatypes.OCI_MANIFEST)
                entries.append(descriptor(mediatypes.OCI_MANIFEST, manifest))
            index_data = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": entries})
            digest = client.put_manifest(ref, None, index_data.encode(), mediatypes.OCI_INDEX)
            return f"      name: {ref.name}\n      tag: v1.0.0\n      digest: {digest}\n"

        entries = parallel_map(push, range(count), concurrency=8)
        vector = "docker-images:\n  bench:\n" + "".join(
            f"    image-{i}:\n{entry}" for i, entry in enumerate(entries)
        )
        repository = parse_repository(f"{host}/{group}/releases")
        push_vector(client, repository, [VERSION], vector.encode(), ArtifactAnnotations(version=VERSION))
    per_image = 1 + 1 + platforms * (1 + 1 + layers)  # tag, index, per platform: manifest, config, layers
    objects = count * per_image + 1 + 1 + 2  # the vector: tag, manifest, config, layer
    return f"{host}/{group}/releases:{VERSION}", objects


def peak_rss_kib() -> int:
    """This process's peak RSS: ``VmHWM`` (of its own memory since exec; ``ru_maxrss`` would carry the
    parent's peak across fork and exec, and the parent held the seeded blobs)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(args: argparse.Namespace) -> int:
    """One mirror through the core API, as ``release-vector mirror`` runs it."""
    from pipeline.mirror.names import parse_destination
    from pipeline.mirror.run import CarrySettings, mirror_release
    from pipeline.oci.client import RegistryClient, RegistryOptions
    from pipeline.oci.reference import parse_reference

    started = time.perf_counter()
    from pipeline.oci.mirror import parse_mirrors

    mirrors = parse_mirrors(args.source_mirror or [])
    settings = CarrySettings(concurrency=args.concurrency, allow_unsigned=True, source_mirrors=mirrors)
    with RegistryClient(RegistryOptions(max_connections=64)) as client:
        result = mirror_release(client, parse_reference(args.ref), parse_destination(args.to), settings)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_rss_kib": peak_rss_kib(),
                      "counts": result.counts.to_json()}))  # fmt: skip
    return 0


class ProxyProcess:
    """``python -m bench.latency_proxy`` in a process of its own, counted through its control endpoint."""

    def __init__(self, upstream: str, delay_ms: float) -> None:
        command = [sys.executable, "-m", "bench.latency_proxy", "--upstream", upstream, "--delay-ms", str(delay_ms)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
        assert self.process.stdout is not None
        first = self.process.stdout.readline()  # "proxying http://127.0.0.1:PORT -> ..."
        if not first.startswith("proxying http://"):
            self.process.kill()
            raise SystemExit(f"latency proxy did not start: {first!r}")
        self.url = first.split()[1]
        self.host = self.url.removeprefix("http://")
        self.control = ProxyControl(self.url)

    def reset(self) -> None:
        self.control.reset()

    def total(self) -> int:
        return self.control.total()

    def counts(self) -> dict[str, int]:
        return self.control.counts()

    def cpu(self) -> float:
        """The proxy process's CPU seconds so far (user + system, from /proc; 0 elsewhere)."""
        stat = Path(f"/proc/{self.process.pid}/stat")
        if not stat.exists():
            return 0.0
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=30)


def run_once(
    proxies: list[ProxyProcess], ref: str, to: str, concurrency: int, source_mirror: str | None = None
) -> dict[str, Any]:
    for proxy in proxies:
        proxy.reset()
    proxy_cpu = sum(proxy.cpu() for proxy in proxies)
    command = [sys.executable, "-m", "bench.mirror", "--child", "--ref", ref, "--to", to,
               "--concurrency", str(concurrency)]  # fmt: skip
    if source_mirror:
        command += ["--source-mirror", source_mirror]
    if os.environ.get("BENCH_MIRROR_CHILD"):
        command[1:3] = [os.environ["BENCH_MIRROR_CHILD"]]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    if os.environ.get("BENCH_MIRROR_CHILD"):
        print(done.stderr[-8000:], file=sys.stderr)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = os.getloadavg()[0]  # the machine's 1-minute load average as the run ends
    result["proxy_cpu"] = sum(proxy.cpu() for proxy in proxies) - proxy_cpu
    result["requests"] = sum(proxy.total() for proxy in proxies)
    result["by_kind"] = [proxy.counts() for proxy in proxies]
    return result


def _row(label: str, result: dict[str, Any], objects: int) -> str:
    counts = result["counts"]
    sent = f"{counts['blobs_sent']}/{counts['blobs_mounted']}/{counts['blobs_skipped']}"
    return (f"{label:<24} {result['wall']:>8.2f} {result['requests']:>8} {result['requests'] / objects:>8.2f} "
            f"{sent:>12} {counts['bytes_sent'] / 1024**2:>9.1f} {result['peak_rss_kib'] / 1024:>9.1f} "
            f"{result['cpu']:>7.1f} {result['proxy_cpu']:>7.1f} {result['load']:>6.1f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark release-vector mirror through a slow proxy.")
    parser.add_argument("--images", type=int, default=70)
    parser.add_argument("--layer-mib", type=float, default=1.0)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--large-mib", type=int, default=0, help="Also run 2 images with one layer this big.")
    parser.add_argument("--skip-serial", action="store_true", help="Leave out the concurrency-1 run.")
    parser.add_argument("--skip-main", action="store_true", help="Only the --large-mib runs.")
    parser.add_argument("--verbose", action="store_true", help="Requests by kind at each proxy.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ref", help=argparse.SUPPRESS)
    parser.add_argument("--to", help=argparse.SUPPRESS)
    parser.add_argument("--source-mirror", action="append", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    with tempfile.TemporaryDirectory(prefix="bench-mirror-") as temp:
        workdir = Path(temp)
        source_host, stop_source = start_registry(workdir / "source")
        target_host, stop_target = start_registry(workdir / "target")
        try:
            started = time.perf_counter()
            ref, objects = seed(source_host, 1 if args.skip_main else args.images, int(args.layer_mib * 1024 * 1024))
            print(f"seeded {args.images} images ({objects} objects) in {time.perf_counter() - started:.1f} s")
            src = ProxyProcess(f"http://{source_host}", args.delay_ms)
            dst = ProxyProcess(f"http://{target_host}", args.delay_ms)
            try:
                via = ref.replace(source_host, src.host)
                print(f"proxies +{args.delay_ms:g} ms per request; default concurrency {DEFAULT_CONCURRENCY}\n")
                print(f"{'run':<24} {'wall s':>8} {'requests':>8} {'req/obj':>8} {'sent/mnt/ok':>12} "
                      f"{'MiB sent':>9} {'RSS MiB':>9} {'CPU s':>7} {'prx CPU':>7} {'load':>6}")  # fmt: skip
                default = DEFAULT_CONCURRENCY
                runs = [(f"concurrency {default} (default)", f"{dst.host}/a", default),
                        (f"re-run, concurrency {default}", f"{dst.host}/a", default)]  # fmt: skip
                if args.skip_main:
                    runs = []
                elif not args.skip_serial:
                    runs.append(("concurrency 1", f"{dst.host}/b", 1))
                for label, to, concurrency in runs:
                    result = run_once([src, dst], via, to, concurrency, f"{source_host}={src.host}")
                    print(_row(label, result, objects), flush=True)
                    if args.verbose:
                        print(f"  source: {result['by_kind'][0]}\n  target: {result['by_kind'][1]}")
            finally:
                src.stop()
                dst.stop()
            if args.large_mib:
                for mib in (1, args.large_mib):
                    big_ref, big_objects = seed(source_host, 2, mib * 1024 * 1024, 1, 1, f"large{mib}")
                    result = run_once([], big_ref, f"{target_host}/large{mib}", DEFAULT_CONCURRENCY)
                    print(_row(f"2 images, {mib} MiB layer", result, big_objects), flush=True)
        finally:
            stop_source()
            stop_target()
    return 0


if __name__ == "__main__":
    sys.exit(main())
