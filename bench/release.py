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
signature, are printed beside it), peak RSS, and where the wall time goes (the read-back's wait for the
last writes to come due apart from its reads); with ``--per-format N``, each format's requests per newly
signed image and per image on a re-run beside their floors (``FLOORS``: on Debian's registry, and on one
with single-request uploads and the referrers API). Goals (issue 6): whole release <= 3 s at
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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
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


def artifact_names(count: int) -> list[str]:
    """OCI artifacts: every second one a Helm chart (oci + tag), the others Ansible roles (oci + version)."""
    return [f"ghcr.io/bench/{'charts/chart' if i % 2 == 0 else 'role'}-{i}:v0.{i}.0" for i in range(count)]


BINARY_ORIGIN = "https://downloads.bench.example"


def binary_urls(count: int) -> list[str]:
    return [f"{BINARY_ORIGIN}/releases/v1/binary-{i}" for i in range(count)]


def write_source(path: Path, names: list[str], artifacts: Sequence[str] = (), binaries: Sequence[str] = ()) -> None:
    lines = ["# synthetic release definition (bench/release.py)", "docker-images:", "  bench:"]
    for index, ref in enumerate(names):
        name, _, tag = ref.rpartition(":")
        lines += [f"    image-{index}:", f"      name: {name}", f"      tag: {tag}"]
    if artifacts:
        lines += ["helm-charts:", "  bench:"]
        for index, ref in enumerate(artifacts):
            name, _, tag = ref.rpartition(":")
            key = "tag" if index % 2 == 0 else "version"
            lines += [f"    artifact-{index}:", f"      oci: {name}", f"      {key}: {tag}"]
    if binaries:
        lines += ["binaries:", "  bench:"]
        lines += [line for index, url in enumerate(binaries) for line in (f"    binary-{index}:", f"      url: {url}")]
    path.write_text("\n".join(lines) + "\n")


# --- one run (child process) ----------------------------------------------------------------------


class ProxyProcess(ProxyControl):
    """``python -m bench.latency_proxy`` in a process of its own; counts over its control endpoint."""

    def __init__(self, upstream: str, delay_ms: float, *, oci_1_1: bool = False) -> None:
        command = [sys.executable, "-m", "bench.latency_proxy", "--upstream", upstream, "--delay-ms", str(delay_ms),
                   *(["--oci-1.1"] if oci_1_1 else [])]  # fmt: skip
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
    from pipeline.binaries import BinaryFetcher, BinaryMirrors, BinaryOptions
    from pipeline.cosign.keys import load_private_key, load_public_key
    from pipeline.cosign.verify import VerificationPolicy
    from pipeline.oci.client import RegistryClient, RegistryOptions
    from pipeline.oci.mirror import parse_mirrors
    from pipeline.oci.reference import parse_reference, parse_repository
    from pipeline.plan import SIGN_PINNED, Action
    from pipeline.rehearsal.binary_server import BinaryServer
    from pipeline.release import ReleasePorts, ReleaseSettings, ReleaseSpec, release
    from pipeline.release import verify_release as verify
    from pipeline.secret import Secret
    from pipeline.targets import ReleaseDirTarget, ReleaseTarget

    if args.blind_writes:
        _write_blind()
    from pipeline.vector import load_source

    MAX_CONNECTIONS = 64  # the pool of the release command's registry client

    key = TimedKey(_open_key(args.key, load_private_key, Secret))
    proxy = ProxyProcess(f"http://{args.registry}", args.delay_ms, oci_1_1=args.oci_1_1)
    # The binaries (BINARY_MIB each) from a local server, through a proxy adding the same delay.
    binary_server = BinaryServer(salt=args.prefix, size=int(args.binary_mib * 1024 * 1024)).start()
    binary_proxy = ProxyProcess(binary_server.url, args.delay_ms)
    binary_mirrors = BinaryMirrors(((BINARY_ORIGIN, f"{binary_proxy.url}/bench"),))
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
                marks["before_kinds"] = proxy.counts()

                def on_done(action: Action, _outcome: str) -> None:
                    done[action.kind] = time.perf_counter()  # the last of each kind

                yield on_done

        from pipeline.provenance import BuildEnvironment

        provenance = BuildEnvironment("local://bench@localhost", True) if args.provenance else None
        spec = ReleaseSpec(VERSION, load_source(source.read_bytes(), str(source)), source, repository,
                           key.public_key_pem(), git_revision=REVISION, provenance=provenance)  # fmt: skip
        settings = ReleaseSettings(mirrors, args.concurrency, args.bundle_format)
        with RegistryClient(options) as client:  # one client for the whole release, as the CLI
            with BinaryFetcher(BinaryOptions(mirrors=binary_mirrors)) as fetcher:
                ports = ReleasePorts(client, key.public_key, key, the_target, binaries=fetcher)
                settle = ports.confirmations.settle

                def timed_settle(*args: Any, **kwargs: Any) -> Any:
                    """The read-back of every signature written (issue 12), timed: it is part of GitHub below;
                    ``settle_wait``: until the last write came due (the rest is reading back)."""
                    started = time.perf_counter()
                    waited = [started]

                    def sleep(seconds: float) -> None:
                        time.sleep(seconds)
                        waited.append(time.perf_counter())

                    try:
                        return settle(*args, sleep=sleep, **kwargs)
                    finally:
                        record["settle"] = record.get("settle", 0.0) + time.perf_counter() - started
                        record["settle_wait"] = record.get("settle_wait", 0.0) + max(waited) - started

                ports.confirmations.settle = timed_settle  # type: ignore[method-assign]
                result = release(spec, settings, ports, progress=Progress(), started=time.monotonic())
            t3 = time.perf_counter()
            after = proxy.by_repository()
            after_kinds = proxy.counts()
        close = getattr(the_target, "close", None)
        if close is not None:
            close()
        plan = result.plan
        t2 = marks.get("planned", t3)
        record.update(assemble=result.seconds["assemble"], plan=result.seconds["plan"], total=t3 - t0)
        if plan.actions:
            # The vector (push, sign) and the images are signed side by side; the target comes after both.
            vector = done.get("sign-vector", done.get("push-vector", t2))
            images = max(done.get(kind, t2) for kind in SIGN_PINNED)
            record.update(vector=vector - t2, sign=images - t2, github=t3 - max(vector, images), apply=t3 - t2)
            # The vector's signing (with --provenance: and its provenance attestation), after its push.
            record["sign_vector"] = done.get("sign-vector", t2) - done.get("push-vector", t2)
        before = marks.get("before", after)
        applied = {name: after.get(name, 0) - before.get(name, 0) for name in after}
        vector_repository = repository.path
        before_kinds = marks.get("before_kinds", after_kinds)
        kinds = {kind: n - before_kinds.get(kind, 0) for kind, n in after_kinds.items()}
        record["kinds"] = {kind: n for kind, n in kinds.items() if n}  # type: ignore[assignment]
        counts.update(
            images=sum(n for name, n in applied.items() if name != vector_repository),
            vector=applied.get(vector_repository, 0),
            signed=sum(1 for action in plan.actions if action.kind in SIGN_PINNED),
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
            carried_formats=False,  # as `verify-release` without --json
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
    binary_proxy.stop()
    binary_server.stop()
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
    prefix: str, extras: argparse.Namespace, bundle_format: str = "both", provenance: bool = False,
) -> dict[str, Any]:  # fmt: skip
    source = workdir / f"release-{images}.yaml"
    write_source(source, image_names(images), artifact_names(extras.artifacts), binary_urls(extras.binaries))
    command = [
        sys.executable, "-m", "bench.release", "--child", "--registry", registry, "--prefix", prefix,
        "--source", str(source), "--key", str(key), "--workdir", str(workdir),
        "--concurrency", str(concurrency), "--delay-ms", str(delay_ms), "--binary-mib", str(extras.binary_mib),
        "--bundle-format", bundle_format, *(["--provenance"] if provenance else []),
        *(["--blind-writes"] if extras.blind_writes else []),
        *(["--oci-1.1"] if extras.oci_1_1 else []),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    env["BENCH_KEY_PASSWORD"] = password
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# Requests per newly signed image: the floor of each format, reasoned (README "Benchmarks"), on the registry
# measured here (Debian's docker-registry 2.8: no single-request upload, it answers POST ?digest= with 202;
# no referrers API) and on one with both (OCI distribution spec 1.1: POST ?digest= answered 201, and
# GET /v2/<name>/referrers/<digest>). Keeping a concurrent signer's signature (issue 12) costs two GETs per
# tag written (right before its PUT, and the read-back at the end of the run); a referrer pushed by digest
# onto a registry with the referrers API writes no tag, so it costs none.
FLOORS: dict[str, tuple[int, int, str]] = {
    # the look's .sig GET is handed to the signing (SignatureReads), so it is not counted here
    "legacy": (7, 5, "payload + config blob (POST+PUT each; 1 with POST ?digest=), .sig PUT, "
                     "its re-read before the PUT and read-back after (issue 12)"),
    # the look stops at the first format found unsigned, so the referrers listing is the signing's own
    "v3": (8, 4, "referrers listing, bundle blob (POST+PUT; 1), empty config mounted from where this run put "
                 "it (1; 0 once in the repository), referrer manifest PUT, fallback index re-read + PUT + "
                 "read-back (none with the referrers API)"),
}
RERUN_FLOORS: dict[str, tuple[int, str]] = {
    "legacy": (2, "the tag's HEAD (assemble), the .sig GET (its layer's signature checked over our own payload)"),
    "v3": (4, "the tag's HEAD, the referrers listing, the referrer manifest, the bundle blob (verified)"),
    "both": (5, "the tag's HEAD, the .sig GET, and v3's three"),
}


def _write_blind() -> None:
    """The layouts' read-modify-write at a tag made blind: our addition built onto what the look read and
    PUT, no re-read before it, no read-back after it (``--blind-writes``). What a signature costs without
    issue 12's guard, so the figures compare with those measured before it; a concurrent writer's signature
    can be lost this way, which is why releases never run so."""
    from pipeline.signatures import legacy, referrer

    def blind(current: Any, read: Any, prepare: Callable[[Any], Callable[[], object] | None], present: Any,
              **_: Any) -> bool:  # fmt: skip
        put = prepare(current)
        if put is None:
            return False
        put()
        return True

    legacy.write_until_present = blind  # type: ignore[attr-defined]
    referrer.write_until_present = blind  # type: ignore[attr-defined]


def whole_process(registry: str, workdir: Path, keys: Any, count: int, delay_ms: float, prefix: str,
                  bundle_format: str, oci_1_1: bool = False) -> float:  # fmt: skip
    """``release-vector release`` as a user runs it (start-up, key decryption, everything) through a proxy
    in a process of its own; wall seconds from start to exit."""
    source = workdir / f"whole-{prefix}.yaml"
    write_source(source, image_names(count))
    proxy = ProxyProcess(f"http://{registry}", delay_ms, oci_1_1=oci_1_1)
    try:
        command = [
            sys.executable, "-m", "pipeline", "release", VERSION, "--source", str(source),
            "--repository", f"{proxy.host}/{prefix}/releases", "--key", str(keys.private_key),
            "--release-dir", str(workdir / f"releases-{prefix}"), "--no-tlog-upload",
            "--registry-mirror", f"ghcr.io={proxy.host}/{prefix}/ghcr.io", "--bundle-format", bundle_format,
            "--git-revision", REVISION,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
        env["COSIGN_PASSWORD"] = keys.password.reveal().decode()
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env, check=False)
        seconds = time.perf_counter() - started
    finally:
        proxy.stop()
    if done.returncode != 0:
        raise SystemExit(f"release-vector release failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark a whole release through a slow proxy.")
    parser.add_argument("--images", type=int, default=70)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, DEFAULT_CONCURRENCY])
    parser.add_argument(
        "--large", type=int, default=1000, help="then a memory run of this many images (default 1000, ~2 min; 0: none)"
    )
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--artifacts", type=int, default=10, help="OCI artifacts (charts/roles) beside the images")
    parser.add_argument("--binaries", type=int, default=5, help="binaries pinned by URL (from a local server)")
    parser.add_argument("--binary-mib", type=float, default=1.0, help="size of each binary in MiB")
    parser.add_argument("--bundle-format", default="both", choices=["legacy", "v3", "both"])
    parser.add_argument("--per-format", type=int, default=20,
                        help="then a release of this many images in each single format, for its requests (0: none)")
    parser.add_argument("--whole-process", action="store_true", help="then time the whole release-vector process")
    parser.add_argument(
        "--provenance", action="store_true",
        help="compare: the release at the default concurrency without and with --attest provenance (then stop)",
    )
    parser.add_argument("--pairs", type=int, default=2, help="with --provenance: this many runs without, and with")
    parser.add_argument(
        "--key-uri", action="append", default=[],
        help="compare signers instead: a release of --images signed by the key file, then by each of these"
        " keys (pkcs11:..., awskms://...); prints per-signature latency",
    )  # fmt: skip
    parser.add_argument(
        "--blind-writes", action="store_true",
        help="diagnostic, never how a release runs: each signature tag written without the re-read before its"
        " PUT and the read-back after it (issue 12's concurrent-signer guard), to compare with figures from"
        " before that guard",
    )  # fmt: skip
    parser.add_argument(
        "--oci-1.1", dest="oci_1_1", action="store_true",
        help="count requests as a registry with the referrers API and single-request uploads sees them: the"
        " registry's proxy answers both for Debian's docker-registry 2.8 behind it (bench/latency_proxy.py)",
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
        if args.provenance or args.key_uri:
            try:
                if args.key_uri:
                    return compare_signers(args, registry.host, workdir, keys.private_key, password)
                return _compare_provenance(registry, workdir, keys, args)
            finally:
                registry.stop()
        runs = [(args.images, c) for c in args.concurrency]
        if args.large:
            runs.append((args.large, DEFAULT_CONCURRENCY))
        try:
            featured = " (its proxy answering the referrers API and single-request uploads: --oci-1.1)"
            shown = registry.host + (featured if args.oci_1_1 else "")
            print(f"registry {shown}; +{args.delay_ms:g} ms per request (registry, GitHub API, binaries); "
                  f"each run: N images + {args.artifacts} OCI artifacts (charts/roles) + {args.binaries} binaries of "
                  f"{args.binary_mib:g} MiB")  # fmt: skip
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
                artifacts = [_ref(n) for n in artifact_names(args.artifacts)]
                seed_images(registry.host, [_ref(n) for n in names] + artifacts,
                            [f"ghcr.io={registry.host}/{prefix}/ghcr.io"], salt=prefix, multiarch_every=0,
                            concurrency=16, artifacts=artifacts)  # fmt: skip
                seeded = time.perf_counter() - started
                key = keys.private_key
                r = run_once(registry.host, workdir, key, password, count, concurrency, args.delay_ms, prefix, args,
                             args.bundle_format)
                p = r["phases"]
                print(
                    f"{count:>6} {concurrency:>5} {p['assemble']:>8.2f} {p['plan']:>6.2f} {p.get('vector', 0):>7.2f} "
                    f"{p.get('sign', 0):>6.2f} {p.get('github', 0):>6.2f} {p['total']:>7.2f} {r['verify']:>6.2f} "
                    f"{r['rerun']['total']:>6.2f} {r['sign_requests']:>10.2f} "
                    f"{r['rerun_image_requests'] / count:>13.2f} {r['peak_rss_kib'] / 1024:>7.1f}",
                    flush=True,
                )
                kinds = p.get("kinds", {})
                print(
                    f"         (GitHub includes {p.get('settle', 0):.2f} s reading every new signature back, "
                    f"{p.get('settle_wait', 0):.2f} s of it waiting for the last writes to come due; "
                    f"the apply's requests by kind: {', '.join(f'{k} {v}' for k, v in kinds.items())})",
                    flush=True,
                )
                _breakdown(p)
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
            _per_format(args, registry.host, workdir, keys, password)
            if args.whole_process:
                _whole_processes(args, registry.host, workdir, keys)
        finally:
            registry.stop()
    return 0


def _breakdown(p: dict[str, Any]) -> None:
    """Where the release's wall time goes, phase by phase (the lanes of the apply overlap)."""
    settle = p.get("settle", 0.0)
    parts = [
        ("assemble (resolve every tag)", p["assemble"]),
        ("plan (the read-only look)", p["plan"]),
        ("sign images (beside the vector's push and signature)", max(p.get("sign", 0.0), p.get("vector", 0.0))),
        ("read-back: waiting for the last writes to come due", p.get("settle_wait", 0.0)),
        ("read-back: reading every written tag", settle - p.get("settle_wait", 0.0)),
        ("release target (draft, uploads, publish)", p.get("github", 0.0) - settle),
    ]
    accounted = sum(seconds for _, seconds in parts)
    parts.append(("the rest (start, key, closing)", p["total"] - accounted))
    print("         where the time goes: " + "; ".join(f"{name} {seconds:.2f}" for name, seconds in parts), flush=True)


def _whole_processes(args: argparse.Namespace, host: str, workdir: Path, keys: Any) -> None:
    """The whole ``release-vector release`` process: legacy alone and the default, at the default concurrency
    and at 1."""
    for fmt, concurrency in (("legacy", DEFAULT_CONCURRENCY), (args.bundle_format, DEFAULT_CONCURRENCY),
                             (args.bundle_format, 1)):  # fmt: skip
        prefix = f"whole-{fmt}-{concurrency}"
        names = image_names(args.images)
        seed_images(host, [_ref(n) for n in names], [f"ghcr.io={host}/{prefix}/ghcr.io"], salt=prefix,
                    multiarch_every=0, concurrency=16)  # fmt: skip
        previous = os.environ.get("RELEASE_VECTOR_CONCURRENCY")
        os.environ["RELEASE_VECTOR_CONCURRENCY"] = str(concurrency)
        try:
            seconds = whole_process(host, workdir, keys, args.images, args.delay_ms, prefix, fmt, args.oci_1_1)
        finally:
            if previous is None:
                os.environ.pop("RELEASE_VECTOR_CONCURRENCY", None)
            else:
                os.environ["RELEASE_VECTOR_CONCURRENCY"] = previous
        print(f"whole process: release-vector release, {args.images} images, --bundle-format {fmt}, --concurrency"
              f" {concurrency}: {seconds:.2f} s (start to exit, through the proxy)", flush=True)


def _per_format(args: argparse.Namespace, host: str, workdir: Path, keys: Any, password: str) -> None:
    """Requests per newly signed image in each single format, beside its floor, and in both together."""
    if not args.per_format:
        return
    measured: dict[str, float] = {}
    reruns: dict[str, float] = {}
    for fmt in ("legacy", "v3", "both"):
        prefix = f"format-{fmt}"
        names = image_names(args.per_format)
        seed_images(host, [_ref(n) for n in names], [f"ghcr.io={host}/{prefix}/ghcr.io"], salt=prefix,
                    multiarch_every=0, concurrency=16)  # fmt: skip
        images_only = argparse.Namespace(**{**vars(args), "artifacts": 0, "binaries": 0})  # requests of images alone
        r = run_once(host, workdir, keys.private_key, password, args.per_format, DEFAULT_CONCURRENCY, args.delay_ms,
                     prefix, images_only, fmt)  # fmt: skip
        measured[fmt] = r["sign_requests"]
        reruns[fmt] = r["rerun_image_requests"] / args.per_format
    # The floor of the registry measured: Debian's, or (--oci-1.1) one with both spec 1.1 features.
    measured_on, other = ("a spec 1.1 registry", "on Debian's docker-registry") if args.oci_1_1 else (
        "Debian's docker-registry", "with single-request uploads and the referrers API")
    for fmt, (floor, featured, why) in FLOORS.items():
        here, there = (featured, floor) if args.oci_1_1 else (floor, featured)
        print(f"requests per newly signed image, {fmt}: {measured[fmt]:.2f} (floor on {measured_on} {here}, {other} "
              f"{there}: {why})")  # fmt: skip
    plain = sum(floor for floor, _, _ in FLOORS.values())
    featured = sum(floor for _, floor, _ in FLOORS.values())
    here, there = (featured, plain) if args.oci_1_1 else (plain, featured)
    print(f"requests per newly signed image, both: {measured['both']:.2f} (floor on {measured_on} {here}, {other} "
          f"{there}; goal <= 10)", flush=True)  # fmt: skip
    for fmt, (floor, why) in RERUN_FLOORS.items():
        print(f"re-run requests per image, {fmt}: {reruns[fmt]:.2f} (floor {floor}: {why}; goal <= 2)", flush=True)


def _compare_provenance(registry: Any, workdir: Path, keys: Any, args: argparse.Namespace) -> int:
    """The provenance step's cost: the same release without and with it (each on freshly seeded images)."""
    password = keys.password.reveal().decode()
    print(f"registry {registry.host}; +{args.delay_ms:g} ms per request; {args.images} images, "
          f"concurrency {DEFAULT_CONCURRENCY}")  # fmt: skip
    print(f"{'provenance':>10} {'release s':>9} {'vector sign s':>13} {'vector req':>10} {'release req':>11} "
          f"{'rerun s':>7} {'rerun req':>9} {'verify s':>8} {'vector lane s':>13} {'image lane s':>12}")  # fmt: skip
    rows = []
    for number, provenance in enumerate((False, True) * args.pairs):
        prefix = f"prov{number}"
        names = image_names(args.images)
        seed_images(registry.host, [_ref(n) for n in names], [f"ghcr.io={registry.host}/{prefix}/ghcr.io"],
                    salt=prefix, multiarch_every=0, concurrency=16)  # fmt: skip
        r = run_once(registry.host, workdir, keys.private_key, password, args.images, DEFAULT_CONCURRENCY,
                     args.delay_ms, prefix, argparse.Namespace(**{**vars(args), "artifacts": 0, "binaries": 0}),
                     args.bundle_format, provenance)  # fmt: skip
        rows.append((provenance, r))
        p = r["phases"]
        print(f"{'yes' if provenance else 'no':>10} {p['total']:>9.2f} {p.get('sign_vector', 0):>13.2f} "
              f"{r['vector_requests']:>10} {r['release_requests']:>11} {r['rerun']['total']:>7.2f} "
              f"{r['rerun_requests']:>9} {r['verify']:>8.2f} {p.get('vector', 0):>13.2f} "
              f"{p.get('sign', 0):>12.2f}", flush=True)  # fmt: skip
    # Runs alternate (without, with, without, ...), so each pair shares the machine's state of the moment; the
    # median of the pairs' differences is what the step costs, the mean and range show the noise around it.
    for label, key in (("release s", "total"), ("apply s: sign, read-back, target", "apply"),
                       ("vector sign s", "sign_vector")):  # fmt: skip
        without = [r["phases"].get(key, 0) for provenance, r in rows if not provenance]
        with_ = [r["phases"].get(key, 0) for provenance, r in rows if provenance]
        pairs = sorted(b - a for a, b in zip(without, with_, strict=True))
        print(f"added by provenance ({label}, {len(pairs)} pairs): median {statistics.median(pairs):+.2f}, "
              f"mean {statistics.mean(pairs):+.2f}, range {pairs[0]:+.2f}..{pairs[-1]:+.2f}")
    with_requests = [r["vector_requests"] for provenance, r in rows if provenance]
    without_requests = [r["vector_requests"] for provenance, r in rows if not provenance]
    requests = with_requests[0] - without_requests[0]
    print(f"added by provenance (requests to the vector's repository): {requests:+d}")
    # The vector's lane (push, sign, provenance) runs beside the images' signing: the provenance costs the
    # release wall time only when it makes that lane the longer one.
    longer = [r["phases"].get("vector", 0) > r["phases"].get("sign", 0) for provenance, r in rows if provenance]
    print(f"vector lane (with provenance) longer than the image lane: {sum(longer)} of {len(longer)} runs")


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
        r = run_once(registry, workdir, spec, password, args.images, concurrency, args.delay_ms, prefix,
                     argparse.Namespace(**{**vars(args), "artifacts": 0, "binaries": 0}))
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
