"""The rehearsal's key when it signs with a key kept elsewhere (``rehearse --key-uri pkcs11:…``): the
release commands get the URI as ``--key``; verify-release gets the public key, written to ``keys/cosign.pub``
as ``public-key --key URI`` prints it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.cosign.keyref import describe, is_key_uri
from pipeline.errors import UsageError
from pipeline.secret import Secret
from pipeline.signatures.keystores import open_key


@dataclass(frozen=True)
class UriKeys:
    key_uri: str
    public_key: Path
    password: Secret | None = None  # a token's PIN or KMS credentials come from the URI and the environment

    @property
    def key_argument(self) -> str:
        return self.key_uri

    def __repr__(self) -> str:
        return f"UriKeys({describe(self.key_uri)!r})"


def uri_keys(directory: Path, key_uri: str) -> UriKeys:
    if not is_key_uri(key_uri):
        raise UsageError("--key-uri takes a pkcs11: or awskms:// key", where=describe(key_uri))
    key = open_key(key_uri, os.environ)
    try:
        pem = key.public_key_pem()
    finally:
        key.close()
    directory.mkdir(parents=True, exist_ok=True)
    public = directory / "cosign.pub"
    public.write_bytes(pem)
    return UriKeys(key_uri, public)
