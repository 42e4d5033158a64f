"""bench/latency_proxy.py: which repository a request is about (the per-repository counts), and the spec
1.1 features it answers with ``oci_1_1`` (against the real registry behind it)."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest

from bench.latency_proxy import LatencyProxy, repository_of
from pipeline.oci import mediatypes
from pipeline.oci.client import Descriptor
from pipeline.oci.reference import parse_reference
from pipeline.signatures.referrer import BUNDLE_ARTIFACT_TYPE, attach_bundle, referrers_tag
from tests.oci.helpers import client as make_client
from tests.oci.helpers import push_image
from tests.registry_fixtures import RegistryProcess


@pytest.mark.parametrize(
    ("path", "repository"),
    [
        ("/v2/team/app/manifests/v1", "team/app"),
        ("/v2/team/app/manifests/sha256-ab.sig?x=1", "team/app"),
        ("/v2/prefix/ghcr.io/acme/api/blobs/uploads/", "prefix/ghcr.io/acme/api"),
        ("/v2/prefix/ghcr.io/acme/api/blobs/uploads/1234?_state=abc&digest=sha256:1", "prefix/ghcr.io/acme/api"),
        ("/v2/app/blobs/sha256:00", "app"),
        ("/v2/blobs/blobs/sha256:00", "blobs"),  # a repository may be called "blobs"
        ("/v2/team/app/tags/list", "team/app"),
        ("/v2/team/app/referrers/sha256:00", "team/app"),
        ("/v2/", None),
        ("/v2", None),
        ("/token?scope=repository:team/app:pull", None),
        ("/repos/acme/releases/releases", None),
    ],
)
def test_repository_of(path: str, repository: str | None) -> None:
    assert repository_of(path) == repository


def test_a_tag_named_like_an_api_word_does_not_confuse_it() -> None:
    assert repository_of("/v2/team/app/manifests/blobs") == "team/app"
    assert repository_of("/v2/tags/tags/list") == "tags"


# --- --oci-1.1: the spec 1.1 features answered for Debian's docker-registry behind the proxy --------------


def _raw(url: str, path: str, accept: str = "application/vnd.oci.image.index.v1+json") -> httpx.Response:
    return httpx.get(f"{url}{path}", headers={"Accept": accept}, trust_env=False)


def test_oci_1_1_a_referrer_is_listed_by_the_api_and_no_fallback_tag_is_written(
    plain_registry: RegistryProcess,
) -> None:
    with LatencyProxy(plain_registry.url, delay=0, oci_1_1=True) as proxy, make_client() as client:
        image = parse_reference(f"{proxy.host}/bench/oci11:v1")
        _, digest = push_image(client, str(image), b"subject-image")
        subject = Descriptor(mediatypes.OCI_MANIFEST, digest, len(client.get_manifest(image).data))
        referrer = attach_bundle(client, image.repo, subject, b'{"bundle": 1}', created="2026-12-03T00:00:00Z")

        listed = client.get_referrers(image.repo, digest)
        assert listed is not None
        [entry] = json.loads(listed.data)["manifests"]
        assert entry["digest"] == referrer and entry["artifactType"] == BUNDLE_ARTIFACT_TYPE
        assert entry["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"
        manifest = _raw(plain_registry.url, f"/v2/bench/oci11/manifests/{referrer}", mediatypes.OCI_MANIFEST)
        assert entry["size"] == len(manifest.content)  # the registry holds the manifest the API lists
        filtered = client.get_referrers(image.repo, digest, artifact_type="application/x-other")
        assert filtered is not None and json.loads(filtered.data)["manifests"] == []
        assert proxy.counts().get("GET referrers", 0) >= 2
    fallback = _raw(plain_registry.url, f"/v2/bench/oci11/manifests/{referrers_tag(digest)}")
    assert fallback.status_code == 404  # the client trusted the API: the registry got no fallback index


def test_oci_1_1_a_blob_is_uploaded_in_one_request(plain_registry: RegistryProcess) -> None:
    data = b"one request: " + secrets.token_bytes(16)
    with LatencyProxy(plain_registry.url, delay=0, oci_1_1=True) as proxy, make_client() as client:
        digest = client.upload_blob(parse_reference(f"{proxy.host}/bench/single:v1"), data, check_exists=False)
        assert proxy.counts() == {"GET ping": 1, "POST upload": 1}
    stored = _raw(plain_registry.url, f"/v2/bench/single/blobs/{digest}", "*/*")
    assert stored.status_code == 200 and stored.content == data


def test_without_oci_1_1_the_registry_answers_as_it_is(plain_registry: RegistryProcess) -> None:
    with LatencyProxy(plain_registry.url, delay=0) as proxy, make_client() as client:
        image = parse_reference(f"{proxy.host}/bench/plain:v1")
        client.upload_blob(image, b"two requests: " + secrets.token_bytes(16), check_exists=False)
        assert client.get_referrers(image.repo, "sha256:" + "1" * 64) is None
        assert proxy.counts() == {"GET ping": 1, "GET referrers": 1, "POST upload": 1, "PUT upload": 1}
