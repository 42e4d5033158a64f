"""What gets signed: one image manifest digest, in the repository where its signatures live."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.oci.reference import Reference, Repository


@dataclass(frozen=True)
class SignatureTarget:
    """``image`` is where the signatures are read and written (a mirror, in rehearsals); ``digest`` the
    manifest signed; ``annotations`` the ``-a`` pairs every signature carries; ``docker_reference``, when
    given, the name a legacy payload records instead of the image's repository (the vector's name)."""

    image: Reference
    digest: str
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    docker_reference: str | None = None

    @property
    def repository(self) -> Repository:
        return self.image.repo

    @property
    def where(self) -> str:
        return f"{self.image.name}@{self.digest}"
