"""The run's keyless signing (pipeline.signatures.signers): the identity a token gets certified for, one
certificate per run, a new one (with a fresh token) when less than two minutes are left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.secret import Secret
from pipeline.signatures.signers import KeylessSigner, certificate_identity_of
from pipeline.sigstore.oidc import IdentityToken, TokenClaims, parse_identity_token
from tests.sigstore.keyless_fixtures import EMAIL, WORKFLOW, KeylessStack, keyless_stack

__all__ = ["keyless_stack"]


def claims(**extra: object) -> TokenClaims:
    email = extra.pop("email", None)
    address = email if isinstance(email, str) else None
    return TokenClaims("https://issuer", "the-subject", ("sigstore",), 0, email=address, all=extra)


def test_the_certified_identity_of_each_kind_of_token() -> None:
    assert certificate_identity_of(claims(email="dev@example.com")) == "dev@example.com"
    github = claims(job_workflow_ref="acme/app/.github/workflows/release.yml@refs/tags/v1")
    assert certificate_identity_of(github) == "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1"
    gitlab = claims(ci_config_ref_uri="gitlab.com/acme/app//.gitlab-ci.yml@refs/heads/main")
    assert certificate_identity_of(gitlab) == "https://gitlab.com/acme/app//.gitlab-ci.yml@refs/heads/main"
    assert certificate_identity_of(claims()) == "the-subject"


def test_one_certificate_per_run_renewed_when_two_minutes_are_left(keyless_stack: KeylessStack) -> None:
    token = parse_identity_token(Secret(keyless_stack.github_issuer.github_token()), "test")
    refreshed: list[IdentityToken] = []

    def refresh() -> IdentityToken:
        refreshed.append(parse_identity_token(Secret(keyless_stack.github_issuer.github_token()), "refresh"))
        return refreshed[-1]

    moment = [datetime.now(UTC)]
    with keyless_stack.client() as fulcio:
        signing = KeylessSigner(token, fulcio, roots=(keyless_stack.fulcio.root,), refresh_token=refresh,
                                 clock=lambda: moment[0])  # fmt: skip
        assert signing.certificates == 0, "no certificate before the first signature"
        first = signing.certified_key()
        assert signing.certified_key() is first and signing.certificates == 1 and not refreshed
        assert signing.identity.identity == WORKFLOW.certificate_identity
        assert signing.identity.issuer == keyless_stack.github_issuer.issuer
        assert signing.identity.intermediates == (keyless_stack.fulcio.intermediate,)
        moment[0] = first.not_valid_after - timedelta(minutes=3)
        assert signing.certified_key() is first
        moment[0] = first.not_valid_after - timedelta(minutes=1, seconds=59)
        second = signing.certified_key()
        assert second is not first and signing.certificates == 2 and len(refreshed) == 1
    assert EMAIL not in repr(signing) and "PRIVATE" not in repr(signing)
