"""What a release carries: the vector artifact and every OCI reference its vector pins.

:func:`pinned_items` is the one place that enumerates the vector's pinned OCI references. Today a vector
pins images; when the vector model pins OCI charts and roles (the whole-vector issue), they are added
here with their kind (``chart``, ``role``) and the copy engine, plans, exports and the ``--json`` output
carry them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from pipeline.oci.reference import Reference
from pipeline.vector import Vector

Kind = Literal["vector", "image", "chart", "role"]
KINDS: Final = ("vector", "image", "chart", "role")


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
    return tuple(Item("image", reference) for reference in vector.pinned_references())


def release_items(vector_ref: Reference, vector: Vector) -> tuple[Item, ...]:
    """The vector artifact (``vector_ref`` pinned, with the tag asked for) first, then what it pins."""
    return (Item("vector", vector_ref), *pinned_items(vector))
