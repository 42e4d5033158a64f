"""Sigstore bundles (``application/vnd.dev.sigstore.bundle*``): models, parser and offline verification.

``bundle`` reads the JSON (protojson) form of a bundle into frozen data; ``verify`` checks one against a
:class:`~pipeline.cosign.verify.VerificationPolicy`, as cosign v3 and ``cosign verify-blob`` do.
"""

from __future__ import annotations

from pipeline.sigstore.bundle import (
    BUNDLE_MEDIA_TYPES,
    COSIGN_SIGN_PREDICATE_TYPE,
    InclusionProof,
    InTotoStatement,
    InTotoSubject,
    MessageSignature,
    SigstoreBundle,
    TransparencyLogEntry,
    VerificationMaterial,
    is_sigstore_bundle,
    parse_in_toto_statement,
    parse_sigstore_bundle,
    statement_subject_digests,
)
from pipeline.sigstore.dsse import IN_TOTO_PAYLOAD_TYPE, DsseEnvelope, DsseSignature, dsse_pae
from pipeline.sigstore.verify import (
    verify_bundle_for_artifact,
    verify_bundle_for_image,
)

__all__ = [
    "BUNDLE_MEDIA_TYPES",
    "COSIGN_SIGN_PREDICATE_TYPE",
    "IN_TOTO_PAYLOAD_TYPE",
    "DsseEnvelope",
    "DsseSignature",
    "InTotoStatement",
    "InTotoSubject",
    "InclusionProof",
    "MessageSignature",
    "SigstoreBundle",
    "TransparencyLogEntry",
    "VerificationMaterial",
    "dsse_pae",
    "is_sigstore_bundle",
    "parse_in_toto_statement",
    "parse_sigstore_bundle",
    "statement_subject_digests",
    "verify_bundle_for_artifact",
    "verify_bundle_for_image",
]
