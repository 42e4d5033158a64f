"""An embedded certificate authority speaking Fulcio's v2 HTTP API (rehearsals and tests; trust it nowhere else).

==============================  ===================================================================================
``POST /api/v2/signingCert``    ``CreateSigningCertificateRequest`` with ``publicKeyRequest`` (PEM key + proof of
                                possession) or ``certificateSigningRequest`` (base64 of a PEM CSR); the token in
                                ``credentials.oidcIdentityToken`` or ``Authorization: Bearer``. 200 with
                                ``signedCertificateEmbeddedSct`` (or ``…DetachedSct``) ``{chain:{certificates}}``:
                                leaf, intermediate, root.
``GET /api/v2/trustBundle``     ``{"chains":[{"certificates":[intermediate, root]}]}``
``GET /api/v2/configuration``   the trusted issuers, audience and challenge claim of each
==============================  ===================================================================================

The token is checked as Fulcio checks it: only configured issuers; the signature against the issuer's
JWKS (fetched over HTTP through its ``/.well-known/openid-configuration``) or configured keys; ``aud``
must hold ``sigstore``; ``exp`` is enforced, ``nbf`` with go-oidc's five-minute skew. Failures are HTTP 400
with gRPC code 3 and Fulcio's message ("There was an error processing the identity token"), followed,
unlike Fulcio, by the reason (Fulcio keeps it in its server log; a stand-in may say it). The proof of
possession must be a signature by the submitted key over the e-mail (e-mail issuers) or the ``sub``
(GitHub workflow issuers).

The leaf is what Fulcio issues: empty subject, SAN (critical) the e-mail or, for GitHub workflow tokens,
``https://github.com/<job_workflow_ref>``; key usage digitalSignature (critical); EKU codeSigning; SKI/AKI;
the Fulcio extensions — ``1.3.6.1.4.1.57264.1.1`` issuer as raw bytes, the deprecated GitHub ``.1.2``–``.1.6``
as raw bytes, ``.1.8`` issuer and ``.1.9``–``.1.22``/``.1.24`` as DER UTF8String — valid ten minutes from the
(injectable) clock. No SCT: there is no CT log here.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pipeline.cosign.sct import spki_sha256
from pipeline.rehearsal.standin_http import Request, Response, StandinServer, json_response
from pipeline.sigstore.fulcio_client import SIGNING_CERT_PATH, TOKEN_REFUSED_MESSAGE, TRUST_BUNDLE_PATH
from pipeline.sigstore.jose import JwsPublicKey, MalformedToken, decode_jws, key_from_jwk, verify_jws
from pipeline.sigstore.oidc import SIGSTORE_AUDIENCE

CONFIGURATION_PATH: Final = "/api/v2/configuration"
CERTIFICATE_VALIDITY: Final = timedelta(minutes=10)
NBF_CLOCK_SKEW_SECONDS: Final = 300  # go-oidc's allowedClockSkew
INVALID_SIGNATURE_MESSAGE: Final = "The signature supplied in the request could not be verified"
INVALID_PUBLIC_KEY_MESSAGE: Final = "The public key supplied in the request could not be parsed"
INSECURE_PUBLIC_KEY_MESSAGE: Final = "The public key supplied in the request is insecure"
INVALID_CSR_MESSAGE: Final = "The certificate signing request could not be parsed"
GITHUB_URL: Final = "https://github.com/"
_GRPC_CODES: Final = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 413: 3, 429: 8, 500: 13, 501: 12, 503: 14, 504: 4}

_FULCIO_ARC: Final = "1.3.6.1.4.1.57264.1"
OID_ISSUER_V1: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.1")
OID_GITHUB_WORKFLOW_TRIGGER: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.2")
OID_GITHUB_WORKFLOW_SHA: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.3")
OID_GITHUB_WORKFLOW_NAME: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.4")
OID_GITHUB_WORKFLOW_REPOSITORY: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.5")
OID_GITHUB_WORKFLOW_REF: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.6")
OID_ISSUER_V2: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.8")
OID_BUILD_SIGNER_URI: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.9")
OID_BUILD_SIGNER_DIGEST: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.10")
OID_RUNNER_ENVIRONMENT: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.11")
OID_SOURCE_REPOSITORY_URI: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.12")
OID_SOURCE_REPOSITORY_DIGEST: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.13")
OID_SOURCE_REPOSITORY_REF: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.14")
OID_SOURCE_REPOSITORY_IDENTIFIER: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.15")
OID_SOURCE_REPOSITORY_OWNER_URI: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.16")
OID_SOURCE_REPOSITORY_OWNER_IDENTIFIER: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.17")
OID_BUILD_CONFIG_URI: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.18")
OID_BUILD_CONFIG_DIGEST: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.19")
OID_BUILD_TRIGGER: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.20")
OID_RUN_INVOCATION_URI: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.21")
OID_SOURCE_REPOSITORY_VISIBILITY: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.22")
OID_DEPLOYMENT_ENVIRONMENT: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.23")
OID_TOKEN_SUBJECT: Final = x509.ObjectIdentifier(f"{_FULCIO_ARC}.24")

IssuerKind = Literal["email", "github-workflow"]
_GITHUB_REQUIRED_CLAIMS: Final = (
    "job_workflow_ref",
    "sha",
    "event_name",
    "repository",
    "workflow",
    "ref",
    "runner_environment",
)


def der_utf8_string(text: str) -> bytes:
    """DER of a UTF8String (tag 0x0C), short or long length form."""
    data = text.encode("utf-8")
    length = len(data)
    if length < 0x80:
        header = bytes([0x0C, length])
    else:
        size = (length.bit_length() + 7) // 8
        header = bytes([0x0C, 0x80 | size]) + length.to_bytes(size, "big")
    return header + data


@dataclass(frozen=True)
class TrustedIssuer:
    """An OIDC issuer the stand-in accepts: its ``iss``, the kind of identity, and (optionally) its keys.

    Without ``public_keys`` the keys come from the issuer's JWKS, found through
    ``<issuer>/.well-known/openid-configuration`` over HTTP.
    """

    issuer: str
    kind: IssuerKind = "email"
    public_keys: tuple[JwsPublicKey, ...] = ()
    audience: str = SIGSTORE_AUDIENCE

    @property
    def challenge_claim(self) -> str:
        return "email" if self.kind == "email" else "sub"


def _new_p256_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.dev"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True)
class TestCertificateAuthority:
    """A root and an intermediate (ECDSA P-256) named like Sigstore's; the intermediate signs leaves."""

    __test__ = False  # not a pytest class

    root: x509.Certificate
    intermediate: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey = field(repr=False)
    # The Certificate Transparency log every leaf is "logged" in: its SCT is embedded in the leaf.
    ct_log_key: ec.EllipticCurvePrivateKey = field(repr=False, default_factory=lambda: _new_p256_key())

    def ct_log_public_key_pem(self) -> bytes:
        """The CT log's public key, what a verifier passes as --ct-log-public-key."""
        return self.ct_log_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def generate(cls, *, now: datetime | None = None, root_name: str = "sigstore") -> TestCertificateAuthority:
        moment = now or datetime.now(UTC)
        not_before, not_after = moment - timedelta(days=1), moment + timedelta(days=3650)
        root_key = ec.generate_private_key(ec.SECP256R1())
        intermediate_key = ec.generate_private_key(ec.SECP256R1())
        ca_usage = x509.KeyUsage(
            digital_signature=False,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
        root = (
            x509.CertificateBuilder()
            .subject_name(_name(root_name))
            .issuer_name(_name(root_name))
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(ca_usage, critical=True)
            .add_extension(root_ski, critical=False)
            .sign(root_key, hashes.SHA256())
        )
        intermediate = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{root_name}-intermediate"))
            .issuer_name(root.subject)
            .public_key(intermediate_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(ca_usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(intermediate_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        return cls(root, intermediate, intermediate_key)


SCT_LIST_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_TLS_SHA256, _TLS_ECDSA = 4, 3  # RFC 5246 HashAlgorithm.sha256, SignatureAlgorithm.ecdsa


def _der_octet_string(content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return b"\x04" + bytes([length]) + content
    size = (length.bit_length() + 7) // 8
    return b"\x04" + bytes([0x80 | size]) + length.to_bytes(size, "big") + content


def embedded_sct_list(
    log_key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate, precertificate: x509.Certificate, now: float
) -> bytes:
    """The SCT list extension's value (a DER OCTET STRING of RFC 6962's SignedCertificateTimestampList)
    holding one v1 SCT by ``log_key`` over ``precertificate`` (its TBS, which the final certificate's
    TBS minus this extension equals)."""
    log_id = spki_sha256(log_key.public_key())
    timestamp = int(now * 1000)
    issuer_key = issuer.public_key()
    assert isinstance(issuer_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    tbs = precertificate.tbs_certificate_bytes
    signed = b"".join(
        (
            struct.pack(">BBQH", 0, 0, timestamp, 1),  # v1, certificate_timestamp, timestamp, precert_entry
            spki_sha256(issuer_key),
            len(tbs).to_bytes(3, "big"),
            tbs,
            b"\x00\x00",  # no extensions
        )
    )
    signature = log_key.sign(signed, ec.ECDSA(hashes.SHA256()))
    sct = b"".join(
        (
            b"\x00",
            log_id,
            struct.pack(">QH", timestamp, 0),
            bytes([_TLS_SHA256, _TLS_ECDSA]),
            len(signature).to_bytes(2, "big"),
            signature,
        )
    )
    serialized = len(sct).to_bytes(2, "big") + sct
    return _der_octet_string(len(serialized).to_bytes(2, "big") + serialized)


@dataclass(frozen=True)
class Principal:
    """Who the token proves: the SAN, the proof-of-possession challenge and the extensions to embed."""

    challenge: str
    email: str | None
    uri: str | None
    extensions: tuple[tuple[x509.ObjectIdentifier, bytes], ...]


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _token_refused(reason: str) -> _Refused:
    return _Refused(400, f"{TOKEN_REFUSED_MESSAGE}: {reason}")


def _claim_text(claims: Mapping[str, object], name: str) -> str:
    value = claims.get(name)
    return value if isinstance(value, str) else ""


def _email_principal(issuer: str, claims: Mapping[str, object]) -> Principal:
    email = _claim_text(claims, "email")
    if not email:
        raise _token_refused("the token has no email claim")
    if claims.get("email_verified") is not True:
        raise _token_refused("email_verified claim was false")
    if "@" not in email.strip("@"):
        raise _token_refused("email address is not valid")
    subject = _claim_text(claims, "sub")
    extensions = [(OID_ISSUER_V1, issuer.encode()), (OID_ISSUER_V2, der_utf8_string(issuer))]
    if subject:
        extensions.append((OID_TOKEN_SUBJECT, der_utf8_string(subject)))
    return Principal(email, email, None, tuple(extensions))


def _github_principal(issuer: str, claims: Mapping[str, object]) -> Principal:
    for name in _GITHUB_REQUIRED_CLAIMS:
        if not _claim_text(claims, name):
            raise _token_refused(f"missing {name} claim in ID token")
    c = {name: _claim_text(claims, name) for name in claims}
    signer_uri = GITHUB_URL + c["job_workflow_ref"]
    raw = [
        (OID_ISSUER_V1, issuer),
        (OID_GITHUB_WORKFLOW_TRIGGER, c["event_name"]),
        (OID_GITHUB_WORKFLOW_SHA, c["sha"]),
        (OID_GITHUB_WORKFLOW_NAME, c["workflow"]),
        (OID_GITHUB_WORKFLOW_REPOSITORY, c["repository"]),
        (OID_GITHUB_WORKFLOW_REF, c["ref"]),
    ]
    run_uri = ""
    if c.get("run_id") and c.get("run_attempt"):
        run_uri = f"{GITHUB_URL}{c['repository']}/actions/runs/{c['run_id']}/attempts/{c['run_attempt']}"
    owner = c.get("repository_owner", "")
    workflow_ref = c.get("workflow_ref", "")
    encoded = [
        (OID_ISSUER_V2, issuer),
        (OID_BUILD_SIGNER_URI, signer_uri),
        (OID_BUILD_SIGNER_DIGEST, c.get("job_workflow_sha", "")),
        (OID_RUNNER_ENVIRONMENT, c["runner_environment"]),
        (OID_SOURCE_REPOSITORY_URI, GITHUB_URL + c["repository"]),
        (OID_SOURCE_REPOSITORY_DIGEST, c["sha"]),
        (OID_SOURCE_REPOSITORY_REF, c["ref"]),
        (OID_SOURCE_REPOSITORY_IDENTIFIER, c.get("repository_id", "")),
        (OID_SOURCE_REPOSITORY_OWNER_URI, GITHUB_URL + owner if owner else ""),
        (OID_SOURCE_REPOSITORY_OWNER_IDENTIFIER, c.get("repository_owner_id", "")),
        (OID_BUILD_CONFIG_URI, GITHUB_URL + workflow_ref if workflow_ref else ""),
        (OID_BUILD_CONFIG_DIGEST, c.get("workflow_sha", "")),
        (OID_BUILD_TRIGGER, c["event_name"]),
        (OID_RUN_INVOCATION_URI, run_uri),
        (OID_SOURCE_REPOSITORY_VISIBILITY, c.get("repository_visibility", "")),
        (OID_DEPLOYMENT_ENVIRONMENT, c.get("environment", "")),
        (OID_TOKEN_SUBJECT, c.get("sub", "")),
    ]
    extensions = [(oid, value.encode()) for oid, value in raw if value]
    extensions += [(oid, der_utf8_string(value)) for oid, value in encoded if value]
    return Principal(c.get("sub", ""), None, signer_uri, tuple(extensions))


def _load_public_key(content: object) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    if not isinstance(content, str) or not content:
        raise _Refused(400, INVALID_PUBLIC_KEY_MESSAGE)
    try:
        key = serialization.load_pem_public_key(content.encode("ascii"))
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
        raise _Refused(400, INVALID_PUBLIC_KEY_MESSAGE) from None
    return _good_key(key)


def _good_key(key: object) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1 | ec.SECP521R1):
        return key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return key
    raise _Refused(400, INSECURE_PUBLIC_KEY_MESSAGE)


def _verifies(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, signature: bytes, message: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            digest: hashes.HashAlgorithm = hashes.SHA256()
            if isinstance(key.curve, ec.SECP384R1):
                digest = hashes.SHA384()
            elif isinstance(key.curve, ec.SECP521R1):
                digest = hashes.SHA512()
            key.verify(signature, message, ec.ECDSA(digest))
        else:
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


class FulcioServer(StandinServer):
    """The embedded Fulcio on 127.0.0.1. ``clock`` dates the certificates, ``token_clock`` checks tokens."""

    thread_name = "release-vector-fulcio"

    def __init__(
        self,
        issuers: Sequence[TrustedIssuer] = (),
        *,
        ca: TestCertificateAuthority | None = None,
        clock: Callable[[], float] = time.time,
        token_clock: Callable[[], float] = time.time,
        response_format: Literal["embedded", "detached"] = "embedded",
        jwks_timeout: float = 5.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self._clock = clock
        self._token_clock = token_clock
        self.ca = ca or TestCertificateAuthority.generate(now=datetime.fromtimestamp(clock(), UTC))
        self.response_format = response_format
        self._jwks_timeout = jwks_timeout
        self._lock = threading.Lock()
        self._issuers: dict[str, TrustedIssuer] = {i.issuer: i for i in issuers}
        self._jwks_cache: dict[str, dict[object, tuple[JwsPublicKey, ...]]] = {}
        self.issued: list[x509.Certificate] = []

    def __repr__(self) -> str:  # the CA key never shows
        url = self.url if self.running else None
        return f"FulcioServer(url={url!r}, issuers={sorted(self._issuers)!r})"

    def trust(self, issuer: TrustedIssuer) -> None:
        """Accept tokens from one more issuer (e.g. an OIDC stand-in started after this server)."""
        with self._lock:
            self._issuers[issuer.issuer] = issuer
            self._jwks_cache.pop(issuer.issuer, None)

    # --- trust material ----------------------------------------------------------------------------

    @property
    def root(self) -> x509.Certificate:
        return self.ca.root

    @property
    def intermediate(self) -> x509.Certificate:
        return self.ca.intermediate

    def roots_pem(self) -> bytes:
        return self.ca.root.public_bytes(serialization.Encoding.PEM)

    def intermediates_pem(self) -> bytes:
        return self.ca.intermediate.public_bytes(serialization.Encoding.PEM)

    def ct_log_public_key_pem(self) -> bytes:
        """The key of the CT log whose SCT every issued certificate embeds (a verifier's --ct-log-public-key)."""
        return self.ca.ct_log_public_key_pem()

    def chain_pem(self) -> bytes:
        """Intermediate then root: what a leaf's chain holds."""
        return self.intermediates_pem() + self.roots_pem()

    # --- HTTP -------------------------------------------------------------------------------------

    def error_response(self, status: int, message: str) -> Response:
        return json_response(status, {"code": _GRPC_CODES.get(status, 2), "message": message, "details": []})

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if path == SIGNING_CERT_PATH:
            if request.method != "POST":
                return self.error_response(405, "Method Not Allowed")
            try:
                return json_response(200, self._signing_cert(request))
            except _Refused as refused:
                return self.error_response(refused.status, refused.message)
        if path == TRUST_BUNDLE_PATH and request.method in ("GET", "HEAD"):
            pems = [self.intermediates_pem().decode(), self.roots_pem().decode()]
            return json_response(200, {"chains": [{"certificates": pems}]})
        if path == CONFIGURATION_PATH and request.method in ("GET", "HEAD"):
            with self._lock:
                issuers = list(self._issuers.values())
            return json_response(
                200,
                {
                    "issuers": [
                        {
                            "issuerUrl": i.issuer,
                            "audience": i.audience,
                            "challengeClaim": i.challenge_claim,
                            "issuerType": i.kind,
                        }
                        for i in issuers
                    ]
                },
            )
        return self.error_response(404, "Not Found")

    def _signing_cert(self, request: Request) -> dict[str, object]:
        try:
            document = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _Refused(400, "the request body is not JSON") from None
        if not isinstance(document, dict):
            raise _Refused(400, "the request body is not a JSON object")
        credentials = document.get("credentials")
        token = credentials.get("oidcIdentityToken") if isinstance(credentials, dict) else None
        if not isinstance(token, str) or not token:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else ""
        principal = self._authenticate(token)
        public_key = self._possessed_key(document, principal)
        leaf = self._issue(public_key, principal)
        pems = [c.public_bytes(serialization.Encoding.PEM).decode() for c in (leaf, self.ca.intermediate, self.ca.root)]
        key = "signedCertificateEmbeddedSct" if self.response_format == "embedded" else "signedCertificateDetachedSct"
        return {key: {"chain": {"certificates": pems}}}

    def _authenticate(self, token: str) -> Principal:
        if not token:
            raise _token_refused("no identity token in the request")
        try:
            decoded = decode_jws(token)
        except MalformedToken as exc:
            raise _token_refused(f"the token is not a JWT ({exc})") from None
        claims = decoded.claims
        issuer_url = claims.get("iss")
        with self._lock:
            issuer = self._issuers.get(issuer_url) if isinstance(issuer_url, str) else None
        if issuer is None:
            raise _token_refused(f"the token's issuer {issuer_url!r} is not trusted")
        if not any(verify_jws(decoded, key) for key in self._keys(issuer, decoded.header.get("kid"))):
            raise _token_refused("the token's signature does not verify with the issuer's keys")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
        if issuer.audience not in audiences:
            raise _token_refused(f"expected audience {issuer.audience!r}, got {audiences!r}")
        now = self._token_clock()
        expiry = claims.get("exp")
        if not isinstance(expiry, int | float) or isinstance(expiry, bool):
            raise _token_refused("the token has no exp claim")
        if now > expiry:
            moment = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            raise _token_refused(f"token is expired (exp {moment})")
        not_before = claims.get("nbf")
        numeric = isinstance(not_before, int | float) and not isinstance(not_before, bool)
        if numeric and isinstance(not_before, int | float) and now + NBF_CLOCK_SKEW_SECONDS < not_before:
            raise _token_refused("token is not valid yet (nbf)")
        if issuer.kind == "email":
            return _email_principal(issuer.issuer, claims)
        return _github_principal(issuer.issuer, claims)

    def _keys(self, issuer: TrustedIssuer, kid: object) -> tuple[JwsPublicKey, ...]:
        """The issuer's configured keys, else its JWKS keys with ``kid`` (all when the token names none).

        The JWKS is cached and fetched again when a token names a key it does not hold (key rotation).
        """
        if issuer.public_keys:
            return issuer.public_keys
        with self._lock:
            cached = self._jwks_cache.get(issuer.issuer)
        if cached is None or (kid is not None and kid not in cached):
            cached = self._fetch_jwks(issuer.issuer)
            with self._lock:
                self._jwks_cache[issuer.issuer] = cached
        if kid is None:
            return tuple(key for keys in cached.values() for key in keys)
        return cached.get(kid, ()) + cached.get(None, ())

    def _fetch_jwks(self, issuer: str) -> dict[object, tuple[JwsPublicKey, ...]]:
        try:
            with httpx.Client(timeout=self._jwks_timeout, trust_env=False, follow_redirects=False) as http:
                discovery = http.get(issuer.rstrip("/") + "/.well-known/openid-configuration").json()
                if not isinstance(discovery, dict) or discovery.get("issuer") != issuer:
                    raise _token_refused("the issuer's discovery document names another issuer")
                jwks_uri = discovery.get("jwks_uri")
                if not isinstance(jwks_uri, str):
                    raise _token_refused("the issuer's discovery document has no jwks_uri")
                jwks = http.get(jwks_uri).json()
        except (httpx.HTTPError, json.JSONDecodeError, UnicodeDecodeError):
            raise _token_refused("cannot fetch the issuer's keys") from None
        entries = jwks.get("keys") if isinstance(jwks, dict) else None
        keys: dict[object, tuple[JwsPublicKey, ...]] = {}
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            try:
                key = key_from_jwk(entry)
            except MalformedToken:
                continue
            kid = entry.get("kid") if isinstance(entry.get("kid"), str) else None
            keys[kid] = (*keys.get(kid, ()), key)
        return keys

    def _possessed_key(
        self, document: Mapping[str, object], principal: Principal
    ) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
        csr_b64 = document.get("certificateSigningRequest")
        if isinstance(csr_b64, str) and csr_b64:
            try:
                csr = x509.load_pem_x509_csr(base64.b64decode(csr_b64, validate=True))
            except (ValueError, binascii.Error):
                raise _Refused(400, INVALID_CSR_MESSAGE) from None
            key = _good_key(csr.public_key())
            if not csr.is_signature_valid:
                raise _Refused(400, INVALID_SIGNATURE_MESSAGE)
            return key
        request = document.get("publicKeyRequest")
        public_key = request.get("publicKey") if isinstance(request, dict) else None
        key = _load_public_key(public_key.get("content") if isinstance(public_key, dict) else None)
        proof = request.get("proofOfPossession") if isinstance(request, dict) else None
        try:
            signature = base64.b64decode(proof, validate=True) if isinstance(proof, str) else b""
        except (ValueError, binascii.Error):
            signature = b""
        if not signature or not _verifies(key, signature, principal.challenge.encode("utf-8")):
            raise _Refused(400, INVALID_SIGNATURE_MESSAGE)
        return key

    def _issue(
        self, public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, principal: Principal
    ) -> x509.Certificate:
        not_before = datetime.fromtimestamp(self._clock(), UTC).replace(microsecond=0)
        names: list[x509.GeneralName] = []
        if principal.email is not None:
            names.append(x509.RFC822Name(principal.email))
        if principal.uri is not None:
            names.append(x509.UniformResourceIdentifier(principal.uri))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.ca.intermediate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_before + CERTIFICATE_VALIDITY)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca.intermediate_key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(names), critical=True)
        )
        for oid, value in principal.extensions:
            builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
        # As Fulcio: log the precertificate (here: sign an SCT over it) and embed the SCT, last.
        precertificate = builder.sign(self.ca.intermediate_key, hashes.SHA256())
        sct_list = embedded_sct_list(self.ca.ct_log_key, self.ca.intermediate, precertificate, self._clock())
        builder = builder.add_extension(x509.UnrecognizedExtension(SCT_LIST_OID, sct_list), critical=False)
        certificate = builder.sign(self.ca.intermediate_key, hashes.SHA256())
        with self._lock:
            self.issued.append(certificate)
        return certificate
