"""The ``.sig`` manifest: the vectors decoded and verified, the registry manifest rebuilt byte for byte,
build/parse round trips, appending that keeps old layers and never duplicates a signature."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from pipeline.cosign import sigmanifest as sm
from pipeline.cosign.keys import PublicKey, SigningKey, load_public_key, verify_signature
from pipeline.cosign.payload import marshal_go_json, parse_simple_signing_payload, simple_signing_payload
from pipeline.errors import ConflictError, ExitCode, InvalidInputError, VerificationError
from tests.conftest import COSIGN_VECTORS

IMAGE_SIGNATURES = COSIGN_VECTORS / "image-signatures"
REGISTRY = COSIGN_VECTORS / "registry-sig-manifest"
DIR_IMAGES = sorted(IMAGE_SIGNATURES.glob("dir-img-*"))
DIGEST = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
HEX = DIGEST.split(":")[1]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pub(name: str) -> PublicKey:
    path = IMAGE_SIGNATURES / name
    return load_public_key(path.read_bytes(), str(path))


def cert_key(path: Path) -> PublicKey:
    key = x509.load_pem_x509_certificates(path.read_bytes())[0].public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def verifies(key: PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        verify_signature(key, data, signature, where="test")
    except VerificationError:
        return False
    return True


def vector_layer(folder: Path) -> sm.SignatureLayer:
    path = folder / "signature-1"
    return sm.decode_dir_signature(path.read_bytes(), str(path))


def registry_layer() -> sm.SignatureLayer:
    return sm.SignatureLayer(
        payload=(REGISTRY / "payload.reconstructed.json").read_bytes(),
        signature_b64=(REGISTRY / "signature.b64").read_text(),
        bundle=(REGISTRY / "bundle.json").read_text(),
        certificate=(REGISTRY / "cert.pem").read_text(),
        chain=(REGISTRY / "chain.pem").read_text(),
    )


def new_key() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), "test-key")


def sign(key: SigningKey, payload: bytes, bundle: str | None = None) -> sm.SignatureLayer:
    return sm.SignatureLayer(payload, base64.b64encode(key.sign(payload)).decode(), bundle=bundle)


def payload_for(reference: str = "ghcr.io/metal-stack/x", digest: str = DIGEST) -> bytes:
    return simple_signing_payload(reference, digest, None)


# --- constants ----------------------------------------------------------------------------------------


def test_constants_are_cosigns() -> None:
    assert sm.SIGNATURE_ANNOTATION == "dev.cosignproject.cosign/signature"
    assert sm.BUNDLE_ANNOTATION == "dev.sigstore.cosign/bundle"
    assert sm.CERTIFICATE_ANNOTATION == "dev.sigstore.cosign/certificate"
    assert sm.CHAIN_ANNOTATION == "dev.sigstore.cosign/chain"
    assert sm.SIMPLE_SIGNING_MEDIA_TYPE == "application/vnd.dev.cosign.simplesigning.v1+json"


def test_signature_tag() -> None:
    assert sm.signature_tag(DIGEST) == f"sha256-{HEX}.sig"
    for bad in ("sha256:abc", f"sha256-{HEX}", "latest", DIGEST.upper()):
        with pytest.raises(InvalidInputError):
            sm.signature_tag(bad)


# --- the dir-img vectors --------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", DIR_IMAGES, ids=lambda d: d.name)
def test_dir_signature_decodes_to_the_extracted_files(folder: Path) -> None:
    layer = vector_layer(folder)
    assert layer.payload == (folder / "payload.json").read_bytes()
    assert layer.signature_b64 == (folder / "signature.b64").read_text()
    for name, value in (("bundle.json", layer.bundle), ("cert.pem", layer.certificate), ("chain.pem", layer.chain)):
        path = folder / name
        assert value == (path.read_text() if path.exists() else None), name
    assert layer.extra_annotations == ()
    # The layer's annotations are the file's, in the file's (Go's sorted) order.
    stored = json.loads((folder / "signature-1").read_bytes()[len(sm.DIR_SIGNATURE_PREFIX) :])
    assert list(layer.annotations().items()) == list(stored["annotations"].items())


@pytest.mark.parametrize("folder", DIR_IMAGES, ids=lambda d: d.name)
def test_dir_signature_reencodes_byte_for_byte(folder: Path) -> None:
    assert sm.encode_dir_signature(vector_layer(folder)) == (folder / "signature-1").read_bytes()


@pytest.mark.parametrize("folder", DIR_IMAGES, ids=lambda d: d.name)
def test_manifest_digest_matches_the_payload(folder: Path) -> None:
    payload = parse_simple_signing_payload(vector_layer(folder).payload, str(folder))
    assert payload.manifest_digest == sha256((folder / "manifest.json").read_bytes())


KEY_OF = {
    "dir-img-cosign-valid": ("cosign.pub", "cosign2.pub"),
    "dir-img-cosign-valid-with-tag": ("cosign.pub", "cosign2.pub"),
    "dir-img-cosign-key-rekor-valid": ("cosign2.pub", "cosign.pub"),
}


@pytest.mark.parametrize("folder", DIR_IMAGES, ids=lambda d: d.name)
def test_vector_signature_verifies_with_the_readmes_key_only(folder: Path) -> None:
    layer = vector_layer(folder)
    if folder.name in KEY_OF:
        good, other = KEY_OF[folder.name]
        assert verifies(pub(good), layer.payload, layer.signature)
        assert not verifies(pub(other), layer.payload, layer.signature)
    else:  # keyless: the Fulcio certificate's key
        assert verifies(cert_key(folder / "cert.pem"), layer.payload, layer.signature)
        assert not verifies(pub("cosign.pub"), layer.payload, layer.signature)


def test_unknown_key_signature_verifies_with_neither_key() -> None:
    path = IMAGE_SIGNATURES / "unknown-cosign-key.signature"
    layer = sm.decode_dir_signature(path.read_bytes(), str(path))
    assert parse_simple_signing_payload(layer.payload, str(path)).manifest_digest == DIGEST
    for name in ("cosign.pub", "cosign2.pub"):
        assert not verifies(pub(name), layer.payload, layer.signature)
    refs = [_ref_of(layer)]
    assert sm.find_signed(refs, layer.payload, pub("cosign.pub")) is None


def _ref_of(layer: sm.SignatureLayer) -> sm.LayerRef:
    manifest = sm.append_signature(None, layer).manifest
    assert manifest is not None
    return sm.read_signature_manifest(manifest, "test").layers[0]


@pytest.mark.parametrize("folder", [IMAGE_SIGNATURES / n for n in KEY_OF], ids=lambda d: d.name)
def test_find_signed_finds_the_vector_signature_with_its_key(folder: Path) -> None:
    layer = vector_layer(folder)
    ref = _ref_of(layer)
    good, other = KEY_OF[folder.name]
    assert sm.find_signed([ref], layer.payload, pub(good)) == ref
    assert sm.find_signed([ref], layer.payload, pub(other)) is None
    assert sm.find_signed([ref], payload_for(), pub(good)) is None  # another payload


# --- the registry manifest --------------------------------------------------------------------------------

JQ = REGISTRY / "sig-manifest.as-printed-by-jq.json"


def test_registry_manifest_parses_and_names_the_payload() -> None:
    manifest = sm.read_signature_manifest(JQ.read_bytes(), str(JQ))
    assert manifest.media_type == sm.OCI_MANIFEST_MEDIA_TYPE
    assert manifest.config["mediaType"] == sm.OCI_CONFIG_MEDIA_TYPE and manifest.config["size"] == 233
    (ref,) = sm.parse_signature_manifest(JQ.read_bytes(), str(JQ))
    payload = (REGISTRY / "payload.reconstructed.json").read_bytes()
    assert ref.digest == sha256(payload) and ref.size == len(payload) == 257
    assert ref.media_type == sm.SIMPLE_SIGNING_MEDIA_TYPE
    assert ref.signature_b64 == (REGISTRY / "signature.b64").read_text()
    assert ref.to_signature_layer(payload, "registry") == registry_layer()
    assert verifies(cert_key(REGISTRY / "cert.pem"), payload, registry_layer().signature)


def test_registry_config_blob_is_reproduced_byte_for_byte() -> None:
    document = json.loads(JQ.read_bytes())
    config = sm.signature_config([registry_layer()])
    assert len(config) == document["config"]["size"] == 233
    assert sha256(config) == document["config"]["digest"]
    expected = (
        '{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],'
        '"os":"","rootfs":{"type":"layers","diff_ids":["' + sha256(registry_layer().payload) + '"]},"config":{}}'
    )
    assert config == expected.encode()


def test_registry_manifest_is_rebuilt_as_cosign_wrote_it() -> None:
    """jq reformatted the registry's bytes; Go's compact form of the same document is what cosign PUT."""
    update = sm.append_signature(None, registry_layer())
    assert update.manifest == marshal_go_json(json.loads(JQ.read_bytes()))
    assert update.media_type == sm.OCI_MANIFEST_MEDIA_TYPE


def test_layer_blob_mismatch_is_a_verification_error() -> None:
    (ref,) = sm.parse_signature_manifest(JQ.read_bytes(), str(JQ))
    with pytest.raises(VerificationError):
        ref.to_signature_layer(payload_for(), "registry")


# --- SignatureLayer ------------------------------------------------------------------------------------------


def test_layer_annotations_are_in_gos_sorted_order() -> None:
    layer = sm.SignatureLayer(
        b"p", "c2ln", bundle="b", certificate="c", chain="ch", extra_annotations=(("z.extra", "1"), ("a.extra", "2"))
    )
    assert list(layer.annotations()) == [
        "a.extra",
        sm.SIGNATURE_ANNOTATION,
        sm.BUNDLE_ANNOTATION,
        sm.CERTIFICATE_ANNOTATION,
        sm.CHAIN_ANNOTATION,
        "z.extra",
    ]
    assert sm.SignatureLayer(b"p", "c2ln").annotations() == {sm.SIGNATURE_ANNOTATION: "c2ln"}
    assert layer.digest == sha256(b"p") and layer.size == 1 and layer.signature == b"sig"


def test_layer_refuses_clashing_or_repeated_extra_annotations_and_bad_base64() -> None:
    with pytest.raises(InvalidInputError):
        sm.SignatureLayer(b"p", "c2ln", extra_annotations=((sm.BUNDLE_ANNOTATION, "x"),))
    with pytest.raises(InvalidInputError):
        sm.SignatureLayer(b"p", "c2ln", extra_annotations=(("k", "1"), ("k", "2")))
    with pytest.raises(InvalidInputError):
        _ = sm.SignatureLayer(b"p", "not base64!").signature


# --- build and parse -----------------------------------------------------------------------------------------


def all_vector_layers() -> list[sm.SignatureLayer]:
    return [vector_layer(folder) for folder in DIR_IMAGES] + [registry_layer()]


def test_build_then_parse_round_trips() -> None:
    layers = all_vector_layers()
    config = sm.signature_config(layers)
    data = sm.build_signature_manifest(layers, config)
    manifest = sm.read_signature_manifest(data, "built")
    assert manifest.config == {"mediaType": sm.OCI_CONFIG_MEDIA_TYPE, "size": len(config), "digest": sha256(config)}
    assert [ref.index for ref in manifest.layers] == list(range(len(layers)))
    for ref, layer in zip(manifest.layers, layers, strict=True):
        assert (ref.media_type, ref.size, ref.digest) == (layer.media_type, layer.size, layer.digest)
        assert dict(ref.annotations) == layer.annotations()
        assert list(ref.descriptor.items()) == list(layer.descriptor().items())
        assert ref.to_signature_layer(layer.payload, "built") == layer
    # Rebuilding from the parsed references gives the same bytes.
    assert sm.build_signature_manifest(manifest.layers, sm.signature_config(manifest.layers)) == data


def test_build_is_deterministic_and_config_follows_the_layers() -> None:
    layers = all_vector_layers()
    assert sm.signature_config(layers) == sm.signature_config(list(layers))
    assert sm.build_signature_manifest(layers, sm.signature_config(layers)) == sm.build_signature_manifest(
        layers, sm.signature_config(layers)
    )
    assert sm.signature_config(layers[:1]) != sm.signature_config(layers[:2])
    assert sm.signature_config(layers[::-1]) != sm.signature_config(layers)
    assert b"created" in sm.signature_config(layers) and b"0001-01-01T00:00:00Z" in sm.signature_config(layers)


def test_manifest_json_shape() -> None:
    layer = vector_layer(IMAGE_SIGNATURES / "dir-img-cosign-valid")
    data = sm.append_signature(None, layer).manifest
    assert data is not None
    config = sm.signature_config([layer])
    assert (
        data
        == (
            '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
            '"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":' + str(len(config)) + ","
            '"digest":"'
            + sha256(config)
            + '"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json",'
            '"size":' + str(layer.size) + ',"digest":"' + layer.digest + '","annotations":'
            '{"dev.cosignproject.cosign/signature":"' + layer.signature_b64 + '"}}]}'
        ).encode()
    )


# --- appending ---------------------------------------------------------------------------------------------


def test_first_signature_creates_the_manifest_and_names_the_blobs() -> None:
    key = new_key()
    layer = sign(key, payload_for())
    update = sm.append_signature(None, layer)
    assert update.needs_write and update.manifest is not None and update.duplicate_of is None
    assert update.manifest_digest == sha256(update.manifest)
    payload_blob, config_blob = update.blobs
    assert (payload_blob.media_type, payload_blob.data) == (sm.SIMPLE_SIGNING_MEDIA_TYPE, layer.payload)
    assert config_blob.media_type == sm.OCI_CONFIG_MEDIA_TYPE
    manifest = json.loads(update.manifest)
    assert manifest["config"]["digest"] == config_blob.digest and manifest["config"]["size"] == config_blob.size
    assert manifest["layers"][0]["digest"] == payload_blob.digest


def test_append_keeps_existing_layers_exactly_and_adds_last() -> None:
    existing_bytes = marshal_go_json(json.loads(JQ.read_bytes()))
    existing = sm.read_signature_manifest(existing_bytes, "registry")
    layer = sign(new_key(), payload_for("index.docker.io/salrashid123/server_image"))
    update = sm.append_signature(existing, layer)
    assert update.manifest is not None
    old, new = json.loads(existing_bytes), json.loads(update.manifest)
    assert new["layers"][:1] == old["layers"]
    assert new["layers"][1]["digest"] == layer.digest
    # Byte level: the old layer descriptor text appears unchanged in the new manifest.
    old_layer_text = existing_bytes[existing_bytes.index(b'"layers":[') + 10 : -2]
    assert old_layer_text in update.manifest
    assert new["config"]["digest"] == sha256(sm.signature_config([registry_layer(), layer]))


def test_an_identical_layer_is_not_added_again() -> None:
    layer = sign(new_key(), payload_for())
    first = sm.append_signature(None, layer)
    assert first.manifest is not None
    existing = sm.read_signature_manifest(first.manifest, "sig")
    again = sm.append_signature(existing, layer)
    assert not again.needs_write and again.manifest is None and again.blobs == ()
    assert again.duplicate_of == existing.layers[0]
    assert again.manifest_digest is None


def test_a_fresh_ecdsa_signature_of_the_same_payload_is_a_duplicate_with_the_key() -> None:
    """ECDSA signatures are randomised: only cosign's rule (verify with the signer's key) dedupes re-runs."""
    key = new_key()
    payload = payload_for()
    first = sm.append_signature(None, sign(key, payload))
    assert first.manifest is not None
    existing = sm.read_signature_manifest(first.manifest, "sig")
    second = sign(key, payload)
    assert second.signature_b64 != existing.layers[0].signature_b64
    assert sm.append_signature(existing, second, public_key=key.public_key).duplicate_of == existing.layers[0]
    assert sm.find_signed(existing.signature_layers, payload, key.public_key) == existing.layers[0]
    # Without the key it looks like a new signature (different annotations).
    assert sm.append_signature(existing, second).needs_write
    # Another signer's signature of the same payload is no duplicate.
    other = new_key()
    assert sm.append_signature(existing, sign(other, payload), public_key=other.public_key).needs_write
    assert sm.find_signed(existing.signature_layers, payload, other.public_key) is None
    # A new annotation the existing layer lacks (a Rekor bundle) makes it a new signature.
    with_bundle = sign(key, payload, bundle="{}")
    assert sm.append_signature(existing, with_bundle, public_key=key.public_key).needs_write
    assert sm.find_signed(existing.signature_layers, payload, key.public_key, annotations={"x": "y"}) is None


def test_append_keeps_foreign_layers_descriptor_order_and_manifest_annotations() -> None:
    foreign = (
        b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        b'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"'
        + sha256(b"{}").encode()
        + b'"},"layers":['
        b'{"digest":"' + sha256(b"x").encode() + b'","size":1,"mediaType":"application/octet-stream",'
        b'"annotations":{"z":"1","a":"2"}},'
        b'{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":1,"digest":"'
        + sha256(b"p").encode()
        + b'","annotations":{"dev.cosignproject.cosign/signature":"c2ln","b":"<&>"}}'
        b'],"annotations":{"org.example":"kept"},"subject":{"mediaType":"x","size":1,"digest":"'
        + sha256(b"s").encode()
        + b'"}}'
    )
    existing = sm.read_signature_manifest(foreign, "foreign")
    assert [ref.index for ref in existing.skipped_layers] == [0]
    assert [ref.index for ref in existing.signature_layers] == [1]
    assert len(sm.parse_signature_manifest(foreign, "foreign")) == 1
    layer = sign(new_key(), payload_for())
    update = sm.append_signature(existing, layer)
    assert update.manifest is not None
    assert (
        b'"layers":[{"digest":"' + sha256(b"x").encode() + b'","size":1,"mediaType":"application/octet-stream",'
        b'"annotations":{"z":"1","a":"2"}},'
    ) in update.manifest
    assert b'"b":"\\u003c\\u0026\\u003e"' in update.manifest
    new = json.loads(update.manifest)
    assert new["annotations"] == {"org.example": "kept"}
    assert "subject" not in new  # as go-containerregistry's mutate.Append drops it
    assert [layer["digest"] for layer in new["layers"]] == [sha256(b"x"), sha256(b"p"), layer.digest]


def test_append_to_a_docker_typed_manifest_keeps_docker_media_types() -> None:
    layer = vector_layer(IMAGE_SIGNATURES / "dir-img-cosign-valid")
    config = sm.signature_config([layer])
    docker = sm.build_signature_manifest([layer], config, docker_media_types=True)
    existing = sm.read_signature_manifest(docker, "docker")
    assert existing.uses_docker_media_types
    update = sm.append_signature(existing, sign(new_key(), payload_for()))
    assert update.manifest is not None and update.media_type == sm.DOCKER_MANIFEST_MEDIA_TYPE
    new = json.loads(update.manifest)
    assert new["mediaType"] == sm.DOCKER_MANIFEST_MEDIA_TYPE
    assert new["config"]["mediaType"] == sm.DOCKER_CONFIG_MEDIA_TYPE == update.blobs[1].media_type


def test_append_refuses_to_pass_cosigns_layer_limit() -> None:
    layer = sm.SignatureLayer(b"p", "c2ln")
    full = sm.build_signature_manifest([layer] * sm.MAX_LAYERS, b"{}")
    existing = sm.read_signature_manifest(full, "full")
    with pytest.raises(ConflictError) as info:
        sm.append_signature(existing, sign(new_key(), payload_for()))
    assert info.value.exit_code == ExitCode.CONFLICT
    assert sm.append_signature(existing, layer).duplicate_of is not None  # a duplicate is still fine


# --- malformed input ---------------------------------------------------------------------------------------

_CONFIG = '{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"' + sha256(b"{}") + '"}'
_LAYER = '{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":1,"digest":"' + sha256(b"p") + '"'


def _manifest(layers: str, media_type: str = sm.OCI_MANIFEST_MEDIA_TYPE, schema: str = "2") -> bytes:
    head = '{"schemaVersion":' + schema + ',"mediaType":"' + media_type + '"'
    return (head + ',"config":' + _CONFIG + ',"layers":' + layers + "}").encode()


BAD_MANIFESTS = {
    "not json": b"<html>",
    "not an object": b"[]",
    "duplicate key": _manifest("[]")[:-1] + b',"layers":[]}',
    "schema 1": _manifest("[]", schema="1"),
    "schema true": _manifest("[]", schema="true"),
    "an index": _manifest("[]", media_type="application/vnd.oci.image.index.v1+json"),
    "layers not a list": _manifest("{}"),
    "layer not an object": _manifest("[1]"),
    "missing annotations": _manifest("[" + _LAYER + "}]"),
    "missing signature annotation": _manifest("[" + _LAYER + ',"annotations":{"x":"y"}}]'),
    "annotation not a string": _manifest("[" + _LAYER + ',"annotations":{"dev.cosignproject.cosign/signature":1}}]'),
    "bad layer digest": _manifest('[{"mediaType":"a","size":1,"digest":"sha256:zz"}]'),
    "negative size": _manifest('[{"mediaType":"a","size":-1,"digest":"' + sha256(b"") + '"}]'),
    "no media type": _manifest('[{"size":1,"digest":"' + sha256(b"") + '"}]'),
    "no config": b'{"schemaVersion":2,"layers":[]}',
}


@pytest.mark.parametrize("data", BAD_MANIFESTS.values(), ids=BAD_MANIFESTS.keys())
def test_malformed_manifests_are_invalid_input_with_place(data: bytes) -> None:
    with pytest.raises(InvalidInputError) as info:
        sm.read_signature_manifest(data, "ghcr.io/a/b:sha256-x.sig")
    assert info.value.where == "ghcr.io/a/b:sha256-x.sig"
    assert info.value.exit_code == ExitCode.INVALID_INPUT
    assert "\n" not in str(info.value)


def test_a_manifest_without_media_type_and_with_empty_layers_is_accepted() -> None:
    manifest = sm.read_signature_manifest(b'{"schemaVersion":2,"config":' + _CONFIG.encode() + b',"layers":[]}', "x")
    assert manifest.media_type is None and manifest.layers == ()


_GOOD_DIR = (IMAGE_SIGNATURES / "dir-img-cosign-valid" / "signature-1").read_bytes()
BAD_DIR = {
    "no header": _GOOD_DIR[len(sm.DIR_SIGNATURE_PREFIX) :],
    "simple-signing header": b"\x00simple-signing\n" + _GOOD_DIR[len(sm.DIR_SIGNATURE_PREFIX) :],
    "not json": sm.DIR_SIGNATURE_PREFIX + b"{",
    "not an object": sm.DIR_SIGNATURE_PREFIX + b"[]",
    "wrong mime type": _GOOD_DIR.replace(b"simplesigning.v1+json", b"other"),
    "no payload": sm.DIR_SIGNATURE_PREFIX + b'{"mimeType":"application/vnd.dev.cosign.simplesigning.v1+json"}',
    "bad base64": _GOOD_DIR.replace(b'"payload":"eyJ', b'"payload":"!!!'),
    "no signature": sm.DIR_SIGNATURE_PREFIX
    + b'{"mimeType":"application/vnd.dev.cosign.simplesigning.v1+json","payload":"cA==","annotations":null}',
    "annotations not strings": sm.DIR_SIGNATURE_PREFIX
    + b'{"mimeType":"application/vnd.dev.cosign.simplesigning.v1+json","payload":"cA==","annotations":{"a":1}}',
}


@pytest.mark.parametrize("data", BAD_DIR.values(), ids=BAD_DIR.keys())
def test_malformed_dir_signatures_are_invalid_input(data: bytes) -> None:
    with pytest.raises(InvalidInputError) as info:
        sm.decode_dir_signature(data, "signature-1")
    assert info.value.where == "signature-1"


# --- properties ------------------------------------------------------------------------------------------------

_key = st.text(min_size=1, max_size=20).filter(lambda k: k not in sm.KNOWN_ANNOTATIONS)


@given(
    payload=st.binary(max_size=200),
    signature=st.binary(min_size=1, max_size=80),
    bundle=st.one_of(st.none(), st.text(max_size=40)),
    extra=st.dictionaries(_key, st.text(max_size=20), max_size=4),
)
def test_layers_round_trip_through_manifest_and_dir_format(
    payload: bytes, signature: bytes, bundle: str | None, extra: dict[str, str]
) -> None:
    layer = sm.SignatureLayer(
        payload, base64.b64encode(signature).decode(), bundle=bundle, extra_annotations=tuple(sorted(extra.items()))
    )
    assert sm.decode_dir_signature(sm.encode_dir_signature(layer), "prop") == layer
    update = sm.append_signature(None, layer)
    assert update.manifest is not None
    (ref,) = sm.parse_signature_manifest(update.manifest, "prop")
    assert ref.to_signature_layer(payload, "prop") == layer
    assert ref.to_signature_layer(payload, "prop").signature == signature
    assert sm.append_signature(sm.read_signature_manifest(update.manifest, "prop"), layer).manifest is None


def test_artifact_type_is_kept_and_must_be_a_string() -> None:
    base = json.loads(sm.build_signature_manifest([sm.SignatureLayer(b"p", "c2ln")], b"{}"))
    kept = sm.read_signature_manifest(json.dumps({**base, "artifactType": "application/x"}).encode(), "x")
    update = sm.append_signature(kept, sign(new_key(), payload_for()))
    assert update.manifest is not None and json.loads(update.manifest)["artifactType"] == "application/x"
    with pytest.raises(InvalidInputError):
        sm.read_signature_manifest(json.dumps({**base, "artifactType": 1}).encode(), "x")


def test_an_empty_signature_never_counts_as_signed() -> None:
    key = new_key()
    payload = payload_for()
    empty = sm.SignatureLayer(payload, "")
    with pytest.raises(InvalidInputError):
        _ = empty.signature
    assert sm.find_signed([_ref_of(empty)], payload, key.public_key) is None
