"""Binaries fetched by URL: streamed and hashed, size-bounded, retried, redirects only to https (or loopback)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from pipeline.binaries import BinaryFetcher, BinaryOptions, RetryPolicy, fetch_binaries, parse_binary_mirrors
from pipeline.errors import BinaryFetchError, BinaryTooLargeError, ExitCode, UsageError
from pipeline.rehearsal.binary_server import BinaryServer, binary_mirror_specs

FAST = RetryPolicy(attempts=3, backoff=0.0, max_backoff=0.0)


@pytest.fixture
def server() -> Iterator[BinaryServer]:
    with BinaryServer(salt="unit", size=100_000) as running:
        yield running


def fetcher(**options: object) -> BinaryFetcher:
    return BinaryFetcher(BinaryOptions(retries=FAST, **options), sleep=lambda _: None)  # type: ignore[arg-type]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_binary_is_hashed_and_sized(server: BinaryServer) -> None:
    with fetcher() as f:
        got = f.fetch(f"{server.url}/kernel")
    assert (got.digest, got.size) == (sha(server.content("/kernel")), 100_000)


def test_a_mirror_reads_elsewhere_and_keeps_the_url(server: BinaryServer) -> None:
    url = "https://github.com/acme/tool/releases/download/v1/tool"
    mirrors = parse_binary_mirrors(binary_mirror_specs([url], server.url))
    with fetcher(mirrors=mirrors) as f:
        got = f.fetch(url)
    assert got.url == url and got.digest == sha(server.content("/https/github.com/acme/tool/releases/download/v1/tool"))
    with pytest.raises(UsageError):
        parse_binary_mirrors(["github.com=somewhere"])


def test_over_the_size_limit_is_exit_3_naming_the_url(server: BinaryServer) -> None:
    with fetcher(size_limit=1000) as f, pytest.raises(BinaryTooLargeError) as caught:
        f.fetch(f"{server.url}/initrd")
    assert caught.value.exit_code == ExitCode.INVALID_INPUT
    assert caught.value.message == "binary too large (100000 bytes; the limit is 1000 bytes)"
    assert caught.value.where == f"{server.url}/initrd"


def test_404_is_exit_5_and_not_retried(server: BinaryServer) -> None:
    server.missing("/gone")
    with fetcher() as f, pytest.raises(BinaryFetchError) as caught:
        f.fetch(f"{server.url}/gone")
    assert caught.value.exit_code == ExitCode.REGISTRY
    assert caught.value.message == "download failed: HTTP 404"
    assert [r for r in server.requests if r[1] == "/gone"] == [("GET", "/gone", 404)]


def test_5xx_is_retried(server: BinaryServer) -> None:
    server.inject_failures(2, status=503, retry_after="0")
    with fetcher() as f:
        assert f.fetch(f"{server.url}/x").digest == sha(server.content("/x"))
    server.inject_failures(3, status=503)
    with fetcher() as f, pytest.raises(BinaryFetchError, match=r"HTTP 503 .* \(after 3 attempts\)"):
        f.fetch(f"{server.url}/y")


def test_redirects_are_followed_only_to_https_or_loopback(server: BinaryServer) -> None:
    server.redirect("/latest", "/v2/tool")
    with fetcher() as f:
        assert f.fetch(f"{server.url}/latest").digest == sha(server.content("/v2/tool"))
    server.redirect("/downgrade", "http://downloads.example.com/tool")
    with fetcher() as f, pytest.raises(BinaryFetchError) as caught:
        f.fetch(f"{server.url}/downgrade")
    assert caught.value.message == (
        "redirected to http://downloads.example.com/tool: redirects are followed only to https"
    )
    server.redirect("/loop", "/loop")
    with fetcher() as f, pytest.raises(BinaryFetchError, match="more than 10 redirects"):
        f.fetch(f"{server.url}/loop")


def test_fetch_binaries_fetches_each_url_once_and_collects_every_failure(server: BinaryServer) -> None:
    server.missing("/b")
    urls = [f"{server.url}/a", f"{server.url}/b", f"{server.url}/a", f"{server.url}/c"]
    with fetcher() as f:
        result = fetch_binaries(f, urls, concurrency=4)
    assert list(result.digests) == [f"{server.url}/a", f"{server.url}/c"]
    assert list(result.failures) == [f"{server.url}/b"] and not result.ok
    assert sum(1 for r in server.requests if r[1] == "/a") == 1
