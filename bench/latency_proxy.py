"""A reverse proxy on 127.0.0.1 that adds a fixed delay to every request and counts requests.

It stands between a client and a local registry (or any HTTP/1.1 server) to make the network look
like a WAN: each request waits ``delay`` seconds before it is forwarded. Requests are served
concurrently (one thread per connection, keep-alive, a persistent upstream connection per thread),
so the delay overlaps the way real latency does. Counts are kept by method and *path kind*
(``ping`` ``/v2/``, ``manifest``, ``blob``, ``upload``, ``tags``, ``referrers``, ``token``, ``other``).

The ``Host`` header is forwarded unchanged, so a registry builds its ``Location`` URLs for the proxy.
``routes`` send path prefixes to other upstreams (a token realm, say); ``rewrite`` replaces strings in
``WWW-Authenticate`` / ``Location`` headers (point a realm at the proxy so token requests are delayed
and counted too).

As a module::

    with LatencyProxy("http://127.0.0.1:5000", delay=0.05) as proxy:
        ...  # talk to proxy.host
        print(proxy.total(), proxy.counts())

As a command: ``python -m bench.latency_proxy --upstream http://127.0.0.1:5000 --delay-ms 50 [--port N]``
(prints counts on Ctrl-C).
"""

from __future__ import annotations

import argparse
import http.client
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_REWRITTEN = ("www-authenticate", "location")


def path_kind(path: str) -> str:
    """What an OCI distribution request is about, from its path."""
    url_path = urllib.parse.urlsplit(path).path
    if url_path in ("/v2", "/v2/"):
        return "ping"
    if "/manifests/" in url_path:
        return "manifest"
    if "/blobs/uploads" in url_path:
        return "upload"
    if "/blobs/" in url_path:
        return "blob"
    if url_path.endswith("/tags/list"):
        return "tags"
    if "/referrers/" in url_path:
        return "referrers"
    if "token" in url_path or "oauth" in url_path:
        return "token"
    return "other"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 drops connections opened at once (1 s SYN retry)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-request is not the proxy's problem


class LatencyProxy:
    """See the module notes. ``host`` (``127.0.0.1:PORT``) and ``url`` are where clients connect."""

    def __init__(
        self,
        upstream: str,
        *,
        delay: float = 0.05,
        port: int = 0,
        routes: Mapping[str, str] | None = None,
        rewrite: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay = delay
        self.routes = dict(routes or {})
        self.rewrite = dict(rewrite or {})
        self.timeout = timeout
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._in_flight = 0
        self.max_in_flight = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                outer._forward(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self._server = _Server(("127.0.0.1", port), Handler)
        self.port = int(self._server.server_address[1])
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> LatencyProxy:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"latency-proxy-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- counts ------------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """``{"HEAD manifest": 70, "GET ping": 1, ...}``."""
        with self._lock:
            return {f"{method} {kind}": n for (method, kind), n in sorted(self._counts.items())}

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self.max_in_flight = 0

    # --- forwarding --------------------------------------------------------------------------------

    def _upstream_for(self, path: str) -> str:
        for prefix, target in self.routes.items():
            if path.startswith(prefix):
                return target.rstrip("/")
        return self.upstream

    def _connection(self, base: str) -> http.client.HTTPConnection:
        connections: dict[str, http.client.HTTPConnection] = getattr(self._local, "connections", {})
        self._local.connections = connections
        connection = connections.get(base)
        if connection is None:
            parsed = urllib.parse.urlsplit(base)
            connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=self.timeout)
            connections[base] = connection
        return connection

    def _read_body(self, handler: BaseHTTPRequestHandler) -> bytes:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""

    def _rewritten(self, value: str) -> str:
        for old, new in self.rewrite.items():
            value = value.replace(old, new)
        return value

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        method, path = handler.command, handler.path
        with self._lock:
            self._counts[(method, path_kind(path))] += 1
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            body = self._read_body(handler)
            if self.delay > 0:
                time.sleep(self.delay)
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
            base = self._upstream_for(path)
            status, reason, response_headers, data = self._send(base, method, path, body, headers)
        except Exception as exc:  # the upstream is gone: answer 502 rather than hang the client
            message = f"latency proxy: upstream failed: {exc!r}".encode()
            handler.send_response(502)
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", str(len(message)))
            handler.end_headers()
            handler.wfile.write(message)
            return
        finally:
            with self._lock:
                self._in_flight -= 1
        handler.send_response(status, reason)
        for name, value in response_headers:
            lower = name.lower()
            if lower in HOP_BY_HOP or (lower == "content-length" and method != "HEAD"):
                continue
            handler.send_header(name, self._rewritten(value) if lower in _REWRITTEN else value)
        if method != "HEAD":
            handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if method != "HEAD" and data:
            handler.wfile.write(data)

    def _send(
        self, base: str, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        for attempt in range(2):  # a kept-alive upstream connection may have been closed: retry once
            connection = self._connection(base)
            try:
                connection.request(method, path, body=body or None, headers=headers)
                response = connection.getresponse()
                data = response.read()
                return response.status, response.reason, response.getheaders(), data
            except (http.client.HTTPException, OSError):
                connection.close()
                self._local.connections.pop(base, None)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of the server to proxy")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="added to every request (default 50)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    args = parser.parse_args(argv)
    proxy = LatencyProxy(args.upstream, delay=args.delay_ms / 1000, port=args.port).start()
    print(f"proxying {proxy.url} -> {args.upstream} with {args.delay_ms:g} ms per request", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
        for name, count in proxy.counts().items():
            print(f"{count:8d}  {name}")
        print(f"{proxy.total():8d}  total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
