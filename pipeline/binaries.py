"""Binaries a vector names by URL (``binaries.*.url``): each fetched once, its sha256 recorded.

The download is streamed and hashed as it arrives (never buffered whole), bounded in size (a
:class:`~pipeline.errors.BinaryTooLargeError` past the limit, from ``Content-Length`` or counted), held to a
total deadline (:func:`pipeline.http.transfer_timeout` of its size) and retried like every other request
(:class:`pipeline.http.RetryPolicy`: connection errors, 429 and 5xx, honouring ``Retry-After``). Redirects
are followed by hand, at most :data:`MAX_REDIRECTS`, and only to ``https://`` (or plain HTTP on a loopback
host, for the stand-ins of tests and rehearsals): a release's binary is never fetched over a downgraded
connection. No credential is sent anywhere.

``--binary-mirror FROM=TO`` (:class:`BinaryMirrors`) reads a URL starting with ``FROM`` at ``TO`` + the rest
instead; the vector keeps the original URL (rehearsals serve their synthetic binaries from a local server so).
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from pipeline.errors import (
    BinaryFetchError,
    BinaryNotFoundError,
    BinaryTooLargeError,
    InvalidInputError,
    ReleaseVectorError,
    UsageError,
)
from pipeline.http import (
    DEFAULT_CONCURRENCY,
    ClosingClient,
    Deadline,
    Retryable,
    RetryPolicy,
    Timeouts,
    deadline_message,
    describe_transport_error,
    http_client,
    is_loopback_host,
    parallel_map,
    parse_retry_after,
    read_prefix,
    retry_delay,
    retrying,
    scrub_url,
    send,
    ssl_context,
    stream_under_deadline,
    transfer_timeout,
)
from pipeline.network_defaults import DEFAULT_BINARY_SIZE_LIMIT

DEFAULT_SIZE_LIMIT: Final = DEFAULT_BINARY_SIZE_LIMIT  # defined beside the other defaults --help shows
MAX_REDIRECTS: Final = 10
_RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_USER_INFO: Final = re.compile(r"(?<=//)[^/@]*@")
_GONE: Final = frozenset({404, 410})  # the server's answer that the file is not there (not an outage)


@dataclass(frozen=True)
class BinaryMirrors:
    """``FROM=TO`` URL prefixes: a URL starting with ``FROM`` is read at ``TO`` + the rest (longest FROM wins)."""

    prefixes: tuple[tuple[str, str], ...] = ()

    def apply(self, url: str) -> str:
        for origin, target in sorted(self.prefixes, key=lambda pair: -len(pair[0])):
            if url.startswith(origin):
                return target + url[len(origin) :]
        return url


def parse_binary_mirrors(specs: Iterable[str]) -> BinaryMirrors:
    """``--binary-mirror`` values (``https://github.com=http://127.0.0.1:8080/github.com``)."""
    pairs: list[tuple[str, str]] = []
    for spec in specs:
        origin, sep, target = spec.partition("=")
        if not sep or not origin.startswith(("http://", "https://")) or not target.startswith(("http://", "https://")):
            raise UsageError("a binary mirror is FROM=TO, two http(s) URL prefixes", where=f"--binary-mirror {spec}")
        pairs.append((origin, target))
    return BinaryMirrors(tuple(pairs))


def _check_url(url: str) -> None:
    """An InvalidInputError (exit 3) for a URL no request can be built from: parsed here as the request will
    be (host, port, IDNA), so a vector's or a mirror's bad URL is bad input, not an unexpected crash."""
    try:
        parsed = httpx.URL(url)
        problem = "it has no host" if not parsed.host else None
        if parsed.port is not None and not 0 < parsed.port < 65536:
            problem = f"port {parsed.port} is out of range"
    except (httpx.InvalidURL, ValueError, UnicodeError) as exc:  # idna's IDNAError is a UnicodeError
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if problem is not None:
        shown = scrub_url(url)
        if shown == "(unparseable URL)":  # still say which one, less any user info and query
            shown = _USER_INFO.sub("", url.split("?", 1)[0])
        raise InvalidInputError(f"not a valid URL: {problem}", where=shown)


@dataclass(frozen=True)
class FetchedBinary:
    url: str  # as the vector names it
    digest: str  # sha256:<hex> of the bytes
    size: int


@dataclass(frozen=True)
class BinaryOptions:
    size_limit: int = DEFAULT_SIZE_LIMIT
    mirrors: BinaryMirrors = field(default_factory=BinaryMirrors)
    cacert: Path | None = None
    retries: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    user_agent: str = "release-vector"


class BinaryFetcher(ClosingClient):
    """Downloads binaries to hash them (see the module notes). ``transport`` for tests."""

    def __init__(
        self,
        options: BinaryOptions | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options or BinaryOptions()
        self._sleep = sleep
        self._rng = random.Random()  # noqa: S311 (jitter, not cryptography)
        self._http = http_client(
            verify=ssl_context(self.options.cacert, "the CA certificate file is not a readable PEM file"),
            timeout=self.options.timeouts.to_httpx(),
            # identity: the bytes hashed are the file's, not a compression a server chose to apply on the way
            headers={"User-Agent": self.options.user_agent, "Accept": "*/*", "Accept-Encoding": "identity"},
            transport=transport,
        )

    def fetch(self, url: str) -> FetchedBinary:
        """The sha256 and size of the bytes at ``url`` (read at its mirror, if one applies)."""
        start = self.options.mirrors.apply(url)
        _check_url(start)
        shown = scrub_url(start)

        def fail(message: str) -> BinaryFetchError:
            return BinaryFetchError(message, where=shown)

        return retrying(
            lambda: self._attempt(url, start),
            self.options.retries,
            who=shown,
            fail=fail,
            sleep=self._sleep,
            delay=lambda number, after: retry_delay(self.options.retries, number, after, self._rng),
        )

    def _attempt(self, url: str, start: str) -> FetchedBinary:
        current = httpx.URL(start)
        for _ in range(MAX_REDIRECTS + 1):
            shown = scrub_url(current)
            try:
                response = send(self._http, self._http.build_request("GET", current))
            except httpx.TransportError as exc:
                raise Retryable(describe_transport_error(exc, current.host or shown)) from None
            if response.status_code in _REDIRECTS:
                location = response.headers.get("Location")
                read_prefix(response, 1024)
                if not location:
                    raise BinaryFetchError(f"HTTP {response.status_code} without a Location", where=shown)
                target = current.join(location)
                if target.scheme != "https" and not (target.scheme == "http" and is_loopback_host(target.host)):
                    raise BinaryFetchError(
                        f"redirected to {scrub_url(target)}: redirects are followed only to https",
                        where=scrub_url(start),
                    )
                current = target
                continue
            if response.status_code in _RETRY_STATUSES:
                read_prefix(response, 1024)
                raise Retryable(
                    f"HTTP {response.status_code} from {shown}", parse_retry_after(response.headers.get("Retry-After"))
                )
            if response.status_code != 200:
                read_prefix(response, 1024)
                gone = BinaryNotFoundError if response.status_code in _GONE else BinaryFetchError
                raise gone(f"download failed: HTTP {response.status_code}", where=shown)
            return self._hash(url, response, shown)
        raise BinaryFetchError(f"more than {MAX_REDIRECTS} redirects", where=scrub_url(start))

    def _hash(self, url: str, response: httpx.Response, shown: str) -> FetchedBinary:
        limit = self.options.size_limit
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None and length.isdigit() else None

        def too_large(what: str) -> BinaryTooLargeError:
            return BinaryTooLargeError(
                f"binary too large ({what}; the limit is {limit} bytes)",
                where=shown,
                hint="raise it with --binary-size-limit BYTES",
            )

        if expected is not None and expected > limit:
            response.close()
            raise too_large(f"{expected} bytes")
        deadline = Deadline.start(transfer_timeout(expected if expected is not None else limit))
        hasher = hashlib.sha256()
        total = 0
        try:
            for chunk in stream_under_deadline(deadline, response):
                total += len(chunk)
                if total > limit:
                    raise too_large(f"over {limit} bytes")
                hasher.update(chunk)
                if deadline.expired():
                    raise BinaryFetchError(deadline_message(deadline, "the download"), where=shown)
        except httpx.TimeoutException:
            raise Retryable(f"timed out downloading {shown}") from None
        except httpx.TransportError as exc:
            raise Retryable(f"{describe_transport_error(exc, shown.split('/')[2])} while downloading") from None
        finally:
            response.close()
        if expected is not None and total != expected:
            raise Retryable(f"the download of {shown} ended after {total} of {expected} bytes")
        return FetchedBinary(url, "sha256:" + hasher.hexdigest(), total)


@dataclass(frozen=True)
class BinaryResolution:
    """The digest of every URL fetched, and the failures (url -> error)."""

    digests: Mapping[str, str] = field(default_factory=dict)
    failures: Mapping[str, ReleaseVectorError] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def fetch_binaries(
    fetcher: BinaryFetcher, urls: Sequence[str], *, concurrency: int = DEFAULT_CONCURRENCY
) -> BinaryResolution:
    """Every distinct URL fetched once, ``concurrency`` at a time; every failure collected (none stops the rest)."""
    unique = list(dict.fromkeys(urls))

    def one(url: str) -> FetchedBinary | ReleaseVectorError:
        try:
            return fetcher.fetch(url)
        except ReleaseVectorError as error:
            return error

    outcomes = parallel_map(one, unique, concurrency=max(1, concurrency))
    found = {url: o.digest for url, o in zip(unique, outcomes, strict=True) if isinstance(o, FetchedBinary)}
    failed = {url: o for url, o in zip(unique, outcomes, strict=True) if isinstance(o, ReleaseVectorError)}
    return BinaryResolution(found, failed)
