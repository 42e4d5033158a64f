"""Image signatures: who signs (:mod:`.signers`) x where a signature lives (:mod:`.layouts`).

Signing an image is ``for signer in signers: for layout in layouts: layout.ensure(target, signer, log)``
(:mod:`.sign`); verifying is the same loop over the layouts with a :class:`~.layouts.Verifier`
(:mod:`.verify`). A new signer (KMS, PKCS#11) is one class with the :class:`~.signers.Signer` protocol;
a new place for signatures (``.att`` attestations) is one :class:`~.layouts.Layout`.
"""
