"""Identity tokens: sources (file, env://, SIGSTORE_ID_TOKEN, GitHub Actions against a real local server),
claims decoded without verification, early refusals, and the token never in a message or repr.

Second opinions on the hand-rolled JWTs of the OIDC stand-in: PyJWT verifies them with the published
JWKS, and sigstore-python's IdentityToken reads them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from pipeline.errors import ExitCode, ReleaseVectorError, UsageError
from pipeline.oci.client import RetryPolicy
from pipeline.rehearsal.oidc_issuer import GitHubWorkflowClaims, OidcIssuer
from pipeline.secret import Secret
from pipeline.sigstore.jose import key_from_jwk
from pipeline.sigstore.oidc import (
    ACTIONS_REQUEST_TOKEN_ENV,
    ACTIONS_REQUEST_URL_ENV,
    GITHUB_ACTIONS_SOURCE,
    SIGSTORE_ID_TOKEN_ENV,
    IdentityTokenError,
    TokenServiceError,
    actions_token_url,
    obtain_identity_token,
    parse_identity_token,
    read_token_source,
)

WORKFLOW = GitHubWorkflowClaims(repository="metal-stack/releases", ref="refs/heads/main")


@pytest.fixture(scope="module", params=["ES256", "RS256"])
def issuer(request: pytest.FixtureRequest) -> Iterator[OidcIssuer]:
    with OidcIssuer(request.param, actions_claims=WORKFLOW) as server:
        yield server


def _assert_secret_free(error: ReleaseVectorError, *secrets: str) -> None:
    text = "\n".join([*error.lines(), error.hint or "", repr(error)])
    for secret in secrets:
        assert secret not in text


# --- claims -------------------------------------------------------------------------------------


def test_email_token_claims_and_proof_subject(issuer: OidcIssuer) -> None:
    raw = issuer.email_token("dev@example.com")
    token = parse_identity_token(Secret(raw), "test")
    assert token.claims.issuer == issuer.issuer
    assert token.claims.audiences == ("sigstore",)
    assert token.claims.email == "dev@example.com" and token.claims.email_verified is True
    assert token.claims.proof_subject == "dev@example.com"  # Fulcio's e-mail challenge
    assert token.reveal() == raw
    assert raw not in repr(token) and raw not in str(token)


def test_github_token_claims_and_proof_subject(issuer: OidcIssuer) -> None:
    token = parse_identity_token(Secret(issuer.github_token()), "test")
    assert token.claims.subject == "repo:metal-stack/releases:ref:refs/heads/main"
    assert token.claims.proof_subject == token.claims.subject  # CI tokens: the sub
    assert token.claims.all["job_workflow_ref"] == "metal-stack/releases/.github/workflows/release.yml@refs/heads/main"
    assert token.claims.all["runner_environment"] == "github-hosted"


def test_wrong_audience_is_refused_early(issuer: OidcIssuer) -> None:
    raw = issuer.email_token("dev@example.com", audience="https://github.com/metal-stack")
    with pytest.raises(IdentityTokenError, match=r"audience https://github\.com/metal-stack, not 'sigstore'") as caught:
        parse_identity_token(Secret(raw), "env://TOKEN")
    assert caught.value.exit_code == ExitCode.AUTH
    assert caught.value.where == "env://TOKEN"
    _assert_secret_free(caught.value, raw)


def test_expired_and_not_yet_valid_tokens_are_refused(issuer: OidcIssuer) -> None:
    old = issuer.email_token("dev@example.com", issued_at=time.time() - 3600)
    with pytest.raises(IdentityTokenError, match=r"for dev@example\.com expired at") as caught:
        parse_identity_token(Secret(old), "test")
    _assert_secret_free(caught.value, old)
    future = issuer.email_token("dev@example.com", not_before=time.time() + 600)
    with pytest.raises(IdentityTokenError, match="not valid before"):
        parse_identity_token(Secret(future), "test")


@pytest.mark.parametrize("raw", ["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "é.é.é"])
def test_malformed_tokens(raw: str) -> None:
    with pytest.raises(IdentityTokenError) as caught:
        parse_identity_token(Secret(raw), "test")
    message = caught.value.one_line()
    assert "not a JWT" in message or "has no" in message
    _assert_secret_free(caught.value, raw)


# --- the oracles --------------------------------------------------------------------------------


def test_pyjwt_verifies_the_stand_in_tokens_with_the_published_jwks(issuer: OidcIssuer) -> None:
    import httpx

    discovery = httpx.get(f"{issuer.url}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == issuer.issuer
    jwks = httpx.get(discovery["jwks_uri"]).json()
    key = key_from_jwk(jwks["keys"][0])
    raw = issuer.email_token("dev@example.com")
    claims = jwt.decode(raw, key=key, algorithms=[issuer.algorithm], audience="sigstore", issuer=issuer.issuer)
    assert claims["email"] == "dev@example.com"
    assert jwt.get_unverified_header(raw)["kid"] == jwks["keys"][0]["kid"]


def test_sigstore_python_reads_the_stand_in_tokens(issuer: OidcIssuer) -> None:
    from sigstore.oidc import IdentityToken as SigstoreIdentityToken

    token = SigstoreIdentityToken(issuer.github_token())
    assert token.issuer == issuer.issuer
    assert token.identity == WORKFLOW.subject  # an unknown issuer: sigstore-python's challenge is the sub too
    assert token.in_validity_period()


# --- sources ------------------------------------------------------------------------------------


def test_token_from_a_file_and_from_env(issuer: OidcIssuer, tmp_path: Path) -> None:
    raw = issuer.email_token("dev@example.com")
    path = tmp_path / "token"
    path.write_text(raw + "\n")
    assert read_token_source(str(path), {}).reveal() == raw.encode()
    assert read_token_source("env://MY_TOKEN", {"MY_TOKEN": raw}).reveal() == raw.encode()
    token = obtain_identity_token(str(path), {})
    assert token.source == str(path) and token.claims.email == "dev@example.com"


def test_token_source_errors(tmp_path: Path) -> None:
    with pytest.raises(IdentityTokenError, match="MY_TOKEN is unset or empty"):
        read_token_source("env://MY_TOKEN", {})
    with pytest.raises(UsageError, match="needs a variable name"):
        read_token_source("env://", {})
    with pytest.raises(IdentityTokenError, match="does not exist"):
        read_token_source(str(tmp_path / "missing"), {})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(IdentityTokenError, match="is empty"):
        read_token_source(str(tmp_path / "empty"), {})


def test_the_token_itself_on_the_command_line_is_refused_without_echo(issuer: OidcIssuer) -> None:
    raw = issuer.email_token("dev@example.com")
    with pytest.raises(UsageError, match="not the token itself") as caught:
        obtain_identity_token(raw, {})
    _assert_secret_free(caught.value, raw)


def test_precedence_explicit_then_sigstore_id_token_then_actions(issuer: OidcIssuer, tmp_path: Path) -> None:
    env = {**issuer.actions_env(), SIGSTORE_ID_TOKEN_ENV: issuer.email_token("env@example.com")}
    path = tmp_path / "token"
    path.write_text(issuer.email_token("file@example.com"))
    assert obtain_identity_token(str(path), env).claims.email == "file@example.com"
    from_env = obtain_identity_token(None, env)
    assert from_env.claims.email == "env@example.com" and from_env.source == "env://SIGSTORE_ID_TOKEN"
    env.pop(SIGSTORE_ID_TOKEN_ENV)
    assert obtain_identity_token(None, env).source == GITHUB_ACTIONS_SOURCE


def test_no_source_is_an_auth_error_with_a_hint() -> None:
    with pytest.raises(IdentityTokenError, match="no OIDC identity token") as caught:
        obtain_identity_token(None, {})
    assert caught.value.exit_code == ExitCode.AUTH
    assert caught.value.hint is not None and "--identity-token" in caught.value.hint
    with pytest.raises(IdentityTokenError) as in_actions:
        obtain_identity_token(None, {"GITHUB_ACTIONS": "true"})
    assert in_actions.value.hint is not None and "id-token: write" in in_actions.value.hint


# --- GitHub Actions -----------------------------------------------------------------------------


def test_github_actions_token_from_the_token_service(issuer: OidcIssuer) -> None:
    env = issuer.actions_env()
    before = len(issuer.requests)
    token = obtain_identity_token(None, env)
    assert token.source == GITHUB_ACTIONS_SOURCE
    assert token.claims.audiences == ("sigstore",)
    assert token.claims.subject == WORKFLOW.subject
    assert issuer.requests[before:] == [("GET", "/_actions/token", 200)]
    assert env[ACTIONS_REQUEST_TOKEN_ENV] not in repr(token)


def test_actions_url_keeps_its_query_and_adds_the_audience() -> None:
    url = actions_token_url("https://pipelines.actions.githubusercontent.com/abc/idtoken?api-version=2.0")
    assert url.params["api-version"] == "2.0" and url.params["audience"] == "sigstore"
    with pytest.raises(IdentityTokenError, match="plain HTTP"):
        actions_token_url("http://example.com/token?api-version=2.0")


def test_github_actions_refusal_is_an_auth_error_without_the_request_token(issuer: OidcIssuer) -> None:
    env = {**issuer.actions_env(), ACTIONS_REQUEST_TOKEN_ENV: "wrong-request-token-value"}
    with pytest.raises(IdentityTokenError, match=r"refused the request \(HTTP 401\)") as caught:
        obtain_identity_token(None, env)
    assert caught.value.hint is not None and "id-token: write" in caught.value.hint
    assert caught.value.where is not None and caught.value.where.endswith("/_actions/token")
    _assert_secret_free(caught.value, "wrong-request-token-value")


def test_github_actions_retries_then_succeeds(issuer: OidcIssuer) -> None:
    sleeps: list[float] = []
    issuer.inject_failures(2, status=503)
    token = obtain_identity_token(None, issuer.actions_env(), sleep=sleeps.append)
    assert token.claims.subject == WORKFLOW.subject
    assert len(sleeps) == 2


def test_github_actions_gives_up_after_bounded_retries(issuer: OidcIssuer) -> None:
    sleeps: list[float] = []
    issuer.inject_failures(3, status=503)
    with pytest.raises(TokenServiceError, match=r"answered HTTP 503 \(after 3 attempts\)") as caught:
        obtain_identity_token(None, issuer.actions_env(), sleep=sleeps.append, retries=RetryPolicy(attempts=3))
    assert caught.value.exit_code == ExitCode.REGISTRY
    assert len(sleeps) == 2


def test_github_actions_unreachable() -> None:
    env = {ACTIONS_REQUEST_URL_ENV: "http://127.0.0.1:9/token?api-version=2.0", ACTIONS_REQUEST_TOKEN_ENV: "x"}
    with pytest.raises(TokenServiceError, match="cannot connect"):
        obtain_identity_token(None, env, sleep=lambda _s: None, retries=RetryPolicy(attempts=2))
