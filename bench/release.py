"""Benchmark of a whole release: N synthetic images through a slow network (default +50 ms per request).

The parent starts a local docker-registry and seeds N tiny images per run (under a fresh prefix, so
every run signs everything anew). Each run is a fresh Python process (its peak RSS is that run's) which
puts a :class:`~bench.latency_proxy.LatencyProxy` in front of the registry, and another in front of the
GitHub stand-in's API (``tests/github_standin.py``; without it, a release folder), each proxy in a
process of its own (``python -m bench.latency_proxy``, so its threads do not share the measured process's
GIL; the counts are read over its ``/_proxy/`` control endpoint), then runs the real release path
(``pipeline.release.release``: assemble, observe + plan, apply, as ``release-vector release`` does, with one
registry client) and times the phases from the apply's progress callbacks:

- assemble (resolve every tag), plan (the read-only look), then side by side: push| (push the vector
  and sign it) and sign| (the images; at ``--concurrency 1`` the two run one after the other, and sign|
  includes push|), then GitHub (draft, uploads, publish); then verify-release, then a re-run (must
  plan nothing).

Prints, per run: wall time per phase, registry requests per newly signed image (the apply's requests to
the images' repositories, per image signed) and per image on the re-run (assemble + plan, the
requests to the images' repositories; the few per release, the ping and the vector's own tag and
signature, are printed beside it), and peak RSS. Goals (issue 6): whole release <= 3 s at
50 ms, >= 8x faster than --concurrency 1; <= 5 requests per newly signed image; <= 2 per image on a
re-run; verify-release of 70 images <= 2 s; 1,000 images <= 150 MB peak RSS.

    python -m bench.release [--images 70] [--concurrency 1 16] [--large 1000] [--delay-ms 50]

The 1,000-image memory run (``--large``, default 1000) takes about two minutes of the three the whole
benchmark takes (seeding, and a release at 50 ms); ``--large 0`` leaves it out.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.latency_proxy import ProxyControl  # noqa: E402
from pipeline.http import DEFAULT_CONCURRENCY  # noqa: E402  (the --concurrency default)
from pipeline.rehearsal.targets import seed_images, start_registry, throwaway_keys  # noqa: E402

REVISION = "0" * 40
VERSION = "v1.0.0"


def image_names(count: int) -> list[str]:
    return [f"ghcr.io/bench/component-{i}:v1.{i}.0" for i in range(count)]


def write_source(path: Path, names: list[str]) -> None:
    lines = ["# synthetic release definition (bench/release.py)", "docker-images:", "  bench:"]
    for index, ref in enumerate(names):
        name, _, tag = ref.rpartition(":")
        lines += [f"    image-{index}:", f"      name: {name}", f"      tag: {tag}"]
    path.write_text("\n".join(lines) + "\n")


# --- one run (child process) ----------------------------------------------------------------------


class ProxyProcess(ProxyControl):
    """``python -m bench.latency_proxy`` in a process of its own; counts over its control endpoint."""

    def __init__(self, upstream: str, delay_ms: float) -> None:
        command = [sys.executable, "-m", "bench.latency_proxy", "--upstream", upstream, "--delay-ms", str(delay_ms)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO_ROOT
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "proxying http://127.0.0.1:PORT -> ..."
        words = line.split()
        if len(words) < 2 or words[0] != "proxying":
            self.process.kill()
            raise RuntimeError(f"latency proxy did not start: {line!r}")
        super().__init__(words[1])
        self.host = self.url.removeprefix("http://")
        atexit.register(self._kill)  # never outlive this run, even if it fails

    def _kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


def child(args: argparse.Namespace) -> int:
    from pipeline.cosign.keys import load_private_key, load_public_key
    from pipeline.cosign.verify import VerificationPolicy
    from pipeline.oci.client import RegistryClient, RegistryOptions
    from pipeline.oci.mirror import parse_mirrors
    from pipeline.oci.reference import parse_reference, parse_repository
    from pipeline.plan import Action
    from pipeline.release import ReleasePorts, ReleaseSettings, ReleaseSpec, release
    from pipeline.release import verify_release as verify
    from pipeline.secret import Secret
    from pipeline.targets import ReleaseDirTarget, ReleaseTarget
    from pipeline.vector import load_source

    MAX_CONNECTIONS = 64  # the pool of the release command's registry client

    key = TimedKey(_open_key(args.key, load_private_key, Secret))
    proxy = ProxyProcess(f"http://{args.registry}", args.delay_ms)
    mirrors = parse_mirrors([f"ghcr.io={proxy.host}/{args.prefix}/ghcr.io"])
    repository = parse_repository(f"{proxy.host}/{args.prefix}/releases")
    source = Path(args.source)
    github: Any = None
    github_proxy: ProxyProcess | None = None
    try:
        from tests.github_standin import GitHubStandIn

        github = GitHubStandIn(owner="bench", repo="release").__enter__()
        github_proxy = ProxyProcess(github.api_url, args.delay_ms)
    except ImportError:
        github = None

    def target() -> ReleaseTarget:
        if github is None:
            return ReleaseDirTarget(Path(args.workdir) / f"releases-{args.prefix}")
        from pipeline.targets import GitHubOptions, GitHubTarget

        assert github_proxy is not None
        return GitHubTarget(github.slug, Secret(github.token), GitHubOptions(api_url=github_proxy.url))

    def release_once(record: dict[str, float], counts: dict[str, int]) -> int:
        """One release as ``release-vector release`` runs it (:func:`pipeline.release.release`); phase times
        into ``record``, registry requests of the apply into ``counts`` (``images``: to the images'
        repositories, ``vector``: to the vector's, ``signed``: images newly signed)."""
        t0 = time.perf_counter()
        options = RegistryOptions(max_connections=MAX_CONNECTIONS)  # as the CLI's client
        the_target = target()
        marks: dict[str, Any] = {}
        done: dict[str, float] = {}

        class Progress:
            """Takes the registry counts and the time when the apply starts, and each action's end."""

            def note(self, text: str) -> None:
                pass

            @contextlib.contextmanager
            def applying(self, version: str, total: int) -> Iterator[Callable[[Action, str], None]]:
                marks["planned"], marks["before"] = time.perf_counter(), proxy.by_repository()

                def on_done(action: Action, _outcome: str) -> None:
                    done[action.kind] = time.perf_counter()  # the last of each kind

                yield on_done

        spec = ReleaseSpec(VERSION, load_source(source.read_bytes(), str(source)), source, repository,
                           key.public_key_pem(), git_revision=REVISION)  # fmt: skip
        settings = ReleaseSettings(mirrors, args.concurrency)
        with RegistryClient(options) as client:  # one client for the whole release, as the CLI
            ports = ReleasePorts(client, key.public_key, key, the_target)
            result = release(spec, settings, ports, progress=Progress(), started=time.monotonic())
            t3 = time.perf_counter()
            after = proxy.by_repository()
        close = getattr(the_target, "close", None)
        if close is not None:
            close()
        plan = result.plan
        t2 = marks.get("planned", t3)
        record.update(assemble=result.seconds["assemble"], plan=result.seconds["plan"], total=t3 - t0)
        if plan.actions:
            # The vector (push, sign) and the images are signed side by side; the target comes after both.
            vector = done.get("sign-vector", done.get("push-vector", t2))
            images = done.get("sign-image", t2)
            record.update(vector=vector - t2, sign=images - t2, github=t3 - max(vector, images), apply=t3 - t2)
        before = marks.get("before", after)
        applied = {name: after.get(name, 0) - before.get(name, 0) for name in after}
        vector_repository = repository.path
        counts.update(
            images=sum(n for name, n in applied.items() if name != vector_repository),
            vector=applied.get(vector_repository, 0),
            signed=sum(1 for action in plan.actions if action.kind == "sign-image"),
        )
        return len(plan.actions)

    first: dict[str, float] = {}
    apply_counts: dict[str, int] = {}
    proxy.reset()
    actions = release_once(first, apply_counts)
    sign_requests = apply_counts["images"] / max(apply_counts["signed"], 1)
    release_requests = proxy.total()
    public = load_public_key(key.public_key_pem(), "key")
    policy = VerificationPolicy(public_key=public, keyless=None, rekor_keys=(), ignore_tlog=True)
    proxy.reset()
    t0 = time.perf_counter()
    with RegistryClient(RegistryOptions(max_connections=MAX_CONNECTIONS)) as client:
        checked = verify(
            client,
            parse_reference(f"{repository}:{VERSION}"),
            policy,
            mirrors=mirrors,
            concurrency=args.concurrency,
        )
    verify_seconds = time.perf_counter() - t0
    verify_requests = proxy.total()
    proxy.reset()
    again: dict[str, float] = {}
    rerun_actions = release_once(again, {})
    rerun_requests = proxy.total()
    rerun_image_requests = sum(n for name, n in proxy.by_repository().items() if name != repository.path)
    rerun_by_kind = proxy.counts()
    proxy.stop()
    if github_proxy is not None:
        github_proxy.stop()
    if github is not None:
        github.__exit__(None, None, None)
    print(
        json.dumps(
            {
                "actions": actions,
                "phases": first,
                "release_requests": release_requests,
                "sign_requests": sign_requests,
                "vector_requests": apply_counts["vector"],
                "verify": verify_seconds,
                "verify_requests": verify_requests,
                "verify_ok": checked.ok,
                "rerun_actions": rerun_actions,
                "rerun": again,
                "rerun_requests": rerun_requests,
                "rerun_image_requests": rerun_image_requests,
                "rerun_by_kind": rerun_by_kind,
                "target": "GitHub stand-in" if github is not None else "release folder",
                "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "sign_seconds": key.latencies,
            }
        )
    )
    return 0


def run_once(
    registry: str, workdir: Path, key: Path | str, password: str, images: int, concurrency: int, delay_ms: float,
    prefix: str,
) -> dict[str, Any]:
    source = workdir / f"release-{images}.yaml"
    write_source(source, image_names(images))
    command = [
        sys.executable, "-m", "bench.release", "--child", "--registry", registry, "--prefix", prefix,
        "--source", str(source), "--key", str(key), "--workdir", str(workdir),
        "--concurrency", str(concurrency), "--delay-ms", str(delay_ms),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    env["BENCH_KEY_PASSWORD"] = password
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark a whole release through a slow proxy.")
    parser.add_argument("--images", type=int, default=70)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, DEFAULT_CONCURRENCY])
    parser.add_argument(
        "--large", type=int, default=1000, help="then a memory run of this many images (default 1000, ~2 min; 0: none)"
    )
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument(
        "--key-uri", action="append", default=[],
        help="compare signers instead: a release of --images signed by the key file, then by each of these"
        " keys (pkcs11:..., awskms://...); prints per-signature latency",
    )  # fmt: skip
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--registry", "--prefix", "--source", "--key", "--workdir"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.concurrency = args.concurrency[0]
        return child(args)

    with tempfile.TemporaryDirectory(prefix="bench-release-") as temp:
        workdir = Path(temp)
        registry = start_registry(workdir / "registry")
        keys = throwaway_keys(workdir / "keys")
        password = keys.password.reveal().decode()
        if args.key_uri:
            try:
                return compare_signers(args, registry.host, workdir, keys.private_key, password)
            finally:
                registry.stop()
        runs = [(args.images, c) for c in args.concurrency]
        if args.large:
            runs.append((args.large, DEFAULT_CONCURRENCY))
        try:
            print(f"registry {registry.host}; +{args.delay_ms:g} ms per request (registry and GitHub API)")
            header = (
                f"{'images':>6} {'conc.':>5} {'assemble':>8} {'plan':>6} {'push|':>7} {'sign|':>6} {'GitHub':>6} "
                f"{'release':>7} {'verify':>6} {'rerun':>6} {'req/signed':>10} {'rerun req/img':>13} {'RSS MiB':>7}"
            )
            print(header)
            print("  (push| and sign| run side by side: the vector's push and signature beside the images' signatures)")
            for number, (count, concurrency) in enumerate(runs):
                prefix = f"run{number}"
                started = time.perf_counter()
                names = image_names(count)
                seed_images(registry.host, [_ref(n) for n in names], [f"ghcr.io={registry.host}/{prefix}/ghcr.io"],
                            salt=prefix, multiarch_every=0, concurrency=16)  # fmt: skip
                seeded = time.perf_counter() - started
                key = keys.private_key
                r = run_once(registry.host, workdir, key, password, count, concurrency, args.delay_ms, prefix)
                p = r["phases"]
                print(
                    f"{count:>6} {concurrency:>5} {p['assemble']:>8.2f} {p['plan']:>6.2f} {p.get('vector', 0):>7.2f} "
                    f"{p.get('sign', 0):>6.2f} {p.get('github', 0):>6.2f} {p['total']:>7.2f} {r['verify']:>6.2f} "
                    f"{r['rerun']['total']:>6.2f} {r['sign_requests']:>10.2f} "
                    f"{r['rerun_image_requests'] / count:>13.2f} {r['peak_rss_kib'] / 1024:>7.1f}",
                    flush=True,
                )
                if r["rerun_actions"] or not r["verify_ok"]:
                    print(f"  !! re-run planned {r['rerun_actions']} action(s); verify ok: {r['verify_ok']}")
                print(
                    f"         (seeded in {seeded:.1f} s; {r['release_requests']} requests in the release, "
                    f"{r['vector_requests']} of them to push and sign the vector; "
                    f"{r['verify_requests']} in verify-release; "
                    f"re-run: {r['rerun_requests']} requests, {r['rerun_image_requests']} to the images' repositories "
                    f"and {r['rerun_requests'] - r['rerun_image_requests']} per release (ping, the vector's tag and "
                    f"signature), by kind: {', '.join(f'{k} {v}' for k, v in r['rerun_by_kind'].items())}; "
                    f"target: {r['target']})",
                    flush=True,
                )
        finally:
            registry.stop()
    return 0


class TimedKey:
    """A private key (file, token or KMS) that records how long each signature takes."""

    def __init__(self, key: Any) -> None:
        self._key = key
        self.latencies: list[float] = []

    @property
    def source(self) -> str:
        return str(self._key.source)

    @property
    def public_key(self) -> Any:
        return self._key.public_key

    def public_key_pem(self) -> bytes:
        return bytes(self._key.public_key_pem())

    def sign(self, data: bytes, *, pure_ed25519: bool = False) -> bytes:
        started = time.perf_counter()
        signature = bytes(self._key.sign(data, pure_ed25519=pure_ed25519))
        self.latencies.append(time.perf_counter() - started)  # list.append is atomic: threads may sign at once
        return signature


def _open_key(spec: str, load_private_key: Any, secret: Any) -> Any:
    from pipeline.cosign.keyref import is_key_uri

    if is_key_uri(spec):
        from pipeline.signatures.keystores import open_key

        return open_key(spec, os.environ)
    path = Path(spec)
    return load_private_key(secret(path.read_bytes()), secret(os.environ["BENCH_KEY_PASSWORD"]), str(path))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def compare_signers(args: argparse.Namespace, registry: str, workdir: Path, key_file: Path, password: str) -> int:
    """A release of ``--images`` images per signer (each under a fresh prefix, so all are signed anew),
    at the default concurrency; per-signature latency (from the key's sign call) beside the key file's."""
    from pipeline.cosign.keyref import describe

    concurrency = args.concurrency[-1]
    print(f"registry {registry}; +{args.delay_ms:g} ms per request; {args.images} images, concurrency {concurrency}")
    print(f"{'signer':<58} {'sigs':>5} {'median ms':>9} {'p95 ms':>7} {'max ms':>7} {'sign|':>6} {'release':>7}")
    for number, spec in enumerate([str(key_file), *args.key_uri]):
        prefix = f"signer{number}"
        seed_images(registry, [_ref(n) for n in image_names(args.images)], [f"ghcr.io={registry}/{prefix}/ghcr.io"],
                    salt=prefix, multiarch_every=0, concurrency=16)  # fmt: skip
        r = run_once(registry, workdir, spec, password, args.images, concurrency, args.delay_ms, prefix)
        seconds = r["sign_seconds"]
        name = "key file (ECDSA P-256, in process)" if number == 0 else describe(spec)
        print(
            f"{name[:58]:<58} {len(seconds):>5} {1000 * _percentile(seconds, 0.5):>9.2f} "
            f"{1000 * _percentile(seconds, 0.95):>7.2f} {1000 * max(seconds, default=0):>7.2f} "
            f"{r['phases'].get('sign', 0):>6.2f} {r['phases']['total']:>7.2f}",
            flush=True,
        )
        if r["rerun_actions"] or not r["verify_ok"]:
            print(f"  !! re-run planned {r['rerun_actions']} action(s); verify ok: {r['verify_ok']}")
    return 0


def _ref(text: str) -> Any:
    from pipeline.oci.reference import parse_reference

    return parse_reference(text)


if __name__ == "__main__":
    sys.exit(main())
