"""A file's attestation as ``cosign attest-blob --bundle`` writes it, and its verification (no registry).

The statement's subject is the file's name and sha256; the DSSE envelope is logged as a ``dsse`` entry
through the transparency-log port and wrapped in a Sigstore bundle v0.3. The log is whatever
:class:`~pipeline.sigstore.tlog.TransparencyLog` the caller passes: Rekor v1 today; a Rekor v2 client
implementing ``upload_dsse`` (issue 15) plugs in here, with the bundle writer taking its entry.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.cosign.verify import VerificationPolicy, VerifiedSignature
from pipeline.signatures.blob import TimestampSource
from pipeline.signatures.signers import Signer
from pipeline.sigstore.bundle import parse_sigstore_bundle
from pipeline.sigstore.dsse import IN_TOTO_PAYLOAD_TYPE, dsse_pae
from pipeline.sigstore.intoto import attestation_statement, in_toto_envelope
from pipeline.sigstore.tlog import TransparencyLog
from pipeline.sigstore.verify import verify_bundle_for_image
from pipeline.sigstore.writer import dsse_bundle


def attest_blob(
    name: str,
    sha256_hex: str,
    predicate_type: str,
    predicate: Mapping[str, object],
    signer: Signer,
    log: TransparencyLog | None,
    tsa: TimestampSource | None = None,
) -> bytes:
    """The bundle bytes: the statement over (``name``, ``sha256_hex``) signed by ``signer``, logged in ``log``,
    timestamped by ``tsa`` (each unless None)."""
    statement = attestation_statement([(name, sha256_hex)], predicate_type, predicate)
    signature = signer.sign(dsse_pae(IN_TOTO_PAYLOAD_TYPE, statement), pure_ed25519=True)
    envelope = in_toto_envelope(statement, signature.value)
    material = signature.material
    entry = log.upload_dsse(envelope, material.log_pem) if log is not None else None
    stamps = (tsa.timestamp(signature.value),) if tsa is not None else ()
    return dsse_bundle(envelope, material.public_key, entry, certificate_der=material.certificate_der,
                       timestamps=stamps)  # fmt: skip


def verify_blob_attestation(
    bundle: bytes, sha256_hex: str, predicate_type: str, policy: VerificationPolicy, where: str
) -> tuple[bytes, VerifiedSignature]:
    """(the verified statement, what verified): the envelope's signature, its log entry, a subject with this
    digest and the predicate type; a VerificationError says which failed."""
    parsed = parse_sigstore_bundle(bundle, where)
    verified = verify_bundle_for_image(parsed, f"sha256:{sha256_hex}", policy, where, predicate_type=predicate_type,
                                       subject="file")  # fmt: skip
    assert parsed.dsse_envelope is not None  # verify_bundle_for_image accepts DSSE bundles only
    return parsed.dsse_envelope.payload, verified
