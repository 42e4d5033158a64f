"""Who signs: a :class:`Signer` makes signatures and says which existing ones count as its own.

* :class:`KeySigner`: a key file (or, for a dry run's look, only its public key);
* :class:`KeylessSigner`: keyless signing for one run — one Fulcio certificate for an ephemeral key,
  made on the first signature (a re-run with nothing to sign asks Fulcio for nothing) and replaced when
  less than :data:`RENEW_BEFORE` is left (with a fresh identity token where the source can give one).
  An existing signature counts as this run's when it verifies under a keyless policy for the SAME
  identity and OIDC issuer, chaining to the Fulcio roots the run trusts, with a log entry that verifies
  with the log's keys; so a re-run adds nothing and a signature by another workflow does not count.
  Keyless signing always logs: without a log time a ten-minute certificate cannot be checked later.

A signature carries the :class:`SignerMaterial` that verifies it (the key, or the certificate and its
chain), so the layouts write what they need — annotations, a bundle's verification material, the
signer a log entry records — without knowing which kind of signer made it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol

from pipeline.cosign.keys import PrivateKeyHandle, PublicKey, public_key_to_pem
from pipeline.cosign.rekor import HASHEDREKORD_KIND
from pipeline.cosign.verify import KeylessTrust, VerificationPolicy
from pipeline.errors import UsageError
from pipeline.sigstore.dsse import DSSE_KIND

if TYPE_CHECKING:  # X.509, Fulcio, OIDC, RFC 3161: loaded by keyless signing, not by every verify (start-up time)
    from cryptography import x509

    from pipeline.cosign.sct import CtLogKey
    from pipeline.cosign.timestamp import TimestampAuthority
    from pipeline.sigstore.keyless import CertificateAuthority, CertifiedKey
    from pipeline.sigstore.oidc import IdentityToken, TokenClaims
    from pipeline.sigstore.tlog import TransparencyLog

RENEW_BEFORE: Final = timedelta(minutes=2)
"""A certificate with less than this left is replaced before the next signature."""
GITHUB_URL: Final = "https://github.com/"
ENTRY_KINDS: Final = (HASHEDREKORD_KIND, DSSE_KIND)


@dataclass(frozen=True)
class SignerMaterial:
    """What verifies a signature: the public key, and for keyless the certificate (PEM) and its chain."""

    public_key: PublicKey
    certificate_pem: bytes | None = field(default=None, repr=False)
    chain_pem: bytes | None = field(default=None, repr=False)

    @property
    def log_pem(self) -> bytes:
        """What a log entry records as the signer: the PUBLIC KEY PEM, or the certificate PEM."""
        return self.certificate_pem if self.certificate_pem is not None else public_key_to_pem(self.public_key)

    @property
    def certificate_der(self) -> bytes | None:
        if self.certificate_pem is None:
            return None
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        return x509.load_pem_x509_certificate(self.certificate_pem).public_bytes(serialization.Encoding.DER)

    @property
    def certificate_annotation(self) -> str | None:
        """``dev.sigstore.cosign/certificate``: the leaf PEM, trailing newline included (as cosign writes it)."""
        return self.certificate_pem.decode("ascii") if self.certificate_pem is not None else None

    @property
    def chain_annotation(self) -> str | None:
        """``dev.sigstore.cosign/chain``: the PEM blocks one after the other, no final newline (as cosign)."""
        return self.chain_pem.decode("ascii").rstrip("\n") if self.chain_pem is not None else None


@dataclass(frozen=True)
class Signature:
    value: bytes = field(repr=False)
    material: SignerMaterial


class Signer(Protocol):
    """Makes signatures; says which existing signatures are its own (so a re-run signs nothing)."""

    @property
    def entry_kinds(self) -> tuple[str, ...]:
        """The transparency-log entry kinds its signatures are recorded as."""
        ...

    def policy(self, log: TransparencyLog | None) -> VerificationPolicy:
        """What an existing signature must verify under to count as this signer's (with ``log``: logged)."""
        ...

    def sign(self, data: bytes, *, pure_ed25519: bool = False) -> Signature:
        """A signature over ``data`` (``pure_ed25519``: DSSE signs Ed25519 without prehash, as cosign)."""
        ...


class KeySigner:
    """A key pair from a key file; with only the public key it can look (``policy``) but not sign."""

    entry_kinds: tuple[str, ...] = ENTRY_KINDS

    def __init__(self, public_key: PublicKey, key: PrivateKeyHandle | None = None) -> None:
        self.public_key = public_key
        self._key = key

    @classmethod
    def of(cls, key: PrivateKeyHandle) -> KeySigner:
        return cls(key.public_key, key)

    def __repr__(self) -> str:
        return f"KeySigner(private key {'loaded' if self._key is not None else 'absent'})"

    def policy(self, log: TransparencyLog | None) -> VerificationPolicy:
        if log is None:
            return VerificationPolicy(self.public_key, None, (), ignore_tlog=True)
        authorities = tuple(log.timestamp_authorities)
        return VerificationPolicy(self.public_key, None, tuple(log.trusted_keys), timestamp_authorities=authorities)

    def sign(self, data: bytes, *, pure_ed25519: bool = False) -> Signature:
        if self._key is None:
            raise UsageError("signing needs the private key (a dry run needs only the public key)")
        return Signature(self._key.sign(data, pure_ed25519=pure_ed25519), SignerMaterial(self.public_key))


def signers_of(key: PrivateKeyHandle | None, keyless: Signer | None) -> list[Signer]:
    """The run's signers in signing order: the key's, then the keyless one (either may be absent)."""
    return [*([KeySigner.of(key)] if key is not None else []), *([keyless] if keyless is not None else [])]


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

    def policy(
        self, rekor_keys: Sequence[PublicKey], authorities: Sequence[TimestampAuthority] = ()
    ) -> VerificationPolicy:
        """The keyless policy an existing signature must pass to count as this run's.

        Its SCT is not checked: this only decides whether to sign again (the CT log's key is a verifier's
        trust decision, which signing does not get); verify and verify-release check it.
        """
        from pipeline.cosign.certificate import IdentityPolicy

        identity = IdentityPolicy(self.identity, None, self.issuer, None)
        trust = KeylessTrust(identity, self.roots, self.intermediates, ignore_sct=True)
        return VerificationPolicy(None, trust, tuple(rekor_keys), timestamp_authorities=tuple(authorities))


def require_log(log: TransparencyLog | None) -> TransparencyLog:
    if log is None:
        raise UsageError(
            "keyless signing needs the transparency log (a certificate lives ten minutes)",
            hint="drop --no-tlog-upload",
        )
    return log


class KeylessSigner:
    """Keyless signing for one run (see the module doc). ``repr`` shows the identity, never a key or token."""

    entry_kinds: tuple[str, ...] = ENTRY_KINDS

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
        self._current: CertifiedKey | None = None
        self.certificates = 0  # how many certificates this run obtained
        self.identity = KeylessIdentity(
            certificate_identity_of(token.claims), token.claims.issuer, tuple(roots), tuple(intermediates)
        )

    def __repr__(self) -> str:
        return f"KeylessSigner(identity={self.identity.identity!r}, issuer={self.identity.issuer!r})"

    @property
    def fulcio_url(self) -> str:
        return self._fulcio.url

    def certified_key(self) -> CertifiedKey:
        """The run's key and certificate: made on first use, replaced when it has < RENEW_BEFORE left."""
        from pipeline.sigstore.keyless import CertifiedKey

        with self._lock:
            now = self._clock()
            current = self._current
            if current is not None and current.not_valid_after - now >= RENEW_BEFORE:
                return current
            token = self._token
            if current is not None and self._refresh_token is not None:
                token = self._refresh_token()  # a second certificate: a fresh token where the source has one
                self._token = token
            certified = CertifiedKey.create(
                token, self._fulcio, trusted_roots=self.identity.roots, now=now, ct_log_keys=self._ct_log_keys
            )
            self._adopt(certified)
            self._current = certified
            self.certificates += 1
            return certified

    def _adopt(self, certified: CertifiedKey) -> None:
        """Trust what Fulcio certified: its identity (it is the authority on the SAN's form) and its chain."""
        identities = certified.identities
        identity = self.identity.identity if self.identity.identity in identities else identities[0]
        issuer = certified.issuer or self.identity.issuer
        intermediates = tuple(dict.fromkeys([*self.identity.intermediates, *certified.chain[:-1]]))
        roots = self.identity.roots or certified.chain[-1:]
        self.identity = KeylessIdentity(identity, issuer, roots, intermediates)

    def policy(self, log: TransparencyLog | None) -> VerificationPolicy:
        logged = require_log(log)
        return self.identity.policy(logged.trusted_keys, logged.timestamp_authorities)

    def sign(self, data: bytes, *, pure_ed25519: bool = False) -> Signature:
        certified = self.certified_key()
        material = SignerMaterial(certified.public_key, certified.certificate_pem, certified.chain_pem)
        return Signature(certified.signing_key.sign(data, pure_ed25519=pure_ed25519), material)
