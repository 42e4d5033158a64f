"""Reading Sigstore bundles (v0.1–v0.3 JSON) into the model, on the three real bundles of ``bundle-v03``.

Expected values come from the vector README (written from the files, not from this parser): log indexes,
integrated times, proof sizes, the key hint, the digests of the derived subject files.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from pipeline.errors import InvalidInputError
from pipeline.sigstore.bundle import (
    COSIGN_ATTESTATION_PREDICATE_TYPE,
    COSIGN_SIGN_PREDICATE_TYPE,
    IN_TOTO_STATEMENT_V01,
    IN_TOTO_STATEMENT_V1,
    SigstoreBundle,
    is_sigstore_bundle,
    parse_in_toto_statement,
    parse_sigstore_bundle,
    statement_subject_digests,
)
from pipeline.sigstore.dsse import IN_TOTO_PAYLOAD_TYPE
from tests.conftest import COSIGN_VECTORS

BUNDLE_V03 = COSIGN_VECTORS / "bundle-v03"
KEY_SIGNED = BUNDLE_V03 / "key-signed" / "bundle.sigstore.json"
ATTESTATION = BUNDLE_V03 / "cosign-attest-keyless" / "oci-attestation.sigstore.json"
EMPTY_IMAGE_MANIFEST = BUNDLE_V03 / "cosign-attest-keyless" / "empty-image.manifest.derived.json"
IMAGE_V3_LAYER = BUNDLE_V03 / "cosign-sign-image-v3" / "kubewarden-controller-v1.34.0.bundle.layer.derived.json"
IMAGE_V3_PRETTY = BUNDLE_V03 / "cosign-sign-image-v3" / "kubewarden-controller-v1.34.0.bundle.pretty.json"
KUBEWARDEN_LAYER_DIGEST = "121ecb638da858178a0d57de5686709769f15b47d9fa5e3270dd7c64aea046d5"
KUBEWARDEN_IMAGE = "c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172"
PUBLIC_GOOD_LOG_ID = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"


def _document(path: Any = KEY_SIGNED) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_bytes())
    return document


def _parse_document(document: dict[str, Any], where: str = "bundle.json") -> SigstoreBundle:
    return parse_sigstore_bundle(json.dumps(document).encode(), where)


# --- the real bundles ---------------------------------------------------------------------------


def test_key_signed_bundle() -> None:
    bundle = parse_sigstore_bundle(KEY_SIGNED.read_bytes(), "key-signed")
    assert bundle.media_type == V03
    assert bundle.version == (0, 3)
    material = bundle.verification_material
    assert material.public_key_hint == "TLMsSDfG3ajPsWge+z/vX5T/zluXnmvbkTkwLIV68Tk="
    assert material.certificate is None
    assert material.chain == ()
    assert len(material.rfc3161_timestamps) == 1
    assert material.rfc3161_timestamps[0][:2] == b"\x30\x82"  # a DER SEQUENCE (TimeStampResp)
    (entry,) = material.tlog_entries
    assert (entry.kind, entry.kind_version) == ("hashedrekord", "0.0.1")
    assert entry.log_index == 771488337
    assert entry.integrated_time == 1766077479
    assert entry.log_id_hex == PUBLIC_GOOD_LOG_ID
    assert entry.signed_entry_timestamp is not None
    assert json.loads(entry.canonicalized_body)["kind"] == "hashedrekord"
    proof = entry.inclusion_proof
    assert proof is not None
    assert (proof.log_index, proof.tree_size, len(proof.hashes)) == (649584075, 649584076, 20)
    assert proof.checkpoint is not None
    assert proof.checkpoint.startswith("rekor.sigstore.dev - 1193050959916656506\n649584076\n")
    message = bundle.message_signature
    assert message is not None
    assert bundle.dsse_envelope is None
    assert message.digest_algorithm == "SHA2_256"
    assert message.digest == hashlib.sha256((BUNDLE_V03 / "key-signed" / "a.txt").read_bytes()).digest()
    assert statement_subject_digests(bundle) == []


def test_attestation_bundle() -> None:
    bundle = parse_sigstore_bundle(ATTESTATION.read_bytes(), "attestation")
    material = bundle.verification_material
    assert material.public_key_hint is None
    assert material.certificate is not None
    assert material.rfc3161_timestamps == ()
    (entry,) = material.tlog_entries
    assert (entry.kind, entry.kind_version, entry.log_index, entry.integrated_time) == (
        "dsse",
        "0.0.1",
        175508996,
        1740770291,
    )
    assert entry.inclusion_proof is not None
    assert (entry.inclusion_proof.log_index, entry.inclusion_proof.tree_size) == (53604734, 53604735)
    assert len(entry.inclusion_proof.hashes) == 16
    envelope = bundle.dsse_envelope
    assert envelope is not None
    assert bundle.message_signature is None
    assert envelope.payload_type == IN_TOTO_PAYLOAD_TYPE
    assert len(envelope.signatures) == 1
    assert envelope.signatures[0].keyid == ""
    statement = parse_in_toto_statement(envelope.payload, "attestation")
    assert statement.type == IN_TOTO_STATEMENT_V01
    assert statement.predicate_type == COSIGN_ATTESTATION_PREDICATE_TYPE
    assert statement.subjects[0].name == "127.0.0.1:60943/repo"
    subject_digest = "sha256:" + hashlib.sha256(EMPTY_IMAGE_MANIFEST.read_bytes()).hexdigest()
    assert statement_subject_digests(bundle) == [subject_digest]


def test_image_signature_bundle_layer_is_the_registry_blob() -> None:
    data = IMAGE_V3_LAYER.read_bytes()
    assert hashlib.sha256(data).hexdigest() == KUBEWARDEN_LAYER_DIGEST
    bundle = parse_sigstore_bundle(data, "layer")
    (entry,) = bundle.verification_material.tlog_entries
    assert (entry.kind, entry.log_index, entry.integrated_time) == ("dsse", 1261105807, 1775719409)
    assert entry.inclusion_proof is not None
    assert (entry.inclusion_proof.log_index, entry.inclusion_proof.tree_size) == (1139201545, 1139201557)
    assert len(entry.inclusion_proof.hashes) == 18
    assert len(bundle.verification_material.rfc3161_timestamps) == 1
    assert bundle.dsse_envelope is not None
    statement = parse_in_toto_statement(bundle.dsse_envelope.payload, "layer")
    assert statement.type == IN_TOTO_STATEMENT_V1
    assert statement.predicate_type == COSIGN_SIGN_PREDICATE_TYPE
    (subject,) = statement.subjects
    assert subject.name is None
    assert subject.annotations == {}
    assert statement_subject_digests(bundle) == [f"sha256:{KUBEWARDEN_IMAGE}"]


def test_pretty_and_compact_forms_parse_to_the_same_model() -> None:
    assert parse_sigstore_bundle(IMAGE_V3_PRETTY.read_bytes(), "pretty") == parse_sigstore_bundle(
        IMAGE_V3_LAYER.read_bytes(), "layer"
    )


@pytest.mark.parametrize("path", [KEY_SIGNED, ATTESTATION, IMAGE_V3_LAYER, IMAGE_V3_PRETTY], ids=lambda p: p.name)
def test_real_bundles_are_recognised(path: Any) -> None:
    assert is_sigstore_bundle(_document(path))


def test_legacy_cosign_bundle_is_not_a_sigstore_bundle() -> None:
    legacy = json.loads((COSIGN_VECTORS / "sign-blob" / "artifact.bundle").read_bytes())
    assert not is_sigstore_bundle(legacy)
    assert not is_sigstore_bundle({"mediaType": 3})
    assert is_sigstore_bundle({"mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.2"})


# --- other versions and shapes -----------------------------------------------------------------


def test_certificate_chain_form_of_older_bundles() -> None:
    document = _document(ATTESTATION)
    leaf = document["verificationMaterial"].pop("certificate")
    document["verificationMaterial"]["x509CertificateChain"] = {"certificates": [leaf, {"rawBytes": "AAEC"}]}
    document["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2"
    bundle = _parse_document(document)
    assert bundle.version == (0, 2)
    assert bundle.verification_material.certificate == base64.b64decode(leaf["rawBytes"])
    assert bundle.verification_material.chain == (b"\x00\x01\x02",)


def test_an_empty_certificate_chain_is_invalid_input() -> None:
    document = _document(ATTESTATION)
    del document["verificationMaterial"]["certificate"]
    document["verificationMaterial"]["x509CertificateChain"] = {"certificates": []}
    with pytest.raises(InvalidInputError, match="x509CertificateChain holds no certificate"):
        _parse_document(document)


def test_v01_bundles_may_lack_the_inclusion_proof() -> None:
    document = _document()
    del document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    document["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1"
    assert _parse_document(document).verification_material.tlog_entries[0].inclusion_proof is None


def test_int64_fields_may_be_json_numbers_and_zero_may_be_omitted() -> None:
    document = _document()
    entry = document["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = 1766077479
    del entry["logIndex"]  # protojson leaves out zero values
    parsed = _parse_document(document).verification_material.tlog_entries[0]
    assert (parsed.integrated_time, parsed.log_index) == (1766077479, 0)


def test_optional_parts_may_be_absent() -> None:
    document = _document()
    material = document["verificationMaterial"]
    del material["timestampVerificationData"]
    del material["publicKey"]["hint"]
    del material["tlogEntries"][0]["inclusionPromise"]
    del material["tlogEntries"][0]["inclusionProof"]["checkpoint"]
    del document["messageSignature"]["messageDigest"]
    bundle = _parse_document(document)
    assert bundle.verification_material.public_key_hint is None
    assert bundle.verification_material.rfc3161_timestamps == ()
    entry = bundle.verification_material.tlog_entries[0]
    assert entry.signed_entry_timestamp is None
    assert entry.inclusion_proof is not None and entry.inclusion_proof.checkpoint is None
    assert bundle.message_signature is not None and bundle.message_signature.digest_algorithm is None


# --- malformed input --------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        holder: Any = document
        for part in parents:
            holder = holder[int(part)] if isinstance(holder, list) else holder[part]
        key: int | str = int(last) if isinstance(holder, list) else last
        if value is _DELETE:
            del holder[key]
        else:
            holder[key] = value

    return mutate


_DELETE = object()
_ENTRY = "verificationMaterial.tlogEntries.0"


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        (_set("mediaType", "application/vnd.dev.sigstore.bundle.v0.4+json"), "unsupported Sigstore bundle media type"),
        (_set("mediaType", _DELETE), "unsupported Sigstore bundle media type None"),
        (_set("verificationMaterial", _DELETE), "verificationMaterial is missing"),
        (_set("verificationMaterial.certificate", {"rawBytes": "AAAA"}), "exactly one of publicKey, certificate"),
        (_set("verificationMaterial.publicKey", _DELETE), "exactly one of publicKey, certificate .* none"),
        (_set("verificationMaterial.x509CertificateChain", {"certificates": []}), "exactly one of"),
        (_set("verificationMaterial.tlogEntries", {}), "tlogEntries is not a JSON array"),
        (_set(f"{_ENTRY}.logIndex", "-5"), r"tlogEntries\[0\].logIndex is not a non-negative integer"),
        (_set(f"{_ENTRY}.logIndex", True), r"tlogEntries\[0\].logIndex is not a non-negative integer"),
        (_set(f"{_ENTRY}.integratedTime", "12.5"), "integratedTime is not a non-negative integer"),
        (_set(f"{_ENTRY}.logId", _DELETE), r"tlogEntries\[0\].logId is missing"),
        (_set(f"{_ENTRY}.logId.keyId", "%%%%"), r"logId.keyId is not valid base64"),
        (_set(f"{_ENTRY}.kindVersion.kind", 7), "kindVersion.kind is missing or not a string"),
        (_set(f"{_ENTRY}.canonicalizedBody", _DELETE), "canonicalizedBody is missing"),
        (_set(f"{_ENTRY}.inclusionProof", _DELETE), "no inclusionProof, which bundle v0.2 and later require"),
        (_set(f"{_ENTRY}.inclusionProof.hashes.3", "not base64!"), r"inclusionProof.hashes\[3\] is not valid base64"),
        (_set(f"{_ENTRY}.inclusionProof.checkpoint", "text"), "checkpoint is missing or not a JSON object"),
        (_set(f"{_ENTRY}.inclusionPromise.signedEntryTimestamp", ""), "signedEntryTimestamp is missing"),
        (
            _set("verificationMaterial.timestampVerificationData.rfc3161Timestamps.0.signedTimestamp", 1),
            r"rfc3161Timestamps\[0\].signedTimestamp is missing",
        ),
        (_set("messageSignature", _DELETE), "exactly one of messageSignature and dsseEnvelope"),
        (_set("dsseEnvelope", {"payload": "", "payloadType": "x", "signatures": []}), "exactly one of messageSig"),
        (_set("messageSignature.signature", "@@"), "messageSignature.signature is not valid base64"),
        (_set("messageSignature.messageDigest.algorithm", None), "messageDigest.algorithm is missing"),
    ],
)
def test_malformed_bundles_are_invalid_input(mutation: Mutation, reason: str) -> None:
    document = _document()
    mutation(document)
    with pytest.raises(InvalidInputError, match=reason) as caught:
        _parse_document(document, "dist/app.sigstore.json")
    assert str(caught.value).endswith("(dist/app.sigstore.json)")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        (_set("dsseEnvelope.signatures", []), "dsseEnvelope has no signature"),
        (_set("dsseEnvelope.signatures.0.sig", _DELETE), r"signatures\[0\].sig is missing"),
        (_set("dsseEnvelope.signatures.0.keyid", 5), r"signatures\[0\].keyid is missing or not a string"),
        (_set("dsseEnvelope.payloadType", _DELETE), "payloadType is missing"),
        (_set("verificationMaterial.certificate.rawBytes", _DELETE), "certificate.rawBytes is missing"),
    ],
)
def test_malformed_dsse_bundles_are_invalid_input(mutation: Mutation, reason: str) -> None:
    document = _document(ATTESTATION)
    mutation(document)
    with pytest.raises(InvalidInputError, match=reason):
        _parse_document(document)


@pytest.mark.parametrize(("data", "reason"), [(b"{nope", "is not JSON"), (b"\xff", "is not JSON"), (b"[]", "object")])
def test_non_json_is_invalid_input(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        parse_sigstore_bundle(data, "x")


# --- in-toto statements -------------------------------------------------------------------------


def _statement(**fields: object) -> bytes:
    document: dict[str, object] = {
        "_type": IN_TOTO_STATEMENT_V1,
        "subject": [{"digest": {"sha256": "AB" * 32}, "annotations": {"env": "prod"}}],
        "predicateType": COSIGN_SIGN_PREDICATE_TYPE,
    }
    document.update(fields)
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


def test_statement_digests_are_lower_cased_and_annotations_kept() -> None:
    statement = parse_in_toto_statement(_statement(), "payload")
    assert statement.subjects[0].digest == {"sha256": "ab" * 32}
    assert statement.subjects[0].annotations == {"env": "prod"}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (_statement(_type="https://in-toto.io/Statement/v2"), "not an in-toto Statement"),
        (_statement(predicateType=None), "no predicateType"),
        (_statement(subject=[]), "no subject"),
        (_statement(subject=["x"]), r"subject\[0\] is not an object"),
        (_statement(subject=[{"name": 1, "digest": {}}]), r"subject\[0\].name is not a string"),
        (_statement(subject=[{"digest": {"sha256": 1}}]), r"subject\[0\].digest is not an object of strings"),
        (_statement(subject=[{"digest": {}, "annotations": []}]), r"subject\[0\].annotations is not an object"),
    ],
)
def test_malformed_statements_are_invalid_input(payload: bytes, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        parse_in_toto_statement(payload, "payload")
