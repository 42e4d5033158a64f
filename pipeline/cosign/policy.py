"""The verification policy the trust options ask for (``verify``, ``verify-blob``, ``pull``, ``verify-release``).

Which Rekor keys are trusted: ``--rekor-public-key`` and/or ``--trusted-root`` when given, otherwise the
public-good key from the shipped trusted root; keyless, the Fulcio roots and CT log keys likewise. No
environment is read and nothing is printed here: files come through the caller's ``read``, warnings go
to its ``warn``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import UsageError

if TYPE_CHECKING:  # TrustOptions is in every verify command's signature: cryptography loads with build_policy
    from cryptography import x509

    from pipeline.cosign.keys import PublicKey
    from pipeline.cosign.sct import CtLogKey
    from pipeline.cosign.timestamp import TimestampAuthority
    from pipeline.cosign.verify import VerificationPolicy

SHIPPED_ROOT = "the shipped Sigstore public-good trusted root"

ReadFile = Callable[[Path, str], bytes]
"""Reads a file the options name: ``read(path, what)`` (``what`` names it in an error)."""


@dataclass(frozen=True)
class TrustOptions:
    """The verification options every verify command shares (``--certificate-*``, ``--ca-*``, Rekor, CT)."""

    certificate_identity: str | None = None
    certificate_identity_regexp: str | None = None
    certificate_oidc_issuer: str | None = None
    certificate_oidc_issuer_regexp: str | None = None
    ca_roots: Path | None = None
    ca_intermediates: Path | None = None
    rekor_public_key: Path | None = None
    trusted_root: Path | None = None
    insecure_ignore_tlog: bool = False
    ct_log_public_key: Path | None = None
    insecure_ignore_sct: bool = False



def build_policy(
    key: Path | None, trust: TrustOptions, *, read: ReadFile, warn: Callable[[str], None]
) -> VerificationPolicy:
    """The verification policy ``key`` (a public key file) or the keyless options of ``trust`` ask for.

    ``read(path, what)`` reads each file named (the caller's bounded, one-line-error reader); ``warn``
    receives the warnings an insecure option earns.
    """
    from pipeline.cosign.keys import load_public_key
    from pipeline.cosign.trust import (
        DeferredTimestampAuthorities,
        ct_log_keys_from_trusted_root,
        default_trusted_root,
        fulcio_certificates_from_trusted_root,
        load_ct_log_public_keys,
        load_rekor_public_keys,
        rekor_keys_from_trusted_root,
        timestamp_authorities_from_trusted_root,
    )
    from pipeline.cosign.verify import KeylessTrust, VerificationPolicy

    certificate_identity = trust.certificate_identity
    certificate_identity_regexp = trust.certificate_identity_regexp
    certificate_oidc_issuer = trust.certificate_oidc_issuer
    certificate_oidc_issuer_regexp = trust.certificate_oidc_issuer_regexp
    ca_roots, ca_intermediates, trusted_root = trust.ca_roots, trust.ca_intermediates, trust.trusted_root
    rekor_public_key, ct_log_public_key = trust.rekor_public_key, trust.ct_log_public_key
    insecure_ignore_tlog, insecure_ignore_sct = trust.insecure_ignore_tlog, trust.insecure_ignore_sct
    keyless_options = (
        certificate_identity,
        certificate_identity_regexp,
        certificate_oidc_issuer,
        certificate_oidc_issuer_regexp,
    )
    if key is not None and any(keyless_options):
        raise UsageError("--key cannot be combined with the --certificate-* options")
    if insecure_ignore_tlog:
        warn("warning: skipping the transparency log check (--insecure-ignore-tlog)")
    root_bytes = read(trusted_root, "trusted root") if trusted_root is not None else None
    rekor_keys: list[PublicKey] = []
    if root_bytes is not None:
        rekor_keys += rekor_keys_from_trusted_root(root_bytes, str(trusted_root))
    if rekor_public_key is not None:
        rekor_pem = read(rekor_public_key, "Rekor public key")
        rekor_keys += load_rekor_public_keys(rekor_pem, str(rekor_public_key))
    if not rekor_keys:
        rekor_keys = rekor_keys_from_trusted_root(default_trusted_root(), SHIPPED_ROOT)
    # The RFC 3161 timestamp authorities a Sigstore bundle's timestamps may come from: a root given is read now
    # (its errors before any network work), the shipped one when a timestamp is first checked (X.509).
    authorities: Sequence[TimestampAuthority] = (
        tuple(timestamp_authorities_from_trusted_root(root_bytes, str(trusted_root)))
        if root_bytes is not None
        else DeferredTimestampAuthorities(default_trusted_root(), SHIPPED_ROOT)
    )
    if key is not None:
        public_key = load_public_key(read(key, "public key"), str(key))
        return VerificationPolicy(public_key, None, tuple(rekor_keys), insecure_ignore_tlog,
                                  timestamp_authorities=authorities,
                                  strict_timestamps=root_bytes is not None)  # fmt: skip
    if not (certificate_identity or certificate_identity_regexp):
        raise UsageError("give --key, or --certificate-identity/--certificate-identity-regexp for keyless verification")
    if not (certificate_oidc_issuer or certificate_oidc_issuer_regexp):
        raise UsageError("keyless verification needs --certificate-oidc-issuer or --certificate-oidc-issuer-regexp")
    from pipeline.cosign.certificate import IdentityPolicy, load_certificates  # X.509: keyless only

    identity = IdentityPolicy(
        certificate_identity, certificate_identity_regexp, certificate_oidc_issuer, certificate_oidc_issuer_regexp
    )
    if ca_roots is not None:
        roots = load_certificates(read(ca_roots, "CA roots"), str(ca_roots))
        intermediates: list[x509.Certificate] = []
    elif root_bytes is not None:
        roots, intermediates = fulcio_certificates_from_trusted_root(root_bytes, str(trusted_root))
    else:
        roots, intermediates = fulcio_certificates_from_trusted_root(default_trusted_root(), SHIPPED_ROOT)
    if ca_intermediates is not None:
        intermediates += load_certificates(read(ca_intermediates, "CA intermediates"), str(ca_intermediates))
    if insecure_ignore_sct:
        warn("warning: skipping the certificate's SCT check (--insecure-ignore-sct)")
    ct_log_keys: list[CtLogKey] = []
    if ct_log_public_key is not None:
        pem = read(ct_log_public_key, "CT log public key")
        ct_log_keys += load_ct_log_public_keys(pem, str(ct_log_public_key))
    elif root_bytes is not None:
        ct_log_keys += ct_log_keys_from_trusted_root(root_bytes, str(trusted_root))
    else:
        ct_log_keys += ct_log_keys_from_trusted_root(default_trusted_root(), SHIPPED_ROOT)
    keyless = KeylessTrust(identity, tuple(roots), tuple(intermediates), tuple(ct_log_keys), insecure_ignore_sct)
    return VerificationPolicy(None, keyless, tuple(rekor_keys), insecure_ignore_tlog, timestamp_authorities=authorities,
                              strict_timestamps=root_bytes is not None)  # fmt: skip
