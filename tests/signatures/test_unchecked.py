"""An image whose signatures could not be read (outage, refusal) is unchecked, not failed (issue 18)."""

from __future__ import annotations

from typing import Any, NoReturn

from pipeline.cosign.keys import generate_key_pair, load_private_key
from pipeline.cosign.verify import VerificationPolicy
from pipeline.errors import AuthError, NotFoundError, RegistryError, ReleaseVectorError, is_unchecked
from pipeline.oci.reference import parse_reference
from pipeline.secret import Secret
from pipeline.signatures.verify import verify_image

DIGEST = "sha256:" + "ab" * 32
IMAGE = parse_reference(f"registry.test/app@{DIGEST}")


class FailingRegistry:
    """Every request fails with ``error``."""

    def __init__(self, error: ReleaseVectorError) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def fail(*_args: object, **_kwargs: object) -> NoReturn:
            raise self.error

        return fail


def policy() -> VerificationPolicy:
    pair = generate_key_pair(Secret("pw"))
    key = load_private_key(pair.private_pem, Secret("pw"), "test")
    return VerificationPolicy(public_key=key.public_key, keyless=None, rekor_keys=(), ignore_tlog=True)


def test_an_unreachable_registry_leaves_the_image_unchecked_with_one_reason() -> None:
    outage = RegistryError("cannot connect to the registry at https://registry.test/v2/", where="registry.test/app")
    result = verify_image(FailingRegistry(outage), IMAGE, policy())  # type: ignore[arg-type]
    assert not result.ok
    assert result.unchecked is outage
    assert result.reason().count("cannot connect") == 1


def test_refused_credentials_leave_it_unchecked_too() -> None:
    refused = AuthError("authentication refused", where="registry.test")
    result = verify_image(FailingRegistry(refused), IMAGE, policy())  # type: ignore[arg-type]
    assert result.unchecked is refused


def test_no_signature_is_a_verdict_not_an_outage() -> None:
    result = verify_image(FailingRegistry(NotFoundError("not found")), IMAGE, policy())  # type: ignore[arg-type]
    assert not result.ok and result.unchecked is None


def test_what_counts_as_unchecked() -> None:
    assert is_unchecked(RegistryError("timeout"))
    assert is_unchecked(AuthError("refused"))
    assert not is_unchecked(NotFoundError("404"))
    assert not is_unchecked(ReleaseVectorError("bad"))
