"""pipeline/signatures/layout.py: the read-modify-write at a tag that concurrent writers share."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from pipeline.errors import ConflictError, RegistryError
from pipeline.signatures.layout import PendingWrite, WriteConfirmations, retry_blob_race, write_until_present


class Tag:
    """A tag holding a set of additions; ``replace`` plays another writer's copy landing after ours."""

    def __init__(self) -> None:
        self.value: frozenset[str] = frozenset()
        self.puts = 0
        self.failures: list[RegistryError] = []
        self.after_put: Callable[[], None] = lambda: None

    def read(self) -> frozenset[str]:
        return self.value

    def prepare(self, ours: str) -> Callable[[frozenset[str]], Callable[[], object] | None]:
        def build(current: frozenset[str]) -> Callable[[], object] | None:
            if ours in current:
                return None

            def put() -> None:
                self.puts += 1
                if self.failures:
                    raise self.failures.pop(0)
                self.value = current | {ours}
                self.after_put()

            return put

        return build


def registry_error(*codes: str) -> RegistryError:
    error = RegistryError("registry answered 400 to PUT the manifest", where="r/x:sha256-1.sig")
    error.codes = frozenset(codes)
    return error


def no_sleep(_seconds: float) -> None:
    pass


def run(tag: Tag, ours: str, confirmations: WriteConfirmations | None = None) -> bool:
    return write_until_present(tag.read(), tag.read, tag.prepare(ours), lambda v: ours in v, where="r/x",
                               sleep=no_sleep, confirmations=confirmations)  # fmt: skip


def test_a_manifest_refused_for_a_blob_another_writer_is_uploading_is_written_again() -> None:
    tag = Tag()
    tag.failures = [registry_error("MANIFEST_BLOB_UNKNOWN")]
    assert run(tag, "a") and tag.value == {"a"} and tag.puts == 2


def test_other_registry_errors_are_not_retried() -> None:
    tag = Tag()
    tag.failures = [registry_error("DENIED")]
    with pytest.raises(RegistryError):
        run(tag, "a")
    assert tag.puts == 1


def test_another_writers_copy_without_ours_gets_ours_again() -> None:
    tag = Tag()
    lost_once = [True]

    def other_writer_lands() -> None:  # its copy, read before our PUT, replaces ours once
        if lost_once.pop() if lost_once else False:
            tag.value = frozenset({"b"})

    tag.after_put = other_writer_lands
    assert run(tag, "a") and tag.value == {"a", "b"} and tag.puts == 2


def test_the_read_back_at_the_end_of_a_run_reapplies_what_was_lost() -> None:
    tag = Tag()
    confirmations = WriteConfirmations()
    assert run(tag, "a", confirmations) and len(confirmations) == 1
    tag.value = frozenset({"b"})  # another writer's copy landed after our PUT
    assert confirmations.settle(4, sleep=no_sleep) == [] and tag.value == {"a", "b"}


def test_an_addition_that_never_stays_is_a_conflict() -> None:
    tag = Tag()

    def always_replaced() -> None:
        tag.value = frozenset({"b"})

    tag.after_put = always_replaced
    with pytest.raises(ConflictError):
        run(tag, "a")


def test_settle_reads_each_write_back_once_it_is_due_not_all_after_the_last() -> None:
    """Two writes 10 s apart, each window 1 s: the first is read back at once (it is long due), the
    second 2 windows after its own PUT; the run waits once, for the last write only."""
    now = [100.0]
    reads: list[tuple[str, float]] = []
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    def pending(name: str, written_at: float) -> PendingWrite:
        def stayed() -> bool:
            reads.append((name, now[0]))
            return True

        return PendingWrite(name, written_at, 1.0, stayed, lambda: None)

    confirmations = WriteConfirmations()
    confirmations.add(pending("late", 99.5))
    confirmations.add(pending("early", 89.5))
    assert confirmations.settle(1, sleep=sleep, clock=lambda: now[0]) == []
    assert reads == [("early", 100.0), ("late", 101.5)] and slept == [1.5]


def test_a_referrer_refused_for_a_blob_another_writer_is_uploading_is_written_again() -> None:
    """Every referrer of a repository names the same empty config blob: writers racing to upload it can see
    their manifest refused (MANIFEST_BLOB_UNKNOWN, DIGEST_INVALID); uploads and PUT are made again."""
    failures = [registry_error("DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN")]
    calls: list[int] = []

    def write() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "sha256:written"

    assert retry_blob_race(write, sleep=no_sleep) == "sha256:written" and len(calls) == 2
    failures[:] = [registry_error("DENIED")]
    with pytest.raises(RegistryError):
        retry_blob_race(write, sleep=no_sleep)


# --- sign: a signer's layouts side by side (issue 13: --bundle-format both) --------------------------


class _MeetingLayout:
    """A layout whose ensure waits for the other one's: passes only when both run at the same time."""

    def __init__(self, name: str, meeting: object, fail: bool = False) -> None:
        self.format = name
        self.meeting = meeting
        self.fail = fail
        self.ensured = 0

    def ensure(self, target: object, signer: object, log: object) -> str:
        import threading

        assert isinstance(self.meeting, threading.Barrier)
        self.ensured += 1
        self.meeting.wait()  # a BrokenBarrierError (after its timeout) if the layouts ran one after the other
        if self.fail:
            raise RegistryError("the v3 write failed", where="here")
        return "signed"


def test_a_signers_layouts_are_ensured_side_by_side_and_each_is_attempted() -> None:
    import threading

    from pipeline.oci.reference import parse_reference
    from pipeline.signatures.sign import sign
    from pipeline.signatures.target import SignatureTarget

    target = SignatureTarget(parse_reference("example.com/a/b:v1"), "sha256:" + "a" * 64)
    signer: object = object()
    meeting = threading.Barrier(2, timeout=30)
    layouts = [_MeetingLayout("legacy", meeting), _MeetingLayout("v3", meeting)]
    assert sign(target, [signer], layouts, None, layouts_at_once=2) == "signed"  # type: ignore[list-item]
    failing = [_MeetingLayout("legacy", meeting), _MeetingLayout("v3", meeting, fail=True)]
    with pytest.raises(RegistryError, match="v3 write failed"):
        sign(target, [signer], failing, None, layouts_at_once=2)  # type: ignore[list-item]
    assert [layout.ensured for layout in failing] == [1, 1]
    one_at_a_time = [_MeetingLayout("legacy", threading.Barrier(1)), _MeetingLayout("v3", threading.Barrier(1))]
    assert sign(target, [signer], one_at_a_time, None) == "signed"  # type: ignore[list-item]


def test_keyed_locks_take_turns_per_key_and_forget_a_key_nobody_holds() -> None:
    import threading

    from pipeline.signatures.layout import KeyedLocks

    turns = KeyedLocks()
    inside: list[str] = []
    entered = threading.Event()
    release = threading.Event()

    def hold(key: str) -> None:
        with turns.hold(key):
            inside.append(key)
            entered.set()
            release.wait(5)

    first = threading.Thread(target=hold, args=("tag-a",))
    first.start()
    assert entered.wait(5)
    second = threading.Thread(target=hold, args=("tag-a",))  # the same key: waits
    other = threading.Thread(target=hold, args=("tag-b",))  # another key: goes in at once
    second.start()
    other.start()
    deadline = time.monotonic() + 5
    while inside.count("tag-b") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert inside == ["tag-a", "tag-b"]  # the second holder of tag-a is still waiting
    assert len(turns) == 2
    release.set()
    for thread in (first, second, other):
        thread.join(5)
    assert inside.count("tag-a") == 2
    assert len(turns) == 0
