"""GitHub releases as a release target, through GitHub's documented REST contract only (API 2022-11-28).

Endpoints used (``{api}`` is ``https://api.github.com``, or ``https://HOST/api/v3`` on GitHub Enterprise):

- ``GET {api}/repos/O/R/releases/tags/TAG``       a published release (drafts are invisible here)
- ``GET {api}/repos/O/R/releases?per_page=100``   every release, drafts included (with push access); ``Link`` paging
- ``POST {api}/repos/O/R/releases``               create (``draft: true``, ``tag_name``, ``target_commitish``, ...)
- ``GET {api}/repos/O/R/releases/ID/assets``      the assets (``name``, ``size``, ``state``, ``digest``)
- ``POST <upload_url>?name=NAME``                 upload, on the uploads host the release names
                                                  (``uploads.github.com``; GHE ``https://HOST/api/uploads``)
- ``DELETE {api}/repos/O/R/releases/assets/ID``   remove a ``starter`` asset a failed upload left
- ``PATCH {api}/repos/O/R/releases/ID``           publish (``draft: false``)
- ``GET {api}/repos/O/R/releases/assets/ID``      with ``Accept: application/octet-stream``: the content
                                                  (200, or 302 to a storage host: followed without the token)

Behaviour: bounded retries with backoff on 5xx and connection errors (a failed upload first deletes the
starter asset it may have left; a failed create first looks for the draft it may have made); the
rate limits (``Retry-After``, ``x-ratelimit-remaining: 0`` + ``x-ratelimit-reset``) are waited out up to
``RetryPolicy.max_retry_after`` seconds, beyond that the error says when to re-run. The token (a
:class:`~pipeline.secret.Secret`) goes as ``Authorization: Bearer`` to the API host and the release's
uploads host only, never across a redirect, and never into a message. Errors are one line naming the
URL without its query: :class:`~pipeline.errors.AuthError` (401/403),
:class:`~pipeline.errors.ConflictError` (different content, published release),
:class:`~pipeline.errors.GitHubError` (everything else).
"""

from __future__ import annotations

import json
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NoReturn

import httpx

from pipeline import __version__, jsonbounded
from pipeline.errors import AuthError, ConflictError, GitHubError, InvalidInputError
from pipeline.http import (
    ClosingClient,
    RetryPolicy,
    Timeouts,
    describe_transport_error,
    http_client,
    is_loopback_host,
    parse_retry_after,
    read_capped,
    retry_delay,
    scrub_url,
    send,
    ssl_context,
)
from pipeline.network_defaults import DEFAULT_GITHUB_API_URL
from pipeline.oci import digest as digests
from pipeline.secret import Secret, is_header_token
from pipeline.targets.base import (
    UPLOADED,
    AssetState,
    FetchedAsset,
    ReleaseHandle,
    ReleaseState,
    check_asset_name,
    check_version,
)

log = logging.getLogger(__name__)

DEFAULT_API_URL: Final = DEFAULT_GITHUB_API_URL  # defined beside the other defaults --help shows
API_VERSION: Final = "2022-11-28"
JSON_ACCEPT: Final = "application/vnd.github+json"
OCTET_STREAM: Final = "application/octet-stream"
PER_PAGE: Final = 100
MAX_REDIRECTS: Final = 5
SECONDARY_RATE_LIMIT_WAIT: Final = 60.0
_JSON_LIMIT: Final = 32 * 1024 * 1024
_RETRYABLE: Final = frozenset({500, 502, 503, 504})
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_REPO_PART: Final = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_URI_TEMPLATE: Final = re.compile(r"\{[^}]*\}")
_DIGEST: Final = re.compile(r"^sha256:[0-9a-f]{64}$")
_TOKEN_HINT: Final = "set GITHUB_TOKEN to a token with contents: write permission on {repo}"  # noqa: S105


@dataclass(frozen=True)
class GitHubOptions:
    """How to reach GitHub. ``api_url``: ``https://api.github.com`` or ``https://HOST/api/v3`` (GHE)."""

    api_url: str = DEFAULT_API_URL
    timeouts: Timeouts = field(default_factory=Timeouts)
    retries: RetryPolicy = field(default_factory=RetryPolicy)
    cacert: Path | None = None
    proxy: str | None = None
    user_agent: str = f"release-vector/{__version__}"
    max_asset_bytes: int = 64 * 1024 * 1024
    max_pages: int = 100


def parse_repository(text: str) -> tuple[str, str]:
    """``OWNER/REPO`` → (owner, repo), or InvalidInputError."""
    parts = text.strip().split("/")
    if len(parts) != 2 or not all(_REPO_PART.match(p) for p in parts) or parts[1] in (".", ".."):
        raise InvalidInputError(f"GitHub repository {text!r} is not OWNER/REPO")
    return parts[0], parts[1]


def uploads_base(api_url: str) -> str:
    """The uploads host for an API URL (only a fallback: a release's ``upload_url`` is what counts)."""
    url = httpx.URL(api_url.rstrip("/"))
    if url.host == "api.github.com":
        return "https://uploads.github.com"
    path = url.path.rstrip("/")
    if path.endswith("/api/v3"):
        return str(url.copy_with(path=path[: -len("/v3")] + "/uploads"))
    return str(url)


def expand_upload_url(template: str, name: str) -> httpx.URL:
    """``.../assets{?name,label}`` → ``.../assets?name=NAME`` (RFC 6570 form-style query expansion)."""
    base = _URI_TEMPLATE.sub("", template)
    return httpx.URL(base).copy_merge_params({"name": name})


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"https": 443, "http": 80}.get(url.scheme)
    return (url.scheme, url.host, url.port if url.port is not None else default)


def _host_port(url: httpx.URL) -> str:
    return f"{url.host}:{url.port}" if url.port is not None else url.host


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes
    url: httpx.URL

    def json(self) -> Any:
        where = scrub_url(self.url)
        try:
            return jsonbounded.loads(self.body, source=where, what="GitHub's answer", max_bytes=len(self.body))
        except (ValueError, UnicodeDecodeError):
            raise GitHubError("GitHub answered something that is not JSON", where=where) from None
        except InvalidInputError as error:
            raise GitHubError(error.message, where=where) from None

    def error_codes(self) -> set[tuple[str, str]]:
        """(code, field) of each entry of a 422's ``errors``."""
        try:
            data = jsonbounded.loads(self.body, source="GitHub", max_bytes=len(self.body))
        except (ValueError, UnicodeDecodeError, InvalidInputError):
            return set()
        errors = data.get("errors") if isinstance(data, dict) else None
        if not isinstance(errors, list):
            return set()
        return {(str(e.get("code", "")), str(e.get("field", ""))) for e in errors if isinstance(e, dict)}


class _Transient(Exception):
    """Internal: a try of a request that is not safe to repeat blindly failed in a repeatable way."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def github_token(value: str | None, where: str) -> Secret | None:
    """The token from ``where`` (``env://GITHUB_TOKEN``) as a Secret; None when unset or empty.

    A GitHub token is printable ASCII; anything else (a paste with a non-breaking space, bytes that are
    not UTF-8) cannot go in the ``Authorization`` header and is refused here, naming its source.
    """
    if not value:
        return None
    if not is_header_token(value):
        raise AuthError(
            "the GitHub token is not printable ASCII (no spaces, no other characters)",
            where=where,
            hint="set it to the token exactly as GitHub shows it",
        )
    return Secret(value)


class GitHubTarget(ClosingClient):
    """:class:`~pipeline.targets.base.ReleaseTarget` on the releases of one GitHub repository."""

    def __init__(
        self,
        repository: str,
        token: Secret | None,
        options: GitHubOptions | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.owner, self.repo = parse_repository(repository)
        self.options = options or GitHubOptions()
        if token is not None and not is_header_token(token.reveal()):
            raise AuthError("the GitHub token is not printable ASCII", where=scrub_url(self.options.api_url))
        self._token = token
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        api = httpx.URL(self.options.api_url.rstrip("/"))
        self._check_scheme(api, "GitHub API URL")
        self._api = str(api)
        self._trusted = {_origin(api)}
        self._http = http_client(
            verify=ssl_context(self.options.cacert, "GitHub CA certificate file is not a readable PEM file"),
            timeout=self.options.timeouts.to_httpx(),
            proxy=self.options.proxy,
            headers={"User-Agent": self.options.user_agent, "X-GitHub-Api-Version": API_VERSION},
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"GitHubTarget({self.describe()!r})"

    # --- the interface -----------------------------------------------------------------------------

    def describe(self) -> str:
        api = httpx.URL(self._api)
        host = "github.com" if api.host == "api.github.com" else _host_port(api)
        return f"{host}/{self.owner}/{self.repo}"

    @property
    def _slug(self) -> str:
        return f"{self.owner}/{self.repo}"

    def _repo_url(self, suffix: str = "") -> str:
        return f"{self._api}/repos/{self.owner}/{self.repo}{suffix}"

    def check_writable(self, version: str) -> None:
        """Nothing to probe without writing: a token without ``contents: write`` shows at the draft, which
        comes after every signature, and a failed release leaves no draft."""

    def observe(self, version: str) -> ReleaseState:
        release = self._find_release(check_version(version))
        if release is None:
            return ReleaseState(version, where=self._repo_url("/releases"))
        assets = {a.name: a for a in map(self._asset_state, self._list_assets(release))}
        return ReleaseState(version, True, bool(release.get("draft")), assets, where=self._release_where(release))

    def ensure_draft(self, version: str, *, target_commitish: str | None, name: str, body: str) -> ReleaseHandle:
        check_version(version)
        release = self._find_release(version)
        if release is not None and not release.get("draft"):
            raise ConflictError(
                f"release {version} is already published",
                where=self._release_where(release),
                hint=self._published_hint(version),
            )
        if release is not None:
            return self._handle(version, release)
        payload: dict[str, Any] = {"tag_name": version, "name": name, "body": body, "draft": True}
        if target_commitish:
            payload["target_commitish"] = target_commitish
        url = self._repo_url("/releases")
        last: _Transient | None = None
        for number in range(self.options.retries.attempts):
            try:
                answer = self._send("POST", url, json_body=payload, idempotent=False)
            except _Transient as transient:
                last = transient
                self._sleep(self._delay(number, transient.retry_after))
                found = self._find_release(version)  # the failed try may have created it
                if found is not None and found.get("draft"):
                    return self._handle(version, found)
                continue
            if answer.status == 201:
                return self._handle(version, self._release_json(answer))
            if answer.status == 422 and ("already_exists", "tag_name") in answer.error_codes():
                raise ConflictError(
                    f"a release with tag {version} exists already",
                    where=scrub_url(url),
                    hint=self._published_hint(version),
                )
            self._fail(answer, "create the draft release")
        assert last is not None
        raise GitHubError(
            f"{last.reason} creating the draft release {version} (after {self.options.retries.attempts} attempts)",
            where=scrub_url(url),
        )

    def upload_asset(self, handle: ReleaseHandle, name: str, data: bytes, content_type: str) -> bool:
        check_asset_name(name)
        if not handle.upload_url:
            raise GitHubError(f"release {handle.version} has no upload_url", where=handle.where)
        upload = expand_upload_url(handle.upload_url, name)
        self._check_scheme(upload, "GitHub upload URL")
        where = scrub_url(upload)
        attempts = self.options.retries.attempts
        last: str | None = None
        for number in range(attempts):
            existing = {a.get("name"): a for a in self._list_assets_by_id(handle.ident)}.get(name)
            if existing is not None:
                if existing.get("state") == UPLOADED:
                    if self._same_content(existing, data):
                        return False
                    raise ConflictError(
                        f"release {handle.version} holds a different {name}",
                        where=self._asset_where(existing),
                        hint=f"delete the asset {name} from the draft release {handle.version} if stale, then re-run",
                    )
                self._delete_asset(existing)  # a starter asset a failed upload left
            try:
                answer = self._send(
                    "POST", upload, content=data, content_type=content_type or OCTET_STREAM, idempotent=False
                )
            except _Transient as transient:
                last = transient.reason
                if number < attempts - 1:
                    self._sleep(self._delay(number, transient.retry_after))
                continue
            if answer.status == 201:
                return True
            if answer.status == 422:
                if ("already_exists", "name") in answer.error_codes():
                    last = "GitHub answered 422 already_exists"
                    continue  # someone else uploaded it: the next round compares its content
                if "immutable" in self._summary(answer).lower():
                    raise ConflictError(
                        f"release {handle.version} is published and immutable; {name} cannot be added",
                        where=where,
                        hint=self._published_hint(handle.version),
                    )
            self._fail(answer, f"upload {name}")
        raise GitHubError(f"uploading {name} failed: {last} (after {attempts} attempts)", where=where)

    def publish(self, handle: ReleaseHandle) -> None:
        url = self._repo_url(f"/releases/{handle.ident}")
        answer = self._send("PATCH", url, json_body={"draft": False})
        if answer.status == 200:
            release = self._release_json(answer)
            if release.get("draft"):
                raise GitHubError(f"GitHub kept release {handle.version} a draft", where=scrub_url(url))
            return
        if answer.status == 404:
            raise GitHubError(
                f"draft release {handle.version} is gone", where=scrub_url(url), hint="re-run: a new draft is made"
            )
        if answer.status == 422 and "immutable" in self._summary(answer).lower():
            raise ConflictError(
                f"release {handle.version} cannot be published: {self._summary(answer)}",
                where=scrub_url(url),
                hint=self._published_hint(handle.version),
            )
        self._fail(answer, f"publish release {handle.version}")

    def read_asset(self, version: str, name: str, *, published_only: bool = True) -> bytes | None:
        release = self._find_release(check_version(version), drafts=not published_only)
        if release is None or (published_only and release.get("draft")):
            return None
        for asset in self._list_assets(release):
            if asset.get("name") == name and asset.get("state") == UPLOADED:
                return self._download(asset)
        return None

    def fetch_asset(self, version: str, name: str, *, max_bytes: int) -> FetchedAsset:
        release = self._find_release(check_version(version), drafts=False)
        if release is None or release.get("draft"):
            where = self._repo_url(f"/releases/tags/{version}")
            return FetchedAsset(None, where, f"release {version} is not published")
        where = self._release_where(release)
        asset = next((a for a in self._list_assets(release) if a.get("name") == name), None)
        if asset is None:
            return FetchedAsset(None, where, f"release {version} is published without {name}", missing=True)
        state = self._asset_state(asset)
        if not state.complete:
            return FetchedAsset(None, where, f"the {name} of release {version} is incomplete (state {state.state})")
        if state.size > max_bytes:  # told before any byte is read; a server that lies is cut off at the limit
            return FetchedAsset(None, where, f"the {name} of release {version} is {state.size} bytes, over the "
                                f"limit of {max_bytes}")  # fmt: skip
        return FetchedAsset(self._download(asset, limit=max_bytes), where)

    # --- releases and assets ------------------------------------------------------------------------

    def _handle(self, version: str, release: Mapping[str, Any]) -> ReleaseHandle:
        upload_url = release.get("upload_url")
        if not isinstance(upload_url, str) or not upload_url:
            base = uploads_base(self._api)
            upload_url = f"{base}/repos/{self.owner}/{self.repo}/releases/{release['id']}/assets{{?name,label}}"
        upload = httpx.URL(_URI_TEMPLATE.sub("", upload_url))
        self._check_scheme(upload, "GitHub upload URL")
        self._trusted.add(_origin(upload))
        return ReleaseHandle(version, str(release["id"]), upload_url, self._release_where(release))

    def _release_where(self, release: Mapping[str, Any]) -> str:
        return self._repo_url(f"/releases/{release.get('id')}")

    def _asset_where(self, asset: Mapping[str, Any]) -> str:
        return self._repo_url(f"/releases/assets/{asset.get('id')}")

    def _published_hint(self, version: str) -> str:
        return (
            f"a published release cannot take assets (immutable releases); delete release {version} and its tag "
            f"on {self._slug} to release it again, or release a new version"
        )

    def _release_json(self, answer: _Answer) -> dict[str, Any]:
        data = answer.json()
        if not isinstance(data, dict) or not isinstance(data.get("id"), int):
            raise GitHubError("GitHub answered a release without an id", where=scrub_url(answer.url))
        return data

    def _find_release(self, version: str, *, drafts: bool = True) -> dict[str, Any] | None:
        """The published release for the tag, else (``drafts``) the oldest draft with that ``tag_name``."""
        answer = self._send("GET", self._repo_url(f"/releases/tags/{version}"))
        if answer.status == 200:
            return self._release_json(answer)
        if answer.status != 404:
            self._fail(answer, "look up the release")
        if not drafts:
            self._require_repository()
            return None
        found = [
            r
            for r in self._paginate(self._repo_url("/releases"), "list the releases", repo_level=True)
            if isinstance(r, dict) and r.get("tag_name") == version and isinstance(r.get("id"), int)
        ]
        published = [r for r in found if not r.get("draft")]
        if published:  # get-by-tag missed it (eventual consistency): it still wins over drafts
            return published[0]
        return min(found, key=lambda r: int(r["id"])) if found else None

    def _require_repository(self) -> None:
        answer = self._send("GET", self._repo_url("/releases"), params={"per_page": "1"})
        if answer.status != 200:
            self._fail(answer, "list the releases", repo_level=True)

    def _list_assets(self, release: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._list_assets_by_id(str(release["id"]))

    def _list_assets_by_id(self, release_id: str) -> list[dict[str, Any]]:
        items = self._paginate(self._repo_url(f"/releases/{release_id}/assets"), "list the release assets")
        return [a for a in items if isinstance(a, dict) and isinstance(a.get("name"), str)]

    @staticmethod
    def _asset_state(asset: Mapping[str, Any]) -> AssetState:
        digest = asset.get("digest")
        size = asset.get("size")
        return AssetState(
            str(asset["name"]),
            size if isinstance(size, int) else 0,
            digest if isinstance(digest, str) and _DIGEST.match(digest) else None,
            str(asset.get("state") or UPLOADED),
        )

    def _same_content(self, asset: Mapping[str, Any], data: bytes) -> bool:
        state = self._asset_state(asset)
        if state.size != len(data):
            return False
        if state.digest is not None:
            return state.digest == digests.compute(data)
        return self._download(asset) == data

    def _delete_asset(self, asset: Mapping[str, Any]) -> None:
        url = self._repo_url(f"/releases/assets/{asset.get('id')}")
        answer = self._send("DELETE", url)
        if answer.status not in (204, 404):
            self._fail(answer, f"delete the incomplete asset {asset.get('name')}")

    def _download(self, asset: Mapping[str, Any], *, limit: int | None = None) -> bytes:
        url = httpx.URL(self._repo_url(f"/releases/assets/{asset.get('id')}"))
        where = scrub_url(url)
        home = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._send(
                "GET",
                url,
                accept=OCTET_STREAM,
                auth=_origin(url) == home,
                limit=min(limit, self.options.max_asset_bytes) if limit is not None else self.options.max_asset_bytes,
            )
            if answer.status in _REDIRECTS:
                location = answer.headers.get("Location")
                if not location:
                    raise GitHubError("GitHub redirected the download nowhere", where=where)
                target = url.join(location)
                self._check_scheme(target, "asset download URL")
                url = target
                continue
            if answer.status != 200:
                self._fail(answer, f"download {asset.get('name')}")
            state = self._asset_state(asset)
            if state.digest is not None and digests.compute(answer.body) != state.digest:
                raise GitHubError(f"downloaded {state.name} does not match its digest {state.digest}", where=where)
            return answer.body
        raise GitHubError(f"download of {asset.get('name')} redirected more than {MAX_REDIRECTS} times", where=where)

    def _paginate(self, url: str, action: str, *, repo_level: bool = False) -> list[Any]:
        items: list[Any] = []
        next_url: httpx.URL | None = httpx.URL(url).copy_merge_params({"per_page": str(PER_PAGE)})
        pages = 0
        while next_url is not None:
            pages += 1
            if pages > self.options.max_pages:
                raise GitHubError(f"more than {self.options.max_pages} pages to {action}", where=scrub_url(url))
            answer = self._send("GET", next_url)
            if answer.status != 200:
                self._fail(answer, action, repo_level=repo_level)
            page = answer.json()
            if not isinstance(page, list):
                raise GitHubError(f"GitHub answered a non-list to {action}", where=scrub_url(next_url))
            items.extend(page)
            link = answer.headers.get("Link")
            following = self._next_link(link) if link else None
            if following is not None and _origin(following) != _origin(next_url):
                raise GitHubError("GitHub's next page is on another host", where=scrub_url(next_url))
            next_url = following
        return items

    @staticmethod
    def _next_link(header: str) -> httpx.URL | None:
        for part in header.split(","):
            section = part.split(";")
            if len(section) < 2:
                continue
            target = section[0].strip()
            if any(p.strip().replace(" ", "") in ('rel="next"', "rel=next") for p in section[1:]):
                return httpx.URL(target.strip("<>"))
        return None

    # --- sending ------------------------------------------------------------------------------------

    def _check_scheme(self, url: httpx.URL, what: str) -> None:
        if url.scheme == "https" or (url.scheme == "http" and is_loopback_host(_host_port(url))):
            return
        raise InvalidInputError(f"{what} must be https (the token is sent there)", where=scrub_url(url))

    def _headers(self, url: httpx.URL, accept: str, auth: bool) -> dict[str, str]:
        headers = {"Accept": accept}
        if auth and self._token is not None and _origin(url) in self._trusted:
            headers["Authorization"] = "Bearer " + self._token.reveal().decode("ascii")  # checked in __init__
        return headers

    def _send(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        accept: str = JSON_ACCEPT,
        json_body: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool = True,
        auth: bool = True,
        limit: int = _JSON_LIMIT,
    ) -> _Answer:
        """One request with rate-limit waits; 5xx/connection failures retried when ``idempotent``,
        else raised as :class:`_Transient` for the caller to recover."""
        target = httpx.URL(str(url))
        if params:
            target = target.copy_merge_params(dict(params))
        where = scrub_url(target)
        headers = self._headers(target, accept, auth)
        body = content
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        elif content_type is not None:
            headers["Content-Type"] = content_type
        policy = self.options.retries
        for number in range(policy.attempts):
            last_try = number == policy.attempts - 1
            request = self._http.build_request(method, target, headers=headers, content=body)
            try:
                answer = self._exchange(request, limit, where)
            except httpx.TransportError as exc:
                if any(isinstance(e, ssl.SSLCertVerificationError) for e in (exc, exc.__cause__, exc.__context__)):
                    raise GitHubError("GitHub's TLS certificate is not trusted", where=where) from None
                reason = describe_transport_error(exc, "GitHub")
                if not idempotent:
                    raise _Transient(reason) from None
                if last_try:
                    raise GitHubError(f"{reason} (after {policy.attempts} attempts)", where=where) from None
                self._sleep(self._delay(number, None))
                continue
            log.debug("%s %s -> %d", method, where, answer.status)
            wait = self._rate_limit_wait(answer)
            if wait is not None:
                if wait > policy.max_retry_after or last_try:
                    raise GitHubError(
                        f"GitHub rate limit exceeded ({answer.status}); it lifts in {wait:.0f} s",
                        where=where,
                        hint="wait, then re-run: the release continues where it stopped",
                    )
                self._sleep(wait)
                continue
            if answer.status in _RETRYABLE:
                reason = f"GitHub answered {answer.status}"
                retry_after = parse_retry_after(answer.headers.get("Retry-After"))
                if not idempotent:
                    raise _Transient(reason, retry_after)
                if last_try:
                    raise GitHubError(f"{reason} (after {policy.attempts} attempts)", where=where)
                self._sleep(self._delay(number, retry_after))
                continue
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(self, request: httpx.Request, limit: int, where: str) -> _Answer:
        size = len(request.content) if request.method in ("POST", "PUT", "PATCH") else None
        response = send(self._http, request, size=max(size or 0, limit if limit > _JSON_LIMIT else 0) or None)
        body = read_capped(
            response,
            limit,
            fail=lambda message: GitHubError(message, where=where),
            what="GitHub's answer",
            service="GitHub",
        )
        return _Answer(response.status_code, response.headers, body, request.url)

    def _rate_limit_wait(self, answer: _Answer) -> float | None:
        """Seconds to wait if ``answer`` is a rate-limit refusal (403/429), else None."""
        if answer.status not in (403, 429):
            return None
        retry_after = parse_retry_after(answer.headers.get("Retry-After"))
        if retry_after is not None:
            return retry_after
        if answer.headers.get("x-ratelimit-remaining") == "0":
            reset = answer.headers.get("x-ratelimit-reset", "")
            if reset.isdigit():
                return max(0.0, float(reset) - self._clock())
            return SECONDARY_RATE_LIMIT_WAIT
        if answer.status == 429 or "rate limit" in self._summary(answer).lower():
            return SECONDARY_RATE_LIMIT_WAIT  # GitHub: "wait at least one minute"
        return None

    def _delay(self, number: int, retry_after: float | None) -> float:
        policy = self.options.retries
        delay = retry_delay(policy, number, retry_after, self._rng)
        return min(delay, policy.max_retry_after) if retry_after is not None else delay

    # --- failures -----------------------------------------------------------------------------------

    def _summary(self, answer: _Answer) -> str:
        """GitHub's ``message`` and ``errors`` on one line, without the token."""
        try:
            data = jsonbounded.loads(answer.body[:65536], source="GitHub")
        except (ValueError, UnicodeDecodeError, InvalidInputError):
            return ""
        if not isinstance(data, dict):
            return ""
        parts = [str(data.get("message") or "").strip()]
        errors = data.get("errors")
        if isinstance(errors, list):
            for item in errors[:3]:
                if isinstance(item, dict):
                    text = item.get("message") or " ".join(
                        str(item.get(k)) for k in ("resource", "field", "code") if item.get(k)
                    )
                    parts.append(str(text))
                elif isinstance(item, str):
                    parts.append(item)
        summary = " ".join("; ".join(p for p in parts if p).split())[:300]
        if self._token is not None and len(self._token) >= 4:
            summary = summary.replace(self._token.reveal().decode("utf-8", "replace"), "***")
        return summary

    def _fail(self, answer: _Answer, action: str, *, repo_level: bool = False) -> NoReturn:
        where = scrub_url(answer.url)
        summary = self._summary(answer)
        detail = f": {summary}" if summary else ""
        hint = _TOKEN_HINT.format(repo=self._slug)
        if answer.status == 401:
            if self._token is None:
                raise AuthError("GitHub requires authentication (401)", where=where, hint=hint)
            raise AuthError(f"GitHub refused the token (401){detail}", where=where, hint=hint)
        if answer.status == 403:
            raise AuthError(f"GitHub denied access to {action} (403){detail}", where=where, hint=hint)
        if answer.status == 404 and repo_level:
            raise GitHubError(
                f"repository {self._slug} not found, or the token cannot see it",
                where=where,
                hint="check the repository (OWNER/REPO) and that GITHUB_TOKEN can read it",
            )
        raise GitHubError(f"GitHub answered {answer.status} to {action}{detail}", where=where)
