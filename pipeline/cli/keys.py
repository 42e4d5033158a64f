"""``generate-key-pair`` and ``public-key``: cosign-compatible key files."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from pipeline.cli.app import app
from pipeline.cli.common import load_signing_key, obtain_password, print_json, write_new_files
from pipeline.cosign.keys import generate_key_pair

KEY_HELP = "Private key: a path, or env://NAME for PEM content in an environment variable."


@app.command("generate-key-pair")
def generate_key_pair_command(
    output_key_prefix: str = typer.Option("cosign", "--output-key-prefix", help="Write PREFIX.key and PREFIX.pub."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing key files."),
    json_output: bool = typer.Option(False, "--json", help="Print the written paths as JSON."),
) -> None:
    """Write a new key pair in cosign's formats: PREFIX.key (ECDSA P-256, encrypted) and PREFIX.pub.

    The password comes from COSIGN_PASSWORD (empty means no password) or a prompt on a terminal.
    """
    key_path, pub_path = Path(f"{output_key_prefix}.key"), Path(f"{output_key_prefix}.pub")
    password = obtain_password(confirm=True, purpose="the new private key")
    pair = generate_key_pair(password)
    write_new_files({key_path: (pair.private_pem.reveal(), 0o600), pub_path: (pair.public_pem, 0o644)}, force=force)
    if json_output:
        print_json({"private_key": str(key_path), "public_key": str(pub_path)})
    else:
        print(f"Private key written to {key_path}", file=sys.stderr)
        print(f"Public key written to {pub_path}", file=sys.stderr)


@app.command("public-key")
def public_key_command(
    key: str = typer.Option(..., "--key", envvar="RELEASE_VECTOR_KEY", help=KEY_HELP),
    outfile: Path | None = typer.Option(None, "--outfile", help="Write the PEM here instead of stdout."),
) -> None:
    """Print the PKIX PEM public key of a cosign private key."""
    pem = load_signing_key(key).public_key_pem()
    if outfile is None:
        sys.stdout.write(pem.decode())
    else:
        write_new_files({outfile: (pem, 0o644)}, force=True)
