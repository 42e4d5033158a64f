"""A private key in AWS KMS (``awskms://`` URIs), through boto3.

Region and credentials come from the standard AWS chain (environment, profile, instance role); the endpoint
from the URI (``awskms://HOST:PORT/KEY``) or ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_KMS`` (botocore reads
those); a key ARN also names its region (as cosign takes it). The public key comes from ``GetPublicKey`` once
per key per run; signing uses the key's resolved ARN, so an alias moved during a run does not switch keys.

What is signed: a payload of at most :data:`RAW_LIMIT` bytes goes as ``MessageType: RAW`` (every image
payload does), KMS hashing it with the key's algorithm; a larger blob is hashed here and sent as ``DIGEST``
(KMS takes RAW messages only up to 4,096 bytes). Either way the signature is what a key file makes: ECDSA
P-256/SHA-256 or P-384/SHA-384 (DER, as KMS returns it), RSA PKCS#1 v1.5/SHA-256.

Faults: throttling and connection failures are tried again with backoff (our loop, botocore's retries off,
so the total wait is bounded and known), then exit 5; access denied or no credentials exit 4; no such key,
a key that cannot sign, or one of a type cosign does not take exit 6. Messages carry the KMS error code
and the key, never credentials. Concurrency: a boto3 client is thread-safe; calls run in parallel, up to
the client's connection pool (:data:`POOL`).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import boto3
import botocore.config
import botocore.exceptions
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from pipeline.cosign.keyref import AwsKmsUri
from pipeline.cosign.keys import KeptKey, PublicKey, check_key_type, signing_hash
from pipeline.errors import (
    ConflictError,
    KeyNotFoundError,
    KeyReferenceError,
    KeyServiceAuthError,
    KeyServiceError,
    ReleaseVectorError,
    UnsupportedKeyError,
)

RAW_LIMIT: Final = 4096
POOL: Final = 16
RETRY_DELAYS: Final = (0.2, 0.5, 1.0, 2.0)  # seconds before each further try (plus up to 50 % jitter)
TIMEOUT: Final = 10.0
# The algorithm cosign signs with on each kind of key (the hash signing_hash() picks).
ALGORITHMS: Final = {"secp256r1": "ECDSA_SHA_256", "secp384r1": "ECDSA_SHA_384", "secp521r1": "ECDSA_SHA_512"}
RSA_ALGORITHM: Final = "RSASSA_PKCS1_V1_5_SHA_256"
AUTH_CODES: Final = frozenset({"AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
                               "ExpiredTokenException", "IncompleteSignature", "InvalidClientTokenId",
                               "MissingAuthenticationToken", "AccessDenied"})  # fmt: skip
RETRY_CODES: Final = frozenset({"ThrottlingException", "Throttling", "RequestLimitExceeded", "LimitExceededException",
                                "KMSInternalException", "DependencyTimeoutException", "ServiceUnavailable",
                                "InternalFailure"})  # fmt: skip
KEY_CODES: Final = frozenset({"DisabledException", "KMSInvalidStateException", "InvalidKeyUsageException",
                              "UnsupportedOperationException", "KeyUnavailableException"})  # fmt: skip
NETWORK_ERRORS: Final = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


def make_client(uri: AwsKmsUri, env: Mapping[str, str]) -> Any:
    """A KMS client: the URI's endpoint or the environment's, the ARN's region or the chain's."""
    config = botocore.config.Config(
        retries={"total_max_attempts": 1},  # our loop retries (see the module doc)
        connect_timeout=TIMEOUT,
        read_timeout=TIMEOUT,
        max_pool_connections=POOL,
    )
    try:
        return boto3.session.Session().client(
            # botocore reads AWS_DEFAULT_REGION and the profile, not AWS_REGION (the Go SDK's, so cosign's)
            "kms", region_name=uri.region or env.get("AWS_REGION") or None, endpoint_url=uri.endpoint_url, config=config
        )
    except botocore.exceptions.NoRegionError:
        raise KeyReferenceError(
            "no AWS region for the KMS key", where=uri.redacted(), hint="set AWS_REGION, or name the key by its ARN"
        ) from None


def service_error(exc: Exception, where: str) -> ReleaseVectorError:
    """The one-line error for a botocore failure (its code, never a credential)."""
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return KeyServiceAuthError("no AWS credentials for KMS", where=where,
                                   hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE")  # fmt: skip
    if isinstance(exc, NETWORK_ERRORS):
        return KeyServiceError(f"KMS is unreachable ({type(exc).__name__})", where=where)
    if isinstance(exc, botocore.exceptions.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "unknown"))
        if code in AUTH_CODES:
            return KeyServiceAuthError(f"KMS refused the request: {code}", where=where)
        if code == "NotFoundException":
            return KeyNotFoundError("KMS has no such key", where=where)
        if code in KEY_CODES:
            return UnsupportedKeyError(f"KMS cannot sign with this key: {code}", where=where)
        if code in RETRY_CODES:
            return KeyServiceError(f"KMS kept failing after {len(RETRY_DELAYS) + 1} tries: {code}", where=where)
        return KeyServiceError(f"KMS failed: {code}", where=where)
    return KeyServiceError(f"KMS failed: {type(exc).__name__}", where=where)


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, NETWORK_ERRORS):
        return True
    return isinstance(exc, botocore.exceptions.ClientError) and (
        str(exc.response.get("Error", {}).get("Code")) in RETRY_CODES
    )


def call(
    operation: Callable[..., dict[str, Any]],
    where: str,
    *,
    delays: Sequence[float] = RETRY_DELAYS,
    sleep: Callable[[float], None] = time.sleep,
    **arguments: Any,
) -> dict[str, Any]:
    """One KMS call, tried again after throttling or a connection failure (backoff with jitter)."""
    for attempt in range(len(delays) + 1):
        try:
            return operation(**arguments)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            if attempt == len(delays) or not _retryable(exc):
                raise service_error(exc, where) from None
            sleep(delays[attempt] * (1 + random.random() / 2))  # noqa: S311 (jitter, not a secret)
    raise AssertionError("unreachable")  # pragma: no cover


def algorithm_for(key: PublicKey, where: str) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ALGORITHMS[key.curve.name]
    if isinstance(key, rsa.RSAPublicKey):
        return RSA_ALGORITHM
    raise UnsupportedKeyError("unsupported KMS key type", where=where)  # pragma: no cover - checked on load


class AwsKmsKey(KeptKey):
    """A :class:`~pipeline.cosign.keys.PrivateKeyHandle` in KMS. ``repr`` names the key only."""

    def __init__(self, uri: AwsKmsUri, client: Any, key_arn: str, public_key: PublicKey,
                 *, delays: Sequence[float] = RETRY_DELAYS) -> None:  # fmt: skip
        self._uri = uri
        self._client = client
        self.key_arn = key_arn
        self._public_key = public_key
        self.algorithm = algorithm_for(public_key, uri.redacted())
        self._delays = tuple(delays)

    @classmethod
    def open(cls, uri: AwsKmsUri, env: Mapping[str, str], *, delays: Sequence[float] = RETRY_DELAYS) -> AwsKmsKey:
        where = uri.redacted()
        client = make_client(uri, env)
        answer = call(client.get_public_key, where, delays=delays, KeyId=uri.key_id)
        if answer.get("KeyUsage") != "SIGN_VERIFY":
            raise UnsupportedKeyError(f"the KMS key is for {answer.get('KeyUsage')}, not SIGN_VERIFY", where=where)
        try:
            public_key = load_der_public_key(answer["PublicKey"])
        except (KeyError, ValueError):
            raise UnsupportedKeyError("KMS returned a public key we cannot read", where=where) from None
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise UnsupportedKeyError(f"unsupported KMS key spec {answer.get('KeySpec')}", where=where)
        check_key_type(public_key, where)
        key = cls(uri, client, str(answer.get("KeyId") or uri.key_id), public_key, delays=delays)
        if key.algorithm not in answer.get("SigningAlgorithms", [key.algorithm]):
            raise UnsupportedKeyError(f"the KMS key does not sign with {key.algorithm}", where=where)
        return key

    def sign_request(self, data: bytes) -> dict[str, Any]:
        """The Sign request for ``data``: RAW up to :data:`RAW_LIMIT` bytes, else the DIGEST of it."""
        if len(data) <= RAW_LIMIT:
            message, message_type = data, "RAW"
        else:
            message, message_type = hashlib.new(signing_hash(self._public_key).name, data).digest(), "DIGEST"
        return {"KeyId": self.key_arn, "Message": message, "MessageType": message_type,
                "SigningAlgorithm": self.algorithm}  # fmt: skip

    def sign(self, data: bytes, *, pure_ed25519: bool = False) -> bytes:
        answer = call(self._client.sign, self.source, delays=self._delays, **self.sign_request(data))
        return bytes(answer["Signature"])

    def close(self) -> None:
        self._client.close()


KEY_SPEC: Final = "ECC_NIST_P256"


def create_kms_key(uri: AwsKmsUri, env: Mapping[str, str], *, delays: Sequence[float] = RETRY_DELAYS) -> AwsKmsKey:
    """A new ECDSA P-256 signing key and the URI's alias for it (as ``cosign generate-key-pair --kms``);
    refused when the alias names a key already or the URI names a key ID (KMS picks new keys' IDs)."""
    where = uri.redacted()
    if not uri.is_alias:
        raise KeyReferenceError("KMS picks a new key's ID: name an alias (awskms:///alias/NAME)", where=where)
    client = make_client(uri, env)
    try:
        client.describe_key(KeyId=uri.key_id)
    except botocore.exceptions.ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) != "NotFoundException":
            raise service_error(exc, where) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise service_error(exc, where) from None
    else:
        raise ConflictError("the alias names a key already (public-key --key prints it)", where=where)
    created = call(client.create_key, where, delays=delays, KeySpec=KEY_SPEC, KeyUsage="SIGN_VERIFY",
                   Description="release-vector signing key")  # fmt: skip
    alias = "alias/" + uri.key_id.split("alias/", 1)[1]
    call(client.create_alias, where, delays=delays, AliasName=alias, TargetKeyId=created["KeyMetadata"]["KeyId"])
    client.close()
    return AwsKmsKey.open(uri, env, delays=delays)
