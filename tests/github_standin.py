"""A GitHub stand-in for tests: the releases REST endpoints, on two real HTTP servers on 127.0.0.1.

It implements, with GitHub's paths, status codes and JSON fields (API version 2022-11-28):

API server (``standin.api_url``, optionally under a GHE-like prefix such as ``/api/v3``)
    GET    /repos/O/R/releases                 list, drafts only with the token; ``per_page``/``page`` + ``Link``
    POST   /repos/O/R/releases                 create (201 + Location); 422 ``already_exists`` on a published tag
    GET    /repos/O/R/releases/tags/TAG        published releases only (drafts are invisible by tag)
    GET    /repos/O/R/releases/ID              one release
    PATCH  /repos/O/R/releases/ID              update; ``draft: false`` publishes (immutable if ``immutable``)
    GET    /repos/O/R/releases/ID/assets       list assets (paged)
    GET    /repos/O/R/releases/assets/ID       JSON, or with ``Accept: application/octet-stream`` the
                                               content: 302 to the storage path on the uploads server
                                               (or 200 directly with ``redirect_downloads=False``)
    DELETE /repos/O/R/releases/assets/ID       204
Uploads server (``standin.uploads_url``, a different port: another origin)
    POST   /repos/O/R/releases/ID/assets?name=N[&label=L]   201; 422 duplicate name (``already_exists``);
                                               422 "Cannot upload assets to an immutable release."
    GET    /storage/ASSET_ID?sig=...            the signed download (400 if an Authorization header comes along)

Every request without the token is 401 "Requires authentication" (with ``anonymous_reads=True`` GETs
work anonymously and see no drafts); a wrong token is 401 "Bad credentials"; another repository is 404.

Tests use it as a context manager::

    with GitHubStandIn() as gh:
        target = GitHubTarget(gh.slug, Secret(gh.token), GitHubOptions(api_url=gh.api_url), sleep=...)
        gh.add_release("v1.0.0", draft=True, assets={"cosign.pub": b"..."})   # seed state
        gh.fail_next_uploads(1)                 # next upload: 502, leaving a starter asset
        gh.rate_limit_next(1, status=403, reset_at=...)   # or status=429, retry_after=...
        gh.fail_next(500, method="POST", path_contains="/releases")   # any other fault
        ...
        gh.calls()        # [("GET", "/repos/o/r/releases/tags/v1.0.0"), ...] (paths without the prefix)
        gh.requests       # every SeenRequest: server ("api"/"uploads"), method, path, headers, body
        gh.releases       # id -> StoredRelease (tag_name, draft, immutable, assets -> StoredAsset)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.registry_fixtures import Recorded, Reply

DOCS = "https://docs.github.com/rest/releases"
API_VERSION = "2022-11-28"
STANDIN_TOKEN = "ghp_StandInToken0123456789abcdefABCDEF"


@dataclass
class StoredAsset:
    id: int
    name: str
    data: bytes
    content_type: str = "application/octet-stream"
    label: str | None = None
    state: str = "uploaded"
    created_at: str = "2025-01-01T00:00:00Z"


@dataclass
class StoredRelease:
    id: int
    tag_name: str
    target_commitish: str = "main"
    name: str | None = None
    body: str | None = None
    draft: bool = True
    prerelease: bool = False
    immutable: bool = False
    assets: list[StoredAsset] = field(default_factory=list)
    created_at: str = "2025-01-01T00:00:00Z"
    published_at: str | None = None

    def asset(self, name: str) -> StoredAsset | None:
        return next((a for a in self.assets if a.name == name), None)


@dataclass(frozen=True)
class SeenRequest:
    server: str  # "api" or "uploads"
    method: str
    path: str  # as sent, with the query
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    @property
    def url_path(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)


@dataclass
class _Fault:
    status: int
    method: str | None
    path_contains: str | None
    server: str | None
    remaining: int
    headers: dict[str, str]
    body: bytes
    leave_starter: bool = False
    action: Callable[[], None] | None = None

    def matches(self, server: str, method: str, path: str) -> bool:
        return (
            (self.server is None or self.server == server)
            and (self.method is None or self.method == method)
            and (self.path_contains is None or self.path_contains in path)
        )


def _json(status: int, data: Any, headers: Mapping[str, str] | None = None) -> Reply:
    merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    return Reply(status, merged, json.dumps(data).encode("utf-8"))


def _message(status: int, message: str, doc: str = DOCS, **extra: Any) -> Reply:
    return _json(status, {"message": message, "documentation_url": doc, "status": str(status), **extra})


def _validation(resource: str, code: str, field_name: str) -> Reply:
    return _json(
        422,
        {
            "message": "Validation Failed",
            "errors": [{"resource": resource, "code": code, "field": field_name}],
            "documentation_url": DOCS,
            "status": "422",
        },
    )


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up early is no test failure


class _Server:
    """One HTTP/1.1 server on 127.0.0.1 answering from ``handler`` (like ScriptedServer in
    registry_fixtures, but with TCP_NODELAY and one write per answer: no 40 ms delayed-ACK stalls)."""

    def __init__(self, handler: Callable[[Recorded], Reply]) -> None:
        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                try:
                    reply = handler(recorded)
                except Exception as exc:  # a broken stand-in: answer 500 and say why
                    reply = Reply(500, {"Content-Type": "text/plain"}, f"stand-in failed: {exc!r}".encode())
                head = [f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('',))[0]}"]
                head += [f"{name}: {value}" for name, value in reply.headers.items()]
                if "content-length" not in {k.lower() for k in reply.headers}:
                    head.append(f"Content-Length: {len(reply.body)}")
                payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
                self.wfile.write(payload + (reply.body if self.command != "HEAD" else b""))

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self._server = _QuietServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="github-standin", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class GitHubStandIn:
    """The stand-in; see the module docstring. State is inspectable and may be changed between calls."""

    def __init__(
        self,
        *,
        owner: str = "octo-org",
        repo: str = "octo-repo",
        token: str = STANDIN_TOKEN,
        api_prefix: str = "",
        uploads_prefix: str = "",
        immutable: bool = True,
        digests: bool = True,
        redirect_downloads: bool = True,
        anonymous_reads: bool = False,
    ) -> None:
        self.owner, self.repo, self.token = owner, repo, token
        self.api_prefix, self.uploads_prefix = api_prefix.rstrip("/"), uploads_prefix.rstrip("/")
        self.immutable = immutable
        self.digests = digests
        self.redirect_downloads = redirect_downloads
        self.anonymous_reads = anonymous_reads
        self.releases: dict[int, StoredRelease] = {}
        self.requests: list[SeenRequest] = []
        self._faults: list[_Fault] = []
        self._ids = itertools.count(1001)
        self._lock = threading.RLock()
        self._api = _Server(lambda r: self._serve("api", r))
        self._uploads = _Server(lambda r: self._serve("uploads", r))
        self.api_url = self._api.url + self.api_prefix
        self.uploads_url = self._uploads.url + self.uploads_prefix

    # --- life cycle --------------------------------------------------------------------------------

    def stop(self) -> None:
        self._api.stop()
        self._uploads.stop()

    def __enter__(self) -> GitHubStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.repo}"

    # --- seeding and inspecting ----------------------------------------------------------------------

    def add_release(
        self,
        tag: str,
        *,
        draft: bool = True,
        assets: Mapping[str, bytes] | None = None,
        starters: Iterable[str] = (),
        immutable: bool | None = None,
    ) -> StoredRelease:
        with self._lock:
            release = StoredRelease(next(self._ids), tag, name=tag, draft=draft)
            if not draft:
                release.immutable = self.immutable if immutable is None else immutable
                release.published_at = "2025-01-02T00:00:00Z"
            for name, data in (assets or {}).items():
                release.assets.append(StoredAsset(next(self._ids), name, data))
            for name in starters:
                release.assets.append(StoredAsset(next(self._ids), name, b"", state="starter"))
            self.releases[release.id] = release
            return release

    def releases_for(self, tag: str) -> list[StoredRelease]:
        with self._lock:
            return [r for r in self.releases.values() if r.tag_name == tag]

    def calls(self, server: str | None = None) -> list[tuple[str, str]]:
        """(method, path without prefix and query) of every request, in order."""
        out = []
        for seen in list(self.requests):
            if server is None or seen.server == server:
                prefix = self.api_prefix if seen.server == "api" else self.uploads_prefix
                path = seen.url_path
                out.append((seen.method, path[len(prefix) :] if prefix and path.startswith(prefix) else path))
        return out

    # --- faults --------------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        server: str | None = None,
        count: int = 1,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        action: Callable[[], None] | None = None,
    ) -> None:
        """The next ``count`` matching requests answer ``status``; nothing changes but what ``action`` does
        (called just before answering: a concurrent writer, say)."""
        payload = body if body is not None else json.dumps({"message": "Server Error"}).encode()
        fault = _Fault(status, method, path_contains, server, count, dict(headers or {}), payload, action=action)
        with self._lock:
            self._faults.append(fault)

    def fail_next_uploads(self, count: int = 1, *, status: int = 502, leave_starter: bool = True) -> None:
        """The next ``count`` uploads answer ``status``; each leaves a ``starter`` asset of that name."""
        with self._lock:
            self._faults.append(
                _Fault(status, "POST", "/assets", "uploads", count, {}, b'{"message": "Bad Gateway"}', leave_starter)
            )

    def rate_limit_next(
        self,
        count: int = 1,
        *,
        status: int = 403,
        retry_after: int | None = None,
        reset_at: int | None = None,
    ) -> None:
        """The next ``count`` requests are refused by the rate limit (primary: ``x-ratelimit-remaining: 0``)."""
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-used": "5000", "x-ratelimit-resource": "core"}
        if reset_at is not None:
            headers |= {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset_at)}
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        message = (
            "API rate limit exceeded for user ID 1."
            if reset_at is not None
            else "You have exceeded a secondary rate limit."
        )
        body = json.dumps({"message": message, "documentation_url": "https://docs.github.com/rest/rate-limit"})
        with self._lock:
            self._faults.append(_Fault(status, None, None, None, count, headers, body.encode()))

    # --- JSON views ----------------------------------------------------------------------------------

    def _repo_api(self) -> str:
        return f"{self.api_url}/repos/{self.owner}/{self.repo}"

    def asset_json(self, release: StoredRelease, asset: StoredAsset) -> dict[str, Any]:
        uploaded = asset.state == "uploaded"
        data: dict[str, Any] = {
            "url": f"{self._repo_api()}/releases/assets/{asset.id}",
            "browser_download_url": f"{self._api.url}/{self.owner}/{self.repo}/releases/download/"
            f"{release.tag_name}/{asset.name}",
            "id": asset.id,
            "node_id": f"RA_{asset.id}",
            "name": asset.name,
            "label": asset.label,
            "state": asset.state,
            "content_type": asset.content_type,
            "size": len(asset.data),
            "download_count": 0,
            "created_at": asset.created_at,
            "updated_at": asset.created_at,
            "uploader": {"login": "octocat", "id": 1},
        }
        if self.digests:
            data["digest"] = "sha256:" + hashlib.sha256(asset.data).hexdigest() if uploaded else None
        return data

    def release_json(self, release: StoredRelease) -> dict[str, Any]:
        url = f"{self._repo_api()}/releases/{release.id}"
        html_tag = release.tag_name if not release.draft else f"untagged-{release.id:x}"
        return {
            "url": url,
            "html_url": f"{self._api.url}/{self.owner}/{self.repo}/releases/tag/{html_tag}",
            "assets_url": f"{url}/assets",
            "upload_url": f"{self.uploads_url}/repos/{self.owner}/{self.repo}/releases/{release.id}/assets"
            "{?name,label}",
            "tarball_url": None if release.draft else f"{self._repo_api()}/tarball/{release.tag_name}",
            "zipball_url": None if release.draft else f"{self._repo_api()}/zipball/{release.tag_name}",
            "id": release.id,
            "node_id": f"RE_{release.id}",
            "tag_name": release.tag_name,
            "target_commitish": release.target_commitish,
            "name": release.name,
            "body": release.body,
            "draft": release.draft,
            "prerelease": release.prerelease,
            "immutable": release.immutable,
            "created_at": release.created_at,
            "published_at": release.published_at,
            "author": {"login": "octocat", "id": 1},
            "assets": [self.asset_json(release, a) for a in release.assets],
        }

    # --- serving -------------------------------------------------------------------------------------

    def _serve(self, server: str, request: Recorded) -> Reply:
        seen = SeenRequest(server, request.method, request.path, dict(request.headers), request.body)
        with self._lock:
            self.requests.append(seen)
            fault = next((f for f in self._faults if f.matches(server, request.method, seen.url_path)), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                if fault.leave_starter:
                    self._leave_starter(seen)
                if fault.action is not None:
                    fault.action()
                headers = {"Content-Type": "application/json; charset=utf-8", **fault.headers}
                return Reply(fault.status, headers, fault.body)
            if server == "uploads" and seen.url_path.startswith("/storage/"):
                return self._storage(seen)
            version = seen.headers.get("x-github-api-version")
            if version is not None and version != API_VERSION:
                return _message(400, f"Unsupported 'X-GitHub-Api-Version' header: {version}")
            authed = self._authorization(seen)
            if isinstance(authed, Reply):
                return authed
            prefix = self.api_prefix if server == "api" else self.uploads_prefix
            path = seen.url_path
            if prefix:
                if not path.startswith(prefix + "/"):
                    return _message(404, "Not Found")
                path = path[len(prefix) :]
            reply = self._route_api(seen, path, authed) if server == "api" else self._route_uploads(seen, path)
            limit_headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999", "x-ratelimit-used": "1"}
            return Reply(reply.status, {**limit_headers, **reply.headers}, reply.body)

    def _authorization(self, seen: SeenRequest) -> bool | Reply:
        """True with the token, False for an allowed anonymous read, else the 401."""
        header = seen.headers.get("authorization")
        if header is None:
            if self.anonymous_reads and seen.method == "GET":
                return False
            return _message(401, "Requires authentication", "https://docs.github.com/rest")
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("bearer", "token") or value != self.token:
            return _message(401, "Bad credentials", "https://docs.github.com/rest")
        return True

    def _leave_starter(self, seen: SeenRequest) -> None:
        match = re.search(r"/releases/(\d+)/assets$", seen.url_path)
        names = seen.query.get("name")
        release = self.releases.get(int(match.group(1))) if match else None
        if release is not None and names and release.asset(names[0]) is None:
            release.assets.append(StoredAsset(next(self._ids), names[0], b"", state="starter"))

    def _page(self, seen: SeenRequest, items: list[Any], base: str) -> Reply:
        try:
            per_page = min(100, max(1, int(seen.query.get("per_page", ["30"])[0])))
            page = max(1, int(seen.query.get("page", ["1"])[0]))
        except ValueError:
            return _message(422, "Invalid pagination parameters")
        chunk = items[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(items) // per_page))
        links = []
        if page < last:
            links.append(f'<{base}?per_page={per_page}&page={page + 1}>; rel="next"')
            links.append(f'<{base}?per_page={per_page}&page={last}>; rel="last"')
        if page > 1:
            links.append(f'<{base}?per_page={per_page}&page=1>; rel="first"')
            links.append(f'<{base}?per_page={per_page}&page={page - 1}>; rel="prev"')
        return _json(200, chunk, {"Link": ", ".join(links)} if links else None)

    def _route_api(self, seen: SeenRequest, path: str, authed: bool) -> Reply:
        repo_root = f"/repos/{self.owner}/{self.repo}"
        if not (path == repo_root + "/releases" or path.startswith(repo_root + "/releases/")):
            return _message(404, "Not Found")
        rest = path[len(repo_root + "/releases") :]
        method = seen.method
        visible = [r for r in self.releases.values() if authed or not r.draft]
        if rest == "":
            if method == "GET":
                ordered = sorted(visible, key=lambda r: r.id, reverse=True)
                return self._page(seen, [self.release_json(r) for r in ordered], self.api_url + path)
            if method == "POST":
                return self._create(seen)
        if (m := re.fullmatch(r"/tags/(.+)", rest)) and method == "GET":
            tag = urllib.parse.unquote(m.group(1))
            found = [r for r in self.releases.values() if r.tag_name == tag and not r.draft]
            return _json(200, self.release_json(found[0])) if found else _message(404, "Not Found")
        if m := re.fullmatch(r"/(\d+)", rest):
            release = self.releases.get(int(m.group(1)))
            if release is None or release not in visible:
                return _message(404, "Not Found")
            if method == "GET":
                return _json(200, self.release_json(release))
            if method == "PATCH":
                return self._update(seen, release)
        if (m := re.fullmatch(r"/(\d+)/assets", rest)) and method == "GET":
            release = self.releases.get(int(m.group(1)))
            if release is None or release not in visible:
                return _message(404, "Not Found")
            return self._page(seen, [self.asset_json(release, a) for a in release.assets], self.api_url + path)
        if m := re.fullmatch(r"/assets/(\d+)", rest):
            found_asset = self._find_asset(int(m.group(1)), visible)
            if found_asset is None:
                return _message(404, "Not Found")
            release, asset = found_asset
            if method == "DELETE":
                release.assets.remove(asset)
                return Reply(204)
            if method == "GET":
                if seen.headers.get("accept", "").startswith("application/octet-stream"):
                    if not self.redirect_downloads:
                        return Reply(200, {"Content-Type": "application/octet-stream"}, asset.data)
                    location = f"{self._uploads.url}/storage/{asset.id}?sig=signed-{asset.id}&expires=9999999999"
                    return Reply(302, {"Location": location})
                return _json(200, self.asset_json(release, asset))
        return _message(404, "Not Found")

    def _find_asset(self, asset_id: int, releases: list[StoredRelease]) -> tuple[StoredRelease, StoredAsset] | None:
        for release in releases:
            for asset in release.assets:
                if asset.id == asset_id:
                    return release, asset
        return None

    def _body(self, seen: SeenRequest) -> dict[str, Any] | Reply:
        try:
            data = json.loads(seen.body or b"{}")
        except ValueError:
            return _message(400, "Problems parsing JSON")
        return data if isinstance(data, dict) else _message(400, "Problems parsing JSON")

    def _create(self, seen: SeenRequest) -> Reply:
        data = self._body(seen)
        if isinstance(data, Reply):
            return data
        tag = data.get("tag_name")
        if not isinstance(tag, str) or not tag:
            return _validation("Release", "missing_field", "tag_name")
        if any(r.tag_name == tag and not r.draft for r in self.releases.values()):
            return _validation("Release", "already_exists", "tag_name")
        draft = bool(data.get("draft", False))
        release = StoredRelease(
            next(self._ids),
            tag,
            target_commitish=str(data.get("target_commitish") or "main"),
            name=data.get("name"),
            body=data.get("body"),
            draft=draft,
            prerelease=bool(data.get("prerelease", False)),
        )
        if not draft:
            release.published_at = "2025-01-02T00:00:00Z"
            release.immutable = self.immutable
        self.releases[release.id] = release
        return _json(201, self.release_json(release), {"Location": f"{self._repo_api()}/releases/{release.id}"})

    def _update(self, seen: SeenRequest, release: StoredRelease) -> Reply:
        data = self._body(seen)
        if isinstance(data, Reply):
            return data
        if data.get("draft") is False and release.draft:
            if any(r.tag_name == release.tag_name and not r.draft for r in self.releases.values()):
                return _validation("Release", "already_exists", "tag_name")
            release.draft = False
            release.published_at = "2025-01-02T00:00:00Z"
            release.immutable = self.immutable
        for key in ("name", "body", "target_commitish"):
            if isinstance(data.get(key), str):
                setattr(release, key, data[key])
        return _json(200, self.release_json(release))

    def _route_uploads(self, seen: SeenRequest, path: str) -> Reply:
        m = re.fullmatch(rf"/repos/{re.escape(self.owner)}/{re.escape(self.repo)}/releases/(\d+)/assets", path)
        if m is None or seen.method != "POST":
            return _message(404, "Not Found")
        release = self.releases.get(int(m.group(1)))
        if release is None:
            return _message(404, "Not Found")
        names = seen.query.get("name")
        if not names or not names[0]:
            return _validation("ReleaseAsset", "missing_field", "name")
        content_type = seen.headers.get("content-type")
        if not content_type:
            return _message(400, "Bad Content-Type header value: ''")
        if not release.draft and release.immutable:
            return _message(422, "Cannot upload assets to an immutable release.", "https://docs.github.com/rest")
        if release.asset(names[0]) is not None:
            return _validation("ReleaseAsset", "already_exists", "name")
        label = seen.query.get("label", [None])[0]
        asset = StoredAsset(next(self._ids), names[0], seen.body, content_type, label)
        release.assets.append(asset)
        return _json(201, self.asset_json(release, asset))

    def _storage(self, seen: SeenRequest) -> Reply:
        if "authorization" in seen.headers:
            return Reply(400, {"Content-Type": "application/xml"}, b"<Error><Code>InvalidArgument</Code></Error>")
        m = re.fullmatch(r"/storage/(\d+)", seen.url_path)
        if m is None or seen.query.get("sig") != [f"signed-{m.group(1)}"]:
            return Reply(403, {"Content-Type": "application/xml"}, b"<Error><Code>AccessDenied</Code></Error>")
        found = self._find_asset(int(m.group(1)), list(self.releases.values()))
        if found is None:
            return Reply(404, {"Content-Type": "application/xml"}, b"<Error><Code>NoSuchKey</Code></Error>")
        return Reply(200, {"Content-Type": "application/octet-stream"}, found[1].data)
