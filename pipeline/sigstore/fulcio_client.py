"""A Fulcio v2 client: trade an OIDC identity token and a public key for a short-lived signing certificate.

``POST /api/v2/signingCert`` (fulcio.proto, ``CreateSigningCertificateRequest``)::

    {"credentials": {"oidcIdentityToken": "<jwt>"},
     "publicKeyRequest": {"publicKey": {"algorithm": "ECDSA", "content": "<PEM>"},
                          "proofOfPossession": "<base64 signature over the token's sub (e-mail tokens: email)>"}}

answers ``signedCertificateEmbeddedSct`` or ``signedCertificateDetachedSct`` with ``chain.certificates``
(PEM strings, leaf first, then intermediates, then the root). ``GET /api/v2/trustBundle`` answers
``{"chains": [{"certificates": [PEM…]}]}``.

Errors follow grpc-gateway's ``{"code", "message", "details"}``. Fulcio refuses a token with HTTP 400
(gRPC InvalidArgument) and the message "There was an error processing the identity token"; that, and
401/403, is a :class:`FulcioAuthError` (exit 4); anything else a :class:`FulcioError` (exit 5). Every
message is one line naming the URL, and never holds the token, even if a server echoes it.

Network behaviour as the Rekor client: explicit timeouts; bounded retries with backoff and jitter on
connection errors, timeouts, 408, 429 and 5xx, honouring ``Retry-After``. A repeated request only
costs a second certificate, so the POST is safe to repeat.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pipeline import __version__, jsonbounded
from pipeline.errors import FulcioAuthError as FulcioAuthError  # re-exported (lives in pipeline.errors)
from pipeline.errors import FulcioError as FulcioError
from pipeline.errors import InvalidInputError
from pipeline.http import (
    ClosingClient,
    Retryable,
    RetryPolicy,
    bare_url,
    check_service_url,
    describe_transport_error,
    exchange,
    json_service_client,
    parse_retry_after,
    request_sent,
    retry_delay,
    retrying,
)
from pipeline.sigstore.oidc import IdentityToken

DEFAULT_FULCIO_URL: Final = "https://fulcio.sigstore.dev"
SIGNING_CERT_PATH: Final = "/api/v2/signingCert"
TRUST_BUNDLE_PATH: Final = "/api/v2/trustBundle"
TOKEN_REFUSED_MESSAGE: Final = "There was an error processing the identity token"  # noqa: S105 (a message)
_RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
_MAX_ANSWER_BYTES: Final = 1024 * 1024
_REDACTED: Final = "[REDACTED]"


@dataclass(frozen=True)
class FulcioOptions:
    """How to reach Fulcio: timeouts (seconds), retries, an extra CA for a private instance."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retries: RetryPolicy = field(default_factory=RetryPolicy)
    cacert: Path | None = None
    user_agent: str = f"release-vector/{__version__}"


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class CertificateChain:
    """A signing certificate and the chain above it (intermediates then root), as Fulcio returned them."""

    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    signed_certificate_timestamp: bytes | None = field(default=None, repr=False)

    @property
    def leaf_pem(self) -> bytes:
        return _pem(self.leaf)

    @property
    def chain_pem(self) -> bytes:
        """Intermediates then root, PEM blocks one after the other (a PEM file)."""
        return b"".join(_pem(c) for c in self.chain)


def scrub_url(url: str | httpx.URL) -> str:
    """The URL without credentials or query, for messages."""
    return bare_url(url)


def check_fulcio_url(url: str) -> httpx.URL:
    """https, or http on this machine only (the embedded stand-in)."""
    return check_service_url(url, "Fulcio", "a Fulcio")


def proof_of_possession_algorithm(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str:
    """fulcio.proto's PublicKeyAlgorithm name (Fulcio infers it from the key; sent for completeness)."""
    return "ECDSA" if isinstance(public_key, ec.EllipticCurvePublicKey) else "RSA_PSS"


def signing_cert_request(
    token: IdentityToken, public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, proof_of_possession: bytes
) -> dict[str, object]:
    """The request body (holds the token: never log it)."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "credentials": {"oidcIdentityToken": token.reveal()},
        "publicKeyRequest": {
            "publicKey": {"algorithm": proof_of_possession_algorithm(public_key), "content": pem.decode("ascii")},
            "proofOfPossession": base64.b64encode(proof_of_possession).decode("ascii"),
        },
    }


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, _REDACTED)
    return text


def _server_message(response: httpx.Response, secrets: tuple[str, ...]) -> str:
    """grpc-gateway's ``message``, else a short text; one line, any secret redacted."""
    try:
        document = jsonbounded.loads(response.content, source=scrub_url(response.request.url), what="Fulcio's answer")
    except (json.JSONDecodeError, UnicodeDecodeError, InvalidInputError):
        document = None
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        text = document["message"]
    else:
        text = response.text[:300] if response.text else ""
    return " ".join(_redact(text, secrets).split())[:300]


def parse_certificate_chain(document: object, where: str) -> CertificateChain:
    """A ``SigningCertificate`` answer (embedded or detached SCT) as a CertificateChain."""
    if not isinstance(document, dict):
        raise FulcioError("Fulcio's answer is not a JSON object", where=where)
    holder = document.get("signedCertificateEmbeddedSct") or document.get("signedCertificateDetachedSct")
    chain = holder.get("chain") if isinstance(holder, dict) else None
    pems = chain.get("certificates") if isinstance(chain, dict) else None
    if not isinstance(pems, list) or not all(isinstance(p, str) for p in pems):
        raise FulcioError("Fulcio's answer has no certificate chain", where=where)
    if len(pems) < 2:
        raise FulcioError(f"Fulcio's certificate chain is too short ({len(pems)} certificate)", where=where)
    try:
        certificates = [x509.load_pem_x509_certificate(p.encode("ascii")) for p in pems]
    except (ValueError, UnicodeEncodeError):
        raise FulcioError("Fulcio's answer holds a certificate that is not PEM", where=where) from None
    sct: bytes | None = None
    raw_sct = holder.get("signedCertificateTimestamp") if isinstance(holder, dict) else None
    if isinstance(raw_sct, str) and raw_sct:
        try:
            sct = base64.b64decode(raw_sct, validate=True)
        except ValueError:
            raise FulcioError("Fulcio's detached SCT is not base64", where=where) from None
    return CertificateChain(certificates[0], tuple(certificates[1:]), sct)


class FulcioClient(ClosingClient):
    """Requests signing certificates from one Fulcio instance. A context manager."""

    def __init__(
        self,
        url: str = DEFAULT_FULCIO_URL,
        options: FulcioOptions | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._base = check_fulcio_url(url)
        self.url = scrub_url(self._base).rstrip("/")
        self.options = options or FulcioOptions()
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._http = json_service_client(
            service="Fulcio", cacert=self.options.cacert, user_agent=self.options.user_agent,
            connect_timeout=self.options.connect_timeout, read_timeout=self.options.read_timeout, transport=transport,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"FulcioClient(url={self.url!r})"

    def request_certificate(
        self,
        token: IdentityToken,
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
        proof_of_possession: bytes,
    ) -> CertificateChain:
        """The signing certificate for ``public_key`` and the identity of ``token``, with its chain."""
        url = f"{self.url}{SIGNING_CERT_PATH}"
        body = json.dumps(signing_cert_request(token, public_key, proof_of_possession)).encode()
        secrets = (token.reveal(),)
        response = self._send("POST", url, body, secrets)
        if response.status_code != 200:
            message = _server_message(response, secrets)
            detail = f": {message}" if message else ""
            if response.status_code in (401, 403) or (
                response.status_code == 400 and message.startswith(TOKEN_REFUSED_MESSAGE)
            ):
                raise FulcioAuthError(
                    f"Fulcio refused the identity token for {token.claims.identity}"
                    f" (HTTP {response.status_code}{detail})",
                    where=url,
                    hint=f"the token comes from {token.source}; does Fulcio trust its issuer (audience sigstore)?",
                )
            raise FulcioError(f"Fulcio refused the certificate request: HTTP {response.status_code}{detail}", where=url)
        return parse_certificate_chain(self._json(response, url), url)

    def trust_bundle(self) -> list[tuple[x509.Certificate, ...]]:
        """Every chain (intermediates then root) this Fulcio issues under."""
        url = f"{self.url}{TRUST_BUNDLE_PATH}"
        response = self._send("GET", url, None, ())
        if response.status_code != 200:
            message = _server_message(response, ())
            raise FulcioError(
                f"fetching Fulcio's trust bundle failed: HTTP {response.status_code}"
                + (f": {message}" if message else ""),
                where=url,
            )
        document = self._json(response, url)
        chains = document.get("chains") if isinstance(document, dict) else None
        if not isinstance(chains, list):
            raise FulcioError("Fulcio's trust bundle has no chains", where=url)
        result: list[tuple[x509.Certificate, ...]] = []
        for chain in chains:
            pems = chain.get("certificates") if isinstance(chain, dict) else None
            if not isinstance(pems, list) or not pems or not all(isinstance(p, str) for p in pems):
                raise FulcioError("Fulcio's trust bundle holds a chain without certificates", where=url)
            try:
                result.append(tuple(x509.load_pem_x509_certificate(p.encode("ascii")) for p in pems))
            except (ValueError, UnicodeEncodeError):
                raise FulcioError("Fulcio's trust bundle holds a certificate that is not PEM", where=url) from None
        return result

    # --- HTTP ----------------------------------------------------------------------------------

    def _json(self, response: httpx.Response, where: str) -> object:
        try:
            return jsonbounded.loads(response.content, source=where, what="Fulcio's answer")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise FulcioError("Fulcio's answer is not JSON", where=where) from None
        except InvalidInputError as error:
            raise FulcioError(error.message, where=where) from None

    def _send(self, method: str, url: str, content: bytes | None, secrets: tuple[str, ...]) -> httpx.Response:
        headers = {"Content-Type": "application/json"} if content is not None else None

        def attempt() -> httpx.Response:
            try:
                response = exchange(
                    self._http,
                    self._http.build_request(method, url, content=content, headers=headers),
                    _MAX_ANSWER_BYTES,
                    fail=lambda message: FulcioError(message, where=url),
                    what="Fulcio's answer",
                    service="Fulcio",
                )
            except httpx.TransportError as exc:
                raise Retryable(describe_transport_error(exc, "Fulcio"), sent=request_sent(exc)) from None
            if response.status_code not in _RETRY_STATUSES:
                return response
            message = _server_message(response, secrets)
            raise Retryable(
                f"Fulcio answered {response.status_code}" + (f": {message}" if message else ""),
                parse_retry_after(response.headers.get("Retry-After")),
            )

        return retrying(
            attempt,
            self.options.retries,
            who="Fulcio",
            fail=lambda message: FulcioError(message, where=url),
            sleep=self._sleep,
            delay=self._delay,
        )

    def _delay(self, number: int, retry_after: float | None) -> float:
        return retry_delay(self.options.retries, number, retry_after, self._rng)
