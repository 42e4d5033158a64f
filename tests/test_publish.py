"""push_vector / pull_vector / observe_artifact against a real Distribution registry.

The interop checks: the consumer (ansible-common's ``metal_stack_release_vector.py``) reads our artifact
its way, and oras-py (the independent ORAS client) pulls what we pushed and pushes what we pull.
"""

from __future__ import annotations

import io
import json
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.artifact import ArtifactAnnotations, make_artifact, pack_vector
from pipeline.cosign.keys import generate_key_pair
from pipeline.cosign.verify import VerificationPolicy
from pipeline.errors import ConflictError, ExitCode, InvalidInputError, VerificationError
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from pipeline.oci.client import RegistryClient
from pipeline.oci.reference import Repository, parse_reference, parse_repository
from pipeline.publish import is_version_tag, observe_artifact, pull_vector, push_vector
from pipeline.secret import Secret
from tests.conftest import VECTORS
from tests.oci.helpers import options
from tests.registry_fixtures import RegistryProcess

VECTOR = (VECTORS / "metal-stack" / "release-v0.22.19.yaml").read_bytes()
OTHER = (VECTORS / "metal-stack" / "release-v0.22.18.yaml").read_bytes()
NOTES = ArtifactAnnotations(version="v0.22.19", revision="b1065585a627ea6678a7ff5b84a88312aaae4b8e")
WRITES = frozenset({"PUT", "POST", "PATCH", "DELETE"})


class Recorder(httpx.BaseTransport):
    """An httpx transport that forwards to the network and records (method, path)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append((request.method, request.url.path))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] in WRITES]

    def clear(self) -> None:
        self.requests.clear()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(recorder: Recorder) -> Iterator[RegistryClient]:
    with RegistryClient(options(), transport=recorder, sleep=lambda _s: None) as registry_client:
        yield registry_client


@pytest.fixture
def repo(plain_registry: RegistryProcess) -> Repository:
    return parse_repository(plain_registry.ref(f"releases/{uuid.uuid4().hex[:12]}"))


def raw_manifest(registry: RegistryProcess, repo: Repository, reference: str) -> httpx.Response:
    return httpx.get(
        f"{registry.url}/v2/{repo.path}/manifests/{reference}", headers={"Accept": mediatypes.OCI_MANIFEST}
    )


def test_push_writes_exact_bytes_then_a_rerun_writes_nothing(
    client: RegistryClient, recorder: Recorder, repo: Repository, plain_registry: RegistryProcess
) -> None:
    artifact = make_artifact(VECTOR, NOTES)
    result = push_vector(client, repo, ["v0.22.19", "latest"], VECTOR, NOTES)
    assert result.digest == artifact.digest
    assert [(t.tag, t.status) for t in result.tags] == [("v0.22.19", "created"), ("latest", "created")]
    puts = [path for method, path in recorder.writes() if method == "PUT" and "/manifests/" in path]
    assert puts == [f"/v2/{repo.path}/manifests/v0.22.19", f"/v2/{repo.path}/manifests/latest"]
    for tag in ("v0.22.19", "latest"):
        response = raw_manifest(plain_registry, repo, tag)
        assert response.content == artifact.manifest
        assert response.headers["Docker-Content-Digest"] == artifact.digest
        assert response.headers["Content-Type"] == mediatypes.OCI_MANIFEST

    recorder.clear()
    again = push_vector(client, repo, ["v0.22.19", "latest"], VECTOR, NOTES)
    assert again.digest == artifact.digest
    assert again.written == () and again.unchanged == ("v0.22.19", "latest")
    assert recorder.writes() == []
    assert {method for method, _ in recorder.requests} <= {"HEAD", "GET"}
    assert sum(1 for method, path in recorder.requests if method == "HEAD" and "/manifests/" in path) == 2


def test_observe_artifact(client: RegistryClient, recorder: Recorder, repo: Repository) -> None:
    ours = make_artifact(VECTOR, NOTES).digest
    assert observe_artifact(client, repo, "v0.22.19", ours) == "absent"
    push_vector(client, repo, ["v0.22.19"], VECTOR, NOTES)
    recorder.clear()
    assert observe_artifact(client, repo, "v0.22.19", ours) == "same"
    assert observe_artifact(client, repo, "v0.22.19", make_artifact(OTHER, NOTES).digest) == "different"
    assert recorder.writes() == []


def test_moving_a_version_tag_is_a_conflict_before_any_write(
    client: RegistryClient, recorder: Recorder, repo: Repository, plain_registry: RegistryProcess
) -> None:
    first = push_vector(client, repo, ["v0.22.19"], VECTOR, NOTES)
    recorder.clear()
    with pytest.raises(ConflictError) as caught:
        push_vector(client, repo, ["new-branch", "v0.22.19"], OTHER, NOTES)
    assert caught.value.exit_code == ExitCode.CONFLICT == 8
    assert caught.value.where == f"{repo.name}:v0.22.19"
    assert first.digest in caught.value.message and caught.value.hint and "--force" in caught.value.hint
    assert recorder.writes() == []
    assert raw_manifest(plain_registry, repo, "new-branch").status_code == 404

    forced = push_vector(client, repo, ["v0.22.19"], OTHER, NOTES, force=True)
    assert [(t.tag, t.status, t.previous) for t in forced.tags] == [("v0.22.19", "moved", first.digest)]
    assert raw_manifest(plain_registry, repo, "v0.22.19").headers["Docker-Content-Digest"] == forced.digest


def test_floating_tags_move_without_force(client: RegistryClient, repo: Repository) -> None:
    first = push_vector(client, repo, ["latest"], VECTOR, NOTES)
    moved = push_vector(client, repo, ["latest"], OTHER, NOTES)
    assert [(t.tag, t.status, t.previous) for t in moved.tags] == [("latest", "moved", first.digest)]


@pytest.mark.parametrize(
    ("tag", "version"),
    [("v0.22.19", True), ("v0.22.19-rc.1", True), ("1.2", True), ("v1.2.3-rc1", True), ("latest", False),
     ("main", False), ("v1", False), ("feature-x", False)],
)  # fmt: skip
def test_version_tags(tag: str, version: bool) -> None:
    assert is_version_tag(tag) is version


def test_no_tags_or_bad_tags_are_refused(client: RegistryClient, recorder: Recorder, repo: Repository) -> None:
    with pytest.raises(InvalidInputError, match="no tag"):
        push_vector(client, repo, [], VECTOR, NOTES)
    with pytest.raises(InvalidInputError, match="invalid tag"):
        push_vector(client, repo, ["ok", "not ok"], VECTOR, NOTES)
    assert recorder.requests == []


def test_pull_by_tag_and_by_digest(client: RegistryClient, repo: Repository) -> None:
    pushed = push_vector(client, repo, ["v0.22.19"], VECTOR, NOTES)
    by_tag = pull_vector(client, repo.tag("v0.22.19"), None)
    assert by_tag.content == VECTOR and by_tag.digest == pushed.digest and by_tag.verification is None
    by_digest = pull_vector(client, repo.digest(pushed.digest), None)
    assert by_digest.content == VECTOR and by_digest.pinned == repo.digest(pushed.digest)


def test_pull_verifies_before_fetching_the_layer(client: RegistryClient, recorder: Recorder, repo: Repository) -> None:
    pushed = push_vector(client, repo, ["v0.22.19"], VECTOR, NOTES)
    from pipeline.cosign.keys import load_public_key

    policy = VerificationPolicy(load_public_key(generate_key_pair(Secret("pw")).public_pem, "test"), None, (), True)
    recorder.clear()
    with pytest.raises(VerificationError, match="no signatures found") as caught:
        pull_vector(client, repo.tag("v0.22.19"), policy)
    assert caught.value.where == str(repo.digest(pushed.digest))
    layer = json.loads(make_artifact(VECTOR, NOTES).manifest)["layers"][0]["digest"]
    assert not any(layer in path for _, path in recorder.requests)


def test_pull_refuses_something_that_is_not_a_vector(client: RegistryClient, repo: Repository) -> None:
    client.upload_blob(repo, b"{}")
    client.upload_blob(repo, b"layer")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {"mediaType": mediatypes.OCI_EMPTY, "digest": digests.compute(b"{}"), "size": 2},
            "layers": [{"mediaType": mediatypes.OCI_LAYER_TAR_GZIP, "digest": digests.compute(b"layer"), "size": 5}],
        }
    ).encode()
    client.put_manifest(repo, "image", manifest, mediatypes.OCI_MANIFEST)
    with pytest.raises(InvalidInputError, match="not a release-vector artifact"):
        pull_vector(client, repo.tag("image"), None)


# --- interop: the consumer ---------------------------------------------------------------------------


def test_the_metal_stack_consumer_reads_our_artifact(
    client: RegistryClient, repo: Repository, plain_registry: RegistryProcess
) -> None:
    """As ansible-common's OciLoader: GET the manifest (OCI Accept), first layer of the type, tarfile r:gz."""
    push_vector(client, repo, ["v0.22.19"], VECTOR, NOTES)
    base = f"{plain_registry.url}/v2/{repo.path}"
    response = httpx.get(f"{base}/manifests/v0.22.19", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    response.raise_for_status()
    manifest = response.json()
    target = None
    for layer in manifest["layers"]:
        if layer["mediaType"] in (
            "application/vnd.metal-stack.release-vector.v1.tar+gzip",
            "application/vnd.metal-stack.ansible-role.v1.tar+gzip",
        ):
            target = layer
            break
    assert target is not None
    blob = httpx.get(f"{base}/blobs/{target['digest']}", follow_redirects=True)
    blob.raise_for_status()
    with tarfile.open(fileobj=io.BytesIO(blob.content), mode="r:gz") as tar:
        extracted = tar.extractfile(tar.getmember("release.yaml"))
        assert extracted is not None
        assert extracted.read().decode("utf-8") == VECTOR.decode("utf-8")


# --- interop: oras-py ----------------------------------------------------------------------------------


def oras_registry() -> object:
    oras_provider = pytest.importorskip("oras.provider")
    return oras_provider.Registry(insecure=True)  # plain HTTP: the test registry listens on 127.0.0.1


def test_oras_py_pulls_what_we_pushed(client: RegistryClient, repo: Repository, tmp_path: Path) -> None:
    pushed = push_vector(client, repo, ["v0.22.19"], VECTOR, NOTES)
    registry = oras_registry()
    manifest = registry.get_manifest(f"{repo.name}:v0.22.19")  # type: ignore[attr-defined]
    assert manifest["artifactType"] == mediatypes.RELEASE_VECTOR_ARTIFACT
    assert manifest["config"]["mediaType"] == mediatypes.OCI_EMPTY
    files = registry.pull(target=f"{repo.name}:v0.22.19", outdir=str(tmp_path / "out"))  # type: ignore[attr-defined]
    assert [Path(f).name for f in files] == ["release.tar.gz"]
    layer = Path(files[0]).read_bytes()
    assert layer == pack_vector(VECTOR)
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
        assert tar.getnames() == ["release.yaml"]
    assert pull_vector(client, repo.digest(pushed.digest), None).content == VECTOR


def _metal_stack_style_targz(directory: Path, content: bytes) -> Path:
    """``tar -czvf release.tar.gz release.yaml`` as a CI runner makes it (GNU tar, real owner and mtime)."""
    (directory / "release.yaml").write_bytes(content)
    path = directory / "release.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        tar.add(directory / "release.yaml", arcname="release.yaml")
    return path


def test_we_pull_what_oras_py_pushed_as_oras_push_does(
    client: RegistryClient, repo: Repository, tmp_path: Path
) -> None:
    """oras push --artifact-type …release-vector.v1 release.tar.gz:…tar+gzip, rebuilt with oras-py's parts."""
    oci = pytest.importorskip("oras.oci")
    registry = oras_registry()
    layer_path = _metal_stack_style_targz(tmp_path, VECTOR)
    target = f"{repo.name}:v0.22.19"
    container = registry.get_container(target)  # type: ignore[attr-defined]
    layer = oci.NewLayer(str(layer_path), media_type=mediatypes.RELEASE_VECTOR_LAYER)
    layer["annotations"] = {"org.opencontainers.image.title": "release.tar.gz"}
    assert registry.upload_blob(str(layer_path), container, layer).status_code in (200, 201)  # type: ignore[attr-defined]
    config_path = tmp_path / "config.json"
    config_path.write_bytes(b"{}")
    config = {"mediaType": mediatypes.OCI_EMPTY, "digest": digests.compute(b"{}"), "size": 2, "data": "e30="}
    assert registry.upload_blob(str(config_path), container, config).status_code in (200, 201)  # type: ignore[attr-defined]
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "artifactType": mediatypes.RELEASE_VECTOR_ARTIFACT,
        "config": config,
        "layers": [layer],
        "annotations": {"org.opencontainers.image.created": "2026-07-22T10:00:00Z"},
    }
    response = registry.upload_manifest(manifest, container)  # type: ignore[attr-defined]
    assert response.status_code == 201
    pulled = pull_vector(client, parse_reference(target), None)
    assert pulled.content == VECTOR


def test_we_pull_what_oras_py_push_makes(
    client: RegistryClient, repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """oras-py's own push (no artifactType, the ``unknown`` config type): the layer media type is what counts."""
    registry = oras_registry()
    _metal_stack_style_targz(tmp_path, OTHER)
    monkeypatch.chdir(tmp_path)
    target = f"{repo.name}:latest"
    response = registry.push(  # type: ignore[attr-defined]
        target=target, files=[f"release.tar.gz:{mediatypes.RELEASE_VECTOR_LAYER}"], quiet=True
    )
    assert response.status_code == 201
    assert pull_vector(client, parse_reference(target), None).content == OTHER
