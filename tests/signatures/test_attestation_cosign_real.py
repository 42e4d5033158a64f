"""Attestations cosign itself wrote, verified by us (issue 16 "Interop"): a ``.att`` layer from a real registry
and real Sigstore DSSE bundles as referrers (tests/vectors/cosign/attestations/README.md says where each
came from). Each is checked by the layer verifier and by ``verify-attestation`` against a local registry
serving it, and refused once changed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.cosign.certificate import IdentityPolicy
from pipeline.cosign.trust import (
    ct_log_keys_from_trusted_root,
    fulcio_certificates_from_trusted_root,
    rekor_keys_from_trusted_root,
)
from pipeline.cosign.verify import KeylessTrust, VerificationPolicy
from pipeline.errors import VerificationError
from pipeline.oci import mediatypes
from pipeline.oci.reference import parse_reference
from pipeline.signatures.att_legacy import verify_envelope_layer
from pipeline.signatures.attestation import attestation_tag
from pipeline.sigstore.bundle import COSIGN_ATTESTATION_PREDICATE_TYPE
from tests.conftest import COSIGN_VECTORS
from tests.oci.helpers import client as make_client
from tests.registry_fixtures import RegistryProcess

ATT = COSIGN_VECTORS / "attestations"
LAYER = ATT / "slsa-provenance-test.att-layer.json"
MANIFEST = ATT / "slsa-provenance-test.att-manifest.readme.json"
TRUSTED_ROOT = COSIGN_VECTORS / "bundle-v03" / "trusted_root.public-good.json"
SUBJECT = "sha256:3dbd76ff6dc789a8bfd7b3303b15dd6fbac052af442f830b2eb527ab26976cf3"
IDENTITY = ("https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
            "generator_container_slsa3.yml@refs/heads/main")  # fmt: skip
ISSUER = "https://token.actions.githubusercontent.com"
KEYLESS = ["--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER, "--trusted-root", str(TRUSTED_ROOT)]


def _policy(identity: str = IDENTITY) -> VerificationPolicy:
    root = TRUSTED_ROOT.read_bytes()
    roots, intermediates = fulcio_certificates_from_trusted_root(root, "root")
    trust = KeylessTrust(IdentityPolicy(identity=identity, issuer=ISSUER), tuple(roots), tuple(intermediates),
                         tuple(ct_log_keys_from_trusted_root(root, "root")))  # fmt: skip
    return VerificationPolicy(None, trust, tuple(rekor_keys_from_trusted_root(root, "root")))


def _annotations() -> dict[str, str]:
    layers = json.loads(MANIFEST.read_text())["layers"]
    assert len(layers) == 1
    return dict(layers[0]["annotations"])


def _changed_payload(blob: bytes) -> bytes:
    envelope = json.loads(blob)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["builder"]["id"] = "https://example.com/another-builder"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(envelope, separators=(",", ":")).encode()


def test_the_vector_is_the_layer_cosign_pushed_and_logged() -> None:
    """The layer bytes are provably cosign's: their sha256 is the layer digest in the registry manifest
    and the envelope hash its intoto 0.0.1 log entry records."""
    blob = LAYER.read_bytes()
    layer = json.loads(MANIFEST.read_text())["layers"][0]
    assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    assert (layer["size"], layer["digest"]) == (len(blob), "sha256:" + hashlib.sha256(blob).hexdigest())
    bundle = json.loads(layer["annotations"]["dev.sigstore.cosign/bundle"])
    body = json.loads(base64.b64decode(bundle["Payload"]["body"]))
    assert (body["kind"], body["apiVersion"]) == ("intoto", "0.0.1")
    assert body["spec"]["content"]["hash"]["value"] == hashlib.sha256(blob).hexdigest()


def test_the_layer_verifier_accepts_cosigns_att_layer() -> None:
    envelope, signature = verify_envelope_layer(LAYER.read_bytes(), _annotations(), _policy(), "real .att")
    statement = json.loads(envelope.payload)
    assert statement["subject"][0]["digest"]["sha256"] == SUBJECT.removeprefix("sha256:")
    assert statement["predicateType"] == "https://slsa.dev/provenance/v0.2"
    assert (signature.signer, signature.issuer) == (IDENTITY, ISSUER)
    assert (signature.integrated_time, signature.log_index) == (1678176390, 14849656)
    assert any("intoto log entry" in check for check in signature.checks)
    assert any("SCT" in check for check in signature.checks)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_changed_payload, "the DSSE signature does not verify"),
        # the same envelope, serialised otherwise: not the bytes the log entry records
        (lambda blob: json.dumps(json.loads(blob), indent=1).encode(), "the log entry belongs to another envelope"),
    ],
)
def test_the_layer_verifier_refuses_a_changed_att_layer(change: Any, reason: str) -> None:
    with pytest.raises(VerificationError, match=reason):
        verify_envelope_layer(change(LAYER.read_bytes()), _annotations(), _policy(), "changed .att")


def test_the_layer_verifier_refuses_another_identity_and_another_log_entry() -> None:
    with pytest.raises(VerificationError):
        verify_envelope_layer(LAYER.read_bytes(), _annotations(), _policy("someone@example.com"), "identity")
    other = json.loads((ATT / "cosign-attest-keyless.att-annotations.derived.json").read_text())
    swapped = dict(_annotations(), **{"dev.sigstore.cosign/bundle": other["dev.sigstore.cosign/bundle"]})
    with pytest.raises(VerificationError):
        verify_envelope_layer(LAYER.read_bytes(), swapped, _policy(), "swapped log entry")


# --- served from a registry, through verify-attestation -------------------------------------------------


def _serve_att(registry: RegistryProcess, repository: str, blob: bytes) -> str:
    """The ``.att`` manifest at ``sha256-<subject>.att``: cosign's layer (its blob and annotations exactly);
    the config blob is ours (the real one is not published; nothing signs it)."""
    ref = parse_reference(registry.ref(repository))
    config = json.dumps({"architecture": "", "created": "0001-01-01T00:00:00Z", "os": "",
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(blob).hexdigest()]},
                         "config": {}}, separators=(",", ":")).encode()  # fmt: skip
    with make_client() as client:
        config_digest = client.upload_blob(ref, config)
        layer_digest = client.upload_blob(ref, blob)
    manifest = {"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
                           "digest": config_digest},
                "layers": [{"mediaType": "application/vnd.dsse.envelope.v1+json", "size": len(blob),
                            "digest": layer_digest, "annotations": _annotations()}]}  # fmt: skip
    url = f"{registry.url}/v2/{repository}/manifests/{attestation_tag(SUBJECT)}"
    response = httpx.put(url, content=json.dumps(manifest).encode(), trust_env=False,
                         headers={"Content-Type": mediatypes.OCI_MANIFEST})  # fmt: skip
    response.raise_for_status()
    return f"{registry.ref(repository)}@{SUBJECT}"


def test_verify_attestation_accepts_cosigns_att_from_a_registry_and_refuses_it_changed(
    cli: Any, plain_registry: RegistryProcess
) -> None:
    image = _serve_att(plain_registry, "zlabjp/slsa-provenance-test", LAYER.read_bytes())
    done = cli("verify-attestation", image, "--type", "slsaprovenance", *KEYLESS)
    assert done.exit_code == 0, done.stderr
    statement = json.loads(done.stdout)
    assert statement["subject"] == [{"name": "ghcr.io/zlabjp/slsa-provenance-test",
                                     "digest": {"sha256": SUBJECT.removeprefix("sha256:")}}]  # fmt: skip
    assert "verified legacy attestation" in done.stderr

    other_type = cli("verify-attestation", image, "--type", "slsaprovenance1", *KEYLESS)
    assert other_type.exit_code == 10
    assert "not https://slsa.dev/provenance/v1" in other_type.stderr

    changed = _serve_att(plain_registry, "zlabjp/changed", _changed_payload(LAYER.read_bytes()))
    refused = cli("verify-attestation", changed, "--type", "slsaprovenance", *KEYLESS)
    assert refused.exit_code == 10, refused.stderr
    assert "the DSSE signature does not verify" in refused.stderr
    assert refused.stdout == ""


# --- a real cosign v3 DSSE bundle as a referrer -------------------------------------------------------------

ATTEST_KEYLESS = COSIGN_VECTORS / "bundle-v03" / "cosign-attest-keyless"
EMPTY_CONFIG = b'{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers","diff_ids":null},"config":{}}'  # noqa: E501
CODY = ["--certificate-identity", "cody@soyland.com", "--certificate-oidc-issuer", "https://github.com/login/oauth",
        "--trusted-root", str(TRUSTED_ROOT)]  # fmt: skip


def _referrer(registry: RegistryProcess, repository: str, bundle: bytes) -> str:
    from pipeline.signatures.referrer import attach_bundle

    manifest = (ATTEST_KEYLESS / "empty-image.manifest.derived.json").read_bytes()
    ref = parse_reference(registry.ref(repository))
    with make_client() as client:
        client.upload_blob(ref, EMPTY_CONFIG)
        digest = client.put_manifest(ref, None, manifest, "application/vnd.docker.distribution.manifest.v2+json")
        subject = client.head_manifest(ref.repo.digest(digest))
        assert subject is not None
        attach_bundle(client, ref.repo, subject, bundle, created="2025-02-28T19:18:11Z",
                      predicate_type=COSIGN_ATTESTATION_PREDICATE_TYPE)  # fmt: skip
    return f"{registry.ref(repository)}@{digest}"


def _changed_bundle(path: Path) -> bytes:
    bundle = json.loads(path.read_text())
    envelope = bundle["dsseEnvelope"]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"] = {"changed": True}
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(bundle).encode()


def test_verify_attestation_accepts_cosigns_v3_bundle_referrer_and_refuses_it_changed(
    cli: Any, plain_registry: RegistryProcess
) -> None:
    bundle_path = ATTEST_KEYLESS / "oci-attestation.sigstore.json"
    image = _referrer(plain_registry, "cosign/attest-v3", bundle_path.read_bytes())
    done = cli("verify-attestation", image, "--type", "custom", *CODY)
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["predicateType"] == COSIGN_ATTESTATION_PREDICATE_TYPE
    assert "verified v3 attestation" in done.stderr

    changed = _referrer(plain_registry, "cosign/attest-v3-changed", _changed_bundle(bundle_path))
    refused = cli("verify-attestation", changed, "--type", "custom", *CODY)
    assert refused.exit_code == 10, refused.stderr
    assert "DSSE signature does not verify" in refused.stderr


# --- sigstore-python's DSSE bundle (Rekor v2: a hashedrekord 0.0.2 entry over the PAE) --------------------

REKOR_V2 = COSIGN_VECTORS.parent / "sigstore-rekor-v2"
PY_DSSE = REKOR_V2 / "a.dsse.staging-rekor-v2.txt.sigstore.json"
PY_SUBJECT = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
BEACON = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
          ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main")  # fmt: skip
STAGING = ["--certificate-identity", BEACON, "--certificate-oidc-issuer", ISSUER,
           "--trusted-root", str(REKOR_V2 / "staging-trusted_root.json")]  # fmt: skip


def _changed_signature(path: Path) -> bytes:
    """Another (valid base64) signature: neither the certificate's key nor the log entry agrees."""
    bundle = json.loads(path.read_text())
    signature = bundle["dsseEnvelope"]["signatures"][0]
    raw = bytearray(base64.b64decode(signature["sig"]))
    raw[-1] ^= 1
    signature["sig"] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(bundle).encode()


def test_verify_blob_attestation_accepts_sigstore_pythons_rekor_v2_dsse_bundle(cli: Any, tmp_path: Path) -> None:
    by_digest = ["--digest", PY_SUBJECT, "--digest-alg", "sha256", "--type", "slsaprovenance1", *STAGING]
    done = cli("verify-blob-attestation", *by_digest, "--bundle", str(PY_DSSE))
    assert done.exit_code == 0, done.stderr
    assert "hashedrekord 0.0.2 (Rekor v2) log entry records this envelope's PAE" in done.stderr
    for name, data in (("payload", _changed_bundle(PY_DSSE)), ("signature", _changed_signature(PY_DSSE))):
        changed = tmp_path / f"{name}.sigstore.json"
        changed.write_bytes(data)
        refused = cli("verify-blob-attestation", *by_digest, "--bundle", str(changed))
        assert refused.exit_code == 10, (name, refused.stderr)


def test_verify_attestation_accepts_sigstore_pythons_dsse_bundle_as_a_referrer(
    cli: Any, plain_registry: RegistryProcess
) -> None:
    """Its subject is a file's digest, not an image's: the referrer (here through the ``sha256-<hex>``
    fallback index, Distribution having no referrers API) is found by that digest all the same."""
    from pipeline.oci.client import Descriptor
    from pipeline.signatures.referrer import attach_bundle

    ref = parse_reference(plain_registry.ref("sigstore-python/a-txt"))
    subject = Descriptor(mediatypes.OCI_MANIFEST, "sha256:" + PY_SUBJECT, 0)
    with make_client() as client:
        attach_bundle(client, ref.repo, subject, PY_DSSE.read_bytes(), created="2026-05-13T19:23:32Z",
                      predicate_type="https://slsa.dev/provenance/v1")  # fmt: skip
    image = f"{plain_registry.ref('sigstore-python/a-txt')}@sha256:{PY_SUBJECT}"
    done = cli("verify-attestation", image, "--type", "slsaprovenance1", *STAGING)
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["subject"][0]["digest"] == {"sha256": PY_SUBJECT}
    assert cli("verify-attestation", image, "--type", "slsaprovenance02", *STAGING).exit_code == 10
