"""bench/latency_proxy.py: which repository a request is about (the per-repository counts)."""

from __future__ import annotations

import pytest

from bench.latency_proxy import repository_of


@pytest.mark.parametrize(
    ("path", "repository"),
    [
        ("/v2/team/app/manifests/v1", "team/app"),
        ("/v2/team/app/manifests/sha256-ab.sig?x=1", "team/app"),
        ("/v2/prefix/ghcr.io/acme/api/blobs/uploads/", "prefix/ghcr.io/acme/api"),
        ("/v2/prefix/ghcr.io/acme/api/blobs/uploads/1234?_state=abc&digest=sha256:1", "prefix/ghcr.io/acme/api"),
        ("/v2/app/blobs/sha256:00", "app"),
        ("/v2/blobs/blobs/sha256:00", "blobs"),  # a repository may be called "blobs"
        ("/v2/team/app/tags/list", "team/app"),
        ("/v2/team/app/referrers/sha256:00", "team/app"),
        ("/v2/", None),
        ("/v2", None),
        ("/token?scope=repository:team/app:pull", None),
        ("/repos/acme/releases/releases", None),
    ],
)
def test_repository_of(path: str, repository: str | None) -> None:
    assert repository_of(path) == repository


def test_a_tag_named_like_an_api_word_does_not_confuse_it() -> None:
    assert repository_of("/v2/team/app/manifests/blobs") == "team/app"
    assert repository_of("/v2/tags/tags/list") == "tags"
