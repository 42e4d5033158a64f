"""Turning the verification options every verify command shares into a VerificationPolicy."""

from __future__ import annotations

import sys
from pathlib import Path

from cryptography import x509

from pipeline.cli.common import read_input_file
from pipeline.cosign.certificate import IdentityPolicy, load_certificates
from pipeline.cosign.keys import load_public_key
from pipeline.cosign.trust import (
    default_trusted_root,
    fulcio_certificates_from_trusted_root,
    load_rekor_public_keys,
    rekor_keys_from_trusted_root,
)
from pipeline.cosign.verify import KeylessTrust, VerificationPolicy
from pipeline.errors import UsageError

KEY_HELP = "Public key (PKIX PEM) that must have made the signature."
IDENTITY_HELP = "Keyless: the certificate's subject alternative name (email or URI) must equal this."
IDENTITY_RE_HELP = "Keyless: the subject alternative name must match this regular expression (searched, as cosign)."
ISSUER_HELP = "Keyless: the OIDC issuer in the certificate must equal this."
ISSUER_RE_HELP = "Keyless: the OIDC issuer must match this regular expression (searched, as cosign)."
CA_ROOTS_HELP = "Keyless: PEM file of trusted root certificates (default: Sigstore public-good Fulcio roots)."
CA_INTERMEDIATES_HELP = "Keyless: PEM file of intermediate certificates."
REKOR_KEY_HELP = "PEM of the trusted Rekor public key(s) (default: the public-good Rekor key)."
SHIPPED_ROOT = "the shipped Sigstore public-good trusted root"
IGNORE_TLOG_HELP = "Do not require a transparency-log entry (the signature is then not publicly auditable)."


def build_policy(
    *,
    key: Path | None,
    certificate_identity: str | None,
    certificate_identity_regexp: str | None,
    certificate_oidc_issuer: str | None,
    certificate_oidc_issuer_regexp: str | None,
    ca_roots: Path | None,
    ca_intermediates: Path | None,
    rekor_public_key: Path | None,
    insecure_ignore_tlog: bool,
) -> VerificationPolicy:
    keyless_options = (
        certificate_identity,
        certificate_identity_regexp,
        certificate_oidc_issuer,
        certificate_oidc_issuer_regexp,
    )
    if key is not None and any(keyless_options):
        raise UsageError("--key cannot be combined with the --certificate-* options")
    if insecure_ignore_tlog:
        print("warning: skipping the transparency log check (--insecure-ignore-tlog)", file=sys.stderr)
    if rekor_public_key is not None:
        rekor_pem = read_input_file(rekor_public_key, "Rekor public key")
        rekor_keys = load_rekor_public_keys(rekor_pem, str(rekor_public_key))
    else:
        rekor_keys = rekor_keys_from_trusted_root(default_trusted_root(), SHIPPED_ROOT)
    if key is not None:
        public_key = load_public_key(read_input_file(key, "public key"), str(key))
        return VerificationPolicy(public_key, None, tuple(rekor_keys), insecure_ignore_tlog)
    if not (certificate_identity or certificate_identity_regexp):
        raise UsageError("give --key, or --certificate-identity/--certificate-identity-regexp for keyless verification")
    if not (certificate_oidc_issuer or certificate_oidc_issuer_regexp):
        raise UsageError("keyless verification needs --certificate-oidc-issuer or --certificate-oidc-issuer-regexp")
    identity = IdentityPolicy(
        certificate_identity, certificate_identity_regexp, certificate_oidc_issuer, certificate_oidc_issuer_regexp
    )
    if ca_roots is not None:
        roots = load_certificates(read_input_file(ca_roots, "CA roots"), str(ca_roots))
        intermediates: list[x509.Certificate] = []
    else:
        roots, intermediates = fulcio_certificates_from_trusted_root(default_trusted_root(), SHIPPED_ROOT)
    if ca_intermediates is not None:
        intermediates += load_certificates(read_input_file(ca_intermediates, "CA intermediates"), str(ca_intermediates))
    keyless = KeylessTrust(identity, tuple(roots), tuple(intermediates))
    return VerificationPolicy(None, keyless, tuple(rekor_keys), insecure_ignore_tlog)
