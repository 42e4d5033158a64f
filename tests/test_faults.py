"""A release through the fault injector (bench/latency_proxy.py): 5xx, 429, resets, answers too slow.

Each run either completes, or fails with one ReleaseVectorError of one line; then a clean re-run
completes it and a third run plans nothing. Never a duplicate signature layer; never a release folder
published while a signature is missing. Timeouts and retry back-off are tiny so this stays fast.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.latency_proxy import FAULT_KINDS, Fault, FaultInjector, LatencyProxy, path_kind
from pipeline.apply import ReleasePorts, ReleaseRequest, ReleaseSettings, apply_plan, desired_release, observe_release
from pipeline.artifact import ArtifactAnnotations, make_artifact
from pipeline.assemble import assemble, resolve_source
from pipeline.cosign.keys import SigningKey, generate_key_pair, load_private_key, load_public_key
from pipeline.cosign.verify import VerificationPolicy
from pipeline.errors import ReleaseVectorError
from pipeline.oci import mediatypes
from pipeline.oci.client import RegistryClient, RegistryOptions, RetryPolicy, Timeouts
from pipeline.oci.mirror import parse_mirrors
from pipeline.oci.reference import parse_reference, parse_repository
from pipeline.plan import build_plan
from pipeline.rehearsal.targets import mirror_specs, seed_images
from pipeline.release import verify_release
from pipeline.secret import Secret
from pipeline.targets import ReleaseDirTarget
from pipeline.vector import VectorMetadata, load_source
from tests.registry_fixtures import RegistryProcess

VERSION = "v7.0.0"
REV = "0123456789abcdef0123456789abcdef01234567"
SOURCE = b"""\
docker-images:
  app:
    api: {name: ghcr.io/acme/api, tag: v1.0.0}
    web: {name: ghcr.io/acme/web, tag: v1.0.0}
    worker: {name: quay.io/acme/worker, tag: v2.0.0}
    base: {name: docker.io/library/python, tag: 3.11-slim}
"""
READ_TIMEOUT = 0.4
SLOW = 0.8  # a 'slow' answer comes after the client's read timeout
_COUNTER = itertools.count()


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    pair = generate_key_pair(Secret("faults-pw"))
    return load_private_key(pair.private_pem, Secret("faults-pw"), "faults")


@dataclass
class World:
    registry: RegistryProcess
    prefix: str
    release_dir: Path

    def specs(self, host: str) -> list[str]:
        return [spec.replace(self.registry.host, f"{host}/{self.prefix}", 1) for spec in self.base_specs()]

    def base_specs(self) -> list[str]:
        return mirror_specs(load_source(SOURCE, "faults.yaml"), self.registry.host)


def make_world(registry: RegistryProcess, tmp_path: Path) -> World:
    world = World(registry, f"faults{next(_COUNTER)}", tmp_path / "releases")
    source = load_source(SOURCE, "faults.yaml")
    seed_images(registry.host, source.references(), world.specs(registry.host), salt=world.prefix)
    return world


def client_options(*, faulty: bool) -> RegistryOptions:
    return RegistryOptions(
        timeouts=Timeouts(connect=2.0, read=READ_TIMEOUT if faulty else 10.0, write=2.0, pool=2.0),
        retries=RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.005, max_retry_after=1.0),
        max_connections=4,
    )


def release(world: World, host: str, key: SigningKey, *, faulty: bool) -> int:
    """The release's real steps (assemble, observe, plan, apply) against ``host``; the number of actions."""
    mirrors = parse_mirrors(world.specs(host))
    source = load_source(SOURCE, "faults.yaml")
    metadata = VectorMetadata(version=VERSION, git_revision=REV, source_sha256=source.sha256)
    with RegistryClient(client_options(faulty=faulty), sleep=lambda _s: None) as client:
        resolution = resolve_source(client, source, mirrors=mirrors, concurrency=4)
        if not resolution.ok:
            raise resolution.unresolved[0].error
        vector = assemble(source, resolution, metadata)
        request = ReleaseRequest(
            version=VERSION,
            vector=vector,
            artifact=make_artifact(vector, ArtifactAnnotations(version=VERSION)),
            repository=parse_repository(f"{host}/{world.prefix}/releases"),
            public_key_pem=key.public_key_pem(),
            target_commitish=REV,
            recursive=True,
        )
        ports = ReleasePorts(client, key.public_key, key, ReleaseDirTarget(world.release_dir))
        settings = ReleaseSettings(mirrors, 4)
        desired = desired_release(request, settings, ports)
        plan = build_plan(desired, observe_release(desired, request, settings, ports))
        apply_plan(plan, request, settings, ports)
    return len(plan.actions)


def published(world: World) -> bool:
    record = world.release_dir / VERSION / "release.json"
    return record.exists() and json.loads(record.read_text())["state"] == "published"


def check_complete(world: World, key: SigningKey, host: str) -> None:
    """verify-release passes, and every .sig manifest holds exactly one layer (no duplicate)."""
    mirrors = parse_mirrors(world.specs(host))
    policy = VerificationPolicy(
        public_key=load_public_key(key.public_key_pem(), "key"), keyless=None, rekor_keys=(), ignore_tlog=True
    )
    with RegistryClient(client_options(faulty=False)) as client:
        result = verify_release(
            client,
            parse_reference(f"{host}/{world.prefix}/releases:{VERSION}"),
            policy,
            mirrors=mirrors,
            target=ReleaseDirTarget(world.release_dir),
        )
        assert result.ok, [image.problems for image in result.images] + list(result.release_problems)
    for repository, tags in _signature_tags(world).items():
        for tag in tags:
            manifest = httpx.get(
                f"{world.registry.url}/v2/{repository}/manifests/{tag}", headers={"Accept": mediatypes.OCI_MANIFEST}
            ).json()
            digests = [layer["digest"] for layer in manifest["layers"]]
            assert len(digests) == 1, f"{repository}:{tag} has {len(digests)} signature layers"


def _signature_tags(world: World) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    mirrors = parse_mirrors(world.specs(world.registry.host))
    source = load_source(SOURCE, "faults.yaml")
    repositories = [mirrors.apply(ref).repository for ref in source.references()] + [f"{world.prefix}/releases"]
    for repository in repositories:
        tags = httpx.get(f"{world.registry.url}/v2/{repository}/tags/list").json()["tags"] or []
        found[repository] = [tag for tag in tags if tag.endswith(".sig")]
    return found


@pytest.fixture
def proxy_for(plain_registry: RegistryProcess) -> Iterator[object]:
    started: list[LatencyProxy] = []

    def make(injector: FaultInjector) -> LatencyProxy:
        proxy = LatencyProxy(plain_registry.url, delay=0, faults=injector, timeout=10).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


def run_with_faults(world: World, proxy: LatencyProxy, key: SigningKey) -> None:
    try:
        release(world, proxy.host, key, faulty=True)
    except ReleaseVectorError as error:
        line = error.one_line()
        assert "\n" not in line and line, line
        assert "faults-pw" not in line
        if published(world):
            check_complete(world, key, proxy.host)  # published only once everything is there
    # A clean re-run (same names, the faults switched off) completes whatever is missing; the next plans nothing.
    proxy.faults = None
    release(world, proxy.host, key, faulty=False)
    assert published(world)
    assert release(world, proxy.host, key, faulty=False) == 0
    check_complete(world, key, proxy.host)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_faults_with_a_seed(
    seed: int, plain_registry: RegistryProcess, tmp_path: Path, signing_key: SigningKey, proxy_for: object
) -> None:
    world = make_world(plain_registry, tmp_path)
    injector = FaultInjector(rate=0.2, seed=seed, slow_seconds=SLOW, limit=6, retry_after="0")
    proxy = proxy_for(injector)  # type: ignore[operator]
    run_with_faults(world, proxy, signing_key)
    assert injector.injected, "the seed injected nothing"


def _is_write(method: str, path: str) -> bool:
    return method in ("PUT", "POST", "PATCH")


def _is_signature_put(method: str, path: str) -> bool:
    return method == "PUT" and path_kind(path) == "manifest" and ".sig" in path


@pytest.mark.parametrize("kind", [k for k in FAULT_KINDS if k != "502"])  # 502 after the upstream: below
def test_a_fault_on_every_signature_manifest_put(
    kind: str, plain_registry: RegistryProcess, tmp_path: Path, signing_key: SigningKey, proxy_for: object
) -> None:
    """The same fault on every try of the first signature PUT: the retries run out, the release fails."""
    world = make_world(plain_registry, tmp_path)
    fault = Fault(kind, after_upstream=kind in ("502", "503"), slow_seconds=SLOW, retry_after="0")
    injector = FaultInjector(at={n: fault for n in (1, 2, 3)}, match=_is_signature_put)
    proxy = proxy_for(injector)  # type: ignore[operator]
    run_with_faults(world, proxy, signing_key)
    assert len(injector.injected) >= 1


def test_a_write_reset_after_the_upstream_took_it(
    plain_registry: RegistryProcess, tmp_path: Path, signing_key: SigningKey, proxy_for: object
) -> None:
    """Every 3rd write is answered 502 after the registry stored it: retries must not duplicate a layer."""
    world = make_world(plain_registry, tmp_path)
    injector = FaultInjector(at={n: Fault("502", after_upstream=True) for n in range(3, 200, 3)}, match=_is_write)
    proxy = proxy_for(injector)  # type: ignore[operator]
    run_with_faults(world, proxy, signing_key)
    assert len(injector.injected) >= 3
