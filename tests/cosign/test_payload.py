"""The simple-signing payload: byte for byte against cosign- and containers/image-written vectors,
Go's json.Marshal escaping checked by an encoder written here from Go's rules, and strict parsing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.cosign.payload import (
    COSIGN_SIGNATURE_TYPE,
    SimpleSigningPayload,
    marshal_go_json,
    parse_simple_signing_payload,
    simple_signing_payload,
)
from pipeline.errors import ExitCode, InvalidInputError
from tests.conftest import COSIGN_VECTORS

IMAGE_SIGNATURES = COSIGN_VECTORS / "image-signatures"
REGISTRY = COSIGN_VECTORS / "registry-sig-manifest"
DIR_IMAGES = sorted(IMAGE_SIGNATURES.glob("dir-img-*"))
PAYLOAD_FILES = [d / "payload.json" for d in DIR_IMAGES] + [REGISTRY / "payload.reconstructed.json"]
DIGEST = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_every_vector_folder_is_covered() -> None:
    assert {d.name for d in DIR_IMAGES} == {
        "dir-img-cosign-valid",
        "dir-img-cosign-key-rekor-valid",
        "dir-img-cosign-fulcio-rekor-valid",
        "dir-img-cosign-valid-with-tag",
    }


# --- the vectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAYLOAD_FILES, ids=_id)
def test_vector_payload_reproduces_byte_for_byte_from_its_fields(path: Path) -> None:
    raw = path.read_bytes()
    parsed = parse_simple_signing_payload(raw, str(path))
    assert parsed.type == COSIGN_SIGNATURE_TYPE
    assert simple_signing_payload(parsed.docker_reference, parsed.manifest_digest, parsed.optional) == raw


@pytest.mark.parametrize("folder", [d for d in DIR_IMAGES if "with-tag" not in d.name], ids=lambda d: d.name)
def test_cosign_written_payloads_have_optional_null(folder: Path) -> None:
    parsed = parse_simple_signing_payload((folder / "payload.json").read_bytes(), str(folder))
    assert parsed.optional is None
    assert parsed.creator is None and parsed.timestamp is None
    assert ":" not in parsed.docker_reference.rsplit("/", 1)[-1]  # no tag, no digest
    raw = simple_signing_payload(parsed.docker_reference, parsed.manifest_digest, None)
    assert raw == (folder / "payload.json").read_bytes()


@pytest.mark.parametrize("folder", DIR_IMAGES, ids=lambda d: d.name)
def test_manifest_digest_in_payload_is_sha256_of_the_image_manifest(folder: Path) -> None:
    parsed = parse_simple_signing_payload((folder / "payload.json").read_bytes(), str(folder))
    assert parsed.manifest_digest == "sha256:" + hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()


def test_containers_image_variant_parses_creator_and_timestamp() -> None:
    folder = IMAGE_SIGNATURES / "dir-img-cosign-valid-with-tag"
    parsed = parse_simple_signing_payload((folder / "payload.json").read_bytes(), str(folder))
    assert parsed == SimpleSigningPayload(
        docker_reference="192.168.64.2:5000/skopeo-signed:tag",
        manifest_digest=DIGEST,
        type=COSIGN_SIGNATURE_TYPE,
        optional={"creator": "containers/image 5.21.2-dev", "timestamp": 1657296609},
    )
    assert parsed.creator == "containers/image 5.21.2-dev"
    assert parsed.timestamp == 1657296609


def test_registry_payload_digest_is_the_layer_digest() -> None:
    raw = (REGISTRY / "payload.reconstructed.json").read_bytes()
    manifest = json.loads((REGISTRY / "sig-manifest.as-printed-by-jq.json").read_bytes())
    layer = manifest["layers"][0]
    assert layer["digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert layer["size"] == len(raw) == 257
    parsed = parse_simple_signing_payload(raw, "registry")
    assert parsed.docker_reference == "index.docker.io/salrashid123/server_image"
    assert simple_signing_payload(parsed.docker_reference, parsed.manifest_digest, None) == raw


# --- Go's json.Marshal, from its rules --------------------------------------------------------------


def go_string(value: str) -> str:
    """A JSON string as Go's encoding/json writes it (escapeHTML on, Go >= 1.22 short escapes)."""
    short = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
    out = []
    for char in value:
        if char in short:
            out.append(short[char])
        elif ord(char) < 0x20 or char in "<>&\u2028\u2029":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def go_payload(reference: str, digest: str, annotations: dict[str, str] | None) -> bytes:
    optional = "null"
    if annotations:
        optional = "{" + ",".join(f"{go_string(k)}:{go_string(annotations[k])}" for k in sorted(annotations)) + "}"
    return (
        '{"critical":{"identity":{"docker-reference":'
        + go_string(reference)
        + '},"image":{"docker-manifest-digest":'
        + go_string(digest)
        + '},"type":"cosign container image signature"},"optional":'
        + optional
        + "}"
    ).encode("utf-8")


def test_go_escapes_html_characters_and_line_separators_and_keeps_other_unicode_raw() -> None:
    payload = simple_signing_payload(
        "ghcr.io/a/b", DIGEST, {"a<b": "x&y>z", "sep": "\u2028\u2029", "uni": "é→😀", "ctl": "\x01\t"}
    )
    assert payload.endswith(
        b'"optional":{"a\\u003cb":"x\\u0026y\\u003ez","ctl":"\\u0001\\t","sep":"\\u2028\\u2029",'
        + '"uni":"é→😀"}}'.encode()
    )
    assert b"<" not in payload and b">" not in payload and b"&" not in payload


def test_annotation_keys_are_sorted_as_go_sorts_map_keys() -> None:
    payload = simple_signing_payload("r", DIGEST, {"b": "1", "a": "2", "B": "3", "é": "4", "z": "5", "😀": "6"})
    optional = json.loads(payload)["optional"]
    assert list(optional) == ["B", "a", "b", "z", "é", "😀"]  # UTF-8 byte order


def test_empty_annotations_give_null_like_cosign_without_dash_a() -> None:
    assert simple_signing_payload("r", DIGEST, {}) == simple_signing_payload("r", DIGEST, None)
    assert simple_signing_payload("r", DIGEST, None).endswith(b',"optional":null}')


def test_marshal_go_json_keeps_dict_order_and_replaces_lone_surrogates() -> None:
    assert marshal_go_json({"z": 1, "a": [True, None]}) == b'{"z":1,"a":[true,null]}'
    assert marshal_go_json("\ud800") == '"\ufffd"'.encode()


@pytest.mark.parametrize(
    ("reference", "digest", "annotations"),
    [
        ("", DIGEST, None),
        ("r", "sha256:abc", None),
        ("r", DIGEST.upper(), None),
        ("r", "md5:" + "0" * 32, None),
        ("r", DIGEST, {"n": 1.5}),
        ("r", DIGEST, {"n": ["list"]}),
    ],
)
def test_builder_refuses_what_cosign_cannot_write(
    reference: str, digest: str, annotations: dict[str, object] | None
) -> None:
    with pytest.raises(InvalidInputError):
        simple_signing_payload(reference, digest, annotations)


text = st.text(max_size=30)


@given(
    reference=st.text(min_size=1, max_size=40),
    annotations=st.one_of(st.none(), st.dictionaries(text, text, max_size=6)),
)
def test_payload_is_gos_bytes_and_annotations_round_trip(reference: str, annotations: dict[str, str] | None) -> None:
    payload = simple_signing_payload(reference, DIGEST, annotations)
    assert payload == go_payload(reference, DIGEST, annotations)
    parsed = parse_simple_signing_payload(payload, "generated")
    assert parsed.docker_reference == reference
    assert parsed.manifest_digest == DIGEST
    assert parsed.optional == (annotations or None)
    assert simple_signing_payload(parsed.docker_reference, parsed.manifest_digest, parsed.optional) == payload


# --- parsing refuses malformed payloads ---------------------------------------------------------------

GOOD = json.loads((IMAGE_SIGNATURES / "dir-img-cosign-valid" / "payload.json").read_bytes())


def _variant(**changes: object) -> bytes:
    document = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = document
        for part in parents:
            target = target[part.replace("_", "-")]
        if value is _DELETE:
            del target[last.replace("_", "-")]
        else:
            target[last.replace("_", "-")] = value
    return json.dumps(document).encode()


_DELETE = object()

BAD_PAYLOADS = {
    "not json": b"{not json",
    "not utf-8": b'{"critical":"\xff"}',
    "not an object": b"[]",
    "NaN": b'{"critical":NaN,"optional":null}',
    "duplicate key": (
        b'{"critical":{"identity":{"docker-reference":"a"},"identity":{"docker-reference":"b"},'
        b'"image":{"docker-manifest-digest":"' + DIGEST.encode() + b'"},'
        b'"type":"cosign container image signature"},"optional":null}'
    ),
    "no critical": _variant(critical=_DELETE),
    "unknown top-level field": _variant(extra=1),
    "critical not an object": _variant(critical="x"),
    "unknown critical field": _variant(critical__extra="x"),
    "no identity": _variant(critical__identity=_DELETE),
    "no image": _variant(critical__image=_DELETE),
    "no type": _variant(critical__type=_DELETE),
    "wrong type": _variant(critical__type="atomic container signature"),
    "reference not a string": _variant(critical__identity__docker_reference=5),
    "empty reference": _variant(critical__identity__docker_reference=""),
    "unknown identity field": _variant(critical__identity__extra="x"),
    "bad digest": _variant(critical__image__docker_manifest_digest="sha256:xyz"),
    "optional a list": _variant(optional=[]),
}


@pytest.mark.parametrize("data", BAD_PAYLOADS.values(), ids=BAD_PAYLOADS.keys())
def test_malformed_payloads_are_invalid_input_with_place(data: bytes) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_simple_signing_payload(data, "ghcr.io/a/b@sha256:…")
    assert info.value.exit_code == ExitCode.INVALID_INPUT
    assert info.value.where == "ghcr.io/a/b@sha256:…"
    assert "\n" not in str(info.value)


def test_optional_values_of_any_type_are_accepted_as_cosign_accepts_them() -> None:
    """`cosign sign -a timestamp=x` writes a string where containers/image writes an integer."""
    parsed = parse_simple_signing_payload(_variant(optional={"timestamp": "1", "creator": 1}), "x")
    assert parsed.timestamp is None and parsed.creator is None
    assert parsed.optional == {"timestamp": "1", "creator": 1}


def test_parse_tolerates_missing_optional() -> None:
    assert parse_simple_signing_payload(_variant(optional=_DELETE), "x").optional is None
