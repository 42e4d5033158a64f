"""Carry a signed release into another registry or an OCI image layout, keeping every digest.

``names`` maps original names under a destination (pure); ``items`` lists what a vector pins; ``ends``
are the two sides a copy runs between (a registry, an OCI layout directory); ``copy`` is the engine
(manifest trees, blobs streamed and checked, signatures and referrers, tags last); ``layout`` reads and
writes OCI image layouts (and their tar form) safely.
"""
