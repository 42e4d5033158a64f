"""Digest helpers."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import InvalidInputError
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes


def test_compute_known_values() -> None:
    assert digests.compute(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    # the OCI empty descriptor's digest, as the image spec gives it
    assert digests.compute(mediatypes.OCI_EMPTY_DATA) == (
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    assert digests.compute(b"x", "sha512") == "sha512:" + hashlib.sha512(b"x").hexdigest()


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("sha256:" + "a" * 64, True),
        ("sha512:" + "0" * 128, True),
        ("sha256:" + "A" * 64, False),
        ("sha256:" + "a" * 63, False),
        ("sha256:" + "g" * 64, False),
        ("sha256" + "a" * 64, False),
        ("md5:" + "a" * 32, False),
        ("", False),
    ],
)
def test_is_valid(text: str, valid: bool) -> None:
    assert digests.is_valid(text) is valid


def test_validate_messages() -> None:
    with pytest.raises(InvalidInputError, match="unsupported digest algorithm 'md5'"):
        digests.validate("md5:" + "a" * 32)
    with pytest.raises(InvalidInputError, match="malformed digest") as info:
        digests.validate("sha256:zz", where="ghcr.io/a/b@sha256:zz")
    assert "ghcr.io/a/b@sha256:zz" in str(info.value)
    with pytest.raises(InvalidInputError):
        digests.compute(b"", "md5")


@given(st.binary(max_size=256))
def test_matches(data: bytes) -> None:
    digest = digests.compute(data)
    assert digests.matches(data, digest)
    assert not digests.matches(data + b"!", digest)
    assert digests.hex_of(digest) == hashlib.sha256(data).hexdigest()
    assert digests.algorithm_of(digest) == "sha256"
