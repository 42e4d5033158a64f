"""Sigstore signing configuration (``signing_config.v0.2.json``): which Fulcio, Rekor and TSA to sign with (pure).

The file (sigstore/protobuf-specs ``sigstore_trustroot.proto`` ``SigningConfig``, media type
``application/vnd.dev.sigstore.signingconfig.v0.2+json``) lists services, each with its ``url``,
``majorApiVersion``, ``validFor`` {start, end?} and ``operator``; ``rekorTlogConfig``/``tsaConfig`` say how
many to use (``selector`` ANY: one; EXACT: ``count`` of them; ALL: one per operator). cosign v3 reads it
with ``--signing-config`` (and the public-good one from TUF by default); ``--rekor-url``/``--fulcio-url``
are being deprecated in its favour (sigstore/cosign#4844).

Selection follows sigstore-go's ``SelectService``/``SelectServices``: of the services valid now and of an
API version this tool speaks, the highest version first, then the most recent start; at most one per
operator. Pure: the caller reads the file and gives the time.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pipeline import jsonbounded
from pipeline.errors import InvalidInputError, UsageError

SIGNING_CONFIG_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
SELECTORS: Final = ("ANY", "EXACT", "ALL")


@dataclass(frozen=True)
class Service:
    url: str
    major_api_version: int
    valid_from: datetime
    valid_until: datetime | None
    operator: str

    def valid_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment and (self.valid_until is None or moment < self.valid_until)


@dataclass(frozen=True)
class Selection:
    selector: str  # ANY, EXACT or ALL
    count: int  # EXACT's count (0 otherwise)


@dataclass(frozen=True)
class SigningConfig:
    ca_urls: tuple[Service, ...]
    oidc_urls: tuple[Service, ...]
    rekor_urls: tuple[Service, ...]
    tsa_urls: tuple[Service, ...]
    rekor_selection: Selection
    tsa_selection: Selection


def _time(value: object, name: str, where: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidInputError(f"the signing config's {name} is not an RFC 3339 time", where=where)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"the signing config's {name} {value!r} is not an RFC 3339 time", where=where) from None
    if moment.tzinfo is None:
        raise InvalidInputError(f"the signing config's {name} {value!r} has no time zone", where=where)
    return moment


def _services(document: Mapping[str, object], key: str, where: str) -> tuple[Service, ...]:
    raw = document.get(key, [])
    if not isinstance(raw, list):
        raise InvalidInputError(f"the signing config's {key} is not a list", where=where)
    services: list[Service] = []
    for index, item in enumerate(raw):
        name = f"{key}[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidInputError(f"the signing config's {name} is not an object", where=where)
        url, version, valid_for = item.get("url"), item.get("majorApiVersion"), item.get("validFor")
        if not isinstance(url, str) or not url:
            raise InvalidInputError(f"the signing config's {name}.url is missing", where=where)
        if type(version) is not int or version < 1:
            raise InvalidInputError(f"the signing config's {name}.majorApiVersion is not a positive integer",
                                    where=where)  # fmt: skip
        if not isinstance(valid_for, Mapping) or "start" not in valid_for:
            raise InvalidInputError(f"the signing config's {name}.validFor.start is missing", where=where)
        end = valid_for.get("end")
        operator = item.get("operator", "")
        services.append(
            Service(
                url.rstrip("/"),
                version,
                _time(valid_for["start"], f"{name}.validFor.start", where),
                None if end is None else _time(end, f"{name}.validFor.end", where),
                operator if isinstance(operator, str) else "",
            )
        )
    return tuple(services)


def _selection(document: Mapping[str, object], key: str, where: str) -> Selection:
    raw = document.get(key) or {}
    if not isinstance(raw, Mapping):
        raise InvalidInputError(f"the signing config's {key} is not an object", where=where)
    selector = raw.get("selector", "ANY")
    if selector not in SELECTORS:
        raise InvalidInputError(f"the signing config's {key}.selector {selector!r} is not ANY, EXACT or ALL",
                                where=where)  # fmt: skip
    count = raw.get("count", 0)
    if selector == "EXACT" and (type(count) is not int or count < 1):
        raise InvalidInputError(f"the signing config's {key}.count must be a positive integer for EXACT",
                                where=where)  # fmt: skip
    return Selection(str(selector), count if selector == "EXACT" and isinstance(count, int) else 0)


def parse_signing_config(data: bytes, where: str) -> SigningConfig:
    """Read a ``signing_config.v0.2.json``; InvalidInputError (exit 3) naming ``where`` if it is not one."""
    try:
        document: object = jsonbounded.loads(data, source=where, what="the signing config")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInputError("the signing config is not JSON", where=where) from None
    if not isinstance(document, Mapping):
        raise InvalidInputError("the signing config is not a JSON object", where=where)
    if document.get("mediaType") != SIGNING_CONFIG_MEDIA_TYPE:
        raise InvalidInputError(
            f"the signing config's mediaType is {document.get('mediaType')!r}, not {SIGNING_CONFIG_MEDIA_TYPE!r}",
            where=where,
        )
    return SigningConfig(
        _services(document, "caUrls", where),
        _services(document, "oidcUrls", where),
        _services(document, "rekorTlogUrls", where),
        _services(document, "tsaUrls", where),
        _selection(document, "rekorTlogConfig", where),
        _selection(document, "tsaConfig", where),
    )


def select_services(
    services: Sequence[Service],
    supported_versions: Collection[int],
    selection: Selection,
    now: datetime,
    what: str,
    where: str,
) -> tuple[Service, ...]:
    """The services to use (sigstore-go's order and rules; see the module doc). UsageError (exit 2) when the
    config names none that is valid now and of a supported API version, or fewer than EXACT asks for."""
    usable = sorted(
        (s for s in services if s.major_api_version in supported_versions and s.valid_at(now)),
        key=lambda s: (s.major_api_version, s.valid_from),
        reverse=True,
    )
    per_operator: dict[str, Service] = {}
    for service in usable:
        per_operator.setdefault(service.operator or service.url, service)
    chosen = list(per_operator.values())
    if not chosen:
        versions = ", ".join(f"v{v}" for v in sorted(supported_versions))
        raise UsageError(f"the signing config names no {what} valid now with API version {versions}", where=where)
    if selection.selector == "ANY":
        return (chosen[0],)
    if selection.selector == "EXACT":
        if len(chosen) < selection.count:
            raise UsageError(
                f"the signing config asks for exactly {selection.count} {what}s but names {len(chosen)} usable one(s)",
                where=where,
            )
        return tuple(chosen[: selection.count])
    return tuple(chosen)
