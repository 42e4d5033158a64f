"""The registry client asks a registry for its referrers API once: an answer meaning "no API" is remembered for
that registry (one request per image saved on every v3 look, signature and verification), another registry is
still asked."""

from __future__ import annotations

from pipeline.oci.reference import parse_reference
from tests.oci.helpers import client as make_client
from tests.registry_fixtures import Recorded, Reply, ScriptedServer

DIGESTS = ["sha256:" + c * 64 for c in "123"]


def test_no_referrers_api_is_asked_once_per_registry() -> None:
    asked: list[str] = []

    def handler(request: Recorded) -> Reply:
        if "/referrers/" in request.url_path:
            asked.append(request.url_path)
            return Reply(404)
        return Reply(200)

    with ScriptedServer(handler) as first, ScriptedServer(handler) as second, make_client() as client:
        for digest in DIGESTS:
            assert client.get_referrers(parse_reference(f"{first.host}/a/b").repo, digest) is None
            assert client.get_referrers(parse_reference(f"{first.host}/c/d").repo, digest) is None
        assert len(asked) == 1
        assert client.get_referrers(parse_reference(f"{second.host}/a/b").repo, DIGESTS[0]) is None
        assert len(asked) == 2


def test_concurrent_first_asks_send_one_probe() -> None:
    """Sixteen threads looking at once (the release's look): one asks, the others wait for its answer."""
    from concurrent.futures import ThreadPoolExecutor

    asked: list[str] = []

    def handler(request: Recorded) -> Reply:
        if "/referrers/" in request.url_path:
            asked.append(request.url_path)
            return Reply(404)
        return Reply(200)

    digests = ["sha256:" + f"{i:064x}" for i in range(16)]
    with ScriptedServer(handler) as server, make_client() as client:
        repo = parse_reference(f"{server.host}/a/b").repo
        with ThreadPoolExecutor(16) as pool:
            assert list(pool.map(lambda digest: client.get_referrers(repo, digest), digests)) == [None] * 16
    assert len(asked) == 1


def test_a_registry_with_the_api_is_asked_for_each_image() -> None:
    index = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}'

    def handler(request: Recorded) -> Reply:
        if "/referrers/" in request.url_path:
            return Reply(200, {"Content-Type": "application/vnd.oci.image.index.v1+json"}, index)
        return Reply(200)

    with ScriptedServer(handler) as server, make_client() as client:
        repo = parse_reference(f"{server.host}/a/b").repo
        for digest in DIGESTS:
            listed = client.get_referrers(repo, digest)
            assert listed is not None and listed.data == index
        assert sum("/referrers/" in r.url_path for r in server.requests) == 3
