"""The small HTTP machinery the embedded Sigstore stand-ins share (transparency log, OIDC issuer, Fulcio).

A real HTTP/1.1 server (stdlib ``ThreadingHTTPServer``) on 127.0.0.1 that turns each request into a
frozen :class:`Request` and hands it to a ``handle`` function returning a :class:`Response`. It records
``(method, path, status)`` of every answer and can be told to fail the next requests (503/429 with an
optional ``Retry-After``) so clients' retries can be exercised. It never logs request bodies or headers:
they carry tokens.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Generic, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

MAX_REQUEST_BYTES: Final = 1 << 20
LISTEN_BACKLOG: Final = 128


@dataclass(frozen=True)
class Request:
    """One request as the stand-ins see it (header names lower-cased)."""

    method: str
    path: str
    query: Mapping[str, tuple[str, ...]]
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name, ())
        return values[-1] if values else None


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


def json_response(status: int, value: object, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(value, separators=(",", ":")).encode() + b"\n"
    return Response(status, body, "application/json", dict(headers or {}))


@dataclass(frozen=True)
class InjectedFailure:
    status: int
    retry_after: str | None


Handler = Callable[[Request], Response]


def read_body(handler: BaseHTTPRequestHandler) -> bytes | None:
    """The request's body (b"" without ``Content-Length``); None if its length is unreadable or too large."""
    text = handler.headers.get("Content-Length")
    if text is None:
        return b""
    try:
        length = int(text)
    except ValueError:
        return None
    if not 0 <= length <= MAX_REQUEST_BYTES:
        return None
    return handler.rfile.read(length)


class StandinHTTPServer(ThreadingHTTPServer):
    """The server of one stand-in: its handle function, its injected failures and its request record."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handle: Handler, error_body: Callable[[int, str], Response]) -> None:
        super().__init__(address, _RequestHandler)
        self.handle_request_fn = handle
        self.error_body = error_body
        self.failures: list[InjectedFailure] = []
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, int]] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (a download cut off at its size limit, a timeout) is normal here:
        socketserver would print a traceback to stderr, into the output of the command under test."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    server: StandinHTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "release-vector-standin"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, path: str, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        with self.server.lock:
            self.server.requests.append((self.command, path, response.status))
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _read_body(self) -> bytes | None:
        return read_body(self)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        with self.server.lock:
            failure = self.server.failures.pop(0) if self.server.failures else None
        if failure is not None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
            injected = self.server.error_body(failure.status, HTTPStatus(failure.status).phrase)
            self._answer(url.path, Response(injected.status, injected.body, injected.content_type, headers))
            return
        if body is None:
            self.close_connection = True
            self._answer(url.path, self.server.error_body(413, "the request body is missing or too large"))
            return
        request = Request(
            method=self.command,
            path=url.path,
            query={k: tuple(v) for k, v in parse_qs(url.query, keep_blank_values=True).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            response = self.server.handle_request_fn(request)
        except Exception as exc:
            response = self.server.error_body(500, f"internal error: {type(exc).__name__}")
        self._answer(url.path, response)

    do_GET = _dispatch
    do_POST = _dispatch
    do_HEAD = _dispatch


def _default_error(status: int, message: str) -> Response:
    return json_response(status, {"code": status, "message": message})


S = TypeVar("S", bound=ThreadingHTTPServer)


class ServerThread(Generic[S]):
    """The life of a loopback server on a daemon thread: ``start``/``stop``, ``with``, ``port``, ``url``.

    Subclasses build the server in :meth:`_make_server`."""

    thread_name = "release-vector-standin"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._server: S | None = None
        self._thread: threading.Thread | None = None

    def _make_server(self, address: tuple[str, int]) -> S:  # pragma: no cover - overridden
        raise NotImplementedError

    def _not_running(self) -> RuntimeError:
        return RuntimeError(f"the {self.thread_name} server is not running")

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = self._make_server((self._host, self._port))
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise self._not_running()
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"


class StandinServer(ServerThread[StandinHTTPServer]):
    """Base of the stand-ins: ``with Sub() as s: s.url``. Subclasses implement :meth:`handle`."""

    def handle(self, request: Request) -> Response:  # pragma: no cover - overridden
        raise NotImplementedError

    def error_response(self, status: int, message: str) -> Response:
        return _default_error(status, message)

    def _make_server(self, address: tuple[str, int]) -> StandinHTTPServer:
        return StandinHTTPServer(address, self.handle, self.error_response)

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request answered so far (a copy)."""
        if self._server is None:
            return []
        with self._server.lock:
            return list(self._server.requests)

    def inject_failures(self, count: int, *, status: int = 503, retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (and ``Retry-After``) instead of serving them."""
        if self._server is None:
            raise self._not_running()
        with self._server.lock:
            self._server.failures.extend(InjectedFailure(status, retry_after) for _ in range(count))
