"""OCI layouts: written with checked blobs, read back through the registry methods, unpacked safely."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from pipeline.errors import LayoutError, NotFoundError
from pipeline.mirror.layout import LayoutSink, LayoutSource, check_layout, extract_tar, write_tar
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from pipeline.oci.reference import parse_reference
from tests.oci.helpers import image_manifest

LAYER = b"a layer"
REF = parse_reference("ghcr.io/acme/app:v1")


def _written(root: Path) -> str:
    sink = LayoutSink(root)
    for blob in (LAYER, mediatypes.OCI_EMPTY_DATA):
        sink.put_blob(REF.repo, digests.compute(blob), len(blob), [blob])
    manifest = image_manifest(LAYER)
    sink.put_manifest(REF.repo, digests.compute(manifest), manifest, mediatypes.OCI_MANIFEST)
    sink.put_manifest(REF.repo, "v1", manifest, mediatypes.OCI_MANIFEST)
    sink.finish({"release-vector.json": b"{}"})
    return digests.compute(manifest)


def test_a_written_layout_reads_back_by_original_name(tmp_path: Path) -> None:
    digest = _written(tmp_path / "layout")
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "ghcr.io/acme/app:v1"
    check_layout(tmp_path / "layout")
    layout = LayoutSource(tmp_path / "layout")
    assert layout.get_manifest(REF).digest == digest
    assert layout.head_manifest(REF.with_digest(digest)) is not None
    assert layout.get_blob(REF, digests.compute(LAYER)) == LAYER
    assert layout.list_tags(REF) == ["v1"] and layout.get_referrers(REF, digest) is None
    with pytest.raises(NotFoundError):
        layout.get_manifest(REF.with_tag("v2"))


def test_a_blob_that_does_not_match_is_not_written(tmp_path: Path) -> None:
    sink = LayoutSink(tmp_path)
    with pytest.raises(LayoutError):
        sink.put_blob(REF.repo, digests.compute(LAYER), len(LAYER), [b"other bytes"])
    assert list((tmp_path / "blobs" / "sha256").iterdir()) == []


def test_a_tar_round_trip_and_an_absolute_member(tmp_path: Path) -> None:
    _written(tmp_path / "layout")
    write_tar(tmp_path / "layout", tmp_path / "layout.tar")
    extract_tar(tmp_path / "layout.tar", tmp_path / "out")
    check_layout(tmp_path / "out")
    assert (tmp_path / "out" / "index.json").read_bytes() == (tmp_path / "layout" / "index.json").read_bytes()

    with tarfile.open(tmp_path / "abs.tar", "w") as archive:
        info = tarfile.TarInfo("/etc/evil")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(LayoutError, match="leaves the layout"):
        extract_tar(tmp_path / "abs.tar", tmp_path / "abs")
    assert not (tmp_path / "abs").exists()


def test_a_tampered_manifest_is_refused_on_read(tmp_path: Path) -> None:
    digest = _written(tmp_path / "layout")
    path = tmp_path / "layout" / "blobs" / "sha256" / digests.hex_of(digest)
    path.write_bytes(path.read_bytes().replace(b"schemaVersion", b"schemaversion"))
    with pytest.raises(LayoutError, match="does not match"):
        LayoutSource(tmp_path / "layout").get_manifest(REF)
    with pytest.raises(LayoutError, match="does not match"):
        check_layout(tmp_path / "layout")
