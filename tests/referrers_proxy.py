"""A thin proxy in front of a real Distribution registry that adds the OCI 1.1 referrers API.

Distribution 2.8 (the test registry) has no ``GET /v2/<name>/referrers/<digest>``. This proxy forwards
every request to the registry unchanged (rewriting upload ``Location`` headers to point back at
itself), keeps a list of every manifest PUT through it that carries a ``subject``, and answers the
referrers endpoint from that list, as the distribution spec says: an OCI image index (200, even when
empty) whose entries carry ``mediaType``, ``size``, ``digest``, ``artifactType`` (else the config's
media type) and the manifest's ``annotations``; an ``artifactType`` query filters it
(``OCI-Filters-Applied: artifactType``). A referrer whose manifest was deleted from the registry is
still listed: the proxy does not look (as a stale registry index would not).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field

import httpx

from tests.registry_fixtures import Recorded, Reply, ScriptedServer

_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[a-z0-9]+:[a-f0-9]+)$")
_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_HOP_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding", "accept-encoding"})
INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass
class ReferrersProxy:
    """``with ReferrersProxy(registry_url) as proxy:`` — ``proxy.host`` is used like a registry host."""

    upstream: str
    referrers: dict[tuple[str, str], list[dict[str, object]]] = field(default_factory=dict)
    api_requests: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=self.upstream, trust_env=False, timeout=10.0)
        self._server = ScriptedServer(self._handle)
        self.host = self._server.host
        self.url = self._server.url

    def ref(self, repository_and_tag: str) -> str:
        return f"{self.host}/{repository_and_tag}"

    def stop(self) -> None:
        self._server.stop()
        self._http.close()

    def __enter__(self) -> ReferrersProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, request: Recorded) -> Reply:
        path = request.url_path
        referrers = _REFERRERS.match(path)
        if referrers is not None and request.method == "GET":
            return self._answer_referrers(referrers["name"], referrers["digest"], request.query)
        headers = {k: v for k, v in request.headers.items() if k not in _HOP_HEADERS}
        response = self._http.request(request.method, request.path, headers=headers, content=request.body or None)
        manifest = _MANIFEST.match(path)
        if manifest is not None and request.method == "PUT" and response.status_code == 201:
            self._remember(manifest["name"], request)
        reply_headers = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS}
        if "location" in {k.lower() for k in reply_headers}:
            reply_headers = {
                k: (v.replace(self.upstream, self.url) if k.lower() == "location" else v)
                for k, v in reply_headers.items()
            }
        return Reply(response.status_code, reply_headers, b"" if request.method == "HEAD" else response.content)

    def _remember(self, name: str, request: Recorded) -> None:
        try:
            document = json.loads(request.body)
        except ValueError:
            return
        subject = document.get("subject") if isinstance(document, dict) else None
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
            return
        entry: dict[str, object] = {
            "mediaType": request.headers.get("content-type", document.get("mediaType", "")),
            "size": len(request.body),
            "digest": "sha256:" + hashlib.sha256(request.body).hexdigest(),
            "artifactType": document.get("artifactType") or document.get("config", {}).get("mediaType", ""),
        }
        if document.get("annotations"):
            entry["annotations"] = document["annotations"]
        with self._lock:
            listed = self.referrers.setdefault((name, subject["digest"]), [])
            if all(e["digest"] != entry["digest"] for e in listed):
                listed.append(entry)

    def _answer_referrers(self, name: str, digest: str, query: dict[str, list[str]]) -> Reply:
        with self._lock:
            self.api_requests += 1
            entries = list(self.referrers.get((name, digest), []))
        headers = {"Content-Type": INDEX}
        wanted = query.get("artifactType")
        if wanted:
            entries = [e for e in entries if e.get("artifactType") == wanted[0]]
            headers["OCI-Filters-Applied"] = "artifactType"
        body = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}).encode()
        return Reply(200, headers, body)
