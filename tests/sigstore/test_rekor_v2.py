"""Rekor v2 entries (hashedrekord 0.0.2: no SET, no integratedTime) on the real staging bundle, offline, and the
ways it must fail: a checkpoint by another key, a proof for another leaf, a timestamp over another signature
or none, another artifact."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from pipeline.cosign.certificate import IdentityPolicy
from pipeline.cosign.trust import (
    ct_log_keys_from_trusted_root,
    fulcio_certificates_from_trusted_root,
    rekor_keys_from_trusted_root,
    timestamp_authorities_from_trusted_root,
)
from pipeline.cosign.verify import KeylessTrust, VerificationPolicy
from pipeline.errors import VerificationError
from pipeline.sigstore.bundle import SigstoreBundle, parse_sigstore_bundle
from pipeline.sigstore.rekor_v2 import c2sp_key_id
from pipeline.sigstore.verify import verify_bundle_for_artifact
from tests.sigstore.sigstore_js import sigstore_js_verify

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "sigstore-rekor-v2"
ARTIFACT = VECTORS / "staging-rekor-v2.txt"
BUNDLE = VECTORS / "staging-rekor-v2.txt.sigstore.json"
ROOT = VECTORS / "staging-trusted_root.json"
KEY_SIGNED = Path(__file__).resolve().parents[1] / "vectors" / "cosign" / "bundle-v03" / "key-signed"


@pytest.fixture(scope="module")
def policy() -> VerificationPolicy:
    root = ROOT.read_bytes()
    roots, intermediates = fulcio_certificates_from_trusted_root(root, "root")
    identity = IdentityPolicy(identity="jku@goto.fi", issuer="https://github.com/login/oauth")
    ct_logs = tuple(ct_log_keys_from_trusted_root(root, "root"))
    trust = KeylessTrust(identity, tuple(roots), tuple(intermediates), ct_logs)
    authorities = tuple(timestamp_authorities_from_trusted_root(root, "root"))
    rekor_keys = tuple(rekor_keys_from_trusted_root(root, "root"))
    return VerificationPolicy(None, trust, rekor_keys, timestamp_authorities=authorities)


def _bundle() -> SigstoreBundle:
    return parse_sigstore_bundle(BUNDLE.read_bytes(), BUNDLE.name)


def _with_entry(bundle: SigstoreBundle, **changes: Any) -> SigstoreBundle:
    material = bundle.verification_material
    entry = replace(material.tlog_entries[0], **changes)
    return replace(bundle, verification_material=replace(material, tlog_entries=(entry,)))


def _with_proof(bundle: SigstoreBundle, **changes: Any) -> SigstoreBundle:
    proof = bundle.verification_material.tlog_entries[0].inclusion_proof
    assert proof is not None
    return _with_entry(bundle, inclusion_proof=replace(proof, **changes))


def _reject(bundle: SigstoreBundle, policy: VerificationPolicy, reason: str, artifact: bytes | None = None) -> None:
    with pytest.raises(VerificationError, match=reason):
        verify_bundle_for_artifact(bundle, artifact or ARTIFACT.read_bytes(), policy, BUNDLE.name)


def test_the_real_staging_rekor_v2_bundle_verifies_offline(policy: VerificationPolicy) -> None:
    result = verify_bundle_for_artifact(_bundle(), ARTIFACT.read_bytes(), policy, BUNDLE.name)
    assert result.signer == "jku@goto.fi" and result.integrated_time is None and result.log_index == 645
    assert "the hashedrekord 0.0.2 (Rekor v2) log entry records this artifact, signature and signer" in result.checks
    assert any("RFC 3161 timestamp(s) over the signature verified" in c for c in result.checks)


def test_the_logid_is_the_c2sp_key_hash_of_the_shard_key() -> None:
    entry = _bundle().verification_material.tlog_entries[0]
    keys = rekor_keys_from_trusted_root(ROOT.read_bytes(), "root")
    assert any(c2sp_key_id("log2025-alpha1.rekor.sigstage.dev", key) == entry.log_id for key in keys)


def test_a_checkpoint_signed_by_another_key_is_refused(policy: VerificationPolicy) -> None:
    bundle = _bundle()
    proof = bundle.verification_material.tlog_entries[0].inclusion_proof
    assert proof is not None and proof.checkpoint is not None
    note = proof.checkpoint[: proof.checkpoint.index("\n\n") + 1]
    other = ed25519.Ed25519PrivateKey.generate()
    name = "log2025-alpha1.rekor.sigstage.dev"
    hint = c2sp_key_id(name, other.public_key())[:4]
    forged = note + f"\n\u2014 {name} " + base64.b64encode(hint + other.sign(note.encode())).decode() + "\n"
    trusting_both = replace(policy, rekor_keys=(*policy.rekor_keys, other.public_key()))
    _reject(_with_proof(bundle, checkpoint=forged), trusting_both, "checkpoint is signed by none of the trusted")


def test_an_entry_of_an_untrusted_log_is_refused(policy: VerificationPolicy) -> None:
    _reject(_with_entry(_bundle(), log_id=b"\x01" * 32), policy, "signed by none of the trusted Rekor keys")


def test_an_inclusion_proof_for_another_leaf_is_refused(policy: VerificationPolicy) -> None:
    _reject(_with_proof(_bundle(), log_index=644), policy, "does not lead to the tree's root hash")


def test_a_v2_entry_needs_a_verified_timestamp(policy: VerificationPolicy) -> None:
    bundle = _bundle()
    material = bundle.verification_material
    none = replace(bundle, verification_material=replace(material, rfc3161_timestamps=()))
    _reject(none, policy, "no integratedTime and the bundle no RFC 3161 timestamp")
    # An integratedTime written into the v2 entry is signed by nothing (no SET): never a verified time.
    claimed = _with_entry(none, integrated_time=1749470258)
    _reject(claimed, policy, r"the Rekor v2 entry's integratedTime is signed by nothing")
    with_time = _with_entry(_bundle(), integrated_time=1)  # beside a real timestamp: the timestamp's time only
    assert verify_bundle_for_artifact(with_time, ARTIFACT.read_bytes(), policy, BUNDLE.name).integrated_time is None
    # A real timestamp, but over another signature (the managed-key bundle's): no verified time.
    other = parse_sigstore_bundle((KEY_SIGNED / "bundle.sigstore.json").read_bytes(), "other")
    swapped = replace(bundle, verification_material=replace(
        material, rfc3161_timestamps=other.verification_material.rfc3161_timestamps))  # fmt: skip
    _reject(swapped, policy, "RFC 3161 timestamp does not verify: its signature does not verify with the trusted"
                             " timestamp authority's certificate chain")  # another TSA's (said in words)


def test_a_v2_entry_for_another_artifact_is_refused(policy: VerificationPolicy) -> None:
    _reject(_bundle(), policy, "another artifact", artifact=b"another artifact\n")


def test_sigstore_js_agrees_on_the_staging_bundle() -> None:
    result = sigstore_js_verify(BUNDLE, ROOT, artifact=ARTIFACT, identity="jku@goto.fi",
                                issuer="https://github.com/login/oauth")  # fmt: skip
    assert result["ok"], result


def test_verify_blob_takes_the_staging_bundle_with_its_trusted_root(cli: Any) -> None:
    args = ["verify-blob", str(ARTIFACT), "--bundle", str(BUNDLE), "--certificate-identity", "jku@goto.fi",
            "--certificate-oidc-issuer", "https://github.com/login/oauth"]  # fmt: skip
    ok = cli(*args, "--trusted-root", str(ROOT), "--json")
    assert ok.exit_code == 0, ok.stderr
    # The public-good root trusts neither the staging shard nor its TSA: refused, with the reason.
    refused = cli(*args)
    assert refused.exit_code == 10
    assert refused.stderr.startswith("error: ") and str(BUNDLE) in refused.stderr.splitlines()[0]
