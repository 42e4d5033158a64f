"""Offline checks of a keyless (Fulcio) signing certificate (pure: no network, no I/O).

A keyless signature is trusted when its certificate

1. chains to a trusted Fulcio root (each link signed by the next, the issuers being CAs),
2. was valid at the time the transparency log integrated the signature — Fulcio certificates live
   about ten minutes, so "now" would reject every old signature and the log's time is the evidence,
3. is for code signing (extended key usage), and
4. names the expected identity (a SAN) and OIDC issuer (a Fulcio extension).

Identity matching follows ``cosign verify``: ``--certificate-identity`` must equal one SAN;
``--certificate-identity-regexp`` must *find* a match in one SAN (Go's ``regexp.MatchString`` is an
unanchored search, so ``example.com`` also matches ``evil-example.com.attacker``; anchor with ``^…$``
to be strict). The issuer options behave the same way on the OIDC issuer. Python's ``re`` stands in
for Go's RE2: the same for the usual patterns; RE2 lacks back-references and look-around.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from pipeline.errors import InvalidInputError, UsageError, VerificationError

# Fulcio's certificate extensions (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md).
FULCIO_ISSUER_V1_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # raw string bytes, deprecated
FULCIO_ISSUER_V2_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # DER UTF8String
FULCIO_USERNAME_SAN_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")  # otherName SAN, UTF8String
_ANY_EXTENDED_KEY_USAGE: Final = x509.ObjectIdentifier("2.5.29.37.0")
MAX_CHAIN_LENGTH: Final = 10  # leaf included; Fulcio chains have 3
_DER_UTF8_STRING_TAG: Final = 0x0C


def load_certificates(pem: bytes, where: str) -> list[x509.Certificate]:
    """Every CERTIFICATE block of ``pem``, in order (a leaf, or a chain as cosign stores it)."""
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise InvalidInputError("not a PEM certificate or certificate chain", where=where) from None


@dataclass(frozen=True)
class IdentityPolicy:
    """Whom a keyless signature must come from, as ``cosign verify``'s four certificate options.

    As cosign does for keyless verification, an identity and an issuer constraint are both required;
    unlike cosign, which silently prefers the regexp when both forms are given, giving both is refused.
    """

    identity: str | None = None
    identity_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None

    def __post_init__(self) -> None:
        for exact, regexp, option in (
            (self.identity, self.identity_regexp, "--certificate-identity"),
            (self.issuer, self.issuer_regexp, "--certificate-oidc-issuer"),
        ):
            if exact is None and regexp is None:
                raise UsageError(f"keyless verification needs {option} or {option}-regexp")
            if exact is not None and regexp is not None:
                raise UsageError(f"give {option} or {option}-regexp, not both")
            if regexp is not None:
                try:
                    re.compile(regexp)
                except re.error as exc:
                    raise UsageError(f"{option}-regexp {regexp!r} is not a valid regular expression: {exc}") from None


def _format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe(certificate: x509.Certificate) -> str:
    subject = certificate.subject.rfc4514_string()
    return f"certificate {subject!r}" if subject else f"certificate with serial {certificate.serial_number:x}"


def _der_utf8_string(der: bytes) -> str | None:
    """The text of a DER UTF8String (short or long length form), or None if ``der`` is not one."""
    if len(der) < 2 or der[0] != _DER_UTF8_STRING_TAG:
        return None
    length, start = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(der) < 2 + count:
            return None
        length, start = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
    if start + length != len(der):
        return None
    try:
        return der[start:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _other_name_text(value: bytes) -> str | None:
    # An otherName value is [0] EXPLICIT; accept it with or without that wrapper.
    if value[:1] == b"\xa0" and len(value) > 2:
        inner_start = 2 + (value[1] & 0x7F if value[1] & 0x80 else 0)
        return _der_utf8_string(value[inner_start:])
    return _der_utf8_string(value)


def subject_alternative_names(certificate: x509.Certificate) -> list[str]:
    """The SANs cosign matches identities against, in its order: DNS, email, IP, URI, Fulcio username."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = []
    names += san.get_values_for_type(x509.DNSName)
    names += san.get_values_for_type(x509.RFC822Name)
    names += [str(address) for address in san.get_values_for_type(x509.IPAddress)]
    names += san.get_values_for_type(x509.UniformResourceIdentifier)
    for other_name in san.get_values_for_type(x509.OtherName):
        if other_name.type_id == FULCIO_USERNAME_SAN_OID:
            text = _other_name_text(other_name.value)
            if text is not None:
                names.append(text)
    return names


def oidc_issuer(certificate: x509.Certificate) -> str | None:
    """The OIDC issuer Fulcio recorded: extension 1.3.6.1.4.1.57264.1.8 (DER UTF8String), else the
    older 1.3.6.1.4.1.57264.1.1 (the raw string as the extension value)."""
    extensions = certificate.extensions
    try:
        v2 = extensions.get_extension_for_oid(FULCIO_ISSUER_V2_OID).value
    except x509.ExtensionNotFound:
        pass
    else:
        if isinstance(v2, x509.UnrecognizedExtension):
            text = _der_utf8_string(v2.value)
            if text is not None:
                return text
    try:
        v1 = extensions.get_extension_for_oid(FULCIO_ISSUER_V1_OID).value
    except x509.ExtensionNotFound:
        return None
    if isinstance(v1, x509.UnrecognizedExtension):
        try:
            return v1.value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def certificate_identity(certificate: x509.Certificate) -> tuple[list[str], str | None]:
    """(SANs, OIDC issuer) of a signing certificate, for reports."""
    return subject_alternative_names(certificate), oidc_issuer(certificate)


# --- the chain --------------------------------------------------------------------------------


def _validity_problem(certificate: x509.Certificate, at: datetime, what: str) -> str | None:
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if not_before <= at <= not_after:
        return None
    return (
        f"{what} was not valid at {_format_time(at)}"
        f" (valid from {_format_time(not_before)} to {_format_time(not_after)})"
    )


def _extended_key_usages(certificate: x509.Certificate) -> list[x509.ObjectIdentifier] | None:
    try:
        return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None


def _issuer_problem(issuer: x509.Certificate, path: Sequence[x509.Certificate], at: datetime) -> str | None:
    """Why ``issuer`` may not sign for the certificates in ``path`` (leaf first), or None."""
    what = _describe(issuer)
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return f"{what} is not a CA (no basicConstraints)"
    if not constraints.ca:
        return f"{what} is not a CA (basicConstraints ca=false)"
    intermediates_below = len(path) - 1
    if constraints.path_length is not None and intermediates_below > constraints.path_length:
        return f"{what} allows {constraints.path_length} intermediates below it, the chain has {intermediates_below}"
    usages = _extended_key_usages(issuer)
    # An issuer's EKU, when present, limits what it may certify (as Go's x509.Verify enforces).
    if usages is not None and not {ExtendedKeyUsageOID.CODE_SIGNING, _ANY_EXTENDED_KEY_USAGE} & set(usages):
        return f"{what} may not issue code-signing certificates (extended key usage)"
    return _validity_problem(issuer, at, what)


def _signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def build_chain(
    leaf: x509.Certificate,
    *,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at: datetime,
    where: str,
) -> list[x509.Certificate]:
    """A verified chain leaf → … → trusted root, each link valid at ``at``; VerificationError if none.

    Depth-first over every candidate with the right name, because distinct Fulcio roots share the
    subject ``O=sigstore.dev, CN=sigstore`` and only the signature tells them apart.
    """
    problems: list[str] = []

    def extend(path: list[x509.Certificate]) -> list[x509.Certificate] | None:
        child = path[-1]
        if len(path) >= MAX_CHAIN_LENGTH:
            problems.append(f"the chain is longer than {MAX_CHAIN_LENGTH} certificates")
            return None
        named = [(c, True) for c in roots if c.subject == child.issuer]
        named += [(c, False) for c in intermediates if c.subject == child.issuer and c not in path]
        if not named:
            problems.append(
                f"no trusted root or intermediate is named {child.issuer.rfc4514_string()!r},"
                f" the issuer of {_describe(child)}"
            )
        for candidate, trusted in named:
            if not _signed_by(child, candidate):
                problems.append(f"{_describe(child)} is not signed by {_describe(candidate)}")
                continue
            problem = _issuer_problem(candidate, path, at)
            if problem is not None:
                problems.append(problem)
                continue
            if trusted:
                return [*path, candidate]
            found = extend([*path, candidate])
            if found is not None:
                return found
        return None

    chain = extend([leaf])
    if chain is None:
        reason = problems[-1] if problems else "no candidate issuer"
        raise VerificationError(f"the certificate does not chain to a trusted root: {reason}", where=where)
    return chain


# --- the whole check --------------------------------------------------------------------------


def _identity_matches(policy: IdentityPolicy, sans: Sequence[str]) -> bool:
    if policy.identity_regexp is not None:
        pattern = re.compile(policy.identity_regexp)
        return any(pattern.search(name) for name in sans)
    return policy.identity in sans


def _issuer_matches(policy: IdentityPolicy, issuer: str | None) -> bool:
    if issuer is None:
        return False
    if policy.issuer_regexp is not None:
        return re.search(policy.issuer_regexp, issuer) is not None
    return policy.issuer == issuer


def verify_certificate(
    leaf: x509.Certificate,
    *,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at: datetime,
    policy: IdentityPolicy,
    where: str,
) -> list[x509.Certificate]:
    """Raise VerificationError unless ``leaf`` is a trusted code-signing certificate for ``policy``; else
    return its chain, leaf first, up to the trusted root.

    ``at`` (timezone-aware) is the moment the signature is proven to exist: the Rekor entry's
    integratedTime, not now. ``intermediates`` may hold untrusted extras (cosign's chain annotation
    includes the root); only ``roots`` anchor trust.
    """
    if at.tzinfo is None:
        raise ValueError("verify_certificate needs a timezone-aware time")
    try:
        problem = _validity_problem(leaf, at, "the signing certificate")
        if problem is not None:
            raise VerificationError(problem, where=where)
        chain = build_chain(leaf, intermediates=intermediates, roots=roots, at=at, where=where)
        usages = _extended_key_usages(leaf)
        if usages is None or ExtendedKeyUsageOID.CODE_SIGNING not in usages:
            raise VerificationError("the signing certificate is not for code signing (extended key usage)", where=where)
        sans, issuer = certificate_identity(leaf)
    except ValueError as exc:  # cryptography's complaint about a malformed extension
        raise VerificationError(f"the signing certificate is malformed: {exc}", where=where) from None
    if not _identity_matches(policy, sans):
        wanted = f"matching {policy.identity_regexp!r}" if policy.identity_regexp is not None else repr(policy.identity)
        raise VerificationError(
            f"the certificate identity is not {wanted}: it names {', '.join(sans) or 'no identity'}", where=where
        )
    if not _issuer_matches(policy, issuer):
        wanted = f"matching {policy.issuer_regexp!r}" if policy.issuer_regexp is not None else repr(policy.issuer)
        raise VerificationError(
            f"the certificate's OIDC issuer is not {wanted}: it is {issuer or 'absent'}", where=where
        )
    return chain
