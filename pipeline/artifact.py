"""The release vector as an OCI artifact, exactly as metal-stack's ``oras push`` makes it, but reproducible.

metal-stack's workflow runs ``tar -czvf release.tar.gz release.yaml`` and
``oras push --artifact-type application/vnd.metal-stack.release-vector.v1
release.tar.gz:application/vnd.metal-stack.release-vector.v1.tar+gzip``. That gives an OCI image manifest
(image-spec v1.1 artifact): ``artifactType`` set, the config the OCI empty descriptor (oras-go writes it
with ``"data":"e30="``, the ``{}`` inlined), one layer of the release-vector media type titled
``release.tar.gz``, a gzip'd tar holding the single member ``release.yaml``.

Theirs changes digest with every run (tar and gzip mtimes, owner names, ``created`` = now). Ours does not:
the tar header is written here field by field (USTAR, name ``release.yaml``, mode 0644, uid/gid 0, empty
owner names, mtime 0 or ``SOURCE_DATE_EPOCH``), and so is the gzip stream (mtime 0, no file name, OS
"unknown") with our own deflate encoder (fixed Huffman codes, greedy LZ77): zlib's output may differ
between zlib builds (zlib-ng, patched zlibs), ours depends only on the input. The manifest is compact
JSON in oras-go's key order (the Go struct order of image-spec's ``Manifest`` and ``Descriptor``,
annotation keys sorted, ``<``, ``>``, ``&`` escaped as Go does). Same vector, same bytes, same digest.

Reading is the other way round and defensive: the layer is chosen by media type, the first one, as
metal-stack's consumer (ansible-common ``metal_stack_release_vector.py``) does; the tar may hold exactly
one regular file ``release.yaml`` of at most 10 MiB, and anything else (absolute paths, ``..``, links,
devices, a second member, a gzip bomb) is refused with its reason.

Pure functions over bytes: no I/O, no environment, no printing.
"""

from __future__ import annotations

import base64
import io
import json
import re
import struct
import tarfile
import zlib
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Final

from pipeline import jsonbounded
from pipeline.errors import InvalidInputError
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes

VECTOR_MEMBER: Final = "release.yaml"
"""The one member of the layer's tar (no ``./``), what the consumer's ``getmember`` asks for."""
LAYER_TITLE: Final = "release.tar.gz"
"""The layer's ``org.opencontainers.image.title`` (the file name ``oras push`` was given)."""
MAX_VECTOR_BYTES: Final = 10 * 1024 * 1024
"""The largest ``release.yaml`` pushed or extracted (10 MiB)."""
MAX_LAYER_BYTES: Final = MAX_VECTOR_BYTES + 1024 * 1024
"""The largest layer blob fetched, and the most its gzip stream may decompress to."""
MAX_TAR_MTIME: Final = 8**11 - 1
"""The largest mtime a USTAR header holds (11 octal digits: the year 2242)."""

ANNOTATION_TITLE: Final = "org.opencontainers.image.title"
ANNOTATION_VERSION: Final = "org.opencontainers.image.version"
ANNOTATION_REVISION: Final = "org.opencontainers.image.revision"
ANNOTATION_SOURCE: Final = "org.opencontainers.image.source"
ANNOTATION_CREATED: Final = "org.opencontainers.image.created"

EMPTY_CONFIG_DIGEST: Final = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


# --- annotations --------------------------------------------------------------------------------


def _check_annotation(key: str, value: str | None) -> None:
    if value is None:
        return
    if not value or value != value.strip() or any(not c.isprintable() for c in value):
        raise InvalidInputError(
            f"annotation value {value!r} must be non-empty printable text on one line without surrounding spaces",
            where=key,
        )


def parse_source_date_epoch(text: str, where: str = "SOURCE_DATE_EPOCH") -> int:
    """``SOURCE_DATE_EPOCH`` (decimal seconds since 1970) as an int a tar header can hold."""
    value = text.strip()
    if not value.isdigit() or not value.isascii():
        raise InvalidInputError(f"not a non-negative integer number of seconds: {text!r}", where=where)
    epoch = int(value)
    if epoch > MAX_TAR_MTIME:
        raise InvalidInputError(f"{epoch} is beyond what a tar header holds ({MAX_TAR_MTIME})", where=where)
    return epoch


def rfc3339(epoch: int) -> str:
    """``2024-05-01T12:00:00Z``: Go's ``time.RFC3339`` in UTC, what oras writes as ``created``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ArtifactAnnotations:
    """The manifest annotations we write: only stable ones (``created`` only from SOURCE_DATE_EPOCH)."""

    version: str | None = None
    revision: str | None = None
    source: str | None = None
    created: str | None = None

    def __post_init__(self) -> None:
        for key, value in self._pairs():
            _check_annotation(key, value)

    @classmethod
    def from_epoch(
        cls, *, version: str | None = None, revision: str | None = None, source: str | None = None, epoch: int | None
    ) -> ArtifactAnnotations:
        """``created`` from ``epoch`` (SOURCE_DATE_EPOCH) if given, else none at all."""
        return cls(version, revision, source, rfc3339(epoch) if epoch is not None else None)

    def _pairs(self) -> tuple[tuple[str, str | None], ...]:
        return (
            (ANNOTATION_CREATED, self.created),
            (ANNOTATION_REVISION, self.revision),
            (ANNOTATION_SOURCE, self.source),
            (ANNOTATION_VERSION, self.version),
        )

    def to_dict(self) -> dict[str, str]:
        """The set annotations, keys sorted (as Go marshals a map)."""
        return {key: value for key, value in sorted(self._pairs()) if value is not None}


# --- tar (one member, written field by field) ---------------------------------------------------

_BLOCK: Final = 512
_RECORD: Final = 20 * _BLOCK  # GNU tar's and Python's default blocking: archives end on a 10240-byte boundary


def _octal(value: int, width: int) -> bytes:
    """A USTAR number field: zero-padded octal digits and a NUL (``0000644\\0``)."""
    return b"%0*o\0" % (width - 1, value)


def _ustar_header(name: str, size: int, mtime: int) -> bytes:
    encoded = name.encode("ascii")
    if len(encoded) > 100:
        raise ValueError("member name longer than 100 bytes")
    header = b"".join(
        (
            encoded.ljust(100, b"\0"),  # name
            _octal(0o644, 8),  # mode
            _octal(0, 8),  # uid
            _octal(0, 8),  # gid
            _octal(size, 12),  # size
            _octal(mtime, 12),  # mtime
            b" " * 8,  # chksum, as spaces while summing
            b"0",  # typeflag: regular file
            b"\0" * 100,  # linkname
            b"ustar\x0000",  # magic + version (POSIX)
            b"\0" * 32,  # uname: empty
            b"\0" * 32,  # gname: empty
            b"\0" * 8,  # devmajor: empty, not a device (as GNU tar and Python's tarfile write it)
            b"\0" * 8,  # devminor
            b"\0" * 155,  # prefix
        )
    ).ljust(_BLOCK, b"\0")
    checksum = b"%06o\0 " % sum(header)
    return header[:148] + checksum + header[156:]


def pack_tar(content: bytes, *, mtime: int = 0, name: str = VECTOR_MEMBER) -> bytes:
    """A USTAR archive holding ``content`` as ``name``: mode 0644, uid/gid 0, no owner names, ``mtime``."""
    if not 0 <= mtime <= MAX_TAR_MTIME:
        raise InvalidInputError(f"tar mtime {mtime} is out of range", where="SOURCE_DATE_EPOCH")
    body = content + b"\0" * (-len(content) % _BLOCK)
    archive = _ustar_header(name, len(content), mtime) + body + b"\0" * (2 * _BLOCK)
    return archive + b"\0" * (-len(archive) % _RECORD)


# --- gzip with our own deflate (RFC 1951 fixed Huffman codes, RFC 1952 framing) -------------------

_GZIP_HEADER: Final = bytes((0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF))
"""Magic, CM=deflate, FLG=0 (no FNAME, no comment), MTIME=0, XFL=0, OS=255 (unknown)."""

_MIN_MATCH: Final = 3
_MAX_MATCH: Final = 258
_WINDOW: Final = 32768
_CHAIN: Final = 32  # candidates tried per position: compression vs. time, part of the output's definition

_LENGTH_BASE: Final = (3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
                       163, 195, 227, 258)  # fmt: skip
_LENGTH_EXTRA: Final = (0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0)
_DIST_BASE: Final = (1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049,
                     3073, 4097, 6145, 8193, 12289, 16385, 24577)  # fmt: skip
_DIST_EXTRA: Final = (0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13)


def _reversed_bits(code: int, length: int) -> int:
    """Huffman codes go into the stream most significant bit first; the bit writer fills LSB first."""
    result = 0
    for _ in range(length):
        result = (result << 1) | (code & 1)
        code >>= 1
    return result


def _fixed_literal_code(symbol: int) -> tuple[int, int]:
    if symbol <= 143:
        code, length = 0x30 + symbol, 8
    elif symbol <= 255:
        code, length = 0x190 + symbol - 144, 9
    elif symbol <= 279:
        code, length = symbol - 256, 7
    else:
        code, length = 0xC0 + symbol - 280, 8
    return _reversed_bits(code, length), length


_LITERAL_CODES: Final = tuple(_fixed_literal_code(symbol) for symbol in range(288))
_DIST_CODES: Final = tuple(_reversed_bits(symbol, 5) for symbol in range(30))


def _length_table() -> tuple[tuple[int, int, int], ...]:
    """For each match length 3..258: (literal/length symbol, extra bits value, extra bits count)."""
    table: list[tuple[int, int, int]] = [(0, 0, 0)] * (_MAX_MATCH + 1)
    for index, (base, extra) in enumerate(zip(_LENGTH_BASE, _LENGTH_EXTRA, strict=True)):
        top = _MAX_MATCH - 1 if index == len(_LENGTH_BASE) - 2 else base + (1 << extra) - 1  # 258 is symbol 285
        for length in range(base, min(top, _MAX_MATCH) + 1):
            table[length] = (257 + index, length - base, extra)
    return tuple(table)


_LENGTHS: Final = _length_table()


class _BitWriter:
    def __init__(self) -> None:
        self._out = bytearray()
        self._bits = 0
        self._count = 0

    def write(self, value: int, count: int) -> None:
        self._bits |= value << self._count
        self._count += count
        while self._count >= 8:
            self._out.append(self._bits & 0xFF)
            self._bits >>= 8
            self._count -= 8

    def finish(self) -> bytes:
        if self._count:
            self._out.append(self._bits & 0xFF)
        return bytes(self._out)


def _match_length(data: bytes, earlier: int, here: int, longest: int) -> int:
    """How far ``data[earlier:]`` equals ``data[here:]`` (at least 3, at most ``longest``): a binary search."""
    low, high = _MIN_MATCH, longest
    while low < high:
        middle = (low + high + 1) // 2
        if data[earlier : earlier + middle] == data[here : here + middle]:
            low = middle
        else:
            high = middle - 1
    return low


def deflate(data: bytes) -> bytes:
    """A raw deflate stream of ``data``: one fixed-Huffman block, greedy LZ77. Deterministic by construction."""
    writer = _BitWriter()
    writer.write(1, 1)  # BFINAL
    writer.write(1, 2)  # BTYPE 01: fixed Huffman codes
    heads: dict[bytes, list[int]] = {}
    size = len(data)

    def remember(position: int) -> None:
        chain = heads.setdefault(data[position : position + _MIN_MATCH], [])
        chain.append(position)
        if len(chain) > 2 * _CHAIN:
            del chain[:-_CHAIN]

    position = 0
    while position < size:
        best, distance = 0, 0
        if position + _MIN_MATCH <= size:
            chain = heads.get(data[position : position + _MIN_MATCH])
            if chain:
                longest = min(_MAX_MATCH, size - position)
                for earlier in reversed(chain[-_CHAIN:]):
                    if position - earlier > _WINDOW:
                        break
                    if best and data[earlier + best] != data[position + best]:
                        continue  # cannot be longer than the best so far
                    length = _match_length(data, earlier, position, longest)
                    if length > best:
                        best, distance = length, position - earlier
                        if length == longest:
                            break
        if best >= _MIN_MATCH:
            symbol, extra_value, extra_bits = _LENGTHS[best]
            writer.write(*_LITERAL_CODES[symbol])
            writer.write(extra_value, extra_bits)
            index = bisect_right(_DIST_BASE, distance) - 1
            writer.write(_DIST_CODES[index], 5)
            writer.write(distance - _DIST_BASE[index], _DIST_EXTRA[index])
            for covered in range(position, min(position + best, size - _MIN_MATCH + 1)):
                remember(covered)
            position += best
        else:
            writer.write(*_LITERAL_CODES[data[position]])
            if position + _MIN_MATCH <= size:
                remember(position)
            position += 1
    writer.write(*_LITERAL_CODES[256])  # end of block
    return writer.finish()


def gzip_compress(data: bytes) -> bytes:
    """gzip of ``data`` with mtime 0, no file name, OS unknown; the same bytes on every machine."""
    trailer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return _GZIP_HEADER + deflate(data) + trailer


def pack_vector(vector_bytes: bytes, *, mtime: int = 0) -> bytes:
    """The layer: ``release.yaml`` holding ``vector_bytes`` in a reproducible tar.gz."""
    if len(vector_bytes) > MAX_VECTOR_BYTES:
        raise InvalidInputError(
            f"release vector is {len(vector_bytes)} bytes; the limit is {MAX_VECTOR_BYTES}", where=VECTOR_MEMBER
        )
    return gzip_compress(pack_tar(vector_bytes, mtime=mtime))


# --- the manifest -------------------------------------------------------------------------------

_GO_ESCAPES: Final = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_ESCAPE_RE: Final = re.compile("[<>&\u2028\u2029]")


def go_json(value: object) -> bytes:
    """Compact JSON as Go's ``encoding/json`` writes it (UTF-8, HTML characters escaped), in the given key order."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return _GO_ESCAPE_RE.sub(lambda match: _GO_ESCAPES[match.group(0)], text).encode("utf-8")


def build_artifact_manifest(layer: bytes, annotations: ArtifactAnnotations) -> bytes:
    """The manifest bytes for ``layer`` (the tar.gz), in oras-go's key order; deterministic."""
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "artifactType": mediatypes.RELEASE_VECTOR_ARTIFACT,
        "config": {
            "mediaType": mediatypes.OCI_EMPTY,
            "digest": digests.compute(mediatypes.OCI_EMPTY_DATA),
            "size": len(mediatypes.OCI_EMPTY_DATA),
            "data": base64.b64encode(mediatypes.OCI_EMPTY_DATA).decode("ascii"),
        },
        "layers": [
            {
                "mediaType": mediatypes.RELEASE_VECTOR_LAYER,
                "digest": digests.compute(layer),
                "size": len(layer),
                "annotations": {ANNOTATION_TITLE: LAYER_TITLE},
            }
        ],
    }
    notes = annotations.to_dict()
    if notes:
        manifest["annotations"] = notes
    return go_json(manifest)


@dataclass(frozen=True)
class VectorArtifact:
    """Everything pushed for one vector: the config blob, the layer blob, the manifest and its digest."""

    layer: bytes
    manifest: bytes
    digest: str
    config: bytes = mediatypes.OCI_EMPTY_DATA
    media_type: str = mediatypes.OCI_MANIFEST


def make_artifact(vector_bytes: bytes, annotations: ArtifactAnnotations, *, mtime: int = 0) -> VectorArtifact:
    """Pack the vector and build its manifest, once; hash those bytes and send those bytes."""
    layer = pack_vector(vector_bytes, mtime=mtime)
    manifest = build_artifact_manifest(layer, annotations)
    return VectorArtifact(layer, manifest, digests.compute(manifest))


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VectorLayer:
    """The layer a consumer reads: its digest and declared size."""

    digest: str
    size: int
    title: str | None = None


def select_vector_layer(manifest_bytes: bytes, where: str) -> VectorLayer:
    """The first layer of the release-vector media type, as metal-stack's consumer picks it."""
    try:
        manifest = jsonbounded.loads(manifest_bytes, source=where, what="the artifact's manifest")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInputError("the artifact's manifest is not JSON", where=where) from None
    if not isinstance(manifest, dict):
        raise InvalidInputError("the artifact's manifest is not a JSON object", where=where)
    media_type = manifest.get("mediaType")
    if media_type in mediatypes.INDEXES or "manifests" in manifest:
        raise InvalidInputError("this is an image index, not a release-vector artifact", where=where)
    if media_type is not None and media_type not in mediatypes.IMAGE_MANIFESTS:
        raise InvalidInputError(f"unexpected manifest media type {media_type!r}", where=where)
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise InvalidInputError("the manifest has no layers list", where=where)
    for layer in layers:
        if isinstance(layer, dict) and layer.get("mediaType") == mediatypes.RELEASE_VECTOR_LAYER:
            digest = layer.get("digest")
            size = layer.get("size")
            if not isinstance(digest, str) or not digests.is_valid(digest):
                raise InvalidInputError(f"the release-vector layer has a malformed digest {digest!r}", where=where)
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InvalidInputError(f"the release-vector layer has a malformed size {size!r}", where=where)
            if size > MAX_LAYER_BYTES:
                raise InvalidInputError(
                    f"the release-vector layer is {size} bytes; the limit is {MAX_LAYER_BYTES}", where=where
                )
            notes = layer.get("annotations")
            title = notes.get(ANNOTATION_TITLE) if isinstance(notes, dict) else None
            return VectorLayer(digest, size, title if isinstance(title, str) else None)
    raise InvalidInputError(
        f"no layer of media type {mediatypes.RELEASE_VECTOR_LAYER}: not a release-vector artifact", where=where
    )


def manifest_annotations(manifest_bytes: bytes) -> dict[str, object]:
    """The manifest's top-level annotations (``org.opencontainers.image.version``...), as found; {} if none.

    Called on a manifest :func:`select_vector_layer` accepted; values are kept as they are, so a caller
    comparing one sees a non-string as different."""
    try:
        manifest = jsonbounded.loads(manifest_bytes, source="the vector artifact's manifest")
    except (ValueError, UnicodeDecodeError):
        return {}
    notes = manifest.get("annotations") if isinstance(manifest, dict) else None
    return {str(k): v for k, v in notes.items()} if isinstance(notes, dict) else {}


def _gunzip_limited(data: bytes, limit: int, where: str) -> bytes:
    """Every gzip member of ``data`` decompressed, refusing to produce more than ``limit`` bytes."""
    out = bytearray()
    rest = data
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise InvalidInputError(f"the layer is not valid gzip ({exc})", where=where) from None
        if len(out) > limit:
            raise InvalidInputError(
                f"the layer decompresses to more than {limit} bytes (refused as a possible gzip bomb)", where=where
            )
        if not inflater.eof:
            raise InvalidInputError("the layer's gzip stream is truncated", where=where)
        rest = inflater.unused_data
        if not rest.strip(b"\0"):  # trailing zero padding after the last member, as gzip(1) tolerates
            return bytes(out)


def _refusal(member: tarfile.TarInfo) -> str | None:
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (parts and parts[0] == "/"):
        return f"member {name!r} has an absolute path"
    if ".." in parts or ".." in name.split("\\"):
        return f"member {name!r} climbs out of the directory (..)"
    if member.issym() or member.islnk():
        return f"member {name!r} is a link (to {member.linkname!r})"
    if not member.isreg():
        return f"member {name!r} is not a regular file"
    if name != VECTOR_MEMBER:
        return f"member {name!r} is not {VECTOR_MEMBER}"
    if member.size > MAX_VECTOR_BYTES:
        return f"member {name!r} is {member.size} bytes; the limit is {MAX_VECTOR_BYTES}"
    return None


def unpack_vector(targz: bytes, where: str) -> bytes:
    """The content of ``release.yaml`` from the layer; anything but that one safe member is refused."""
    raw = _gunzip_limited(targz, MAX_LAYER_BYTES, where)
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            member = tar.next()
            if member is None:
                raise InvalidInputError("the layer's tar archive is empty", where=where)
            reason = _refusal(member)
            if reason is not None:
                raise InvalidInputError(f"refusing the layer: {reason}", where=where)
            extracted = tar.extractfile(member)
            if extracted is None:
                raise InvalidInputError(f"refusing the layer: {VECTOR_MEMBER} cannot be read", where=where)
            content = extracted.read()
            if len(content) != member.size:
                raise InvalidInputError(f"the layer's tar archive is truncated in {VECTOR_MEMBER}", where=where)
            extra = tar.next()
            if extra is not None:
                raise InvalidInputError(
                    f"refusing the layer: more than one member ({extra.name!r} after {VECTOR_MEMBER})", where=where
                )
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidInputError(f"the layer is not a valid tar archive ({exc})", where=where) from None
    return content
