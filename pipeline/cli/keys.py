"""``generate-key-pair`` and ``public-key``: cosign-compatible key files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from pipeline.cli.app import app
from pipeline.cli.common import load_signing_key, obtain_password, print_json, write_new_files

KEY_HELP = (
    "Private key: a path, env://NAME for PEM content in an environment variable, a PKCS#11 key"
    " (pkcs11:token=T;object=L?module-path=PATH) or an AWS KMS key (awskms:///KEY, awskms://HOST:PORT/KEY)."
)


@app.command("generate-key-pair")
def generate_key_pair_command(
    output_key_prefix: str = typer.Option("cosign", "--output-key-prefix", help="Write PREFIX.key and PREFIX.pub."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing key files."),
    json_output: bool = typer.Option(False, "--json", help="Print the written paths as JSON."),
    kms: str | None = typer.Option(
        None,
        "--kms",
        help="Make the key on a token or in KMS (pkcs11:token=T;object=L, awskms:///alias/NAME); writes PREFIX.pub.",
    ),
) -> None:
    """Write a new key pair in cosign's formats: PREFIX.key (ECDSA P-256, encrypted) and PREFIX.pub.

    The password comes from COSIGN_PASSWORD (empty means no password) or a prompt on a terminal. With --kms the
    private key is made on the PKCS#11 token or in AWS KMS (with its alias) and never leaves it.
    """
    from pipeline.cosign.keys import generate_key_pair  # here: KEY_HELP is imported by commands that need no keys

    key_path, pub_path = Path(f"{output_key_prefix}.key"), Path(f"{output_key_prefix}.pub")
    if kms is not None:
        _generate_elsewhere(kms, pub_path, force=force, json_output=json_output)
        return
    password = obtain_password(confirm=True, purpose="the new private key")
    pair = generate_key_pair(password)
    write_new_files({key_path: (pair.private_pem.reveal(), 0o600), pub_path: (pair.public_pem, 0o644)}, force=force)
    if json_output:
        print_json({"private_key": str(key_path), "public_key": str(pub_path)})
    else:
        print(f"Private key written to {key_path}", file=sys.stderr)
        print(f"Public key written to {pub_path}", file=sys.stderr)


def _generate_elsewhere(spec: str, pub_path: Path, *, force: bool, json_output: bool) -> None:
    from pipeline.signatures.keystores import generate_key

    if not force and pub_path.exists():  # refuse before making a key we could not record
        write_new_files({pub_path: (b"", 0o644)}, force=False)
    key = generate_key(spec, os.environ)
    try:
        write_new_files({pub_path: (key.public_key_pem(), 0o644)}, force=force)
    finally:
        key.close()
    if json_output:
        print_json({"key": key.source, "public_key": str(pub_path)})
    else:
        print(f"Key made in {key.source}", file=sys.stderr)
        print(f"Public key written to {pub_path}", file=sys.stderr)


@app.command("public-key")
def public_key_command(
    key: str = typer.Option(..., "--key", envvar="RELEASE_VECTOR_KEY", help=KEY_HELP),
    outfile: Path | None = typer.Option(None, "--outfile", help="Write the PEM here instead of stdout."),
) -> None:
    """Print the public key (PEM) of a private key.

    A cosign key file's, a PKCS#11 token key's or an AWS KMS key's."""
    pem = load_signing_key(key).public_key_pem()
    if outfile is None:
        sys.stdout.write(pem.decode())
    else:
        write_new_files({outfile: (pem, 0o644)}, force=True)
