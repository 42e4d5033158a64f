"""Hostile HTTP servers on 127.0.0.1 for the network layer's defences (issue 12: deep JSON, endless
answers, drip-fed answers). Each answer is a function of the path; every loop here is bounded in count
and stops when the client hangs up.

- :func:`deep_json` — a 200 whose JSON body is ``depth`` nested arrays.
- :func:`endless` — a 200 without Content-Length that streams zeros up to ``limit`` bytes (1 GiB by default).
- :func:`drip` — a 200 that sends one byte every ``interval`` seconds, ``count`` bytes at most.
- :func:`drip_headers` — a 200 whose status line and headers come one byte every ``interval`` seconds.
- :func:`bearer_challenge` — a registry ``/v2/`` ping that names ``realm`` as its token server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[BaseHTTPRequestHandler], None]


def deep_json(depth: int = 200_000, status: int = 200) -> Answer:
    body = b"[" * depth + b"]" * depth

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def endless(limit: int = 1024**3, chunk: int = 64 * 1024) -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Connection", "close")
        handler.end_headers()
        block = b"0" * chunk
        for _ in range(limit // chunk):
            try:
                handler.wfile.write(block)
            except OSError:  # the client stopped reading: what the test wants
                return

    return answer


def drip(interval: float = 0.2, count: int = 600) -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(count))
        handler.end_headers()
        for _ in range(count):
            try:
                handler.wfile.write(b" ")
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(interval)

    return answer


def drip_headers(interval: float = 0.2, count: int = 600) -> Answer:
    """Never a whole header block: per-read timeouts never trip, only a total deadline ends it."""
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Slow-%d: y\r\n" % n for n in range(count))

    def answer(handler: BaseHTTPRequestHandler) -> None:
        for byte in head[:count]:
            try:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(interval)
        handler.close_connection = True

    return answer


def bearer_challenge(realm: str) -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        handler.send_response(401)
        handler.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="hostile"')
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


class HostileServer:
    """Answers each request by the first route whose prefix its path starts with; 404 otherwise."""

    def __init__(self, routes: Mapping[str, Answer]) -> None:
        self.routes = dict(routes)
        self.hits: list[str] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.hits.append(self.path)
                for prefix, answer in outer.routes.items():
                    if self.path.startswith(prefix):
                        answer(self)
                        return
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = do_POST = do_PUT = _handle

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self.port = int(self._server.server_address[1])
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
