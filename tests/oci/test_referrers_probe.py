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
