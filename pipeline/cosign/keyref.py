"""Key references that name a key kept elsewhere (pure): cosign's ``pkcs11:`` and ``awskms://`` URIs.

* ``pkcs11:token=NAME;object=LABEL?module-path=/usr/lib/x.so&pin-value=1234`` (RFC 7512): path attributes
  ``token``, ``serial``, ``slot-id``, ``object``, ``id`` (percent-encoded bytes), ``type``; query attributes
  ``module-path``, ``pin-value``, ``pin-source`` (a file holding the PIN). Defaults from the environment, as
  cosign: ``COSIGN_PKCS11_MODULE_PATH`` for the module, ``COSIGN_PKCS11_PIN`` for the PIN.
* ``awskms:///KEY`` and ``awskms://ENDPOINT/KEY`` (cosign's forms), KEY a key ID, a key ARN, ``alias/NAME``
  or an alias ARN; ENDPOINT ``host:port`` of a KMS-compatible endpoint (cosign's form: no scheme).

Anything else (a path, ``env://NAME``) is a key file: :func:`parse_key_ref` answers None.

A PIN is a :class:`~pipeline.secret.Secret` from the moment it is parsed; :meth:`Pkcs11Uri.redacted` is the
form every message names (the URI without ``pin-value``), so no error, repr or log line carries the PIN.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pipeline.errors import KeyReferenceError
from pipeline.secret import Secret

PKCS11_SCHEME: Final = "pkcs11:"
AWSKMS_SCHEME: Final = "awskms://"
PIN_ENV: Final = "COSIGN_PKCS11_PIN"
MODULE_ENV: Final = "COSIGN_PKCS11_MODULE_PATH"

_PATH_ATTRIBUTES: Final = frozenset({"token", "serial", "slot-id", "object", "id", "type",
                                      "manufacturer", "model", "library-manufacturer",
                                      "library-description", "library-version"})  # fmt: skip
_QUERY_ATTRIBUTES: Final = frozenset({"module-path", "module-name", "pin-value", "pin-source"})
_OBJECT_TYPES: Final = frozenset({"private", "public", "cert", "secret-key", "data"})
# A KMS key: a key ID (UUID or multi-Region mrk-…), alias/NAME, or an ARN of either.
_AWS_KEY: Final = re.compile(
    r"^(?:arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+)"
    r"|[A-Za-z0-9-]{1,100}|alias/[A-Za-z0-9/_-]{1,250})$"
)
_ARN_REGION: Final = re.compile(r"^arn:aws[a-z-]*:kms:([a-z0-9-]+):")
_HOST_PORT: Final = re.compile(r"^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$")


@dataclass(frozen=True)
class Pkcs11Uri:
    """A ``pkcs11:`` key: which token and object, which module, and the PIN (a Secret, never shown)."""

    module_path: str | None
    token: str | None = None
    serial: str | None = None
    slot_id: int | None = None
    object_label: str | None = None
    object_id: bytes | None = None
    pin: Secret | None = field(default=None, repr=False, compare=False)
    pin_origin: str | None = None  # where the PIN came from, for messages: pin-value, pin-source FILE, env

    def redacted(self) -> str:
        """The URI for messages: path attributes and module, never the PIN (pin-source names only its file)."""
        path = []
        for name, value in (("token", self.token), ("serial", self.serial), ("object", self.object_label)):
            if value is not None:
                path.append(f"{name}={urllib.parse.quote(value, safe='')}")
        if self.slot_id is not None:
            path.append(f"slot-id={self.slot_id}")
        if self.object_id is not None:
            path.append("id=" + "".join(f"%{byte:02x}" for byte in self.object_id))
        text = PKCS11_SCHEME + ";".join(path)
        return text + (f"?module-path={self.module_path}" if self.module_path else "")


@dataclass(frozen=True)
class AwsKmsUri:
    """An ``awskms://`` key: the key (ID, ARN or alias) and an optional endpoint (``host:port``)."""

    key_id: str
    endpoint: str | None = None

    @property
    def region(self) -> str | None:
        """The region an ARN names (cosign takes it from there); None for an ID or alias."""
        match = _ARN_REGION.match(self.key_id)
        return match.group(1) if match else None

    @property
    def is_alias(self) -> bool:
        return self.key_id.startswith("alias/") or ":alias/" in self.key_id

    @property
    def endpoint_url(self) -> str | None:
        """The endpoint as a URL: cosign's ``host:port`` is spoken HTTPS; a loopback one plain HTTP (a local
        KMS-compatible server, as in the tests)."""
        if self.endpoint is None:
            return None
        host = self.endpoint.rsplit(":", 1)[0] if not self.endpoint.startswith("[") else self.endpoint
        loopback = host in ("localhost", "[::1]") or host.startswith("127.")
        return ("http://" if loopback else "https://") + self.endpoint

    def redacted(self) -> str:
        return f"{AWSKMS_SCHEME}{self.endpoint or ''}/{self.key_id}"


KeyRef = Pkcs11Uri | AwsKmsUri
ReadPin = Callable[[str, str], Secret]
"""Reads a ``pin-source`` file: (path, where) -> the PIN (a port, so tests can hand one in)."""


def is_key_uri(spec: str) -> bool:
    """Whether ``spec`` names a key kept elsewhere (not a key file or ``env://``)."""
    return spec.startswith((PKCS11_SCHEME, AWSKMS_SCHEME))


def describe(spec: str) -> str:
    """``spec`` safe for a message: a pkcs11 URI without its query (the PIN may be there)."""
    if spec.startswith(PKCS11_SCHEME):
        return spec.split("?", 1)[0]
    return spec


def parse_key_ref(spec: str, env: Mapping[str, str], read_file: ReadPin | None = None) -> KeyRef | None:
    """The key ``spec`` names, or None for a key file. ``env``: the environment (module and PIN defaults);
    ``read_file``: reads ``pin-source`` (None: :func:`read_pin_file`)."""
    if spec.startswith(PKCS11_SCHEME):
        return parse_pkcs11(spec, env, read_file or read_pin_file)
    if spec.startswith(AWSKMS_SCHEME):
        return parse_awskms(spec)
    return None


def read_pin_file(path: str, where: str) -> Secret:
    """The PIN in file ``path`` (its first line; a PIN file ends with a newline)."""
    try:
        data = Path(path).read_bytes()[:4096]
    except OSError as exc:
        raise KeyReferenceError(f"cannot read the pin-source file {path}: {exc.strerror or exc}", where=where) from None
    lines = data.splitlines()
    return Secret(lines[0] if lines else b"")


def _attributes(text: str, separator: str, allowed: frozenset[str], where: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in filter(None, text.split(separator)):
        name, equals, value = part.partition("=")
        if not equals:
            raise KeyReferenceError(f"pkcs11 URI attribute {name!r} has no value", where=where)
        if name not in allowed and not name.startswith("x-"):
            raise KeyReferenceError(f"unknown pkcs11 URI attribute {name!r}", where=where)
        if name in found:
            raise KeyReferenceError(f"pkcs11 URI attribute {name!r} is given twice", where=where)
        found[name] = value
    return found


def _unquote(value: str, name: str, where: str) -> bytes:
    if re.search(r"%(?![0-9A-Fa-f]{2})", value):
        raise KeyReferenceError(f"pkcs11 URI attribute {name!r} has a bad percent-encoding", where=where)
    return urllib.parse.unquote_to_bytes(value)


def _text(value: str, name: str, where: str) -> str:
    try:
        return _unquote(value, name, where).decode("utf-8")
    except UnicodeDecodeError:
        raise KeyReferenceError(f"pkcs11 URI attribute {name!r} is not UTF-8", where=where) from None


def parse_pkcs11(spec: str, env: Mapping[str, str], read_file: ReadPin) -> Pkcs11Uri:
    where = describe(spec)
    path_text, _, query_text = spec[len(PKCS11_SCHEME) :].partition("?")
    path = _attributes(path_text, ";", _PATH_ATTRIBUTES, where)
    query = _attributes(query_text, "&", _QUERY_ATTRIBUTES, where)
    if "type" in path and path["type"] not in _OBJECT_TYPES:
        raise KeyReferenceError(f"unknown pkcs11 object type {path['type']!r}", where=where)
    slot_id = None
    if "slot-id" in path:
        if not path["slot-id"].isdigit():
            raise KeyReferenceError("pkcs11 URI slot-id is not a number", where=where)
        slot_id = int(path["slot-id"])
    label = _text(path["object"], "object", where) if "object" in path else None
    object_id = _unquote(path["id"], "id", where) if "id" in path else None
    if label is None and object_id is None:
        raise KeyReferenceError("the pkcs11 URI names no key: give object=LABEL or id=%XX…", where=where)
    module = _text(query["module-path"], "module-path", where) if "module-path" in query else env.get(MODULE_ENV)
    if "pin-value" in query and "pin-source" in query:
        raise KeyReferenceError("the pkcs11 URI gives both pin-value and pin-source", where=where)
    pin: Secret | None = None
    origin: str | None = None
    if "pin-value" in query:
        pin, origin = Secret(_unquote(query["pin-value"], "pin-value", where)), "pin-value"
    elif "pin-source" in query:
        source = _text(query["pin-source"], "pin-source", where).removeprefix("file:")
        pin, origin = read_file(source, where), f"pin-source {source}"
    elif PIN_ENV in env:
        pin, origin = Secret(env[PIN_ENV]), PIN_ENV
    return Pkcs11Uri(
        module_path=module or None,
        token=_text(path["token"], "token", where) if "token" in path else None,
        serial=_text(path["serial"], "serial", where) if "serial" in path else None,
        slot_id=slot_id,
        object_label=label,
        object_id=object_id,
        pin=pin,
        pin_origin=origin,
    )


def parse_awskms(spec: str) -> AwsKmsUri:
    rest = spec[len(AWSKMS_SCHEME) :]
    endpoint, slash, key_id = rest.partition("/")
    if not slash or not key_id:
        raise KeyReferenceError("an awskms key is awskms:///KEY or awskms://HOST:PORT/KEY", where=spec)
    if endpoint and not _HOST_PORT.match(endpoint):
        raise KeyReferenceError(f"the awskms endpoint {endpoint!r} is not HOST[:PORT]", where=spec)
    if not _AWS_KEY.match(key_id):
        raise KeyReferenceError(
            "the awskms key is not a key ID, key ARN, alias/NAME or alias ARN", where=spec
        )
    return AwsKmsUri(key_id, endpoint or None)
