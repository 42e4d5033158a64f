"""``--bundle-format``: which layouts a run signs into."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

from pipeline.errors import UsageError
from pipeline.signatures.layout import Format, Layout, SignatureReads, WriteConfirmations
from pipeline.signatures.legacy import LegacyLayout
from pipeline.signatures.referrer import ReferrerLayout

if TYPE_CHECKING:  # sign-blob's module (the bundle writers) is not needed to look for signatures
    from pipeline.signatures.blob import TimestampSource
    from pipeline.signatures.registry import SignatureRegistry

BundleFormat = Literal["legacy", "v3", "both"]
BUNDLE_FORMATS: Final[tuple[BundleFormat, ...]] = ("legacy", "v3", "both")


def formats_of(bundle_format: BundleFormat) -> tuple[Format, ...]:
    """The concrete formats a ``--bundle-format`` value stands for."""
    if bundle_format == "both":
        return ("legacy", "v3")
    if bundle_format in ("legacy", "v3"):
        return (bundle_format,)
    raise UsageError(f"unknown bundle format {bundle_format!r} (legacy, v3 or both)")


def layouts_for(
    bundle_format: BundleFormat,
    registry: SignatureRegistry,
    *,
    reads: SignatureReads | None = None,
    created: str | None = None,
    confirmations: WriteConfirmations | None = None,
    timestamps: TimestampSource | None = None,
) -> tuple[Layout, ...]:
    """The layouts ``bundle_format`` stands for, over ``registry``, in signing order (legacy first).
    ``confirmations``: their writes are read back when the caller settles it (else each one inline)."""
    layouts: list[Layout] = []
    for fmt in formats_of(bundle_format):
        if fmt == "legacy":
            layouts.append(LegacyLayout(registry, reads=reads, confirmations=confirmations, timestamps=timestamps))
        else:
            layouts.append(
                ReferrerLayout(registry, created=created, confirmations=confirmations, timestamps=timestamps)
            )
    return tuple(layouts)


def all_layouts(registry: SignatureRegistry) -> tuple[Layout, ...]:
    """Every layout a verifier looks in, in the order it looks (legacy first: the cheaper one)."""
    return layouts_for("both", registry)
