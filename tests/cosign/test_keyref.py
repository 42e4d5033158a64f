"""``pkcs11:`` and ``awskms://`` key references (pure parsing; the PIN never shows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cosign.keyref import AwsKmsUri, Pkcs11Uri, describe, is_key_uri, parse_key_ref
from pipeline.errors import ExitCode, KeyReferenceError
from pipeline.secret import Secret

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def test_a_key_file_or_env_reference_is_not_a_uri() -> None:
    assert parse_key_ref("cosign.key", {}) is None
    assert parse_key_ref("env://KEY", {}) is None
    assert not is_key_uri("./pkcs11:odd-file-name")
    assert is_key_uri("pkcs11:object=x") and is_key_uri("awskms:///alias/x")


def test_pkcs11_uri_with_every_attribute() -> None:
    uri = parse_key_ref(
        f"pkcs11:token=My%20Token;serial=abc;slot-id=3;object=sign%2Dkey;id=%01%02;type=private"
        f"?module-path={MODULE}&pin-value=12%2534",
        {},
    )
    assert uri == Pkcs11Uri(MODULE, "My Token", "abc", 3, "sign-key", b"\x01\x02", pin_origin="pin-value")
    assert isinstance(uri, Pkcs11Uri) and uri.pin == Secret("12%34")


def test_pin_never_in_repr_or_redacted_form() -> None:
    uri = parse_key_ref(f"pkcs11:token=t;object=k?module-path={MODULE}&pin-value=s3cr3t-pin", {})
    assert isinstance(uri, Pkcs11Uri)
    assert "s3cr3t" not in repr(uri) and "s3cr3t" not in uri.redacted() and "s3cr3t" not in str(uri)
    assert uri.redacted() == f"pkcs11:token=t;object=k?module-path={MODULE}"
    assert describe("pkcs11:token=t;object=k?pin-value=s3cr3t-pin") == "pkcs11:token=t;object=k"


def test_environment_defaults_module_and_pin() -> None:
    uri = parse_key_ref("pkcs11:token=t;object=k", {"COSIGN_PKCS11_MODULE_PATH": MODULE, "COSIGN_PKCS11_PIN": "99"})
    assert isinstance(uri, Pkcs11Uri)
    assert uri.module_path == MODULE and uri.pin == Secret("99") and uri.pin_origin == "COSIGN_PKCS11_PIN"
    # the URI's own values win over the environment
    uri = parse_key_ref("pkcs11:token=t;object=k?module-path=/other.so&pin-value=1", {"COSIGN_PKCS11_PIN": "99"})
    assert isinstance(uri, Pkcs11Uri) and uri.module_path == "/other.so" and uri.pin == Secret("1")


def test_pin_source_file(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("2468\n")
    uri = parse_key_ref(f"pkcs11:object=k?pin-source={pin_file}", {})
    assert isinstance(uri, Pkcs11Uri) and uri.pin == Secret("2468") and uri.pin_origin == f"pin-source {pin_file}"
    with pytest.raises(KeyReferenceError, match="cannot read the pin-source file"):
        parse_key_ref(f"pkcs11:object=k?pin-source={tmp_path / 'missing'}", {})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pkcs11:token=t", "names no key"),
        ("pkcs11:object=k;colour=red", "unknown pkcs11 URI attribute 'colour'"),
        ("pkcs11:object=k;object=j", "given twice"),
        ("pkcs11:object", "has no value"),
        ("pkcs11:object=k%zz", "bad percent-encoding"),
        ("pkcs11:object=k;slot-id=x", "slot-id is not a number"),
        ("pkcs11:object=k;type=weird", "unknown pkcs11 object type"),
        ("pkcs11:object=k?pin-value=1&pin-source=/f", "both pin-value and pin-source"),
        ("awskms://", "awskms:///KEY"),
        ("awskms:///", "awskms:///KEY"),
        ("awskms://bad host/alias/x", r"not HOST\[:PORT\]"),
        ("awskms:///not a key", "not a key ID"),
    ],
)
def test_malformed_references_are_one_line_key_errors(spec: str, message: str) -> None:
    with pytest.raises(KeyReferenceError, match=message) as raised:
        parse_key_ref(spec, {})
    assert raised.value.exit_code == ExitCode.KEY


def test_malformed_uri_error_does_not_quote_the_pin() -> None:
    with pytest.raises(KeyReferenceError) as raised:
        parse_key_ref("pkcs11:object=k;bogus=1?pin-value=s3cr3t-pin", {})
    assert "s3cr3t" not in str(raised.value)


@pytest.mark.parametrize(
    ("spec", "expected", "region"),
    [
        ("awskms:///alias/release", AwsKmsUri("alias/release"), None),
        ("awskms:///1234abcd-12ab-34cd-56ef-1234567890ab", AwsKmsUri("1234abcd-12ab-34cd-56ef-1234567890ab"), None),
        (
            "awskms:///arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            AwsKmsUri("arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
            "eu-west-1",
        ),
        ("awskms://localhost:4566/alias/x", AwsKmsUri("alias/x", "localhost:4566"), None),
        (
            "awskms://kms.example:443/arn:aws:kms:us-east-2:111122223333:alias/x",
            AwsKmsUri("arn:aws:kms:us-east-2:111122223333:alias/x", "kms.example:443"),
            "us-east-2",
        ),
    ],
)
def test_awskms_forms(spec: str, expected: AwsKmsUri, region: str | None) -> None:
    uri = parse_key_ref(spec, {})
    assert uri == expected
    assert isinstance(uri, AwsKmsUri) and uri.region == region and uri.redacted() == spec


def test_awskms_endpoint_url_loopback_is_plain_http_else_https() -> None:
    assert AwsKmsUri("alias/x", "127.0.0.1:4566").endpoint_url == "http://127.0.0.1:4566"
    assert AwsKmsUri("alias/x", "localhost:4566").endpoint_url == "http://localhost:4566"
    assert AwsKmsUri("alias/x", "kms.example:443").endpoint_url == "https://kms.example:443"
    assert AwsKmsUri("alias/x").endpoint_url is None
    assert AwsKmsUri("alias/x").is_alias and not AwsKmsUri("mrk-1234").is_alias
