"""What gets signed: one image manifest digest, and the repository where its signatures live.

Signatures live beside the image unless a signature repository is given (``--signature-repository``,
cosign's ``COSIGN_REPOSITORY``): then the ``.sig``/``.att`` tags, the referrer manifests and the
``sha256-<hex>`` fallback index go there, while the subject (and a legacy payload's docker-reference) stay
the image's own, as cosign's ``WithTargetRepository`` does."""

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
    signatures: Repository | None = None  # where the signatures live, when not beside the image

    @property
    def repository(self) -> Repository:
        """Where the signatures are read and written: the signature repository, else the image's own."""
        return self.signatures if self.signatures is not None else self.image.repo

    @property
    def store(self) -> Reference:
        """``repository@digest``: the signed digest named in the repository holding its signatures."""
        return self.repository.digest(self.digest)

    @property
    def subject(self) -> Reference:
        """``image-repository@digest``: the manifest signed, in its own repository (a referrer's subject)."""
        return self.image.repo.digest(self.digest)

    @property
    def where(self) -> str:
        return f"{self.image.name}@{self.digest}"
