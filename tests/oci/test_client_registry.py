"""The registry client against real CNCF Distribution registries (plain, TLS, Basic, token)."""

from __future__ import annotations

import base64
import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline.errors import AuthError, InvalidInputError, RegistryError
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from pipeline.oci.auth import Credential, StaticCredentials, load_credentials
from pipeline.oci.client import RegistryOptions
from pipeline.oci.reference import parse_reference
from pipeline.secret import Secret
from tests.oci.helpers import client, image_manifest, push_image
from tests.registry_fixtures import BASIC_USERS, TOKEN_REFRESH_TOKENS, TOKEN_USERS, RegistryProcess, free_port

pytestmark = pytest.mark.registry


def unique(prefix: str = "t") -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def creds(registry: RegistryProcess, user: str, password: str | None = None) -> StaticCredentials:
    secret = password if password is not None else registry.users[user]
    return StaticCredentials({registry.host: Credential(user, Secret(secret), None, "test")})


# --- plain HTTP, anonymous ------------------------------------------------------------------------


def test_push_then_pull_round_trip_keeps_exact_bytes(plain_registry: RegistryProcess) -> None:
    ref = parse_reference(plain_registry.ref(f"{unique()}/app:v1"))
    layer = b"layer bytes " + secrets.token_bytes(16)
    with client() as c:
        data, digest = push_image(c, str(ref), layer)
        assert digest == digests.compute(data)

        manifest = c.get_manifest(ref)
        assert manifest.data == data
        assert manifest.media_type == mediatypes.OCI_MANIFEST
        assert manifest.digest == digest

        by_digest = c.get_manifest(ref.with_digest(digest))
        assert by_digest.data == data

        head = c.head_manifest(ref)
        assert head is not None
        assert (head.digest, head.media_type, head.size) == (digest, mediatypes.OCI_MANIFEST, len(data))

        assert c.get_blob(ref, digests.compute(layer)) == layer
        assert c.blob_exists(ref, digests.compute(layer))
        assert c.list_tags(ref) == ["v1"]


def test_put_by_digest_and_second_tag(plain_registry: RegistryProcess) -> None:
    repo = parse_reference(plain_registry.ref(f"{unique()}/app:x")).repo
    with client() as c:
        data, digest = push_image(c, str(repo.tag("one")), b"content")
        assert c.put_manifest(repo, digest, data, mediatypes.OCI_MANIFEST) == digest
        assert c.put_manifest(repo, "two", data, mediatypes.OCI_MANIFEST) == digest
        assert sorted(c.list_tags(repo)) == ["one", "two"]


def test_json_whitespace_is_preserved_byte_for_byte(plain_registry: RegistryProcess) -> None:
    ref = parse_reference(plain_registry.ref(f"{unique()}/pretty:v1"))
    layer = b"pretty"
    with client() as c:
        c.upload_blob(ref, mediatypes.OCI_EMPTY_DATA)
        c.upload_blob(ref, layer)
        pretty = json.dumps(json.loads(image_manifest(layer)), indent=3).encode() + b"\n"
        digest = c.put_manifest(ref, None, pretty, mediatypes.OCI_MANIFEST)
        assert digest == digests.compute(pretty)
        assert c.get_manifest(ref).data == pretty


def test_upload_is_skipped_when_the_blob_exists(plain_registry: RegistryProcess) -> None:
    """A blob this client put there is not sent again (no request); another client asks with one HEAD."""
    ref = parse_reference(plain_registry.ref(f"{unique()}/skip:v1"))
    with client() as c:
        first = c.upload_blob(ref, b"same bytes")
        requests: list[str] = []
        c._http.event_hooks["request"].append(lambda r: requests.append(f"{r.method} {r.url.path}"))
        assert c.upload_blob(ref, b"same bytes") == first
    assert requests == []
    with client() as c:
        c._http.event_hooks["request"].append(lambda r: requests.append(f"{r.method} {r.url.path}"))
        assert c.upload_blob(ref, b"same bytes") == first
    assert [r for r in requests if r != "GET /v2/"] == [f"HEAD /v2/{ref.repository}/blobs/{first}"], requests


def test_a_blob_known_in_another_repository_is_mounted_in_one_request(plain_registry: RegistryProcess) -> None:
    """The empty config ``{}`` every referrer names: uploaded once per registry, then mounted (one POST, 201)."""
    first = parse_reference(plain_registry.ref(f"{unique()}/one:v1"))
    second = parse_reference(plain_registry.ref(f"{unique()}/two:v1"))
    blob = b"shared " + secrets.token_bytes(8)
    with client() as c:
        digest = c.upload_blob(first, blob)
        requests: list[str] = []
        c._http.event_hooks["request"].append(lambda r: requests.append(f"{r.method} {r.url.query.decode()}"))
        assert c.upload_blob(second, blob) == digest
        assert c.get_blob(second, digest) == blob
    assert len(requests) == 2 and requests[0].startswith("POST mount=") and requests[1].startswith("GET")


def test_concurrent_uploads_of_one_blob_upload_it_once(plain_registry: RegistryProcess) -> None:
    """Sixteen repositories wanting the same blob at once: one thread uploads it, the others mount it."""
    repos = [parse_reference(plain_registry.ref(f"{unique()}/r{i}:v1")) for i in range(16)]
    blob = b"{} " + secrets.token_bytes(8)
    requests: list[str] = []
    with client() as c:
        c._http.event_hooks["request"].append(lambda r: requests.append(r.method))
        with ThreadPoolExecutor(16) as pool:
            assert len(set(pool.map(lambda ref: c.upload_blob(ref, blob), repos))) == 1
        for ref in repos:
            assert c.get_blob(ref, digests.compute(blob)) == blob
    # the first: HEAD, POST (?digest=, answered 202 by Distribution 2.x), PUT; each other one mount
    assert requests.count("PUT") == 1 and requests.count("HEAD") == 1 and requests.count("POST") == 16


def test_single_request_upload_falls_back_to_post_then_put(plain_registry: RegistryProcess) -> None:
    """Distribution 2.x answers ``POST ?digest=`` with 202 (an upload session): the bytes go in the PUT, and
    the registry is not asked again in this run."""
    ref = parse_reference(plain_registry.ref(f"{unique()}/mono:v1"))
    requests: list[str] = []
    with client() as c:
        c._http.event_hooks["request"].append(lambda r: requests.append(f"{r.method} {r.url.query.decode()}"))
        first = c.upload_blob(ref, b"first " + secrets.token_bytes(8), check_exists=False)
        second = c.upload_blob(ref, b"second " + secrets.token_bytes(8), check_exists=False)
        assert c.get_blob(ref, first) and c.get_blob(ref, second)
    posts = [r for r in requests if r.startswith("POST")]
    assert posts[0].startswith("POST digest=sha256") and posts[1] == "POST "
    assert sum(r.startswith("PUT") for r in requests) == 2


def test_cross_repository_mount(plain_registry: RegistryProcess) -> None:
    source = parse_reference(plain_registry.ref(f"{unique()}/source:v1"))
    target = parse_reference(plain_registry.ref(f"{unique()}/target:v1"))
    blob = b"mount me " + secrets.token_bytes(8)
    with client() as c:
        digest = c.upload_blob(source, blob)
        methods: list[str] = []
        c._http.event_hooks["request"].append(
            lambda r: methods.append(f"{r.method} {r.url.path}?{r.url.query.decode()}")
        )
        assert c.upload_blob(target, blob, mount_from=source) == digest
        assert c.get_blob(target, digest) == blob
    posts = [m for m in methods if m.startswith("POST")]
    assert len(posts) == 1 and "mount=" in posts[0] and f"from={source.repository.replace('/', '%2F')}" in posts[0]
    assert not any(m.startswith("PUT") for m in methods)


def test_mount_from_a_repository_without_the_blob_falls_back_to_upload(plain_registry: RegistryProcess) -> None:
    source = parse_reference(plain_registry.ref(f"{unique()}/empty:v1"))
    target = parse_reference(plain_registry.ref(f"{unique()}/target:v1"))
    blob = secrets.token_bytes(32)
    with client() as c:
        digest = c.upload_blob(target, blob, mount_from=source)
        assert c.get_blob(target, digest) == blob


def test_unknown_image_is_a_one_line_error_naming_it(plain_registry: RegistryProcess) -> None:
    ref = parse_reference(plain_registry.ref(f"{unique()}/nothing:v9"))
    with client() as c, pytest.raises(RegistryError) as info:
        c.get_manifest(ref)
    assert str(ref) in str(info.value)
    assert "\n" not in str(info.value)
    assert "not found" in info.value.message
    with client() as c:
        assert c.head_manifest(ref) is None
        assert c.list_tags(ref) == []


def test_unknown_tag_in_existing_repository(plain_registry: RegistryProcess) -> None:
    ref = parse_reference(plain_registry.ref(f"{unique()}/some:v1"))
    with client() as c:
        push_image(c, str(ref), b"x")
        with pytest.raises(RegistryError, match="manifest not found"):
            c.get_manifest(ref.with_tag("v2"))


def test_manifest_referencing_missing_blobs_is_refused(plain_registry: RegistryProcess) -> None:
    ref = parse_reference(plain_registry.ref(f"{unique()}/broken:v1"))
    with client() as c, pytest.raises(RegistryError) as info:
        c.put_manifest(ref, None, image_manifest(b"never uploaded"), mediatypes.OCI_MANIFEST)
    assert "MANIFEST_BLOB_UNKNOWN" in str(info.value)
    assert str(ref) in str(info.value)


def test_local_checks_before_sending(plain_registry: RegistryProcess) -> None:
    ref = parse_reference(plain_registry.ref(f"{unique()}/local:v1"))
    with client() as c:
        with pytest.raises(InvalidInputError, match="too large"):
            c.put_manifest(ref, None, b" " * (mediatypes.MAX_MANIFEST_BYTES + 1), mediatypes.OCI_MANIFEST)
        with pytest.raises(InvalidInputError, match="not the digest given"):
            c.put_manifest(ref.repo, digests.compute(b"other"), b"{}", mediatypes.OCI_MANIFEST)
        with pytest.raises(InvalidInputError, match="malformed"):
            c.get_blob(ref, "sha256:nothex")


def test_get_blob_unknown(plain_registry: RegistryProcess) -> None:
    ref = parse_reference(plain_registry.ref(f"{unique()}/blobless:v1"))
    with client() as c, pytest.raises(RegistryError, match="not found"):
        c.get_blob(ref, digests.compute(b"absent"))


def test_narrow_accept_is_honoured_by_the_registry(plain_registry: RegistryProcess) -> None:
    """Distribution answers 404 when no accepted type fits (fakes test a registry that ignores Accept)."""
    ref = parse_reference(plain_registry.ref(f"{unique()}/narrow:v1"))
    with client() as c:
        push_image(c, str(ref), b"narrow")
        with pytest.raises(RegistryError, match="accept header") as info:
            c.get_manifest(ref, accept=(mediatypes.OCI_INDEX,))
    assert str(ref) in str(info.value)


def test_unreachable_registry_gives_up_quickly_with_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    ref = parse_reference(f"127.0.0.1:{port}/app:v1")
    sleeps: list[float] = []
    with client(sleep=sleeps.append) as c, pytest.raises(RegistryError) as info:
        c.get_manifest(ref)
    text = str(info.value)
    assert "cannot connect" in text and f"127.0.0.1:{port}" in text and "\n" not in text
    assert "after 3 attempts" in text
    assert len(sleeps) == 2


# --- TLS ------------------------------------------------------------------------------------------


def test_tls_registry_with_private_ca(tls_registry: RegistryProcess) -> None:
    assert tls_registry.cacert is not None
    ref = parse_reference(tls_registry.ref(f"{unique()}/secure:v1"))
    with client(cacert=tls_registry.cacert) as c:
        data, _digest = push_image(c, str(ref), b"over tls")
        assert c.get_manifest(ref).data == data
        assert c._endpoints[ref.registry].base.startswith("https://")


def test_tls_registry_without_its_ca_is_refused_not_downgraded(tls_registry: RegistryProcess) -> None:
    ref = parse_reference(tls_registry.ref(f"{unique()}/secure:v1"))
    with client() as c, pytest.raises(RegistryError) as info:
        c.get_manifest(ref)
    assert "not trusted" in str(info.value)
    assert info.value.hint is not None and "--registry-cacert" in info.value.hint


def test_bad_cacert_file(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(InvalidInputError, match="PEM"):
        client(cacert=bad)
    with pytest.raises(InvalidInputError, match="not found"):
        client(cacert=tmp_path / "missing.pem")


# --- Basic auth -------------------------------------------------------------------------------------


def test_basic_auth_push_and_pull(basic_registry: RegistryProcess) -> None:
    ref = parse_reference(basic_registry.ref(f"{unique()}/private:v1"))
    with client(creds(basic_registry, "alice")) as c:
        data, _ = push_image(c, str(ref), b"basic")
        assert c.get_manifest(ref).data == data


@pytest.mark.parametrize("password", [None, "wrong-password"])
def test_basic_auth_refused(basic_registry: RegistryProcess, password: str | None) -> None:
    ref = parse_reference(basic_registry.ref(f"{unique()}/private:v1"))
    store = creds(basic_registry, "alice", password) if password else None
    with client(store) as c, pytest.raises(AuthError) as info:
        c.get_manifest(ref)
    text = str(info.value)
    assert str(ref) in text and "\n" not in text
    assert "wrong-password" not in text
    expected = "refused the credentials" if password else "authentication required"
    assert expected in text


# --- Bearer tokens ------------------------------------------------------------------------------------


def token_creds(registry: RegistryProcess, user: str) -> StaticCredentials:
    return StaticCredentials({registry.host: Credential(user, Secret(TOKEN_USERS[user]), None, "test")})


def test_bearer_flow_push_pull_and_token_cache(token_registry: RegistryProcess) -> None:
    issuer = token_registry.token_issuer
    assert issuer is not None
    name = f"team/app-{unique()}"
    ref = parse_reference(token_registry.ref(f"{name}:v1"))
    before = len(issuer.requests)
    with client(token_creds(token_registry, "pusher"), credential_hosts=token_registry.credential_hosts) as c:
        data, digest = push_image(c, str(ref), b"token layer")
        assert c.get_manifest(ref).data == data
        assert c.get_manifest(ref.with_digest(digest)).digest == digest
    asked = issuer.requests[before:]
    assert {r.user for r in asked} == {"pusher"}
    # one token per (repository, actions): push scope for the writes, pull scope for the reads
    assert sorted(r.scopes for r in asked) == [(f"repository:{name}:pull",), (f"repository:{name}:pull,push",)]


def test_bearer_scopes_differ_per_repository(token_registry: RegistryProcess) -> None:
    """pusher may push team/app-*, but only pull team/base."""
    base = parse_reference(token_registry.ref("team/base:v1"))
    with client(token_creds(token_registry, "admin"), credential_hosts=token_registry.credential_hosts) as admin:
        data, _ = push_image(admin, str(base), b"base layer")
    with client(token_creds(token_registry, "pusher"), credential_hosts=token_registry.credential_hosts) as c:
        assert c.get_manifest(base).data == data
        with pytest.raises(AuthError) as info:
            c.put_manifest(base, "v2", data, mediatypes.OCI_MANIFEST)
        assert "insufficient scope" in str(info.value)
        assert str(base.with_tag("v2")) in str(info.value)


def test_bearer_mount_asks_for_both_scopes(token_registry: RegistryProcess) -> None:
    issuer = token_registry.token_issuer
    assert issuer is not None
    base = parse_reference(token_registry.ref("team/base:mount"))
    blob = b"shared " + secrets.token_bytes(8)
    with client(token_creds(token_registry, "admin"), credential_hosts=token_registry.credential_hosts) as admin:
        digest = admin.upload_blob(base, blob)
    target = parse_reference(token_registry.ref(f"team/app-{unique()}:v1"))
    before = len(issuer.requests)
    with client(token_creds(token_registry, "pusher"), credential_hosts=token_registry.credential_hosts) as c:
        assert c.upload_blob(target, blob, mount_from=base) == digest
        assert c.get_blob(target, digest) == blob
    scopes = [r.scopes for r in issuer.requests[before:]]
    assert (f"repository:{target.repository}:pull,push", "repository:team/base:pull") in [
        tuple(sorted(s)) for s in scopes
    ]


def test_bearer_anonymous_pull_of_public_repository(token_registry: RegistryProcess) -> None:
    ref = parse_reference(token_registry.ref(f"public/{unique()}:v1"))
    with client(token_creds(token_registry, "admin"), credential_hosts=token_registry.credential_hosts) as admin:
        data, _ = push_image(admin, str(ref), b"public")
    with client() as anonymous:
        assert anonymous.get_manifest(ref).data == data
        with pytest.raises(AuthError, match="insufficient scope"):
            anonymous.put_manifest(ref, "v2", data, mediatypes.OCI_MANIFEST)


def test_bearer_identity_token_uses_the_refresh_grant(token_registry: RegistryProcess) -> None:
    issuer = token_registry.token_issuer
    assert issuer is not None
    refresh = next(iter(TOKEN_REFRESH_TOKENS))
    store = StaticCredentials({token_registry.host: Credential("", None, Secret(refresh), "test")})
    ref = parse_reference(token_registry.ref(f"team/app-{unique()}:v1"))
    before = len(issuer.requests)
    with client(store, credential_hosts=token_registry.credential_hosts) as c:
        push_image(c, str(ref), b"refreshed")
    assert {(r.method, r.user) for r in issuer.requests[before:]} == {("POST", "pusher")}


def test_bearer_wrong_password_is_refused_by_the_token_server(token_registry: RegistryProcess) -> None:
    ref = parse_reference(token_registry.ref("team/base:v1"))
    store = StaticCredentials({token_registry.host: Credential("pusher", Secret("nope"), None, "test")})
    with client(store, credential_hosts=token_registry.credential_hosts) as c, pytest.raises(AuthError) as info:
        c.get_manifest(ref)
    assert "token server refused the credentials" in str(info.value)
    assert "nope" not in str(info.value)


def test_expired_token_is_fetched_again_on_401(token_registry: RegistryProcess) -> None:
    issuer = token_registry.token_issuer
    assert issuer is not None
    ref = parse_reference(token_registry.ref(f"team/app-{unique()}:v1"))
    with client(token_creds(token_registry, "pusher"), credential_hosts=token_registry.credential_hosts) as c:
        data, _ = push_image(c, str(ref), b"refresh on 401")
        # poison every cached token: the registry answers 401 and the client must fetch a new one
        for key in list(c._tokens._tokens):
            c._tokens.put(key[0], key[1], Secret("e30.e30.bogus"), 300)
        before = len(issuer.requests)
        assert c.get_manifest(ref).data == data
        assert len(issuer.requests) == before + 1


def test_tokens_and_credentials_stay_with_their_registry(
    token_registry: RegistryProcess, basic_registry: RegistryProcess, plain_registry: RegistryProcess
) -> None:
    """One client, three registries: nothing meant for one is sent to another."""
    store = StaticCredentials(
        {
            token_registry.host: Credential("pusher", Secret(TOKEN_USERS["pusher"]), None, "test"),
            basic_registry.host: Credential("alice", Secret(BASIC_USERS["alice"]), None, "test"),
        }
    )
    seen: list[tuple[str, str | None]] = []
    with client(store, credential_hosts=token_registry.credential_hosts) as c:
        c._http.event_hooks["request"].append(
            lambda r: seen.append((f"{r.url.host}:{r.url.port}", r.headers.get("Authorization")))
        )
        push_image(c, token_registry.ref(f"team/app-{unique()}:v1"), b"a")
        push_image(c, basic_registry.ref(f"{unique()}/b:v1"), b"b")
        push_image(c, plain_registry.ref(f"{unique()}/c:v1"), b"c")
    by_host: dict[str, set[str]] = {}
    for host, authorization in seen:
        if authorization:
            by_host.setdefault(host, set()).add(authorization.split()[0] + " " + authorization.split()[1][:12])
    assert plain_registry.host not in by_host
    assert {a.split()[0] for a in by_host[token_registry.host]} == {"Bearer"}
    assert {a.split()[0] for a in by_host[basic_registry.host]} == {"Basic"}
    issuer = token_registry.token_issuer
    assert issuer is not None
    issuer_host = issuer.url.removeprefix("http://")
    assert {a.split()[0] for a in by_host[issuer_host]} == {"Basic"}
    basic_values = {a for host, a in seen if host == basic_registry.host and a}
    issuer_values = {a for host, a in seen if host == issuer_host and a}
    assert not basic_values & issuer_values  # alice's password never went to the token server


def test_default_options_are_strict() -> None:
    opts = RegistryOptions()
    assert opts.allow_http is False and opts.cacert is None
    assert opts.timeouts.connect > 0 and opts.timeouts.read > 0
    assert 1 < opts.retries.attempts <= 10


def test_docker_config_credentials_end_to_end(basic_registry: RegistryProcess, tmp_path: Path) -> None:
    """``docker login`` left an ``auths`` entry: load_credentials finds it for that registry only."""
    auth = base64.b64encode(f"bob:{BASIC_USERS['bob']}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {f"http://{basic_registry.host}": {"auth": auth}}}))
    store = load_credentials({"DOCKER_CONFIG": str(tmp_path)})
    ref = parse_reference(basic_registry.ref(f"{unique()}/from-config:v1"))
    with client(store) as c:
        data, _ = push_image(c, str(ref), b"docker config")
        assert c.get_manifest(ref).data == data


def test_env_credentials_end_to_end(basic_registry: RegistryProcess, tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path), "REGISTRY_USERNAME": "alice", "REGISTRY_PASSWORD": BASIC_USERS["alice"]}
    ref = parse_reference(basic_registry.ref(f"{unique()}/from-env:v1"))
    with client(load_credentials(env, env_registries=[basic_registry.host])) as c:
        push_image(c, str(ref), b"env")
    with client(load_credentials(env, env_registries=["ghcr.io"])) as c, pytest.raises(AuthError):
        c.get_manifest(ref)


def test_bearer_mount_without_access_to_the_source_falls_back_to_upload(token_registry: RegistryProcess) -> None:
    hidden = parse_reference(token_registry.ref(f"hidden/{unique()}:v1"))
    blob = b"hidden " + secrets.token_bytes(8)
    with client(token_creds(token_registry, "admin"), credential_hosts=token_registry.credential_hosts) as admin:
        admin.upload_blob(hidden, blob)
    target = parse_reference(token_registry.ref(f"team/app-{unique()}:v1"))
    with client(token_creds(token_registry, "pusher"), credential_hosts=token_registry.credential_hosts) as c:
        digest = c.upload_blob(target, blob, mount_from=hidden)
        assert c.get_blob(target, digest) == blob
        with pytest.raises(AuthError):
            c.get_blob(hidden, digest)


def test_threads_starting_at_once_share_one_ping(plain_registry: RegistryProcess) -> None:
    """The first requests of many threads at once make one GET /v2/ between them, not one each."""
    from concurrent.futures import ThreadPoolExecutor

    from bench.latency_proxy import LatencyProxy

    with client() as direct:
        push_image(direct, f"{plain_registry.host}/ping/once:v1", b"one ping")
    with LatencyProxy(plain_registry.url, delay=0.05) as proxy, client() as registry:
        moved = parse_reference(f"{proxy.host}/ping/once:v1")
        with ThreadPoolExecutor(max_workers=12) as pool:
            found = list(pool.map(lambda _n: registry.head_manifest(moved), range(12)))
        assert all(descriptor is not None for descriptor in found)
        assert proxy.counts() == {"GET ping": 1, "HEAD manifest": 12}
