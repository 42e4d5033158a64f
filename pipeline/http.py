"""HTTP plumbing the outbound clients share (registry, GitHub, Rekor, Fulcio, the Actions token service).

Only the pieces whose behaviour really is the same: the retry policy and timeouts, ``Retry-After``
parsing, URL scrubbing for messages, the TLS context (system and certifi roots plus an optional private
CA), short transport-error descriptions, the backoff delay and the ``close``/context-manager boilerplate.
"""

from __future__ import annotations

import email.utils
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Self, TypeVar

import certifi
import httpx

from pipeline.errors import InvalidInputError

T = TypeVar("T")

HTTPX_DEFAULT_LIMITS: Final = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's own default


@dataclass(frozen=True)
class Timeouts:
    """Seconds: to connect, between bytes read, between bytes written, to get a pooled connection."""

    connect: float = 10.0
    read: float = 60.0
    write: float = 60.0
    pool: float = 10.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``attempts`` tries; waits ``backoff * 2**n`` (capped, with jitter), or ``Retry-After``.

    A ``Retry-After`` longer than ``max_retry_after`` ends the retries at once (with that in the message).
    """

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 10.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")


def scrub_url(url: str | httpx.URL) -> str:
    """``scheme://host[:port]/path``: no user info, no query (upload state, signed URLs), no fragment."""
    try:
        parsed = httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "(unparseable URL)"
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


def bare_url(url: str | httpx.URL) -> str:
    """``url`` as httpx writes it, less user info, query and fragment."""
    parsed = httpx.URL(url) if isinstance(url, str) else url
    return str(parsed.copy_with(username=None, password=None, query=None, fragment=None))


def parse_retry_after(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Seconds from a ``Retry-After`` value (delta-seconds or an HTTP date); None if absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


def retry_delay(policy: RetryPolicy, number: int, retry_after: float | None, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed try ``number`` (from 0): ``backoff * 2**number`` capped at
    ``max_backoff`` (its upper half at random with ``rng``), or ``retry_after`` if that is longer."""
    cap = min(policy.max_backoff, policy.backoff * float(2**number))
    delay = cap / 2 + rng.uniform(0, cap / 2) if rng is not None else cap
    return max(delay, retry_after) if retry_after is not None else delay


class Retryable(Exception):
    """One try failed in a way worth repeating (``reason`` for the message, the server's ``Retry-After``)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def retrying(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    who: str,
    fail: Callable[[str], Exception],
    sleep: Callable[[float], None],
    delay: Callable[[int, float | None], float],
) -> T:
    """``attempt()`` until it returns, at most ``policy.attempts`` times while it raises :class:`Retryable`.

    Waits ``delay(number, retry_after)`` between tries; gives up at once (``fail("…; {who} asks to retry
    after N s")``) when the server asks to wait longer than ``policy.max_retry_after``; at the end raises
    ``fail(reason)``, with ``(after N attempts)`` when there was more than one."""
    last: Retryable | None = None
    tries = 0
    for number in range(policy.attempts):
        tries = number + 1
        try:
            return attempt()
        except Retryable as retry:
            last = retry
            if number == policy.attempts - 1:
                break
            if retry.retry_after is not None and retry.retry_after > policy.max_retry_after:
                raise fail(f"{retry.reason}; {who} asks to retry after {retry.retry_after:.0f} s") from None
            sleep(delay(number, retry.retry_after))
    assert last is not None
    suffix = f" (after {tries} attempts)" if tries > 1 else ""
    raise fail(f"{last.reason}{suffix}")


def ssl_context(cacert: Path | None, unreadable: str, *, missing: str | None = None) -> ssl.SSLContext:
    """Verification against certifi's and the system's roots, plus ``cacert`` if given.

    A ``cacert`` that cannot be loaded is an :class:`InvalidInputError` saying ``unreadable``
    (or ``missing``, if given, when the file does not exist)."""
    context = ssl.create_default_context(cafile=certifi.where())
    context.load_default_certs()
    if cacert is not None:
        try:
            context.load_verify_locations(cafile=str(cacert))
        except FileNotFoundError:
            raise InvalidInputError(missing or unreadable, where=str(cacert)) from None
        except (ssl.SSLError, OSError, ValueError):
            raise InvalidInputError(unreadable, where=str(cacert)) from None
    return context


def describe_transport_error(exc: httpx.TransportError, service: str, *, closed: bool = True) -> str:
    """One short line for a failure to talk to ``service`` ("GitHub", "the transparency log", ...).

    With ``closed`` a broken connection is told apart; without, it is a plain network error."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out talking to {service}"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {service}"
    if closed and isinstance(exc, httpx.RemoteProtocolError):
        return f"{service} closed the connection"
    return f"network error talking to {service}"


def check_service_url(url: str, name: str, local: str) -> httpx.URL:
    """``url`` parsed: https, or http only on a loopback host (a stand-in on this machine).

    ``name`` is the URL's owner in messages ("Rekor"), ``local`` what may be plain HTTP ("a Fulcio")."""
    from pipeline.oci.reference import is_loopback_host  # here: pipeline.oci imports this module

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise InvalidInputError(f"the {name} URL is not a valid URL", where=url) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInputError(f"the {name} URL must be http(s)://HOST[:PORT]", where=bare_url(parsed))
    if parsed.scheme == "http" and not is_loopback_host(parsed.host):
        raise InvalidInputError(
            f"plain HTTP is allowed only for {local} on this machine (loopback)",
            where=bare_url(parsed),
            hint="use https://",
        )
    return parsed


def http_client(
    *,
    verify: ssl.SSLContext,
    timeout: httpx.Timeout,
    headers: dict[str, str],
    transport: httpx.BaseTransport | None,
    proxy: str | None = None,
    limits: httpx.Limits = HTTPX_DEFAULT_LIMITS,
) -> httpx.Client:
    """An ``httpx.Client`` that follows no redirect and trusts nothing from the environment
    (proxy variables, ``.netrc``): the caller decides both."""
    return httpx.Client(
        verify=verify,
        timeout=timeout,
        limits=limits,
        follow_redirects=False,
        trust_env=False,
        proxy=proxy,
        headers=headers,
        transport=transport,
    )


class ClosingClient:
    """``close()`` and the context-manager protocol for a client that holds one ``httpx.Client`` in ``_http``."""

    _http: httpx.Client

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
