"""pipeline/signatures/verify.py: the requests one image's verification makes (through a counting proxy)."""

from __future__ import annotations

import pytest

from bench.latency_proxy import LatencyProxy
from pipeline.cosign.keys import SigningKey, generate_key_pair, load_private_key
from pipeline.cosign.verify import VerificationPolicy
from pipeline.oci.reference import parse_reference
from pipeline.secret import Secret
from pipeline.signatures.legacy import LegacyLayout
from pipeline.signatures.signers import KeySigner
from pipeline.signatures.target import SignatureTarget
from pipeline.signatures.verify import verify_image
from tests.oci.helpers import client, push_image
from tests.registry_fixtures import RegistryProcess


@pytest.fixture(scope="module")
def key() -> SigningKey:
    pair = generate_key_pair(Secret("pw"))
    return load_private_key(pair.private_pem, Secret("pw"), "test")


def test_one_valid_legacy_signature_is_enough_when_not_all_formats_are_wanted(
    plain_registry: RegistryProcess, key: SigningKey
) -> None:
    policy = VerificationPolicy(public_key=key.public_key, keyless=None, rekor_keys=(), ignore_tlog=True)
    with LatencyProxy(plain_registry.url, delay=0) as proxy, client() as registry:
        _, signed_digest = push_image(registry, f"{proxy.host}/verify/signed:v1", b"signed image")
        _, unsigned_digest = push_image(registry, f"{proxy.host}/verify/unsigned:v1", b"unsigned image")
        signed = parse_reference(f"{proxy.host}/verify/signed@{signed_digest}")
        target = SignatureTarget(signed, signed_digest)
        assert LegacyLayout(registry).ensure(target, KeySigner.of(key), None) == "signed"

        proxy.reset()
        quick = verify_image(registry, signed, policy, all_formats=False)
        assert quick.ok and quick.formats == ("legacy",)
        # One GET of the .sig manifest (a 404 would mean "none": no HEAD first), one of the payload.
        assert proxy.counts() == {"GET blob": 1, "GET manifest": 1}

        proxy.reset()
        full = verify_image(registry, signed, policy)
        assert full.ok and full.found == ("legacy",)
        assert proxy.counts().get("GET referrers", 0) == 1, "all formats: the v3 bundles are looked for too"

        unsigned = parse_reference(f"{proxy.host}/verify/unsigned@{unsigned_digest}")
        proxy.reset()
        missing = verify_image(registry, unsigned, policy, all_formats=False)
        assert not missing.ok and "no signatures found" in missing.reason()
        # No valid legacy signature: v3 is looked for, at the fallback tag (the client remembers that this
        # registry has no referrers API: it asked once above).
        assert proxy.counts() == {"GET manifest": 2}, "no valid legacy signature: v3 is looked for"
