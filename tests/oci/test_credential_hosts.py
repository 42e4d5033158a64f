"""Which host receives a registry's credentials, and tokens or credentials that are not text a header can carry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.errors import AuthError, ExitCode
from pipeline.oci.auth import (
    Credential,
    DockerConfigCredentials,
    StaticCredentials,
    load_credentials,
    realm_may_receive_credentials,
)
from pipeline.oci.reference import parse_reference
from pipeline.secret import Secret, is_header_token, is_utf8_text
from tests.credential_trap import MANIFEST, TRAP_TOKEN, TrapRegistry, basic
from tests.oci.helpers import client
from tests.registry_fixtures import Reply

SURROGATE = "pass\udcffword"  # what os.environ holds for a value whose bytes are not UTF-8


@pytest.fixture
def trap() -> Iterator[TrapRegistry]:
    with TrapRegistry("bearer") as server:
        yield server


# --- the rule --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("registry", "endpoint", "scheme", "realm", "trusted", "expected"),
    [
        ("ghcr.io", "ghcr.io", "https", "ghcr.io", (), True),
        ("ghcr.io", "ghcr.io", "https", "GHCR.IO", (), True),
        ("127.0.0.1:5000", "127.0.0.1:5000", "http", "127.0.0.1:5000", (), True),
        ("127.0.0.1:5000", "127.0.0.1:5000", "http", "127.0.0.1:5001", (), False),  # same IP, other port
        ("127.0.0.1:5000", "127.0.0.1:5000", "http", "127.0.0.1", (), False),
        ("ghcr.io", "ghcr.io", "https", "evil.example", (), False),
        ("ghcr.io", "ghcr.io", "https", "ghcr.io.evil.example", (), False),
        ("registry.gitlab.com", "registry.gitlab.com", "https", "gitlab.com", (), False),
        ("registry.gitlab.com", "registry.gitlab.com", "https", "gitlab.com", ("gitlab.com",), True),
        ("docker.io", "registry-1.docker.io", "https", "auth.docker.io", (), True),
        ("docker.io", "registry-1.docker.io", "https", "registry-1.docker.io", (), True),
        ("docker.io", "registry-1.docker.io", "http", "auth.docker.io", (), False),
        ("quay.io", "quay.io", "https", "auth.docker.io", (), False),  # Docker Hub's realm only for Docker Hub
    ],
)
def test_realm_may_receive_credentials(
    registry: str, endpoint: str, scheme: str, realm: str, trusted: tuple[str, ...], expected: bool
) -> None:
    assert realm_may_receive_credentials(registry, endpoint, scheme, realm, trusted) is expected


# --- the client ------------------------------------------------------------------------------------


def test_a_realm_on_another_host_gets_no_basic_credentials(trap: TrapRegistry) -> None:
    store = StaticCredentials({trap.host: Credential("user", Secret("the-password"), None, "test")})
    with client(store) as c:
        assert c.get_manifest(parse_reference(f"{trap.host}/a/b:v1")).data == MANIFEST
    assert trap.realm.requests and trap.authorizations("realm") == set()
    assert all("account" not in r.query for r in trap.realm.requests)
    assert trap.authorizations("registry") == {f"Bearer {TRAP_TOKEN}"}
    assert not trap.leaked("the-password")


def test_a_realm_on_another_host_gets_no_identity_token(trap: TrapRegistry) -> None:
    store = StaticCredentials({trap.host: Credential("", None, Secret("the-refresh-token"), "test")})
    with client(store) as c:
        c.get_manifest(parse_reference(f"{trap.host}/a/b:v1"))
    assert [r.method for r in trap.realm.requests] == ["GET"]  # no refresh-token POST
    assert not trap.leaked("the-refresh-token")


def test_a_trusted_realm_host_gets_the_credentials(trap: TrapRegistry) -> None:
    store = StaticCredentials({trap.host: Credential("user", Secret("the-password"), None, "test")})
    with client(store, credential_hosts=frozenset({trap.realm_host})) as c:
        c.get_manifest(parse_reference(f"{trap.host}/a/b:v1"))
    assert trap.authorizations("realm") == {basic("user", "the-password")}


def test_refused_anonymous_token_says_how_to_trust_the_realm(trap: TrapRegistry) -> None:
    trap.realm.handler = lambda request: Reply(401)
    store = StaticCredentials({trap.host: Credential("user", Secret("the-password"), None, "test")})
    with client(store) as c, pytest.raises(AuthError) as info:
        c.get_manifest(parse_reference(f"{trap.host}/a/b:v1"))
    assert "anonymous access" in info.value.message
    assert info.value.hint is not None and f"--registry-credentials-for {trap.realm_host}" in info.value.hint
    assert not trap.leaked("the-password")


@pytest.mark.parametrize("token", ["tökén", "two words", "line\nbreak", "\u202etoken"])
def test_a_token_that_is_not_printable_ascii_is_refused(token: str) -> None:
    with TrapRegistry("bearer", token=token) as trap, client() as c, pytest.raises(AuthError) as info:
        c.get_manifest(parse_reference(f"{trap.host}/a/b:v1"))
    assert info.value.exit_code == ExitCode.AUTH
    assert "not printable ASCII" in info.value.message and trap.realm.url in str(info.value)
    assert token not in str(info.value)


# --- credentials that are not text -----------------------------------------------------------------


def test_env_credentials_that_are_not_utf8_are_refused(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path), "REGISTRY_USERNAME": "bot", "REGISTRY_PASSWORD": SURROGATE}
    with pytest.raises(AuthError) as info:
        load_credentials(env, env_registries=["ghcr.io"])
    assert info.value.where == "env://REGISTRY_PASSWORD" and info.value.exit_code == ExitCode.AUTH
    env = {**env, "REGISTRY_USERNAME": SURROGATE, "REGISTRY_PASSWORD": "pw"}
    with pytest.raises(AuthError) as info:
        load_credentials(env, env_registries=["ghcr.io"])
    assert info.value.where == "env://REGISTRY_USERNAME"


def test_non_ascii_utf8_password_goes_as_utf8_basic(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path), "REGISTRY_USERNAME": "bot", "REGISTRY_PASSWORD": "pässwörd"}
    credential = load_credentials(env, env_registries=["ghcr.io"]).get("ghcr.io")
    assert credential is not None and credential.basic_header() == basic("bot", "pässwörd")


@pytest.mark.parametrize("field", ["password", "username", "identitytoken"])
def test_docker_config_credentials_that_are_not_utf8_are_refused(tmp_path: Path, field: str) -> None:
    entry = {"username": "bot", "password": "pw", field: "x\\udc80y"}
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"ghcr.io": entry}}).replace("\\\\udc80", "\\udc80"))
    store = DockerConfigCredentials(tmp_path / "config.json")
    with pytest.raises(AuthError) as info:
        store.get("ghcr.io")
    assert info.value.message == "docker credentials are not valid UTF-8 text"
    assert info.value.where == f"{tmp_path / 'config.json'} (auths.ghcr.io)"


def test_credential_helper_answer_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "fake"}))
    answer = b'{"Username": "bot", "Secret": "x\\udc80y"}'
    store = DockerConfigCredentials(tmp_path / "config.json", runner=lambda helper, url: (0, answer, b""))
    with pytest.raises(AuthError) as info:
        store.get("ghcr.io")
    assert "docker-credential-fake" in str(info.value)


def test_text_predicates() -> None:
    assert is_header_token("ghp_abcDEF123") and is_header_token(b"e30.e30.sig-_~+/=")
    assert not is_header_token("") and not is_header_token("tökén") and not is_header_token("a b")
    assert not is_header_token(SURROGATE)
    assert is_utf8_text("pässwörd") and not is_utf8_text(SURROGATE)
