"""``sign-blob`` and ``verify-blob``: a file's signature in cosign's ``--bundle`` format."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipeline import jsonbounded
from pipeline.cli.app import app
from pipeline.cli.common import load_signing_key, print_json, read_input_file, write_new_files
from pipeline.cli.keyless_options import SIGN_OPTIONS, KeylessOptions, check_keyless_options, keyless_signer
from pipeline.cli.keys import KEY_HELP
from pipeline.cli.option_groups import grouped
from pipeline.cli.registry_options import REQUEST_TIMEOUT_OPTION
from pipeline.cli.trust_options import (
    TLOG_OPTIONS,
    VERIFY_OPTIONS,
    TlogOptions,
    transparency_log,
    verification_policy,
)
from pipeline.cosign.policy import TrustOptions
from pipeline.errors import InvalidInputError, UsageError
from pipeline.localfiles import BLOB_LIMIT

if TYPE_CHECKING:  # what signing and verifying run is imported when they run (start-up time of --help)
    from pipeline.cosign.keys import PrivateKeyHandle
    from pipeline.cosign.verify import VerificationPolicy, VerifiedSignature
    from pipeline.signatures.blob import SignedBlob
    from pipeline.signatures.signers import Signer

BLOB_BUNDLE_FORMAT_HELP = (
    "The --bundle file's format: v3 (a Sigstore bundle v0.3, what cosign v3 writes by default) or legacy"
    " (cosign's {base64Signature, cert, rekorBundle} file, what cosign v1/v2 wrote)."
)


@app.command("sign-blob")
@grouped
def sign_blob_command(
    file: Path = typer.Argument(..., help="The file to sign.", show_default=False),
    key: str | None = typer.Option(None, "--key", envvar="RELEASE_VECTOR_KEY", help=KEY_HELP),
    bundle: Path | None = typer.Option(None, "--bundle", help="Write the signature's bundle here."),
    bundle_format: str = typer.Option(
        "v3", "--bundle-format", envvar="RELEASE_VECTOR_BLOB_BUNDLE_FORMAT", help=BLOB_BUNDLE_FORMAT_HELP,
        metavar="v3|legacy",  # one file holds one format: not the images' both
    ),
    output_signature: Path | None = typer.Option(
        None, "--output-signature", help="Write the base64 signature here instead of stdout."
    ),
    tlog_options: TlogOptions = TLOG_OPTIONS,
    keyless_options: KeylessOptions = SIGN_OPTIONS,
    json_output: bool = typer.Option(False, "--json", help="Print a JSON result."),
    request_timeout: float | None = REQUEST_TIMEOUT_OPTION,
) -> None:
    """Sign a file with a cosign key or keyless; prints the base64 signature (as cosign sign-blob does).

    The signature is recorded in the transparency log (Rekor) and --bundle writes a Sigstore bundle
    v0.3 with the log's entry (or cosign's legacy file with --bundle-format legacy), so
    `cosign verify-blob --bundle BUNDLE FILE` accepts it; with --no-tlog-upload, verifiers need
    --insecure-ignore-tlog.
    """
    from pipeline.cli.signing_config_options import timestamp_client, with_signing_config
    from pipeline.signatures.blob import parse_blob_bundle_format, sign_blob
    from pipeline.signatures.signers import KeySigner
    from pipeline.sigstore.rekor_v2 import entry_log_index

    chosen = parse_blob_bundle_format(bundle_format)
    check_keyless_options(key, keyless_options, tlog_upload=tlog_options.tlog_upload)
    tlog_options, keyless_options = with_signing_config(tlog_options, keyless_options)
    if key is not None and keyless_options.keyless:
        raise UsageError("sign-blob signs with --key or --keyless, not both")
    blob = read_input_file(file, "file to sign", limit=BLOB_LIMIT)
    signing_key = load_signing_key(key) if key is not None else None
    with (
        transparency_log(tlog_options) as tlog,
        timestamp_client(tlog_options) as tsa,
        keyless_signer(keyless_options, tlog) as keyless,
    ):
        signer: Signer = keyless if keyless is not None else KeySigner.of(_required(signing_key))
        signed = sign_blob(blob, signer, tlog, chosen, tsa)
    if signed.entry is not None:
        print(f"tlog entry created with index: {entry_log_index(signed.entry)}", file=sys.stderr)
    _write_blob_outputs(file, signed, bundle, output_signature, json_output)


def _required(signing_key: PrivateKeyHandle | None) -> PrivateKeyHandle:
    if signing_key is None:  # check_keyless_options refuses neither --key nor --keyless first
        raise UsageError("give --key or --keyless")
    return signing_key


def _write_blob_outputs(
    file: Path, signed: SignedBlob, bundle: Path | None, output_signature: Path | None, json_output: bool
) -> None:
    from pipeline.sigstore.rekor_v2 import entry_log_index

    signature_b64 = base64.b64encode(signed.signature.value).decode()
    if bundle is not None:
        write_new_files({bundle: (signed.bundle, 0o644)}, force=True)
    if output_signature is not None:
        write_new_files({output_signature: (signature_b64.encode(), 0o644)}, force=True)
    if json_output:
        print_json(
            {
                "file": str(file),
                "signature": signature_b64,
                "bundle": str(bundle) if bundle else None,
                "output_signature": str(output_signature) if output_signature else None,
                "tlog_log_index": entry_log_index(signed.entry) if signed.entry is not None else None,
            }
        )
    elif output_signature is None:
        print(signature_b64)
    if bundle is not None:
        print(f"Wrote bundle to file {bundle}", file=sys.stderr)


def looks_like_sigstore_bundle(data: bytes) -> bool:
    from pipeline.sigstore.bundle import is_sigstore_bundle

    try:
        document = jsonbounded.loads(data, source="bundle")
    except (UnicodeDecodeError, json.JSONDecodeError, InvalidInputError):
        return False  # the legacy parser then names the problem
    return isinstance(document, dict) and is_sigstore_bundle(document)


def _verify_legacy(
    blob: bytes,
    bundle: Path | None,
    bundle_bytes: bytes | None,
    signature: Path | None,
    certificate: Path | None,
    policy: VerificationPolicy,
) -> VerifiedSignature:
    """cosign's LocalSignedPayload bundle and/or a bare base64 signature file."""
    from pipeline.cosign.blob import BlobBundle, parse_blob_bundle
    from pipeline.cosign.verify import verify_signed_payload

    parsed = parse_blob_bundle(bundle_bytes, str(bundle)) if bundle_bytes is not None else BlobBundle(b"", None, None)
    signature_bytes = parsed.signature
    if signature is not None:
        text = read_input_file(signature, "signature").strip()
        try:
            signature_bytes = base64.b64decode(text, validate=True)
        except ValueError:
            raise InvalidInputError("the signature file is not base64", where=str(signature)) from None
    certificate_pem = read_input_file(certificate, "certificate") if certificate else parsed.certificate_pem
    return verify_signed_payload(
        blob,
        signature_bytes,
        certificate_pem=certificate_pem,
        chain_pem=None,
        rekor_bundle=parsed.rekor_bundle,
        policy=policy,
        where=str(bundle or signature),
    )


@app.command("verify-blob")
@grouped
def verify_blob_command(
    file: Path = typer.Argument(..., help="The file whose signature to check.", show_default=False),
    bundle: Path | None = typer.Option(
        None, "--bundle", help="cosign's sign-blob bundle JSON, or a Sigstore bundle (v0.1-v0.3)."
    ),
    signature: Path | None = typer.Option(
        None, "--signature", help="A base64 signature file (instead of, or to override, the bundle's)."
    ),
    key: Path | None = typer.Option(None, "--key", help="Public key (PKIX PEM) that must have signed."),
    certificate: Path | None = typer.Option(
        None, "--certificate", help="Keyless: the signing certificate PEM (default: the bundle's)."
    ),
    trust: TrustOptions = VERIFY_OPTIONS,
    json_output: bool = typer.Option(False, "--json", help="Print a JSON result."),
) -> None:
    """Verify a file's signature as cosign does: key or keyless, and the Rekor entry."""
    from pipeline.sigstore.bundle import parse_sigstore_bundle
    from pipeline.sigstore.verify import verify_bundle_for_artifact

    if bundle is None and signature is None:
        raise UsageError("give --bundle or --signature")
    policy = verification_policy(key, trust)
    blob = read_input_file(file, "file to verify", limit=BLOB_LIMIT)
    bundle_bytes = read_input_file(bundle, "bundle") if bundle is not None else None
    if bundle_bytes is not None and signature is None and looks_like_sigstore_bundle(bundle_bytes):
        verified = verify_bundle_for_artifact(
            parse_sigstore_bundle(bundle_bytes, str(bundle)), blob, policy, str(bundle)
        )
    else:
        verified = _verify_legacy(blob, bundle, bundle_bytes, signature, certificate, policy)
    if json_output:
        print_json(
            {
                "file": str(file),
                "verified": True,
                "signer": verified.signer,
                "issuer": verified.issuer,
                "integrated_time": verified.integrated_time,
                "log_index": verified.log_index,
                "checks": list(verified.checks),
            }
        )
    else:
        for check in verified.checks:
            print(f"  - {check}", file=sys.stderr)
        print("Verified OK", file=sys.stderr)
