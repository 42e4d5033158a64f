"""What a release carries: the vector artifact and every OCI reference its vector pins.

:func:`pinned_items` is the one place that enumerates the vector's pinned OCI references
(:meth:`Vector.pinned_oci_references`): images, and OCI artifacts named by their top-level key — Helm
charts (``helm-charts``) as ``chart``, Ansible roles (``ansible-roles``) as ``role``, any other as
``artifact``. The copy engine, plans, exports and the ``--json`` output carry each the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from pipeline.oci.reference import Reference
from pipeline.vector import KIND_IMAGE, Vector

Kind = Literal["vector", "image", "chart", "role", "artifact"]
KINDS: Final = ("vector", "image", "chart", "role", "artifact")
_ARTIFACT_KINDS: Final[dict[str, Kind]] = {"helm-charts": "chart", "ansible-roles": "role"}


@dataclass(frozen=True)
class Item:
    """One thing to carry: its kind and its original ``repository:tag@digest`` (the tag is set last)."""

    kind: Kind
    reference: Reference

    @property
    def digest(self) -> str:
        assert self.reference.digest is not None
        return self.reference.digest


def pinned_items(vector: Vector) -> tuple[Item, ...]:
    """Every distinct pinned OCI reference of ``vector``, in document order (InvalidDefinitionError when an
    entry has no digest, as :meth:`Vector.pinned_references`)."""
    vector.pinned_references()  # raises, naming every entry without a digest
    items: dict[Reference, Item] = {}
    for pinned in vector.pinned_oci_references():
        kind: Kind = "image"
        if pinned.kind != KIND_IMAGE:
            kind = _ARTIFACT_KINDS.get(pinned.yaml_path.split(".", 1)[0], "artifact")
        items.setdefault(pinned.reference, Item(kind, pinned.reference))
    return tuple(items.values())


def release_items(vector_ref: Reference, vector: Vector) -> tuple[Item, ...]:
    """The vector artifact (``vector_ref`` pinned, with the tag asked for) first, then what it pins."""
    return (Item("vector", vector_ref), *pinned_items(vector))
