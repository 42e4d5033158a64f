"""pipeline/cosign/timestamp.py: RFC 3161 timestamps real cosign bundles carry, checked against the
public-good trusted root's timestamp authority."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.cosign.timestamp import MAX_TIMESTAMPS, verify_timestamp, verify_timestamps
from pipeline.cosign.trust import timestamp_authorities_from_trusted_root
from pipeline.errors import VerificationError
from tests.conftest import COSIGN_VECTORS

BUNDLE_V03 = COSIGN_VECTORS / "bundle-v03"
AUTHORITIES = timestamp_authorities_from_trusted_root((BUNDLE_V03 / "trusted_root.public-good.json").read_bytes(), "r")


def _timestamp_and_signature(path: Path) -> tuple[bytes, bytes]:
    """The bundle's one timestamp and the signature it is over (the message signature's, or the DSSE one's)."""
    bundle = json.loads(path.read_bytes())
    [holder] = bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    if "messageSignature" in bundle:
        signature = bundle["messageSignature"]["signature"]
    else:
        signature = bundle["dsseEnvelope"]["signatures"][0]["sig"]
    return base64.b64decode(holder["signedTimestamp"]), base64.b64decode(signature)


REAL = {
    "key-signed": BUNDLE_V03 / "key-signed" / "bundle.sigstore.json",
    "cosign-sign-image-v3": BUNDLE_V03 / "cosign-sign-image-v3" / "kubewarden-controller-v1.34.0.bundle.pretty.json",
}


def test_the_public_good_root_has_one_timestamp_authority_valid_from_july_2025() -> None:
    [authority] = AUTHORITIES
    assert [c.subject.rfc4514_string() for c in authority.certificates] == [
        "CN=sigstore-tsa,O=sigstore.dev",
        "CN=sigstore-tsa-selfsigned,O=sigstore.dev",
    ]
    assert authority.valid_from == datetime(2025, 7, 4, tzinfo=UTC) and authority.valid_until is None


@pytest.mark.parametrize("name", sorted(REAL))
def test_a_real_timestamp_verifies_over_its_signature_and_nothing_else(name: str) -> None:
    timestamp, signature = _timestamp_and_signature(REAL[name])
    signed_at = verify_timestamp(timestamp, signature, AUTHORITIES, name)
    assert signed_at.tzinfo is not None and datetime(2025, 7, 4, tzinfo=UTC) < signed_at < datetime.now(UTC)

    with pytest.raises(VerificationError, match="does not verify"):
        verify_timestamp(timestamp, signature + b"x", AUTHORITIES, name)
    with pytest.raises(VerificationError, match="no timestamp authority is trusted"):
        verify_timestamp(timestamp, signature, [], name)
    later = [replace(a, valid_from=signed_at.replace(year=signed_at.year + 1)) for a in AUTHORITIES]
    with pytest.raises(VerificationError, match="outside the timestamp authority's validity period"):
        verify_timestamp(timestamp, signature, later, name)
    with pytest.raises(VerificationError, match="not a valid timestamp response"):
        verify_timestamp(b"\x30\x03\x02\x01\x00", signature, AUTHORITIES, name)


def test_the_kubewarden_signature_was_timestamped_when_rekor_logged_it() -> None:
    timestamp, signature = _timestamp_and_signature(REAL["cosign-sign-image-v3"])
    signed_at = verify_timestamp(timestamp, signature, AUTHORITIES, "kubewarden")
    assert signed_at == datetime(2026, 4, 9, 7, 23, 29, tzinfo=UTC)  # the log's integratedTime is 1775719409


def test_several_timestamps_bad_ones_reported_duplicates_and_floods_refused() -> None:
    timestamp, signature = _timestamp_and_signature(REAL["key-signed"])
    other, _ = _timestamp_and_signature(REAL["cosign-sign-image-v3"])  # valid, but over another signature
    results = verify_timestamps([timestamp, other], signature, AUTHORITIES, "w")
    assert len(results.times) == 1 and len(results.problems) == 1 and "does not verify" in results.problems[0]
    with pytest.raises(VerificationError, match="the same RFC 3161 timestamp twice"):
        verify_timestamps([timestamp, timestamp], signature, AUTHORITIES, "w")
    with pytest.raises(VerificationError, match=f"at most {MAX_TIMESTAMPS}"):
        verify_timestamps([bytes([n]) for n in range(MAX_TIMESTAMPS + 1)], signature, AUTHORITIES, "w")
