"""pipeline.http: retries, Retry-After, idempotency, deadlines, capped bodies, loopback, parallel_map."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from pipeline import http
from pipeline.errors import RegistryError
from pipeline.http import (
    Retryable,
    RetryPolicy,
    collected_errors,
    describe_transport_error,
    is_loopback_host,
    parallel_map,
    parallel_unlocking,
    parse_retry_after,
    read_capped,
    request_sent,
    retry_delay,
    retrying,
    send,
)
from tests.conftest import REPO_ROOT
from tests.hostile_servers import HostileServer, drip, drip_headers, endless


@pytest.fixture(autouse=True)
def _default_timeout() -> Iterator[None]:
    yield
    http.set_request_timeout(None)


# --- retries --------------------------------------------------------------------------------------


def _run(policy: RetryPolicy, errors: list[Retryable], *, idempotent: bool = True) -> tuple[int, list[float], str]:
    calls = 0
    sleeps: list[float] = []

    def attempt() -> str:
        nonlocal calls
        calls += 1
        if errors:
            raise errors.pop(0)
        return "ok"

    try:
        result = retrying(
            attempt,
            policy,
            who="the server",
            fail=lambda m: RegistryError(m),
            sleep=sleeps.append,
            delay=lambda n, ra: retry_delay(policy, n, ra),
            idempotent=idempotent,
        )
    except RegistryError as error:
        result = error.message
    return calls, sleeps, result


def test_retry_count_is_bounded_and_said() -> None:
    calls, sleeps, message = _run(RetryPolicy(attempts=3), [Retryable("answered 503")] * 5)
    assert calls == 3 and len(sleeps) == 2
    assert message == "answered 503 (after 3 attempts)"


def test_success_after_retries() -> None:
    calls, _, result = _run(RetryPolicy(attempts=4), [Retryable("x"), Retryable("y")])
    assert (calls, result) == (3, "ok")


def test_retry_after_seconds_is_honoured() -> None:
    assert parse_retry_after("7") == 7.0
    _, sleeps, _ = _run(RetryPolicy(attempts=2, backoff=0.01), [Retryable("429", parse_retry_after("7"))])
    assert sleeps == [7.0]


def test_retry_after_http_date_is_honoured() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now=lambda: now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=lambda: now) == 0.0
    assert parse_retry_after("soon") is None


def test_retry_after_longer_than_allowed_gives_up_at_once() -> None:
    calls, sleeps, message = _run(RetryPolicy(attempts=4, max_retry_after=10), [Retryable("429", 3600.0)])
    assert calls == 1 and sleeps == []
    assert "asks to retry after 3600 s" in message


def test_non_idempotent_request_is_not_repeated_once_its_body_was_sent() -> None:
    calls, sleeps, message = _run(RetryPolicy(attempts=4), [Retryable("closed", sent=True)] * 4, idempotent=False)
    assert calls == 1 and sleeps == [] and message == "closed"


def test_non_idempotent_request_is_repeated_while_nothing_was_sent() -> None:
    calls, _, result = _run(RetryPolicy(attempts=4), [Retryable("refused", sent=False)] * 2, idempotent=False)
    assert (calls, result) == (3, "ok")


def test_which_transport_errors_mean_the_request_left() -> None:
    request = httpx.Request("POST", "http://127.0.0.1:9/")
    assert not request_sent(httpx.ConnectError("refused", request=request))
    assert not request_sent(httpx.ConnectTimeout("slow", request=request))
    assert request_sent(httpx.ReadTimeout("slow", request=request))
    assert request_sent(httpx.RemoteProtocolError("closed", request=request))


def test_transport_error_descriptions_name_the_service() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:9/")
    assert describe_transport_error(httpx.ConnectError("x", request=request), "Fulcio") == "cannot connect to Fulcio"
    assert describe_transport_error(httpx.ReadTimeout("x", request=request), "GitHub") == (
        "timed out waiting for GitHub to answer"
    )
    assert "closed the connection" in describe_transport_error(httpx.RemoteProtocolError("x"), "the registry")


# --- deadlines and caps -----------------------------------------------------------------------------


def _fail(message: str) -> RegistryError:
    return RegistryError(message, where="the URL")


def test_a_dripping_answer_ends_at_the_request_timeout() -> None:
    http.set_request_timeout(0.5)
    with HostileServer({"/": drip(interval=0.1)}) as server, httpx.Client() as client:
        response = send(client, client.build_request("GET", server.url + "/"))
        with pytest.raises(RegistryError, match=r"did not complete within the request timeout of 0\.5 s") as caught:
            read_capped(response, 1024 * 1024, fail=_fail)
    assert caught.value.hint is not None and "--request-timeout" in caught.value.hint


def test_dripping_headers_end_at_the_request_timeout() -> None:
    """Each byte comes well within the read timeout: only the total deadline can end this."""
    http.set_request_timeout(0.6)
    client = http.http_client(
        verify=http.ssl_context(None, "unused"), timeout=httpx.Timeout(5.0), headers={}, transport=None
    )
    with HostileServer({"/": drip_headers(interval=0.1)}) as server, client:
        started = time.monotonic()
        with pytest.raises(httpx.TimeoutException):
            send(client, client.build_request("GET", server.url + "/"))
        assert time.monotonic() - started < 5.0, "the per-read timeout, not the deadline, ended it"


def test_the_network_backend_hook_is_in_place() -> None:
    """http_client reaches into httpx's pool for its network backend: this fails if httpx changes that."""
    client = http.http_client(
        verify=http.ssl_context(None, "unused"), timeout=httpx.Timeout(5.0), headers={}, transport=None
    )
    with client:
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert type(pool._network_backend).__name__ == "_DeadlineBackend"


def test_send_cuts_socket_timeouts_to_the_deadline() -> None:
    http.set_request_timeout(2)
    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.extensions["timeout"])
        return httpx.Response(200, content=b"{}")

    with httpx.Client(transport=httpx.MockTransport(handler), timeout=60) as client:
        send(client, client.build_request("GET", "http://x/")).close()
    assert all(isinstance(v, float) and v <= 2 for v in seen.values())


def test_blob_deadlines_scale_with_size() -> None:
    http.set_request_timeout(60)
    assert http.transfer_timeout(None) == 60
    assert http.transfer_timeout(100 * 1024 * 1024) > http.transfer_timeout(10 * 1024 * 1024) > 60


def test_an_endless_answer_stops_at_the_cap() -> None:
    with HostileServer({"/": endless()}) as server, httpx.Client() as client:
        response = send(client, client.build_request("GET", server.url + "/"))
        with pytest.raises(RegistryError, match=r"answer too large \(over 1048576 bytes"):
            read_capped(response, 1024 * 1024, fail=_fail)


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    response = httpx.Response(200, headers={"Content-Length": "5000000"}, content=b"")
    with pytest.raises(RegistryError, match=r"\(5000000 bytes; the limit is 1000 bytes\)"):
        read_capped(response, 1000, fail=_fail, what="manifest")


# --- loopback -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.1.2.3", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("ghcr.io", False),
        ("10.0.0.1:5000", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


# --- parallel_map ---------------------------------------------------------------------------------


def test_parallel_map_keeps_input_order() -> None:
    def slow_for_small(n: int) -> int:
        time.sleep(0.001 * (10 - n))
        return n * n

    assert parallel_map(slow_for_small, range(10), concurrency=4) == [n * n for n in range(10)]
    assert parallel_map(slow_for_small, [], concurrency=4) == []


def test_parallel_map_is_bounded() -> None:
    active = 0
    most = 0
    lock = threading.Lock()

    def work(_: int) -> None:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        time.sleep(0.005)
        with lock:
            active -= 1

    parallel_map(work, range(40), concurrency=3)
    assert 1 <= most <= 3


def test_parallel_map_raises_the_first_error_in_input_order_and_collects_the_others() -> None:
    done: list[int] = []

    def work(n: int) -> int:
        if n in (2, 5):
            time.sleep(0.01 if n == 2 else 0)  # the later item fails first in time
            raise RegistryError(f"item {n} failed")
        done.append(n)
        return n

    with pytest.raises(RegistryError, match="item 2 failed") as caught:
        parallel_map(work, range(8), concurrency=4)
    assert [e.args[0] for e in collected_errors(caught.value)] == ["item 2 failed", "item 5 failed"]
    assert sorted(done) == [0, 1, 3, 4, 6, 7]  # the others still ran


def test_parallel_map_fail_fast_skips_what_has_not_started() -> None:
    started: list[int] = []

    def work(n: int) -> None:
        started.append(n)
        raise ValueError(n)

    with pytest.raises(ValueError):
        parallel_map(work, range(50), concurrency=1, fail_fast=True)
    assert started == [0]
    assert collected_errors(KeyError("x"))[0].args == ("x",)


def test_parallel_unlocking_starts_an_item_only_after_the_item_that_unlocks_it_ended() -> None:
    ended: list[str] = []
    started_after: dict[str, list[str]] = {}
    lock = threading.Lock()
    caller = threading.get_ident()
    results_seen: list[tuple[str, int]] = []

    def fn(item: str) -> str:
        with lock:
            started_after[item] = list(ended)
        with lock:
            ended.append(item)
        return item.upper()

    def on_result(item: str, result: str) -> None:
        results_seen.append((result, threading.get_ident()))

    unlocks = {"a": ["a1", "a2"], "b": ["b1"], "a1": ["a11"]}
    results = parallel_unlocking(fn, ["a", "b"], unlocks, concurrency=3, on_result=on_result)
    assert results == {k: k.upper() for k in ("a", "b", "a1", "a2", "b1", "a11")}
    assert "a" in started_after["a1"] and "a" in started_after["a2"] and "b" in started_after["b1"]
    assert "a1" in started_after["a11"]
    assert {thread for _, thread in results_seen} == {caller}  # progress is reported from the caller


def test_parallel_unlocking_keeps_to_its_concurrency() -> None:
    running = [0]
    most = [0]
    lock = threading.Lock()

    def fn(item: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return item

    unlocks = {0: list(range(1, 20))}
    assert sorted(parallel_unlocking(fn, [0], unlocks, concurrency=4)) == list(range(20))
    assert most[0] <= 4


def test_ssl_contexts_are_built_once_per_ca_file_as_it_is_on_disk(tmp_path: Path) -> None:
    """Loading the roots takes ~70 ms: every client of a run shares one context per CA file, and a CA file
    changed on disk (or another one) gets its own; a bad one is refused every time, never cached."""
    from pipeline.errors import InvalidInputError

    default = http.ssl_context(None, "unused")
    assert http.ssl_context(None, "unused") is default
    chain = REPO_ROOT / "tests/vectors/cosign/image-signatures/fulcio_v1.crt.pem"
    ca = tmp_path / "ca.pem"
    ca.write_bytes(chain.read_bytes())
    first = http.ssl_context(ca, "unreadable")
    assert first is not default and http.ssl_context(ca, "unreadable") is first
    ca.write_bytes(chain.read_bytes() + b"\n")  # another size: the file changed
    assert http.ssl_context(ca, "unreadable") is not first
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"not a certificate")
    for _ in range(2):
        with pytest.raises(InvalidInputError, match="unreadable"):
            http.ssl_context(bad, "unreadable")
    with pytest.raises(InvalidInputError, match="missing"):
        http.ssl_context(tmp_path / "absent.pem", "unreadable", missing="missing")
