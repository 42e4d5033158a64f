"""Keyless signing: an ephemeral key, a Fulcio certificate for it, and signatures cosign reads as keyless.

The flow, as ``cosign sign`` runs it without ``--key``:

1. generate an ECDSA P-256 key in memory (never serialised, never written anywhere);
2. sign the identity token's challenge (``email`` for e-mail tokens, else ``sub``) as the proof of
   possession, and ask Fulcio (``POST /api/v2/signingCert``) for a certificate for the public key;
3. check what came back: the leaf certifies *our* key, is signed by the next certificate in the chain,
   is for code signing and valid now, and (with trusted roots given) chains to one of them;
4. sign payloads with the key (:class:`pipeline.signatures.signers.KeylessSigner` does, for a run; the
   layouts log each signature with the certificate PEM in place of a public key and store the
   certificate and its chain beside it).

The certificate lives ten minutes; a signer is for one run. Verification is
:func:`pipeline.cosign.verify.verify_signed_payload` with :class:`~pipeline.cosign.verify.KeylessTrust`.

sigstore-python's ``Signer`` was not used: it requires an SCT verified against a CT log key from a
trusted root (the stand-in has no CT log), accepts only embedded-SCT answers, submits to Rekor with its
own client and produces Sigstore bundles rather than cosign's legacy layer, and keeps the key private.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from pipeline.cosign.certificate import build_chain, oidc_issuer, subject_alternative_names
from pipeline.cosign.keys import SigningKey
from pipeline.cosign.sct import CtLogKey, verify_embedded_sct
from pipeline.errors import VerificationError
from pipeline.sigstore.fulcio_client import CertificateChain, FulcioError
from pipeline.sigstore.oidc import IdentityToken

EPHEMERAL_KEY_SOURCE: Final = "ephemeral keyless signing key"

CLOCK_SKEW = timedelta(seconds=60)
"""How far Fulcio's clock may run ahead of ours when its fresh certificate is checked."""


class CertificateAuthority(Protocol):
    """What keyless signing needs from Fulcio (:class:`~pipeline.sigstore.fulcio_client.FulcioClient`)."""

    @property
    def url(self) -> str: ...

    def request_certificate(
        self,
        token: IdentityToken,
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
        proof_of_possession: bytes,
    ) -> CertificateChain: ...


def _spki(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | object) -> bytes | None:
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return None
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_issued_certificate(
    issued: CertificateChain,
    public_key: ec.EllipticCurvePublicKey,
    *,
    trusted_roots: Sequence[x509.Certificate] = (),
    now: datetime | None = None,
    where: str,
    ct_log_keys: Sequence[CtLogKey] | None = None,
) -> None:
    """FulcioError unless ``issued`` is a code-signing certificate for ``public_key``, valid at ``now``,
    signed by the next certificate of its chain, (with ``trusted_roots``) chaining to one of them, and
    (with ``ct_log_keys``) carrying an SCT from one of those CT logs, as cosign checks before signing."""
    leaf = issued.leaf
    if _spki(leaf.public_key()) != _spki(public_key):
        raise FulcioError("Fulcio's certificate is not for the ephemeral signing key", where=where)
    if not issued.chain:
        raise FulcioError("Fulcio's answer has no issuing certificate", where=where)
    try:
        leaf.verify_directly_issued_by(issued.chain[0])
    except (ValueError, TypeError, InvalidSignature):
        raise FulcioError(
            "Fulcio's certificate is not signed by the first certificate of its chain", where=where
        ) from None
    try:
        usages = list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = []
    if ExtendedKeyUsageOID.CODE_SIGNING not in usages:
        raise FulcioError("Fulcio's certificate is not for code signing (extended key usage)", where=where)
    moment = now or datetime.now(UTC)
    # Fulcio's clock and ours differ a little (and `now` may have been read just before the request):
    # a certificate that starts a few seconds "in the future" is fine; an expired one is not.
    if not leaf.not_valid_before_utc - CLOCK_SKEW <= moment <= leaf.not_valid_after_utc:
        raise FulcioError(
            f"Fulcio's certificate is not valid at {_format_time(moment)} (valid from"
            f" {_format_time(leaf.not_valid_before_utc)} to {_format_time(leaf.not_valid_after_utc)})",
            where=where,
            hint="is this machine's clock right?",
        )
    if trusted_roots:
        try:
            build_chain(
                leaf,
                intermediates=issued.chain,
                roots=trusted_roots,
                at=max(moment, leaf.not_valid_before_utc),
                where=where,
            )
        except VerificationError as error:
            raise FulcioError(
                f"Fulcio's certificate does not chain to a trusted Fulcio root: {error.message}", where=where
            ) from None
    if ct_log_keys is not None:
        try:
            verify_embedded_sct(leaf, issued.chain[0], ct_log_keys, where)
        except VerificationError as error:
            raise FulcioError(f"Fulcio's certificate: {error.message}", where=where, hint=error.hint) from None


class CertifiedKey:
    """An ephemeral key with its Fulcio certificate. ``repr`` shows the identity, never the key."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, issued: CertificateChain, *, where: str) -> None:
        self.__key = private_key
        self._issued = issued
        self.where = where

    @classmethod
    def create(
        cls,
        token: IdentityToken,
        fulcio: CertificateAuthority,
        *,
        trusted_roots: Sequence[x509.Certificate] = (),
        now: datetime | None = None,
        ct_log_keys: Sequence[CtLogKey] | None = None,
    ) -> CertifiedKey:
        """Generate the ephemeral key, prove possession over the token's challenge, get and check the certificate."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        proof = private_key.sign(token.claims.proof_subject.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
        issued = fulcio.request_certificate(token, private_key.public_key(), proof)
        check_issued_certificate(
            issued, private_key.public_key(), trusted_roots=trusted_roots, now=now, where=fulcio.url,
            ct_log_keys=ct_log_keys,
        )  # fmt: skip
        return cls(private_key, issued, where=fulcio.url)

    def __repr__(self) -> str:
        return f"CertifiedKey(identity={', '.join(self.identities)!r}, issuer={self.issuer!r})"

    # --- the certificate ----------------------------------------------------------------------

    @property
    def certificate(self) -> x509.Certificate:
        return self._issued.leaf

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Intermediates then root, as Fulcio returned them."""
        return self._issued.chain

    @property
    def certificate_pem(self) -> bytes:
        """The leaf PEM: what Rekor gets as the "public key" and the certificate annotation holds."""
        return self._issued.leaf_pem

    @property
    def chain_pem(self) -> bytes:
        """Intermediates then root, as a PEM file."""
        return self._issued.chain_pem

    @property
    def certificate_annotation(self) -> str:
        """``dev.sigstore.cosign/certificate``: the leaf PEM, trailing newline included (as cosign writes it)."""
        return self.certificate_pem.decode("ascii")

    @property
    def chain_annotation(self) -> str:
        """``dev.sigstore.cosign/chain``: the PEM blocks one after the other, no final newline (as cosign writes it)."""
        return self.chain_pem.decode("ascii").rstrip("\n")

    @property
    def identities(self) -> list[str]:
        return subject_alternative_names(self.certificate)

    @property
    def issuer(self) -> str | None:
        return oidc_issuer(self.certificate)

    @property
    def not_valid_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    # --- signing ------------------------------------------------------------------------------

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.__key.public_key()

    @property
    def signing_key(self) -> SigningKey:
        """The ephemeral key as a :class:`SigningKey`, for code that signs with one (DSSE envelopes)."""
        return SigningKey(self.__key, EPHEMERAL_KEY_SOURCE)

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256/SHA-256, ASN.1 DER: the signature cosign stores and Rekor checks."""
        return self.__key.sign(data, ec.ECDSA(hashes.SHA256()))
