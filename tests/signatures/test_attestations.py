"""Attestations in registries (pipeline.signatures.att_legacy / att_referrer / attest): write, re-run, verify,
the negative cases of issue 16, and real cosign data (tests/vectors/cosign/attestations, bundle-v03).

The ``.att`` manifest and the intoto log body are decoded here from their format descriptions (cosign's
ATTESTATION_SPEC and ``attest.go``; rekor's ``intoto`` v0.0.2 type), not with our readers.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.cosign.certificate import IdentityPolicy
from pipeline.cosign.keys import SigningKey, public_key_to_pem
from pipeline.cosign.trust import (
    ct_log_keys_from_trusted_root,
    fulcio_certificates_from_trusted_root,
    rekor_keys_from_trusted_root,
)
from pipeline.cosign.verify import KeylessTrust, VerificationPolicy
from pipeline.errors import InvalidInputError, UsageError
from pipeline.oci import mediatypes
from pipeline.oci.reference import Reference, parse_reference
from pipeline.rehearsal.log_server import LogServer
from pipeline.signatures.att_legacy import LegacyAttestationLayout
from pipeline.signatures.attest import attestation_layouts, verify_image_attestations
from pipeline.signatures.attestation import DSSE_MEDIA_TYPE, Attestation, attestation_tag
from pipeline.signatures.referrer import attach_bundle
from pipeline.signatures.sign import sign_images
from pipeline.signatures.signers import KeySigner
from pipeline.sigstore.bundle import COSIGN_ATTESTATION_PREDICATE_TYPE
from pipeline.sigstore.intoto import PREDICATE_TYPES, parse_predicate, predicate_type_uri
from pipeline.sigstore.rekor_client import RekorClient
from pipeline.sigstore.statement_policy import parse_statement_policy
from tests.conftest import COSIGN_VECTORS
from tests.oci.helpers import client as make_client
from tests.oci.helpers import push_image
from tests.referrers_proxy import ReferrersProxy
from tests.registry_fixtures import RegistryProcess

SLSA1 = "https://slsa.dev/provenance/v1"
PREDICATE = {"buildDefinition": {"buildType": "https://example.com/build"}, "runDetails": {"builder": {"id": "b1"}}}
ATT = COSIGN_VECTORS / "attestations"
ATTEST_KEYLESS = COSIGN_VECTORS / "bundle-v03" / "cosign-attest-keyless"
TRUSTED_ROOT = COSIGN_VECTORS / "bundle-v03" / "trusted_root.public-good.json"
EMPTY_CONFIG = b'{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers","diff_ids":null},"config":{}}'  # noqa: E501


@dataclass(frozen=True)
class Log:
    server: LogServer
    client: RekorClient


@pytest.fixture(scope="module")
def log() -> Iterator[Log]:
    with LogServer() as server, RekorClient(server.url, [server.public_key]) as client:
        yield Log(server, client)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), "test key")


def policy(key: SigningKey, log: Log) -> VerificationPolicy:
    return VerificationPolicy(key.public_key, None, (log.server.public_key,))


def new_image(registry: RegistryProcess, name: str, content: bytes) -> tuple[Reference, str]:
    with make_client() as client:
        _, digest = push_image(client, registry.ref(name), content)
    return parse_reference(registry.ref(name)).repo.digest(digest), digest


def attest(image: Reference, key: SigningKey, log: Log, fmt: str = "both", predicate: object = None) -> str:
    attestation = Attestation(SLSA1, predicate if predicate is not None else PREDICATE)  # type: ignore[arg-type]
    with make_client() as client:
        layouts = attestation_layouts(fmt, client, attestation)  # type: ignore[arg-type]
        [outcome] = sign_images(client, [image], [KeySigner.of(key)], layouts, log=log.client)
    assert outcome.error is None, outcome.error
    return outcome.status


def att_manifest(registry: RegistryProcess, image: Reference, digest: str) -> dict[str, object]:
    url = f"http://{registry.host}/v2/{image.repository}/manifests/{attestation_tag(digest)}"
    response = httpx.get(url, headers={"Accept": mediatypes.OCI_MANIFEST}, trust_env=False)
    response.raise_for_status()
    return json.loads(response.content)  # type: ignore[no-any-return]


def blob(registry: RegistryProcess, image: Reference, digest: str) -> bytes:
    return httpx.get(f"http://{registry.host}/v2/{image.repository}/blobs/{digest}", trust_env=False).content


# --- pure ---------------------------------------------------------------------------------------


def test_predicate_types_are_cosigns() -> None:
    assert predicate_type_uri("slsaprovenance1") == SLSA1
    assert predicate_type_uri("slsaprovenance") == predicate_type_uri("slsaprovenance02") == "https://slsa.dev/provenance/v0.2"
    assert predicate_type_uri("custom") == COSIGN_ATTESTATION_PREDICATE_TYPE
    assert predicate_type_uri("https://example.com/p/v1") == "https://example.com/p/v1"
    assert {"spdx", "spdxjson", "cyclonedx", "vuln", "openvex"} <= set(PREDICATE_TYPES)
    with pytest.raises(UsageError, match="invalid predicate type"):
        predicate_type_uri("notatype")


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"{not json", "not JSON"), (b"[1, 2]", "not a JSON object"), (b'"text"', "not a JSON object"),
     (b" " * (16 * 1024 * 1024 + 1), "too large")],
)
def test_bad_predicates_are_invalid_input(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason) as caught:
        parse_predicate(data, "predicate.json")
    assert caught.value.where == "predicate.json" and caught.value.exit_code == 3


def test_statement_policy() -> None:
    rules = parse_statement_policy(
        json.dumps({"require": [{"path": "predicate.runDetails.builder.id", "equals": "b1"},
                                {"path": "$.subject[0].name", "matches": "^reg/"}]}).encode(), "p.json")  # fmt: skip
    statement = json.dumps({"subject": [{"name": "reg/app"}], "predicate": PREDICATE}).encode()
    assert rules.problems(statement, "x") == []
    other = json.dumps({"subject": [{"name": "elsewhere/app"}], "predicate": {}}).encode()
    assert rules.problems(other, "x") == [
        "policy: predicate.runDetails.builder.id is missing",
        "policy: $.subject[0].name is \"elsewhere/app\", which does not match '^reg/'",
    ]
    for bad in (b"[]", b'{"require": [{"path": "a"}]}', b'{"require": [{"path": "a", "matches": "("}]}'):
        with pytest.raises(InvalidInputError):
            parse_statement_policy(bad, "p.json")


# --- writing and reading back -------------------------------------------------------------------


def test_attest_writes_cosigns_att_layer_and_a_referrer_and_is_idempotent(
    plain_registry: RegistryProcess, key: SigningKey, log: Log
) -> None:
    image, digest = new_image(plain_registry, "att/one", b"one")
    before = len(log.server.log)
    assert attest(image, key, log) == "signed"
    assert len(log.server.log) == before + 2  # one intoto entry (.att), one dsse entry (bundle)
    manifest = att_manifest(plain_registry, image, digest)
    [layer] = manifest["layers"]  # type: ignore[misc]
    assert layer["mediaType"] == DSSE_MEDIA_TYPE
    annotations = layer["annotations"]
    assert annotations["dev.cosignproject.cosign/signature"] == ""
    assert annotations["predicateType"] == SLSA1
    envelope = json.loads(blob(plain_registry, image, layer["digest"]))
    assert list(envelope) == ["payloadType", "payload", "signatures"]
    assert envelope["signatures"][0]["keyid"] == ""
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement == {"_type": "https://in-toto.io/Statement/v1",
                         "subject": [{"name": image.cosign_name, "digest": {"sha256": digest.split(":")[1]}}],
                         "predicateType": SLSA1, "predicate": PREDICATE}  # fmt: skip
    rekor = json.loads(annotations["dev.sigstore.cosign/bundle"])
    body = json.loads(base64.b64decode(rekor["Payload"]["body"]))
    assert (body["kind"], body["apiVersion"]) == ("intoto", "0.0.2")
    content = body["spec"]["content"]
    assert "payload" not in content["envelope"]
    assert content["payloadHash"]["value"] == hashlib.sha256(base64.b64decode(envelope["payload"])).hexdigest()
    recorded_sig = base64.b64decode(base64.b64decode(content["envelope"]["signatures"][0]["sig"]))
    assert recorded_sig == base64.b64decode(envelope["signatures"][0]["sig"])
    assert base64.b64decode(content["envelope"]["signatures"][0]["publicKey"]) == public_key_to_pem(key.public_key)

    assert attest(image, key, log) == "already signed"
    assert len(log.server.log) == before + 2
    assert len(att_manifest(plain_registry, image, digest)["layers"]) == 1  # type: ignore[arg-type]

    with make_client() as client:
        check = verify_image_attestations(client, image, policy(key, log), SLSA1)
    assert check.ok, check.failures
    assert sorted(a.format for a in check.verified) == ["legacy", "v3"]
    assert all(json.loads(a.payload)["predicate"] == PREDICATE for a in check.verified)


def test_a_new_predicate_is_appended(plain_registry: RegistryProcess, key: SigningKey, log: Log) -> None:
    image, digest = new_image(plain_registry, "att/two", b"two")
    attest(image, key, log, "legacy")
    assert attest(image, key, log, "legacy", {"other": 1}) == "signed"
    assert len(att_manifest(plain_registry, image, digest)["layers"]) == 2  # type: ignore[arg-type]


def test_the_referrers_api_path(plain_registry: RegistryProcess, key: SigningKey, log: Log) -> None:
    with ReferrersProxy(plain_registry.url) as proxy:
        ref = parse_reference(f"{proxy.host}/att/api")
        with make_client() as client:
            _, digest = push_image(client, str(ref), b"api")
            image = ref.repo.digest(digest)
            assert attest(image, key, log, "v3") == "signed"
            assert attest(image, key, log, "v3") == "already signed"
            assert verify_image_attestations(client, image, policy(key, log), SLSA1).ok


# --- negative cases (exit 10 reasons) -----------------------------------------------------------


def _reasons(image: Reference, key: SigningKey, log: Log, predicate_type: str = SLSA1) -> str:
    with make_client() as client:
        check = verify_image_attestations(client, image, policy(key, log), predicate_type)
    assert not check.ok
    return check.reason()


def _put_att(registry: RegistryProcess, image: Reference, digest: str, manifest: dict[str, object]) -> None:
    url = f"http://{registry.host}/v2/{image.repository}/manifests/{attestation_tag(digest)}"
    data = json.dumps(manifest).encode()
    httpx.put(url, content=data, headers={"Content-Type": mediatypes.OCI_MANIFEST}, trust_env=False).raise_for_status()


def _upload(registry: RegistryProcess, image: Reference, data: bytes) -> str:
    with make_client() as client:
        return client.upload_blob(image.repo, data)


def test_another_predicate_type_is_refused_with_its_reason(
    plain_registry: RegistryProcess, key: SigningKey, log: Log
) -> None:
    image, _ = new_image(plain_registry, "att/type", b"type")
    attest(image, key, log, "legacy")
    assert "predicate type https://slsa.dev/provenance/v1, not https://spdx.dev/Document" in _reasons(
        image, key, log, "https://spdx.dev/Document"
    )


def test_an_attestation_over_another_digest_is_refused(
    plain_registry: RegistryProcess, key: SigningKey, log: Log
) -> None:
    image, digest = new_image(plain_registry, "att/move", b"a")
    other, other_digest = new_image(plain_registry, "att/move", b"b")
    attest(image, key, log, "legacy")
    _put_att(plain_registry, other, other_digest, att_manifest(plain_registry, image, digest))
    assert f"another digest (its subject names {digest}, not {other_digest})" in _reasons(other, key, log)


def test_a_changed_payload_and_a_foreign_log_entry_are_refused(
    plain_registry: RegistryProcess, key: SigningKey, log: Log
) -> None:
    image, digest = new_image(plain_registry, "att/tamper", b"t")
    attest(image, key, log, "legacy")
    attest(image, key, log, "legacy", {"second": True})
    manifest = att_manifest(plain_registry, image, digest)
    layers: list[dict[str, object]] = manifest["layers"]  # type: ignore[assignment]
    # 1. the payload changed: the DSSE signature no longer verifies
    envelope = json.loads(blob(plain_registry, image, str(layers[0]["digest"])))
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["runDetails"]["builder"]["id"] = "evil"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    changed = json.dumps(envelope).encode()
    tampered = dict(layers[0], digest=_upload(plain_registry, image, changed), size=len(changed))
    # 2. the first layer carrying the second one's log entry
    annotations = dict(layers[0]["annotations"])  # type: ignore[call-overload]
    annotations["dev.sigstore.cosign/bundle"] = layers[1]["annotations"]["dev.sigstore.cosign/bundle"]  # type: ignore[index]
    swapped = dict(layers[0], annotations=annotations)
    _put_att(plain_registry, image, digest, dict(manifest, layers=[tampered, swapped]))
    reasons = _reasons(image, key, log)
    assert "the DSSE signature does not verify" in reasons
    assert "the log entry belongs to another envelope" in reasons


# --- real cosign data ---------------------------------------------------------------------------


def _cody_policy() -> VerificationPolicy:
    root = TRUSTED_ROOT.read_bytes()
    roots, intermediates = fulcio_certificates_from_trusted_root(root, "root")
    trust = KeylessTrust(IdentityPolicy(identity="cody@soyland.com", issuer="https://github.com/login/oauth"),
                         tuple(roots), tuple(intermediates), tuple(ct_log_keys_from_trusted_root(root, "root")))
    return VerificationPolicy(None, trust, tuple(rekor_keys_from_trusted_root(root, "root")))  # fmt: skip


def _push_empty_image(registry: RegistryProcess, name: str) -> tuple[Reference, str]:
    manifest = (ATTEST_KEYLESS / "empty-image.manifest.derived.json").read_bytes()
    ref = parse_reference(registry.ref(name))
    with make_client() as client:
        client.upload_blob(ref, EMPTY_CONFIG)
        digest = client.put_manifest(ref, None, manifest, "application/vnd.docker.distribution.manifest.v2+json")
    assert digest == "sha256:" + hashlib.sha256(manifest).hexdigest()
    return ref.repo.digest(digest), digest


def test_real_cosign_attestations_verify_in_both_layouts(plain_registry: RegistryProcess) -> None:
    image, digest = _push_empty_image(plain_registry, "att/cosign-real")
    layer_blob = (ATT / "cosign-attest-keyless.att-layer.derived.json").read_bytes()
    annotations = json.loads((ATT / "cosign-attest-keyless.att-annotations.derived.json").read_text())
    layer = {"mediaType": DSSE_MEDIA_TYPE, "size": len(layer_blob),
             "digest": _upload(plain_registry, image, layer_blob), "annotations": annotations}  # fmt: skip
    config = b'{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}'  # noqa: E501
    _put_att(plain_registry, image, digest, {
        "schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
                   "digest": _upload(plain_registry, image, config)},
        "layers": [layer]})  # fmt: skip
    bundle = (ATTEST_KEYLESS / "oci-attestation.sigstore.json").read_bytes()
    with make_client() as client:
        subject = client.head_manifest(image)
        assert subject is not None
        attach_bundle(client, image.repo, subject, bundle, created="2025-02-28T19:18:11Z",
                      predicate_type=COSIGN_ATTESTATION_PREDICATE_TYPE)  # fmt: skip
        check = verify_image_attestations(client, image, _cody_policy(), COSIGN_ATTESTATION_PREDICATE_TYPE)
        assert check.ok, check.failures
        assert sorted(a.format for a in check.verified) == ["legacy", "v3"]
        assert {a.signature.signer for a in check.verified} == {"cody@soyland.com"}
        wrong = verify_image_attestations(client, image, _cody_policy(), SLSA1)
        assert not wrong.ok
        legacy = LegacyAttestationLayout(client, Attestation(COSIGN_ATTESTATION_PREDICATE_TYPE))
        assert legacy.format == "legacy"
