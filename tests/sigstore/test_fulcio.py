"""The Fulcio client against the Fulcio stand-in (real HTTP): certificates with Sigstore's OID extensions,
refusals (expired token, wrong audience, unknown issuer, forged token, bad proof of possession) as one-line
errors that never hold the token, retries, the trust bundle. sigstore-python's Fulcio client (the CSR
form of the request) is the second opinion on the stand-in's protocol."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from pipeline.cosign.certificate import oidc_issuer, subject_alternative_names
from pipeline.errors import ExitCode, InvalidInputError, ReleaseVectorError
from pipeline.rehearsal.fulcio_server import FulcioServer
from pipeline.rehearsal.oidc_issuer import OidcIssuer
from pipeline.secret import Secret
from pipeline.sigstore.fulcio_client import FulcioAuthError, FulcioClient, FulcioError, check_fulcio_url
from pipeline.sigstore.oidc import IdentityToken, decode_claims, parse_identity_token
from tests.sigstore.keyless_fixtures import EMAIL, WORKFLOW, KeylessStack, keyless_stack

__all__ = ["keyless_stack"]

FULCIO = "1.3.6.1.4.1.57264.1"


def unchecked(raw: str) -> IdentityToken:
    """A token as the client would send it, without the client-side early checks (to test the server's)."""
    return IdentityToken(Secret(raw), decode_claims(Secret(raw), "test"), "test")


def key_and_proof(challenge: str) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, key.sign(challenge.encode(), ec.ECDSA(hashes.SHA256()))


def der_utf8(value: bytes) -> str:
    """A DER UTF8String decoded from the format description (tag 0x0C, definite length), independently."""
    assert value[0] == 0x0C
    if value[1] < 0x80:
        length, start = value[1], 2
    else:
        count = value[1] & 0x7F
        length, start = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
    assert len(value) == start + length
    return value[start:].decode("utf-8")


def extension(certificate: x509.Certificate, suffix: str) -> bytes:
    value = certificate.extensions.get_extension_for_oid(x509.ObjectIdentifier(f"{FULCIO}.{suffix}")).value
    assert isinstance(value, x509.UnrecognizedExtension)
    return value.value


def assert_secret_free(error: ReleaseVectorError, secret: str) -> None:
    assert secret not in "\n".join([*error.lines(), error.hint or "", repr(error)])


# --- issuing ------------------------------------------------------------------------------------


def test_email_certificate(keyless_stack: KeylessStack) -> None:
    issuer = keyless_stack.email_issuer
    token = parse_identity_token(Secret(issuer.email_token(EMAIL)), "test")
    key, proof = key_and_proof(EMAIL)
    with keyless_stack.client() as client:
        issued = client.request_certificate(token, key.public_key(), proof)
    leaf = issued.leaf
    assert leaf.public_key() == key.public_key()
    assert leaf.subject == x509.Name([])
    assert subject_alternative_names(leaf) == [EMAIL]
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    assert ExtendedKeyUsageOID.CODE_SIGNING in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(minutes=10)
    assert extension(leaf, "1") == issuer.issuer.encode()  # raw bytes (deprecated form)
    assert der_utf8(extension(leaf, "8")) == issuer.issuer
    assert oidc_issuer(leaf) == issuer.issuer
    assert der_utf8(extension(leaf, "24")) == token.claims.subject
    assert issued.chain == (keyless_stack.fulcio.intermediate, keyless_stack.fulcio.root)
    assert issued.chain_pem == keyless_stack.fulcio.chain_pem()
    leaf.verify_directly_issued_by(keyless_stack.fulcio.intermediate)


def test_github_workflow_certificate_carries_the_workflow_claims(keyless_stack: KeylessStack) -> None:
    issuer = keyless_stack.github_issuer
    token = parse_identity_token(Secret(issuer.github_token()), "test")
    key, proof = key_and_proof(token.claims.subject)
    with keyless_stack.client() as client:
        leaf = client.request_certificate(token, key.public_key(), proof).leaf
    assert subject_alternative_names(leaf) == [f"https://github.com/{WORKFLOW.resolved_job_workflow_ref}"]
    assert WORKFLOW.certificate_identity == subject_alternative_names(leaf)[0]
    legacy = {"2": "push", "3": WORKFLOW.sha, "4": "release", "5": "metal-stack/releases", "6": "refs/tags/v0.22.19"}
    for suffix, value in legacy.items():
        assert extension(leaf, suffix) == value.encode(), suffix
    expected = {
        "8": issuer.issuer,
        "9": WORKFLOW.certificate_identity,
        "10": WORKFLOW.sha,
        "11": "github-hosted",
        "12": "https://github.com/metal-stack/releases",
        "13": WORKFLOW.sha,
        "14": "refs/tags/v0.22.19",
        "15": WORKFLOW.repository_id,
        "16": "https://github.com/metal-stack",
        "17": WORKFLOW.repository_owner_id,
        "18": "https://github.com/metal-stack/releases/.github/workflows/release.yml@refs/tags/v0.22.19",
        "19": WORKFLOW.sha,
        "20": "push",
        "21": f"https://github.com/metal-stack/releases/actions/runs/{WORKFLOW.run_id}/attempts/1",
        "22": "public",
        "24": WORKFLOW.subject,
    }
    for suffix, value in expected.items():
        assert der_utf8(extension(leaf, suffix)) == value, suffix


def test_detached_sct_answer_is_read_too(keyless_stack: KeylessStack) -> None:
    with OidcIssuer() as issuer, FulcioServer(response_format="detached") as fulcio:
        from pipeline.rehearsal.fulcio_server import TrustedIssuer

        fulcio.trust(TrustedIssuer(issuer.issuer, public_keys=(issuer.public_key,)))  # configured key, no JWKS
        token = parse_identity_token(Secret(issuer.email_token(EMAIL)), "test")
        key, proof = key_and_proof(EMAIL)
        with FulcioClient(fulcio.url) as client:
            issued = client.request_certificate(token, key.public_key(), proof)
        assert issued.leaf.public_key() == key.public_key() and issued.signed_certificate_timestamp is None


def test_trust_bundle(keyless_stack: KeylessStack) -> None:
    with keyless_stack.client() as client:
        assert client.trust_bundle() == [(keyless_stack.fulcio.intermediate, keyless_stack.fulcio.root)]


def test_sigstore_python_fulcio_client_gets_a_certificate_from_the_stand_in(keyless_stack: KeylessStack) -> None:
    from sigstore._internal.fulcio.client import FulcioClient as SigstoreFulcioClient
    from sigstore.oidc import IdentityToken as SigstoreIdentityToken

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    raw = keyless_stack.email_issuer.email_token(EMAIL)
    response = SigstoreFulcioClient(keyless_stack.fulcio.url).signing_cert.post(csr, SigstoreIdentityToken(raw))
    assert response.cert.public_key() == key.public_key()
    assert subject_alternative_names(response.cert) == [EMAIL]
    assert response.chain == [keyless_stack.fulcio.intermediate, keyless_stack.fulcio.root]


# --- refusals -----------------------------------------------------------------------------------


def refused(keyless_stack: KeylessStack, token: IdentityToken, challenge: str | None = None) -> ReleaseVectorError:
    key, proof = key_and_proof(challenge if challenge is not None else token.claims.proof_subject)
    before = len(keyless_stack.fulcio.requests)
    with keyless_stack.client() as client, pytest.raises(FulcioError) as caught:
        client.request_certificate(token, key.public_key(), proof)
    assert keyless_stack.fulcio.requests[before:] == [("POST", "/api/v2/signingCert", 400)]
    error = caught.value
    assert error.where == f"{keyless_stack.fulcio.url}/api/v2/signingCert"
    assert "\n" not in error.one_line()
    assert_secret_free(error, token.reveal())
    return error


def test_expired_token_is_refused(keyless_stack: KeylessStack) -> None:
    raw = keyless_stack.email_issuer.email_token(EMAIL, issued_at=time.time() - 3600)
    error = refused(keyless_stack, unchecked(raw))
    assert isinstance(error, FulcioAuthError) and error.exit_code == ExitCode.AUTH
    assert "Fulcio refused the identity token for release-manager@example.com (HTTP 400" in error.message
    assert "token is expired" in error.message


def test_token_not_yet_valid_is_refused(keyless_stack: KeylessStack) -> None:
    raw = keyless_stack.email_issuer.email_token(EMAIL, not_before=time.time() + 3600)
    assert "not valid yet" in refused(keyless_stack, unchecked(raw)).message


def test_wrong_audience_is_refused(keyless_stack: KeylessStack) -> None:
    raw = keyless_stack.email_issuer.email_token(EMAIL, audience="not-sigstore")
    error = refused(keyless_stack, unchecked(raw))
    assert isinstance(error, FulcioAuthError)
    assert "expected audience 'sigstore'" in error.message


def test_unknown_issuer_is_refused(keyless_stack: KeylessStack) -> None:
    with OidcIssuer() as stranger:
        error = refused(keyless_stack, unchecked(stranger.email_token(EMAIL)))
        assert f"the token's issuer {stranger.issuer!r} is not trusted" in error.message
    assert isinstance(error, FulcioAuthError)


def test_forged_token_for_a_trusted_issuer_is_refused(keyless_stack: KeylessStack) -> None:
    forger = ec.generate_private_key(ec.SECP256R1())
    raw = keyless_stack.email_issuer.issue_token(subject="x", email=EMAIL, signing_key=forger)
    error = refused(keyless_stack, unchecked(raw))
    assert isinstance(error, FulcioAuthError) and "signature does not verify" in error.message


def test_unverified_email_is_refused(keyless_stack: KeylessStack) -> None:
    raw = keyless_stack.email_issuer.email_token(EMAIL, email_verified=False)
    assert "email_verified claim was false" in refused(keyless_stack, unchecked(raw)).message


def test_bad_proof_of_possession_is_refused(keyless_stack: KeylessStack) -> None:
    token = parse_identity_token(Secret(keyless_stack.email_issuer.email_token(EMAIL)), "test")
    error = refused(keyless_stack, token, challenge="someone-else@example.com")
    assert not isinstance(error, FulcioAuthError) and error.exit_code == ExitCode.REGISTRY
    assert "The signature supplied in the request could not be verified" in error.message


def test_github_token_missing_workflow_claims_is_refused(keyless_stack: KeylessStack) -> None:
    raw = keyless_stack.github_issuer.issue_token(subject="repo:x/y:ref:refs/heads/main")
    assert "missing job_workflow_ref claim" in refused(keyless_stack, unchecked(raw)).message


def test_a_server_echoing_the_token_is_redacted() -> None:
    raw = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lzc3VlciIsInN1YiI6InMiLCJhdWQiOiJzaWdzdG9yZSIsImV4cCI6OX0.c2ln"
    token = unchecked(raw)

    def echo(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        echoed = body["credentials"]["oidcIdentityToken"]
        return httpx.Response(401, json={"code": 16, "message": f"bad token {echoed}"})

    key, proof = key_and_proof("s")
    client = FulcioClient("https://fulcio.example", transport=httpx.MockTransport(echo))
    with client, pytest.raises(FulcioAuthError, match=r"HTTP 401: bad token \[REDACTED\]") as caught:
        client.request_certificate(token, key.public_key(), proof)
    assert_secret_free(caught.value, raw)


def test_request_body_shape() -> None:
    raw = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lzc3VlciIsInN1YiI6InMiLCJhdWQiOiJzaWdzdG9yZSIsImV4cCI6OX0.c2ln"
    seen: list[dict[str, object]] = []

    def capture(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(503, json={"code": 14, "message": "unavailable"})

    key, proof = key_and_proof("s")
    client = FulcioClient("https://fulcio.example", transport=httpx.MockTransport(capture), sleep=lambda _s: None)
    with client, pytest.raises(FulcioError, match=r"Fulcio answered 503: unavailable \(after 4 attempts\)"):
        client.request_certificate(unchecked(raw), key.public_key(), proof)
    assert len(seen) == 4
    body = seen[0]
    assert body["credentials"] == {"oidcIdentityToken": raw}
    request = body["publicKeyRequest"]
    assert isinstance(request, dict)
    assert request["publicKey"]["algorithm"] == "ECDSA"
    assert request["publicKey"]["content"].startswith("-----BEGIN PUBLIC KEY-----")
    assert base64.b64decode(request["proofOfPossession"]) == proof


# --- network behaviour --------------------------------------------------------------------------


def test_retries_on_5xx_and_429_then_succeeds(keyless_stack: KeylessStack) -> None:
    token = parse_identity_token(Secret(keyless_stack.email_issuer.email_token(EMAIL)), "test")
    key, proof = key_and_proof(EMAIL)
    sleeps: list[float] = []
    keyless_stack.fulcio.inject_failures(1, status=503)
    keyless_stack.fulcio.inject_failures(1, status=429, retry_after="1")
    with keyless_stack.client(attempts=4, sleeps=sleeps) as client:
        assert client.request_certificate(token, key.public_key(), proof).leaf.public_key() == key.public_key()
    assert len(sleeps) == 2 and sleeps[1] >= 1.0


def test_unreachable_fulcio() -> None:
    client = FulcioClient("http://127.0.0.1:9", sleep=lambda _s: None)
    with client, pytest.raises(FulcioError, match=r"cannot connect to Fulcio \(after 4 attempts\)") as caught:
        client.trust_bundle()
    assert caught.value.exit_code == ExitCode.REGISTRY
    assert caught.value.where == "http://127.0.0.1:9/api/v2/trustBundle"


def test_fulcio_url_must_be_https_off_this_machine() -> None:
    with pytest.raises(InvalidInputError, match="plain HTTP"):
        check_fulcio_url("http://fulcio.example.com")
    with pytest.raises(InvalidInputError):
        check_fulcio_url("ftp://fulcio.example.com")
    assert str(check_fulcio_url("https://fulcio.sigstore.dev")) == "https://fulcio.sigstore.dev"
