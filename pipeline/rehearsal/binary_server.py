"""A local HTTP server for binaries: what rehearsals (and tests) fetch a vector's ``binaries`` urls from.

Every path answers with synthetic bytes derived from the path and a salt (``size`` bytes, the same every time,
so a re-run pins the same digests), unless told otherwise: :meth:`BinaryServer.put` serves given bytes at a
path, :meth:`redirect` answers a path with a redirect, :meth:`missing` with 404. :func:`binary_mirror_specs`
maps every ``scheme://host`` of a source's binaries onto the server (``--binary-mirror`` values).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable

from pipeline.rehearsal.standin_http import Request, Response, StandinServer

CONTENT_TYPE = "application/octet-stream"


def synthetic_bytes(path: str, salt: str, size: int) -> bytes:
    """``size`` bytes, a function of ``path`` and ``salt`` only."""
    block = hashlib.sha256(f"{salt} {path}".encode()).digest()
    return (block * (size // len(block) + 1))[:size]


class BinaryServer(StandinServer):
    thread_name = "release-vector-binaries"

    def __init__(self, *, salt: str = "", size: int = 4096, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.salt, self.size = salt, size
        self._lock = threading.Lock()
        self._files: dict[str, bytes] = {}
        self._redirects: dict[str, tuple[int, str]] = {}
        self._missing: set[str] = set()

    def put(self, path: str, data: bytes) -> None:
        with self._lock:
            self._files[path] = data

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        with self._lock:
            self._redirects[path] = (status, location)

    def missing(self, path: str) -> None:
        with self._lock:
            self._missing.add(path)

    def content(self, path: str) -> bytes:
        """What the server answers at ``path`` (absent a redirect or a 404)."""
        with self._lock:
            data = self._files.get(path)
        return data if data is not None else synthetic_bytes(path, self.salt, self.size)

    def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n", "text/plain")
        with self._lock:
            redirect = self._redirects.get(request.path)
            missing = request.path in self._missing
        if redirect is not None:
            return Response(redirect[0], b"", "text/plain", {"Location": redirect[1]})
        if missing:
            return Response(404, b"not found\n", "text/plain")
        return Response(200, self.content(request.path), CONTENT_TYPE)

    def error_response(self, status: int, message: str) -> Response:
        return Response(status, message.encode() + b"\n", "text/plain")


def binary_mirror_specs(urls: Iterable[str], server_url: str) -> list[str]:
    """``https://github.com=http://127.0.0.1:PORT/https/github.com`` for every ``scheme://host`` of ``urls``."""
    origins: dict[str, None] = {}
    for url in urls:
        scheme, _, rest = url.partition("://")
        origins.setdefault(f"{scheme}://{rest.split('/', 1)[0]}", None)
    specs = []
    for origin in origins:
        scheme, _, host = origin.partition("://")
        specs.append(f"{origin}={server_url}/{scheme.lower()}/{host}")
    return specs
