"""The source definition and the vector: validation (every problem, with its line), rendering, reading back."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import ExitCode, InvalidInputError
from pipeline.oci.reference import Reference, parse_reference
from pipeline.vector import (
    MAX_DOCUMENT_BYTES,
    MAX_IMAGE_ENTRIES,
    METADATA_KEY,
    InvalidDefinitionError,
    Source,
    VectorMetadata,
    created_from_epoch,
    load_source,
    read_vector,
    render_vector,
)
from tests.conftest import REPO_ROOT, VECTORS

METAL_STACK = VECTORS / "metal-stack"
METAL_STACK_FILES = sorted(METAL_STACK.glob("release-v*.yaml"))
WHERE = "release/release.yaml"
REV = "b1065585a627ea6678a7ff5b84a88312aaae4b8e"


def fake_digest(ref: Reference | str) -> str:
    return "sha256:" + hashlib.sha256(str(ref).encode()).hexdigest()


def all_digests(source: Source) -> dict[Reference, str]:
    return {ref: fake_digest(ref) for ref in source.references()}


def meta(source: Source, created: str | None = None, version: str = "v1.2.3") -> VectorMetadata:
    return VectorMetadata(version, REV, source.sha256, created)


def problems_of(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(InvalidDefinitionError) as info:
        load_source(data, WHERE)
    assert info.value.exit_code == ExitCode.INVALID_INPUT
    return info.value.lines()


def strip_inserted(vector: bytes) -> bytes:
    """The vector's text without the digest lines / flow items and the metadata block we add."""
    text = vector.decode()
    text = re.sub(r"(?m)^[ ]*digest: sha256:[0-9a-f]{64}\r?\n", "", text)
    text = re.sub(r", digest: sha256:[0-9a-f]{64}", "", text)
    text = re.sub(r"(?m)^[ ]*release-vector:\r?\n(?:[ ]+[a-z0-9-]+: \"[^\"]*\"\r?\n)+", "", text)
    return text.encode()


def without_pins(vector: bytes, image_paths: list[tuple[str | int, ...]]) -> Any:
    data = yaml.safe_load(vector)
    data.pop(METADATA_KEY)
    for path in image_paths:
        node = data
        for key in path:
            node = node[key]
        node.pop("digest", None)
    return data


# --- metal-stack's real files ---------------------------------------------------------------------


@pytest.mark.parametrize("path", METAL_STACK_FILES, ids=lambda p: p.name)
def test_metal_stack_sources_load(path: Path) -> None:
    source = load_source(path.read_bytes(), path.name)
    counts = {"release-v0.22.19.yaml": (69, 68), "release-v0.22.18.yaml": (68, 67)}[path.name]
    assert (len(source.images), len({i.reference for i in source.images})) == counts  # README: 70/69 incl. tag-only
    assert len(source.references()) == counts[1] + 5  # + 3 ansible roles and 2 OCI helm charts
    assert [(a.yaml_path, a.name) for a in source.artifacts] == [
        ("ansible-roles.ansible-common", "ghcr.io/metal-stack/ansible-common"),
        ("ansible-roles.metal-ansible-modules", "ghcr.io/metal-stack/metal-ansible-modules"),
        ("ansible-roles.metal-roles", "ghcr.io/metal-stack/metal-roles"),
        ("helm-charts.metal-stack.metal-control-plane", "ghcr.io/metal-stack/helm-charts/metal-control-plane"),
        ("helm-charts.metal-stack.valkey", "ghcr.io/metal-stack/helm-charts/valkey"),
    ]
    chart = source.artifacts[3]
    assert chart.tag == ("v0.8.8" if "19" in path.name else "v0.8.7")  # tag: wins over version: 0.8.8
    assert source.artifacts[0].tag == "v0.9.0"  # a role has only version:
    assert [entry.path[-1] for entry in source.tag_only] == ["virtual-garden-apiserver"]
    postgres = parse_reference("docker.io/library/postgres:15.18-alpine")
    assert len(source.entries(postgres)) == 2
    ipam = source.images[0]
    assert ipam.name == "ghcr.io/metal-stack/go-ipam"
    assert ipam.yaml_path == "docker-images.metal-stack.control-plane.ipam"
    assert path.read_bytes().decode().splitlines()[ipam.line - 1].strip() == "name: ghcr.io/metal-stack/go-ipam"
    registries = {image.repository.registry for image in source.images}
    assert registries == {"ghcr.io", "docker.io", "quay.io", "europe-docker.pkg.dev"}


@pytest.mark.parametrize("path", METAL_STACK_FILES, ids=lambda p: p.name)
def test_metal_stack_vector_is_the_source_plus_digests_and_metadata(path: Path) -> None:
    data = path.read_bytes()
    source = load_source(data, path.name)
    vector = render_vector(source, all_digests(source), meta(source))
    assert strip_inserted(vector) == data
    assert vector.count(b"\n        digest: sha256:") == len(source.images)
    assert vector.count(b"digest: sha256:") == len(source.images) + len(source.artifacts)
    assert without_pins(vector, [i.path for i in source.oci_entries]) == yaml.safe_load(data)
    read = read_vector(vector, "vector.yaml")
    assert [(i.name, i.tag, i.digest) for i in read.images] == [
        (i.name, i.tag, fake_digest(i.reference)) for i in source.images
    ]
    assert read.metadata == meta(source)
    assert len(read.pinned_references()) == len(source.references())
    pinned = read.pinned_oci_references()
    assert [(p.kind, p.yaml_path) for p in pinned[-5:]] == [("oci-artifact", a.yaml_path) for a in source.artifacts]
    assert all(p.kind == "image" for p in pinned[: len(source.images)])
    assert str(pinned[-2].reference).startswith("ghcr.io/metal-stack/helm-charts/metal-control-plane:v0.8.")
    # a consumer that knows only metal-stack's shape (yaml.safe_load, name/tag lookups) still reads it
    loaded = yaml.safe_load(vector)
    ipam = loaded["docker-images"]["metal-stack"]["control-plane"]["ipam"]
    assert ipam["tag"] == yaml.safe_load(data)["docker-images"]["metal-stack"]["control-plane"]["ipam"]["tag"]
    assert ipam["digest"] == fake_digest(f"ghcr.io/metal-stack/go-ipam:{ipam['tag']}")


def test_digest_goes_right_after_the_tag_line() -> None:
    data = METAL_STACK_FILES[-1].read_bytes()
    source = load_source(data, "x")
    lines = render_vector(source, all_digests(source), meta(source)).decode().splitlines()
    index = lines.index("        name: ghcr.io/metal-stack/go-ipam")
    assert lines[index : index + 4] == [
        "        name: ghcr.io/metal-stack/go-ipam",
        "        repository: https://github.com/metal-stack/go-ipam",
        "        tag: v1.15.2",
        f"        digest: {fake_digest('ghcr.io/metal-stack/go-ipam:v1.15.2')}",
    ]


def test_rendering_is_deterministic_and_depends_only_on_inputs() -> None:
    data = METAL_STACK_FILES[0].read_bytes()
    first = render_vector(load_source(data, "a"), all_digests(load_source(data, "a")), meta(load_source(data, "a")))
    again = load_source(data, "b")
    assert render_vector(again, all_digests(again), meta(again)) == first
    other = dict(all_digests(again))
    other[again.references()[0]] = "sha256:" + "0" * 64
    assert render_vector(again, other, meta(again)) != first


def test_metadata_block() -> None:
    source = load_source(b"docker-images: {}\n", WHERE)
    vector = render_vector(source, {}, meta(source, created="2026-07-22T00:00:00Z", version="v0.22.19")).decode()
    source_hex = hashlib.sha256(b"docker-images: {}\n").hexdigest()
    assert vector == (
        "docker-images: {}\n"
        "release-vector:\n"
        '  version: "v0.22.19"\n'
        f'  git-revision: "{REV}"\n'
        f'  source-sha256: "{source_hex}"\n'
        '  created: "2026-07-22T00:00:00Z"\n'
    )
    assert "created" not in render_vector(source, {}, meta(source)).decode()


def test_no_resolve_renders_without_digests() -> None:
    data = (REPO_ROOT / "release" / "release.yaml").read_bytes()
    source = load_source(data, WHERE)
    vector = render_vector(source, {}, meta(source))
    assert b"digest:" not in vector
    read = read_vector(vector, "v")
    assert len(read.unpinned()) == len(source.images)
    with pytest.raises(InvalidDefinitionError) as info:
        read.pinned_references()
    assert len(info.value.problems) == len(source.images)
    assert info.value.lines()[0].endswith(f"(v:{source.images[0].line})")


def test_project_release_definition() -> None:
    source = load_source((REPO_ROOT / "release" / "release.yaml").read_bytes(), WHERE)
    names = [image.name for image in source.images]
    assert "ghcr.io/release-vector/release-vector" in names
    assert len(source.images) > len(source.references())  # a name:tag under two keys
    assert len(source.tag_only) == 1


# --- layouts other than metal-stack's -----------------------------------------------------------------


def roundtrip(text: str) -> str:
    data = text.encode()
    source = load_source(data, WHERE)
    vector = render_vector(source, all_digests(source), meta(source))
    read = read_vector(vector, "v")
    assert [(i.name, i.tag, i.digest) for i in read.images] == [
        (i.name, i.tag, fake_digest(i.reference)) for i in source.images
    ]
    expected = data if data.endswith(b"\n") else data + (b"\r\n" if b"\r\n" in data else b"\n")
    assert strip_inserted(vector) == expected
    return vector.decode()


def test_comments_stay_on_their_lines() -> None:
    text = (
        "# header\n"
        "docker-images:\n"
        "  a:\n"
        "    name: ghcr.io/x/a  # the name\n"
        "    tag: v1  # renovate: datasource=docker\n"
        "    # a comment after the last key\n"
        "  b:\n"
        "    tag: v2\n"
        "    name: ghcr.io/x/b\n"
        "# footer\n"
    )
    vector = roundtrip(text)
    assert f"    tag: v1  # renovate: datasource=docker\n    digest: {fake_digest('ghcr.io/x/a:v1')}\n" in vector
    assert f"    tag: v2\n    digest: {fake_digest('ghcr.io/x/b:v2')}\n    name: ghcr.io/x/b\n" in vector
    assert vector.index("# footer") < vector.index("release-vector:")


def test_flow_mappings_and_sequences() -> None:
    text = (
        "docker-images:\n"
        "  flow: {name: ghcr.io/x/a, tag: 'v1'}\n"
        '  multi: {\n    tag: "v2",\n    name: ghcr.io/x/b\n  }\n'
        "  list:\n"
        "  - name: ghcr.io/x/c\n"
        "    tag: v3\n"
        "  - tag: v4\n"
        "    name: ghcr.io/x/d\n"
        "  inline: [{name: ghcr.io/x/e, tag: v5}, {name: ghcr.io/x/f, tag: v6}]\n"
    )
    vector = roundtrip(text)
    assert f"{{name: ghcr.io/x/a, tag: 'v1', digest: {fake_digest('ghcr.io/x/a:v1')}}}" in vector
    assert f"  - tag: v4\n    digest: {fake_digest('ghcr.io/x/d:v4')}\n    name: ghcr.io/x/d\n" in vector
    assert len(read_vector(vector.encode(), "v").images) == 6


def test_crlf_bom_no_final_newline_indented_root_and_document_markers() -> None:
    crlf = "docker-images:\r\n  a:\r\n    name: ghcr.io/x/a\r\n    tag: v1"
    vector = roundtrip(crlf)
    assert "\n" not in vector.replace("\r\n", "")
    bom = "\ufeffdocker-images:\n  a: {name: ghcr.io/x/a, tag: v1}\n"
    assert roundtrip(bom).startswith("\ufeff")
    indented = "  docker-images:\n    a:\n      name: ghcr.io/x/a\n      tag: v1\n  other: 1\n"
    assert "\n  release-vector:\n    version:" in roundtrip(indented)
    marked = "---\ndocker-images:\n  a:\n    name: ghcr.io/x/a\n    tag: v1\n...\n# after the end\n"
    vector = roundtrip(marked)
    assert vector.index("release-vector:") < vector.index("...\n# after the end")


def test_block_scalar_tag() -> None:
    vector = roundtrip("docker-images:\n  a:\n    name: ghcr.io/x/a\n    tag: >-\n      v1\n\n    other: 1\n")
    assert yaml.safe_load(vector)["docker-images"]["a"]["digest"] == fake_digest("ghcr.io/x/a:v1")


def test_short_docker_hub_name_is_kept_as_written_and_normalised_for_resolution() -> None:
    source = load_source(b"docker-images:\n  pg:\n    name: postgres\n    tag: '16'\n", WHERE)
    (image,) = source.images
    assert image.name == "postgres"
    assert str(image.reference) == "docker.io/library/postgres:16"


def test_same_image_under_several_keys_is_one_reference() -> None:
    text = "docker-images:\n  a: {name: postgres, tag: v1}\n  b: {name: docker.io/library/postgres, tag: v1}\n"
    source = load_source(text.encode(), WHERE)
    assert len(source.images) == 2
    assert source.references() == (parse_reference("postgres:v1"),)
    vector = render_vector(source, all_digests(source), meta(source))
    assert len(read_vector(vector, "v").pinned_references()) == 1


# --- validation ------------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    text = (
        "docker-images:\n"  # 1
        "  a:\n"  # 2
        "    name: ghcr.io/x/a:v1\n"  # 3  name with a tag
        "    tag: v1\n"  # 4
        "  b:\n"  # 5
        "    name: ghcr.io/x/b\n"  # 6
        "    tag: ''\n"  # 7  empty tag
        "  c:\n"  # 8
        "    name: ghcr.io/x/c\n"  # 9
        "    tag: 1.10\n"  # 10 a float
        "  d:\n"  # 11
        "    name: Ghcr.io/UPPER\n"  # 12 invalid repository
        "    tag: 'bad tag'\n"  # 13 malformed tag
        "  a:\n"  # 14 duplicate key
        "    name: ghcr.io/x/e\n"  # 15
        "    tag: v1\n"  # 16
        "  f:\n"  # 17
        "    name: ghcr.io/x/f\n"  # 18 name without tag
        "  g:\n"  # 19
        "    name: ghcr.io/x/g\n"  # 20
        "    tag:\n"  # 21 null tag
    )
    assert problems_of(text) == [
        f"image name ghcr.io/x/a:v1 is not a valid repository: expected a repository without tag or digest ({WHERE}:3)",
        f"empty tag for image ghcr.io/x/b ({WHERE}:7)",
        f"tag 1.10 of image ghcr.io/x/c is not a string (YAML reads it as a float); quote it: '1.10' ({WHERE}:10)",
        f"image name Ghcr.io/UPPER is not a valid repository: repository name must be lowercase ({WHERE}:12)",
        f"malformed tag 'bad tag' for image Ghcr.io/UPPER ({WHERE}:13)",
        f"duplicate key a (first at line 2) ({WHERE}:14)",
        f"image ghcr.io/x/f has a name but no tag ({WHERE}:18)",
        f"empty tag for image ghcr.io/x/g ({WHERE}:21)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("docker-images: [\n", "YAML syntax error"),
        ("a: 1\n  b: 2\n", "YAML syntax error"),
        ("- a\n- b\n", "the top level is a list, not a mapping (release/release.yaml:1)"),
        ("just text\n", "the top level is a scalar, not a mapping"),
        ("", "the document is empty"),
        ("# only a comment\n", "the document is empty"),
        ("binaries: {}\n", "missing docker-images"),
        ("docker-images: 3\n", "docker-images must be a mapping (release/release.yaml:1)"),
        ("{docker-images: {}}\n", "must be a block mapping"),
        ("docker-images: {}\n---\nb: 1\n", "YAML syntax error"),
        ("docker-images: {}\nx: !custom 1\n", "unsupported YAML tag !custom (release/release.yaml:2)"),
        ("docker-images: {}\nx: !!python/object:os.system 1\n", "unsupported YAML tag"),
        ("docker-images: {}\nx: {a: 1}\ny:\n  <<: {b: 2}\n", "merge keys (<<) are not allowed (release/release.yaml:4"),
        ("docker-images: {}\nrelease-vector: {}\n", "reserved for the vector's metadata"),
        (
            "docker-images:\n  a: {name: ghcr.io/x/a, tag: v1, digest: sha256:" + "a" * 64 + "}\n",
            "already has a digest",
        ),
        ("docker-images:\n  a: {name: [x], tag: v1}\n", "image name must be a non-empty string"),
        ("docker-images:\n  a: {name: ghcr.io/x/a, tag: [v1]}\n", "tag of image ghcr.io/x/a must be a string"),
        ("docker-images:\n  a: {name: ghcr.io/x/a, tag: 7}\n", "YAML reads it as a int"),
        ("docker-images: {}\r\nx: 1\ry: 2\n", "lone CR"),
    ],
)
def test_invalid_sources(text: str, expected: str) -> None:
    lines = problems_of(text)
    assert any(expected in line for line in lines), lines
    assert all(re.search(r"\(release/release\.yaml:\d+\)$", line) for line in lines), lines


def test_syntax_error_has_its_line() -> None:
    (line,) = problems_of("docker-images:\n  a:\n    name: ghcr.io/x\n    tag: [v1\n  b: 2\n")
    assert line.startswith("YAML syntax error")
    assert re.search(r":(4|5)\)$", line)


def test_not_utf8() -> None:
    assert problems_of(b"docker-images: {}\nx: \xff\n") == [f"not UTF-8 text ({WHERE}:2)"]


def test_anchors_and_aliases_are_refused_and_an_alias_bomb_is_cheap() -> None:
    lines = problems_of("docker-images: {}\nbase: &b {name: x}\nother: *b\n")
    assert lines == [
        f"YAML anchor &b is not allowed (no anchors or aliases) ({WHERE}:2)",
        f"YAML alias *b is not allowed (no anchors or aliases) ({WHERE}:3)",
    ]
    bomb = ["docker-images: {}", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    bomb += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]
    started = time.monotonic()
    lines = problems_of("\n".join(bomb) + "\n")
    assert time.monotonic() - started < 5
    assert len(lines) == 12 + 11 * 9


def _many_entries(count: int, *, flow: bool = False) -> bytes:
    lines = ["docker-images:"]
    for index in range(count):
        if flow:
            lines.append(f"  c{index}: {{name: ghcr.io/x/c{index}, 'tag': v1}}")
        else:
            lines += [f"  c{index}:", f"    name: ghcr.io/x/c{index}", "    tag: v1"]
    return ("\n".join(lines) + "\n").encode()


def test_more_image_entries_than_the_limit_are_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pre-scan counts the ``tag`` keys: over the limit is one line naming the file, count and limit (exit 3),
    without composing the document (100,000 entries cost 10 s and 400 MB; real sources have about 70)."""
    import pipeline.vector as vector_module

    assert 50 * 70 < MAX_IMAGE_ENTRIES <= 50_000

    def no_compose(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("composed a document over the entry limit")

    for flow in (False, True):
        with monkeypatch.context() as patch:
            patch.setattr(vector_module.yaml, "compose", no_compose)
            with pytest.raises(InvalidInputError) as info:
                load_source(_many_entries(MAX_IMAGE_ENTRIES + 1, flow=flow), WHERE)
        assert info.value.exit_code == ExitCode.INVALID_INPUT
        assert info.value.one_line() == (
            f"too many image entries: {MAX_IMAGE_ENTRIES + 1} 'tag' keys, the limit is {MAX_IMAGE_ENTRIES} ({WHERE})"
        )
    monkeypatch.setattr(vector_module, "MAX_IMAGE_ENTRIES", 3)
    assert len(load_source(_many_entries(3), WHERE).images) == 3
    with pytest.raises(InvalidInputError, match="4 'tag' keys, the limit is 3"):
        read_vector(_many_entries(4, flow=True), WHERE)


def test_document_over_10_mib_is_refused_before_parsing() -> None:
    data = b"docker-images: {}\n" + b"#" * MAX_DOCUMENT_BYTES
    with pytest.raises(InvalidInputError, match="document too large") as info:
        load_source(data, WHERE)
    assert info.value.exit_code == ExitCode.INVALID_INPUT


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    lines = problems_of("docker-images: " + "[" * 5000 + "]" * 5000 + "\n")
    assert lines and ("YAML" in lines[0] or "nesting" in lines[0])


def test_tag_only_entry_is_kept_not_an_image() -> None:
    text = "docker-images:\n  vg:\n    tag: v1.35.6\n  x: {name: ghcr.io/x/a, tag: v1}\n"
    source = load_source(text.encode(), WHERE)
    assert [(e.tag, e.line, e.path) for e in source.tag_only] == [("v1.35.6", 3, ("docker-images", "vg"))]
    vector = render_vector(source, all_digests(source), meta(source)).decode()
    assert "    tag: v1.35.6\n  x:" in vector


def test_other_sections_are_not_validated_as_images() -> None:
    text = (
        "docker-images: {}\n"
        "helm-charts:\n  c: {repository: ghcr.io/x/charts/c, tag: 'not an image tag!'}\n"
        "binaries:\n  b: {name: 'No Image: here', tag: 1.1}\n"
    )
    assert load_source(text.encode(), WHERE).images == ()


# --- metadata, reading back -----------------------------------------------------------------------------


def test_created_from_epoch() -> None:
    assert created_from_epoch("0") == "1970-01-01T00:00:00Z"
    assert created_from_epoch("1784678400") == "2026-07-22T00:00:00Z"
    for bad in ("-1", "1.5", "soon", "99999999999999999999"):
        with pytest.raises(InvalidInputError, match="SOURCE_DATE_EPOCH"):
            created_from_epoch(bad)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"version": "1.0+build"}, "not usable as a tag"),
        ({"version": ""}, "not usable as a tag"),
        ({"git_revision": "main"}, "not a commit id"),
        ({"source_sha256": "abc"}, "source-sha256"),
        ({"created": "yesterday"}, "not a UTC time"),
    ],
)
def test_metadata_validation(fields: dict[str, str], match: str) -> None:
    values = {"version": "v1", "git_revision": REV, "source_sha256": "0" * 64, "created": None} | fields
    with pytest.raises(InvalidInputError, match=match):
        VectorMetadata(**values)  # type: ignore[arg-type]


def test_read_vector_checks_digests_and_metadata() -> None:
    text = "docker-images:\n  a: {name: ghcr.io/x/a, tag: v1, digest: sha256:abc}\nrelease-vector:\n  version: v1\n"
    with pytest.raises(InvalidDefinitionError) as info:
        read_vector(text.encode(), "oci://r/x:v1")
    assert info.value.lines() == [
        "malformed digest sha256:abc for image ghcr.io/x/a (oci://r/x:v1:2)",
        "release-vector lacks git-revision, source-sha256 (oci://r/x:v1:3)",
    ]


def test_read_vector_of_a_plain_metal_stack_file() -> None:
    vector = read_vector(METAL_STACK_FILES[0].read_bytes(), "release.yaml")
    assert vector.metadata is None
    assert len(vector.unpinned()) == len(vector.oci_entries) == len(vector.images) + 5 > 5


def test_read_vector_pinned_references_are_unique_and_ordered() -> None:
    digest = "sha256:" + "b" * 64
    text = (
        "docker-images:\n"
        f"  a: {{name: postgres, tag: v1, digest: {digest}}}\n"
        f"  b: {{name: ghcr.io/x/b, tag: v2, digest: {digest}}}\n"
        f"  c: {{name: docker.io/library/postgres, tag: v1, digest: {digest}}}\n"
    )
    refs = read_vector(text.encode(), "v").pinned_references()
    assert [str(r) for r in refs] == [f"docker.io/library/postgres:v1@{digest}", f"ghcr.io/x/b:v2@{digest}"]


# --- property: the vector minus what assemble adds is the source ---------------------------------------

_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "name", "tag", "digest", "release-vector"}
keys = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True).filter(lambda k: k not in _RESERVED)
registries = st.sampled_from(["ghcr.io", "docker.io", "quay.io", "europe-docker.pkg.dev", "127.0.0.1:5000", ""])
components = st.from_regex(r"[a-z][a-z0-9]{0,4}(-[a-z0-9]{1,3})?", fullmatch=True)
tags = st.from_regex(r"v[0-9]{1,2}(\.[0-9]{1,2}){0,2}(-[a-z]{1,5})?", fullmatch=True)


@st.composite
def image_names(draw: st.DrawFn) -> str:
    registry = draw(registries)
    path = "/".join(draw(st.lists(components, min_size=1, max_size=3)))
    return f"{registry}/{path}" if registry else path


@st.composite
def images(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "kind": "image",
        "name": draw(st.sampled_from(["postgres", "ghcr.io/a/b"]) | image_names()),
        "tag": draw(st.sampled_from(["v1"]) | tags),
        "repository": draw(st.none() | st.just("https://github.com/x/y")),
        "order": draw(st.permutations(["name", "tag", "repository"])),
        "flow": draw(st.booleans()),
        "quote": draw(st.sampled_from(["", "'", '"'])),
        "comment": draw(st.booleans()),
        "after": draw(st.booleans()),
    }


leaf = images() | st.builds(lambda t: {"kind": "tag-only", "tag": t}, tags)
trees = st.recursive(
    leaf,
    lambda children: (
        st.dictionaries(keys, children, min_size=1, max_size=4) | st.lists(images(), min_size=1, max_size=3)
    ),
    max_leaves=12,
)


def _emit_image(image: dict[str, Any], pad: str, first_prefix: str, nl: str) -> list[str]:
    values = {"name": image["name"], "tag": f"{image['quote']}{image['tag']}{image['quote']}"}
    if image["repository"]:
        values["repository"] = image["repository"]
    order = [k for k in image["order"] if k in values]
    if image["flow"]:
        body = ", ".join(f"{k}: {values[k]}" for k in order)
        return [f"{first_prefix}{{{body}}}" + ("  # pinned by a bot" if image["comment"] else "")]
    lines = []
    for index, key in enumerate(order):
        prefix = first_prefix if index == 0 else pad
        comment = "  # renovate: datasource=docker" if key == "tag" and image["comment"] else ""
        lines.append(f"{prefix}{key}: {values[key]}{comment}")
    if image["after"]:
        lines.append(f"{pad}# trailing note")
    return lines


def _emit(node: Any, column: int, indent: int, nl: str) -> list[str]:
    pad = " " * column
    lines: list[str] = []
    if isinstance(node, dict) and "kind" not in node:
        for key, child in node.items():
            if isinstance(child, dict) and child.get("kind") == "tag-only":
                lines += [f"{pad}{key}:", f"{pad}{' ' * indent}tag: {child['tag']}"]
            elif isinstance(child, dict) and child.get("kind") == "image" and child["flow"]:
                lines += _emit_image(child, pad, f"{pad}{key}: ", nl)
            else:
                lines.append(f"{pad}{key}:")
                lines += _emit(child, column + indent, indent, nl)
    elif isinstance(node, list):
        for item in node:
            lines += _emit_image({**item, "flow": False} if not item["flow"] else item, pad + "  ", f"{pad}- ", nl)
    elif node["kind"] == "image":
        lines += _emit_image(node, pad, pad, nl)
    else:
        lines.append(f"{pad}tag: {node['tag']}")
    return lines


@st.composite
def oci_artifacts(draw: st.DrawFn) -> dict[str, Any]:
    """A chart (oci + tag, maybe version too) or a role (oci + version), in any key order and style."""
    keys_present = draw(st.sampled_from([("oci", "tag"), ("oci", "version"), ("oci", "tag", "version")]))
    extra = ("repository",) if draw(st.booleans()) else ()
    return {
        "oci": draw(st.sampled_from(["ghcr.io/metal-stack/metal-roles", "oci://ghcr.io/x/charts/c"]) | image_names()),
        "tag": draw(tags),
        "version": draw(st.from_regex(r"[0-9]\.[0-9]{1,2}\.[0-9]", fullmatch=True) | tags),
        "order": draw(st.permutations(list(keys_present + extra))),
        "flow": draw(st.booleans()),
        "comment": draw(st.booleans()),
    }


def _emit_artifact(name: str, artifact: dict[str, Any], pad: str, indent: int) -> list[str]:
    values = {"oci": artifact["oci"], "tag": artifact["tag"], "version": artifact["version"],
              "repository": "https://helm.example.com"}  # fmt: skip
    comment = "  # renovate: datasource=helm" if artifact["comment"] else ""
    if artifact["flow"]:
        return [f"{pad}{name}: {{{', '.join(f'{k}: {values[k]}' for k in artifact['order'])}}}{comment}"]
    inner = pad + " " * indent
    return [f"{pad}{name}:"] + [f"{inner}{k}: {values[k]}{comment}" for k in artifact["order"]]


@st.composite
def sources(draw: st.DrawFn) -> str:
    indent = draw(st.sampled_from([2, 4]))
    pad = " " * indent
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    tree = draw(st.dictionaries(keys, trees, min_size=1, max_size=4))
    sections = {
        "docker-images": _emit(tree, indent, indent, nl),
        "binaries": [
            " " * indent + "tool:",
            " " * indent * 2 + "url: https://example.com/tool  # pinned",
            *draw(st.sampled_from([[], [" " * indent + "cli: {url: 'https://example.com/cli-linux', version: v1}"]])),
            *draw(st.sampled_from([[], [f"{pad}many:", f"{pad * 2}- url: http://127.0.0.1/k", f"{pad * 2}  v: 2"]])),
        ],
        "helm-charts": [" " * indent + "c: {repository: ghcr.io/x/charts/c, tag: v1}"]
        + [
            line
            for index, artifact in enumerate(draw(st.lists(oci_artifacts(), max_size=3)))
            for line in _emit_artifact(f"oci{index}", artifact, " " * indent, indent)
        ],
        "ansible-roles": [
            line
            for index, artifact in enumerate(draw(st.lists(oci_artifacts(), min_size=1, max_size=2)))
            for line in _emit_artifact(f"role{index}", artifact, " " * indent, indent)
        ],
        "projects": [" " * indent + "- a", " " * indent + "- b"],
    }
    order = draw(st.permutations(list(sections)))
    lines = ["# release definition"] if draw(st.booleans()) else []
    for name in order:
        lines.append(f"{name}:")
        lines += sections[name]
    text = nl.join(lines)
    return text + (nl if draw(st.booleans()) else "")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=sources(), pin_all=st.booleans(), created=st.booleans())
def test_property_vector_minus_additions_equals_source(text: str, pin_all: bool, created: bool) -> None:
    data = text.encode()
    source = load_source(data, WHERE)
    chosen = source.references() if pin_all else source.references()[::2]
    pins = {ref: fake_digest(ref) for ref in chosen}
    urls = [b.url for b in source.binaries]
    binary_pins = {url: fake_digest(url) for url in (urls if pin_all else urls[1:])}
    metadata = meta(source, created="2026-07-22T00:00:00Z" if created else None)
    vector = render_vector(source, pins, metadata, binary_pins)
    assert vector == render_vector(source, pins, metadata, binary_pins)
    expected = data if data.endswith(b"\n") else data + (b"\r\n" if b"\r\n" in data else b"\n")
    assert strip_inserted(vector) == expected
    assert without_pins(vector, [e.path for e in (*source.oci_entries, *source.binaries)]) == yaml.safe_load(data)
    read = read_vector(vector, "v")
    assert [(b.url, b.digest) for b in read.binaries] == [(url, binary_pins.get(url)) for url in urls]
    assert read.metadata == metadata
    assert [(i.name, i.tag, i.path) for i in read.images] == [(i.name, i.tag, i.path) for i in source.images]
    assert [i.digest for i in read.images] == [pins.get(i.reference) for i in source.images]
    assert source.artifacts  # every generated source names at least one role
    assert [(a.kind, a.name, a.tag, a.path) for a in read.artifacts] == [
        (a.kind, a.name, a.tag, a.path) for a in source.artifacts
    ]
    assert [a.digest for a in read.artifacts] == [pins.get(a.reference) for a in source.artifacts]
    assert [p.yaml_path for p in read.pinned_oci_references()] == [
        e.yaml_path for e in source.oci_entries if e.reference in pins
    ]


# --- large sources: linear, one node tree at a time ---------------------------------------------


def _large_source(count: int) -> bytes:
    lines = ["docker-images:", "  group:"]
    for index in range(count):
        lines += [f"    c{index}:", f"      name: ghcr.io/o/c{index}", "      tag: v1", "      note: keep me"]
    return ("\n".join(lines) + "\n").encode()


def test_rendering_composes_only_the_output_not_the_source_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The read-back check compares against a fingerprint taken at load, not a second parse of the source
    (a 100,000-entry source held two node trees at once: 1.4 GB)."""
    import pipeline.vector as vector_module

    source = load_source(_large_source(50), WHERE)
    calls: list[int] = []
    real_compose = vector_module.yaml.compose

    def counting_compose(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real_compose(*args, **kwargs)

    monkeypatch.setattr(vector_module.yaml, "compose", counting_compose)
    vector = render_vector(source, all_digests(source), meta(source))
    assert len(calls) == 1
    assert strip_inserted(vector) == _large_source(50)


def test_rendered_check_still_catches_changed_data() -> None:
    """A rendering whose data differs from the source (here: a tampered layout text) is an internal error."""
    import dataclasses

    import pipeline.vector as vector_module

    data = _large_source(3)
    source = load_source(data, WHERE)
    layout = source._layout
    tampered = dataclasses.replace(layout, text=layout.text.replace("note: keep me", "note: kept me", 1))
    bad = dataclasses.replace(source, _layout=tampered)
    with pytest.raises(vector_module.ReleaseVectorError, match="differs from the source"):
        render_vector(bad, all_digests(bad), meta(bad))
    # and a structural change of the same text length (a scalar becomes a sequence item) too
    tampered = dataclasses.replace(layout, text=layout.text.replace("note: keep me", "note: [keepm]", 1))
    bad = dataclasses.replace(source, _layout=tampered)
    with pytest.raises(vector_module.ReleaseVectorError, match="differs from the source"):
        render_vector(bad, all_digests(bad), meta(bad))


def test_parsing_pauses_the_garbage_collector_and_restores_it() -> None:
    """Node trees are acyclic; full collections over millions of nodes made large sources superlinear."""
    import gc

    import pipeline.vector as vector_module

    seen: list[bool] = []
    real = vector_module._check_tree

    def spy(*args: Any, **kwargs: Any) -> None:
        seen.append(gc.isenabled())
        real(*args, **kwargs)

    assert gc.isenabled()
    original = vector_module._check_tree
    vector_module._check_tree = spy
    try:
        load_source(_large_source(2), WHERE)
        with pytest.raises(InvalidDefinitionError):
            load_source(b"docker-images: [\n", WHERE)
    finally:
        vector_module._check_tree = original
    assert seen == [False]
    assert gc.isenabled()


def test_large_source_renders_byte_preserving() -> None:
    data = _large_source(2000)
    source = load_source(data, WHERE)
    assert len(source.images) == 2000
    vector = render_vector(source, all_digests(source), meta(source))
    assert strip_inserted(vector) == data
    read = read_vector(vector, "v")
    assert [i.digest for i in read.images] == [fake_digest(i.reference) for i in source.images]


# --- OCI artifacts: any mapping with oci + tag (or version) ---------------------------------------


def test_oci_artifacts_under_any_key_are_pinned_beside_their_tag_or_version() -> None:
    text = (
        "docker-images:\n"
        "  a: {name: ghcr.io/x/a, tag: v1}\n"
        "  chart-in-images: {oci: ghcr.io/x/charts/d, tag: v4}\n"
        "ansible-roles:\n"
        "  role:\n"
        "    oci: ghcr.io/x/role   # the role\n"
        "    version: v0.9.0\n"
        "    repository: https://github.com/x/role\n"
        "helm-charts:\n"
        "  g:\n"
        "    chart: {oci: 'oci://ghcr.io/x/charts/c', tag: v0.8.8, version: 0.8.8}\n"
        "    http-only: {repository: https://charts.example.com, version: 1.2.3}\n"
        "extras:\n"
        "  - oci: ghcr.io/x/extra\n"
        "    version: v2\n"
    )
    source = load_source(text.encode(), WHERE)
    assert [(a.yaml_path, str(a.reference), a.line) for a in source.artifacts] == [
        ("docker-images.chart-in-images", "ghcr.io/x/charts/d:v4", 3),
        ("ansible-roles.role", "ghcr.io/x/role:v0.9.0", 6),
        ("helm-charts.g.chart", "ghcr.io/x/charts/c:v0.8.8", 11),
        ("extras[0]", "ghcr.io/x/extra:v2", 14),
    ]
    assert source.tag_only == ()
    vector = render_vector(source, all_digests(source), meta(source))
    lines = vector.decode().splitlines()
    assert lines[6:9] == [
        "    version: v0.9.0",
        f"    digest: {fake_digest('ghcr.io/x/role:v0.9.0')}",
        "    repository: https://github.com/x/role",
    ]
    assert f"tag: v0.8.8, digest: {fake_digest('ghcr.io/x/charts/c:v0.8.8')}, version: 0.8.8}}" in vector.decode()
    assert strip_inserted(vector) == text.encode()
    pinned = read_vector(vector, "v").pinned_oci_references()
    assert [(p.kind, p.yaml_path) for p in pinned] == [
        ("image", "docker-images.a"),
        ("oci-artifact", "docker-images.chart-in-images"),
        ("oci-artifact", "ansible-roles.role"),
        ("oci-artifact", "helm-charts.g.chart"),
        ("oci-artifact", "extras[0]"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("roles:\n  r:\n    oci: 'Not A/Repo!'\n    version: v1\n", "oci 'Not A/Repo!' is not a valid repository"),
        ("roles:\n  r:\n    oci: ghcr.io/x/r\n    repository: https://x\n", "has neither a tag nor a version"),
        ("roles:\n  r:\n    oci: ghcr.io/x/r\n    version: 1.0\n", "is not a string (YAML reads it as a float)"),
        ("roles:\n  r:\n    oci: ghcr.io/x/r\n    version: 'v1+build'\n", "malformed version v1+build"),
        ("roles:\n  r:\n    oci: ghcr.io/x/r\n    version: v1\n    digest: sha256:ab\n", "already has a digest"),
        ("roles:\n  r:\n    oci: ''\n    version: v1\n", "oci must be a non-empty string"),
    ],
)
def test_invalid_oci_artifacts_name_their_line(text: str, expected: str) -> None:
    lines = problems_of("docker-images: {}\n" + text)
    assert len(lines) == 1
    assert expected in lines[0]
    assert re.search(r"\(release/release\.yaml:[3-6]\)$", lines[0])


def test_unpinned_artifact_is_listed_by_pinned_references() -> None:
    text = "docker-images: {}\nroles:\n  r: {oci: ghcr.io/x/r, version: v1}\n"
    vector = read_vector(text.encode(), "v")
    assert vector.pinned_oci_references() == ()
    with pytest.raises(InvalidDefinitionError, match=r"oci artifact ghcr.io/x/r:v1 has no digest"):
        vector.pinned_references()


def test_a_binary_the_source_pins_itself_keeps_its_digest_and_gets_no_second_one() -> None:
    """A source may carry a binary's sha256 (e.g. a draft release's asset, not downloadable yet)."""
    pin = "sha256:" + "c" * 64
    text = (
        "docker-images: {}\n"
        "binaries:\n"
        f"  wheel:\n    url: https://example.org/r.whl\n    digest: {pin}\n"
        "  sdist:\n    url: https://example.org/r.tar.gz\n"
    )
    source = load_source(text.encode(), "self.yaml")
    assert [(b.url, b.digest) for b in source.binaries] == [
        ("https://example.org/r.whl", pin),
        ("https://example.org/r.tar.gz", None),
    ]
    fetched = "sha256:" + "d" * 64
    output = render_vector(source, {}, meta(source), {"https://example.org/r.tar.gz": fetched})
    assert output.decode().count(pin) == 1
    assert [(b.url, b.digest) for b in read_vector(output, "v").binaries] == [
        ("https://example.org/r.whl", pin),
        ("https://example.org/r.tar.gz", fetched),
    ]
