"""Property tests (hypothesis): parsers on generated garbage raise only our own errors, never crash.

Reference parsing, the signature payload (round trip, and parsing garbage), the YAML loader of the
source definition, and the tar extractor of the vector artifact: every failure is a ReleaseVectorError.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import tarfile

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.artifact import pack_vector, unpack_vector
from pipeline.cosign.payload import parse_simple_signing_payload, simple_signing_payload
from pipeline.errors import ReleaseVectorError
from pipeline.oci.reference import parse_reference
from pipeline.vector import load_source

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

reference_alphabet = st.sampled_from([*list("abcxyz019._-/:@AZ"), "sha256:", "a" * 64, "localhost", ":5000", "\n", " "])
reference_like = st.lists(reference_alphabet, max_size=30).map("".join)
digests = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map(lambda h: "sha256:" + h)
components = st.from_regex(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", fullmatch=True).filter(lambda c: len(c) <= 30)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@SETTINGS
@given(st.one_of(st.text(max_size=80), reference_like))
@example("ghcr.io/a/b:v1@sha256:" + "0" * 64)
@example("")
@example("a" * 300)
def test_parse_reference_only_our_errors(text: str) -> None:
    try:
        ref = parse_reference(text)
    except ReleaseVectorError:
        return
    assert parse_reference(str(ref)) == ref  # what parses prints back to itself


@SETTINGS
@given(st.lists(components, min_size=1, max_size=4), st.one_of(st.none(), tags), st.one_of(st.none(), digests))
def test_reference_round_trip(path: list[str], tag: str | None, digest: str | None) -> None:
    text = "registry.example.com:5000/" + "/".join(path)
    if tag is None and digest is None:
        tag = "latest"
    if tag is not None:
        text += f":{tag}"
    if digest is not None:
        text += f"@{digest}"
    ref = parse_reference(text)
    assert (ref.tag, ref.digest) == (tag, digest)
    assert parse_reference(str(ref)) == ref


annotation_values = st.one_of(st.text(max_size=20), st.integers(-(2**53), 2**53), st.booleans(), st.none())


@SETTINGS
@given(
    st.text(min_size=1, max_size=60),
    digests,
    st.one_of(st.none(), st.dictionaries(st.text(max_size=15), annotation_values, max_size=4)),
)
def test_payload_round_trip(docker_reference: str, digest: str, annotations: dict[str, object] | None) -> None:
    try:
        data = simple_signing_payload(docker_reference, digest, annotations)
    except ReleaseVectorError:
        return
    payload = parse_simple_signing_payload(data, "generated")
    assert payload.docker_reference == docker_reference
    assert payload.manifest_digest == digest
    assert payload.optional == (annotations or None)
    assert simple_signing_payload(payload.docker_reference, payload.manifest_digest, payload.optional) == data


json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=10,
)


@SETTINGS
@given(st.one_of(st.binary(max_size=200), json_like.map(lambda v: __import__("json").dumps(v).encode())))
@example(b'{"critical":{"identity":{"docker-reference":1},"image":{},"type":""},"optional":null}')
@example(b'{"critical": null}')
@example(b"\xff\xfe")
def test_payload_parser_only_our_errors(data: bytes) -> None:
    with contextlib.suppress(ReleaseVectorError):
        parse_simple_signing_payload(data, "garbage")


yaml_tokens = st.sampled_from(
    [
        "docker-images:",
        "\n",
        "  ",
        "- ",
        "name: ",
        "tag: ",
        "ghcr.io/a/b",
        "v1",
        "&a ",
        "*a",
        "<<: ",
        "!!python/object ",
        "{",
        "}",
        "[",
        "]",
        ", ",
        ": ",
        "'",
        '"',
        "#",
        "---\n",
        "...\n",
        "\t",
        "%YAML 1.1\n",
        "? ",
        "|\n",
        "\r",
        "\x00",
        "\ufeff",
        "release-vector:",
        "digest: sha256:",
    ]
)
yaml_like = st.lists(yaml_tokens, max_size=40).map("".join)


@SETTINGS
@given(st.one_of(st.binary(max_size=300), yaml_like.map(lambda t: t.encode("utf-8", "surrogatepass"))))
@example(b"docker-images:\n  a:\n    name: ghcr.io/x/y\n    tag: [1, 2]\n")
@example(b"docker-images: &a [*a]\n")
@example(b"\xef\xbb\xbf\xef\xbb\xbfdocker-images: {}\n")
def test_source_loader_only_our_errors(data: bytes) -> None:
    with contextlib.suppress(ReleaseVectorError):
        load_source(data, "garbage.yaml")


def _tar(members: list[tuple[str, bytes, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content, kind in members:
            info = tarfile.TarInfo(name)
            info.size = len(content) if kind == tarfile.REGTYPE else 0
            info.type = kind
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = "../../etc/passwd"
            tar.addfile(info, io.BytesIO(content) if kind == tarfile.REGTYPE else None)
    return buffer.getvalue()


member_names = st.sampled_from(["release.yaml", "../release.yaml", "/release.yaml", "a/release.yaml", "x", ""])
member_kinds = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE])
members = st.lists(st.tuples(member_names, st.binary(max_size=50), member_kinds), max_size=3)


@SETTINGS
@given(
    st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=300).map(gzip.compress),
        members.map(lambda m: gzip.compress(_tar(m))),
        members.map(_tar),
        st.tuples(st.binary(max_size=40), st.integers(0, 200)).map(
            lambda t: (lambda data: data[: t[1]] + t[0])(pack_vector(b"docker-images: {}\n"))
        ),
    )
)
def test_tar_extractor_only_our_errors(data: bytes) -> None:
    try:
        content = unpack_vector(data, "garbage layer")
    except ReleaseVectorError:
        return
    assert isinstance(content, bytes)


def test_tar_extractor_round_trip() -> None:
    vector = b"docker-images: {}\n"
    assert unpack_vector(pack_vector(vector), "layer") == vector
