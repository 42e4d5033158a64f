"""One signature checked the way ``cosign verify`` checks it (pure, offline).

The same check serves an image signature layer (payload = the simple-signing JSON) and a blob
(payload = the file's bytes): the signature under the key, or under a Fulcio certificate that chains
to a trusted root and names the expected identity and issuer; and, unless the caller accepts the
risk, a Rekor bundle whose SignedEntryTimestamp verifies with a trusted Rekor key and whose entry
is this signature. A keyless certificate is checked at the time Rekor integrated the entry, not now:
Fulcio certificates live ten minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pipeline.cosign.keys import PublicKey, public_key_to_pem, verify_signature
from pipeline.errors import VerificationError

if TYPE_CHECKING:  # X.509, the log's bundles, SCTs and RFC 3161 load with the first signature checked (start-up)
    from cryptography import x509

    from pipeline.cosign.certificate import IdentityPolicy
    from pipeline.cosign.rekor import RekorBundle
    from pipeline.cosign.sct import CtLogKey
    from pipeline.cosign.timestamp import TimestampAuthority


@dataclass(frozen=True)
class KeylessTrust:
    """What a keyless signature must chain to and name, and the CT logs its certificate's SCT may come
    from (``ignore_sct``: the SCT is not checked, cosign's --insecure-ignore-sct)."""

    identity: IdentityPolicy
    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    ct_log_keys: tuple[CtLogKey, ...] = ()
    ignore_sct: bool = False


def verify_keyless_certificate(
    leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], trust: KeylessTrust, at: datetime, where: str
) -> list[str]:
    """The certificate chains to a trusted root, names the expected identity and issuer, and (unless
    ``trust.ignore_sct``) carries an SCT from a trusted CT log; the checks made, for the report."""
    from pipeline.cosign.certificate import verify_certificate
    from pipeline.cosign.sct import verify_embedded_sct

    chain = verify_certificate(
        leaf,
        intermediates=[*trust.intermediates, *intermediates],
        roots=trust.roots,
        at=at,
        policy=trust.identity,
        where=where,
    )
    checks = ["the certificate chains to a trusted root and names the expected identity and issuer"]
    if trust.ignore_sct:
        checks.append("the certificate's SCT was NOT checked (--insecure-ignore-sct)")
    else:
        logged = verify_embedded_sct(leaf, chain[1], trust.ct_log_keys, where)
        checks.append(f"the certificate's SCT was verified with a trusted CT log key (log {logged})")
    return checks


@dataclass(frozen=True)
class VerificationPolicy:
    """Either a public key or keyless trust; the Rekor keys; whether the tlog may be skipped; the RFC 3161
    timestamp authorities a Sigstore bundle's timestamps may come from."""

    public_key: PublicKey | None
    keyless: KeylessTrust | None
    rekor_keys: tuple[PublicKey, ...]
    ignore_tlog: bool = False
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    timestamp_authorities: Sequence[TimestampAuthority] = ()  # maybe read on first use (trust.py)
    # The timestamp authorities were given (--trusted-root), not the shipped default: a legacy layer's RFC 3161
    # timestamp annotation that does not verify then fails the signature, as cosign checks legacy timestamps
    # only when given their trust (--timestamp-certificate-chain, --use-signed-timestamps) and then fails hard.
    strict_timestamps: bool = False

    def __post_init__(self) -> None:
        if (self.public_key is None) == (self.keyless is None):
            raise ValueError("a verification policy needs exactly one of a public key or keyless trust")


@dataclass(frozen=True)
class VerifiedSignature:
    """What a signature was found to be: who signed it and where the log recorded it."""

    signer: str
    issuer: str | None
    integrated_time: int | None
    log_index: int | None
    checks: tuple[str, ...]


def annotation_timestamp_times(
    response: bytes, messages: Sequence[bytes], policy: VerificationPolicy, where: str, *, verified: str = ""
) -> tuple[list[datetime], str]:
    """The times a legacy layer's ``dev.sigstore.cosign/rfc3161timestamp`` annotation proves over the first of
    ``messages`` it verifies over, and what the check found (``verified``: said after "annotation").

    With no timestamp authority trusted it is not checked (reported). One that verifies over none of them is
    no time (reported), or, with the authorities given (``strict_timestamps``), fails the signature, as
    cosign's verifyInternal fails it when given the TSA's trust."""
    from pipeline.cosign.timestamp import verify_timestamps  # with the first timestamp (start-up time)

    if not policy.timestamp_authorities:
        return [], "the RFC 3161 timestamp annotation was NOT verified: no timestamp authority is trusted"
    problem = ""
    for message in messages:
        results = verify_timestamps([response], message, policy.timestamp_authorities, where)
        if results.times:
            return list(results.times), (f"the RFC 3161 timestamp annotation{verified} verified with a trusted"
                                         " timestamp authority")  # fmt: skip
        problem = problem or results.problems[0]  # the first message's: what the layer is stamped over
    if policy.strict_timestamps:
        raise VerificationError(f"the RFC 3161 timestamp annotation does not verify: {problem}", where=where)
    return [], f"the RFC 3161 timestamp annotation did not verify and was not used: {problem}"


def verify_signed_payload(
    payload: bytes,
    signature: bytes,
    *,
    certificate_pem: bytes | None,
    chain_pem: bytes | None,
    rekor_bundle: RekorBundle | None,
    policy: VerificationPolicy,
    where: str,
    rfc3161_timestamp: bytes | None = None,
) -> VerifiedSignature:
    """Raise VerificationError with the reason, or say what verified. ``rfc3161_timestamp``: cosign's legacy
    timestamp annotation (a ``TimeStampResp`` over the signature); one that verifies with a trusted TSA is a
    time the keyless certificate must be valid at, beside the log's; one that does not is reported."""
    from pipeline.cosign.certificate import certificate_identity, load_certificates
    from pipeline.cosign.rekor import verify_rekor_bundle

    checks: list[str] = []
    issuer: str | None = None
    leaf: x509.Certificate | None = None
    if policy.public_key is not None:
        verify_signature(policy.public_key, payload, signature, where=where)
        signer_pem = public_key_to_pem(policy.public_key)
        signer = "public key"
        checks.append("the signature was verified against the specified public key")
    else:
        if not certificate_pem:
            raise VerificationError("the signature carries no certificate for keyless verification", where=where)
        leaf = load_certificates(certificate_pem, where)[0]
        public_key = leaf.public_key()
        if not isinstance(public_key, PublicKey):
            raise VerificationError("the certificate's key type is not supported", where=where)
        verify_signature(public_key, payload, signature, where=where)
        signer_pem = certificate_pem
        sans, issuer = certificate_identity(leaf)
        signer = ", ".join(sans) or "(no identity)"
        checks.append("the signature was verified against the certificate's public key")

    integrated_time: int | None = None
    log_index: int | None = None
    if policy.ignore_tlog:
        checks.append("the transparency log was NOT checked (--insecure-ignore-tlog)")
    else:
        if rekor_bundle is None:
            raise VerificationError(
                "no transparency log entry (no Rekor bundle) for the signature",
                where=where,
                hint="sign with a Rekor upload, or accept the risk with --insecure-ignore-tlog",
            )
        verify_rekor_bundle(
            rekor_bundle,
            trusted_keys=policy.rekor_keys,
            payload=payload,
            signature=signature,
            signer_pem=signer_pem,
            where=where,
        )
        integrated_time, log_index = rekor_bundle.integrated_time, rekor_bundle.log_index
        checks.append("the Rekor bundle's signed entry timestamp was verified offline with a trusted Rekor key")

    times: list[datetime] = [] if integrated_time is None else [datetime.fromtimestamp(integrated_time, UTC)]
    if rfc3161_timestamp is not None:
        stamped, check = annotation_timestamp_times(rfc3161_timestamp, (signature,), policy, where,
                                                    verified=" over the signature")  # fmt: skip
        times += stamped
        checks.append(check)
    if policy.keyless is not None and leaf is not None:
        chain = load_certificates(chain_pem, where) if chain_pem else []
        for at in times or [policy.now]:
            certificate_checks = verify_keyless_certificate(leaf, chain, policy.keyless, at, where)
        checks += certificate_checks
    return VerifiedSignature(signer, issuer, integrated_time, log_index, tuple(checks))
