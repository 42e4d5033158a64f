"""pipeline/cosign/sct.py: the SCTs embedded in Fulcio certificates, checked against real cosign data.

Every keyless certificate real cosign/Fulcio wrote in ``tests/vectors/cosign`` must carry an SCT that
verifies with a CT log key of the public-good trusted root. The SCT list our Fulcio stand-in writes is
read back by a decoder written here from RFC 6962 section 3.3 (not by the code under test).
"""

from __future__ import annotations

import base64
import json
import struct
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.cosign.sct import CtLogKey, embedded_scts, verify_embedded_sct
from pipeline.cosign.trust import ct_log_keys_from_trusted_root, fulcio_certificates_from_trusted_root
from pipeline.errors import VerificationError
from pipeline.rehearsal.fulcio_server import SCT_LIST_OID, TestCertificateAuthority, embedded_sct_list
from tests.conftest import COSIGN_VECTORS as VECTORS

TRUSTED_ROOT = VECTORS / "bundle-v03" / "trusted_root.public-good.json"


def public_good() -> tuple[list[CtLogKey], list[x509.Certificate]]:
    data = TRUSTED_ROOT.read_bytes()
    roots, intermediates = fulcio_certificates_from_trusted_root(data, "root")
    return ct_log_keys_from_trusted_root(data, "root"), [*intermediates, *roots]


def _bundle_leaf(path: Path) -> x509.Certificate:
    material = json.loads(path.read_bytes())["verificationMaterial"]
    return x509.load_der_x509_certificate(base64.b64decode(material["certificate"]["rawBytes"]))


def _real_certificates() -> dict[str, tuple[x509.Certificate, list[x509.Certificate]]]:
    """Each real keyless certificate and the certificates its issuer may be among (its chain, else the root's)."""
    found: dict[str, tuple[x509.Certificate, list[x509.Certificate]]] = {}
    for folder in ("image-signatures/dir-img-cosign-fulcio-rekor-valid", "registry-sig-manifest"):
        leaf = x509.load_pem_x509_certificate((VECTORS / folder / "cert.pem").read_bytes())
        found[folder] = (leaf, x509.load_pem_x509_certificates((VECTORS / folder / "chain.pem").read_bytes()))
    bundle = json.loads((VECTORS / "sign-blob" / "artifact.bundle").read_bytes())
    found["sign-blob/artifact.bundle"] = (x509.load_pem_x509_certificate(base64.b64decode(bundle["cert"])), [])
    for name in (
        "bundle-v03/cosign-attest-keyless/oci-attestation.sigstore.json",
        "bundle-v03/cosign-sign-image-v3/kubewarden-controller-v1.34.0.bundle.pretty.json",
    ):
        found[name] = (_bundle_leaf(VECTORS / name), [])
    return found


REAL = _real_certificates()


def _issuer(leaf: x509.Certificate, candidates: list[x509.Certificate]) -> x509.Certificate:
    for candidate in candidates:
        if candidate.subject == leaf.issuer:
            try:
                leaf.verify_directly_issued_by(candidate)
            except Exception:  # noqa: S112 - another candidate with the same name may be the one
                continue
            return candidate
    raise AssertionError("no issuer found")


def test_the_public_good_root_names_its_ct_logs_by_the_hash_of_their_keys() -> None:
    keys, _ = public_good()
    listed = [base64.b64decode(log["logId"]["keyId"]) for log in json.loads(TRUSTED_ROOT.read_bytes())["ctlogs"]]
    assert [key.log_id for key in keys] == listed and len(keys) == 2


@pytest.mark.parametrize("name", sorted(REAL))
def test_every_real_fulcio_certificate_carries_an_sct_from_a_trusted_log(name: str) -> None:
    keys, trusted = public_good()
    leaf, chain = REAL[name]
    issuer = _issuer(leaf, [*chain, *trusted])
    assert "… at " in verify_embedded_sct(leaf, issuer, keys, name)

    with pytest.raises(VerificationError, match="not trusted"):
        verify_embedded_sct(leaf, issuer, [], name)
    impostors = [CtLogKey(key.log_id, ec.generate_private_key(ec.SECP256R1()).public_key()) for key in keys]
    with pytest.raises(VerificationError, match="does not verify"):
        verify_embedded_sct(leaf, issuer, impostors, name)
    other_issuer = next(c for c in trusted if c.subject != leaf.issuer)
    with pytest.raises(VerificationError, match="does not verify"):  # the issuer key hash is signed too
        verify_embedded_sct(leaf, other_issuer, keys, name)


def _leaf_builder(ca: TestCertificateAuthority) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.intermediate.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(minutes=10))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name("dev@example.com")]), critical=True)
    )


def test_a_certificate_without_an_sct_is_refused_with_the_way_out() -> None:
    ca = TestCertificateAuthority.generate()
    bare = _leaf_builder(ca).sign(ca.intermediate_key, hashes.SHA256())
    assert embedded_scts(bare, "w") == []
    with pytest.raises(VerificationError) as refused:
        verify_embedded_sct(bare, ca.intermediate, [CtLogKey.of(ca.ct_log_key.public_key())], "w")
    assert "no signed certificate timestamp" in refused.value.message
    assert refused.value.hint is not None and "--insecure-ignore-sct" in refused.value.hint


def _decode_sct_list(extension_value: bytes) -> list[dict[str, object]]:
    """RFC 6962 3.3 by hand: OCTET STRING { u16 length, (u16 length, SCT)* }; SCT = version, log id,
    u64 timestamp, u16-prefixed extensions, hash and signature algorithm bytes, u16-prefixed signature."""
    assert extension_value[0] == 0x04  # DER OCTET STRING
    length, offset = extension_value[1], 2
    if length & 0x80:
        size = length & 0x7F
        length, offset = int.from_bytes(extension_value[2 : 2 + size], "big"), 2 + size
    body = extension_value[offset : offset + length]
    assert len(body) == length
    (total,) = struct.unpack(">H", body[:2])
    assert total == len(body) - 2
    scts, at = [], 2
    while at < len(body):
        (size,) = struct.unpack(">H", body[at : at + 2])
        sct = body[at + 2 : at + 2 + size]
        at += 2 + size
        version, log_id = sct[0], sct[1:33]
        timestamp, ext_len = struct.unpack(">QH", sct[33:43])
        rest = sct[43 + ext_len :]
        hash_alg, sig_alg = rest[0], rest[1]
        (sig_len,) = struct.unpack(">H", rest[2:4])
        assert len(rest) == 4 + sig_len
        scts.append({"version": version, "log_id": log_id, "timestamp": timestamp, "hash": hash_alg, "sig": sig_alg})
    return scts


def test_the_stand_in_writes_an_rfc_6962_sct_list_that_verifies() -> None:
    ca = TestCertificateAuthority.generate()
    builder = _leaf_builder(ca)
    precertificate = builder.sign(ca.intermediate_key, hashes.SHA256())
    moment = time.time()
    value = embedded_sct_list(ca.ct_log_key, ca.intermediate, precertificate, moment)
    log = CtLogKey.of(ca.ct_log_key.public_key())
    [decoded] = _decode_sct_list(value)
    assert decoded == {"version": 0, "log_id": log.log_id, "timestamp": int(moment * 1000), "hash": 4, "sig": 3}

    certificate = builder.add_extension(x509.UnrecognizedExtension(SCT_LIST_OID, value), critical=False).sign(
        ca.intermediate_key, hashes.SHA256()
    )
    assert certificate.tbs_precertificate_bytes == precertificate.tbs_certificate_bytes
    assert verify_embedded_sct(certificate, ca.intermediate, [log], "w").startswith(log.log_id.hex()[:16])
