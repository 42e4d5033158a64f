"""Challenges, credentials from docker's config and helpers, the environment, and the token cache."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import AuthError, InvalidInputError
from pipeline.oci.auth import (
    Challenge,
    Credential,
    DockerConfigCredentials,
    Scope,
    StaticCredentials,
    TokenCache,
    config_key,
    docker_config_path,
    load_credentials,
    merge_scopes,
    parse_www_authenticate,
)
from pipeline.secret import Secret

# --- WWW-Authenticate ------------------------------------------------------------------------------


def test_distribution_bearer_challenge() -> None:
    header = (
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:team/app:pull,push repository:team/base:pull",error="insufficient_scope"'
    )
    (challenge,) = parse_www_authenticate([header])
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.example.com/token"
    assert challenge.service == "registry.example.com"
    assert challenge.scopes == ("repository:team/app:pull,push", "repository:team/base:pull")
    assert challenge.error == "insufficient_scope"


def test_basic_challenge_and_case() -> None:
    (challenge,) = parse_www_authenticate(['BASIC Realm="Registry Realm"'])
    assert challenge == Challenge("basic", {"realm": "Registry Realm"})


def test_several_challenges_in_one_and_several_headers() -> None:
    challenges = parse_www_authenticate(
        [
            'Negotiate abc123==, Basic realm="a, b", charset="UTF-8"',
            'Bearer realm="https://r/t",service=reg , Digest realm="d", nonce="x\\"y"',
        ]
    )
    assert [c.scheme for c in challenges] == ["negotiate", "basic", "bearer", "digest"]
    assert challenges[0].token68 == "abc123=="
    assert challenges[1].params == {"realm": "a, b", "charset": "UTF-8"}
    assert challenges[2].params == {"realm": "https://r/t", "service": "reg"}
    assert challenges[3].params == {"realm": "d", "nonce": 'x"y'}


def test_whitespace_around_equals_and_empty_values() -> None:
    (challenge,) = parse_www_authenticate(['Bearer realm = "https://r/t" , service=""'])
    assert challenge.params == {"realm": "https://r/t", "service": ""}


def test_scheme_without_params_and_garbage() -> None:
    assert parse_www_authenticate(["Basic"]) == (Challenge("basic", {}),)
    assert parse_www_authenticate(["", " , "]) == ()
    assert parse_www_authenticate(['="oops"']) == ()
    # an unterminated quoted string runs to the end instead of failing
    assert parse_www_authenticate(['Bearer realm="https://r/t']) == (Challenge("bearer", {"realm": "https://r/t"}),)


@given(st.text(max_size=80))
def test_parser_never_crashes(text: str) -> None:
    for challenge in parse_www_authenticate([text]):
        assert challenge.scheme == challenge.scheme.lower()


_value = st.text(alphabet=st.characters(codec="ascii", exclude_characters="\r\n\x00"), max_size=20)


@given(realm=_value, service=_value)
def test_quoted_values_round_trip(realm: str, service: str) -> None:
    def quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    (challenge,) = parse_www_authenticate([f"Bearer realm={quote(realm)},service={quote(service)}"])
    assert challenge.realm == realm and challenge.service == service


# --- scopes and the token cache ---------------------------------------------------------------------


def test_scopes() -> None:
    assert str(Scope.of("team/app", "push", "pull", "push")) == "repository:team/app:pull,push"
    merged = merge_scopes([Scope.of("b", "pull"), Scope.of("a", "push"), Scope.of("a", "pull")])
    assert merged == (Scope.of("a", "pull", "push"), Scope.of("b", "pull"))


def test_token_cache_is_per_registry_and_scopes_and_expires() -> None:
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    pull = (Scope.of("team/app", "pull"),)
    push = (Scope.of("team/app", "pull", "push"),)
    cache.put("one.example", pull, Secret("t1"), 300)
    assert cache.get("one.example", pull) == Secret("t1")
    assert cache.get("two.example", pull) is None
    assert cache.get("one.example", push) is None
    now[0] += 289
    assert cache.get("one.example", pull) == Secret("t1")
    now[0] += 2  # within the 10 s margin before expiry
    assert cache.get("one.example", pull) is None
    cache.put("one.example", pull, Secret("t2"), None)  # no expires_in: the spec's 60 s
    now[0] += 51
    assert cache.get("one.example", pull) is None
    cache.put("one.example", pull, Secret("t3"), 300)
    cache.invalidate("one.example", pull)
    assert cache.get("one.example", pull) is None


# --- credentials ------------------------------------------------------------------------------------


def write_config(directory: Path, config: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_credential_repr_hides_secrets() -> None:
    credential = Credential("user", Secret("hunter2"), Secret("refresh"), "test")
    assert "hunter2" not in repr(credential) and "refresh" not in repr(credential).replace("identity_token", "")
    assert credential.basic_header() == "Basic " + b64("user:hunter2")


def test_docker_config_auths(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": b64("hubuser:hubpass")},
                "ghcr.io": {"auth": b64("gh:ghp_token:with:colons")},
                "https://quay.io": {"username": "q", "password": "qp"},
                "http://localhost:5000/v2/": {"auth": b64("local:pw")},
                "token.example": {"identitytoken": "refresh-me"},
                "empty.example": {},
            }
        },
    )
    store = DockerConfigCredentials(path)
    for hub in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        credential = store.get(hub)
        assert credential is not None and credential.username == "hubuser"
        assert credential.password == Secret("hubpass")
    ghcr = store.get("ghcr.io")
    assert ghcr is not None and ghcr.password == Secret("ghp_token:with:colons")
    quay = store.get("quay.io")
    assert quay is not None and (quay.username, quay.password) == ("q", Secret("qp"))
    local = store.get("localhost:5000")
    assert local is not None and local.username == "local"
    identity = store.get("token.example")
    assert identity is not None and identity.identity_token == Secret("refresh-me") and identity.password is None
    assert store.get("empty.example") is None
    assert store.get("localhost:5001") is None
    assert store.get("other.example") is None


def test_missing_and_broken_config(tmp_path: Path) -> None:
    assert DockerConfigCredentials(tmp_path / "nope.json").get("ghcr.io") is None
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InvalidInputError, match="not valid JSON") as info:
        DockerConfigCredentials(broken).get("ghcr.io")
    assert str(broken) in str(info.value)
    bad_auth = write_config(tmp_path / "bad", {"auths": {"ghcr.io": {"auth": "!!!"}}})
    with pytest.raises(InvalidInputError, match="base64") as info2:
        DockerConfigCredentials(bad_auth).get("ghcr.io")
    assert "auths.ghcr.io" in str(info2.value)


def test_config_path_from_env(tmp_path: Path) -> None:
    assert docker_config_path({"DOCKER_CONFIG": str(tmp_path)}) == tmp_path / "config.json"
    assert docker_config_path({"HOME": str(tmp_path)}) == tmp_path / ".docker" / "config.json"


def test_config_key() -> None:
    assert config_key("docker.io") == "https://index.docker.io/v1/"
    assert config_key("ghcr.io") == "ghcr.io"


def fake_helper(directory: Path, name: str, script: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_cred_helpers_and_creds_store(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    fake_helper(
        bin_dir,
        "ghcr",
        '[ "$1" = get ] || exit 2\nread url\n'
        'printf \'{"ServerURL":"%s","Username":"gh-%s","Secret":"s"}\' "$url" "$url"\n',
    )
    fake_helper(
        bin_dir,
        "desktop",
        'read url\ncase "$url" in\n'
        '  https://index.docker.io/v1/) echo \'{"Username":"<token>","Secret":"identity"}\' ;;\n'
        '  *) echo "credentials not found in native keychain"; exit 1 ;;\nesac\n',
    )
    path = write_config(
        tmp_path / "cfg",
        {
            "auths": {"quay.io": {"auth": b64("ignored:because-credsStore")}},
            "credHelpers": {"ghcr.io": "ghcr"},
            "credsStore": "desktop",
        },
    )
    store = DockerConfigCredentials(path, env={"PATH": str(bin_dir)})
    ghcr = store.get("ghcr.io")
    assert ghcr is not None and ghcr.username == "gh-ghcr.io" and ghcr.password == Secret("s")
    assert ghcr.source == "docker-credential-ghcr"
    hub = store.get("docker.io")
    assert hub is not None and hub.identity_token == Secret("identity") and hub.password is None
    assert store.get("quay.io") is None  # docker ignores auths when a credsStore is set


def test_helper_missing_or_failing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    fake_helper(bin_dir, "broken", "echo 'keychain locked' >&2; exit 3\n")
    fake_helper(bin_dir, "garbage", "echo 'not json'\n")
    path = write_config(tmp_path, {"credHelpers": {"a.example": "broken", "b.example": "garbage", "c.example": "gone"}})
    store = DockerConfigCredentials(path, env={"PATH": str(bin_dir)})
    with pytest.raises(AuthError, match="keychain locked") as info:
        store.get("a.example")
    assert "a.example" in str(info.value)
    with pytest.raises(AuthError, match="not JSON"):
        store.get("b.example")
    with pytest.raises(AuthError, match="not installed"):
        store.get("c.example")


def test_env_credentials_only_for_the_named_registries(tmp_path: Path) -> None:
    write_config(tmp_path, {"auths": {"quay.io": {"auth": b64("quser:qpass")}}})
    env = {"DOCKER_CONFIG": str(tmp_path), "REGISTRY_USERNAME": "ci", "REGISTRY_PASSWORD": "ci-token"}
    store = load_credentials(env, env_registries=["ghcr.io"])
    ghcr = store.get("ghcr.io")
    assert ghcr is not None and (ghcr.username, ghcr.password) == ("ci", Secret("ci-token"))
    assert store.get("docker.io") is None  # the CI token never goes to another registry
    quay = store.get("quay.io")
    assert quay is not None and quay.username == "quser"
    assert load_credentials(env).get("ghcr.io") is None


def test_env_credentials_need_both(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="REGISTRY_PASSWORD is not set"):
        load_credentials({"DOCKER_CONFIG": str(tmp_path), "REGISTRY_USERNAME": "u"}, env_registries=["x.io"])


def test_static_credentials_know_docker_hub_aliases() -> None:
    credential = Credential("u", Secret("p"))
    store = StaticCredentials({"docker.io": credential})
    assert store.get("registry-1.docker.io") is credential
    assert store.get("index.docker.io") is credential
    assert store.get("ghcr.io") is None
