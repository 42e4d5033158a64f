"""pipeline/apply.py: what an apply costs in requests and the order of its writes.

A release runs through a counting proxy (bench/latency_proxy.py, no delay) in front of a real
docker-registry, so the requests each image's repository receives are counted exactly.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.latency_proxy import Fault, FaultInjector, LatencyProxy
from pipeline.apply import ReleasePorts, ReleaseRequest, ReleaseSettings, apply_plan, desired_release, observe_release
from pipeline.artifact import ArtifactAnnotations, make_artifact
from pipeline.assemble import assemble, resolve_source
from pipeline.cosign.keys import SigningKey, generate_key_pair, load_private_key
from pipeline.errors import ReleaseVectorError
from pipeline.oci.client import RegistryClient, RegistryOptions, RetryPolicy
from pipeline.oci.mirror import parse_mirrors
from pipeline.oci.reference import parse_repository
from pipeline.plan import Action, Plan, build_plan
from pipeline.rehearsal.targets import mirror_specs, seed_images
from pipeline.secret import Secret
from pipeline.signatures.formats import BundleFormat
from pipeline.targets import ReleaseDirTarget
from pipeline.vector import VectorMetadata, load_source
from tests.registry_fixtures import RegistryProcess

VERSION = "v1.2.3"
REV = "89abcdef0123456789abcdef0123456789abcdef"
SOURCE = b"""\
docker-images:
  app:
    api: {name: ghcr.io/acme/api, tag: v1.0.0}
    web: {name: ghcr.io/acme/web, tag: v1.0.0}
    worker: {name: quay.io/acme/worker, tag: v2.0.0}
    db: {name: ghcr.io/acme/db, tag: v3.0.0}
"""
IMAGES = 4
_COUNTER = itertools.count()


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    pair = generate_key_pair(Secret("release-pw"))
    return load_private_key(pair.private_pem, Secret("release-pw"), "release")


@pytest.fixture
def counting_proxy(plain_registry: RegistryProcess) -> Iterator[LatencyProxy]:
    with LatencyProxy(plain_registry.url, delay=0) as proxy:
        yield proxy


class World:
    """Seeded images under a fresh prefix, reached through ``proxy``; a release folder as the target."""

    def __init__(self, registry: RegistryProcess, proxy: LatencyProxy, tmp_path: Path) -> None:
        self.prefix = f"rel-apply{next(_COUNTER)}"
        self.proxy = proxy
        self.release_dir = tmp_path / "releases"
        source = load_source(SOURCE, "release.yaml")
        specs = [
            s.replace(registry.host, f"{registry.host}/{self.prefix}", 1) for s in mirror_specs(source, registry.host)
        ]
        seed_images(registry.host, source.references(), specs, salt=self.prefix, multiarch_every=0)
        self.mirrors = parse_mirrors([s.replace(registry.host, proxy.host, 1) for s in specs])
        self.vector_repository = f"{self.prefix}/releases"

    def release(
        self, key: SigningKey, *, concurrency: int = 4, retries: int = 4, bundle_format: BundleFormat = "legacy"
    ) -> tuple[Plan, list[Action], dict[str, int]]:
        """Assemble, look, plan, apply; the plan, the actions in the order they finished, and the apply's
        requests per repository."""
        source = load_source(SOURCE, "release.yaml")
        metadata = VectorMetadata(version=VERSION, git_revision=REV, source_sha256=source.sha256)
        options = RegistryOptions(retries=RetryPolicy(attempts=retries, backoff=0.001, max_backoff=0.002))
        finished: list[Action] = []
        with RegistryClient(options, sleep=lambda _s: None) as client:
            resolution = resolve_source(client, source, mirrors=self.mirrors, concurrency=concurrency)
            vector = assemble(source, resolution, metadata)
            request = ReleaseRequest(
                version=VERSION,
                vector=vector,
                artifact=make_artifact(vector, ArtifactAnnotations(version=VERSION)),
                repository=parse_repository(f"{self.proxy.host}/{self.vector_repository}"),
                public_key_pem=key.public_key_pem(),
                target_commitish=REV,
            )
            ports = ReleasePorts(client, key.public_key, key, ReleaseDirTarget(self.release_dir))
            settings = ReleaseSettings(self.mirrors, concurrency, bundle_format)
            desired = desired_release(request, settings, ports)
            plan = build_plan(desired, observe_release(desired, request, settings, ports))
            before = self.proxy.by_repository()
            try:
                apply_plan(plan, request, settings, ports, on_done=lambda action, _outcome: finished.append(action))
            finally:
                after = self.proxy.by_repository()
        applied = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
        return plan, finished, applied

    def image_repositories(self, counts: dict[str, int]) -> dict[str, int]:
        return {name: n for name, n in counts.items() if name != self.vector_repository}

    def published(self) -> bool:
        record = self.release_dir / VERSION / "release.json"
        return record.exists() and json.loads(record.read_text())["state"] == "published"


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_new_signature_costs_seven_requests_and_a_rerun_two_per_image(
    concurrency: int, plain_registry: RegistryProcess, counting_proxy: LatencyProxy, tmp_path: Path,
    signing_key: SigningKey,
) -> None:  # fmt: skip
    world = World(plain_registry, counting_proxy, tmp_path)
    plan, finished, applied = world.release(signing_key, concurrency=concurrency)
    assert plan.count("sign-image") == IMAGES and world.published()
    # The look's .sig read is reused: POST + PUT for the payload and for the config, one manifest PUT; and
    # two GETs around that PUT (issue 12: a concurrent signer must not drop our signature).
    assert world.image_repositories(applied) == {name: 7 for name in world.image_repositories(applied)}
    assert len(world.image_repositories(applied)) == IMAGES

    kinds = [action.kind for action in finished]
    assert kinds[-1] == "publish"
    assert kinds.index("push-vector") < kinds.index("sign-vector")
    last_signature = max(i for i, kind in enumerate(kinds) if kind.startswith("sign-"))
    first_target_write = min(i for i, kind in enumerate(kinds) if kind in ("create-draft", "upload-asset"))
    assert last_signature < first_target_write, "the target is written only once every signature exists"
    if concurrency == 1:
        assert finished == list(plan.actions), "at --concurrency 1, strictly in plan order"

    counting_proxy.reset()
    again, _, applied_again = world.release(signing_key, concurrency=concurrency)
    assert again.is_empty and applied_again == {}
    per_image = world.image_repositories(counting_proxy.by_repository())
    assert per_image == {name: 2 for name in per_image} and len(per_image) == IMAGES  # HEAD the tag, GET the .sig


def test_a_failed_image_signature_leaves_the_target_untouched(
    plain_registry: RegistryProcess, tmp_path: Path, signing_key: SigningKey
) -> None:
    """One image's .sig PUT always fails: the vector (its own lane) and the other images are signed, the
    release folder is not even drafted, and a clean re-run completes the release."""
    victim = "ghcr.io/acme/web"

    def is_victims_signature(method: str, path: str) -> bool:
        return method == "PUT" and "/ghcr.io/acme/web/manifests/sha256-" in path

    injector = FaultInjector(at={n: Fault("503") for n in range(1, 20)}, match=is_victims_signature)
    with LatencyProxy(plain_registry.url, delay=0, faults=injector) as proxy:
        world = World(plain_registry, proxy, tmp_path)
        with pytest.raises(ReleaseVectorError) as failure:
            world.release(signing_key, retries=2)
        assert victim.split("/", 1)[1] in failure.value.one_line()
        assert not (world.release_dir / VERSION).exists(), "no draft without every signature"
        injector.at = {}
        plan, _, _ = world.release(signing_key)
    assert [action.kind for action in plan.actions] == ["sign-image", "create-draft", "upload-asset",
                                                        "upload-asset", "publish"]  # fmt: skip
    assert plan.actions[0].target.endswith(victim) and world.published()



def test_the_release_body_names_the_signature_repository_in_its_verify_commands() -> None:
    from pipeline.apply import _body

    vector = b"release-vector:\n  version: v1.0.0\n"
    request = ReleaseRequest(version="v1.0.0", vector=vector,
                             artifact=make_artifact(vector, ArtifactAnnotations(version="v1.0.0")),
                             repository=parse_repository("ghcr.io/acme/releases"), public_key_pem=b"pem",
                             keyless_identity=("https://github.com/acme/x", "https://issuer"))  # fmt: skip
    plain = _body(request, ReleaseSettings())
    assert "--signature-repository" not in plain
    body = _body(request, ReleaseSettings(signatures=parse_repository("ghcr.io/acme/signatures")))
    assert body.count("--signature-repository ghcr.io/acme/signatures") == 2


class _FakeLayout:
    def __init__(self, name: str, format: str) -> None:
        self.name, self.format = name, format


def test_the_vectors_layouts_each_run_in_a_lane_of_their_own() -> None:
    from pipeline.apply import vector_lanes

    sig, ref = _FakeLayout("sig", "legacy"), _FakeLayout("referrer", "v3")
    att, att_ref = _FakeLayout("att", "legacy"), _FakeLayout("att-referrer", "v3")
    lanes = vector_lanes([sig, ref, att, att_ref])
    # each alone: the .sig and .att tags are different manifests; the two referrers take turns at their
    # sha256-<hex> index inside attach_bundle (tests/signatures/test_referrer.py)
    assert [[layout.name for layout in lane] for lane in lanes] == [["sig"], ["referrer"], ["att"], ["att-referrer"]]
    assert vector_lanes([sig]) == [(sig,)]
    assert vector_lanes([]) == []
