"""Reference parsing and normalisation (docker's distribution/reference rules, cosign's naming)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import InvalidInputError
from pipeline.oci.reference import Reference, Repository, parse_reference, parse_repository

D = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("ubuntu", "docker.io", "library/ubuntu", "latest", None),
        ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None),
        ("docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", None),
        ("index.docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", None),
        ("index.docker.io/library/ubuntu:1", "docker.io", "library/ubuntu", "1", None),
        ("docker.io/library/ubuntu", "docker.io", "library/ubuntu", "latest", None),
        ("salrashid123/server_image", "docker.io", "salrashid123/server_image", "latest", None),
        ("ghcr.io/metal-stack/releases:v0.22.19", "ghcr.io", "metal-stack/releases", "v0.22.19", None),
        (f"ghcr.io/metal-stack/releases@{D}", "ghcr.io", "metal-stack/releases", None, D),
        (f"ghcr.io/metal-stack/releases:v1@{D}", "ghcr.io", "metal-stack/releases", "v1", D),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/app:dev", "localhost:5000", "app", "dev", None),
        ("127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000", "a/b/c", "t", None),
        ("[::1]:5000/app", "[::1]:5000", "app", "latest", None),
        ("quay.io/prometheus/node-exporter:v1.8.2", "quay.io", "prometheus/node-exporter", "v1.8.2", None),
        ("r.example.com/a__b/c-d/e.f:T_1", "r.example.com", "a__b/c-d/e.f", "T_1", None),
        ("Registry/app", "Registry", "app", "latest", None),  # upper case marks a host, as in docker
        ("registry-1.docker.io/app", "registry-1.docker.io", "app", "latest", None),
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),  # docker reads it the same way
    ],
)
def test_parse(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert parse_reference(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("ubuntu/UPPER", "lowercase"),
        ("docker.io/Library/ubuntu", "lowercase"),
        ("ghcr.io/Org/repo", "lowercase"),
        ("ubuntu:", "invalid tag"),
        ("ubuntu:-bad", "invalid tag"),
        ("ubuntu:" + "t" * 129, "invalid tag"),
        ("ubuntu@sha256:abc", "invalid digest"),
        ("ubuntu@md5:" + "a" * 32, "invalid digest"),
        (f"ubuntu@{D}@{D2}", "invalid digest"),
        ("https://ghcr.io/org/repo", "scheme"),
        ("ghcr.io/", "no repository"),
        ("ghcr.io//repo", "invalid repository"),
        ("ghcr.io/org/repo/", "invalid repository"),
        ("ghcr.io/-org/repo", "invalid repository"),
        ("ghcr.io/org/repo-", "invalid repository"),
        ("a" * 64, "image id"),
        ("ghcr.io/org/repo:v1 ", "whitespace"),
        (" ubuntu", "whitespace"),
        ("bad_host:5000/app", "invalid registry"),
        ("ghcr.io:port/app", "invalid registry"),
        ("ghcr.io/" + "a" * 250, "longer than 255"),
    ],
)
def test_malformed_reference_is_one_line_naming_it(text: str, reason: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_reference(text)
    line = str(info.value)
    assert "\n" not in line
    assert reason in line
    assert (text.strip() or "(empty)") in line
    assert line.startswith("malformed image reference")


def test_names() -> None:
    hub = parse_reference("ubuntu:22.04")
    assert hub.name == "docker.io/library/ubuntu"
    assert hub.endpoint_host == "registry-1.docker.io"
    assert hub.cosign_name == "index.docker.io/library/ubuntu"  # what cosign writes as docker-reference
    assert str(hub) == "docker.io/library/ubuntu:22.04"
    assert hub.identifier == "22.04"
    ghcr = parse_reference("ghcr.io/org/repo:v1")
    assert ghcr.endpoint_host == "ghcr.io" and ghcr.cosign_name == "ghcr.io/org/repo"


def test_with_digest_and_tag() -> None:
    ref = parse_reference("ghcr.io/org/repo:v1")
    pinned = ref.with_digest(D)
    assert pinned == Reference("ghcr.io", "org/repo", None, D)
    assert str(pinned) == f"ghcr.io/org/repo@{D}"
    assert pinned.identifier == D
    assert pinned.with_tag("v2") == Reference("ghcr.io", "org/repo", "v2", None)
    both = parse_reference(f"ghcr.io/org/repo:v1@{D}")
    assert both.identifier == D  # the digest wins
    with pytest.raises(InvalidInputError):
        ref.with_digest("sha256:short")
    with pytest.raises(InvalidInputError):
        ref.with_tag("no/slashes")
    with pytest.raises(ValueError):
        Reference("ghcr.io", "org/repo")


def test_repository() -> None:
    repo = parse_repository("ghcr.io/metal-stack/releases")
    assert repo == Repository("ghcr.io", "metal-stack/releases")
    assert str(repo.tag("v1")) == "ghcr.io/metal-stack/releases:v1"
    assert parse_repository("alpine") == Repository("docker.io", "library/alpine")
    assert parse_reference("alpine:3").repo == parse_repository("alpine")
    with pytest.raises(InvalidInputError, match="without tag or digest"):
        parse_repository("alpine:3")


_component = st.from_regex(r"[a-z0-9]{1,5}(?:[._-][a-z0-9]{1,5}){0,2}", fullmatch=True)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_registry = st.sampled_from(["ghcr.io", "localhost:5000", "quay.io", "docker.io", "127.0.0.1:1", "r.example.com:443"])


@given(
    registry=_registry,
    path=st.lists(_component, min_size=1, max_size=4),
    tag=st.none() | _tag,
    digest=st.none() | st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True),
)
def test_round_trip(registry: str, path: list[str], tag: str | None, digest: str | None) -> None:
    text = f"{registry}/{'/'.join(path)}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    ref = parse_reference(text)
    assert parse_reference(str(ref)) == ref
    assert ref.tag == (tag if tag or digest else "latest")
    assert ref.digest == digest
    if registry != "docker.io" or len(path) > 1:
        assert str(ref) == text if (tag or digest) else str(ref) == text + ":latest"


@given(st.text(max_size=40))
def test_never_crashes(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidInputError as exc:
        assert "\n" not in str(exc)
    else:
        assert parse_reference(str(ref)) == ref
