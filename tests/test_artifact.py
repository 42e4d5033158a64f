"""The vector artifact's bytes: reproducible tar.gz, oras-go-shaped manifest, and defensive reading."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.artifact import (
    EMPTY_CONFIG_DIGEST,
    MAX_LAYER_BYTES,
    MAX_VECTOR_BYTES,
    ArtifactAnnotations,
    build_artifact_manifest,
    deflate,
    go_json,
    make_artifact,
    pack_tar,
    pack_vector,
    parse_source_date_epoch,
    rfc3339,
    select_vector_layer,
    unpack_vector,
)
from pipeline.errors import InvalidInputError
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from tests.conftest import REPO_ROOT, VECTORS

METAL_STACK_VECTOR = VECTORS / "metal-stack" / "release-v0.22.19.yaml"
SAMPLE = b"release-vector:\n  version: v0.1.0\n"
SAMPLE_ANNOTATIONS = ArtifactAnnotations(
    version="v0.1.0",
    revision="0123456789abcdef0123456789abcdef01234567",
    source="https://github.com/example/releases",
)
# The exact manifest for SAMPLE: any machine, any Python, any zlib must produce these bytes.
SAMPLE_MANIFEST = (
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
    b'"artifactType":"application/vnd.metal-stack.release-vector.v1",'
    b'"config":{"mediaType":"application/vnd.oci.empty.v1+json",'
    b'"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="},'
    b'"layers":[{"mediaType":"application/vnd.metal-stack.release-vector.v1.tar+gzip",'
    b'"digest":"sha256:7a0e5fec6f6a3fa0ef5d569e54cd5b2c27e6ed492a6a62e7bf7077537448820c","size":170,'
    b'"annotations":{"org.opencontainers.image.title":"release.tar.gz"}}],'
    b'"annotations":{"org.opencontainers.image.revision":"0123456789abcdef0123456789abcdef01234567",'
    b'"org.opencontainers.image.source":"https://github.com/example/releases",'
    b'"org.opencontainers.image.version":"v0.1.0"}}'
)
SAMPLE_DIGEST = "sha256:d903f59fc40bb70b1de69b04171b2c744eabcb75c63ab1e35c4653d70d023f92"
TINY_LAYER_DIGEST = "sha256:dad62010834427f5fe1002e51f7a1e6906775a2e0ce9991dd3b14d06ce49b143"  # pack_vector(b"a: 1\n")


# --- reproducibility ------------------------------------------------------------------------------


def test_sample_artifact_has_pinned_bytes() -> None:
    artifact = make_artifact(SAMPLE, SAMPLE_ANNOTATIONS)
    assert artifact.manifest == SAMPLE_MANIFEST
    assert artifact.digest == SAMPLE_DIGEST == digests.compute(SAMPLE_MANIFEST)
    assert digests.compute(pack_vector(b"a: 1\n")) == TINY_LAYER_DIGEST


def test_same_vector_same_bytes_and_a_change_changes_them() -> None:
    data = METAL_STACK_VECTOR.read_bytes()
    assert pack_vector(data) == pack_vector(data)
    assert make_artifact(data, ArtifactAnnotations()).digest == make_artifact(data, ArtifactAnnotations()).digest
    assert pack_vector(data) != pack_vector(data + b"\n")
    assert pack_vector(data) != pack_vector(data, mtime=1)


def test_same_bytes_in_another_process_with_another_umask_timezone_and_locale(tmp_path: Path) -> None:
    script = (
        "import hashlib, sys\n"
        "from pipeline.artifact import ArtifactAnnotations, make_artifact\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "print(make_artifact(data, ArtifactAnnotations(version='v0.22.19')).digest)\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TZ": "Pacific/Chatham",
        "LC_ALL": "C",
        "HOME": str(tmp_path),
        "PYTHONHASHSEED": "12345",
        "SOURCE_DATE_EPOCH": "1700000000",  # the core never reads the environment
    }
    result = subprocess.run(
        ["/bin/sh", "-c", 'umask 077 && exec "$0" -c "$1" "$2"', sys.executable, script, str(METAL_STACK_VECTOR)],
        capture_output=True,
        check=True,
        cwd=REPO_ROOT,
        env=env,
        text=True,
    )
    here = make_artifact(METAL_STACK_VECTOR.read_bytes(), ArtifactAnnotations(version="v0.22.19")).digest
    assert result.stdout.strip() == here


def test_tar_header_fields() -> None:
    data = METAL_STACK_VECTOR.read_bytes()
    raw = pack_tar(data)
    assert len(raw) % 10240 == 0
    assert raw[257:265] == b"ustar\x0000"  # POSIX ustar, not GNU
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        [member] = tar.getmembers()
        assert member.name == "release.yaml"
        assert member.isreg()
        assert (member.mode, member.uid, member.gid, member.uname, member.gname) == (0o644, 0, 0, "", "")
        assert member.mtime == 0
        assert member.size == len(data)
        assert member.pax_headers == {}
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == data
    with tarfile.open(fileobj=io.BytesIO(pack_tar(data, mtime=1700000000)), mode="r:") as tar:
        assert tar.getmember("release.yaml").mtime == 1700000000


@pytest.mark.parametrize(("content", "mtime"), [(b"", 0), (b"a: 1\n", 0), (b"x" * 513, 1700000000)])
def test_tar_equals_what_pythons_tarfile_writes_for_the_same_fields(content: bytes, mtime: int) -> None:
    info = tarfile.TarInfo("release.yaml")
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = (
        len(content),
        mtime,
        0o644,
        0,
        0,
        "",
        "",
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(content))
    assert pack_tar(content, mtime=mtime) == buffer.getvalue()


def test_gzip_header_has_mtime_zero_and_no_file_name() -> None:
    layer = pack_vector(METAL_STACK_VECTOR.read_bytes())
    assert layer[:3] == b"\x1f\x8b\x08"  # gzip, deflate
    flags = layer[3]
    assert flags == 0  # no FNAME (0x08), no FCOMMENT, no FEXTRA, no FHCRC
    assert layer[4:8] == b"\0\0\0\0"  # MTIME
    assert layer[9] == 0xFF  # OS: unknown, not the building machine's
    assert gzip.decompress(layer) == pack_tar(METAL_STACK_VECTOR.read_bytes())


def test_layer_compresses() -> None:
    data = METAL_STACK_VECTOR.read_bytes()
    assert len(pack_vector(data)) < len(data) // 3


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000) | st.text(alphabet="ab \n:", max_size=3000).map(str.encode))
def test_deflate_round_trips_through_zlib(data: bytes) -> None:
    assert zlib.decompress(deflate(data), -zlib.MAX_WBITS) == data


@pytest.mark.parametrize("size", [0, 1, 2, 3, 257, 258, 259, 40000, 70000])
def test_deflate_round_trips_runs_and_long_distances(size: int) -> None:
    for data in (b"\0" * size, os.urandom(size), (os.urandom(300) * (size // 300 + 1))[:size]):
        assert zlib.decompress(deflate(data), -zlib.MAX_WBITS) == data


def test_the_consumer_reads_our_layer_as_metal_stack_does() -> None:
    data = METAL_STACK_VECTOR.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(pack_vector(data)), mode="r:gz") as tar:
        extracted = tar.extractfile(tar.getmember("release.yaml"))
        assert extracted is not None
        assert extracted.read().decode("utf-8") == data.decode("utf-8")


def test_vector_over_the_limit_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="limit"):
        pack_vector(b"x" * (MAX_VECTOR_BYTES + 1))


# --- the manifest ---------------------------------------------------------------------------------


def test_manifest_shape_and_key_order() -> None:
    layer = pack_vector(SAMPLE)
    manifest = build_artifact_manifest(layer, SAMPLE_ANNOTATIONS)
    pairs = json.loads(manifest, object_pairs_hook=lambda items: items)
    assert [key for key, _ in pairs] == [
        "schemaVersion",
        "mediaType",
        "artifactType",
        "config",
        "layers",
        "annotations",
    ]
    parsed = json.loads(manifest)
    assert parsed["config"] == {
        "mediaType": mediatypes.OCI_EMPTY,
        "digest": EMPTY_CONFIG_DIGEST,
        "size": 2,
        "data": "e30=",
    }
    assert digests.compute(b"{}") == EMPTY_CONFIG_DIGEST
    [descriptor] = parsed["layers"]
    assert descriptor == {
        "mediaType": mediatypes.RELEASE_VECTOR_LAYER,
        "digest": digests.compute(layer),
        "size": len(layer),
        "annotations": {"org.opencontainers.image.title": "release.tar.gz"},
    }
    assert b" " not in manifest and b"\n" not in manifest


def test_no_annotations_means_no_annotations_key() -> None:
    parsed = json.loads(build_artifact_manifest(pack_vector(SAMPLE), ArtifactAnnotations()))
    assert "annotations" not in parsed
    assert "org.opencontainers.image.created" not in json.dumps(parsed)


def test_created_only_from_source_date_epoch_in_go_rfc3339() -> None:
    notes = ArtifactAnnotations.from_epoch(version="v1.2.3", epoch=1700000000)
    assert notes.to_dict() == {
        "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
        "org.opencontainers.image.version": "v1.2.3",
    }
    assert ArtifactAnnotations.from_epoch(version="v1", epoch=None).created is None
    assert rfc3339(0) == "1970-01-01T00:00:00Z"


def test_annotation_values_are_escaped_as_go_does() -> None:
    notes = ArtifactAnnotations(source="https://example.com/a?b=1&c=<2>")
    manifest = build_artifact_manifest(b"x", notes)
    assert b'"https://example.com/a?b=1\\u0026c=\\u003c2\\u003e"' in manifest
    assert json.loads(manifest)["annotations"]["org.opencontainers.image.source"] == "https://example.com/a?b=1&c=<2>"
    assert go_json({"a": "é\u2028"}) == '{"a":"é\\u2028"}'.encode()


@pytest.mark.parametrize("value", ["", " v1", "v1\n", "a\tb"])
def test_bad_annotation_values_are_refused(value: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        ArtifactAnnotations(version=value)
    assert caught.value.where == "org.opencontainers.image.version"


@pytest.mark.parametrize(("text", "expected"), [("0", 0), ("1700000000", 1700000000), (" 5 ", 5)])
def test_source_date_epoch(text: str, expected: int) -> None:
    assert parse_source_date_epoch(text) == expected


@pytest.mark.parametrize("text", ["-1", "1.5", "abc", "", "99999999999999"])
def test_bad_source_date_epoch(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_source_date_epoch(text)
    assert caught.value.where == "SOURCE_DATE_EPOCH"


# --- selecting the layer ----------------------------------------------------------------------------


def _descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": digests.compute(data), "size": len(data)}


def test_select_takes_the_first_layer_of_the_vector_media_type() -> None:
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": _descriptor(mediatypes.OCI_EMPTY, b"{}"),
        "layers": [
            _descriptor(mediatypes.OCI_LAYER_TAR_GZIP, b"other"),
            _descriptor(mediatypes.RELEASE_VECTOR_LAYER, b"first"),
            _descriptor(mediatypes.RELEASE_VECTOR_LAYER, b"second"),
        ],
    }
    layer = select_vector_layer(json.dumps(manifest).encode(), "here")
    assert layer.digest == digests.compute(b"first") and layer.size == 5


def test_select_reads_our_manifest() -> None:
    layer = select_vector_layer(SAMPLE_MANIFEST, "here")
    assert layer.digest == "sha256:7a0e5fec6f6a3fa0ef5d569e54cd5b2c27e6ed492a6a62e7bf7077537448820c"
    assert layer.title == "release.tar.gz"


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (json.dumps({"mediaType": mediatypes.OCI_INDEX, "manifests": []}).encode(), "image index"),
        (json.dumps({"mediaType": "application/x-foo", "layers": []}).encode(), "unexpected manifest media type"),
        (json.dumps({"schemaVersion": 2}).encode(), "no layers"),
        (json.dumps({"layers": [_descriptor(mediatypes.OCI_LAYER_TAR_GZIP, b"x")]}).encode(), "no layer of media type"),
        (
            json.dumps(
                {"layers": [{"mediaType": mediatypes.RELEASE_VECTOR_LAYER, "digest": "md5:x", "size": 1}]}
            ).encode(),
            "malformed digest",
        ),
        (
            json.dumps({"layers": [{**_descriptor(mediatypes.RELEASE_VECTOR_LAYER, b"x"), "size": True}]}).encode(),
            "malformed size",
        ),
        (
            json.dumps(
                {"layers": [{**_descriptor(mediatypes.RELEASE_VECTOR_LAYER, b"x"), "size": MAX_LAYER_BYTES + 1}]}
            ).encode(),
            "limit",
        ),
    ],
)
def test_select_refuses(manifest: bytes, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason) as caught:
        select_vector_layer(manifest, "reg/repo@sha256:x")
    assert caught.value.where == "reg/repo@sha256:x"


# --- unpacking --------------------------------------------------------------------------------------


def _targz(*members: tuple[tarfile.TarInfo, bytes | None], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=fmt) as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return buffer.getvalue()


def _file(name: str, content: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    return info, content


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def test_unpack_our_layer() -> None:
    data = METAL_STACK_VECTOR.read_bytes()
    assert unpack_vector(pack_vector(data), "here") == data


def test_unpack_a_layer_as_gnu_tar_czvf_makes_it() -> None:
    """metal-stack's own layers: GNU format, real mtime, owner names, a gzip header with the file name."""
    info, content = _file("release.yaml", b"docker-images: {}\n")
    info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 1753184000, 1001, 118, "runner", "docker", 0o664
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(content))
    named = io.BytesIO()
    with gzip.GzipFile(filename="release.tar", mode="wb", fileobj=named, mtime=1753184000) as stream:
        stream.write(raw.getvalue())
    assert named.getvalue()[3] & 0x08  # FNAME set, as gzip(1) writes it
    assert unpack_vector(named.getvalue(), "here") == content


def test_unpack_accepts_concatenated_gzip_members() -> None:
    raw = pack_tar(b"a: 1\n")
    layer = gzip.compress(raw[:700], mtime=0) + gzip.compress(raw[700:], mtime=0)
    assert unpack_vector(layer, "here") == b"a: 1\n"


@pytest.mark.parametrize(
    ("layer", "reason"),
    [
        (_targz(_file("/release.yaml", b"x")), "absolute path"),
        (_targz(_file("../release.yaml", b"x")), r"climbs out of the directory \(\.\.\)"),
        (_targz(_file("a/../../release.yaml", b"x")), r"\.\."),
        (_targz(_special("release.yaml", tarfile.SYMTYPE, "/etc/passwd")), "is a link"),
        (_targz(_special("release.yaml", tarfile.LNKTYPE, "other")), "is a link"),
        (_targz(_special("release.yaml", tarfile.DIRTYPE)), "not a regular file"),
        (_targz(_special("release.yaml", tarfile.FIFOTYPE)), "not a regular file"),
        (_targz(_special("release.yaml", tarfile.CHRTYPE)), "not a regular file"),
        (_targz(_file("./release.yaml", b"x")), "is not release.yaml"),
        (_targz(_file("other.yaml", b"x")), "is not release.yaml"),
        (_targz(_file("release.yaml", b"x"), _file("release.yaml", b"y")), "more than one member"),
        (_targz(_file("release.yaml", b"x"), _file("extra", b"y")), "more than one member"),
        (_targz(), "empty"),
        (b"PK\x03\x04 a zip file", "not valid gzip"),
        (pack_vector(b"a: 1\n")[:-20], "truncated"),
        (gzip.compress(b"\x01" * 2048, mtime=0), "not a valid tar archive"),
        (_targz(_file("x" * 150 + "/release.yaml", b"x"), fmt=tarfile.PAX_FORMAT), "is not release.yaml"),
    ],
)
def test_unpack_refuses(layer: bytes, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason) as caught:
        unpack_vector(layer, "reg/repo@sha256:layer")
    assert caught.value.where == "reg/repo@sha256:layer"


def test_unpack_refuses_a_member_over_10_mib() -> None:
    layer = _targz(_file("release.yaml", b"\0" * (MAX_VECTOR_BYTES + 1)))
    with pytest.raises(InvalidInputError, match=f"is {MAX_VECTOR_BYTES + 1} bytes; the limit is {MAX_VECTOR_BYTES}"):
        unpack_vector(layer, "here")


def test_unpack_refuses_a_gzip_bomb_without_inflating_it_all() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), mtime=0)
    assert len(bomb) < 100 * 1024
    with pytest.raises(InvalidInputError, match="gzip bomb"):
        unpack_vector(bomb, "here")
