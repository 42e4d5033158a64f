"""The transparency-log port: where signatures are recorded, and the keys its answers verify with.

:class:`~pipeline.sigstore.rekor_client.RekorClient` provides it; signing (:mod:`pipeline.signatures`)
depends only on this protocol, so a test or another log (Rekor v2, later) plugs in here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pipeline.errors import UsageError

if TYPE_CHECKING:  # the port's types: every layout names it, a verify run needs none of them (start-up time)
    from pipeline.cosign.keys import PublicKey
    from pipeline.cosign.rekor import LogEntry, RekorBundle
    from pipeline.cosign.timestamp import TimestampAuthority
    from pipeline.sigstore.dsse import DsseEnvelope
    from pipeline.sigstore.rekor_v2 import RekorV2Entry


class TransparencyLog(Protocol):
    """A log that takes ``hashedrekord`` (legacy signatures) and ``dsse`` entries (Sigstore bundles)."""

    @property
    def trusted_keys(self) -> Sequence[PublicKey]: ...

    @property
    def timestamp_authorities(self) -> Sequence[TimestampAuthority]:
        """The TSAs whose timestamps date this log's entries: none for Rekor v1 (its entries carry their
        integratedTime); a Rekor v2 log's entries carry no time, so the run's TSA (see RekorV2Client)."""
        ...

    def upload(
        self, payload_sha256: str, signature: bytes, signer_pem: bytes, algorithm: str = "sha256"
    ) -> RekorBundle:
        """Log a ``hashedrekord`` entry (or find the existing one) and return its verified bundle; the digest
        is by ``algorithm``, the hash the key signs with (sha256; sha384 or sha512 for P-384, P-521, Ed25519)."""
        ...

    def upload_dsse(self, envelope: DsseEnvelope, signer_pem: bytes) -> LogEntry | RekorV2Entry:
        """Log a ``dsse`` entry for ``envelope`` (0.0.1; 0.0.2 in a Rekor v2 log, or find the existing one);
        its verified entry."""
        ...


@runtime_checkable
class IntotoLog(Protocol):
    """A log that also takes ``intoto`` 0.0.2 entries (what cosign's legacy ``.att`` layers were logged as).
    A log without it (Rekor v2 takes only ``dsse`` and ``hashedrekord``) gets the ``.att`` layer's entry
    as ``dsse``, which is what cosign v3 writes there by default."""

    def upload_intoto(self, envelope: DsseEnvelope, envelope_json: bytes, signer_pem: bytes) -> RekorBundle:
        """Log an ``intoto`` 0.0.2 entry for ``envelope`` (serialised as ``envelope_json``) and return its
        verified legacy bundle (for the ``dev.sigstore.cosign/bundle`` annotation)."""
        ...


def legacy_bundle(entry: LogEntry | RekorV2Entry) -> RekorBundle:
    """The legacy ``dev.sigstore.cosign/bundle`` of a v1 entry; a Rekor v2 entry has none (no SET, no time)."""
    from pipeline.sigstore.rekor_v2 import RekorV2Entry

    if isinstance(entry, RekorV2Entry):
        raise UsageError(
            "a Rekor v2 log entry cannot go into cosign's legacy layout (its bundle annotation needs a"
            " SignedEntryTimestamp, which Rekor v2 does not give)",
            hint="sign with --bundle-format v3, or name a Rekor v1 log",
        )
    return entry.bundle
