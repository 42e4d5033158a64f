"""``--bundle-format``: which signature format(s) ``sign``, ``attest`` and ``release`` write."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

from pipeline.errors import UsageError

if TYPE_CHECKING:  # the signature formats (and all they import) load when a command signs (start-up time)
    from pipeline.signatures.formats import BundleFormat

BUNDLE_FORMAT_HELP = (
    "Signature format to write: legacy (the sha256-<hex>.sig tag, .att for attestations, read by every cosign version,"
    " containers/image and the policy controllers), v3 (what cosign v3 writes: a Sigstore bundle attached"
    " as an OCI referrer, with the sha256-<hex> fallback index where the registry has no referrers API),"
    " or both (the default: old and new verifiers pass)."
)
BUNDLE_FORMAT_OPTION = typer.Option(
    "both", "--bundle-format", envvar="RELEASE_VECTOR_BUNDLE_FORMAT", help=BUNDLE_FORMAT_HELP
)


def parse_bundle_format(value: str) -> BundleFormat:
    from pipeline.signatures.formats import BUNDLE_FORMATS, formats_of

    for known in BUNDLE_FORMATS:
        if value == known:
            formats_of(known)
            return known
    raise UsageError(f"--bundle-format must be legacy, v3 or both, not {value!r}")


def referrer_created() -> str:
    """The v3 referrer manifest's creation time: SOURCE_DATE_EPOCH when set (reproducible builds), else now."""
    from pipeline.signatures.referrer import created_now

    return created_now(os.environ.get("SOURCE_DATE_EPOCH") or None)
