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

It is also a **fault injector** (``faults=FaultInjector(...)``): a request can be answered 500, 502 or
503 (before or after the upstream saw it), 429 with ``Retry-After``, a connection reset in the middle of
the response body, or an answer slower than the client's timeout (the upstream still gets the request,
late, as a real slow network does). Faults come at chosen request numbers (``at={3: Fault("reset")}``,
counting only the requests ``match`` accepts) or at random with a seed (``rate=0.2, seed=7``); every
injected fault is recorded in ``injector.injected``.

As a command: ``python -m bench.latency_proxy --upstream http://127.0.0.1:5000 --delay-ms 50 [--port N]
[--fault-rate 0.1 --fault-seed 1 --fault-kinds 502,reset] [--fault-at 5=503]`` (prints
``proxying http://127.0.0.1:PORT -> UPSTREAM ...`` first, and the counts on Ctrl-C).

With ``oci_1_1=True`` (``--oci-1.1``) the proxy also stands in for the two features of distribution spec
1.1 that Debian's docker-registry 2.8 lacks, so that a client's requests can be counted as a registry with
them would see them: the **referrers API** (``GET /v2/<name>/referrers/<digest>``, answered from the
manifests with a ``subject`` PUT through this proxy, ``OCI-Subject`` on their PUT) and the **single-request
upload** (``POST .../blobs/uploads/?digest=D`` carrying the bytes: the proxy makes the upstream's POST and
PUT and answers ``201 Created``). Each is one client request, delayed once. Where it differs from a real
registry: referrers pushed around the proxy, or deleted, are not listed (a stale index would not either).

Control endpoint (another process reads the counts; these requests are neither delayed, counted nor
forwarded): ``GET /_proxy/counts`` answers ``{"counts": {"HEAD manifest": 70, ...}, "total": N,
"max_in_flight": M, "by_repository": {"team/app": 5, ...}}``; ``POST /_proxy/reset`` clears them (and
answers the same, emptied).
:class:`ProxyControl` is a client for it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
_REFERRERS_PATH = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[a-z0-9]+:[a-f0-9]+)$")
_MANIFEST_PATH = re.compile(r"^/v2/(?P<name>.+)/manifests/[^/]+$")
_UPLOAD_START = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/?$")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_ENTITY_HEADERS = frozenset({"content-length", "content-type"})


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


_API_PARTS = ("manifests", "blobs", "tags", "referrers")


def repository_of(path: str) -> str | None:
    """The repository an OCI distribution request is about (``/v2/<name>/manifests/<ref>``), else None."""
    parts = urllib.parse.urlsplit(path).path.strip("/").split("/")
    if len(parts) < 4 or parts[0] != "v2":
        return None
    if parts[-3:-1] == ["blobs", "uploads"]:  # /v2/<name>/blobs/uploads/<session>
        return "/".join(parts[1:-3])
    if parts[-2] in _API_PARTS:  # manifests/<ref>, blobs/<digest>, blobs/uploads/, tags/list, referrers/<digest>
        return "/".join(parts[1:-2])
    return None


CONTROL_PREFIX = "/_proxy/"
"""Paths under this prefix are the proxy's own control endpoint: never delayed, counted or forwarded."""

FAULT_KINDS = ("500", "502", "503", "429", "reset", "slow")
"""What the injector can do to a request (see :class:`Fault`)."""


@dataclass(frozen=True)
class Fault:
    """One injected failure.

    ``500``/``502``/``503``/``429``: answered with that status; ``after_upstream`` forwards the request
    first (the write happened, the client is told it failed). ``429`` carries ``Retry-After:
    retry_after``. ``reset``: the upstream's answer is cut in the middle of its body and the connection
    reset (RST); a response without a body is reset before its status line. ``slow``: the request waits
    ``slow_seconds`` (longer than the client's read timeout) before it is forwarded and answered.
    """

    kind: str
    after_upstream: bool = False
    retry_after: str = "0"
    slow_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {', '.join(FAULT_KINDS)}")


@dataclass(frozen=True)
class Injected:
    number: int  # the request's number among those ``match`` accepts (1-based)
    method: str
    path: str
    fault: Fault


@dataclass
class FaultInjector:
    """Decides which requests fail: ``at`` (number -> Fault) and/or ``rate`` with ``seed`` over ``kinds``.

    ``match(method, path)`` limits which requests are counted and may fail (default: all); ``limit``
    caps the random faults. Random faults of a 5xx kind are after the upstream half the time.
    """

    at: Mapping[int, Fault] = field(default_factory=dict)
    rate: float = 0.0
    seed: int = 0
    kinds: Sequence[str] = FAULT_KINDS
    match: Callable[[str, str], bool] | None = None
    limit: int | None = None
    slow_seconds: float = 2.0
    retry_after: str = "0"
    injected: list[Injected] = field(default_factory=list)

    def __post_init__(self) -> None:
        for kind in self.kinds:
            Fault(kind)
        self._rng = random.Random(self.seed)
        self._count = 0
        self._lock = threading.Lock()

    def decide(self, method: str, path: str) -> Fault | None:
        if self.match is not None and not self.match(method, path):
            return None
        with self._lock:
            self._count += 1
            number = self._count
            fault = self.at.get(number)
            roll = self._rng.random()
            kind = self._rng.choice(list(self.kinds)) if self.kinds else None
            after = self._rng.random() < 0.5
            random_left = self.limit is None or sum(1 for i in self.injected if i.number not in self.at) < self.limit
            if fault is None and kind is not None and self.rate > 0 and roll < self.rate and random_left:
                fault = Fault(
                    kind,
                    after_upstream=after and kind in ("500", "502", "503"),
                    retry_after=self.retry_after,
                    slow_seconds=self.slow_seconds,
                )
            if fault is not None:
                self.injected.append(Injected(number, method, path, fault))
            return fault

    def summary(self) -> dict[str, int]:
        counts = Counter(i.fault.kind + (" after upstream" if i.fault.after_upstream else "") for i in self.injected)
        return dict(sorted(counts.items()))


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Close the client's connection with a TCP RST (SO_LINGER 0)."""
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.wfile.flush()
    try:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    handler.connection.close()


def _answer(handler: BaseHTTPRequestHandler, status: int, headers: Mapping[str, str], body: bytes) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD" and body:
        handler.wfile.write(body)


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
        faults: FaultInjector | None = None,
        oci_1_1: bool = False,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.oci_1_1 = oci_1_1
        self._referrers: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}  # (name, subject) -> by digest
        self.faults = faults
        self.delay = delay
        self.routes = dict(routes or {})
        self.rewrite = dict(rewrite or {})
        self.timeout = timeout
        self._counts: Counter[tuple[str, str]] = Counter()
        self._by_repository: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._in_flight = 0
        self.max_in_flight = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes: without this, Nagle + delayed ACK add ~40 ms.
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _handle(self) -> None:
                if urllib.parse.urlsplit(self.path).path.startswith(CONTROL_PREFIX):
                    outer._control(self)
                else:
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

    def by_repository(self) -> dict[str, int]:
        """Requests per repository (``/v2/<name>/...``; the ping and other paths are not counted here)."""
        with self._lock:
            return dict(sorted(self._by_repository.items()))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._by_repository.clear()
            self.max_in_flight = 0

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /_proxy/counts`` answers."""
        with self._lock:
            counts = {f"{method} {kind}": n for (method, kind), n in sorted(self._counts.items())}
            return {
                "counts": counts,
                "total": sum(counts.values()),
                "max_in_flight": self.max_in_flight,
                "by_repository": dict(sorted(self._by_repository.items())),
            }

    def _control(self, handler: BaseHTTPRequestHandler) -> None:
        self._read_body(handler)  # keep the connection usable
        action = urllib.parse.urlsplit(handler.path).path[len(CONTROL_PREFIX) :].strip("/")
        if (handler.command, action) in (("GET", "counts"), ("HEAD", "counts")):
            _answer(handler, 200, {"Content-Type": "application/json"}, json.dumps(self.snapshot()).encode())
        elif (handler.command, action) == ("POST", "reset"):
            self.reset()
            _answer(handler, 200, {"Content-Type": "application/json"}, json.dumps(self.snapshot()).encode())
        else:
            message = f"latency proxy: no control {handler.command} {CONTROL_PREFIX}{action}".encode()
            _answer(handler, 404, {"Content-Type": "text/plain"}, message)

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
            chunks: list[bytes] = []
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
            repository = repository_of(path)
            if repository is not None:
                self._by_repository[repository] += 1
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            body = self._read_body(handler)
            if self.delay > 0:
                time.sleep(self.delay)
            fault = self.faults.decide(method, path) if self.faults is not None else None
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.slow_seconds)
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
            base = self._upstream_for(path)
            if fault is not None and fault.kind in ("500", "502", "503", "429"):
                if fault.after_upstream:
                    self._send(base, method, path, body, headers)
                extra = {"Retry-After": fault.retry_after} if fault.kind == "429" else {}
                message = f'{{"errors":[{{"code":"UNAVAILABLE","message":"injected {fault.kind}"}}]}}'.encode()
                _answer(handler, int(fault.kind), {"Content-Type": "application/json", **extra}, message)
                return
            if self.oci_1_1:
                status, reason, response_headers, data = self._exchange_1_1(base, method, path, body, headers)
            else:
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
        reset = fault is not None and fault.kind == "reset"
        if reset and (method == "HEAD" or len(data) < 2):
            _reset(handler)  # nothing to cut in the middle of: reset before the status line is sent
            return
        if method != "HEAD":
            handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if reset:
            handler.wfile.write(data[: len(data) // 2])
            _reset(handler)
            return
        if method != "HEAD" and data:
            handler.wfile.write(data)

    # --- distribution spec 1.1, where the upstream lacks it (``oci_1_1``) ----------------------------------

    def _exchange_1_1(
        self, base: str, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """One client request as a spec 1.1 registry answers it: the referrers API, a single-request upload;
        anything else forwarded (a manifest PUT with a ``subject`` recorded for the referrers API)."""
        split = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(split.query)
        referrers = _REFERRERS_PATH.match(split.path)
        if referrers and method in ("GET", "HEAD"):
            return self._referrers_index(referrers["name"], referrers["digest"], query.get("artifactType", [""])[0])
        upload = _UPLOAD_START.match(split.path)
        if upload and method == "POST" and body and "digest" in query and "mount" not in query:
            return self._single_request_upload(base, split.path, query["digest"][0], body, headers)
        answer = self._send(base, method, path, body, headers)
        manifest = _MANIFEST_PATH.match(split.path)
        if manifest and method == "PUT" and 200 <= answer[0] < 300:
            subject = self._record_referrer(manifest["name"], body, headers.get("Content-Type", ""))
            if subject:
                answer = (answer[0], answer[1], [*answer[2], ("OCI-Subject", subject)], answer[3])
        return answer

    def _record_referrer(self, name: str, body: bytes, content_type: str) -> str | None:
        """A manifest with a ``subject``, as the referrers API lists it; its subject's digest, else None."""
        try:
            manifest = json.loads(body)
            subject = manifest["subject"]["digest"]
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(manifest, dict) or not isinstance(subject, str):
            return None
        config = manifest.get("config")
        config = config if isinstance(config, dict) else {}
        entry: dict[str, Any] = {
            "mediaType": manifest.get("mediaType") or content_type,
            "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "size": len(body),
            "artifactType": manifest.get("artifactType") or config.get("mediaType", ""),
        }
        if isinstance(manifest.get("annotations"), dict):
            entry["annotations"] = manifest["annotations"]
        with self._lock:
            self._referrers.setdefault((name, subject), {})[entry["digest"]] = entry
        return subject

    def _referrers_index(
        self, name: str, digest: str, artifact_type: str
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        with self._lock:
            entries = list(self._referrers.get((name, digest), {}).values())
        headers = [("Content-Type", OCI_INDEX)]
        if artifact_type:
            entries = [entry for entry in entries if entry["artifactType"] == artifact_type]
            headers.append(("OCI-Filters-Applied", "artifactType"))
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        return 200, "OK", headers, json.dumps(index).encode()

    def _single_request_upload(
        self, base: str, start_path: str, digest: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """``POST ?digest=`` with the bytes: the upstream's POST, then its PUT; the client sees one 201."""
        plain = {k: v for k, v in headers.items() if k.lower() not in _ENTITY_HEADERS}
        started = self._send(base, "POST", start_path, b"", {**plain, "Content-Length": "0"})
        if started[0] != 202:
            return started
        location = urllib.parse.urlsplit(dict((k.lower(), v) for k, v in started[2]).get("location", ""))
        query = "&".join(part for part in (location.query, urllib.parse.urlencode({"digest": digest})) if part)
        put_headers = {**plain, "Content-Type": "application/octet-stream"}
        return self._send(base, "PUT", f"{location.path}?{query}", body, put_headers)

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


class ProxyControl:
    """Client of a proxy's control endpoint (a proxy in another process): ``counts()``, ``total()``, ``reset()``."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, action: str) -> dict[str, Any]:
        parsed = urllib.parse.urlsplit(self.url)
        connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=self.timeout)
        try:
            connection.request(method, f"{CONTROL_PREFIX}{action}", headers={"Content-Length": "0"})
            response = connection.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"proxy control {method} {action}: {response.status} {data[:200]!r}")
            result: dict[str, Any] = json.loads(data)
            return result
        finally:
            connection.close()

    def snapshot(self) -> dict[str, Any]:
        return self._call("GET", "counts")

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = self.snapshot()["counts"]
        return counts

    def total(self) -> int:
        return int(self.snapshot()["total"])

    def by_repository(self) -> dict[str, int]:
        by_repository: dict[str, int] = self.snapshot()["by_repository"]
        return by_repository

    def reset(self) -> None:
        self._call("POST", "reset")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of the server to proxy")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="added to every request (default 50)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="fraction of requests that fail (random)")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the random faults")
    kinds = ",".join(FAULT_KINDS)
    parser.add_argument("--fault-kinds", default=kinds, help=f"comma-separated, of {kinds}")
    parser.add_argument("--fault-at", action="append", default=[], metavar="N=KIND", help="fail request N (repeatable)")
    parser.add_argument(
        "--oci-1.1",
        dest="oci_1_1",
        action="store_true",
        help="answer the referrers API and single-request uploads (spec 1.1) for the upstream",
    )
    parser.add_argument("--slow-seconds", type=float, default=2.0, help="how late a 'slow' answer comes")
    args = parser.parse_args(argv)
    faults = None
    if args.fault_rate or args.fault_at:
        pairs = (spec.partition("=") for spec in args.fault_at)
        at = {int(n): Fault(kind, slow_seconds=args.slow_seconds) for n, _, kind in pairs}
        faults = FaultInjector(
            at=at,
            rate=args.fault_rate,
            seed=args.fault_seed,
            kinds=tuple(k for k in args.fault_kinds.split(",") if k),
            slow_seconds=args.slow_seconds,
        )
    proxy = LatencyProxy(
        args.upstream, delay=args.delay_ms / 1000, port=args.port, faults=faults, oci_1_1=args.oci_1_1
    ).start()
    print(f"proxying {proxy.url} -> {args.upstream} with {args.delay_ms:g} ms per request", flush=True)

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # a parent's terminate() prints the counts too
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
        if faults is not None:
            for name, count in faults.summary().items():
                print(f"{count:8d}  injected {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
