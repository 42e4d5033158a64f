"""The AWS KMS key against moto's KMS server (a real HTTP endpoint on 127.0.0.1), with a recording stand-in
in front of it for the requests we send and the faults we are answered.

moto 5.2.5 signs a ``MessageType: DIGEST`` request by hashing the digest again, so the DIGEST path (blobs
over 4,096 bytes) is checked by the request it sends, field by field, never by moto's signature."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pipeline.cosign.keyref import AwsKmsUri, parse_awskms
from pipeline.cosign.keys import signature_verifies
from pipeline.errors import (
    ConflictError,
    ExitCode,
    KeyNotFoundError,
    KeyReferenceError,
    KeyServiceAuthError,
    KeyServiceError,
    ReleaseVectorError,
    UnsupportedKeyError,
)
from pipeline.signatures.awskms import RAW_LIMIT, AwsKmsKey, create_kms_key
from pipeline.signatures.keystores import open_key
from tests.keystore_fixtures import AWS_ENV, Kms, KmsStandIn, kms_error, kms_targets
from tests.registry_fixtures import free_port

FAST = (0.01, 0.01, 0.01, 0.01)
PAYLOAD = b'{"critical":{"identity":{"docker-reference":"r/x"}},"optional":null}'


@pytest.fixture
def stand_in(kms: Kms) -> Iterator[KmsStandIn]:
    with KmsStandIn(kms.url) as server:
        yield server


def _open(uri: str) -> AwsKmsKey:
    return AwsKmsKey.open(parse_awskms(uri), {}, delays=FAST)


def _sign_requests(server: KmsStandIn) -> list[dict[str, str]]:
    return [json.loads(r.body) for r in server.requests if kms_targets(r) == "TrentService.Sign"]


@pytest.mark.parametrize(("name", "algorithm"), [("p256", "ECDSA_SHA_256"), ("p384", "ECDSA_SHA_384"),
                                                  ("rsa", "RSASSA_PKCS1_V1_5_SHA_256")])  # fmt: skip
def test_raw_signatures_verify_like_a_key_files(kms: Kms, aws_env: dict[str, str], name: str, algorithm: str) -> None:
    key = _open(kms.uri(f"alias/rv-{name}"))
    assert key.algorithm == algorithm
    signature = key.sign(PAYLOAD)
    assert signature_verifies(key.public_key, PAYLOAD, signature)
    assert not signature_verifies(key.public_key, PAYLOAD + b" ", signature)
    assert isinstance(key.public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)


def test_key_by_arn_and_endpoint_from_the_environment(kms: Kms, aws_env: dict[str, str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("AWS_ENDPOINT_URL", kms.url)
    key = open_key(f"awskms:///{kms.keys['p256']}", dict(aws_env, AWS_ENDPOINT_URL=kms.url))
    assert signature_verifies(key.public_key, PAYLOAD, key.sign(PAYLOAD))
    key.close()


def test_requests_raw_up_to_4096_bytes_and_digest_beyond(stand_in: KmsStandIn, kms: Kms,
                                                         aws_env: dict[str, str]) -> None:  # fmt: skip
    key = _open(kms.uri("alias/rv-p384", host=stand_in.host))
    small, edge, large = b"s" * 100, b"e" * RAW_LIMIT, b"l" * (RAW_LIMIT + 1)
    key.sign(small)
    key.sign(edge)
    key.sign(large)  # moto's signature of a DIGEST is wrong (hashed twice): judged by the request only
    requests = _sign_requests(stand_in)
    assert [r["MessageType"] for r in requests] == ["RAW", "RAW", "DIGEST"]
    assert base64.b64decode(requests[0]["Message"]) == small
    assert base64.b64decode(requests[1]["Message"]) == edge
    assert requests[2] == {
        "KeyId": key.key_arn,
        "Message": base64.b64encode(hashlib.sha384(large).digest()).decode(),
        "MessageType": "DIGEST",
        "SigningAlgorithm": "ECDSA_SHA_384",
    }
    assert key.key_arn.endswith(kms.keys["p384"].rsplit("/", 1)[1])  # the resolved key, not the alias


def test_public_key_is_fetched_once_per_run(stand_in: KmsStandIn, kms: Kms, aws_env: dict[str, str]) -> None:
    key = _open(kms.uri("alias/rv-p256", host=stand_in.host))
    threads = [threading.Thread(target=key.sign, args=(f"{n}".encode(),)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    targets = [kms_targets(r) for r in stand_in.requests]
    assert targets.count("TrentService.GetPublicKey") == 1 and targets.count("TrentService.Sign") == 8


def _fault(uri: str) -> ReleaseVectorError:
    with pytest.raises(ReleaseVectorError) as raised:
        _open(uri).sign(PAYLOAD)
    text = str(raised.value)
    assert "\n" not in text
    assert AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in text and AWS_ENV["AWS_ACCESS_KEY_ID"] not in text
    return raised.value


def test_access_denied_is_exit_4(kms: Kms, aws_env: dict[str, str]) -> None:
    with KmsStandIn(kms.url, [kms_error("AccessDeniedException", "User is not authorized")]) as server:
        error = _fault(kms.uri("alias/rv-p256", host=server.host))
    assert isinstance(error, KeyServiceAuthError) and error.exit_code == ExitCode.AUTH
    assert "AccessDeniedException" in str(error)


def test_throttling_is_tried_again_with_backoff(kms: Kms, aws_env: dict[str, str]) -> None:
    faults = [kms_error("ThrottlingException", "Rate exceeded"), kms_error("ThrottlingException", "Rate exceeded")]
    with KmsStandIn(kms.url, faults) as server:
        key = _open(kms.uri("alias/rv-p256", host=server.host))
        assert signature_verifies(key.public_key, PAYLOAD, key.sign(PAYLOAD))
        assert [kms_targets(r) for r in server.requests].count("TrentService.GetPublicKey") == 3


def test_throttling_that_does_not_end_is_exit_5(kms: Kms, aws_env: dict[str, str]) -> None:
    with KmsStandIn(kms.url, [kms_error("ThrottlingException")] * 5) as server:
        error = _fault(kms.uri("alias/rv-p256", host=server.host))
        assert len(server.requests) == 5
    assert isinstance(error, KeyServiceError) and error.exit_code == ExitCode.REGISTRY
    assert "after 5 tries: ThrottlingException" in str(error)


def test_unreachable_endpoint_is_exit_5(aws_env: dict[str, str]) -> None:
    error = _fault(f"awskms://127.0.0.1:{free_port()}/alias/rv-p256")
    assert isinstance(error, KeyServiceError) and "KMS is unreachable" in str(error)


def test_no_credentials_is_exit_4(kms: Kms, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata look-up off this machine
    error = _fault(kms.uri("alias/rv-p256"))
    assert isinstance(error, KeyServiceAuthError) and "no AWS credentials" in str(error)


def test_region_from_aws_region_alone(kms: Kms, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    key = AwsKmsKey.open(parse_awskms(kms.uri("alias/rv-p256")), {"AWS_REGION": "us-east-1"}, delays=FAST)
    assert signature_verifies(key.public_key, PAYLOAD, key.sign(PAYLOAD))


def test_no_region_for_an_alias(kms: Kms, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    error = _fault(kms.uri("alias/rv-p256"))
    assert isinstance(error, KeyReferenceError) and error.hint and "ARN" in error.hint


@pytest.mark.parametrize(("key", "kind", "text"), [
    ("alias/no-such-key", KeyNotFoundError, "no such key"),
    ("alias/rv-aes", UnsupportedKeyError, "ENCRYPT_DECRYPT"),
    ("alias/rv-k256", UnsupportedKeyError, "secp256k1"),
])  # fmt: skip
def test_key_faults_are_exit_6(kms: Kms, aws_env: dict[str, str], key: str, kind: type, text: str) -> None:
    error = _fault(kms.uri(key))
    assert isinstance(error, kind) and error.exit_code == ExitCode.KEY and text in str(error)


def test_create_key_with_alias_then_refuse_it_again(kms: Kms, aws_env: dict[str, str]) -> None:
    uri = parse_awskms(kms.uri("alias/rv-made"))
    key = create_kms_key(uri, {}, delays=FAST)
    assert isinstance(key.public_key, ec.EllipticCurvePublicKey) and key.public_key.curve.name == "secp256r1"
    assert signature_verifies(key.public_key, PAYLOAD, key.sign(PAYLOAD))
    with pytest.raises(ConflictError):
        create_kms_key(uri, {}, delays=FAST)
    with pytest.raises(KeyReferenceError, match="name an alias"):
        create_kms_key(AwsKmsUri(kms.keys["p256"], kms.host), {}, delays=FAST)
