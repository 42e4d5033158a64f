"""An embedded OIDC identity provider for keyless rehearsals and tests (it is not an identity provider to trust).

A real HTTP server on 127.0.0.1 publishing what Fulcio needs to verify its tokens, and a stand-in of
the GitHub Actions token service:

==========================================  =================================================================
``GET /.well-known/openid-configuration``   ``{issuer, jwks_uri, id_token_signing_alg_values_supported, …}``
``GET /.well-known/jwks``                   ``{"keys": [JWK]}`` (EC P-256 for ES256, RSA for RS256)
``GET /_actions/token?audience=A``          GitHub's ``ACTIONS_ID_TOKEN_REQUEST_URL``: with
                                            ``Authorization: bearer <request token>`` → ``{"value": jwt}``,
                                            a GitHub-workflow token for audience ``A``; 401 otherwise
==========================================  =================================================================

Tokens are compact JWTs signed with ``cryptography`` (no JWT library), with configurable ``iss``,
``sub``, ``email``, ``aud``, ``exp``/``nbf``/``iat`` and GitHub workflow claims (``repository``,
``ref``, ``sha``, ``workflow_ref``, ``job_workflow_ref``, ``runner_environment``, ``event_name``…).
Usage::

    with OidcIssuer() as issuer:                    # ES256 unless algorithm="RS256"
        issuer.issuer                                # the iss claim: its URL
        issuer.email_token("dev@example.com")        # an e-mail identity token, audience sigstore
        issuer.github_token(GitHubWorkflowClaims())  # a GitHub Actions workflow token
        issuer.actions_env()                         # ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN for this server
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pipeline.rehearsal.standin_http import Request, Response, StandinServer, json_response
from pipeline.secret import Secret
from pipeline.sigstore.jose import ES256, RS256, JwsPrivateKey, JwsPublicKey, public_jwk, sign_jws
from pipeline.sigstore.oidc import ACTIONS_REQUEST_TOKEN_ENV, ACTIONS_REQUEST_URL_ENV, SIGSTORE_AUDIENCE

DISCOVERY_PATH: Final = "/.well-known/openid-configuration"
JWKS_PATH: Final = "/.well-known/jwks"
ACTIONS_TOKEN_PATH: Final = "/_actions/token"  # noqa: S105 (a path)
DEFAULT_LIFETIME_SECONDS: Final = 300
DEFAULT_KID: Final = "release-vector-test-key"


@dataclass(frozen=True)
class GitHubWorkflowClaims:
    """The claims of a GitHub Actions ID token (https://docs.github.com/en/actions/reference/security/oidc)."""

    repository: str = "example-org/example-repo"
    ref: str = "refs/tags/v1.0.0"
    sha: str = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b"
    workflow: str = "release"
    workflow_path: str = ".github/workflows/release.yml"
    event_name: str = "push"
    runner_environment: str = "github-hosted"
    repository_id: str = "123456789"
    repository_owner_id: str = "987654321"
    repository_visibility: str = "public"
    run_id: str = "1000000001"
    run_attempt: str = "1"
    job_workflow_ref: str | None = None
    job_workflow_sha: str | None = None
    workflow_ref: str | None = None
    workflow_sha: str | None = None
    environment: str | None = None

    @property
    def repository_owner(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def subject(self) -> str:
        return f"repo:{self.repository}:ref:{self.ref}"

    @property
    def resolved_workflow_ref(self) -> str:
        return self.workflow_ref or f"{self.repository}/{self.workflow_path}@{self.ref}"

    @property
    def resolved_job_workflow_ref(self) -> str:
        """The reusable workflow running the job; the top-level workflow when there is none."""
        return self.job_workflow_ref or self.resolved_workflow_ref

    @property
    def certificate_identity(self) -> str:
        """The SAN Fulcio puts in the certificate (and ``--certificate-identity`` must name)."""
        return f"https://github.com/{self.resolved_job_workflow_ref}"

    def claims(self) -> dict[str, object]:
        claims: dict[str, object] = {
            "sub": self.subject,
            "ref": self.ref,
            "sha": self.sha,
            "repository": self.repository,
            "repository_owner": self.repository_owner,
            "repository_owner_id": self.repository_owner_id,
            "repository_id": self.repository_id,
            "repository_visibility": self.repository_visibility,
            "run_id": self.run_id,
            "run_number": self.run_id,
            "run_attempt": self.run_attempt,
            "actor": "release-bot",
            "actor_id": "42",
            "workflow": self.workflow,
            "workflow_ref": self.resolved_workflow_ref,
            "workflow_sha": self.workflow_sha or self.sha,
            "job_workflow_ref": self.resolved_job_workflow_ref,
            "job_workflow_sha": self.job_workflow_sha or self.sha,
            "event_name": self.event_name,
            "ref_type": "tag" if self.ref.startswith("refs/tags/") else "branch",
            "runner_environment": self.runner_environment,
        }
        if self.environment is not None:
            claims["environment"] = self.environment
        return claims


def _generate_key(algorithm: str) -> JwsPrivateKey:
    if algorithm == ES256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == RS256:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported algorithm {algorithm!r} (ES256 or RS256)")


class OidcIssuer(StandinServer):
    """The embedded OIDC issuer on 127.0.0.1. Thread-safe; ``repr`` never shows the key."""

    thread_name = "release-vector-oidc"

    def __init__(
        self,
        algorithm: str = ES256,
        *,
        signing_key: JwsPrivateKey | None = None,
        kid: str = DEFAULT_KID,
        issuer: str | None = None,
        clock: Callable[[], float] = time.time,
        actions_claims: GitHubWorkflowClaims | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self._key = signing_key if signing_key is not None else _generate_key(algorithm)
        self.algorithm = ES256 if isinstance(self._key, ec.EllipticCurvePrivateKey) else RS256
        self.kid = kid
        self._issuer_override = issuer
        self._clock = clock
        self.actions_claims = actions_claims or GitHubWorkflowClaims()
        self._actions_request_token = Secret(secrets.token_urlsafe(24))

    def __repr__(self) -> str:
        url = self.url if self.running else None
        return f"OidcIssuer(url={url!r}, algorithm={self.algorithm!r})"

    @property
    def issuer(self) -> str:
        """The ``iss`` of its tokens: its own URL unless configured otherwise."""
        return self._issuer_override if self._issuer_override is not None else self.url

    @property
    def public_key(self) -> JwsPublicKey:
        return self._key.public_key()

    def jwks(self) -> dict[str, object]:
        return {"keys": [public_jwk(self.public_key, self.kid)]}

    def discovery(self) -> dict[str, object]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.url}{JWKS_PATH}",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.algorithm],
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "nbf", "email", "email_verified"],
        }

    # --- tokens -----------------------------------------------------------------------------------

    def issue_token(
        self,
        *,
        subject: str,
        email: str | None = None,
        email_verified: bool | None = None,
        audience: str | list[str] = SIGSTORE_AUDIENCE,
        lifetime: int = DEFAULT_LIFETIME_SECONDS,
        issued_at: float | None = None,
        not_before: float | None = None,
        issuer: str | None = None,
        extra: Mapping[str, object] | None = None,
        signing_key: JwsPrivateKey | None = None,
    ) -> str:
        """A signed JWT. ``issued_at`` defaults to the clock; ``exp`` = ``issued_at + lifetime``."""
        iat = int(self._clock() if issued_at is None else issued_at)
        claims: dict[str, object] = {
            "iss": issuer if issuer is not None else self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": iat,
            "exp": iat + lifetime,
        }
        if not_before is not None:
            claims["nbf"] = int(not_before)
        if email is not None:
            claims["email"] = email
            claims["email_verified"] = True if email_verified is None else email_verified
        claims.update(extra or {})
        return sign_jws(signing_key if signing_key is not None else self._key, claims, kid=self.kid)

    def email_token(
        self,
        email: str,
        *,
        subject: str | None = None,
        email_verified: bool = True,
        audience: str | list[str] = SIGSTORE_AUDIENCE,
        lifetime: int = DEFAULT_LIFETIME_SECONDS,
        issued_at: float | None = None,
        not_before: float | None = None,
        issuer: str | None = None,
    ) -> str:
        """An e-mail identity token (as Google or Sigstore's Dex issue them); ``sub`` is an opaque ID."""
        return self.issue_token(
            subject=subject or "user-" + hashlib.sha256(email.encode()).hexdigest()[:12],
            email=email,
            email_verified=email_verified,
            audience=audience,
            lifetime=lifetime,
            issued_at=issued_at,
            not_before=not_before,
            issuer=issuer,
        )

    def github_token(
        self,
        workflow: GitHubWorkflowClaims | None = None,
        *,
        audience: str | list[str] = SIGSTORE_AUDIENCE,
        lifetime: int = DEFAULT_LIFETIME_SECONDS,
        issued_at: float | None = None,
        not_before: float | None = None,
        issuer: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> str:
        """A GitHub Actions workflow identity token (``sub`` = ``repo:<repository>:ref:<ref>``)."""
        claims = (workflow or self.actions_claims).claims()
        subject = str(claims.pop("sub"))
        claims.update(extra or {})
        return self.issue_token(
            subject=subject,
            audience=audience,
            lifetime=lifetime,
            issued_at=issued_at,
            not_before=not_before,
            issuer=issuer,
            extra=claims,
        )

    def actions_env(self) -> dict[str, str]:
        """The variables a GitHub runner sets with ``id-token: write``, pointing at this server."""
        return {
            ACTIONS_REQUEST_URL_ENV: f"{self.url}{ACTIONS_TOKEN_PATH}?api-version=2.0",
            ACTIONS_REQUEST_TOKEN_ENV: self._actions_request_token.reveal().decode("ascii"),
        }

    # --- HTTP -------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if request.method not in ("GET", "HEAD"):
            return self.error_response(405, f"method {request.method} is not allowed")
        if path == DISCOVERY_PATH:
            return json_response(200, self.discovery())
        if path == JWKS_PATH:
            return json_response(200, self.jwks())
        if path == ACTIONS_TOKEN_PATH:
            return self._actions_token(request)
        return self.error_response(404, f"path {request.path} was not found")

    def _actions_token(self, request: Request) -> Response:
        authorization = request.headers.get("authorization", "")
        scheme, _, credential = authorization.partition(" ")
        expected = self._actions_request_token.reveal().decode("ascii")
        if scheme.lower() != "bearer" or not secrets.compare_digest(credential.strip(), expected):
            return json_response(401, {"message": "Bad credentials"})
        audience = request.query_value("audience") or "https://github.com/" + self.actions_claims.repository_owner
        return json_response(200, {"count": 1, "value": self.github_token(audience=audience)})
