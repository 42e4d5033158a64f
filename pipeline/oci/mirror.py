"""Registry mirrors: ``--registry-mirror FROM=TO`` reads images named under FROM at TO instead.

A rule maps a registry, or a registry and a path prefix, to another registry and optional path prefix::

    ghcr.io=127.0.0.1:5000/ghcr.io            ghcr.io/metal-stack/api  ->  127.0.0.1:5000/ghcr.io/metal-stack/api
    docker.io/library=mirror.example/hub      postgres                 ->  mirror.example/hub/postgres

Names are normalised first (``postgres`` is ``docker.io/library/postgres``; ``index.docker.io`` is
``docker.io``), so a rule for ``docker.io`` catches every way of writing a Docker Hub name. Prefixes
match whole path components only (``ghcr.io/metal`` does not catch ``ghcr.io/metal-stack/x``), and the
longest matching prefix wins. Only where an image is *read from* changes: the vector, signatures and
every message keep the original name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.errors import InvalidInputError, UsageError
from pipeline.oci.reference import (
    DOCKER_HUB,
    DOCKER_HUB_ALIASES,
    Reference,
    Repository,
    parse_repository,
)

OPTION = "--registry-mirror"


@dataclass(frozen=True, order=True)
class Mirror:
    """One rule: names under ``source_registry/source_path`` are read at ``target_registry/target_path``.

    ``source_path`` and ``target_path`` are ``""`` for a whole registry.
    """

    source_registry: str
    source_path: str
    target_registry: str
    target_path: str

    @property
    def source(self) -> str:
        return _join(self.source_registry, self.source_path)

    @property
    def target(self) -> str:
        return _join(self.target_registry, self.target_path)

    def matches(self, repo: Repository) -> bool:
        if repo.registry != self.source_registry:
            return False
        return not self.source_path or repo.path == self.source_path or repo.path.startswith(self.source_path + "/")

    def apply_repository(self, repo: Repository) -> Repository:
        """``repo`` under the target; ``repo`` must match (see :meth:`matches`)."""
        if not self.matches(repo):
            raise ValueError(f"{repo} is not under {self.source}")
        rest = repo.path[len(self.source_path) :].lstrip("/") if self.source_path else repo.path
        path = "/".join(p for p in (self.target_path, rest) if p)
        if not path:
            raise InvalidInputError(f"mirror {self} maps {repo} to a registry without a repository path", where=OPTION)
        text = f"{self.target_registry}/{path}"
        try:
            mirrored = parse_repository(text)
        except InvalidInputError as exc:
            message = f"mirror {self} maps {repo} to an invalid name: {exc.message}"
            raise InvalidInputError(message, where=OPTION) from None
        return mirrored

    def __str__(self) -> str:
        return f"{self.source}={self.target}"


@dataclass(frozen=True)
class Mirrors:
    """A set of rules; :meth:`apply` uses the longest matching source prefix (no match: unchanged)."""

    rules: tuple[Mirror, ...] = ()

    def __post_init__(self) -> None:
        seen: dict[tuple[str, str], Mirror] = {}
        for rule in self.rules:
            key = (rule.source_registry, rule.source_path)
            if key in seen and seen[key] != rule:
                raise UsageError(f"two mirrors for {rule.source}: {seen[key].target} and {rule.target}", where=OPTION)
            seen[key] = rule

    def __bool__(self) -> bool:
        return bool(self.rules)

    def rule_for(self, repo: Repository) -> Mirror | None:
        best: Mirror | None = None
        for rule in self.rules:
            if rule.matches(repo) and (best is None or len(rule.source_path) > len(best.source_path)):
                best = rule
        return best

    def apply_repository(self, repo: Repository) -> Repository:
        rule = self.rule_for(repo)
        return repo if rule is None else rule.apply_repository(repo)

    def apply(self, reference: Reference) -> Reference:
        """Where to read ``reference``: same tag and digest, repository moved by the best rule."""
        repo = self.apply_repository(reference.repo)
        if repo == reference.repo:
            return reference
        return Reference(repo.registry, repo.path, tag=reference.tag, digest=reference.digest)


def _join(registry: str, path: str) -> str:
    return f"{registry}/{path}" if path else registry


def _looks_like_registry(component: str) -> bool:
    return any(c in component for c in ".:") or component == "localhost" or component.lower() != component


def _split_side(text: str, side: str, spec: str) -> tuple[str, str]:
    """``registry[/path]`` of one side of a rule, validated (Docker Hub aliases become ``docker.io``)."""
    text = text.strip().rstrip("/")
    if not text:
        raise UsageError(f"mirror {spec!r}: {side} is empty", where=OPTION)
    if "://" in text:
        raise UsageError(f"mirror {spec!r}: {side} has a scheme; leave out http(s)://", where=OPTION)
    if any(c in text for c in "@") or any(c.isspace() for c in text):
        raise UsageError(f"mirror {spec!r}: {side} must be a registry with an optional path", where=OPTION)
    registry, _, path = text.partition("/")
    if not _looks_like_registry(registry):
        raise UsageError(
            f"mirror {spec!r}: {side} must start with a registry host (with a '.' or ':', or localhost)",
            where=OPTION,
        )
    if registry in DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    if path and ":" in path:
        raise UsageError(f"mirror {spec!r}: {side} must not name a tag", where=OPTION)
    try:
        # A placeholder component makes a registry-only side parseable; it validates host and path.
        parsed = parse_repository(f"{registry}/{path}/x" if path else f"{registry}/x")
    except InvalidInputError as exc:
        raise UsageError(f"mirror {spec!r}: invalid {side}: {exc.message}", where=OPTION) from None
    if parsed.registry != registry:
        raise UsageError(f"mirror {spec!r}: {side} must start with a registry host", where=OPTION)
    return registry, path


def parse_mirror(spec: str) -> Mirror:
    """``FROM=TO`` → :class:`Mirror`; both sides are ``registry[/path]``."""
    source, sep, target = spec.partition("=")
    if not sep:
        raise UsageError(f"mirror {spec!r} is not FROM=TO", where=OPTION)
    source_registry, source_path = _split_side(source, "FROM", spec)
    target_registry, target_path = _split_side(target, "TO", spec)
    if (source_registry, source_path) == (target_registry, target_path):
        raise UsageError(f"mirror {spec!r} maps a name to itself", where=OPTION)
    return Mirror(source_registry, source_path, target_registry, target_path)


def parse_mirrors(specs: Iterable[str]) -> Mirrors:
    """Every ``FROM=TO`` of the command line (duplicates collapse; two targets for one source is an error)."""
    return Mirrors(tuple(dict.fromkeys(parse_mirror(spec) for spec in specs)))


def apply(mirrors: Mirrors, reference: Reference) -> Reference:
    """Module-level spelling of :meth:`Mirrors.apply`."""
    return mirrors.apply(reference)
