"""Which signature formats an image carries, without verifying them: one request per format.

``verify-release`` stops at the first layout with a valid signature (one is enough, and it saves the
referrers requests); to say which formats each image carries (``--json``), the layouts it did not look at
are checked for presence only: the legacy ``sha256-<hex>.sig`` tag (one HEAD), and the image's referrers
(the referrers API or the fallback index: one GET) listing a Sigstore bundle. Present is not valid: a
format reported here but not verified was not checked.
"""

from __future__ import annotations

from collections.abc import Collection

from pipeline.errors import ReleaseVectorError
from pipeline.oci import mediatypes
from pipeline.oci.reference import Reference
from pipeline.signatures.layout import Format
from pipeline.signatures.legacy import signature_reference
from pipeline.signatures.referrer import BUNDLE_ARTIFACT_TYPE, list_referrers
from pipeline.signatures.registry import SignatureRegistry

_BUNDLE_TYPES = frozenset({BUNDLE_ARTIFACT_TYPE, mediatypes.OCI_EMPTY, ""})


def carries(registry: SignatureRegistry, image: Reference, digest: str, fmt: Format) -> bool:
    """Whether a signature in ``fmt`` is there for ``digest`` (False when the registry cannot say)."""
    try:
        if fmt == "legacy":
            return registry.head_manifest(signature_reference(image, digest)) is not None
        listed = list_referrers(registry, image, digest)
    except ReleaseVectorError:
        return False
    return any(referrer.artifact_type in _BUNDLE_TYPES for referrer in listed.referrers)


def formats_carried(
    registry: SignatureRegistry, image: Reference, digest: str, known: Collection[Format], *, skip: Collection[Format]
) -> tuple[Format, ...]:
    """``known`` (formats already found) plus those of the others, not in ``skip``, found present."""
    formats: tuple[Format, ...] = ("legacy", "v3")
    return tuple(f for f in formats if f in known or (f not in skip and carries(registry, image, digest, f)))
