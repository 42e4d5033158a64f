"""cosign v3's attestation layout (``cosign attest --new-bundle-format``): a Sigstore bundle v0.3 holding
the DSSE envelope over the statement, logged as a ``dsse`` entry, attached as an OCI 1.1 referrer of the
image with ``dev.sigstore.bundle.predicateType`` = the attestation's type (COS ``WriteAttestationNewBundleFormat``;
the referrer mechanics, fallback index included, are :mod:`pipeline.signatures.referrer`'s).

Idempotent: a bundle of this predicate type whose statement is exactly ours and that verifies as the
signer's means nothing is written.
"""

from __future__ import annotations

from pipeline.errors import NotFoundError, ReleaseVectorError
from pipeline.signatures.attestation import Attestation, VerifiedAttestation, check_statement
from pipeline.signatures.blob import TimestampSource
from pipeline.signatures.layout import Format, LayoutVerification, SignStatus, Verifier, WriteConfirmations
from pipeline.signatures.referrer import attach_bundle, verify_image_bundles
from pipeline.signatures.registry import SignatureRegistry
from pipeline.signatures.signers import Signer
from pipeline.signatures.target import SignatureTarget
from pipeline.sigstore.dsse import IN_TOTO_PAYLOAD_TYPE, dsse_pae
from pipeline.sigstore.intoto import in_toto_envelope
from pipeline.sigstore.tlog import TransparencyLog
from pipeline.sigstore.writer import dsse_bundle


class ReferrerAttestationLayout:
    """Attestation bundles as OCI referrers, for one predicate type (and, to sign, one predicate)."""

    format: Format = "v3"

    def __init__(
        self,
        registry: SignatureRegistry,
        attestation: Attestation,
        *,
        created: str | None = None,
        confirmations: WriteConfirmations | None = None,
        timestamps: TimestampSource | None = None,
    ) -> None:
        self.registry = registry
        self.attestation = attestation
        self.created = created
        self.confirmations = confirmations
        self.timestamps = timestamps  # a TSA: each new bundle carries a timestamp over its signature

    def _verified(self, target: SignatureTarget, verifier: Verifier) -> tuple[list[VerifiedAttestation],
                                                                              list[str], int, str]:  # fmt: skip
        result = verify_image_bundles(self.registry, target.store, target.digest, verifier.policy,
                                      predicate_type=self.attestation.predicate_type)  # fmt: skip
        verified = []
        failures = list(result.failures)
        for bundle in result.verified:
            where = f"{target.repository.name}@{bundle.manifest_digest}"
            try:  # verify_image_bundles checked these already; kept so that verify never raises for them
                check_statement(bundle.payload, target.digest, self.attestation.predicate_type, where)
            except ReleaseVectorError as error:
                failures.append(error.message)
                continue
            verified.append(VerifiedAttestation("v3", bundle.payload, bundle.signature, where))
        return verified, failures, result.found, result.source

    def is_signed(self, target: SignatureTarget, signer: Signer, log: TransparencyLog | None) -> bool:
        statement = self.attestation.statement(target)
        verified, _, _, _ = self._verified(target, Verifier(signer.policy(log)))
        return any(self.attestation.matches(attestation.payload, statement) for attestation in verified)

    def ensure(self, target: SignatureTarget, signer: Signer, log: TransparencyLog | None) -> SignStatus:
        if self.is_signed(target, signer, log):
            return "already signed"
        subject = self.registry.head_manifest(target.subject)
        if subject is None:
            raise NotFoundError("the image to attest is not in the registry", where=target.where)
        statement = self.attestation.statement(target)
        signature = signer.sign(dsse_pae(IN_TOTO_PAYLOAD_TYPE, statement), pure_ed25519=True)
        envelope = in_toto_envelope(statement, signature.value)
        material = signature.material
        entry = log.upload_dsse(envelope, material.log_pem) if log is not None else None
        stamps = (self.timestamps.timestamp(signature.value),) if self.timestamps is not None else ()
        bundle = dsse_bundle(envelope, material.public_key, entry, certificate_der=material.certificate_der,
                             timestamps=stamps)  # fmt: skip
        attach_bundle(self.registry, target.repository, subject, bundle, created=self.created,
                      predicate_type=self.attestation.predicate_type,
                      confirmations=self.confirmations)  # fmt: skip
        return "signed"

    def verify(self, target: SignatureTarget, verifier: Verifier) -> LayoutVerification:
        verified, failures, found, source = self._verified(target, verifier)
        return LayoutVerification(tuple(verified), tuple(f"attestation bundle: {f}" for f in failures), bool(found),
                                  f"no attestation bundle via {source or 'the referrers'}")  # fmt: skip
