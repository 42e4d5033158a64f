"""The trust options the commands share: verification policies, and the transparency log to sign into.

Which Rekor keys are trusted, for verifying and for checking what a log answers when signing:

* ``--rekor-public-key FILE`` (env ``SIGSTORE_REKOR_PUBLIC_KEY``) and/or ``--trusted-root FILE`` (a
  Sigstore ``trusted_root.json``) when given;
* otherwise the public-good key from the shipped trusted root.

Signing into a log other than the public-good one needs that log's key: it is never fetched from a
remote log (trust on first use would let the log vouch for itself). The one exception is a log on
this machine (a loopback URL, as rehearsals and tests run): its ``/api/v1/log/publicKey`` is read.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipeline.cli.common import read_input_file
from pipeline.cli.option_groups import option_group
from pipeline.cosign.policy import TrustOptions
from pipeline.errors import UsageError

if TYPE_CHECKING:  # keys, roots and the Rekor client load when a command uses them (start-up time)
    from pipeline.cosign.keys import PublicKey
    from pipeline.cosign.verify import VerificationPolicy
    from pipeline.sigstore.rekor_client import RekorClient
    from pipeline.sigstore.rekor_v2_client import RekorV2Client

KEY_HELP = "Public key (PKIX PEM) that must have made the signature."
IDENTITY_HELP = "Keyless: the certificate's subject alternative name (email or URI) must equal this."
IDENTITY_RE_HELP = "Keyless: the subject alternative name must match this regular expression (searched, as cosign)."
ISSUER_HELP = "Keyless: the OIDC issuer in the certificate must equal this."
ISSUER_RE_HELP = "Keyless: the OIDC issuer must match this regular expression (searched, as cosign)."
CA_ROOTS_HELP = "Keyless: PEM file of trusted root certificates (default: Sigstore public-good Fulcio roots)."
CA_INTERMEDIATES_HELP = "Keyless: PEM file of intermediate certificates."
REKOR_KEY_HELP = "PEM of the trusted Rekor public key(s) (default: the public-good Rekor key)."
IGNORE_TLOG_HELP = "Do not require a transparency-log entry (the signature is then not publicly auditable)."
IDENTITY_OPTION = typer.Option(None, "--certificate-identity", help=IDENTITY_HELP)
IDENTITY_RE_OPTION = typer.Option(None, "--certificate-identity-regexp", help=IDENTITY_RE_HELP)
ISSUER_OPTION = typer.Option(None, "--certificate-oidc-issuer", help=ISSUER_HELP)
ISSUER_RE_OPTION = typer.Option(None, "--certificate-oidc-issuer-regexp", help=ISSUER_RE_HELP)
CA_ROOTS_OPTION = typer.Option(None, "--ca-roots", help=CA_ROOTS_HELP)
CA_INTERMEDIATES_OPTION = typer.Option(None, "--ca-intermediates", help=CA_INTERMEDIATES_HELP)
REKOR_PUBLIC_KEY_OPTION = typer.Option(
    None, "--rekor-public-key", envvar="SIGSTORE_REKOR_PUBLIC_KEY", help=REKOR_KEY_HELP
)
IGNORE_TLOG_OPTION = typer.Option(False, "--insecure-ignore-tlog", help=IGNORE_TLOG_HELP)
CT_LOG_KEY_HELP = (
    "Keyless: PEM of the trusted Certificate Transparency log key(s) the certificate's SCT must verify with"
    " (default: the trusted root's ctlogs, the public-good ones)."
)
CT_LOG_KEY_OPTION = typer.Option(
    None, "--ct-log-public-key", envvar="SIGSTORE_CT_LOG_PUBLIC_KEY_FILE", help=CT_LOG_KEY_HELP
)
IGNORE_SCT_HELP = (
    "Keyless: do not require the certificate to carry an SCT from a trusted CT log (its issuance is then"
    " not publicly auditable)."
)
IGNORE_SCT_OPTION = typer.Option(False, "--insecure-ignore-sct", help=IGNORE_SCT_HELP)
TRUSTED_ROOT_HELP = (
    "Sigstore trusted_root.json: the Rekor keys and Fulcio CAs to trust (default: the shipped public-good root)."
)
TLOG_UPLOAD_HELP = (
    "Record each signature in the transparency log (Rekor), as cosign does; verifiers then need no"
    " --insecure-ignore-tlog. --no-tlog-upload signs offline."
)
REKOR_URL_HELP = (
    "Rekor (transparency log) base URL (default: the signing config's, https://rekor.sigstore.dev). Another log"
    " than the public-good one needs --rekor-public-key."
)
SIGN_REKOR_KEY_HELP = (
    "PEM of the Rekor log's public key, to check its answers (default: the public-good key; required"
    " for another log unless it runs on this machine)."
)

TLOG_UPLOAD_OPTION = typer.Option(True, "--tlog-upload/--no-tlog-upload", envvar="RELEASE_VECTOR_TLOG_UPLOAD",
                                  help=TLOG_UPLOAD_HELP)  # fmt: skip
REKOR_URL_OPTION = typer.Option(None, "--rekor-url", envvar="REKOR_URL", help=REKOR_URL_HELP)
SIGN_REKOR_KEY_OPTION = typer.Option(
    None, "--rekor-public-key", envvar="SIGSTORE_REKOR_PUBLIC_KEY", help=SIGN_REKOR_KEY_HELP
)
SIGNING_CONFIG_HELP = (
    "Sigstore signing_config.v0.2.json naming the Fulcio, Rekor and timestamp authority to sign with"
    " (default: the shipped public-good one). Conflicts with --rekor-url and --fulcio-url."
)
SIGNING_CONFIG_OPTION = typer.Option(
    None, "--signing-config", envvar="RELEASE_VECTOR_SIGNING_CONFIG", help=SIGNING_CONFIG_HELP
)
TSA_URL_HELP = (
    "RFC 3161 timestamp authority to timestamp each signature with (stored in the Sigstore bundle's"
    " timestampVerificationData), e.g. https://timestamp.sigstore.dev/api/v1/timestamp. Default: the"
    " --signing-config's TSA when a config is given, else none."
)
TSA_URL_OPTION = typer.Option(
    None, "--timestamp-server-url", envvar="RELEASE_VECTOR_TIMESTAMP_SERVER_URL", help=TSA_URL_HELP
)
TSA_CHAIN_HELP = (
    "PEM chain (signing certificate first, root last) the timestamp authority's answers must verify with"
    " (default: the shipped root's TSA for the public-good one; required for another TSA unless it runs on"
    " this machine)."
)
TSA_CHAIN_OPTION = typer.Option(
    None, "--timestamp-certificate-chain", envvar="RELEASE_VECTOR_TIMESTAMP_CERTIFICATE_CHAIN", help=TSA_CHAIN_HELP
)
TRUSTED_ROOT_OPTION = typer.Option(None, "--trusted-root", envvar="RELEASE_VECTOR_TRUSTED_ROOT", help=TRUSTED_ROOT_HELP)

VERIFY_OPTIONS = option_group(
    TrustOptions,
    "Verification",
    certificate_identity=(str | None, IDENTITY_OPTION),
    certificate_identity_regexp=(str | None, IDENTITY_RE_OPTION),
    certificate_oidc_issuer=(str | None, ISSUER_OPTION),
    certificate_oidc_issuer_regexp=(str | None, ISSUER_RE_OPTION),
    ca_roots=(Path | None, CA_ROOTS_OPTION),
    ca_intermediates=(Path | None, CA_INTERMEDIATES_OPTION),
    rekor_public_key=(Path | None, REKOR_PUBLIC_KEY_OPTION),
    trusted_root=(Path | None, TRUSTED_ROOT_OPTION),
    insecure_ignore_tlog=(bool, IGNORE_TLOG_OPTION),
    ct_log_public_key=(Path | None, CT_LOG_KEY_OPTION),
    insecure_ignore_sct=(bool, IGNORE_SCT_OPTION),
)
"""The verification options every verify command shares (one definition: the same names, helps, env vars)."""


@dataclass(frozen=True)
class TlogOptions:
    """Where signatures are recorded: ``--tlog-upload/--no-tlog-upload``, ``--rekor-url``, ``--rekor-public-key``."""

    tlog_upload: bool
    rekor_url: str | None  # None: the signing config's (pipeline/cli/signing_config_options.py)
    rekor_public_key: Path | None
    signing_config: Path | None = None
    timestamp_server_url: str | None = None  # None: the signing config's TSA, if it is given and names one
    timestamp_certificate_chain: Path | None = None


@dataclass(frozen=True)
class SigningTlogOptions(TlogOptions):
    """The options once the signing config has spoken: also which Rekor API the log speaks (1 or 2)."""

    rekor_api_version: int = 1


TLOG_OPTIONS = option_group(
    TlogOptions,
    "Transparency log",
    tlog_upload=(bool, TLOG_UPLOAD_OPTION),
    rekor_url=(str | None, REKOR_URL_OPTION),
    rekor_public_key=(Path | None, SIGN_REKOR_KEY_OPTION),
    signing_config=(Path | None, SIGNING_CONFIG_OPTION),
    timestamp_server_url=(str | None, TSA_URL_OPTION),
    timestamp_certificate_chain=(Path | None, TSA_CHAIN_OPTION),
)
"""The transparency-log options of the signing commands (``sign``, ``sign-blob``, ``release``)."""


def _warn(text: str) -> None:
    print(text, file=sys.stderr)


def verification_policy(key: Path | None, trust: TrustOptions) -> VerificationPolicy:
    """:func:`pipeline.cosign.policy.build_policy` at the edge: files read as every input file, warnings on stderr."""
    from pipeline.cosign.policy import build_policy

    return build_policy(key, trust, read=read_input_file, warn=_warn)


def is_default_log(url: str) -> bool:
    from pipeline.sigstore.rekor_client import DEFAULT_REKOR_URL

    return url.rstrip("/") == DEFAULT_REKOR_URL


def log_keys_for_signing(rekor_url: str, rekor_public_key: Path | None) -> list[PublicKey]:
    """The keys a log's answers must verify with when signing into ``rekor_url`` (see the module doc)."""
    from pipeline.cosign.policy import SHIPPED_ROOT
    from pipeline.cosign.trust import default_trusted_root, load_rekor_public_keys, rekor_keys_from_trusted_root
    from pipeline.http import is_loopback_url
    from pipeline.sigstore.rekor_client import check_log_url, fetch_log_public_keys, scrub_url

    check_log_url(rekor_url)
    if rekor_public_key is not None:
        pem = read_input_file(rekor_public_key, "Rekor public key")
        return load_rekor_public_keys(pem, str(rekor_public_key))
    if is_default_log(rekor_url):
        return rekor_keys_from_trusted_root(default_trusted_root(), SHIPPED_ROOT)
    if is_loopback_url(rekor_url):
        keys = fetch_log_public_keys(rekor_url)
        print(f"note: trusting the key served by the transparency log on this machine ({scrub_url(rekor_url)})",
              file=sys.stderr)  # fmt: skip
        return keys
    raise UsageError(
        "a transparency log other than the public-good one needs its public key",
        where=scrub_url(rekor_url),
        hint="pass --rekor-public-key FILE (env SIGSTORE_REKOR_PUBLIC_KEY), or --no-tlog-upload",
    )


@contextmanager
def transparency_log(options: TlogOptions) -> Iterator[RekorClient | RekorV2Client | None]:
    """The Rekor client signatures are uploaded to, or None with ``--no-tlog-upload``."""
    from pipeline.sigstore.rekor_client import DEFAULT_REKOR_URL, RekorClient, scrub_url

    if not options.tlog_upload:
        yield None
        return
    rekor_url = options.rekor_url or DEFAULT_REKOR_URL
    if isinstance(options, SigningTlogOptions) and options.rekor_api_version == 2:
        from pipeline.sigstore.rekor_v2_client import RekorV2Client

        if options.rekor_public_key is not None:
            keys = log_keys_for_signing(rekor_url, options.rekor_public_key)
        else:  # rekor-tiles serves no key: the shipped trusted root's, for its logs (log2025-1.rekor.sigstore.dev)
            from pipeline.cosign.policy import SHIPPED_ROOT
            from pipeline.cosign.trust import default_trusted_root, rekor_keys_for_url
            from pipeline.sigstore.rekor_client import check_log_url

            check_log_url(rekor_url)
            keys = rekor_keys_for_url(default_trusted_root(), SHIPPED_ROOT, rekor_url)
            if not keys:
                raise UsageError(
                    "signing into a Rekor v2 log needs its public key (the shipped trusted root lists none at"
                    " this URL)",
                    where=scrub_url(rekor_url),
                    hint="pass --rekor-public-key FILE (env SIGSTORE_REKOR_PUBLIC_KEY)",
                )
        with RekorV2Client(rekor_url, keys) as v2:
            yield v2
        return
    keys = log_keys_for_signing(rekor_url, options.rekor_public_key)
    with RekorClient(rekor_url, keys) as client:
        yield client
