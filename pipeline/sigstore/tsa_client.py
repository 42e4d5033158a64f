"""An RFC 3161 timestamp authority client: a signed timestamp over a signature, checked before it is kept.

``POST <url>`` with ``Content-Type: application/timestamp-query`` and a DER ``TimeStampReq`` (sha256
message imprint of the signature bytes, a random nonce, certReq), as cosign and sigstore-go ask Sigstore's
timestamp-authority (``https://timestamp.sigstore.dev/api/v1/timestamp``). The answer (a DER
``TimeStampResp``, at most 1 MiB) must be granted, carry our nonce and imprint, and verify with a trusted
TSA chain (:func:`pipeline.cosign.timestamp.verify_timestamp`): the public-good TSA of the shipped trusted
root for the public-good URL, the chain a TSA on this machine serves at ``/certchain`` (rehearsals, tests),
else the chain given. Every failure is one :class:`~pipeline.errors.TransparencyLogError` (exit 5) naming
the URL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final

import httpx
from cryptography import x509
from rfc3161_client import HashAlgorithm, TimestampRequestBuilder, decode_timestamp_response
from rfc3161_client import VerificationError as Rfc3161Error

from pipeline import __version__
from pipeline.cosign.timestamp import TimestampAuthority, verify_timestamp
from pipeline.errors import ReleaseVectorError, TransparencyLogError
from pipeline.http import (
    ClosingClient,
    Retryable,
    RetryPolicy,
    Timeouts,
    bare_url,
    check_service_url,
    describe_transport_error,
    exchange,
    http_client,
    is_loopback_host,
    parse_retry_after,
    request_sent,
    retry_delay,
    retrying,
    ssl_context,
)

DEFAULT_TSA_URL: Final = "https://timestamp.sigstore.dev/api/v1/timestamp"
QUERY_TYPE: Final = "application/timestamp-query"
_MAX_ANSWER_BYTES: Final = 1024 * 1024
_RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})


def check_tsa_url(url: str) -> httpx.URL:
    return check_service_url(url, "timestamp authority", "a timestamp authority")


class TimestampClient(ClosingClient):
    """Asks one TSA for timestamps and checks each answer against ``authorities``. A context manager."""

    def __init__(
        self,
        url: str,
        authorities: Sequence[TimestampAuthority],
        *,
        retries: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._url = check_tsa_url(url)
        self.url = bare_url(self._url)
        self.authorities = tuple(authorities)
        self._retries = retries or RetryPolicy()
        self._sleep = sleep
        self._http = http_client(
            verify=ssl_context(None, "the CA certificate file is not a readable PEM file"),
            timeout=Timeouts(connect=10.0, read=30.0, write=30.0, pool=10.0).to_httpx(),
            headers={"User-Agent": f"release-vector/{__version__}", "Accept": "application/timestamp-reply"},
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"TimestampClient(url={self.url!r})"

    def certificate_chain(self) -> list[x509.Certificate]:
        """``GET <url>/certchain``: the chain a TSA serves (trusted only for a TSA on this machine)."""
        response = self._send("GET", f"{self.url}/certchain", None)
        if response.status_code != 200:
            raise TransparencyLogError(f"the timestamp authority's chain: HTTP {response.status_code}", where=self.url)
        try:
            return x509.load_pem_x509_certificates(response.content)
        except ValueError:
            raise TransparencyLogError("the timestamp authority's chain is not PEM", where=self.url) from None

    def timestamp(self, signature: bytes) -> bytes:
        """A verified ``TimeStampResp`` (DER) over ``signature``: what a bundle's ``signedTimestamp`` holds."""
        request = (
            TimestampRequestBuilder().hash_algorithm(HashAlgorithm.SHA256).data(signature).nonce(nonce=True)
            .cert_request(cert_request=True).build()
        )  # fmt: skip
        response = self._send("POST", self.url, request.as_bytes())
        if response.status_code not in (200, 201):
            raise TransparencyLogError(
                f"the timestamp authority refused the request: HTTP {response.status_code}", where=self.url
            )
        try:
            decoded = decode_timestamp_response(response.content)
        except (ValueError, Rfc3161Error):
            raise TransparencyLogError(
                "the timestamp authority's answer is not a TimeStampResp", where=self.url
            ) from None
        if decoded.tst_info.nonce != request.nonce:
            raise TransparencyLogError(
                "the timestamp authority's answer is not for our request (another nonce)", where=self.url
            )
        try:
            verify_timestamp(response.content, signature, self.authorities, self.url)
        except ReleaseVectorError as error:
            raise TransparencyLogError(
                f"the timestamp authority's answer does not verify: {error.message}", where=self.url
            ) from None
        return response.content

    def _send(self, method: str, url: str, content: bytes | None) -> httpx.Response:
        headers = {"Content-Type": QUERY_TYPE} if content is not None else None

        def fail(message: str) -> TransparencyLogError:
            return TransparencyLogError(message, where=bare_url(url))

        def attempt() -> httpx.Response:
            try:
                response = exchange(self._http, self._http.build_request(method, url, content=content, headers=headers),
                                    _MAX_ANSWER_BYTES, fail=fail, what="the timestamp",
                                    service="the timestamp authority")  # fmt: skip
            except httpx.TransportError as exc:
                reason = describe_transport_error(exc, "the timestamp authority")
                raise Retryable(reason, sent=request_sent(exc)) from None
            if response.status_code in _RETRY_STATUSES:
                raise Retryable(f"the timestamp authority answered {response.status_code}",
                                parse_retry_after(response.headers.get("Retry-After")))  # fmt: skip
            return response

        return retrying(attempt, self._retries, who="the timestamp authority", fail=fail, sleep=self._sleep,
                        delay=lambda number, after: retry_delay(self._retries, number, after))  # fmt: skip


def is_local_tsa(url: str) -> bool:
    return is_loopback_host(check_tsa_url(url).host)
