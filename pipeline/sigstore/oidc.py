"""The OIDC identity token keyless signing presents to Fulcio: where it comes from and what it says.

Sources, in this order (the first that applies wins):

1. ``--identity-token SOURCE``: a file path or ``env://NAME`` (never the token itself: argv is visible
   to every process on the machine and lands in shell history and CI logs);
2. ``SIGSTORE_ID_TOKEN`` in the environment (cosign's variable; an explicit setting beats an ambient one);
3. GitHub Actions: with ``permissions: id-token: write`` the runner sets ``ACTIONS_ID_TOKEN_REQUEST_URL``
   and ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``; ``GET <url>&audience=sigstore`` with
   ``Authorization: bearer <request token>`` answers ``{"value": "<jwt>"}``.

The environment is passed in as a mapping: this module never reads ``os.environ``.

The claims are decoded *without* verifying the signature: Fulcio verifies the token. The client needs
them for the proof of possession (a signature over the ``email`` claim for e-mail tokens, else over
``sub``, which is what Fulcio's e-mail and CI principals check) and to fail early with a clear reason
(expired, wrong audience). The token is a :class:`~pipeline.secret.Secret`: it never appears in a
message, a ``repr`` or a log line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import httpx

from pipeline import jsonbounded
from pipeline.errors import IdentityTokenError as IdentityTokenError  # re-exported (lives in pipeline.errors)
from pipeline.errors import InvalidInputError, UsageError
from pipeline.errors import TokenServiceError as TokenServiceError
from pipeline.http import (
    RetryPolicy,
    bare_url,
    describe_transport_error,
    exchange,
    is_loopback_host,
    parse_retry_after,
    retry_delay,
)
from pipeline.secret import Secret
from pipeline.sigstore.jose import MalformedToken, decode_jws

SIGSTORE_AUDIENCE: Final = "sigstore"
SIGSTORE_ID_TOKEN_ENV: Final = "SIGSTORE_ID_TOKEN"  # noqa: S105 (a variable name)
ACTIONS_REQUEST_URL_ENV: Final = "ACTIONS_ID_TOKEN_REQUEST_URL"
ACTIONS_REQUEST_TOKEN_ENV: Final = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105 (a variable name)
ENV_SOURCE_PREFIX: Final = "env://"
GITHUB_ACTIONS_SOURCE: Final = "GitHub Actions OIDC token service"
CLOCK_LEEWAY_SECONDS: Final = 5
_MAX_TOKEN_FILE_BYTES: Final = 64 * 1024
_RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
_MAX_ANSWER_BYTES: Final = 1024 * 1024
_ACTIONS_HINT: Final = "give the signing job `permissions: id-token: write`"


@dataclass(frozen=True)
class TokenClaims:
    """What an identity token says (decoded, not verified). ``all`` holds every claim, for CI claims."""

    issuer: str
    subject: str
    audiences: tuple[str, ...]
    expires_at: int
    not_before: int | None = None
    issued_at: int | None = None
    email: str | None = None
    email_verified: bool | None = None
    all: Mapping[str, object] = field(default_factory=dict, repr=False)

    @property
    def proof_subject(self) -> str:
        """What the proof of possession signs: the e-mail for e-mail tokens, else ``sub`` (as Fulcio checks)."""
        return self.email if self.email else self.subject

    @property
    def identity(self) -> str:
        """Who the token names, for messages (the e-mail, else the subject)."""
        return self.email if self.email else self.subject


@dataclass(frozen=True)
class IdentityToken:
    """A token and its claims; ``source`` names where it came from (a path, ``env://NAME``, the service)."""

    token: Secret
    claims: TokenClaims
    source: str

    def reveal(self) -> str:
        """The raw JWT, for the one request that sends it to Fulcio."""
        return self.token.reveal().decode("ascii")


def _format_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_claim(claims: Mapping[str, object], name: str, source: str, *, required: bool) -> int | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IdentityTokenError(f"the identity token's {name} claim is missing or not a number", where=source)
    return int(value)


def _str_claim(claims: Mapping[str, object], name: str, source: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise IdentityTokenError(f"the identity token has no {name} claim", where=source)
    return value


def decode_claims(token: Secret, source: str) -> TokenClaims:
    """The token's claims, unverified; IdentityTokenError if it is not a JWT with iss, sub, aud and exp."""
    try:
        text = token.reveal().decode("ascii").strip()
        decoded = decode_jws(text)
    except (UnicodeDecodeError, MalformedToken) as exc:
        reason = str(exc) if isinstance(exc, MalformedToken) else "non-ASCII bytes"
        raise IdentityTokenError(f"the identity token is not a JWT ({reason})", where=source) from None
    claims = decoded.claims
    audience = claims.get("aud")
    if isinstance(audience, str):
        audiences: tuple[str, ...] = (audience,)
    elif isinstance(audience, list) and audience and all(isinstance(a, str) for a in audience):
        audiences = tuple(audience)
    else:
        raise IdentityTokenError("the identity token has no aud claim", where=source)
    email = claims.get("email")
    verified = claims.get("email_verified")
    expires_at = _int_claim(claims, "exp", source, required=True)
    assert expires_at is not None
    return TokenClaims(
        issuer=_str_claim(claims, "iss", source),
        subject=_str_claim(claims, "sub", source),
        audiences=audiences,
        expires_at=expires_at,
        not_before=_int_claim(claims, "nbf", source, required=False),
        issued_at=_int_claim(claims, "iat", source, required=False),
        email=email if isinstance(email, str) and email else None,
        email_verified=verified if isinstance(verified, bool) else None,
        all=dict(claims),
    )


def parse_identity_token(
    token: Secret, source: str, *, now: float | None = None, audience: str = SIGSTORE_AUDIENCE
) -> IdentityToken:
    """Decode and sanity-check a token for Fulcio: for ``audience``, and not expired or not yet valid at ``now``."""
    claims = decode_claims(token, source)
    moment = time.time() if now is None else now
    if audience not in claims.audiences:
        raise IdentityTokenError(
            f"the identity token is for audience {', '.join(claims.audiences)}, not {audience!r}",
            where=source,
            hint=f"request the token with audience {audience!r}",
        )
    if moment > claims.expires_at + CLOCK_LEEWAY_SECONDS:
        raise IdentityTokenError(
            f"the identity token for {claims.identity} expired at {_format_time(claims.expires_at)}",
            where=source,
            hint="obtain a fresh token (they live minutes)",
        )
    if claims.not_before is not None and moment + CLOCK_LEEWAY_SECONDS < claims.not_before:
        raise IdentityTokenError(
            f"the identity token is not valid before {_format_time(claims.not_before)}", where=source
        )
    return IdentityToken(Secret(token.reveal().strip()), claims, source)


# --- sources ------------------------------------------------------------------------------------


def _looks_like_jwt(text: str) -> bool:
    return text.startswith("eyJ") and text.count(".") == 2 and "/" not in text


def read_token_source(spec: str, env: Mapping[str, str]) -> Secret:
    """The token named by ``--identity-token``: ``env://NAME`` or a file path (never the token itself)."""
    if spec.startswith(ENV_SOURCE_PREFIX):
        name = spec[len(ENV_SOURCE_PREFIX) :]
        if not name:
            raise UsageError("--identity-token env:// needs a variable name (env://NAME)")
        value = env.get(name)
        if not value or not value.strip():
            raise IdentityTokenError(f"the environment variable {name} is unset or empty", where=spec)
        return Secret(value.strip())
    if _looks_like_jwt(spec.strip()):
        # Never echo it: the value is a credential that reached argv by mistake.
        raise UsageError(
            "--identity-token takes a file or env://NAME, not the token itself",
            hint="write the token to a file (or an environment variable) and pass its name",
        )
    path = Path(spec)
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_TOKEN_FILE_BYTES + 1)
    except FileNotFoundError:
        raise IdentityTokenError("the identity token file does not exist", where=spec) from None
    except OSError as exc:
        raise IdentityTokenError(f"cannot read the identity token file: {exc.strerror}", where=spec) from None
    if len(data) > _MAX_TOKEN_FILE_BYTES:
        raise IdentityTokenError("the identity token file is too large to be a token", where=spec)
    if not data.strip():
        raise IdentityTokenError("the identity token file is empty", where=spec)
    return Secret(data.strip())


def actions_token_url(request_url: str, audience: str = SIGSTORE_AUDIENCE) -> httpx.URL:
    """``ACTIONS_ID_TOKEN_REQUEST_URL`` with ``audience`` added to its query (it already holds api-version)."""
    try:
        url = httpx.URL(request_url)
    except (httpx.InvalidURL, ValueError):
        raise IdentityTokenError(
            f"{ACTIONS_REQUEST_URL_ENV} is not a valid URL", where=ACTIONS_REQUEST_URL_ENV
        ) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise IdentityTokenError(f"{ACTIONS_REQUEST_URL_ENV} is not an http(s) URL", where=ACTIONS_REQUEST_URL_ENV)
    if url.scheme == "http" and not is_loopback_host(url.host):
        raise IdentityTokenError(f"{ACTIONS_REQUEST_URL_ENV} uses plain HTTP to another machine", where=bare_url(url))
    return url.copy_merge_params({"audience": audience})


def fetch_actions_token(
    request_url: str,
    request_token: Secret,
    *,
    audience: str = SIGSTORE_AUDIENCE,
    timeout: float = 10.0,
    retries: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Secret:
    """Ask the GitHub Actions token service for an ID token with ``audience``."""
    url = actions_token_url(request_url, audience)
    where = bare_url(url)
    policy = retries or RetryPolicy()
    headers = {
        "Authorization": f"bearer {request_token.reveal().decode('utf-8', 'replace')}",
        "Accept": "application/json",
    }
    reason = ""
    with httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False, transport=transport) as http:
        for number in range(policy.attempts):
            retry_after: float | None = None
            try:
                response = exchange(
                    http,
                    http.build_request("GET", url, headers=headers),
                    _MAX_ANSWER_BYTES,
                    fail=lambda message: TokenServiceError(message, where=where),
                    what="token service's answer",
                    service="the GitHub Actions OIDC token service",
                )
            except httpx.TransportError as exc:
                reason = describe_transport_error(exc, "the GitHub Actions OIDC token service")
            else:
                if response.status_code in (401, 403):
                    raise IdentityTokenError(
                        f"the GitHub Actions OIDC token service refused the request (HTTP {response.status_code})",
                        where=where,
                        hint=_ACTIONS_HINT,
                    )
                if response.status_code == 200:
                    return _actions_value(response, where)
                reason = f"the GitHub Actions OIDC token service answered HTTP {response.status_code}"
                if response.status_code not in _RETRY_STATUSES:
                    raise TokenServiceError(reason, where=where)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if number < policy.attempts - 1:
                sleep(min(policy.max_retry_after, max(retry_delay(policy, number, None), retry_after or 0.0)))
    suffix = f" (after {policy.attempts} attempts)" if policy.attempts > 1 else ""
    raise TokenServiceError(f"{reason}{suffix}", where=where)


def _actions_value(response: httpx.Response, where: str) -> Secret:
    try:
        document = jsonbounded.loads(response.content, source=where, what="the token service's answer")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TokenServiceError("the GitHub Actions OIDC token service did not answer JSON", where=where) from None
    except InvalidInputError as error:
        raise TokenServiceError(error.message, where=where) from None
    value = document.get("value") if isinstance(document, dict) else None
    if not isinstance(value, str) or not value:
        raise TokenServiceError("the GitHub Actions OIDC token service's answer has no value", where=where)
    return Secret(value)


def in_github_actions_with_id_token(env: Mapping[str, str]) -> bool:
    return bool(env.get(ACTIONS_REQUEST_URL_ENV)) and bool(env.get(ACTIONS_REQUEST_TOKEN_ENV))


def obtain_identity_token(
    identity_token: str | None,
    env: Mapping[str, str],
    *,
    now: float | None = None,
    audience: str = SIGSTORE_AUDIENCE,
    transport: httpx.BaseTransport | None = None,
    retries: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> IdentityToken:
    """The identity token for keyless signing, from the first source that applies (see the module doc)."""
    if identity_token is not None:
        return parse_identity_token(read_token_source(identity_token, env), identity_token, now=now, audience=audience)
    value = env.get(SIGSTORE_ID_TOKEN_ENV)
    if value and value.strip():
        return parse_identity_token(Secret(value.strip()), f"env://{SIGSTORE_ID_TOKEN_ENV}", now=now, audience=audience)
    if in_github_actions_with_id_token(env):
        token = fetch_actions_token(
            env[ACTIONS_REQUEST_URL_ENV],
            Secret(env[ACTIONS_REQUEST_TOKEN_ENV]),
            audience=audience,
            transport=transport,
            retries=retries,
            sleep=sleep,
        )
        return parse_identity_token(token, GITHUB_ACTIONS_SOURCE, now=now, audience=audience)
    hint = f"pass --identity-token FILE|env://NAME, set {SIGSTORE_ID_TOKEN_ENV}, or in GitHub Actions {_ACTIONS_HINT}"
    if env.get("GITHUB_ACTIONS") == "true":
        hint = f"{_ACTIONS_HINT} (the runner sets {ACTIONS_REQUEST_URL_ENV} only then)"
    raise IdentityTokenError("no OIDC identity token for keyless signing", where="keyless signing", hint=hint)
