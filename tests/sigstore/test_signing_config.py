"""Sigstore signing configs (the real staging and public-good ones): parsing and service selection."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import InvalidInputError, UsageError
from pipeline.sigstore.signing_config import Selection, parse_signing_config, select_services

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "sigstore-rekor-v2"
STAGING = VECTORS / "staging-signing_config.v0.2.json"
PUBLIC_GOOD = VECTORS / "public-good-signing_config.v0.2.json"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _config(path: Path) -> Any:
    return parse_signing_config(path.read_bytes(), str(path))


def test_the_public_good_config_names_rekor_v1_fulcio_and_the_tsa() -> None:
    config = _config(PUBLIC_GOOD)
    assert [s.url for s in config.rekor_urls] == ["https://rekor.sigstore.dev"]
    assert select_services(config.ca_urls, (1,), Selection("ANY", 0), NOW, "CA", "x")[0].url == (
        "https://fulcio.sigstore.dev"
    )
    tsa = select_services(config.tsa_urls, (1,), config.tsa_selection, NOW, "TSA", "x")
    assert [s.url for s in tsa] == ["https://timestamp.sigstore.dev/api/v1/timestamp"]


def test_staging_selects_the_newest_valid_v2_shard_or_v1_when_only_v1_is_spoken() -> None:
    config = _config(STAGING)
    assert config.rekor_selection == Selection("ANY", 0)
    v2 = select_services(config.rekor_urls, (1, 2), config.rekor_selection, NOW, "log", "x")
    assert [s.url for s in v2] == ["https://log2025-alpha3.rekor.sigstage.dev"]
    # In August 2025 alpha2 was the valid shard (alpha3 not yet, alpha1 no longer).
    august = select_services(config.rekor_urls, (2,), config.rekor_selection,
                             datetime(2025, 9, 1, tzinfo=UTC), "log", "x")  # fmt: skip
    assert [s.url for s in august] == ["https://log2025-alpha2.rekor.sigstage.dev"]
    v1 = select_services(config.rekor_urls, (1,), config.rekor_selection, NOW, "log", "x")
    assert [s.url for s in v1] == ["https://rekor.sigstage.dev"]


def test_exact_needs_that_many_operators() -> None:
    document = json.loads(STAGING.read_bytes())
    document["rekorTlogConfig"] = {"selector": "EXACT", "count": 2}
    config = parse_signing_config(json.dumps(document).encode(), "cfg")
    with pytest.raises(UsageError, match="exactly 2 logs but names 1 usable"):
        select_services(config.rekor_urls, (1, 2), config.rekor_selection, NOW, "log", "cfg")
    document["rekorTlogUrls"][-1]["operator"] = "another operator"
    config = parse_signing_config(json.dumps(document).encode(), "cfg")
    chosen = select_services(config.rekor_urls, (1, 2), config.rekor_selection, NOW, "log", "cfg")
    assert [s.url for s in chosen] == ["https://log2025-alpha3.rekor.sigstage.dev", "https://rekor.sigstage.dev"]


def test_no_usable_service_is_a_usage_error() -> None:
    config = _config(STAGING)
    with pytest.raises(UsageError, match="names no log valid now with API version v3"):
        select_services(config.rekor_urls, (3,), config.rekor_selection, NOW, "log", "cfg")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(mediaType="application/json"), "mediaType"),
        (lambda d: d["rekorTlogUrls"][0].pop("url"), "rekorTlogUrls.0..url is missing"),
        (lambda d: d["rekorTlogUrls"][0].update(majorApiVersion="2"), "majorApiVersion is not a positive integer"),
        (lambda d: d["tsaUrls"][0].update(validFor={"start": "yesterday"}), "is not an RFC 3339 time"),
        (lambda d: d.update(rekorTlogConfig={"selector": "SOME"}), "is not ANY, EXACT or ALL"),
        (lambda d: d.update(rekorTlogConfig={"selector": "EXACT"}), "count must be a positive integer"),
    ],
)
def test_malformed_configs_are_invalid_input(change: Any, reason: str) -> None:
    document = json.loads(STAGING.read_bytes())
    change(document)
    with pytest.raises(InvalidInputError, match=reason):
        parse_signing_config(json.dumps(document).encode(), "cfg")
    with pytest.raises(InvalidInputError, match="not JSON"):
        parse_signing_config(b"{", "cfg")
