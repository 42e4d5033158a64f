"""Registry mirrors: parsing FROM=TO, longest-prefix matching on path boundaries, Docker Hub names."""

from __future__ import annotations

import pytest

from pipeline.errors import UsageError
from pipeline.oci.mirror import Mirror, Mirrors, apply, parse_mirror, parse_mirrors
from pipeline.oci.reference import parse_reference


def mirrored(specs: list[str], ref: str) -> str:
    return str(apply(parse_mirrors(specs), parse_reference(ref)))


def test_parse_registry_to_registry_with_path() -> None:
    rule = parse_mirror("ghcr.io=127.0.0.1:5000/ghcr.io")
    assert rule == Mirror("ghcr.io", "", "127.0.0.1:5000", "ghcr.io")
    assert str(rule) == "ghcr.io=127.0.0.1:5000/ghcr.io"


def test_whole_registry_is_moved_under_the_target_path() -> None:
    assert (
        mirrored(["ghcr.io=127.0.0.1:5000/ghcr.io"], "ghcr.io/metal-stack/metal-api:v0.45.0")
        == "127.0.0.1:5000/ghcr.io/metal-stack/metal-api:v0.45.0"
    )


def test_digest_and_tag_are_kept() -> None:
    digest = "sha256:" + "a" * 64
    assert mirrored(["quay.io=mirror.example"], f"quay.io/thanos/thanos:v1@{digest}") == (
        f"mirror.example/thanos/thanos:v1@{digest}"
    )


def test_unmatched_reference_is_unchanged() -> None:
    ref = parse_reference("quay.io/thanos/thanos:v0.39.2")
    assert parse_mirrors(["ghcr.io=127.0.0.1:5000/ghcr.io"]).apply(ref) is ref


@pytest.mark.parametrize(
    "ref",
    ["postgres:15", "docker.io/library/postgres:15", "index.docker.io/library/postgres:15", "docker.io/postgres:15"],
)
def test_docker_hub_names_are_normalised_before_matching(ref: str) -> None:
    assert mirrored(["docker.io=127.0.0.1:5000/hub"], ref) == "127.0.0.1:5000/hub/library/postgres:15"


def test_docker_hub_aliases_in_from() -> None:
    assert parse_mirror("index.docker.io=localhost:5000").source_registry == "docker.io"
    assert parse_mirror("registry-1.docker.io/library=localhost:5000/official").source == "docker.io/library"
    assert mirrored(["index.docker.io/library=localhost:5000/official"], "nginx:1") == "localhost:5000/official/nginx:1"


def test_longest_prefix_wins_whatever_the_order() -> None:
    specs = ["ghcr.io=a.example", "ghcr.io/metal-stack=b.example/ms", "ghcr.io/metal-stack/charts=c.example"]
    for order in (specs, list(reversed(specs))):
        assert mirrored(order, "ghcr.io/metal-stack/charts/x:1") == "c.example/x:1"
        assert mirrored(order, "ghcr.io/metal-stack/metal-api:1") == "b.example/ms/metal-api:1"
        assert mirrored(order, "ghcr.io/other/x:1") == "a.example/other/x:1"


def test_prefix_matches_on_path_component_boundaries_only() -> None:
    specs = ["ghcr.io/metal=a.example/m"]
    assert mirrored(specs, "ghcr.io/metal-stack/x:1") == "ghcr.io/metal-stack/x:1"
    assert mirrored(specs, "ghcr.io/metal/x:1") == "a.example/m/x:1"


def test_registry_match_is_exact_not_a_string_prefix() -> None:
    assert mirrored(["ghcr.io=a.example"], "ghcr.io.evil.example/x:1") == "ghcr.io.evil.example/x:1"


def test_exact_repository_rule() -> None:
    assert mirrored(["ghcr.io/a/b=localhost:5000/c"], "ghcr.io/a/b:v1") == "localhost:5000/c:v1"


def test_rule_mapping_a_repository_onto_a_bare_registry_is_refused_when_applied() -> None:
    rules = parse_mirrors(["ghcr.io/a/b=localhost:5000"])
    with pytest.raises(Exception, match="without a repository path"):
        rules.apply(parse_reference("ghcr.io/a/b:v1"))


def test_trailing_slash_and_duplicates_collapse() -> None:
    rules = parse_mirrors(["ghcr.io/=localhost:5000/g/", "ghcr.io=localhost:5000/g"])
    assert len(rules.rules) == 1


def test_two_targets_for_one_source_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"two mirrors for ghcr\.io"):
        parse_mirrors(["ghcr.io=a.example", "ghcr.io=b.example"])


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("ghcr.io", "not FROM=TO"),
        ("=localhost:5000", "FROM is empty"),
        ("ghcr.io=", "TO is empty"),
        ("https://ghcr.io=localhost:5000", "scheme"),
        ("ghcr.io=http://localhost:5000", "scheme"),
        ("library=localhost:5000", "must start with a registry host"),
        ("ghcr.io=mirror", "must start with a registry host"),
        ("ghcr.io/x:v1=localhost:5000", "must not name a tag"),
        ("ghcr.io=localhost:5000/UPPER", "invalid TO"),
        ("ghcr.io=ghcr.io", "maps a name to itself"),
        ("ghcr.io=local host:5000", "registry with an optional path"),
    ],
)
def test_malformed_rules(spec: str, match: str) -> None:
    with pytest.raises(UsageError, match=match) as info:
        parse_mirror(spec)
    assert info.value.where == "--registry-mirror"
    assert info.value.exit_code == 2


def test_empty_mirrors_is_falsy_and_changes_nothing() -> None:
    ref = parse_reference("ghcr.io/a/b:1")
    assert not Mirrors()
    assert Mirrors().apply(ref) == ref
