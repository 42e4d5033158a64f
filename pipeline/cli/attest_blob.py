"""``attest-blob`` and ``verify-blob-attestation``: a file's in-toto attestation as a Sigstore bundle v0.3,
as ``cosign attest-blob --bundle`` and ``cosign verify-blob-attestation`` do."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipeline import jsonbounded
from pipeline.cli.app import app
from pipeline.cli.attest import TYPE_OPTION, read_predicate
from pipeline.cli.common import load_signing_key, print_json, read_input_file, write_new_files
from pipeline.cli.keyless_options import SIGN_OPTIONS, KeylessOptions, check_keyless_options, keyless_signer
from pipeline.cli.keys import KEY_HELP
from pipeline.cli.option_groups import grouped
from pipeline.cli.signing_config_options import timestamp_client, with_signing_config
from pipeline.cli.trust_options import TLOG_OPTIONS, VERIFY_OPTIONS, TlogOptions, transparency_log, verification_policy
from pipeline.cosign.policy import TrustOptions
from pipeline.errors import UsageError
from pipeline.localfiles import BLOB_LIMIT

if TYPE_CHECKING:  # the signing core (cryptography, the log clients) loads when a command runs (start-up time)
    from pipeline.signatures.signers import Signer

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@app.command("attest-blob")
@grouped
def attest_blob_command(
    file: Path = typer.Argument(..., help="The file to attest.", show_default=False),
    predicate: Path = typer.Option(..., "--predicate", help="The predicate: a JSON object (at most 16 MiB)."),
    predicate_type: str = TYPE_OPTION,
    key: str | None = typer.Option(None, "--key", envvar="RELEASE_VECTOR_KEY", help=KEY_HELP),
    keyless_options: KeylessOptions = SIGN_OPTIONS,
    bundle: Path = typer.Option(..., "--bundle", help="Write the Sigstore bundle (v0.3, DSSE) here."),
    tlog_options: TlogOptions = TLOG_OPTIONS,
    json_output: bool = typer.Option(False, "--json", help="Print a JSON result."),
) -> None:
    """Attest a file as `cosign attest-blob --bundle` does: an in-toto statement naming the file and its sha256,
    signed as a DSSE envelope, logged as a dsse entry, written as a Sigstore bundle v0.3."""
    from pipeline.signatures.att_blob import attest_blob
    from pipeline.signatures.signers import KeySigner
    from pipeline.sigstore.intoto import predicate_type_uri

    check_keyless_options(key, keyless_options, tlog_upload=tlog_options.tlog_upload)
    if key is not None and keyless_options.keyless:
        raise UsageError("give --key or --keyless, not both (a bundle holds one signature)")
    tlog_options, keyless_options = with_signing_config(tlog_options, keyless_options)
    uri = predicate_type_uri(predicate_type)
    body = read_predicate(predicate)
    digest = hashlib.sha256(read_input_file(file, "file to attest", limit=BLOB_LIMIT)).hexdigest()
    signing_key = load_signing_key(key) if key is not None else None
    with (
        transparency_log(tlog_options) as tlog,
        timestamp_client(tlog_options) as tsa,
        keyless_signer(keyless_options, tlog) as keyless,
    ):
        signer: Signer | None = KeySigner.of(signing_key) if signing_key is not None else keyless
        assert signer is not None  # check_keyless_options: a key or --keyless
        document = attest_blob(file.name, digest, uri, body, signer, tlog, tsa)
    write_new_files({bundle: (document, 0o644)}, force=True)
    if json_output:
        print_json({"file": str(file), "sha256": digest, "predicate_type": uri, "bundle": str(bundle)})
    print(f"Wrote bundle to file {bundle}", file=sys.stderr)


@app.command("verify-blob-attestation")
@grouped
def verify_blob_attestation_command(
    file: Path | None = typer.Argument(None, help="The attested file (or --digest).", show_default=False),
    digest: str | None = typer.Option(None, "--digest", help="The file's digest (hex) instead of the file."),
    digest_alg: str = typer.Option("sha256", "--digest-alg", help="The digest's algorithm (sha256)."),
    bundle: Path = typer.Option(..., "--bundle", help="The Sigstore bundle (DSSE) to check."),
    predicate_type: str = TYPE_OPTION,
    key: Path | None = typer.Option(None, "--key", help="Public key (PKIX PEM) that must have signed."),
    trust: TrustOptions = VERIFY_OPTIONS,
    json_output: bool = typer.Option(False, "--json", help="Print a JSON result."),
) -> None:
    """Verify a file's attestation bundle as cosign does; prints the statement."""
    from pipeline.signatures.att_blob import verify_blob_attestation
    from pipeline.sigstore.intoto import predicate_type_uri

    if (file is None) == (digest is None):
        raise UsageError("give the file or --digest (not both)")
    if digest_alg != "sha256":
        raise UsageError(f"--digest-alg {digest_alg!r} is not supported (sha256)")
    if digest is not None and not _SHA256_HEX.fullmatch(digest):
        raise UsageError(f"--digest {digest!r} is not a sha256 hex digest")
    uri = predicate_type_uri(predicate_type)
    policy = verification_policy(key, trust)
    if digest is None:
        assert file is not None
        digest = hashlib.sha256(read_input_file(file, "file to verify", limit=BLOB_LIMIT)).hexdigest()
    hex_digest = digest
    statement, verified = verify_blob_attestation(read_input_file(bundle, "bundle"), hex_digest, uri, policy,
                                                  str(bundle))  # fmt: skip
    parsed = jsonbounded.loads(statement, source=str(bundle))
    if json_output:
        print_json({"sha256": hex_digest, "verified": True, "signer": verified.signer, "issuer": verified.issuer,
                    "log_index": verified.log_index, "checks": list(verified.checks), "statement": parsed})  # fmt: skip
        return
    for check in verified.checks:
        print(f"  - {check}", file=sys.stderr)
    print("Verified OK", file=sys.stderr)
    print(json.dumps(parsed, separators=(",", ":")))
