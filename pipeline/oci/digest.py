"""Content digests (``algorithm:hex``) as the OCI image spec defines them.

We compute and check ``sha256`` (what every registry and cosign use) and ``sha512`` (allowed by the
spec). A digest is always a plain ``str`` such as ``sha256:3b1f…``; these helpers make and check them.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from pipeline.errors import InvalidInputError

SHA256: Final = "sha256"
SHA512: Final = "sha512"

_HEX_LENGTH: Final = {SHA256: 64, SHA512: 128}
# The OCI grammar: algorithm-component ([+._-] algorithm-component)* ":" encoded.
_DIGEST_RE: Final = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_LOWER_HEX_RE: Final = re.compile(r"^[a-f0-9]+$")


def compute(data: bytes, algorithm: str = SHA256) -> str:
    """The digest of ``data``: ``sha256:<64 lowercase hex>`` by default."""
    if algorithm not in _HEX_LENGTH:
        raise InvalidInputError(f"unsupported digest algorithm {algorithm!r}", where=algorithm)
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def is_valid(text: str) -> bool:
    """True for a well-formed digest of an algorithm we can compute (sha256, sha512)."""
    if not _DIGEST_RE.match(text):
        return False
    algorithm, _, encoded = text.partition(":")
    length = _HEX_LENGTH.get(algorithm)
    return length is not None and len(encoded) == length and bool(_LOWER_HEX_RE.match(encoded))


def validate(text: str, *, where: str | None = None) -> str:
    """``text`` if it is a valid digest, else an InvalidInputError naming it."""
    if not is_valid(text):
        if _DIGEST_RE.match(text) and text.partition(":")[0] not in _HEX_LENGTH:
            message = f"unsupported digest algorithm {text.partition(':')[0]!r}"
        else:
            message = "malformed digest (expected sha256: and 64 lowercase hex digits)"
        raise InvalidInputError(message, where=where or text)
    return text


def algorithm_of(digest: str) -> str:
    return validate(digest).partition(":")[0]


def hex_of(digest: str) -> str:
    """The encoded part: ``3b1f…`` of ``sha256:3b1f…``."""
    return validate(digest).partition(":")[2]


def matches(data: bytes, digest: str) -> bool:
    """True if ``data`` hashes to ``digest`` (using the digest's own algorithm)."""
    return compute(data, algorithm_of(digest)) == digest
