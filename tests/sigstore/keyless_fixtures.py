"""The embedded keyless stack for tests: two OIDC issuers (e-mail ES256, GitHub workflow RS256), Fulcio, Rekor.

Import the fixtures into a test module (``from tests.sigstore.keyless_fixtures import keyless_stack``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pipeline.oci.client import RetryPolicy
from pipeline.rehearsal.fulcio_server import FulcioServer, TrustedIssuer
from pipeline.rehearsal.log_server import LogServer
from pipeline.rehearsal.oidc_issuer import GitHubWorkflowClaims, OidcIssuer
from pipeline.sigstore.fulcio_client import FulcioClient, FulcioOptions

EMAIL = "release-manager@example.com"
WORKFLOW = GitHubWorkflowClaims(repository="metal-stack/releases", ref="refs/tags/v0.22.19")


@dataclass(frozen=True)
class KeylessStack:
    email_issuer: OidcIssuer
    github_issuer: OidcIssuer
    fulcio: FulcioServer
    log: LogServer

    def client(self, *, attempts: int = 1, sleeps: list[float] | None = None) -> FulcioClient:
        record = sleeps if sleeps is not None else []
        return FulcioClient(self.fulcio.url, FulcioOptions(retries=RetryPolicy(attempts=attempts)), sleep=record.append)


@pytest.fixture(scope="module")
def keyless_stack() -> Iterator[KeylessStack]:
    with (
        OidcIssuer("ES256") as email_issuer,
        OidcIssuer("RS256", actions_claims=WORKFLOW) as github_issuer,
        LogServer() as log,
    ):
        fulcio = FulcioServer(
            [
                TrustedIssuer(email_issuer.issuer, "email"),
                TrustedIssuer(github_issuer.issuer, "github-workflow"),
            ]
        )
        with fulcio:
            yield KeylessStack(email_issuer, github_issuer, fulcio, log)
