"""Binaries fetched by URL: streamed and hashed, size-bounded, retried, redirects only to https (or loopback)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from pipeline.binaries import BinaryFetcher, BinaryOptions, RetryPolicy, fetch_binaries, parse_binary_mirrors
from pipeline.errors import (
    BinaryFetchError,
    BinaryNotFoundError,
    BinaryTooLargeError,
    ExitCode,
    InvalidInputError,
    UsageError,
    is_unchecked,
)
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


def test_a_compressed_answer_is_pinned_by_the_bytes_sent_and_identity_is_asked_for() -> None:
    """A ``.gz`` served with ``Content-Encoding: gzip`` is the file ``curl -o`` saves and ``sha256sum`` hashes;
    decoding it would pin other bytes (and miscount them against Content-Length)."""
    import gzip

    import httpx

    packed = gzip.compress(b"an initrd, compressed" * 100)
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("Accept-Encoding", ""))
        return httpx.Response(200, headers={"Content-Encoding": "gzip", "Content-Length": str(len(packed))},
                              stream=httpx.ByteStream(packed))  # fmt: skip

    with BinaryFetcher(BinaryOptions(retries=FAST), transport=httpx.MockTransport(answer)) as f:
        got = f.fetch("https://downloads.example.com/initrd.gz")
    assert (got.digest, got.size) == (sha(packed), len(packed))
    assert asked == ["identity"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://[::1/x", "not a valid URL: Invalid port"),
        ("https://xn--invalid-.com/x", "not a valid URL: "),
        ("https:///nohost", "not a valid URL: it has no host"),
        ("https://example.com:99999/x", "not a valid URL: port 99999 is out of range"),
    ],
)
def test_a_url_no_request_can_be_built_from_is_exit_3_not_a_crash(url: str, problem: str) -> None:
    """The vector's parse refuses these with their line; a mirror's URL, or a vector pinned by hand before
    ``verify-release --check-binaries``, reaches the fetcher, which says the same without a traceback."""
    with fetcher() as f, pytest.raises(InvalidInputError) as caught:
        f.fetch(url)
    assert caught.value.exit_code == ExitCode.INVALID_INPUT
    assert caught.value.message.startswith(problem)
    assert caught.value.where


def test_404_and_410_are_not_found_answers(server: BinaryServer) -> None:
    server.missing("/gone")
    with fetcher() as f, pytest.raises(BinaryNotFoundError) as caught:
        f.fetch(f"{server.url}/gone")
    assert caught.value.exit_code == ExitCode.REGISTRY and not is_unchecked(caught.value)
    server.inject_failures(3, status=503)
    with fetcher() as f, pytest.raises(BinaryFetchError) as outage:
        f.fetch(f"{server.url}/busy")
    assert is_unchecked(outage.value)
