"""release-vector: cut signed, cosign-compatible releases described by a release vector."""

__version__ = "0.1.0"
