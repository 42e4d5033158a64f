"""pipeline/mirror/items.py: what a release carries, with each item's kind."""

from __future__ import annotations

from pipeline.mirror.items import pinned_items
from pipeline.vector import read_vector

D1, D2, D3, D4 = (f"sha256:{c * 64}" for c in "1234")

VECTOR = f"""\
docker-images:
  metal-stack:
    control-plane:
      - name: ghcr.io/metal-stack/metal-api
        tag: v1.0.0
        digest: {D1}
helm-charts:
  metal-stack:
    metal-control-plane:
      oci: ghcr.io/metal-stack/helm-charts/metal-control-plane
      tag: v0.8.8
      digest: {D2}
ansible-roles:
  metal-roles:
    oci: ghcr.io/metal-stack/metal-roles
    version: v0.16.0
    digest: {D3}
extras:
  thing:
    oci: ghcr.io/x/thing
    tag: v1
    digest: {D4}
"""


def test_charts_roles_and_other_oci_artifacts_are_carried_with_their_kind() -> None:
    items = pinned_items(read_vector(VECTOR.encode(), "vector"))
    assert [(item.kind, str(item.reference)) for item in items] == [
        ("image", f"ghcr.io/metal-stack/metal-api:v1.0.0@{D1}"),
        ("chart", f"ghcr.io/metal-stack/helm-charts/metal-control-plane:v0.8.8@{D2}"),
        ("role", f"ghcr.io/metal-stack/metal-roles:v0.16.0@{D3}"),
        ("artifact", f"ghcr.io/x/thing:v1@{D4}"),
    ]
