"""``cosign sign-blob --bundle``'s file: the "LocalSignedPayload" JSON (pure).

cosign writes ``{"base64Signature":…,"cert":…,"rekorBundle":{…}}`` with ``cert`` (base64 of the
certificate PEM) and ``rekorBundle`` omitted when empty (Go ``omitempty``). The signature covers the
blob's bytes directly.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from pipeline import jsonbounded
from pipeline.cosign.rekor import RekorBundle, parse_rekor_bundle, rekor_bundle_to_json
from pipeline.errors import InvalidInputError


@dataclass(frozen=True)
class BlobBundle:
    signature: bytes
    certificate_pem: bytes | None
    rekor_bundle: RekorBundle | None


def render_blob_bundle(bundle: BlobBundle) -> bytes:
    """Compact JSON in cosign's field order, empty fields omitted."""
    document: dict[str, Any] = {"base64Signature": base64.b64encode(bundle.signature).decode()}
    if bundle.certificate_pem:
        document["cert"] = base64.b64encode(bundle.certificate_pem).decode()
    if bundle.rekor_bundle is not None:
        document["rekorBundle"] = rekor_bundle_to_json(bundle.rekor_bundle)
    return json.dumps(document, separators=(",", ":")).encode()


def parse_blob_bundle(data: bytes, where: str) -> BlobBundle:
    try:
        document = jsonbounded.loads(data, source=where, what="the bundle")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"the bundle is not JSON ({exc.__class__.__name__})", where=where) from None
    if not isinstance(document, dict):
        raise InvalidInputError("the bundle is not a JSON object", where=where)
    if "mediaType" in document and "base64Signature" not in document:
        raise InvalidInputError(
            f"Sigstore bundles ({document.get('mediaType')}) are not read by this command yet",
            where=where,
            hint="give the bundle cosign writes with `sign-blob --bundle` (--new-bundle-format=false)",
        )
    signature_b64 = document.get("base64Signature")
    if not isinstance(signature_b64, str) or not signature_b64:
        raise InvalidInputError("the bundle has no base64Signature", where=where)
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError("the bundle's base64Signature is not valid base64", where=where) from None
    certificate_pem: bytes | None = None
    cert = document.get("cert")
    if cert:
        if not isinstance(cert, str):
            raise InvalidInputError("the bundle's cert is not a string", where=where)
        try:
            certificate_pem = base64.b64decode(cert, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError("the bundle's cert is not valid base64", where=where) from None
    rekor = document.get("rekorBundle")
    rekor_bundle = parse_rekor_bundle(rekor, f"{where}: rekorBundle") if rekor else None
    return BlobBundle(signature, certificate_pem, rekor_bundle)
