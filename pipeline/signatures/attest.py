"""Attesting images and verifying their attestations: the signing loop (:mod:`pipeline.signatures.sign`) over
the attestation layouts, and the verify loop that ``verify-attestation`` and ``verify-release
--require-provenance`` share.

An image passes when at least one attestation of the asked predicate type verifies in either layout (as
``cosign verify-attestation``) and, with a statement policy, satisfies it; each verified statement is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.cosign.verify import VerificationPolicy
from pipeline.errors import ReleaseVectorError
from pipeline.http import DEFAULT_CONCURRENCY, parallel_map
from pipeline.oci.reference import Reference, Repository
from pipeline.signatures.att_legacy import LegacyAttestationLayout
from pipeline.signatures.att_referrer import ReferrerAttestationLayout
from pipeline.signatures.attestation import Attestation, VerifiedAttestation
from pipeline.signatures.blob import TimestampSource
from pipeline.signatures.formats import BundleFormat, formats_of
from pipeline.signatures.layout import (
    Format,
    Layout,
    LayoutVerification,
    SignatureReads,
    Verifier,
    WriteConfirmations,
)
from pipeline.signatures.registry import SignatureRegistry
from pipeline.signatures.target import SignatureTarget

StatementCheck = Callable[[bytes, str], list[str]]
"""(statement payload, where) -> the reasons it fails a policy (empty: it passes)."""


def attestation_layouts(
    bundle_format: BundleFormat,
    registry: SignatureRegistry,
    attestation: Attestation,
    *,
    created: str | None = None,
    reads: SignatureReads | None = None,
    confirmations: WriteConfirmations | None = None,
    timestamps: TimestampSource | None = None,
) -> tuple[Layout, ...]:
    """The attestation layouts ``bundle_format`` stands for (legacy ``.att`` first); ``reads``: the look's
    ``.att`` reads handed to the signing (a release)."""
    layouts: list[Layout] = []
    for fmt in formats_of(bundle_format):
        if fmt == "legacy":
            layouts.append(LegacyAttestationLayout(registry, attestation, reads=reads, confirmations=confirmations,
                                                   timestamps=timestamps))  # fmt: skip
        else:
            layouts.append(ReferrerAttestationLayout(registry, attestation, created=created,
                                                     confirmations=confirmations, timestamps=timestamps))  # fmt: skip
    return tuple(layouts)


@dataclass(frozen=True)
class AttestationCheck:
    """One image's attestations of one predicate type: those that verified (and passed the policy), and why
    the others did not."""

    reference: str
    digest: str | None
    verified: tuple[VerifiedAttestation, ...]
    failures: tuple[str, ...]
    found: tuple[Format, ...] = ()

    @property
    def ok(self) -> bool:
        return bool(self.verified)

    def reason(self) -> str:
        return "; ".join(dict.fromkeys(self.failures)) or "no valid attestation"

    def to_json(self) -> dict[str, object]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "ok": self.ok,
            "attestations": [
                {
                    "format": a.format,
                    "where": a.where,
                    "signer": a.signature.signer,
                    "issuer": a.signature.issuer,
                    "integrated_time": a.signature.integrated_time,
                    "log_index": a.signature.log_index,
                    "checks": list(a.signature.checks),
                }
                for a in self.verified
            ],
            "failures": list(dict.fromkeys(self.failures)),
        }


def verify_image_attestations(
    registry: SignatureRegistry,
    image: Reference,
    policy: VerificationPolicy,
    predicate_type: str,
    *,
    statement_check: StatementCheck | None = None,
    digest: str | None = None,
    signatures: Repository | None = None,
) -> AttestationCheck:
    """Every attestation of ``predicate_type`` of one image, in both layouts; never raises for a
    verification problem. ``digest``: the image's digest when the caller knows it (no HEAD); ``signatures``:
    the repository holding its attestations (``--signature-repository``; None: its own)."""
    label = str(image)
    try:
        digest = digest or image.digest
        if digest is None:
            descriptor = registry.head_manifest(image)
            if descriptor is None:
                return AttestationCheck(label, None, (), ("image not found",))
            digest = descriptor.digest
    except ReleaseVectorError as error:
        return AttestationCheck(label, image.digest, (), (error.one_line(),))
    target = SignatureTarget(image, digest, signatures=signatures)
    attestation = Attestation(predicate_type)
    results: dict[Format, LayoutVerification] = {}
    for layout in attestation_layouts("both", registry, attestation):
        results[layout.format] = layout.verify(target, Verifier(policy))
    failures = [failure for result in results.values() for failure in result.failures]
    verified: list[VerifiedAttestation] = []
    for result in results.values():
        for item in result.verified:
            assert isinstance(item, VerifiedAttestation)
            problems = statement_check(item.payload, item.where) if statement_check is not None else []
            if problems:
                failures += [f"{item.where}: {problem}" for problem in problems]
            else:
                verified.append(item)
    found = tuple(fmt for fmt, result in results.items() if result.found)
    if not found:
        failures = [f"no attestations of type {predicate_type} found "
                    f"({'; '.join(result.missing for result in results.values())})"]  # fmt: skip
    return AttestationCheck(label, digest, tuple(verified), tuple(failures), found)


def verify_attestations(
    registry: SignatureRegistry,
    images: Sequence[Reference],
    policy: VerificationPolicy,
    predicate_type: str,
    *,
    statement_check: StatementCheck | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    signatures: Repository | None = None,
) -> list[AttestationCheck]:
    """Every image checked, results in input order."""

    def one(image: Reference) -> AttestationCheck:
        return verify_image_attestations(registry, image, policy, predicate_type, statement_check=statement_check,
                                         signatures=signatures)  # fmt: skip

    return parallel_map(one, images, concurrency=concurrency)
