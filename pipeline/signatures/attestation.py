"""What an attestation is to the layouts: a predicate of a type, signed as an in-toto statement over the
target's digest; and what verifying one found (the shared result of both attestation layouts)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from pipeline.cosign.verify import VerifiedSignature
from pipeline.errors import InvalidInputError, VerificationError
from pipeline.signatures.layout import Format
from pipeline.signatures.target import SignatureTarget
from pipeline.sigstore.bundle import InTotoStatement, parse_in_toto_statement
from pipeline.sigstore.intoto import attestation_statement

DSSE_MEDIA_TYPE: Final = "application/vnd.dsse.envelope.v1+json"
PREDICATE_TYPE_ANNOTATION: Final = "predicateType"
ATTESTATION_TAG_SUFFIX: Final = "att"


@dataclass(frozen=True)
class Attestation:
    """A predicate (a JSON object) of ``predicate_type`` (a URI); ``predicate`` None: verify only."""

    predicate_type: str
    predicate: Mapping[str, object] | None = field(default=None, hash=False, compare=False)
    same: Callable[[bytes, bytes], bool] | None = field(default=None, hash=False, compare=False)

    def matches(self, existing: bytes, ours: bytes) -> bool:
        """Does an existing (verified) statement count as ours? Byte-equal, unless ``same`` says otherwise
        (provenance: equal but for the run's times)."""
        return existing == ours or (self.same is not None and self.same(existing, ours))

    def statement(self, target: SignatureTarget) -> bytes:
        """The statement for ``target``: subject = the repository's name (as cosign writes it) and the digest;
        the target's ``-a`` annotations go into the subject's ``annotations``."""
        if self.predicate is None:
            raise ValueError("an attestation to sign needs its predicate")
        name = target.docker_reference or target.image.cosign_name
        return attestation_statement(
            [(name, target.digest.split(":", 1)[1])],
            self.predicate_type,
            self.predicate,
            annotations=dict(target.annotations),
        )


def attestation_tag(digest: str) -> str:
    """``sha256:<hex>`` -> ``sha256-<hex>.att``: where cosign keeps an image's attestations."""
    algorithm, hex_part = digest.split(":", 1)
    return f"{algorithm}-{hex_part}.{ATTESTATION_TAG_SUFFIX}"


@dataclass(frozen=True)
class VerifiedAttestation:
    """An attestation that verified for the image: the statement (the DSSE payload), who signed it, where."""

    format: Format
    payload: bytes = field(repr=False)
    signature: VerifiedSignature
    where: str


def check_statement(payload: bytes, digest: str, predicate_type: str, where: str) -> InTotoStatement:
    """As ``cosign verify-attestation``: an in-toto statement of ``predicate_type`` one of whose subjects is
    ``digest``; VerificationError naming what differs."""
    try:
        statement = parse_in_toto_statement(payload, where)
    except InvalidInputError as error:
        raise VerificationError(f"the signed payload is unusable: {error.message}", where=where) from None
    if statement.predicate_type != predicate_type:
        raise VerificationError(
            f"the attestation's predicateType is {statement.predicate_type}, not {predicate_type}", where=where
        )
    hex_part = digest.split(":", 1)[1]
    if not any(subject.digest.get("sha256") == hex_part for subject in statement.subjects):
        named = ", ".join(f"sha256:{s.digest['sha256']}" for s in statement.subjects if "sha256" in s.digest)
        raise VerificationError(
            f"the attestation is for another digest (its subject names {named or 'no sha256 digest'}, not {digest})",
            where=where,
        )
    return statement
