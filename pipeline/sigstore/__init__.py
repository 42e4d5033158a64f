"""Sigstore bundles (``application/vnd.dev.sigstore.bundle*``): models, parser and offline verification.

``bundle`` reads the JSON (protojson) form of a bundle into frozen data; ``verify`` checks one against a
:class:`~pipeline.cosign.verify.VerificationPolicy`, as cosign v3 and ``cosign verify-blob`` do.

Import from the submodules (``pipeline.sigstore.bundle``, ``.dsse``, ``.verify``, ...): this package imports
nothing itself, so a module that needs one small part (``tlog``'s protocol, ``dsse``'s constants) does not
load the bundle models and the verifier's X.509 and RFC 3161 stack with it (start-up time, issue 18).
"""
