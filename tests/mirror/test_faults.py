"""Faults between the mirror and its target (5xx, 429, connection resets, answers slower than the
request timeout, through the fault-injecting proxy): each run completes or fails with one line, a re-run
completes, and at no point does a tag point at a manifest whose blobs (or child manifests) are missing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.latency_proxy import Fault, FaultInjector, LatencyProxy
from pipeline.mirror.manifests import blobs, children, is_index
from pipeline.oci.client import RegistryClient
from pipeline.oci.reference import Repository
from tests.cli.test_release_cli import keys
from tests.mirror.world import make_world, mirrored, release, verify_args
from tests.oci.helpers import client as make_client
from tests.registry_fixtures import RegistryProcess, start_registry

__all__ = ["keys"]


@pytest.fixture(scope="module")
def faulty_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    registry = start_registry(tmp_path_factory.mktemp("registry-faulty"), name="faulty")
    yield registry
    registry.stop()


def _complete(client: RegistryClient, repo: Repository, digest: str) -> bool:
    manifest = client.get_manifest(repo.digest(digest))
    if is_index(manifest.media_type, manifest.data):
        return all(client.head_manifest(repo.digest(c.digest)) is not None and _complete(client, repo, c.digest)
                   for c in children(manifest.data, digest))  # fmt: skip
    return all(client.blob_exists(repo, b.digest) for b in blobs(manifest.data, digest))


def assert_no_dangling_tag(registry: RegistryProcess, prefix: str) -> int:
    """Every tag under ``prefix`` names a manifest whose whole tree is there; returns the tags seen."""
    seen = 0
    with make_client() as client:
        catalog = httpx.get(f"{registry.url}/v2/_catalog?n=1000", trust_env=False).json()["repositories"]
        for path in (name for name in catalog if name.startswith(f"{prefix}/")):
            repo = Repository(registry.host, path)
            for tag in client.list_tags(repo):
                descriptor = client.head_manifest(repo.tag(tag))
                assert descriptor is not None
                assert _complete(client, repo, descriptor.digest), f"{repo.name}:{tag} has missing content"
                seen += 1
    return seen


SLOW_SECONDS = 6.0
"""A slow answer comes this late: past the run's --request-timeout (3 s), so the client gives up on it."""


@pytest.mark.parametrize(("seed", "kinds"), [(1, ("500", "502", "503", "429", "reset")),
                                              (2, ("500", "502", "503", "429", "reset")),
                                              (3, ("500", "502", "503", "429", "reset")),
                                              (4, ("503", "reset", "slow"))])  # fmt: skip
def test_faults_then_a_rerun_completes(
    cli: Any, plain_registry: RegistryProcess, faulty_target: RegistryProcess, keys: tuple[Path, Path],
    tmp_path: Path, seed: int, kinds: tuple[str, ...],
) -> None:  # fmt: skip
    key, pub = keys
    world = make_world(plain_registry.host, tmp_path)
    release(cli, world, key)
    prefix = f"faults{seed}-{tmp_path.name}".lower()
    slow = "slow" in kinds
    injector = FaultInjector(rate=0.15 if slow else 0.25, seed=seed, kinds=kinds, slow_seconds=SLOW_SECONDS)
    extra = {1: Fault("reset"), 2: Fault("503", after_upstream=True)}
    with LatencyProxy(faulty_target.url, delay=0.0, faults=FaultInjector(at=extra)) as clean, LatencyProxy(
        faulty_target.url, delay=0.0, faults=injector
    ) as proxy:
        to = f"{proxy.host}/{prefix}"
        first = cli("mirror", f"{world.repository}:v1.0.0", "--to", to,
                    env={"RELEASE_VECTOR_REQUEST_TIMEOUT": "3"} if slow else None)  # fmt: skip
        errors = [line for line in first.stderr.splitlines() if line.startswith("error:")]
        assert "Traceback" not in first.stderr
        assert first.exit_code == 0 or len(errors) == 1, first.stderr
        assert injector.injected, "faults were injected"
        assert not slow or any(i.fault.kind == "slow" for i in injector.injected), "a slow answer among them"
        assert_no_dangling_tag(faulty_target, prefix)

        rerun = cli("mirror", f"{world.repository}:v1.0.0", "--to", f"{clean.host}/{prefix}", "--json")
        assert rerun.exit_code == 0, rerun.stderr
    assert assert_no_dangling_tag(faulty_target, prefix) >= 9  # 3 items, their .sig and fallback tags
    rules = [r.replace(clean.host, faulty_target.host) for r in json.loads(rerun.stdout)["registry_mirrors"]]
    target = mirrored(f"{faulty_target.host}/{prefix}", f"{world.repository}:v1.0.0")
    verified = cli("verify-release", *verify_args(target, pub, rules))
    assert verified.exit_code == 0, verified.stderr
