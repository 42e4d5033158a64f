"""Where a signature lives: the :class:`Layout` protocol, what verifying one layout finds, and the
``.sig`` reads a release's look hands to its signing."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol, TypeVar

from pipeline.cosign.sigmanifest import SignatureManifest
from pipeline.cosign.verify import VerificationPolicy
from pipeline.errors import ConflictError, RegistryError, ReleaseVectorError
from pipeline.http import parallel_map
from pipeline.oci.reference import Reference
from pipeline.signatures.signers import Signer
from pipeline.signatures.target import SignatureTarget
from pipeline.sigstore.tlog import TransparencyLog

SignStatus = Literal["signed", "already signed", "failed"]
Format = Literal["legacy", "v3"]
T = TypeVar("T")

WRITE_ATTEMPTS: Final = 5
"""How often a layout re-applies its write onto a manifest another writer replaced meanwhile."""
INLINE_MIN_WAIT: Final = 0.25  # seconds: one write's window alone is a poor guess of another writer's
_BLOB_RACE_CODES: Final = frozenset({"BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN", "DIGEST_INVALID"})
SETTLE_FACTOR: Final = 2.0
"""A write is read back this many times the run's longest read-to-PUT window after its PUT."""
RETRY_DELAY: Final = 0.05  # seconds, doubled per attempt, jittered: concurrent writers fall out of step
_JITTER: Final = random.Random()  # timing jitter only, nothing secret  # noqa: S311


@dataclass(frozen=True)
class Verifier:
    """What a signature must pass: the policy (a key, or keyless trust), the ``-a`` annotations its
    payload must carry, and (legacy payloads only) that its docker-reference names the image's repository."""

    policy: VerificationPolicy
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    require_reference: bool = False


@dataclass(frozen=True)
class LayoutVerification:
    """Every signature one layout holds for an image, checked: those that verified (a layout's own
    result type), the reasons of those that did not, whether it holds any, and why none were found."""

    verified: tuple[object, ...]
    failures: tuple[str, ...]
    found: bool
    missing: str = ""
    hints: tuple[str, ...] = ()
    unchecked: ReleaseVectorError | None = None  # what kept some signatures from being checked (is_unchecked)


class Layout(Protocol):
    """One place signatures of an image live. ``ensure`` adds the signer's signature unless one that
    counts as the signer's (its ``policy``) is there; ``is_signed`` is that check alone, read-only."""

    @property
    def format(self) -> Format: ...

    def is_signed(self, target: SignatureTarget, signer: Signer, log: TransparencyLog | None) -> bool: ...

    def ensure(self, target: SignatureTarget, signer: Signer, log: TransparencyLog | None) -> SignStatus: ...

    def verify(self, target: SignatureTarget, verifier: Verifier) -> LayoutVerification: ...


class SignatureReads:
    """The manifests a release's read-only look read at a tag, each handed once to the signing that follows.

    A release looks (is the image signed?) and then signs what is not: without this, every newly signed
    image's ``.sig`` manifest would be read twice, once by each step. A copy is handed out at most once,
    and only within ``max_age`` seconds of its read; later, or a second time (a retry), the signing reads
    afresh. Another signer's write between the look and ours is not lost: the layout reads its write back
    and re-applies it onto what is there. Thread-safe.
    """

    def __init__(self, max_age: float = 60.0) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, SignatureManifest | None]] = {}

    def record(self, ref: Reference, manifest: SignatureManifest | None) -> None:
        with self._lock:
            self._entries[str(ref)] = (time.monotonic(), manifest)

    def take(self, ref: Reference) -> tuple[bool, SignatureManifest | None]:
        """(True, what the look read) if a fresh copy is there (it is removed); else (False, None)."""
        with self._lock:
            entry = self._entries.pop(str(ref), None)
        if entry is None or time.monotonic() - entry[0] > self.max_age:
            return False, None
        return True, entry[1]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class KeyedLocks:
    """A lock per key (a tag), held only while in use: writers of one process take turns at one manifest.

    The vector's signature and its provenance are attached as referrers of the same subject at the same time;
    without a referrers API both land in one ``sha256-<hex>`` fallback index. Taking turns at its
    read-modify-write (the re-read right before the PUT, and the PUT) costs those two requests' time, where
    racing for it would cost a redo at the read-back. Other processes are kept by the read-back. Thread-safe.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}  # key -> (its lock, how many hold or wait)

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)


@dataclass(frozen=True)
class PendingWrite:
    """A write at a tag, to be read back once ``due`` (monotonic seconds) has passed."""

    subject: str  # REPOSITORY@DIGEST the signature is for
    written_at: float  # monotonic seconds, when our PUT returned
    window: float  # seconds our read-to-PUT took: about as long as another writer's
    stayed: Callable[[], bool]  # reads the tag back: is our addition there?
    redo: Callable[[], object]  # re-applies it onto what is there now, confirming inline


class WriteConfirmations:
    """The read-backs of a run's writes, made once at its end rather than one wait per write.

    A writer that read the tag before our PUT lands its copy within its own read-to-write window; waiting
    out that window inside every signing would make each one several round trips longer. Collected here,
    the waits overlap: :meth:`settle` reads every tag back (in parallel) once it is due, and re-applies
    what another writer's copy replaced. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[PendingWrite] = []

    def add(self, pending: PendingWrite) -> None:
        with self._lock:
            self._pending.append(pending)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def settle(
        self,
        concurrency: int,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> list[tuple[str, ReleaseVectorError]]:
        """Confirm every pending write; (subject, error) of each that could not be made to stay.

        Each write is read back once it is due: ``SETTLE_FACTOR`` times the longest read-to-PUT window
        seen in this run (under load every window grows alike; another writer's is as long) after its own
        PUT. The early writes of a run are due by the time it settles and are read at once, while the last
        ones come due, so the wait a run pays is about one window after its last PUT, not one per write.
        No jitter here: a lost write is re-applied through :func:`write_until_present`, which has its own.
        """
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return []
        longest = max(max(write.window for write in pending), RETRY_DELAY)
        pending.sort(key=lambda write: write.written_at)  # the earliest due first

        def confirm(write: PendingWrite) -> ReleaseVectorError | None:
            wait = write.written_at + SETTLE_FACTOR * longest - clock()
            if wait > 0:
                sleep(wait)
            try:
                if not write.stayed():
                    write.redo()
            except ReleaseVectorError as error:
                return error
            return None

        errors = parallel_map(confirm, pending, concurrency=max(1, concurrency))
        return [(write.subject, error) for write, error in zip(pending, errors, strict=True) if error is not None]


def retry_blob_race(
    write: Callable[[], T], *, attempts: int = WRITE_ATTEMPTS, sleep: Callable[[float], None] = time.sleep
) -> T:
    """``write`` (blob uploads, then the manifest PUT naming them), made again while the registry refuses the
    manifest for a blob another writer is uploading at the same moment (BLOB_UNKNOWN, DIGEST_INVALID): the
    empty config ``{}`` of every referrer in a repository, or one payload signed twice at once, is the
    same blob for every writer. Other errors, and the last attempt's, are raised."""
    for attempt in range(attempts):
        try:
            return write()
        except RegistryError as error:
            if not error.codes & _BLOB_RACE_CODES or attempt == attempts - 1:
                raise
            sleep(_JITTER.uniform(0, RETRY_DELAY * 2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover  (the last attempt returns or raises)


def write_until_present(
    current: T,
    read: Callable[[], T],
    prepare: Callable[[T], Callable[[], object] | None],
    present: Callable[[T], bool],
    *,
    where: str,
    attempts: int = WRITE_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    confirmations: WriteConfirmations | None = None,
    subject: str = "",
) -> bool:
    """Read-modify-write of a manifest at a tag (``.sig``, the referrers fallback index, later ``.att``)
    that survives concurrent writers (registries offer no compare-and-swap).

    ``prepare`` builds our addition onto ``current`` and uploads what it needs (blobs), returning the one
    request that writes it (the manifest PUT; None: it is there already, nothing to write). Right before
    that PUT the tag is read again, so another writer can slip in only between those two requests (if it
    did, ours is built again onto theirs); and a while after it (twice as long as that GET and PUT took:
    a writer that read before our PUT has put its copy by then) the tag is read back: if another writer's
    copy replaced ours, ours is re-applied onto theirs, at most ``attempts`` times, jittered. With
    ``confirmations`` that read-back is left to :meth:`WriteConfirmations.settle` at the end of the run.

    True if something was written; a ConflictError if the addition could not be made to stay, so that
    every successful return (or settle) means it is there. Costs two GETs per write beyond the PUT.
    """
    written = False
    for attempt in range(attempts):
        put = prepare(current)
        if put is None:
            return written
        started = time.monotonic()
        latest = read()
        if latest != current:  # another writer came between our read and now: build onto its copy
            current = latest
            continue
        try:
            put()
        except RegistryError as error:
            # Two writers uploading the same blob (the payload is the same for every signer of an image)
            # at the same moment can leave it briefly unusable: Distribution then refuses the manifest
            # naming it. The attempt is made again, blobs included.
            if not error.codes & _BLOB_RACE_CODES or attempt == attempts - 1:
                raise
            sleep(_JITTER.uniform(0, RETRY_DELAY * 2**attempt))
            current = read()
            continue
        written = True
        # Another writer's copy that leaves ours out was read before our PUT: it lands within its own
        # read-to-PUT window, which is as long as ours (one GET, one PUT). Twice that, jittered, is waited.
        window = time.monotonic() - started
        if confirmations is not None:

            def redo() -> bool:
                return write_until_present(read(), read, prepare, present, where=where, attempts=attempts,
                                           sleep=sleep)  # fmt: skip

            confirmations.add(PendingWrite(subject, time.monotonic(), window, lambda: present(read()), redo))
            return True
        sleep(max(2 * window, INLINE_MIN_WAIT) * (1 + _JITTER.random()))
        current = read()
        if present(current):
            return True
        sleep(_JITTER.uniform(0, RETRY_DELAY * 2**attempt))
    raise ConflictError(
        f"another writer replaced the manifest {attempts} times in a row; the signature did not stay",
        where=where,
        hint="run the command again (a re-run adds only what is missing)",
    )
