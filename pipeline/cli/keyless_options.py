"""``--keyless`` and its options, shared by ``sign`` and ``release``: the identity token, Fulcio, its roots.

The identity token comes from ``--identity-token FILE|env://NAME``, else ``SIGSTORE_ID_TOKEN``, else
GitHub Actions' token service (``ACTIONS_ID_TOKEN_REQUEST_URL`` + ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``,
audience ``sigstore``): :func:`pipeline.sigstore.oidc.obtain_identity_token` with ``os.environ``, here at
the edge. The token itself is never printed, never on argv.

Which Fulcio roots are trusted (to check Fulcio's answer, and to recognise this run's earlier keyless
signatures on a re-run): ``--fulcio-ca-roots FILE`` (PEM; self-signed certificates are roots, the
others intermediates) when given; for the public-good Fulcio the shipped trusted root; for a Fulcio on
this machine (rehearsals, tests) its ``/api/v2/trustBundle``; another Fulcio needs ``--fulcio-ca-roots``
(it is never asked to vouch for itself over the network).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipeline.cli.common import read_input_file
from pipeline.cli.option_groups import option_group
from pipeline.errors import UsageError

if TYPE_CHECKING:  # the keyless stack (Fulcio, OIDC, x509) loads when a keyless run needs it (start-up time)
    from cryptography import x509

    from pipeline.cosign.sct import CtLogKey
    from pipeline.signatures.signers import KeylessSigner
    from pipeline.sigstore.fulcio_client import FulcioClient
    from pipeline.sigstore.oidc import IdentityToken
    from pipeline.sigstore.tlog import TransparencyLog

KEYLESS_HELP = (
    "Sign keyless: an ephemeral key, a Fulcio certificate for the OIDC identity, the signature in the"
    " transparency log with the certificate. With --key, sign, attest and release write both signatures;"
    " sign-blob and attest-blob take one of the two."
)
ID_SOURCE_HELP = (
    "Keyless: the OIDC identity token's source, a FILE or env://NAME (never the token itself). Default:"
    " SIGSTORE_ID_TOKEN, else GitHub Actions' token service (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN, audience sigstore)."
)
FULCIO_URL_HELP = (
    "Keyless: the Fulcio (certificate authority) base URL (default: the signing config's, https://fulcio.sigstore.dev)."
)
FULCIO_CA_ROOTS_HELP = (
    "Keyless: PEM file of the Fulcio CA certificates to trust (self-signed ones are roots, the others"
    " intermediates). Default: the public-good roots for the public-good Fulcio; required for another"
    " Fulcio unless it runs on this machine."
)

KEYLESS_OPTION = typer.Option(False, "--keyless", envvar="RELEASE_VECTOR_KEYLESS", help=KEYLESS_HELP)
IDENTITY_TOKEN_OPTION = typer.Option(
    None, "--identity-token", envvar="RELEASE_VECTOR_IDENTITY_TOKEN", help=ID_SOURCE_HELP
)
FULCIO_URL_OPTION = typer.Option(None, "--fulcio-url", envvar="FULCIO_URL", help=FULCIO_URL_HELP)
FULCIO_CA_ROOTS_OPTION = typer.Option(
    None, "--fulcio-ca-roots", envvar="RELEASE_VECTOR_FULCIO_CA_ROOTS", help=FULCIO_CA_ROOTS_HELP
)
SIGN_CT_LOG_KEY_HELP = (
    "Keyless: PEM of the Certificate Transparency log key(s) Fulcio's certificate must carry an SCT from"
    " (checked before signing, as cosign). Default: the public-good CT logs for the public-good Fulcio; for"
    " another Fulcio without it, the SCT is not checked (a note says so)."
)
SIGN_CT_LOG_KEY_OPTION = typer.Option(
    None, "--ct-log-public-key", envvar="SIGSTORE_CT_LOG_PUBLIC_KEY_FILE", help=SIGN_CT_LOG_KEY_HELP
)


@dataclass(frozen=True)
class KeylessOptions:
    """``--keyless`` and what it signs with: the identity token's source, Fulcio, its roots, the CT log keys."""

    keyless: bool
    identity_token: str | None
    fulcio_url: str | None  # None: the signing config's (pipeline/cli/signing_config_options.py)
    fulcio_ca_roots: Path | None
    ct_log_public_key: Path | None


SIGN_OPTIONS = option_group(
    KeylessOptions,
    "Keyless",
    keyless=(bool, KEYLESS_OPTION),
    identity_token=(str | None, IDENTITY_TOKEN_OPTION),
    fulcio_url=(str | None, FULCIO_URL_OPTION),
    fulcio_ca_roots=(Path | None, FULCIO_CA_ROOTS_OPTION),
    ct_log_public_key=(Path | None, SIGN_CT_LOG_KEY_OPTION),
)
"""The keyless signing options of ``sign`` and ``release`` (``--key`` is each command's own: its help differs)."""


def ct_log_keys_for(fulcio_url: str, ct_log_public_key: Path | None) -> list[CtLogKey] | None:
    """The CT log keys Fulcio's certificates are checked against (None: not checked)."""
    from pipeline.cosign.trust import default_ct_log_keys, load_ct_log_public_keys
    from pipeline.sigstore.fulcio_client import DEFAULT_FULCIO_URL, scrub_url

    if ct_log_public_key is not None:
        pem = read_input_file(ct_log_public_key, "CT log public key")
        return load_ct_log_public_keys(pem, str(ct_log_public_key))
    if fulcio_url.rstrip("/") == DEFAULT_FULCIO_URL:
        return default_ct_log_keys()
    print(
        f"note: the SCT of {scrub_url(fulcio_url)}'s certificates is not checked (pass --ct-log-public-key)",
        file=sys.stderr,
    )
    return None


def fulcio_trust(
    fulcio_url: str, fulcio_ca_roots: Path | None, client: FulcioClient
) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """(roots, intermediates) trusted for ``fulcio_url`` (see the module doc)."""
    from pipeline.cosign.certificate import load_certificates
    from pipeline.cosign.trust import default_trusted_root, fulcio_certificates_from_trusted_root, is_self_signed
    from pipeline.http import is_loopback_host
    from pipeline.sigstore.fulcio_client import DEFAULT_FULCIO_URL, check_fulcio_url, scrub_url

    if fulcio_ca_roots is not None:
        certificates = load_certificates(read_input_file(fulcio_ca_roots, "Fulcio CA roots"), str(fulcio_ca_roots))
        roots = [c for c in certificates if is_self_signed(c)]
        if not roots:
            raise UsageError("the Fulcio CA file holds no self-signed (root) certificate", where=str(fulcio_ca_roots))
        return roots, [c for c in certificates if not is_self_signed(c)]
    if fulcio_url.rstrip("/") == DEFAULT_FULCIO_URL:
        return fulcio_certificates_from_trusted_root(default_trusted_root(), "the shipped Sigstore trusted root")
    host = check_fulcio_url(fulcio_url).host
    if is_loopback_host(host):
        chains = client.trust_bundle()
        roots = list(dict.fromkeys(chain[-1] for chain in chains if chain))
        intermediates = list(dict.fromkeys(c for chain in chains for c in chain[:-1]))
        print(f"note: trusting the CA served by the Fulcio on this machine ({scrub_url(fulcio_url)})", file=sys.stderr)
        return roots, intermediates
    raise UsageError(
        "a Fulcio other than the public-good one needs its CA certificates",
        where=scrub_url(fulcio_url),
        hint="pass --fulcio-ca-roots FILE (env RELEASE_VECTOR_FULCIO_CA_ROOTS)",
    )


def check_keyless_options(key: str | None, options: KeylessOptions, *, tlog_upload: bool) -> None:
    """Usage errors before anything is read or written."""
    keyless, identity_token, fulcio_ca_roots = options.keyless, options.identity_token, options.fulcio_ca_roots
    if key is None and not keyless:
        raise UsageError("give --key, --keyless, or both")
    if not keyless and (identity_token is not None or fulcio_ca_roots is not None):
        raise UsageError("--identity-token and --fulcio-ca-roots are for keyless signing: add --keyless")
    if keyless and not tlog_upload:
        raise UsageError(
            "--keyless cannot be combined with --no-tlog-upload",
            hint="a keyless certificate lives ten minutes: keyless signing here always records the signature in the"
            " transparency log, whose entry proves when it was made",
        )


def obtain_token(identity_token: str | None) -> IdentityToken:
    from pipeline.sigstore.oidc import obtain_identity_token

    return obtain_identity_token(identity_token, os.environ)


@contextmanager
def keyless_signer(options: KeylessOptions, tlog: TransparencyLog | None) -> Iterator[KeylessSigner | None]:
    """The run's keyless signing (None without ``--keyless``); the token is obtained here, once."""
    from pipeline.signatures.signers import KeylessSigner
    from pipeline.sigstore.fulcio_client import DEFAULT_FULCIO_URL, FulcioClient

    identity_token, fulcio_ca_roots = options.identity_token, options.fulcio_ca_roots
    fulcio_url = options.fulcio_url or DEFAULT_FULCIO_URL
    if not options.keyless:
        yield None
        return
    if tlog is None:  # check_keyless_options refuses it first; kept for callers that skip it
        raise UsageError("--keyless cannot be combined with --no-tlog-upload")
    token = obtain_token(identity_token)
    with FulcioClient(fulcio_url) as client:
        roots, intermediates = fulcio_trust(fulcio_url, fulcio_ca_roots, client)
        signing = KeylessSigner(
            token,
            client,
            roots=roots,
            intermediates=intermediates,
            refresh_token=lambda: obtain_token(identity_token),
            ct_log_keys=ct_log_keys_for(fulcio_url, options.ct_log_public_key),
        )
        print(
            f"keyless signing as {signing.identity.identity} (OIDC issuer {signing.identity.issuer}; token from"
            f" {token.source}; Fulcio {client.url})",
            file=sys.stderr,
        )
        yield signing
