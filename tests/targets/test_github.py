"""GitHubTarget against the GitHub stand-in (real HTTP on 127.0.0.1, separate uploads host)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pipeline.errors import AuthError, ConflictError, ExitCode, GitHubError, InvalidInputError
from pipeline.oci.client import RetryPolicy
from pipeline.secret import Secret
from pipeline.targets import (
    GitHubOptions,
    GitHubTarget,
    ReleaseTarget,
    WantedAsset,
    diff_release,
    sync_release,
)
from pipeline.targets.github import expand_upload_url, parse_repository, uploads_base
from tests.github_standin import STANDIN_TOKEN, GitHubStandIn, StoredAsset, StoredRelease

PUB = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
VECTOR = b"docker-images:\n  metal-stack:\n    control-plane: {}\nversion: v1.2.3\n"
WANTED = [
    WantedAsset("cosign.pub", PUB, "application/x-pem-file"),
    WantedAsset("release.yaml", VECTOR, "application/yaml"),
]
V = "v1.2.3"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def gh() -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as standin:
        yield standin


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_target(
    gh: GitHubStandIn,
    sleeps: Sleeps,
    *,
    token: str | None = STANDIN_TOKEN,
    repo: str | None = None,
    clock: float = 1_700_000_000.0,
    attempts: int = 4,
    max_retry_after: float = 60.0,
) -> GitHubTarget:
    options = GitHubOptions(
        api_url=gh.api_url, retries=RetryPolicy(attempts=attempts, backoff=0.01, max_retry_after=max_retry_after)
    )
    return GitHubTarget(
        repo or gh.slug, Secret(token) if token is not None else None, options, sleep=sleeps, clock=lambda: clock
    )


def sync(target: GitHubTarget, version: str = V) -> None:
    sync_release(target, version, WANTED, target_commitish="abc123", name=version, body="notes")


def writes(gh: GitHubStandIn) -> list[tuple[str, str]]:
    return [c for c in gh.calls() if c[0] != "GET"]


def published(gh: GitHubStandIn, tag: str = V) -> dict[str, bytes]:
    [release] = [r for r in gh.releases_for(tag) if not r.draft]
    return {a.name: a.data for a in release.assets if a.state == "uploaded"}


# --- the happy path and its requests ---------------------------------------------------------------


def test_fresh_release_draft_upload_publish_in_order(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    with make_target(gh, sleeps) as target:
        assert isinstance(target, ReleaseTarget)
        sync(target)
    rid = gh.releases_for(V)[0].id
    repo = f"/repos/{gh.slug}"
    assert gh.calls() == [
        ("GET", f"{repo}/releases/tags/{V}"),  # observe: published? (drafts are invisible by tag)
        ("GET", f"{repo}/releases"),  # observe: a draft?
        ("GET", f"{repo}/releases/tags/{V}"),  # ensure_draft looks again (the plan may be old)
        ("GET", f"{repo}/releases"),
        ("POST", f"{repo}/releases"),
        ("GET", f"{repo}/releases/{rid}/assets"),
        ("POST", f"{repo}/releases/{rid}/assets"),
        ("GET", f"{repo}/releases/{rid}/assets"),
        ("POST", f"{repo}/releases/{rid}/assets"),
        ("PATCH", f"{repo}/releases/{rid}"),
        ("GET", f"{repo}/releases/tags/{V}"),
        ("GET", f"{repo}/releases/{rid}/assets"),
    ]
    create = next(r for r in gh.requests if r.method == "POST" and r.server == "api")
    assert json.loads(create.body) == {
        "tag_name": V,
        "target_commitish": "abc123",
        "name": V,
        "body": "notes",
        "draft": True,
    }
    uploads = [r for r in gh.requests if r.server == "uploads"]
    assert [(r.query["name"], r.headers["content-type"], r.body) for r in uploads] == [
        (["cosign.pub"], "application/x-pem-file", PUB),
        (["release.yaml"], "application/yaml", VECTOR),
    ]
    patch = next(r for r in gh.requests if r.method == "PATCH")
    assert json.loads(patch.body) == {"draft": False}
    for seen in gh.requests:
        assert seen.headers["authorization"] == f"Bearer {STANDIN_TOKEN}"
        assert seen.headers["x-github-api-version"] == "2022-11-28"
        if seen.method in ("GET", "PATCH") or seen.server == "api":
            assert seen.headers["accept"] == "application/vnd.github+json"
    listing = next(r for r in gh.requests if r.url_path.endswith("/releases"))
    assert listing.query["per_page"] == ["100"]
    assert published(gh) == {"cosign.pub": PUB, "release.yaml": VECTOR}
    assert gh.releases_for(V)[0].immutable
    assert sleeps.waits == []


def test_rerun_after_success_writes_nothing(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    with make_target(gh, sleeps) as target:
        sync(target)
        before = len(gh.requests)
        state = target.observe(V)
        assert diff_release(state, WANTED).done
        sync(target)
    assert all(r.method == "GET" for r in gh.requests[before:])
    assert len(gh.releases_for(V)) == 1


def test_observe_sees_a_draft_that_get_by_tag_hides(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.add_release(V, draft=True, assets={"cosign.pub": PUB}, starters=["release.yaml"])
    with make_target(gh, sleeps) as target:
        state = target.observe(V)
    assert state.exists and state.draft and not state.published
    assert state.assets["cosign.pub"].digest == "sha256:" + hashlib.sha256(PUB).hexdigest()
    assert state.assets["release.yaml"].state == "starter"
    diff = diff_release(state, WANTED)
    assert (diff.create_draft, diff.upload, diff.compare, diff.publish) == (False, ("release.yaml",), (), True)
    assert gh.calls()[0] == ("GET", f"/repos/{gh.slug}/releases/tags/{V}")  # 404: drafts are invisible by tag


def test_existing_draft_is_reused_and_completed(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    draft = gh.add_release(V, draft=True, assets={"cosign.pub": PUB})
    with make_target(gh, sleeps) as target:
        sync(target)
    assert ("POST", f"/repos/{gh.slug}/releases") not in gh.calls()
    assert [r.query["name"] for r in gh.requests if r.server == "uploads"] == [["release.yaml"]]
    assert not draft.draft and published(gh) == {"cosign.pub": PUB, "release.yaml": VECTOR}


def test_oldest_of_several_drafts_is_used(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    first = gh.add_release(V, draft=True)
    gh.add_release(V, draft=True)
    with make_target(gh, sleeps) as target:
        handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
    assert handle.ident == str(first.id)


def test_pagination_follows_link_to_find_an_old_draft(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    draft = gh.add_release(V, draft=True)
    for n in range(150):
        gh.add_release(f"v0.0.{n}", draft=False)
    with make_target(gh, sleeps) as target:
        handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
    assert handle.ident == str(draft.id)
    pages = [r.query.get("page", ["1"]) for r in gh.requests if r.url_path.endswith("/releases")]
    assert pages == [["1"], ["2"]]


# --- failures a re-run completes ---------------------------------------------------------------------


def test_502_on_upload_deletes_the_starter_asset_and_retries(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.fail_next_uploads(1)
    with make_target(gh, sleeps) as target:
        sync(target)
    deletes = [c for c in gh.calls() if c[0] == "DELETE"]
    assert len(deletes) == 1 and "/releases/assets/" in deletes[0][1]
    assert [r.query["name"] for r in gh.requests if r.server == "uploads"] == [
        ["cosign.pub"],
        ["cosign.pub"],
        ["release.yaml"],
    ]
    assert published(gh) == {"cosign.pub": PUB, "release.yaml": VECTOR}
    assert len(sleeps.waits) == 1


def test_persistent_upload_failure_leaves_a_draft_a_rerun_completes(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.fail_next_uploads(3)
    with make_target(gh, sleeps, attempts=3) as target, pytest.raises(GitHubError) as caught:
        sync(target)
    assert caught.value.exit_code == ExitCode.GITHUB
    assert "uploading cosign.pub failed: GitHub answered 502 (after 3 attempts)" in str(caught.value)
    assert "?" not in str(caught.value)  # the URL without its query
    [release] = gh.releases_for(V)
    assert release.draft  # never published incomplete
    assert ("PATCH", f"/repos/{gh.slug}/releases/{release.id}") not in gh.calls()
    with make_target(gh, sleeps) as target:  # the starter asset left by the last try goes, too
        sync(target)
    assert published(gh) == {"cosign.pub": PUB, "release.yaml": VECTOR}
    assert [a.state for a in release.assets] == ["uploaded", "uploaded"]


def test_5xx_on_create_looks_for_the_draft_then_retries_once(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.fail_next(500, method="POST", path_contains="/releases", server="api")
    with make_target(gh, sleeps) as target:
        handle = target.ensure_draft(V, target_commitish="main", name=V, body="")
    assert len(gh.releases_for(V)) == 1 and handle.ident == str(gh.releases_for(V)[0].id)
    assert [c[0] for c in gh.calls()].count("POST") == 2


def test_5xx_on_create_that_created_the_draft_anyway_is_not_repeated(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    def concurrent_create() -> None:
        gh.add_release(V, draft=True)

    gh.fail_next(502, method="POST", server="api", action=concurrent_create)
    with make_target(gh, sleeps) as target:
        target.ensure_draft(V, target_commitish="main", name=V, body="")
    assert len(gh.releases_for(V)) == 1
    assert [c[0] for c in gh.calls()].count("POST") == 1


def test_get_5xx_is_retried_with_backoff(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.fail_next(503, method="GET", count=2)
    with make_target(gh, sleeps) as target:
        assert not target.observe(V).exists
    assert len(sleeps.waits) == 2 and all(0 < w <= 0.04 for w in sleeps.waits)


def test_persistent_5xx_is_one_line_naming_the_url(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.fail_next(500, method="GET", count=10)
    with make_target(gh, sleeps, attempts=3) as target, pytest.raises(GitHubError) as caught:
        target.observe(V)
    assert (
        str(caught.value) == f"GitHub answered 500 (after 3 attempts) ({gh.api_url}/repos/{gh.slug}/releases/tags/{V})"
    )


# --- content comparison and conflicts ------------------------------------------------------------------


def test_same_content_on_the_draft_is_skipped(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.add_release(V, draft=True, assets={"cosign.pub": PUB})
    with make_target(gh, sleeps) as target:
        handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
        assert target.upload_asset(handle, "cosign.pub", PUB, "application/x-pem-file") is False
    assert not [r for r in gh.requests if r.server == "uploads"]


def test_different_content_on_the_draft_is_a_conflict(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.add_release(V, draft=True, assets={"cosign.pub": b"another key"})
    with make_target(gh, sleeps) as target:
        diff = diff_release(target.observe(V), WANTED)
        assert [c.name for c in diff.conflicts] == ["cosign.pub"]
        with pytest.raises(ConflictError) as caught:
            sync(target)
    assert caught.value.exit_code == ExitCode.CONFLICT
    assert "holds a different cosign.pub" in str(caught.value)
    assert caught.value.hint and "delete the asset cosign.pub" in caught.value.hint
    assert writes(gh) == []


def test_422_already_exists_compares_content_same_is_skipped(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    draft = gh.add_release(V, draft=True)
    body = json.dumps(
        {
            "message": "Validation Failed",
            "errors": [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}],
        }
    ).encode()
    gh.fail_next(
        422, server="uploads", body=body, action=lambda: draft.assets.append(StoredAsset(9, "cosign.pub", PUB))
    )
    with make_target(gh, sleeps) as target:
        handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
        assert target.upload_asset(handle, "cosign.pub", PUB, "application/x-pem-file") is False


def test_422_already_exists_with_different_content_is_a_conflict(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    draft = gh.add_release(V, draft=True)
    body = json.dumps(
        {
            "message": "Validation Failed",
            "errors": [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}],
        }
    ).encode()
    gh.fail_next(
        422,
        server="uploads",
        body=body,
        action=lambda: draft.assets.append(StoredAsset(9, "cosign.pub", b"x" * len(PUB))),
    )
    with make_target(gh, sleeps) as target:
        handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
        with pytest.raises(ConflictError):
            target.upload_asset(handle, "cosign.pub", PUB, "application/x-pem-file")


@pytest.mark.parametrize("redirect", [True, False])
def test_without_digests_content_is_downloaded_to_compare(sleeps: Sleeps, redirect: bool) -> None:
    with GitHubStandIn(digests=False, redirect_downloads=redirect) as gh:
        gh.add_release(V, draft=True, assets={"cosign.pub": PUB, "release.yaml": b"y" * len(VECTOR)})
        with make_target(gh, sleeps) as target:
            diff = diff_release(target.observe(V), WANTED)
            assert diff.compare == ("cosign.pub", "release.yaml") and not diff.conflicts
            handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
            assert target.upload_asset(handle, "cosign.pub", PUB, "application/x-pem-file") is False
            with pytest.raises(ConflictError):
                target.upload_asset(handle, "release.yaml", VECTOR, "application/yaml")
        downloads = [r for r in gh.requests if r.headers.get("accept") == "application/octet-stream"]
        assert downloads
        storage = [r for r in gh.requests if r.url_path.startswith("/storage/")]
        assert bool(storage) is redirect
        assert all("authorization" not in r.headers for r in storage)  # never across the redirect


def test_published_release_with_our_assets_is_left_alone(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.add_release(V, draft=False, assets={"cosign.pub": PUB, "release.yaml": VECTOR})
    with make_target(gh, sleeps) as target:
        state = target.observe(V)
        assert state.published and diff_release(state, WANTED).done
        sync(target)
    assert writes(gh) == []


def test_published_release_without_our_assets_is_a_conflict_with_a_hint(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.add_release(V, draft=False, assets={"cosign.pub": PUB})
    with make_target(gh, sleeps) as target:
        with pytest.raises(ConflictError) as caught:
            sync(target)
        with pytest.raises(ConflictError) as again:
            target.ensure_draft(V, target_commitish=None, name=V, body="")
    assert "release v1.2.3 is published without the asset release.yaml" in str(caught.value)
    assert caught.value.hint and "immutable" in caught.value.hint
    assert str(caught.value).endswith(f"({gh.api_url}/repos/{gh.slug}/releases/{gh.releases_for(V)[0].id})")
    assert "already published" in str(again.value) and again.value.hint and gh.slug in again.value.hint
    assert writes(gh) == []


def test_published_release_with_different_content_is_a_conflict(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.add_release(V, draft=False, assets={"cosign.pub": b"K" * len(PUB), "release.yaml": VECTOR})
    with make_target(gh, sleeps) as target, pytest.raises(ConflictError) as caught:
        sync(target)
    assert "published release v1.2.3 holds a different cosign.pub" in str(caught.value)


def test_published_without_digest_is_downloaded_and_compared(sleeps: Sleeps) -> None:
    with GitHubStandIn(digests=False) as gh:
        gh.add_release(V, draft=False, assets={"cosign.pub": PUB, "release.yaml": b"Y" * len(VECTOR)})
        with make_target(gh, sleeps) as target, pytest.raises(ConflictError) as caught:
            sync(target)
        assert "release.yaml" in str(caught.value)
        assert writes(gh) == []


def test_upload_to_a_release_published_meanwhile_gets_the_immutable_422(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    release = gh.add_release(V, draft=True)
    with make_target(gh, sleeps) as target:
        handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
        release.draft, release.immutable = False, True  # someone published it by hand
        with pytest.raises(ConflictError) as caught:
            target.upload_asset(handle, "cosign.pub", PUB, "application/x-pem-file")
    assert "immutable" in str(caught.value) and caught.value.hint
    assert release.assets == []


def test_create_422_on_a_published_tag_is_a_conflict(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    with make_target(gh, sleeps) as target:
        # get-by-tag answers 404 (a stale view); the create then meets the published release
        gh.fail_next(404, method="GET", path_contains="/releases/tags/", body=b'{"message": "Not Found"}')
        gh.fail_next(200, method="GET", path_contains="/releases", body=b"[]")
        gh.add_release(V, draft=False)
        with pytest.raises(ConflictError) as caught:
            target.ensure_draft(V, target_commitish=None, name=V, body="")
    assert "exists already" in str(caught.value)


# --- reading published assets (verify-release) --------------------------------------------------------


def test_read_asset_returns_published_content_only(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.add_release(V, draft=False, assets={"cosign.pub": PUB})
    gh.add_release("v2.0.0", draft=True, assets={"cosign.pub": b"draft key"})
    with make_target(gh, sleeps) as target:
        assert target.read_asset(V, "cosign.pub") == PUB
        assert target.read_asset(V, "release.yaml") is None
        assert target.read_asset("v2.0.0", "cosign.pub") is None
        assert target.read_asset("v2.0.0", "cosign.pub", published_only=False) == b"draft key"
        assert target.read_asset("v9.9.9", "cosign.pub") is None
    storage = [r for r in gh.requests if r.url_path.startswith("/storage/")]
    assert len(storage) == 2 and all("authorization" not in r.headers for r in storage)


def test_read_asset_checks_the_digest(gh: GitHubStandIn, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch) -> None:
    gh.add_release(V, draft=False, assets={"cosign.pub": PUB})
    with make_target(gh, sleeps) as target:
        original = gh.asset_json

        def lying(rel: StoredRelease, asset: StoredAsset) -> dict[str, Any]:
            data = original(rel, asset)
            data["digest"] = "sha256:" + "0" * 64
            return data

        monkeypatch.setattr(gh, "asset_json", lying)
        with pytest.raises(GitHubError, match="does not match its digest"):
            target.read_asset(V, "cosign.pub")


def test_anonymous_read_of_a_public_release(sleeps: Sleeps) -> None:
    with GitHubStandIn(anonymous_reads=True) as gh:
        gh.add_release(V, draft=False, assets={"cosign.pub": PUB})
        gh.add_release("v2.0.0", draft=True, assets={"cosign.pub": PUB})
        with make_target(gh, sleeps, token=None) as target:
            assert target.read_asset(V, "cosign.pub") == PUB
            assert not target.observe("v2.0.0").exists  # drafts are invisible without the token
        assert all("authorization" not in r.headers for r in gh.requests)


# --- auth, repository, rate limits ------------------------------------------------------------------------


def test_401_without_token_is_an_auth_error_with_a_hint(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    with make_target(gh, sleeps, token=None) as target, pytest.raises(AuthError) as caught:
        target.observe(V)
    assert caught.value.exit_code == ExitCode.AUTH
    assert str(caught.value).startswith("GitHub requires authentication (401) (http://127.0.0.1:")
    assert caught.value.hint and "GITHUB_TOKEN" in caught.value.hint


def test_401_with_a_wrong_token_never_shows_it(
    gh: GitHubStandIn, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "ghp_WrongToken_zzzzzzzzzzzzzzzzzzzzzzzz"
    caplog.set_level(logging.DEBUG)
    with make_target(gh, sleeps, token=wrong) as target, pytest.raises(AuthError) as caught:
        sync(target)
    assert "Bad credentials" in str(caught.value)
    for text in (str(caught.value), caught.value.hint or "", repr(caught.value), caplog.text, repr(target)):
        assert wrong not in text


def test_token_never_in_messages_or_logs(gh: GitHubStandIn, sleeps: Sleeps, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    gh.fail_next_uploads(1)
    gh.add_release("v0.9.0", draft=False, assets={"cosign.pub": b"old"})
    texts: list[str] = []
    with make_target(gh, sleeps) as target:
        sync(target)
        texts.append(repr(target))
        with pytest.raises(ConflictError) as caught:
            sync(target, "v0.9.0")
        texts += [str(caught.value), caught.value.hint or ""]
    texts.append(caplog.text)
    assert caplog.text  # something was logged
    assert all(STANDIN_TOKEN not in t for t in texts)


def test_unknown_repository_names_owner_and_repo(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    with make_target(gh, sleeps, repo="octo-org/missing") as target, pytest.raises(GitHubError) as caught:
        target.observe(V)
    assert caught.value.exit_code == ExitCode.GITHUB
    assert "repository octo-org/missing not found" in str(caught.value)
    with make_target(gh, sleeps, repo="octo-org/missing") as target, pytest.raises(GitHubError):
        target.read_asset(V, "cosign.pub")


def test_primary_rate_limit_waits_until_reset(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.rate_limit_next(1, status=403, reset_at=1_700_000_007)
    with make_target(gh, sleeps, clock=1_700_000_000.0) as target:
        assert not target.observe(V).exists
    assert sleeps.waits == [7.0]


def test_secondary_rate_limit_honours_retry_after(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.rate_limit_next(1, status=429, retry_after=3)
    with make_target(gh, sleeps) as target:
        sync(target)
    assert sleeps.waits == [3.0]
    assert published(gh) == {"cosign.pub": PUB, "release.yaml": VECTOR}


def test_rate_limit_on_an_upload_waits_and_uploads_once(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.add_release(V, draft=True)
    with make_target(gh, sleeps) as target:
        handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
        gh.fail_next(403, server="uploads", headers={"retry-after": "2"}, body=b'{"message": "secondary rate limit"}')
        assert target.upload_asset(handle, "cosign.pub", PUB, "application/x-pem-file") is True
    assert sleeps.waits == [2.0]
    assert len(gh.releases_for(V)[0].assets) == 1


def test_rate_limit_beyond_the_cap_fails_at_once_with_a_hint(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.rate_limit_next(1, status=403, reset_at=1_700_003_600)
    with make_target(gh, sleeps, clock=1_700_000_000.0) as target, pytest.raises(GitHubError) as caught:
        target.observe(V)
    assert "rate limit exceeded (403); it lifts in 3600 s" in str(caught.value)
    assert caught.value.hint and "re-run" in caught.value.hint
    assert sleeps.waits == []


def test_403_without_rate_limit_is_an_auth_error(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.fail_next(403, body=b'{"message": "Resource not accessible by integration"}')
    with make_target(gh, sleeps) as target, pytest.raises(AuthError) as caught:
        target.observe(V)
    assert "Resource not accessible by integration" in str(caught.value)
    assert sleeps.waits == []


# --- GitHub Enterprise, URLs, construction -----------------------------------------------------------------


def test_github_enterprise_prefixes(sleeps: Sleeps) -> None:
    with GitHubStandIn(api_prefix="/api/v3", uploads_prefix="/api/uploads") as gh:
        with make_target(gh, sleeps) as target:
            assert target.describe() == f"{gh.api_url.split('//')[1].split('/')[0]}/{gh.slug}"
            sync(target)
        assert all(r.url_path.startswith("/api/v3/") for r in gh.requests if r.server == "api")
        assert all(r.url_path.startswith("/api/uploads/") for r in gh.requests if r.server == "uploads")
        assert published(gh) == {"cosign.pub": PUB, "release.yaml": VECTOR}


def test_url_helpers() -> None:
    assert uploads_base("https://api.github.com") == "https://uploads.github.com"
    assert uploads_base("https://ghe.example.com/api/v3/") == "https://ghe.example.com/api/uploads"
    url = expand_upload_url("https://uploads.github.com/repos/o/r/releases/1/assets{?name,label}", "cosign.pub")
    assert url == httpx.URL("https://uploads.github.com/repos/o/r/releases/1/assets?name=cosign.pub")
    assert parse_repository("metal-stack/releases") == ("metal-stack", "releases")
    for bad in ("metal-stack", "a/b/c", "a/..", "a b/c"):
        with pytest.raises(InvalidInputError):
            parse_repository(bad)


def test_describe_and_https_only() -> None:
    target = GitHubTarget("metal-stack/releases", Secret("t"))
    assert target.describe() == "github.com/metal-stack/releases"
    target.close()
    with pytest.raises(InvalidInputError, match="must be https"):
        GitHubTarget("o/r", Secret("t"), GitHubOptions(api_url="http://ghe.example.com/api/v3"))


def test_invalid_version_and_asset_name(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    with make_target(gh, sleeps) as target:
        with pytest.raises(InvalidInputError):
            target.observe("../v1")
        handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
        with pytest.raises(InvalidInputError):
            target.upload_asset(handle, "../cosign.pub", PUB, "application/x-pem-file")


# --- less common answers ------------------------------------------------------------------------------------


def test_connection_refused_is_retried_then_one_line(sleeps: Sleeps) -> None:
    with GitHubStandIn() as gh:
        api_url = gh.api_url
    options = GitHubOptions(api_url=api_url, retries=RetryPolicy(attempts=2, backoff=0.01))
    with GitHubTarget("o/r", Secret(STANDIN_TOKEN), options, sleep=sleeps) as target, pytest.raises(GitHubError) as c:
        target.observe(V)
    assert str(c.value) == f"cannot connect to GitHub (after 2 attempts) ({api_url}/repos/o/r/releases/tags/{V})"
    assert len(sleeps.waits) == 1


def test_publish_refused_for_an_immutable_tag_is_a_conflict(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    body = json.dumps(
        {
            "message": "Validation Failed",
            "errors": [
                {
                    "resource": "Release",
                    "code": "custom",
                    "field": "tag_name",
                    "message": "tag_name was used by an immutable release",
                }
            ],
        }
    ).encode()
    with make_target(gh, sleeps) as target:
        handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
        gh.fail_next(422, method="PATCH", body=body)
        with pytest.raises(ConflictError) as caught:
            target.publish(handle)
    assert "tag_name was used by an immutable release" in str(caught.value)
    assert gh.releases_for(V)[0].draft


def test_publish_of_a_deleted_draft(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    with make_target(gh, sleeps) as target:
        handle = target.ensure_draft(V, target_commitish=None, name=V, body="")
        gh.releases.clear()
        with pytest.raises(GitHubError, match="is gone") as caught:
            target.publish(handle)
    assert caught.value.hint


def test_create_validation_failure_is_summarised(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    body = json.dumps(
        {
            "message": "Validation Failed",
            "errors": [{"resource": "Release", "code": "invalid", "field": "target_commitish"}],
        }
    ).encode()
    gh.fail_next(422, method="POST", server="api", body=body)
    with make_target(gh, sleeps) as target, pytest.raises(GitHubError) as caught:
        target.ensure_draft(V, target_commitish="nope", name=V, body="")
    assert (
        "GitHub answered 422 to create the draft release: Validation Failed; Release target_commitish invalid"
        in str(caught.value)
    )


def test_secondary_rate_limit_without_headers_waits_a_minute(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.fail_next(429, body=b'{"message": "You have exceeded a secondary rate limit."}')
    with make_target(gh, sleeps) as target:
        target.observe(V)
    assert sleeps.waits == [60.0]


def test_next_page_on_another_host_is_refused(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.fail_next(404, method="GET", path_contains="/tags/", body=b'{"message": "Not Found"}')  # first match wins
    link = {"Link": '<https://evil.example/x?page=2>; rel="next"'}
    gh.fail_next(200, method="GET", path_contains="/releases", headers=link, body=b"[]")
    with make_target(gh, sleeps) as target, pytest.raises(GitHubError, match="another host"):
        target.observe(V)


# --- fetch_asset: what verify-release reads, size-capped ------------------------------------------------


def test_fetch_asset_reads_within_the_cap_and_says_where(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    release = gh.add_release(V, draft=False, assets={"cosign.pub": PUB})
    gh.add_release("v2.0.0", draft=True, assets={"cosign.pub": PUB})
    with make_target(gh, sleeps) as target:
        fetched = target.fetch_asset(V, "cosign.pub", max_bytes=len(PUB))
        assert fetched.content == PUB and fetched.where.endswith(f"/releases/{release.id}")
        missing = target.fetch_asset(V, "release.yaml", max_bytes=1024)
        assert missing.content is None and missing.missing and missing.where == fetched.where
        draft = target.fetch_asset("v2.0.0", "cosign.pub", max_bytes=1024)
        assert draft.content is None and not draft.missing and draft.problem == "release v2.0.0 is not published"


def test_fetch_asset_does_not_download_an_asset_over_the_cap(gh: GitHubStandIn, sleeps: Sleeps) -> None:
    gh.add_release(V, draft=False, assets={"release.yaml": b"x" * 4096})
    with make_target(gh, sleeps) as target:
        fetched = target.fetch_asset(V, "release.yaml", max_bytes=1024)
    assert fetched.content is None and "4096 bytes, over the limit of 1024" in (fetched.problem or "")
    assert not [r for r in gh.requests if r.url_path.startswith("/storage/") or "/releases/assets/" in r.url_path]


def test_fetch_asset_cuts_off_a_server_that_understates_the_size(
    gh: GitHubStandIn, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    gh.add_release(V, draft=False, assets={"release.yaml": b"x" * 4096})
    original = gh.asset_json

    def understated(rel: StoredRelease, asset: StoredAsset) -> dict[str, Any]:
        data = original(rel, asset)
        data["size"], data["digest"] = 10, None
        return data

    monkeypatch.setattr(gh, "asset_json", understated)
    with make_target(gh, sleeps) as target, pytest.raises(GitHubError, match="too large"):
        target.fetch_asset(V, "release.yaml", max_bytes=1024)


@pytest.mark.parametrize("token", ["ghp_tökén", "ghp_two words", "ghp_x\udcff", "ghp_\u00a0"])
def test_a_token_that_is_not_printable_ascii_is_refused(gh: GitHubStandIn, sleeps: Sleeps, token: str) -> None:
    from pipeline.targets.github import github_token

    with pytest.raises(AuthError) as caught:
        github_token(token, "env://GITHUB_TOKEN")
    assert caught.value.exit_code == ExitCode.AUTH and caught.value.where == "env://GITHUB_TOKEN"
    assert token not in str(caught.value)
    raw = token.encode("utf-8", "surrogateescape")  # what a caller passing its own Secret could hold
    with pytest.raises(AuthError) as caught:
        GitHubTarget(gh.slug, Secret(raw), GitHubOptions(api_url=gh.api_url), sleep=sleeps)
    assert caught.value.exit_code == ExitCode.AUTH and token not in str(caught.value)
    assert gh.calls() == []


def test_github_token_unset_or_empty_is_none() -> None:
    from pipeline.targets.github import github_token

    assert github_token(None, "env://GITHUB_TOKEN") is None and github_token("", "env://GITHUB_TOKEN") is None
    assert github_token(STANDIN_TOKEN, "env://GITHUB_TOKEN") == Secret(STANDIN_TOKEN)
