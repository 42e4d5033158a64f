"""RFC 3161 signed timestamps (a Sigstore bundle's ``timestampVerificationData``), checked offline.

A timestamp authority (TSA) signs "this message imprint existed at genTime". In a Sigstore bundle the
message is the signature itself (the message signature's bytes, or the DSSE envelope's signature), so a
verified timestamp proves when the signature was made: a keyless certificate, valid ten minutes, must
have been valid then. Rekor v1 entries give that time too (integratedTime); Rekor v2 entries do not,
and a timestamp is then the only source of time.

The response's CMS signature, its TSA certificate chain up to a trusted root, and the imprint over the
message are checked by ``rfc3161-client`` (the library sigstore-python uses); the TSA's validity period
from the trusted root (``timestampAuthorities[].validFor``) is checked here, as sigstore-python does.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from pipeline import jsonbounded
from pipeline.errors import InvalidInputError, VerificationError

if TYPE_CHECKING:  # rfc3161-client loads with the first timestamp checked, not with every verify (start-up)
    from cryptography import x509

MAX_TIMESTAMPS = 32  # more in one bundle is refused (sigstore-python's limit)


@dataclass(frozen=True)
class TimestampAuthority:
    """A trusted TSA: its certificate chain (the signing certificate first, the root last) and the
    period in which its timestamps are accepted (``valid_until`` None: still valid)."""

    certificates: tuple[x509.Certificate, ...]
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def covers(self, moment: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= moment) and (
            self.valid_until is None or moment < self.valid_until
        )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def verify_timestamp(
    response_der: bytes, message: bytes, authorities: Sequence[TimestampAuthority], where: str
) -> datetime:
    """The time a trusted TSA signed for ``message``; VerificationError saying why not."""
    from rfc3161_client import VerificationError as Rfc3161VerificationError
    from rfc3161_client import VerifierBuilder, decode_timestamp_response

    try:
        response = decode_timestamp_response(response_der)
    except (ValueError, Rfc3161VerificationError) as exc:
        raise VerificationError(
            f"the RFC 3161 timestamp is not a valid timestamp response: {exc}", where=where
        ) from None
    problems: list[str] = []
    for authority in authorities:
        if len(authority.certificates) < 2:
            problems.append("a trusted timestamp authority has no complete certificate chain")
            continue
        builder = VerifierBuilder().tsa_certificate(authority.certificates[0])
        builder = builder.add_root_certificate(authority.certificates[-1])
        for intermediate in authority.certificates[1:-1]:
            builder = builder.add_intermediate_certificate(intermediate)
        try:
            builder.build().verify_message(response, message)
        except Rfc3161VerificationError as exc:
            problems.append(_why(str(exc)))
            continue
        signed_at = _aware(response.tst_info.gen_time)
        if not authority.covers(signed_at):
            problems.append(f"its time {signed_at.isoformat()} is outside the timestamp authority's validity period")
            continue
        return signed_at
    reason = problems[0] if problems else "no timestamp authority is trusted"
    raise VerificationError(f"the RFC 3161 timestamp does not verify: {reason}", where=where)


OTHER_DATA: Final = "it is a timestamp over other data, not over this signature"


def _why(text: str) -> str:
    """rfc3161-client's reason in words (its OpenSSL errors are an ``ErrorStack([...])`` dump)."""
    if "Mismatch between messages" in text:
        return OTHER_DATA
    if "ErrorStack" in text or "error:" in text:
        return "its signature does not verify with the trusted timestamp authority's certificate chain"
    return text or "it does not verify"


@dataclass(frozen=True)
class TimestampResults:
    """The times the bundle's timestamps proved, and why the others did not verify."""

    times: tuple[datetime, ...]
    problems: tuple[str, ...]


def verify_timestamps(
    responses: Sequence[bytes], message: bytes, authorities: Sequence[TimestampAuthority], where: str
) -> TimestampResults:
    """Each timestamp checked; too many, or the same one twice, is refused (VerificationError)."""
    if len(responses) > MAX_TIMESTAMPS:
        raise VerificationError(f"the bundle holds {len(responses)} RFC 3161 timestamps (at most {MAX_TIMESTAMPS})",
                                where=where)  # fmt: skip
    if len(set(responses)) != len(responses):
        raise VerificationError("the bundle holds the same RFC 3161 timestamp twice", where=where)
    times: list[datetime] = []
    problems: list[str] = []
    for response in responses:
        try:
            times.append(verify_timestamp(response, message, authorities, where))
        except VerificationError as error:
            problems.append(error.message)
    return TimestampResults(tuple(times), tuple(problems))


def rfc3161_annotation(response: bytes) -> str:
    """cosign's ``dev.sigstore.cosign/rfc3161timestamp`` layer annotation for a ``TimeStampResp`` (DER):
    ``{"SignedRFC3161Timestamp": "<base64>"}``, compact, as Go's ``json.Marshal`` writes it."""
    return json.dumps({"SignedRFC3161Timestamp": base64.b64encode(response).decode("ascii")}, separators=(",", ":"))


def parse_rfc3161_annotation(value: str, where: str) -> bytes:
    """cosign's legacy ``dev.sigstore.cosign/rfc3161timestamp`` layer annotation, ``{"SignedRFC3161Timestamp":
    "<base64 DER TimeStampResp>"}`` (cosign ``pkg/cosign/bundle.RFC3161Timestamp``): the DER, or
    InvalidInputError. Its timestamp is over the raw signature bytes, as a bundle's are."""
    try:
        document: object = jsonbounded.loads(value, source=where, what="the RFC 3161 timestamp annotation")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInputError("the RFC 3161 timestamp annotation is not JSON", where=where) from None
    signed = document.get("SignedRFC3161Timestamp") if isinstance(document, dict) else None
    if not isinstance(signed, str) or not signed:
        raise InvalidInputError("the RFC 3161 timestamp annotation has no SignedRFC3161Timestamp", where=where)
    try:
        return base64.b64decode(signed, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError("the RFC 3161 timestamp annotation is not valid base64", where=where) from None
