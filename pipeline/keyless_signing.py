"""Keyless signing of images in registries for one run: one Fulcio certificate, idempotent re-runs.

:class:`KeylessSigning` is what ``sign --keyless`` and ``release --keyless`` hand to
:func:`pipeline.signing.sign_images` and the release ports (the :class:`~pipeline.signing.KeylessPort`):

* **one certificate per run.** The ephemeral key and its certificate (ten minutes) are made on the first
  signature, not before (a re-run with nothing to sign asks Fulcio for nothing), and shared by every
  image; when the certificate has less than :data:`RENEW_BEFORE` left a new key and certificate are
  obtained (with a fresh identity token when the source can give one: GitHub Actions' token service).
  The key lives in memory only.
* **already signed?** An image counts as signed keyless when an existing signature — a legacy layer
  with ``dev.sigstore.cosign/certificate`` or a v3 bundle with a certificate — verifies under a keyless
  policy for the SAME identity and OIDC issuer as this run's (the identity as Fulcio puts it into the
  certificate: the e-mail of e-mail tokens, ``https://github.com/<job_workflow_ref>`` for GitHub
  Actions), chaining to the Fulcio roots the run trusts, with a transparency-log entry that verifies
  with the log's keys. So a re-run adds nothing, and a signature by another workflow does not count.
* **what gets written.** Legacy: the layer with the signature, ``certificate``, ``chain`` and the
  ``bundle`` of the ``hashedrekord`` entry uploaded with the certificate. v3: the DSSE bundle with the
  certificate as ``verificationMaterial.certificate`` and the ``dsse`` entry with the certificate as
  its verifier.

Keyless signing always logs: without a transparency-log time a ten-minute certificate cannot be
checked later (``--no-tlog-upload`` with ``--keyless`` is refused by the CLI, and here).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pipeline.bundles_oci import (
    BundleFormat,
    as_dsse_log,
    attach_bundle,
    bundle_registry,
    formats_of,
    has_bundle_verifying,
)
from pipeline.cosign.certificate import IdentityPolicy
from pipeline.cosign.keys import PublicKey
from pipeline.cosign.rekor import parse_rekor_bundle
from pipeline.cosign.sct import CtLogKey
from pipeline.cosign.sigmanifest import (
    BUNDLE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    SignatureManifest,
    append_signature,
    sha256_digest,
)
from pipeline.cosign.verify import KeylessTrust, VerificationPolicy, verify_signed_payload
from pipeline.errors import NotFoundError, ReleaseVectorError, UsageError
from pipeline.oci.reference import Reference
from pipeline.signing import (
    SigningRegistry,
    SignStatus,
    TransparencyLog,
    read_existing_signatures,
    signature_reference,
    signed_payload,
)
from pipeline.sigstore.keyless import CertificateAuthority, KeylessSigner
from pipeline.sigstore.oidc import IdentityToken, TokenClaims
from pipeline.sigstore.writer import cosign_sign_statement, dsse_bundle, sign_dsse

RENEW_BEFORE: Final = timedelta(minutes=2)
"""A certificate with less than this left is replaced before the next signature."""
GITHUB_URL: Final = "https://github.com/"


def certificate_identity_of(claims: TokenClaims) -> str:
    """The subject alternative name Fulcio certifies for a token: the e-mail of e-mail tokens;
    ``https://github.com/<job_workflow_ref>`` for GitHub Actions; ``https://<ci_config_ref_uri>`` for
    GitLab CI; else the subject."""
    if claims.email:
        return claims.email
    job_workflow_ref = claims.all.get("job_workflow_ref")
    if isinstance(job_workflow_ref, str) and job_workflow_ref:
        return GITHUB_URL + job_workflow_ref
    gitlab = claims.all.get("ci_config_ref_uri")
    if isinstance(gitlab, str) and gitlab:
        return f"https://{gitlab}"
    return claims.subject


@dataclass(frozen=True)
class KeylessIdentity:
    """Who signs keyless in this run, and which Fulcio CAs its certificates chain to."""

    identity: str
    issuer: str
    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()

    def policy(self, rekor_keys: Sequence[PublicKey]) -> VerificationPolicy:
        """The keyless policy an existing signature must pass to count as this run's.

        Its SCT is not checked: this only decides whether to sign again (the CT log's key is a verifier's
        trust decision, which signing does not get); verify and verify-release check it.
        """
        identity = IdentityPolicy(self.identity, None, self.issuer, None)
        trust = KeylessTrust(identity, self.roots, self.intermediates, ignore_sct=True)
        return VerificationPolicy(None, trust, tuple(rekor_keys))


def _require_log(tlog: TransparencyLog | None, where: str) -> TransparencyLog:
    if tlog is None:
        raise UsageError(
            "keyless signing needs the transparency log (a certificate lives ten minutes)",
            where=where,
            hint="drop --no-tlog-upload",
        )
    return tlog


def has_keyless_layer(
    existing: SignatureManifest, payload: bytes, policy: VerificationPolicy, where: str
) -> bool:
    """A legacy layer holding ``payload`` whose certificate, signature and Rekor bundle verify under ``policy``."""
    digest = sha256_digest(payload)
    for layer in existing.signature_layers:
        certificate = layer.annotations.get(CERTIFICATE_ANNOTATION)
        bundle = layer.annotations.get(BUNDLE_ANNOTATION)
        signature = layer.signature_b64
        if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE or layer.digest != digest:
            continue
        if not (certificate and bundle and signature):
            continue
        chain = layer.annotations.get(CHAIN_ANNOTATION)
        layer_where = f"{where} signature layer {layer.index}"
        try:
            verify_signed_payload(
                payload,
                base64.b64decode(signature, validate=True),
                certificate_pem=certificate.encode(),
                chain_pem=chain.encode() if chain else None,
                rekor_bundle=parse_rekor_bundle(bundle, layer_where),
                policy=policy,
                where=layer_where,
            )
        except (ReleaseVectorError, ValueError):
            continue
        return True
    return False


class KeylessSigning:
    """Keyless signing for one run (see the module doc). ``repr`` shows the identity, never a key or token."""

    def __init__(
        self,
        token: IdentityToken,
        fulcio: CertificateAuthority,
        *,
        roots: Sequence[x509.Certificate],
        intermediates: Sequence[x509.Certificate] = (),
        refresh_token: Callable[[], IdentityToken] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        ct_log_keys: Sequence[CtLogKey] | None = None,
    ) -> None:
        self._ct_log_keys = tuple(ct_log_keys) if ct_log_keys is not None else None  # None: SCT not checked
        self._token = token
        self._fulcio = fulcio
        self._refresh_token = refresh_token
        self._clock = clock
        self._lock = threading.Lock()
        self._signer: KeylessSigner | None = None
        self.certificates = 0  # how many certificates this run obtained
        self.identity = KeylessIdentity(
            certificate_identity_of(token.claims), token.claims.issuer, tuple(roots), tuple(intermediates)
        )

    def __repr__(self) -> str:
        return f"KeylessSigning(identity={self.identity.identity!r}, issuer={self.identity.issuer!r})"

    @property
    def fulcio_url(self) -> str:
        return self._fulcio.url

    def signer(self) -> KeylessSigner:
        """The run's signer: made on first use, replaced when its certificate has < RENEW_BEFORE left."""
        with self._lock:
            now = self._clock()
            current = self._signer
            if current is not None and current.not_valid_after - now >= RENEW_BEFORE:
                return current
            token = self._token
            if current is not None and self._refresh_token is not None:
                token = self._refresh_token()  # a second certificate: a fresh token where the source has one
                self._token = token
            signer = KeylessSigner.create(
                token, self._fulcio, trusted_roots=self.identity.roots, now=now, ct_log_keys=self._ct_log_keys
            )
            self._adopt(signer)
            self._signer = signer
            self.certificates += 1
            return signer

    def _adopt(self, signer: KeylessSigner) -> None:
        """Trust what Fulcio certified: its identity (it is the authority on the SAN's form) and its chain."""
        identities = signer.identities
        identity = self.identity.identity if self.identity.identity in identities else identities[0]
        issuer = signer.issuer or self.identity.issuer
        intermediates = tuple(dict.fromkeys([*self.identity.intermediates, *signer.chain[:-1]]))
        roots = self.identity.roots or signer.chain[-1:]
        self.identity = KeylessIdentity(identity, issuer, roots, intermediates)

    # --- the KeylessPort --------------------------------------------------------------------------

    def is_signed(
        self,
        registry: SigningRegistry,
        image: Reference,
        digest: str,
        annotations: Mapping[str, str],
        *,
        docker_reference: str | None,
        tlog: TransparencyLog | None,
        bundle_format: BundleFormat,
    ) -> bool:
        where = f"{image.name}@{digest}"
        policy = self.identity.policy(_require_log(tlog, where).trusted_keys)
        for fmt in formats_of(bundle_format):
            if fmt == "legacy":
                existing = read_existing_signatures(registry, signature_reference(image, digest))
                payload = signed_payload(image, digest, annotations, docker_reference)
                if existing is None or not has_keyless_layer(existing, payload, policy, where):
                    return False
            elif not has_bundle_verifying(bundle_registry(registry), image, digest, policy, annotations):
                return False
        return True

    def sign(
        self,
        registry: SigningRegistry,
        image: Reference,
        digest: str,
        annotations: Mapping[str, str],
        *,
        docker_reference: str | None,
        tlog: TransparencyLog | None,
        bundle_format: BundleFormat,
        created: str | None,
    ) -> SignStatus:
        """Add a keyless signature in every format of ``bundle_format`` that does not hold one for this identity."""
        where = f"{image.name}@{digest}"
        log = _require_log(tlog, where)
        statuses: list[SignStatus] = []
        for fmt in formats_of(bundle_format):
            if fmt == "legacy":
                statuses.append(self._sign_legacy(registry, image, digest, annotations, docker_reference, log))
            else:
                statuses.append(self._sign_v3(registry, image, digest, annotations, log, created))
        return "signed" if "signed" in statuses else "already signed"

    def _sign_legacy(
        self,
        registry: SigningRegistry,
        image: Reference,
        digest: str,
        annotations: Mapping[str, str],
        docker_reference: str | None,
        tlog: TransparencyLog,
    ) -> SignStatus:
        where = f"{image.name}@{digest}"
        payload = signed_payload(image, digest, annotations, docker_reference)
        sig_ref = signature_reference(image, digest)
        existing = read_existing_signatures(registry, sig_ref)
        if existing is not None and has_keyless_layer(
            existing, payload, self.identity.policy(tlog.trusted_keys), where
        ):
            return "already signed"
        layer = self.signer().sign_layer(payload, tlog)
        update = append_signature(existing, layer)
        if update.manifest is None:  # pragma: no cover - a fresh certificate's layer is never a duplicate
            return "already signed"
        for blob in update.blobs:
            registry.upload_blob(image.repo, blob.data, check_exists=False)
        registry.put_manifest(image.repo, sig_ref.tag, update.manifest, update.media_type)
        return "signed"

    def _sign_v3(
        self,
        registry: SigningRegistry,
        image: Reference,
        digest: str,
        annotations: Mapping[str, str],
        tlog: TransparencyLog,
        created: str | None,
    ) -> SignStatus:
        where = f"{image.name}@{digest}"
        bundles = bundle_registry(registry)
        notes = dict(annotations)
        if has_bundle_verifying(bundles, image, digest, self.identity.policy(tlog.trusted_keys), notes):
            return "already signed"
        subject = bundles.head_manifest(image.repo.digest(digest))
        if subject is None:
            raise NotFoundError("the image to sign is not in the registry", where=where)
        dsse_log = as_dsse_log(tlog)
        assert dsse_log is not None
        signer = self.signer()
        envelope = sign_dsse(signer.signing_key, cosign_sign_statement(digest.split(":", 1)[1], notes))
        entry = dsse_log.upload_dsse(envelope, signer.certificate_pem)
        certificate_der = signer.certificate.public_bytes(serialization.Encoding.DER)
        bundle = dsse_bundle(envelope, signer.public_key, entry, certificate_der=certificate_der)
        attach_bundle(bundles, image.repo, subject, bundle, created=created)
        return "signed"
