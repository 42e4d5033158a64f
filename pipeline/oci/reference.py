"""Image references, parsed and normalised the way docker (distribution/reference) and cosign do.

``ubuntu`` is ``docker.io/library/ubuntu:latest``; ``index.docker.io/x`` is ``docker.io/library/x``;
the first path component is a registry when it holds a ``.`` or a ``:`` or is ``localhost`` (or has
upper-case letters); a reference without tag and digest gets the tag ``latest``; ``name:tag@digest``
keeps both (the digest wins when fetching). Docker Hub's API lives at ``registry-1.docker.io``
(:attr:`Repository.endpoint_host`); cosign (go-containerregistry) spells Docker Hub repositories
``index.docker.io/...`` in its signature payloads (:attr:`Repository.cosign_name`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from pipeline.errors import InvalidInputError
from pipeline.oci import digest as digests

DOCKER_HUB: Final = "docker.io"
DOCKER_HUB_LEGACY: Final = "index.docker.io"
DOCKER_HUB_ENDPOINT: Final = "registry-1.docker.io"
DOCKER_HUB_ALIASES: Final = frozenset({DOCKER_HUB, DOCKER_HUB_LEGACY, DOCKER_HUB_ENDPOINT})
OFFICIAL_PREFIX: Final = "library"
DEFAULT_TAG: Final = "latest"
NAME_MAX: Final = 255

_PATH_COMPONENT: Final = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE: Final = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_DOMAIN_COMPONENT: Final = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE: Final = re.compile(rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$")
_TAG_RE: Final = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_HEX64_RE: Final = re.compile(r"^[a-f0-9]{64}$")


def _shown(text: str) -> str:
    """The text as it can stand in a one-line message: quoted if it holds spaces or control characters."""
    if len(text) > 300:
        text = text[:300] + "…"
    if not text:
        return "(empty)"
    if any(c.isspace() or not c.isprintable() for c in text):
        return repr(text)
    return text


def _malformed(text: str, reason: str) -> InvalidInputError:
    return InvalidInputError(f"malformed image reference: {reason}", where=_shown(text))


@dataclass(frozen=True, order=True)
class Repository:
    """A repository in a registry: ``ghcr.io`` + ``metal-stack/releases``."""

    registry: str
    path: str

    @property
    def name(self) -> str:
        """``registry/path``: ``docker.io/library/ubuntu``."""
        return f"{self.registry}/{self.path}"

    @property
    def endpoint_host(self) -> str:
        """The host (and port) the registry API is reached at: ``registry-1.docker.io`` for Docker Hub."""
        return DOCKER_HUB_ENDPOINT if self.registry in (DOCKER_HUB, DOCKER_HUB_LEGACY) else self.registry

    @property
    def cosign_name(self) -> str:
        """The name cosign writes as ``docker-reference``: ``index.docker.io/...`` for Docker Hub."""
        registry = DOCKER_HUB_LEGACY if self.registry == DOCKER_HUB else self.registry
        return f"{registry}/{self.path}"

    def tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.path, tag=_check_tag(tag, f"{self.name}:{tag}"))

    def digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.path, digest=digests.validate(digest, where=f"{self.name}@{digest}"))

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, order=True)
class Reference:
    """A parsed image reference; ``tag`` and ``digest`` are never both None."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if self.tag is None and self.digest is None:
            raise ValueError("a Reference needs a tag or a digest")

    @property
    def repo(self) -> Repository:
        return Repository(self.registry, self.repository)

    @property
    def name(self) -> str:
        """The repository with its registry, without tag or digest: ``docker.io/library/ubuntu``."""
        return f"{self.registry}/{self.repository}"

    @property
    def endpoint_host(self) -> str:
        return self.repo.endpoint_host

    @property
    def cosign_name(self) -> str:
        return self.repo.cosign_name

    @property
    def identifier(self) -> str:
        """What goes after ``/manifests/``: the digest if there is one, else the tag."""
        return self.digest if self.digest is not None else str(self.tag)

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to ``digest`` (the tag is dropped)."""
        return self.repo.digest(digest)

    def with_tag(self, tag: str) -> Reference:
        """The same repository at ``tag`` (the digest is dropped)."""
        return self.repo.tag(tag)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _check_tag(tag: str, text: str) -> str:
    if not _TAG_RE.match(tag):
        raise _malformed(text, f"invalid tag {tag!r}")
    return tag


def _split_name(text: str, name: str) -> Repository:
    if not name:
        raise _malformed(text, "no repository name")
    if "://" in name:
        raise _malformed(text, "a reference has no scheme (leave out https://)")
    first, sep, rest = name.partition("/")
    if sep and (any(c in first for c in ".:") or first == "localhost" or first.lower() != first):
        registry, path = first, rest
        if not _HOST_RE.match(registry):
            raise _malformed(text, f"invalid registry {registry!r}")
    else:
        registry, path = DOCKER_HUB, name
    if registry == DOCKER_HUB_LEGACY:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"{OFFICIAL_PREFIX}/{path}"
    if not path:
        raise _malformed(text, "no repository name")
    if path.lower() != path:
        raise _malformed(text, "repository name must be lowercase")
    if not _PATH_RE.match(path):
        raise _malformed(text, f"invalid repository name {path!r}")
    if len(registry) + 1 + len(path) > NAME_MAX:
        raise _malformed(text, f"repository name longer than {NAME_MAX} characters")
    return Repository(registry, path)


def _split(text: str) -> tuple[Repository, str | None, str | None]:
    if not isinstance(text, str) or not text:
        raise _malformed(str(text), "empty")
    if text != text.strip() or any(c.isspace() for c in text):
        raise _malformed(text, "contains whitespace")
    rest, at, dgst = text.partition("@")
    digest: str | None = None
    if at:
        if not digests.is_valid(dgst):
            raise _malformed(text, f"invalid digest {dgst!r}")
        digest = dgst
    tag: str | None = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], _check_tag(rest[colon + 1 :], text)
    if _HEX64_RE.match(rest):
        raise _malformed(text, "a 64-character hex string is an image id, not a repository name")
    return _split_name(text, rest), tag, digest


def parse_reference(text: str) -> Reference:
    """Parse ``[registry/]repository[:tag][@digest]``; no tag and no digest means ``:latest``."""
    repo, tag, digest = _split(text)
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(repo.registry, repo.path, tag=tag, digest=digest)


def parse_repository(text: str) -> Repository:
    """Parse ``[registry/]repository`` (no tag, no digest), normalised like :func:`parse_reference`."""
    repo, tag, digest = _split(text)
    if tag is not None or digest is not None:
        raise _malformed(text, "expected a repository without tag or digest")
    return repo
