"""Where a mirrored name goes: ``REGISTRY/PREFIX/<original host>/<original path>``.

The original host becomes one path component. A host with a port (``127.0.0.1:5000``) is not a valid
path component, so its ``:`` becomes ``_`` (``127.0.0.1_5000``): a host name never contains ``_``, so
the mapping cannot collide with another host. An IPv6 literal becomes ``ipv6-`` and its groups joined by
``-`` (``[::1]:5000`` → ``ipv6---1_5000``). The rules that read the copy back are ordinary
``--registry-mirror FROM=TO`` rules, one per original host (``127.0.0.1:5000=TARGET/PREFIX/127.0.0.1_5000``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.errors import UsageError
from pipeline.oci.mirror import Mirror, Mirrors, parse_mirror
from pipeline.oci.reference import Reference, Repository, parse_repository


@dataclass(frozen=True)
class Destination:
    """``REGISTRY[/PREFIX]`` of ``--to``."""

    registry: str
    prefix: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.prefix}" if self.prefix else self.registry


def parse_destination(text: str, option: str = "--to") -> Destination:
    """``REGISTRY[/PREFIX]``, validated as the TO side of a ``--registry-mirror`` rule is."""
    rule = parse_mirror(f"mirror.invalid={text}") if text.strip() else None
    if rule is None:
        raise UsageError(f"{option} is empty", where=option)
    return Destination(rule.target_registry, rule.target_path)


def host_component(registry: str) -> str:
    """The original registry as one repository path component (``host:port`` → ``host_port``)."""
    host, port = registry.lower(), ""
    if host.startswith("["):  # an IPv6 literal: [::1]:5000 -> ipv6---1_5000 (dashes may repeat inside a name)
        literal, _, rest = host[1:].partition("]")
        host, port = "ipv6-" + literal.replace(":", "-"), rest.lstrip(":")
    else:
        host, _, port = host.partition(":")
    return f"{host}_{port}" if port else host


def rule_for(destination: Destination, registry: str) -> Mirror:
    """The ``--registry-mirror`` rule that reads names of ``registry`` at ``destination``."""
    path = "/".join(p for p in (destination.prefix, host_component(registry)) if p)
    return Mirror(registry, "", destination.registry, path)


def mirrors_for(destination: Destination, registries: Iterable[str]) -> Mirrors:
    return Mirrors(tuple(sorted({rule_for(destination, registry) for registry in registries})))


def target_repository(destination: Destination, repo: Repository) -> Repository:
    """``repo`` under ``destination`` (UsageError when the result is no valid name)."""
    mapped = rule_for(destination, repo.registry).apply_repository(repo)
    return parse_repository(mapped.name)


def target_reference(destination: Destination, ref: Reference) -> Reference:
    repo = target_repository(destination, ref.repo)
    return Reference(repo.registry, repo.path, tag=ref.tag, digest=ref.digest)
