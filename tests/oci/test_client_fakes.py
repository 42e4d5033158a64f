"""The registry client against small scripted HTTP servers that lie, fail, redirect and record."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from pipeline.errors import AuthError, RegistryError, ReleaseVectorError
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from pipeline.oci.auth import Credential, StaticCredentials
from pipeline.oci.client import RegistryClient, Timeouts, parse_retry_after, scrub_url
from pipeline.oci.reference import parse_reference
from pipeline.secret import Secret
from tests.oci.helpers import client, image_manifest, options
from tests.registry_fixtures import Recorded, Reply, ScriptedServer

MANIFEST = image_manifest(b"layer")
MANIFEST_DIGEST = digests.compute(MANIFEST)
OTHER = image_manifest(b"another layer")
OTHER_DIGEST = digests.compute(OTHER)
OCI_HEADERS = {"Content-Type": mediatypes.OCI_MANIFEST}


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Recorded], Reply]], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(handler: Callable[[Recorded], Reply]) -> ScriptedServer:
        server = ScriptedServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def v2_ok(handler: Callable[[Recorded], Reply]) -> Callable[[Recorded], Reply]:
    """Answer the ``/v2/`` ping with 200 (anonymous) and pass everything else on."""

    def wrapped(request: Recorded) -> Reply:
        if request.url_path == "/v2/":
            return Reply(200, {"Content-Type": "application/json"}, b"{}")
        return handler(request)

    return wrapped


def assert_one_line(error: ReleaseVectorError, *parts: str) -> None:
    text = str(error)
    assert "\n" not in text
    for part in parts:
        assert part in text


# --- lying registries ------------------------------------------------------------------------------


def test_manifest_with_another_digest_than_asked_for(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(v2_ok(lambda r: Reply(200, OCI_HEADERS, OTHER)))
    ref = parse_reference(f"{server.host}/lying/app@{MANIFEST_DIGEST}")
    with client() as c, pytest.raises(RegistryError) as info:
        c.get_manifest(ref)
    assert_one_line(info.value, str(ref), "not the one asked for", OTHER_DIGEST)


def test_lying_docker_content_digest_on_a_tag(serve: Callable[..., ScriptedServer]) -> None:
    headers = {**OCI_HEADERS, "Docker-Content-Digest": OTHER_DIGEST}
    server = serve(v2_ok(lambda r: Reply(200, headers, MANIFEST)))
    ref = parse_reference(f"{server.host}/lying/app:v1")
    with client() as c, pytest.raises(RegistryError) as info:
        c.get_manifest(ref)
    assert_one_line(info.value, str(ref), "Docker-Content-Digest")


def test_head_reporting_another_digest_than_asked_for(serve: Callable[..., ScriptedServer]) -> None:
    headers = {**OCI_HEADERS, "Docker-Content-Digest": OTHER_DIGEST, "Content-Length": str(len(OTHER))}
    server = serve(v2_ok(lambda r: Reply(200, headers, OTHER)))
    ref = parse_reference(f"{server.host}/lying/app@{MANIFEST_DIGEST}")
    with client() as c, pytest.raises(RegistryError, match="asked for by digest"):
        c.head_manifest(ref)


def test_head_without_digest_falls_back_to_get(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(v2_ok(lambda r: Reply(200, OCI_HEADERS, MANIFEST)))
    ref = parse_reference(f"{server.host}/plain/app:v1")
    with client() as c:
        head = c.head_manifest(ref)
    assert head is not None and head.digest == MANIFEST_DIGEST and head.size == len(MANIFEST)
    assert [r.method for r in server.requests if r.url_path != "/v2/"] == ["HEAD", "GET"]


def test_put_manifest_stored_under_another_digest(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(v2_ok(lambda r: Reply(201, {"Docker-Content-Digest": OTHER_DIGEST})))
    ref = parse_reference(f"{server.host}/lying/app:v1")
    with client() as c, pytest.raises(RegistryError) as info:
        c.put_manifest(ref, None, MANIFEST, mediatypes.OCI_MANIFEST)
    assert_one_line(info.value, str(ref), OTHER_DIGEST, MANIFEST_DIGEST)
    put = next(r for r in server.requests if r.method == "PUT")
    assert put.body == MANIFEST and put.headers["content-type"] == mediatypes.OCI_MANIFEST


def test_single_request_upload_where_the_registry_takes_it(serve: Callable[..., ScriptedServer]) -> None:
    """OCI's single-request monolithic upload: ``POST ?digest=`` with the bytes, answered 201 (one request)."""
    blob = b"one request"

    def handler(request: Recorded) -> Reply:
        if request.method == "POST" and request.query.get("digest") == [digests.compute(blob)]:
            assert request.body == blob
            return Reply(201, {"Docker-Content-Digest": digests.compute(blob), "Location": "/v2/x/blobs/y"})
        return Reply(500)

    server = serve(v2_ok(handler))
    with client() as c:
        assert c.upload_blob(parse_reference(f"{server.host}/mono/app:v1"), blob, check_exists=False)
    assert [r.method for r in server.requests if r.url_path != "/v2/"] == ["POST"]


def test_single_request_upload_refused_starts_a_plain_upload(serve: Callable[..., ScriptedServer]) -> None:
    """A registry refusing ``POST ?digest=`` (400) instead of ignoring it: a plain POST, then the PUT."""

    def handler(request: Recorded) -> Reply:
        if request.method == "POST":
            if "digest" in request.query:
                return Reply(400)
            return Reply(202, {"Location": "/v2/mono/app/blobs/uploads/u1"})
        if request.method == "PUT":
            return Reply(201, {"Docker-Content-Digest": digests.compute(b"bytes")})
        return Reply(500)

    server = serve(v2_ok(handler))
    with client() as c:
        ref = parse_reference(f"{server.host}/mono/app:v1")
        c.upload_blob(ref, b"bytes", check_exists=False)
        c.upload_blob(ref, b"bytes", check_exists=False)
    sent = [(r.method, "digest" in r.query) for r in server.requests if r.url_path != "/v2/"]
    assert sent == [("POST", True), ("POST", False), ("PUT", True), ("POST", False), ("PUT", True)]


def test_blob_with_wrong_bytes(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(v2_ok(lambda r: Reply(200, {"Content-Type": "application/octet-stream"}, b"not it")))
    ref = parse_reference(f"{server.host}/lying/app:v1")
    wanted = digests.compute(b"the real blob")
    with client() as c, pytest.raises(RegistryError) as info:
        c.get_blob(ref, wanted)
    assert_one_line(info.value, f"{ref.name}@{wanted}", digests.compute(b"not it"))


# --- media types and sizes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/vnd.docker.distribution.manifest.v1+prettyjws",  # Docker schema 1: obsolete, never accepted
        "text/html; charset=utf-8",
        "application/vnd.example.thing+json",
    ],
)
def test_unexpected_media_type(serve: Callable[..., ScriptedServer], content_type: str) -> None:
    server = serve(v2_ok(lambda r: Reply(200, {"Content-Type": content_type}, b"<html>hello</html>")))
    ref = parse_reference(f"{server.host}/odd/app:v1")
    with client() as c, pytest.raises(RegistryError) as info:
        c.get_manifest(ref)
    assert_one_line(info.value, str(ref), "unexpected manifest media type", content_type.split(";")[0])


def test_generic_content_type_uses_the_declared_media_type(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(v2_ok(lambda r: Reply(200, {"Content-Type": "application/json"}, MANIFEST)))
    with client() as c:
        manifest = c.get_manifest(parse_reference(f"{server.host}/generic/app:v1"))
    assert manifest.media_type == mediatypes.OCI_MANIFEST and manifest.data == MANIFEST


def test_accept_header_lists_what_we_take(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(v2_ok(lambda r: Reply(200, OCI_HEADERS, MANIFEST)))
    with client() as c:
        c.get_manifest(parse_reference(f"{server.host}/a/b:v1"))
    accept = next(r for r in server.requests if r.method == "GET" and "manifests" in r.path).headers["accept"]
    assert [a.strip() for a in accept.split(",")] == list(mediatypes.ALL_MANIFESTS)


@pytest.mark.parametrize("announce", [True, False])
def test_manifest_over_4_mib_is_refused(serve: Callable[..., ScriptedServer], announce: bool) -> None:
    big = b" " * (mediatypes.MAX_MANIFEST_BYTES + 1)

    def handler(request: Recorded) -> Reply:
        if announce:
            return Reply(200, {**OCI_HEADERS, "Content-Length": str(len(big))}, big)
        return Reply(200, OCI_HEADERS, big)

    server = serve(v2_ok(handler))
    ref = parse_reference(f"{server.host}/big/app:v1")
    with client() as c, pytest.raises(RegistryError, match="too large") as info:
        c.get_manifest(ref)
    assert str(ref) in str(info.value)


# --- retries ------------------------------------------------------------------------------------------


def flaky(failures: list[Reply], then: Reply) -> Callable[[Recorded], Reply]:
    remaining = list(failures)

    def handler(request: Recorded) -> Reply:
        return remaining.pop(0) if remaining else then

    return handler


def test_retries_5xx_then_succeeds(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(v2_ok(flaky([Reply(503), Reply(502)], Reply(200, OCI_HEADERS, MANIFEST))))
    sleeps: list[float] = []
    with client(sleep=sleeps.append) as c:
        assert c.get_manifest(parse_reference(f"{server.host}/a/b:v1")).data == MANIFEST
    assert len(sleeps) == 2 and all(0 < s <= 0.004 for s in sleeps)


def test_retry_after_is_honoured(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(v2_ok(flaky([Reply(429, {"Retry-After": "2"})], Reply(200, OCI_HEADERS, MANIFEST))))
    sleeps: list[float] = []
    with client(sleep=sleeps.append) as c:
        c.get_manifest(parse_reference(f"{server.host}/a/b:v1"))
    assert sleeps == [2.0]


def test_retry_after_too_long_stops_at_once(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(v2_ok(lambda r: Reply(503, {"Retry-After": "3600"})))
    sleeps: list[float] = []
    ref = parse_reference(f"{server.host}/a/b:v1")
    with client(sleep=sleeps.append) as c, pytest.raises(RegistryError) as info:
        c.get_manifest(ref)
    assert sleeps == []
    assert_one_line(info.value, "3600", str(ref))


def test_persistent_5xx_gives_up_after_the_attempts(serve: Callable[..., ScriptedServer]) -> None:
    body = json.dumps({"errors": [{"code": "UNKNOWN", "message": "storage exploded"}]}).encode()
    server = serve(v2_ok(lambda r: Reply(500, {"Content-Type": "application/json"}, body)))
    ref = parse_reference(f"{server.host}/a/b:v1")
    with client() as c, pytest.raises(RegistryError) as info:
        c.get_manifest(ref)
    assert_one_line(info.value, "500", "storage exploded", "after 3 attempts", str(ref))
    assert len([r for r in server.requests if "manifests" in r.path]) == 3


@pytest.mark.parametrize("status", [400, 404, 405])
def test_client_errors_are_not_retried(serve: Callable[..., ScriptedServer], status: int) -> None:
    server = serve(v2_ok(lambda r: Reply(status)))
    with client() as c, pytest.raises(RegistryError):
        c.get_manifest(parse_reference(f"{server.host}/a/b:v1"))
    assert len([r for r in server.requests if "manifests" in r.path]) == 1


def test_not_a_registry(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(lambda r: Reply(404))
    with client() as c, pytest.raises(RegistryError, match="not an OCI registry"):
        c.get_manifest(parse_reference(f"{server.host}/a/b:v1"))


def test_parse_retry_after() -> None:
    from datetime import UTC, datetime

    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", lambda: now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", lambda: now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# --- auth against fakes ---------------------------------------------------------------------------------


def test_403_is_an_auth_error(serve: Callable[..., ScriptedServer]) -> None:
    body = json.dumps({"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]})
    server = serve(v2_ok(lambda r: Reply(403, {"Content-Type": "application/json"}, body.encode())))
    ref = parse_reference(f"{server.host}/a/b:v1")
    with client() as c, pytest.raises(AuthError) as info:
        c.get_manifest(ref)
    assert_one_line(info.value, "403", "DENIED", str(ref))


def test_redirect_to_another_host_drops_credentials(serve: Callable[..., ScriptedServer]) -> None:
    blob = b"served by the storage host"
    storage = serve(lambda r: Reply(200, {"Content-Type": "application/octet-stream"}, blob))

    def registry_handler(request: Recorded) -> Reply:
        if request.headers.get("authorization") != "Basic " + base64.b64encode(b"user:pw").decode():
            return Reply(401, {"WWW-Authenticate": 'Basic realm="fake"'})
        if request.url_path == "/v2/":
            return Reply(200)
        return Reply(307, {"Location": f"{storage.url}/blob-data?X-Amz-Signature=abc"})

    registry = serve(registry_handler)
    store = StaticCredentials({registry.host: Credential("user", Secret("pw"), None, "test")})
    with client(store) as c:
        assert c.get_blob(parse_reference(f"{registry.host}/a/b:v1"), digests.compute(blob)) == blob
    assert [r.headers.get("authorization") for r in storage.requests] == [None]
    assert any(r.headers.get("authorization") for r in registry.requests)


def bearer_registry(
    serve: Callable[..., ScriptedServer], name: str, log: list[tuple[str, str | None]]
) -> ScriptedServer:
    """A fake registry with its own token endpoint that hands out ``token-<name>``."""
    holder: dict[str, ScriptedServer] = {}

    def handler(request: Recorded) -> Reply:
        log.append((f"{name}{request.url_path}", request.headers.get("authorization")))
        if request.url_path == "/token":
            return Reply(200, {"Content-Type": "application/json"}, json.dumps({"token": f"token-{name}"}).encode())
        if request.headers.get("authorization") != f"Bearer token-{name}":
            realm = f"{holder['server'].url}/token"
            return Reply(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="{name}"'})
        if request.url_path == "/v2/":
            return Reply(200)
        return Reply(200, OCI_HEADERS, MANIFEST)

    holder["server"] = serve(handler)
    return holder["server"]


def test_two_bearer_registries_get_only_their_own_token_and_credentials(serve: Callable[..., ScriptedServer]) -> None:
    log: list[tuple[str, str | None]] = []
    first = bearer_registry(serve, "first", log)
    second = bearer_registry(serve, "second", log)
    store = StaticCredentials({first.host: Credential("user", Secret("first-password"), None, "test")})
    with client(store) as c:
        c.get_manifest(parse_reference(f"{first.host}/a/b:v1"))
        c.get_manifest(parse_reference(f"{second.host}/a/b:v1"))
        c.get_manifest(parse_reference(f"{first.host}/a/b:v2"))
    first_basic = "Basic " + base64.b64encode(b"user:first-password").decode()
    assert ("first/token", first_basic) in log
    second_auth = {auth for path, auth in log if path.startswith("second")}
    assert second_auth <= {None, "Bearer token-second"}
    first_auth = {auth for path, auth in log if path.startswith("first")}
    assert first_auth <= {None, first_basic, "Bearer token-first"}
    assert [p for p, _ in log].count("first/token") == 1  # the token was cached for the second GET


def test_realm_over_plain_http_elsewhere_is_refused(serve: Callable[..., ScriptedServer]) -> None:
    challenge = 'Bearer realm="http://auth.example.invalid/token",service="x"'
    server = serve(lambda r: Reply(401, {"WWW-Authenticate": challenge}))
    store = StaticCredentials({server.host: Credential("user", Secret("pw"), None, "test")})
    with client(store) as c, pytest.raises(AuthError) as info:
        c.get_manifest(parse_reference(f"{server.host}/a/b:v1"))
    assert_one_line(info.value, "plain HTTP", "http://auth.example.invalid/token")


def test_anonymous_ping_but_protected_repository(serve: Callable[..., ScriptedServer]) -> None:
    def handler(request: Recorded) -> Reply:
        if request.url_path == "/v2/":
            return Reply(200)
        if request.headers.get("authorization") != "Basic " + base64.b64encode(b"u:p").decode():
            return Reply(401, {"WWW-Authenticate": 'Basic realm="repo"'})
        return Reply(200, OCI_HEADERS, MANIFEST)

    server = serve(handler)
    store = StaticCredentials({server.host: Credential("u", Secret("p"), None, "test")})
    with client(store) as c:
        assert c.get_manifest(parse_reference(f"{server.host}/a/b:v1")).data == MANIFEST


# --- upload details --------------------------------------------------------------------------------------


def test_upload_follows_a_relative_location_and_keeps_its_query(serve: Callable[..., ScriptedServer]) -> None:
    stored: dict[str, bytes] = {}

    def handler(request: Recorded) -> Reply:
        if request.method == "HEAD":
            return Reply(404)
        if request.method == "POST":
            return Reply(202, {"Location": "/v2/a/b/blobs/uploads/abc?_state=opaque"})
        if request.method == "PUT":
            digest = request.query["digest"][0]
            assert request.query["_state"] == ["opaque"]
            stored[digest] = request.body
            return Reply(201, {"Docker-Content-Digest": digest})
        return Reply(400)

    server = serve(v2_ok(handler))
    with client() as c:
        digest = c.upload_blob(parse_reference(f"{server.host}/a/b:v1"), b"payload")
    assert stored == {digest: b"payload"}


def test_upload_put_lost_but_blob_arrived(serve: Callable[..., ScriptedServer]) -> None:
    """A PUT whose answer was lost and whose retry finds the session gone: the blob is there, so fine."""
    heads = iter([Reply(404), Reply(200)])
    body = json.dumps({"errors": [{"code": "BLOB_UPLOAD_UNKNOWN", "message": "blob upload unknown"}]}).encode()

    def handler(request: Recorded) -> Reply:
        if request.method == "HEAD":
            return next(heads)
        if request.method == "POST":
            return Reply(202, {"Location": "/v2/a/b/blobs/uploads/abc"})
        return Reply(404, {"Content-Type": "application/json"}, body)

    server = serve(v2_ok(handler))
    with client() as c:
        assert c.upload_blob(parse_reference(f"{server.host}/a/b:v1"), b"x") == digests.compute(b"x")


def test_scrub_url() -> None:
    assert scrub_url("https://user:pw@host:5000/v2/x?X-Amz-Signature=s#f") == "https://host:5000/v2/x"


# --- transport policy (no network: httpx.MockTransport) ------------------------------------------------


def mock_client(handler: Callable[[httpx.Request], httpx.Response], **overrides: object) -> RegistryClient:
    return RegistryClient(options(None, **overrides), transport=httpx.MockTransport(handler), sleep=lambda _s: None)


def test_remote_registry_is_never_tried_over_plain_http() -> None:
    tried: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tried.append(str(request.url))
        raise httpx.ConnectError("TLS handshake failed", request=request)

    with mock_client(handler) as c, pytest.raises(RegistryError) as info:
        c.get_manifest(parse_reference("registry.example.com/a/b:v1"))
    assert set(tried) == {"https://registry.example.com/v2/"}
    assert_one_line(info.value, "registry.example.com/a/b:v1")


def test_allow_http_falls_back_to_plain_http() -> None:
    tried: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tried.append(f"{request.method} {request.url}")
        if request.url.scheme == "https":
            raise httpx.ConnectError("wrong version number", request=request)
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return httpx.Response(200, headers=OCI_HEADERS, content=MANIFEST)

    with mock_client(handler, allow_http=True) as c:
        assert c.get_manifest(parse_reference("registry.example.com/a/b:v1")).data == MANIFEST
    assert tried == [
        "GET https://registry.example.com/v2/",
        "GET http://registry.example.com/v2/",
        "GET http://registry.example.com/v2/a/b/manifests/v1",
    ]


def test_docker_hub_is_reached_at_registry_1() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return httpx.Response(200, headers=OCI_HEADERS, content=MANIFEST)

    with mock_client(handler) as c:
        c.get_manifest(parse_reference("alpine:3"))
    assert seen == ["https://registry-1.docker.io/v2/", "https://registry-1.docker.io/v2/library/alpine/manifests/3"]


def test_explicit_timeouts_are_used() -> None:
    opts = options(timeouts=Timeouts(connect=1.5, read=7.0, write=8.0, pool=2.5))
    with RegistryClient(opts) as c:
        assert c._http.timeout == httpx.Timeout(connect=1.5, read=7.0, write=8.0, pool=2.5)
