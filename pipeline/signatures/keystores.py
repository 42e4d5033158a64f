"""Opening a key kept elsewhere by its reference (``pkcs11:``, ``awskms://``): the one place the CLI, the
bench and the rehearsal turn a ``--key`` URI into a :class:`~pipeline.cosign.keys.PrivateKeyHandle`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from pipeline.cosign.keyref import AwsKmsUri, Pkcs11Uri, ReadPin, parse_key_ref
from pipeline.cosign.keys import PrivateKeyHandle
from pipeline.errors import KeyReferenceError


class ClosableKey(PrivateKeyHandle, Protocol):
    def close(self) -> None:
        """End the token session (and its login) or the KMS client's connections."""
        ...


def open_key(spec: str, env: Mapping[str, str], read_pin: ReadPin | None = None) -> ClosableKey:
    """The key ``spec`` names (a ``pkcs11:`` or ``awskms://`` URI; a key file is not for here)."""
    ref = parse_key_ref(spec, env, read_pin)
    if isinstance(ref, Pkcs11Uri):
        from pipeline.signatures.pkcs11 import Pkcs11Key  # the PKCS#11 binding loads only when used

        return Pkcs11Key.open(ref)
    if isinstance(ref, AwsKmsUri):
        from pipeline.signatures.awskms import AwsKmsKey  # boto3 takes ~0.3 s to import: only when used

        return AwsKmsKey.open(ref, env)
    raise KeyReferenceError("not a pkcs11: or awskms:// key reference", where=spec)


def generate_key(spec: str, env: Mapping[str, str], read_pin: ReadPin | None = None) -> ClosableKey:
    """A new ECDSA P-256 key made where ``spec`` says (a token key pair; a KMS key and its alias)."""
    ref = parse_key_ref(spec, env, read_pin)
    if isinstance(ref, Pkcs11Uri):
        from pipeline.signatures.pkcs11 import generate_on_token

        return generate_on_token(ref)
    if isinstance(ref, AwsKmsUri):
        from pipeline.signatures.awskms import create_kms_key

        return create_kms_key(ref, env)
    raise KeyReferenceError("--kms takes a pkcs11: or awskms:// key reference", where=spec)
