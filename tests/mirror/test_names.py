"""The name mapping REGISTRY/PREFIX/<original host>/<original path>, and the rules that read it back."""

from __future__ import annotations

import pytest

from pipeline.errors import UsageError
from pipeline.mirror.names import mirrors_for, parse_destination, target_reference
from pipeline.oci.mirror import parse_mirrors
from pipeline.oci.reference import parse_reference

CASES = [
    ("ghcr.io/metal-stack/metal-api:v1", "m.example/mirror", "m.example/mirror/ghcr.io/metal-stack/metal-api:v1"),
    ("postgres:15", "m.example", "m.example/docker.io/library/postgres:15"),
    ("127.0.0.1:5000/rel/releases:v1", "127.0.0.1:6000/a/b", "127.0.0.1:6000/a/b/127.0.0.1_5000/rel/releases:v1"),
    ("localhost:5000/x:1", "m.example/p", "m.example/p/localhost_5000/x:1"),
    ("[::1]:5000/x:1", "m.example", "m.example/ipv6---1_5000/x:1"),
]


@pytest.mark.parametrize(("original", "to", "expected"), CASES)
def test_names_map_under_the_destination_and_the_rules_read_them_back(original: str, to: str, expected: str) -> None:
    ref = parse_reference(original)
    destination = parse_destination(to)
    mapped = target_reference(destination, ref)
    assert str(mapped) == expected
    rules = mirrors_for(destination, [ref.registry])
    assert rules.apply(ref) == mapped
    assert parse_mirrors(str(rule) for rule in rules.rules).apply(ref) == mapped, "the printed rules parse"


@pytest.mark.parametrize("bad", ["", "http://m.example", "m.example/a:tag", "noregistry/path", "m.example/A B"])
def test_a_bad_destination_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_destination(bad)
