"""The simple-signing payload cosign signs for a container image (pure, no I/O).

What ``cosign sign`` signs is not the image but a small JSON document naming it (sigstore's
``payload.SimpleContainerImage``, the containers/image "simple signing" shape)::

    {"critical":{"identity":{"docker-reference":"<repo>"},
                 "image":{"docker-manifest-digest":"sha256:<hex>"},
                 "type":"cosign container image signature"},
     "optional":null}

cosign writes it with Go's ``json.Marshal``: compact, struct fields in declaration order (which here is
also alphabetical), ``optional`` = ``null`` without ``-a`` annotations, else the annotations as an
object whose keys Go sorts. Go escapes ``<``, ``>``, ``&``, U+2028 and U+2029 as ``\\u003c``…, and
writes every other non-ASCII character as raw UTF-8. ``marshal_go_json`` reproduces those bytes.

The signature is over these exact bytes: callers hash and sign what ``simple_signing_payload``
returns, and verify against the bytes they fetched, never a re-serialisation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, TypeVar

from pipeline import jsonbounded
from pipeline.errors import InvalidInputError

_V = TypeVar("_V")

COSIGN_SIGNATURE_TYPE: Final = "cosign container image signature"

# The digest algorithms go-digest (containers/image) and go-containerregistry accept, lowercase hex.
_DIGEST_RE: Final = re.compile(r"sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128}")
_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")
# Go's encoding/json escapes these even inside strings (json.Marshal always sets escapeHTML); they
# can only occur inside strings, so replacing them in the serialised text is exact.
_GO_ESCAPES: Final = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GO_ESCAPE_RE: Final = re.compile("[<>&\u2028\u2029]")


def marshal_go_json(value: object) -> bytes:
    """``value`` serialised as Go's ``json.Marshal`` would: compact, HTML-escaped, UTF-8.

    Dict key order is kept as given (Go sorts map keys; callers sort where Go has a map, and keep
    struct order where Go has a struct). Lone surrogates become U+FFFD, as Go turns invalid UTF-8.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = _GO_ESCAPE_RE.sub(lambda m: _GO_ESCAPES[m.group(0)], text)
    text = _SURROGATE_RE.sub("\ufffd", text)
    return text.encode("utf-8")


def is_digest(value: str) -> bool:
    """True for ``sha256:<64 hex>`` (or sha384/sha512), lowercase, as registries name manifests."""
    return _DIGEST_RE.fullmatch(value) is not None


def go_sorted(mapping: Mapping[str, _V]) -> dict[str, _V]:
    """A copy with keys in Go's map order (byte order of the UTF-8 keys = code point order)."""
    clean = {_SURROGATE_RE.sub("\ufffd", k): v for k, v in mapping.items()}
    return {k: clean[k] for k in sorted(clean)}


def _annotation_value(key: str, value: object, where: str) -> object:
    # Values Go and Python print alike. Floats are refused: Go formats them differently (1e+16 vs 1e16).
    if value is None or isinstance(value, str | int):
        return value
    raise InvalidInputError(f"annotation {key!r} has a value of type {type(value).__name__}; use a string", where=where)


def simple_signing_payload(
    docker_reference: str, manifest_digest: str, annotations: Mapping[str, object] | None
) -> bytes:
    """The exact payload bytes ``cosign sign`` writes for ``docker_reference`` at ``manifest_digest``.

    ``docker_reference`` is what cosign calls the claimed identity: normally the repository without tag
    or digest, spelled as go-containerregistry names it (``index.docker.io/library/x`` for Docker Hub).
    ``annotations`` are cosign's ``-a key=value`` pairs; ``None`` or empty gives ``"optional":null``
    (cosign never writes ``{}``: without ``-a`` its map stays nil). Values are strings as cosign's
    ``-a`` gives them; integers, booleans and None are accepted too (containers/image writes
    ``{"creator":…,"timestamp":<int>}``), floats are refused.
    """
    if not docker_reference:
        raise InvalidInputError("the signature payload needs a docker reference", where=manifest_digest)
    if not is_digest(manifest_digest):
        raise InvalidInputError(
            f"{manifest_digest!r} is not a manifest digest (sha256:<64 lowercase hex>)", where=docker_reference
        )
    optional = (
        {k: _annotation_value(k, v, docker_reference) for k, v in go_sorted(annotations).items()}
        if annotations
        else None
    )
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": COSIGN_SIGNATURE_TYPE,
        },
        "optional": optional,
    }
    return marshal_go_json(document)


# --- parsing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimpleSigningPayload:
    """The fields of a payload; ``optional`` is ``None`` for cosign's ``"optional":null``.

    The containers/image variant (skopeo/podman) puts ``creator`` and ``timestamp`` into ``optional``;
    ``creator`` and ``timestamp`` expose them when present.
    """

    docker_reference: str
    manifest_digest: str
    type: str
    optional: Mapping[str, object] | None = field(hash=False)

    @property
    def creator(self) -> str | None:
        value = self.optional.get("creator") if self.optional is not None else None
        return value if isinstance(value, str) else None

    @property
    def timestamp(self) -> int | None:
        value = self.optional.get("timestamp") if self.optional is not None else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class _DuplicateKeyError(ValueError):
    pass


def _pairs_without_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def load_strict_json(data: bytes, what: str, where: str) -> object:
    """JSON that refuses duplicate keys (Go takes the last one, others the first), NaN and non-UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"the {what} is not UTF-8", where=where) from None
    try:
        return jsonbounded.loads(
            text,
            source=where,
            what=what,
            object_pairs_hook=_pairs_without_duplicates,
            parse_constant=_refuse_constant,
        )
    except _DuplicateKeyError as exc:
        raise InvalidInputError(f"the {what} repeats the JSON key {exc.args[0]!r}", where=where) from None
    except (ValueError, RecursionError):
        raise InvalidInputError(f"the {what} is not valid JSON", where=where) from None


def _exact_object(value: object, fields: tuple[str, ...], name: str, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise InvalidInputError(f"the signature payload's {name} is not a JSON object", where=where)
    keys = set(value)
    if keys != set(fields):
        missing = sorted(set(fields) - keys)
        extra = sorted(keys - set(fields))
        detail = f"lacks {', '.join(missing)}" if missing else f"has unknown field {', '.join(extra)}"
        raise InvalidInputError(f"the signature payload's {name} {detail}", where=where)
    return value


def _string_field(obj: Mapping[str, object], key: str, name: str, where: str) -> str:
    value = obj[key]
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"the signature payload's {name} is not a non-empty string", where=where)
    return value


def parse_simple_signing_payload(data: bytes, where: str) -> SimpleSigningPayload:
    """The fields of a payload, checked as strictly as containers/image checks them.

    ``critical`` and its members must hold exactly their known fields (no more: a consumer must
    understand everything critical), ``type`` must be cosign's, the digest a valid digest;
    ``optional`` is ``null``, absent (cosign tolerates it) or an object, whose ``creator`` must be a
    string and ``timestamp`` an integer when present. Duplicate keys are refused.
    """
    document = load_strict_json(data, "signature payload", where)
    if not isinstance(document, dict):
        raise InvalidInputError("the signature payload is not a JSON object", where=where)
    unknown = sorted(set(document) - {"critical", "optional"})
    if unknown:
        raise InvalidInputError(f"the signature payload has unknown field {', '.join(unknown)}", where=where)
    if "critical" not in document:
        raise InvalidInputError("the signature payload lacks critical", where=where)
    critical = _exact_object(document["critical"], ("identity", "image", "type"), "critical", where)
    identity = _exact_object(critical["identity"], ("docker-reference",), "critical.identity", where)
    image = _exact_object(critical["image"], ("docker-manifest-digest",), "critical.image", where)
    kind = _string_field(critical, "type", "critical.type", where)
    if kind != COSIGN_SIGNATURE_TYPE:
        raise InvalidInputError(
            f"unknown signature payload type {kind!r} (expected {COSIGN_SIGNATURE_TYPE!r})", where=where
        )
    reference = _string_field(identity, "docker-reference", "docker-reference", where)
    digest = _string_field(image, "docker-manifest-digest", "docker-manifest-digest", where)
    if not is_digest(digest):
        raise InvalidInputError(
            f"the signature payload's docker-manifest-digest {digest!r} is not a digest", where=where
        )
    # `-a creator=…` / `-a timestamp=…` annotations are strings: cosign accepts any value in optional,
    # so the typed views (`creator`, `timestamp`) simply ignore values of another type.
    optional = document.get("optional")
    if optional is not None and not isinstance(optional, dict):
        raise InvalidInputError("the signature payload's optional is neither null nor an object", where=where)
    return SimpleSigningPayload(
        docker_reference=reference,
        manifest_digest=digest,
        type=kind,
        optional=MappingProxyType(optional) if optional is not None else None,
    )
