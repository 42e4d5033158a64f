"""The one network layer: what every outbound client (registry, GitHub, Rekor, Fulcio, OIDC) shares.

The retry policy and timeouts, ``Retry-After`` parsing, URL scrubbing for messages, loopback detection,
the TLS context (system and certifi roots plus an optional private CA), transport-error descriptions,
the backoff delay, the ``close``/context-manager boilerplate; and the defences against hostile servers:
every request has a total deadline (:func:`send`, :func:`read_capped`; ``--request-timeout``), every
body is read with a size cap before it is buffered (:func:`read_capped`). :func:`parallel_map` (and its
work-queue form :func:`parallel_unlocking`) is the one bounded thread pool.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Self, TypeVar

import certifi
import httpcore
import httpx

from pipeline.errors import InvalidInputError, ReleaseVectorError
from pipeline.network_defaults import DEFAULT_CONCURRENCY as DEFAULT_CONCURRENCY  # re-exported: one default
from pipeline.network_defaults import DEFAULT_REQUEST_TIMEOUT as DEFAULT_REQUEST_TIMEOUT
from pipeline.network_defaults import REQUEST_TIMEOUT_ENV as REQUEST_TIMEOUT_ENV

# The run's request timeout lives beside its default (the option's callback sets it before httpx loads).
from pipeline.network_defaults import request_timeout as request_timeout
from pipeline.network_defaults import set_request_timeout as set_request_timeout

T = TypeVar("T")
R = TypeVar("R")

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
        port = f":{parsed.port}" if parsed.port is not None else ""
        return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"  # .host decodes IDNA: it may raise too
    except (httpx.InvalidURL, TypeError, ValueError):  # idna's IDNAError is a ValueError (a UnicodeError)
        return "(unparseable URL)"


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
    """One try failed in a way worth repeating (``reason`` for the message, the server's ``Retry-After``).

    ``sent`` tells whether the request (and its body) may have reached the server: false only when the
    connection was never made, so that even a request that is not safe to repeat can be tried again."""

    def __init__(self, reason: str, retry_after: float | None = None, *, sent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.sent = sent


def request_sent(exc: httpx.TransportError) -> bool:
    """False if ``exc`` happened before any byte of the request left (no connection); True otherwise."""
    return not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def retrying(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    who: str,
    fail: Callable[[str], Exception],
    sleep: Callable[[float], None],
    delay: Callable[[int, float | None], float],
    idempotent: bool = True,
) -> T:
    """``attempt()`` until it returns, at most ``policy.attempts`` times while it raises :class:`Retryable`.

    Waits ``delay(number, retry_after)`` between tries; gives up at once (``fail("…; {who} asks to retry
    after N s")``) when the server asks to wait longer than ``policy.max_retry_after``; at the end raises
    ``fail(reason)``, with ``(after N attempts)`` when there was more than one. A request that is not
    ``idempotent`` is repeated only while it was not sent (:attr:`Retryable.sent`)."""
    last: Retryable | None = None
    tries = 0
    for number in range(policy.attempts):
        tries = number + 1
        try:
            return attempt()
        except Retryable as retry:
            last = retry
            if number == policy.attempts - 1 or (retry.sent and not idempotent):
                break
            if retry.retry_after is not None and retry.retry_after > policy.max_retry_after:
                raise fail(f"{retry.reason}; {who} asks to retry after {retry.retry_after:.0f} s") from None
            sleep(delay(number, retry.retry_after))
    assert last is not None
    suffix = f" (after {tries} attempts)" if tries > 1 else ""
    raise fail(f"{last.reason}{suffix}")


_SSL_CONTEXTS: dict[tuple[str, int, int], ssl.SSLContext] = {}
_SSL_CONTEXTS_LOCK = threading.Lock()


def ssl_context(cacert: Path | None, unreadable: str, *, missing: str | None = None) -> ssl.SSLContext:
    """Verification against certifi's and the system's roots, plus ``cacert`` if given.

    Built once per CA file (as it is on disk: path, size, modification time) in a process, and shared by
    every client that asks: loading the roots takes about 70 ms, and a release opens a client per service
    (registry, binaries, GitHub, log, TSA). Nothing changes a context after this returns it.
    A ``cacert`` that cannot be loaded is an :class:`InvalidInputError` saying ``unreadable``
    (or ``missing``, if given, when the file does not exist)."""
    key = ("", 0, 0)
    if cacert is not None:
        try:
            status = cacert.stat()
        except OSError:
            key = ("", -1, -1)  # not cached: loading it below says what is wrong
        else:
            key = (str(cacert.resolve()), status.st_size, status.st_mtime_ns)
    with _SSL_CONTEXTS_LOCK:
        cached = _SSL_CONTEXTS.get(key)
    if cached is not None:
        return cached
    context = _new_ssl_context(cacert, unreadable, missing=missing)
    if key[1] < 0:
        return context
    with _SSL_CONTEXTS_LOCK:
        return _SSL_CONTEXTS.setdefault(key, context)


def _new_ssl_context(cacert: Path | None, unreadable: str, *, missing: str | None) -> ssl.SSLContext:
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


def _cause_chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_cert_error(exc: BaseException) -> bool:
    """True if ``exc`` (or what caused it) is a failed TLS certificate verification."""
    return any(
        isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(e) for e in _cause_chain(exc)
    )


def describe_transport_error(exc: httpx.TransportError, service: str) -> str:
    """One short line for a failure to talk to ``service`` ("GitHub", "the registry", ...)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"timed out connecting to {service}"
    if isinstance(exc, httpx.ReadTimeout):
        return f"timed out waiting for {service} to answer"
    if isinstance(exc, httpx.WriteTimeout):
        return f"timed out sending to {service}"
    if isinstance(exc, httpx.PoolTimeout):
        return "timed out waiting for a free connection"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out talking to {service}"
    if isinstance(exc, httpx.ConnectError):
        if any(isinstance(e, ssl.SSLError) for e in _cause_chain(exc)):
            return f"TLS handshake with {service} failed"
        return f"cannot connect to {service}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{service} closed the connection or broke the HTTP protocol"
    if isinstance(exc, httpx.ProxyError):
        return "the proxy refused the connection"
    return f"network error talking to {service}"


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, ``127.x.y.z`` and ``[::1]`` / ``::1``, with or without a port."""
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True if ``url`` parses and its host is a loopback host."""
    try:
        host = httpx.URL(url).host
    except (httpx.InvalidURL, ValueError):
        return False
    return bool(host) and is_loopback_host(host)


def check_service_url(url: str, name: str, local: str) -> httpx.URL:
    """``url`` parsed: https, or http only on a loopback host (a stand-in on this machine).

    ``name`` is the URL's owner in messages ("Rekor"), ``local`` what may be plain HTTP ("a Fulcio")."""
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


def json_service_client(
    *,
    service: str,
    cacert: Path | None,
    user_agent: str,
    connect_timeout: float,
    read_timeout: float,
    transport: httpx.BaseTransport | None,
) -> httpx.Client:
    """:func:`http_client` for a JSON API (Rekor, Fulcio): ``cacert`` trusted beside the usual roots, writes
    timed as reads and the pool as connects, our User-Agent, JSON accepted."""
    timeout = Timeouts(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout)
    return http_client(
        verify=ssl_context(cacert, f"the {service} CA certificate file is not a readable PEM file"),
        timeout=timeout.to_httpx(),
        headers={"User-Agent": user_agent, "Accept": "application/json"},
        transport=transport,
    )


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
    (proxy variables, ``.netrc``): the caller decides both. Without a ``transport`` of the caller's, every
    socket operation is held to the running request's total deadline (:func:`send`)."""
    if transport is None:
        transport = httpx.HTTPTransport(verify=verify, limits=limits, proxy=proxy, trust_env=False)
        pool = getattr(transport, "_pool", None)
        # httpx has no option for the network backend its connection pool reads and writes through;
        # httpcore's pools keep it in this attribute (tests/test_http.py fails if that ever changes).
        if isinstance(pool, httpcore.ConnectionPool) and hasattr(pool, "_network_backend"):
            pool._network_backend = _DeadlineBackend(pool._network_backend)
        proxy = None  # it is the transport's now
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


# --- the total deadline on every socket operation ---------------------------------------------------
# httpx's timeouts are per operation: a server sending its status line and headers one byte every few
# seconds never trips them. The network backend below cuts each operation's timeout to what is left of
# the deadline the request running in this thread started (send() / read_capped() set it), and refuses
# to start one once it has passed.

_running = threading.local()


def _cut(timeout: float | None, expired: type[Exception]) -> float | None:
    deadline: Deadline | None = getattr(_running, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline.remaining()
    if left <= 0:
        raise expired(deadline_message(deadline))
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _cut(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _cut(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, _cut(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, _cut(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(path, _cut(timeout, httpcore.ConnectTimeout), socket_options)
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _iter_under(deadline: Deadline, response: httpx.Response, *, raw: bool = False) -> Iterator[bytes]:
    """``response.iter_bytes()`` (``raw``: ``iter_raw()``, no Content-Encoding decoded), each socket read held
    to ``deadline``."""
    chunks = response.iter_raw() if raw else response.iter_bytes()
    while True:
        with _deadline_running(deadline):
            chunk = next(chunks, None)
        if chunk is None:
            return
        yield chunk


@contextlib.contextmanager
def _deadline_running(deadline: Deadline) -> Iterator[None]:
    """``deadline`` holds every socket operation of this thread until the block ends."""
    previous = getattr(_running, "deadline", None)
    _running.deadline = deadline
    try:
        yield
    finally:
        _running.deadline = previous


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


# --- deadlines and capped bodies: what a hostile server cannot stretch --------------------------------

BLOB_MIN_RATE: Final = 256 * 1024
"""Bytes per second a blob transfer is granted at least, on top of its base time."""

BLOB_BASE_FACTOR: Final = 3
"""A blob's deadline starts at this many request timeouts (a few minutes by default)."""

_DEADLINE_KEY: Final = "release_vector.deadline"


def transfer_timeout(size: int | None) -> float:
    """Seconds for a transfer of ``size`` bytes: the request timeout for small requests (unknown size or
    up to 1 MiB), a few of them plus time at :data:`BLOB_MIN_RATE` for larger blobs."""
    base = request_timeout()
    if size is None or size <= 1024 * 1024:
        return base
    return base * BLOB_BASE_FACTOR + size / BLOB_MIN_RATE


@dataclass(frozen=True)
class Deadline:
    """A moment on the monotonic clock by which a request must be done."""

    seconds: float
    at: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def start(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(seconds, clock() + seconds, clock)

    def remaining(self) -> float:
        return self.at - self.clock()

    def expired(self) -> bool:
        return self.remaining() <= 0


def _deadline_hint() -> str:
    return f"raise it with --request-timeout SECONDS or {REQUEST_TIMEOUT_ENV}"


def deadline_message(deadline: Deadline, what: str = "the answer") -> str:
    return f"{what} did not complete within the request timeout of {deadline.seconds:g} s"


def send(http: httpx.Client, request: httpx.Request, *, size: int | None = None) -> httpx.Response:
    """Send ``request`` and return the streaming response, under a total deadline for the whole exchange.

    The deadline (:func:`transfer_timeout` of ``size``, the bytes to send or expected back) starts now;
    every socket timeout is cut to what is left of it, and :func:`read_capped` checks it between chunks of
    the body, so a server that drips a byte at a time cannot keep the command waiting. Transport errors
    propagate as httpx raises them (``httpx.TimeoutException`` when the deadline runs out first)."""
    deadline = Deadline.start(transfer_timeout(size))
    timeout = request.extensions.get("timeout")
    if isinstance(timeout, dict):
        left = max(0.001, deadline.remaining())
        request.extensions["timeout"] = {
            key: (left if value is None else min(float(value), left)) for key, value in timeout.items()
        }
    with _deadline_running(deadline):
        response = http.send(request, stream=True)
    response.extensions[_DEADLINE_KEY] = deadline
    return response


def read_capped(
    response: httpx.Response,
    limit: int,
    *,
    fail: Callable[[str], ReleaseVectorError],
    what: str = "answer",
    service: str = "the server",
) -> bytes:
    """The body of a streaming ``response``, refusing to buffer more than ``limit`` bytes or to wait past
    the request's deadline (the one :func:`send` started; otherwise one starts here).

    Failures are ``fail(message)``: the body too large (``Content-Length`` or counted while reading), the
    deadline passed (with a hint naming ``--request-timeout``), or the transfer broken. The response is
    closed on every failure."""
    return b"".join(iter_capped(response, limit, fail=fail, what=what, service=service))


def iter_capped(
    response: httpx.Response,
    limit: int,
    *,
    fail: Callable[[str], ReleaseVectorError],
    what: str = "answer",
    service: str = "the server",
) -> Iterator[bytes]:
    """The body of a streaming ``response`` chunk by chunk (memory: one chunk, whatever the size), with the
    limit, deadline and failures :func:`read_capped` has; the response is closed when the iteration ends."""
    deadline = response.extensions.get(_DEADLINE_KEY)
    if not isinstance(deadline, Deadline):
        deadline = Deadline.start(transfer_timeout(limit if limit > 1024 * 1024 else None))
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > limit:
        response.close()
        raise fail(f"{what} too large ({int(length)} bytes; the limit is {limit} bytes)")
    total = 0
    try:
        for chunk in _iter_under(deadline, response):
            total += len(chunk)
            if total > limit:
                raise fail(f"{what} too large (over {limit} bytes; the limit is {limit} bytes)")
            if deadline.expired():
                raise _past_deadline(fail, deadline, what)
            yield chunk
    except httpx.TimeoutException:
        if deadline.expired():
            raise _past_deadline(fail, deadline, what) from None
        raise fail(f"timed out reading the {what}") from None
    except httpx.TransportError as exc:
        raise fail(f"{describe_transport_error(exc, service)} while reading the {what}") from None
    finally:
        response.close()


def _past_deadline(fail: Callable[[str], ReleaseVectorError], deadline: Deadline, what: str) -> ReleaseVectorError:
    error = fail(deadline_message(deadline, what))
    error.hint = error.hint or _deadline_hint()
    return error


def exchange(
    http: httpx.Client,
    request: httpx.Request,
    limit: int,
    *,
    fail: Callable[[str], ReleaseVectorError],
    what: str = "answer",
    service: str = "the server",
    size: int | None = None,
) -> httpx.Response:
    """:func:`send` and :func:`read_capped` in one: a response whose body is read (at most ``limit``
    bytes, within the deadline), for clients that want ``.content``/``.text``. Transport errors while
    sending propagate as httpx raises them; a body too large, too slow or broken is ``fail(message)``."""
    response = send(http, request, size=size)
    body = read_capped(response, limit, fail=fail, what=what, service=service)
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        content=body,
        request=response.request,
        extensions={"http_version": response.extensions.get("http_version", b"HTTP/1.1")},
    )


def stream_under_deadline(deadline: Deadline, response: httpx.Response) -> Iterator[bytes]:
    """The bytes of a streaming ``response``'s body as the server sent them (a ``Content-Encoding`` is not
    decoded: a binary is pinned by the bytes a download saves, as ``curl -o`` and ``sha256sum`` see them),
    each socket read held to ``deadline`` (hashed as they arrive instead of buffered: binaries); the caller
    counts, caps and closes."""
    return _iter_under(deadline, response, raw=True)


def read_prefix(response: httpx.Response, limit: int = 64 * 1024) -> bytes:
    """At most ``limit`` bytes of a streaming ``response``'s body (an error answer, read only for its
    message), within the request's deadline; b"" if reading fails. The response is closed."""
    deadline = response.extensions.get(_DEADLINE_KEY)
    chunks: list[bytes] = []
    total = 0
    try:
        chunks_read = _iter_under(deadline, response) if isinstance(deadline, Deadline) else response.iter_bytes()
        for chunk in chunks_read:
            chunks.append(chunk[: limit - total])
            total += len(chunk)
            if total >= limit or (isinstance(deadline, Deadline) and deadline.expired()):
                break
    except httpx.HTTPError:
        pass
    finally:
        response.close()
    return b"".join(chunks)


# --- bounded parallelism ----------------------------------------------------------------------------


_ERRORS_ATTRIBUTE: Final = "_parallel_errors"


def collected_errors(error: BaseException) -> tuple[BaseException, ...]:
    """Every error of the :func:`parallel_map` call that raised ``error``, in input order (``error`` first
    of them); ``(error,)`` for an error that did not come from :func:`parallel_map`."""
    found = getattr(error, _ERRORS_ATTRIBUTE, None)
    return found if isinstance(found, tuple) else (error,)


def parallel_map(fn: Callable[[T], R], items: Iterable[T], *, concurrency: int, fail_fast: bool = False) -> list[R]:
    """``[fn(item) for item in items]`` with at most ``concurrency`` calls running at once.

    The results are in input order. If calls fail, the others still run (or, with ``fail_fast``, the
    calls not started yet are skipped), and once every started call has ended the failure of the
    earliest item in input order is raised as it is (its type and exit code unchanged); every failure,
    in input order, is available from it through :func:`collected_errors`."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    work: Sequence[T] = items if isinstance(items, Sequence) else list(items)
    if not work:
        return []
    stop = threading.Event()
    results: list[R | None] = [None] * len(work)
    errors: list[BaseException | None] = [None] * len(work)

    def run(index: int) -> None:
        if fail_fast and stop.is_set():
            return
        try:
            results[index] = fn(work[index])
        except BaseException as exc:  # collected here, raised by the caller's thread below
            errors[index] = exc
            stop.set()

    if concurrency == 1 or len(work) == 1:
        for index in range(len(work)):
            run(index)
    else:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(work)), thread_name_prefix="parallel") as pool:
            for future in [pool.submit(run, index) for index in range(len(work))]:
                future.result()
    failures = tuple(e for e in errors if e is not None)
    if failures:
        first = failures[0]
        with contextlib.suppress(AttributeError):  # an exception without a __dict__: the first error alone
            setattr(first, _ERRORS_ATTRIBUTE, failures)
        raise first
    return results  # type: ignore[return-value]  # every slot filled: no call failed


def parallel_unlocking(
    fn: Callable[[T], R],
    first: Sequence[T],
    unlocks: Mapping[T, Sequence[T]],
    *,
    concurrency: int,
    on_result: Callable[[T, R], None] | None = None,
) -> dict[T, R]:
    """``fn`` over ``first`` and, as each call ends, over the items its item unlocks (``unlocks[item]``),
    at most ``concurrency`` at a time: a work queue whose order is a dependency (assemble reads the first
    image of a registry alone, so that its token and ping are fetched once, then one per repository).

    ``fn`` must not raise (return its failure instead): one item's failure still unlocks the next.
    ``on_result`` is called from the calling thread as each result arrives. Results by item."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    results: dict[T, R] = {}
    if not first:
        return results
    total = len(first) + sum(len(after) for after in unlocks.values())
    with ThreadPoolExecutor(max_workers=min(concurrency, max(1, total)), thread_name_prefix="unlocking") as pool:
        running: dict[Future[R], T] = {pool.submit(fn, item): item for item in first}
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                item = running.pop(future)
                results[item] = future.result()
                if on_result is not None:
                    on_result(item, results[item])
                running.update({pool.submit(fn, after): after for after in unlocks.get(item, ())})
    return results
