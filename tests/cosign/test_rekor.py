"""Offline Rekor evidence: legacy bundles (SET + hashedrekord body), inclusion proofs, checkpoints.

Real data: every Rekor bundle in ``vectors/cosign`` (two image signatures from containers/image's
fixtures, one live registry signature, one ``cosign sign-blob --bundle``) and the tlog entries of the
three Sigstore v0.3 bundles. The Merkle check is also compared with a tree hasher written here from
RFC 6962 section 2.1.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.cosign.keys import PublicKey, load_public_key
from pipeline.cosign.rekor import (
    RekorBundle,
    checkpoint_key_hint,
    log_id_of,
    merkle_leaf_hash,
    parse_rekor_bundle,
    rekor_bundle_to_json,
    signed_entry_timestamp_message,
    verify_checkpoint,
    verify_inclusion_proof,
    verify_rekor_bundle,
)
from pipeline.errors import InvalidInputError, VerificationError
from tests.conftest import COSIGN_VECTORS

IMAGE_SIGNATURES = COSIGN_VECTORS / "image-signatures"
BUNDLE_V03 = COSIGN_VECTORS / "bundle-v03"
PUBLIC_GOOD_LOG_ID = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"


@pytest.fixture(scope="module")
def rekor_keys() -> list[PublicKey]:
    return [load_public_key((IMAGE_SIGNATURES / "rekor.pub").read_bytes(), "rekor.pub")]


@dataclass(frozen=True)
class SignedCase:
    """One real signature with its Rekor bundle, as a verifier receives them."""

    name: str
    bundle_source: str | dict[str, object]
    payload: bytes
    signature: bytes
    signer_pem: bytes
    log_index: int
    integrated_time: int


def _annotation_case(folder: Path, payload_name: str, signer_pem: bytes, log_index: int, time: int) -> SignedCase:
    return SignedCase(
        name=folder.name,
        bundle_source=(folder / "bundle.json").read_text(),
        payload=(folder / payload_name).read_bytes(),
        signature=base64.b64decode((folder / "signature.b64").read_text().strip()),
        signer_pem=signer_pem,
        log_index=log_index,
        integrated_time=time,
    )


def _sign_blob_case() -> SignedCase:
    local_signed_payload = json.loads((COSIGN_VECTORS / "sign-blob" / "artifact.bundle").read_text())
    return SignedCase(
        name="sign-blob",
        bundle_source=local_signed_payload["rekorBundle"],
        payload=(COSIGN_VECTORS / "sign-blob" / "artifact.txt").read_bytes(),
        signature=base64.b64decode(local_signed_payload["base64Signature"]),
        signer_pem=base64.b64decode(local_signed_payload["cert"]),  # base64 of a CERTIFICATE PEM
        log_index=7810348,
        integrated_time=1669361833,
    )


KEY_REKOR = IMAGE_SIGNATURES / "dir-img-cosign-key-rekor-valid"
FULCIO_REKOR = IMAGE_SIGNATURES / "dir-img-cosign-fulcio-rekor-valid"
REGISTRY = COSIGN_VECTORS / "registry-sig-manifest"

CASES = [
    _annotation_case(KEY_REKOR, "payload.json", (IMAGE_SIGNATURES / "cosign2.pub").read_bytes(), 11608800, 1674251859),
    _annotation_case(FULCIO_REKOR, "payload.json", (FULCIO_REKOR / "cert.pem").read_bytes(), 11605770, 1674247893),
    _annotation_case(
        REGISTRY, "payload.reconstructed.json", (REGISTRY / "cert.pem").read_bytes(), 1004096555, 1772216446
    ),
    _sign_blob_case(),
]


def _parse(case: SignedCase) -> RekorBundle:
    return parse_rekor_bundle(case.bundle_source, case.name)


_UNCHANGED: object = object()


def _verify(
    case: SignedCase,
    keys: list[PublicKey],
    *,
    bundle: RekorBundle | None = None,
    payload: bytes | None = None,
    signature: bytes | None = None,
    signer_pem: bytes | object | None = _UNCHANGED,
) -> None:
    """verify_rekor_bundle on ``case``, with any of its inputs replaced."""
    verify_rekor_bundle(
        bundle or _parse(case),
        trusted_keys=keys,
        payload=case.payload if payload is None else payload,
        signature=case.signature if signature is None else signature,
        signer_pem=case.signer_pem if signer_pem is _UNCHANGED else signer_pem,  # type: ignore[arg-type]
        where=case.name,
    )


# --- parsing and writing ----------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_parse_reads_the_payload_fields(case: SignedCase) -> None:
    bundle = _parse(case)
    assert bundle.log_index == case.log_index
    assert bundle.integrated_time == case.integrated_time
    assert bundle.log_id == PUBLIC_GOOD_LOG_ID
    assert bundle.integrated_at.timestamp() == case.integrated_time
    assert json.loads(bundle.body)["kind"] == "hashedrekord"
    assert base64.b64decode(bundle.body_b64) == bundle.body
    assert len(bundle.signed_entry_timestamp) in range(70, 73)  # DER ECDSA P-256


@pytest.mark.parametrize("folder", [KEY_REKOR, FULCIO_REKOR, REGISTRY], ids=lambda p: p.name)
def test_writing_reproduces_cosigns_annotation_bytes(folder: Path) -> None:
    text = (folder / "bundle.json").read_text()
    written = json.dumps(rekor_bundle_to_json(parse_rekor_bundle(text, "bundle.json")), separators=(",", ":"))
    assert written == text


def test_writing_keeps_cosigns_key_order() -> None:
    document = rekor_bundle_to_json(_parse(CASES[3]))
    assert list(document) == ["SignedEntryTimestamp", "Payload"]
    payload = document["Payload"]
    assert isinstance(payload, dict)
    assert list(payload) == ["body", "integratedTime", "logIndex", "logID"]
    assert document == CASES[3].bundle_source


def test_signed_entry_timestamp_message_is_sorted_compact_json() -> None:
    bundle = _parse(CASES[0])
    # Written out by hand from the format: logID sorts before logIndex; integers unquoted; no spaces.
    expected = (
        f'{{"body":"{bundle.body_b64}","integratedTime":1674251859,"logID":"{PUBLIC_GOOD_LOG_ID}","logIndex":11608800}}'
    ).encode()
    assert signed_entry_timestamp_message(bundle) == expected


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "is not a JSON object"),
        ('{"SignedEntryTimestamp": "AAAA"}', "has no Payload object"),
        ('{"SignedEntryTimestamp": "%%%", "Payload": {}}', "SignedEntryTimestamp is not valid base64"),
        ('{"SignedEntryTimestamp": 5, "Payload": {}}', "SignedEntryTimestamp is not a base64 string"),
        ('{"SignedEntryTimestamp": "AAAA", "Payload": {"body": "%%"}}', "Payload.body is not valid base64"),
    ],
)
def test_malformed_bundles_are_invalid_input(source: str, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason) as caught:
        parse_rekor_bundle(source, "sig layer 0 annotation dev.sigstore.cosign/bundle")
    assert str(caught.value).endswith("(sig layer 0 annotation dev.sigstore.cosign/bundle)")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("logID", "c0d23d6a", "logID is not a hex SHA-256"),
        ("logID", "z" * 64, "logID is not a hex SHA-256"),
        ("integratedTime", "1674251859", "integratedTime is not a non-negative integer"),
        ("integratedTime", 1674251859.0, "integratedTime is not a non-negative integer"),
        ("logIndex", True, "logIndex is not a non-negative integer"),
        ("logIndex", -1, "logIndex is not a non-negative integer"),
    ],
)
def test_malformed_payload_fields_are_invalid_input(field: str, value: object, reason: str) -> None:
    document = json.loads(KEY_REKOR.joinpath("bundle.json").read_text())
    document["Payload"][field] = value
    with pytest.raises(InvalidInputError, match=reason):
        parse_rekor_bundle(json.dumps(document), "bundle.json")


# --- verification against the real bundles ---------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_real_bundles_verify(case: SignedCase, rekor_keys: list[PublicKey]) -> None:
    _verify(case, rekor_keys)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_real_bundles_verify_without_a_signer_to_compare(case: SignedCase, rekor_keys: list[PublicKey]) -> None:
    _verify(case, rekor_keys, signer_pem=None)


def test_tampered_signed_entry_timestamp_is_rejected(rekor_keys: list[PublicKey]) -> None:
    case = CASES[0]
    bundle = _parse(case)
    forged = bytearray(bundle.signed_entry_timestamp)
    forged[-1] ^= 0x01
    with pytest.raises(VerificationError, match="SignedEntryTimestamp does not verify") as caught:
        _verify(case, rekor_keys, bundle=replace(bundle, signed_entry_timestamp=bytes(forged)))
    assert caught.value.where == case.name


@pytest.mark.parametrize(
    "change",
    [{"integrated_time": 1674251860}, {"log_index": 11608801}],
    ids=["integratedTime", "logIndex"],
)
def test_altered_payload_fields_break_the_set(change: dict[str, int], rekor_keys: list[PublicKey]) -> None:
    bundle = replace(_parse(CASES[1]), **change)  # type: ignore[arg-type]
    with pytest.raises(VerificationError, match="SignedEntryTimestamp does not verify"):
        _verify(CASES[1], rekor_keys, bundle=bundle)


def test_swapped_body_breaks_the_set(rekor_keys: list[PublicKey]) -> None:
    other = _parse(CASES[0])
    bundle = replace(_parse(CASES[1]), body=other.body, body_b64=other.body_b64)
    with pytest.raises(VerificationError, match="SignedEntryTimestamp does not verify"):
        _verify(CASES[1], rekor_keys, bundle=bundle)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_wrong_payload_is_rejected(case: SignedCase, rekor_keys: list[PublicKey]) -> None:
    with pytest.raises(VerificationError, match="is for another artifact") as caught:
        _verify(case, rekor_keys, payload=case.payload + b"\n")
    assert hashlib.sha256(case.payload + b"\n").hexdigest() in str(caught.value)


def test_wrong_signature_is_rejected(rekor_keys: list[PublicKey]) -> None:
    other_signature = CASES[1].signature
    with pytest.raises(VerificationError, match="records a different signature"):
        _verify(CASES[0], rekor_keys, signature=other_signature)


def test_wrong_public_key_is_rejected(rekor_keys: list[PublicKey]) -> None:
    # cosign.pub signed dir-img-cosign-valid; the entry names cosign2.pub.
    with pytest.raises(VerificationError, match="records a different public key"):
        _verify(CASES[0], rekor_keys, signer_pem=(IMAGE_SIGNATURES / "cosign.pub").read_bytes())


def test_wrong_certificate_is_rejected(rekor_keys: list[PublicKey]) -> None:
    with pytest.raises(VerificationError, match="records a different certificate"):
        _verify(CASES[1], rekor_keys, signer_pem=CASES[2].signer_pem)


def test_certificate_entry_accepts_the_bare_key_of_that_certificate(rekor_keys: list[PublicKey]) -> None:
    # Documented leniency: a mixed pair is compared by public key.
    from cryptography import x509

    key_pem = (
        x509.load_pem_x509_certificate(CASES[1].signer_pem)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    _verify(CASES[1], rekor_keys, signer_pem=key_pem)


def test_unreadable_signer_pem_is_invalid_input(rekor_keys: list[PublicKey]) -> None:
    with pytest.raises(InvalidInputError, match="signer's key or certificate is unreadable"):
        _verify(CASES[0], rekor_keys, signer_pem=b"not a pem")


def test_untrusted_rekor_key_is_rejected() -> None:
    not_rekor = [load_public_key((IMAGE_SIGNATURES / "cosign.pub").read_bytes(), "cosign.pub")]
    with pytest.raises(VerificationError, match=f"logID {PUBLIC_GOOD_LOG_ID} matches none of the 1 trusted"):
        _verify(CASES[0], not_rekor)


def test_altered_log_id_is_rejected(rekor_keys: list[PublicKey]) -> None:
    bundle = replace(_parse(CASES[0]), log_id="00" * 32)
    with pytest.raises(VerificationError, match="matches none of the 1 trusted Rekor keys"):
        _verify(CASES[0], rekor_keys, bundle=bundle)


# --- synthetic entries signed by a throwaway log ----------------------------------------------


def _throwaway_log_bundle(log_key: ec.EllipticCurvePrivateKey, body: bytes) -> RekorBundle:
    unsigned = RekorBundle(
        signed_entry_timestamp=b"",
        body=body,
        body_b64=base64.b64encode(body).decode(),
        integrated_time=1700000000,
        log_index=42,
        log_id=log_id_of(log_key.public_key()),
    )
    signature = log_key.sign(signed_entry_timestamp_message(unsigned), ec.ECDSA(hashes.SHA256()))
    return replace(unsigned, signed_entry_timestamp=signature)


def _hashedrekord(payload: bytes, signature: bytes, signer_pem: bytes) -> bytes:
    entry = {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}},
            "signature": {
                "content": base64.b64encode(signature).decode(),
                "publicKey": {"content": base64.b64encode(signer_pem).decode()},
            },
        },
    }
    return json.dumps(entry, separators=(",", ":")).encode()


def test_an_entry_from_another_trusted_log_verifies_with_that_logs_key() -> None:
    log_key = ec.generate_private_key(ec.SECP256R1())
    case = CASES[0]
    bundle = _throwaway_log_bundle(log_key, _hashedrekord(case.payload, case.signature, case.signer_pem))
    verify_rekor_bundle(
        bundle,
        trusted_keys=[
            load_public_key((IMAGE_SIGNATURES / "rekor.pub").read_bytes(), "rekor.pub"),
            log_key.public_key(),
        ],
        payload=case.payload,
        signature=case.signature,
        signer_pem=case.signer_pem,
        where="synthetic",
    )


def test_a_set_by_another_key_under_the_real_log_id_is_rejected(rekor_keys: list[PublicKey]) -> None:
    impostor = ec.generate_private_key(ec.SECP256R1())
    case = CASES[0]
    bundle = replace(_throwaway_log_bundle(impostor, _parse(case).body), log_id=PUBLIC_GOOD_LOG_ID)
    with pytest.raises(VerificationError, match="SignedEntryTimestamp does not verify"):
        _verify(case, rekor_keys, bundle=bundle)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff not json", "body is not JSON"),
        (b'{"apiVersion":"0.0.1","kind":"intoto","spec":{}}', "kind intoto 0.0.1; only hashedrekord 0.0.1"),
        (b'{"apiVersion":"0.0.2","kind":"hashedrekord","spec":{}}', "kind hashedrekord 0.0.2"),
        (b'{"apiVersion":"0.0.1","kind":"hashedrekord"}', "spec is missing"),
        (
            b'{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{"hash":{"algorithm":"md5"}}}}',
            "hashes with 'md5'",
        ),
        (  # sha512 is a hashedrekord hash (P-521 and Ed25519 keys): this entry is for another payload
            b'{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{"hash":{"algorithm":"sha512"}}}}',
            "is for another artifact",
        ),
    ],
)
def test_unusable_bodies_are_rejected(body: bytes, reason: str) -> None:
    log_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(VerificationError, match=reason):
        verify_rekor_bundle(
            _throwaway_log_bundle(log_key, body),
            trusted_keys=[log_key.public_key()],
            payload=b"x",
            signature=b"y",
            signer_pem=None,
            where="synthetic",
        )


def test_entry_with_unreadable_public_key_is_rejected() -> None:
    log_key = ec.generate_private_key(ec.SECP256R1())
    body = _hashedrekord(b"payload", b"sig", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(VerificationError, match="entry's public key is unreadable"):
        verify_rekor_bundle(
            _throwaway_log_bundle(log_key, body),
            trusted_keys=[log_key.public_key()],
            payload=b"payload",
            signature=b"sig",
            signer_pem=(IMAGE_SIGNATURES / "cosign.pub").read_bytes(),
            where="synthetic",
        )


# --- Sigstore v0.3 tlog entries ---------------------------------------------------------------

V03_BUNDLES = [
    BUNDLE_V03 / "key-signed" / "bundle.sigstore.json",
    BUNDLE_V03 / "cosign-attest-keyless" / "oci-attestation.sigstore.json",
    BUNDLE_V03 / "cosign-sign-image-v3" / "kubewarden-controller-v1.34.0.bundle.layer.derived.json",
]


def _tlog_entry(path: Path) -> dict[str, object]:
    entry = json.loads(path.read_text())["verificationMaterial"]["tlogEntries"][0]
    assert isinstance(entry, dict)
    return entry


def _as_rekor_bundle(entry: dict[str, object]) -> RekorBundle:
    """A v0.3 tlog entry carries the same SET inputs as the legacy bundle, with other encodings."""
    promise, log_id = entry["inclusionPromise"], entry["logId"]
    assert isinstance(promise, dict) and isinstance(log_id, dict)
    body_b64 = entry["canonicalizedBody"]
    assert isinstance(body_b64, str)
    return RekorBundle(
        signed_entry_timestamp=base64.b64decode(promise["signedEntryTimestamp"]),
        body=base64.b64decode(body_b64),
        body_b64=body_b64,
        integrated_time=int(str(entry["integratedTime"])),
        log_index=int(str(entry["logIndex"])),
        log_id=base64.b64decode(log_id["keyId"]).hex(),
    )


def test_v03_key_signed_entry_verifies_as_a_rekor_bundle(rekor_keys: list[PublicKey]) -> None:
    path = V03_BUNDLES[0]
    message_signature = json.loads(path.read_text())["messageSignature"]
    verify_rekor_bundle(
        _as_rekor_bundle(_tlog_entry(path)),
        trusted_keys=rekor_keys,
        payload=(BUNDLE_V03 / "key-signed" / "a.txt").read_bytes(),
        signature=base64.b64decode(message_signature["signature"]),
        signer_pem=(BUNDLE_V03 / "key-signed" / "key.pub").read_bytes(),
        where=path.name,
    )


@pytest.mark.parametrize("path", V03_BUNDLES[1:], ids=lambda p: p.parent.name)
def test_dsse_entries_pass_the_set_but_are_refused_by_kind(path: Path, rekor_keys: list[PublicKey]) -> None:
    with pytest.raises(VerificationError, match=re.escape("kind dsse 0.0.1; only hashedrekord 0.0.1 is supported")):
        verify_rekor_bundle(
            _as_rekor_bundle(_tlog_entry(path)),
            trusted_keys=rekor_keys,
            payload=b"",
            signature=b"",
            signer_pem=None,
            where=path.name,
        )


@dataclass(frozen=True)
class Proof:
    leaf: bytes
    index: int
    tree_size: int
    hashes: list[bytes]
    root: bytes
    checkpoint: str


def _proof(path: Path) -> Proof:
    entry = _tlog_entry(path)
    proof = entry["inclusionProof"]
    assert isinstance(proof, dict)
    return Proof(
        leaf=base64.b64decode(str(entry["canonicalizedBody"])),
        index=int(proof["logIndex"]),
        tree_size=int(proof["treeSize"]),
        hashes=[base64.b64decode(h) for h in proof["hashes"]],
        root=base64.b64decode(proof["rootHash"]),
        checkpoint=proof["checkpoint"]["envelope"],
    )


@pytest.mark.parametrize("path", V03_BUNDLES, ids=lambda p: p.parent.name)
def test_real_inclusion_proofs_verify(path: Path) -> None:
    proof = _proof(path)
    verify_inclusion_proof(proof.leaf, proof.index, proof.tree_size, proof.hashes, proof.root, path.name)


def test_the_global_log_index_is_not_the_proof_index() -> None:
    proof = _proof(V03_BUNDLES[0])
    global_index = int(str(_tlog_entry(V03_BUNDLES[0])["logIndex"]))
    with pytest.raises(VerificationError, match="leaf index 771488337 is outside the tree of size 649584076"):
        verify_inclusion_proof(proof.leaf, global_index, proof.tree_size, proof.hashes, proof.root, "b")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda p: replace(p, leaf=p.leaf + b" "), "does not lead to the tree's root hash"),
        (lambda p: replace(p, index=p.index - 1), "does not lead to the tree's root hash"),
        (lambda p: replace(p, hashes=p.hashes[:-1]), "too few hashes"),
        (lambda p: replace(p, hashes=[*p.hashes, p.hashes[0]]), "too many hashes"),
        (lambda p: replace(p, hashes=[p.hashes[1], p.hashes[0], *p.hashes[2:]]), "does not lead to"),
        (lambda p: replace(p, root=hashlib.sha256(p.root).digest()), "does not lead to"),
        (lambda p: replace(p, hashes=[p.hashes[0][:31], *p.hashes[1:]]), "not 32 bytes"),
        (lambda p: replace(p, tree_size=p.tree_size * 2), "too few hashes"),
    ],
    ids=["leaf", "index", "short", "long", "order", "root", "hash-size", "tree-size"],
)
def test_altered_inclusion_proofs_are_rejected(mutate: object, reason: str) -> None:
    assert callable(mutate)
    proof = mutate(_proof(V03_BUNDLES[0]))
    with pytest.raises(VerificationError, match=reason):
        verify_inclusion_proof(proof.leaf, proof.index, proof.tree_size, proof.hashes, proof.root, "bundle")


# An independent tree hasher, from RFC 6962 section 2.1: MTH and PATH by their recursive definitions.


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _tree_hash(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = _largest_power_of_two_below(len(leaves))
    return hashlib.sha256(b"\x01" + _tree_hash(leaves[:k]) + _tree_hash(leaves[k:])).digest()


def _audit_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _largest_power_of_two_below(len(leaves))
    if m < k:
        return [*_audit_path(m, leaves[:k]), _tree_hash(leaves[k:])]
    return [*_audit_path(m - k, leaves[k:]), _tree_hash(leaves[:k])]


@pytest.mark.parametrize("tree_size", range(1, 18))
def test_inclusion_proofs_agree_with_the_rfc_6962_definition(tree_size: int) -> None:
    leaves = [f"leaf {i}".encode() for i in range(tree_size)]
    root = _tree_hash(leaves)
    for index in range(tree_size):
        path = _audit_path(index, leaves)
        verify_inclusion_proof(leaves[index], index, tree_size, path, root, "tree")
        if tree_size > 1:
            with pytest.raises(VerificationError):
                verify_inclusion_proof(leaves[index], (index + 1) % tree_size, tree_size, path, root, "tree")


def test_leaf_hash_has_the_domain_prefix() -> None:
    assert merkle_leaf_hash(b"") == bytes.fromhex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")


# --- checkpoints ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", V03_BUNDLES, ids=lambda p: p.parent.name)
def test_real_checkpoints_verify(path: Path, rekor_keys: list[PublicKey]) -> None:
    proof = _proof(path)
    verify_checkpoint(
        proof.checkpoint, trusted_keys=rekor_keys, root_hash=proof.root, tree_size=proof.tree_size, where=path.name
    )


def test_checkpoint_key_hint_is_the_start_of_the_log_id(rekor_keys: list[PublicKey]) -> None:
    assert checkpoint_key_hint(rekor_keys[0]) == bytes.fromhex(PUBLIC_GOOD_LOG_ID[:8])


def _checkpoint_case() -> Proof:
    return _proof(V03_BUNDLES[0])


def test_checkpoint_for_another_root_is_rejected(rekor_keys: list[PublicKey]) -> None:
    proof = _checkpoint_case()
    other_root = _proof(V03_BUNDLES[1]).root
    with pytest.raises(VerificationError, match="checkpoint's root hash differs from the inclusion proof's"):
        verify_checkpoint(
            proof.checkpoint, trusted_keys=rekor_keys, root_hash=other_root, tree_size=proof.tree_size, where="c"
        )


def test_checkpoint_for_another_size_is_rejected(rekor_keys: list[PublicKey]) -> None:
    proof = _checkpoint_case()
    with pytest.raises(VerificationError, match="checkpoint is for tree size 649584076, the inclusion proof for 5"):
        verify_checkpoint(proof.checkpoint, trusted_keys=rekor_keys, root_hash=proof.root, tree_size=5, where="c")


def test_altered_checkpoint_text_is_rejected(rekor_keys: list[PublicKey]) -> None:
    proof = _checkpoint_case()
    forged = proof.checkpoint.replace("\n649584076\n", "\n649584077\n", 1)
    assert forged != proof.checkpoint
    with pytest.raises(VerificationError, match="checkpoint's signature does not verify with the Rekor key"):
        verify_checkpoint(forged, trusted_keys=rekor_keys, root_hash=proof.root, tree_size=649584077, where="c")


def test_checkpoint_from_an_untrusted_log_is_rejected() -> None:
    proof = _checkpoint_case()
    not_rekor = [load_public_key((IMAGE_SIGNATURES / "cosign.pub").read_bytes(), "cosign.pub")]
    with pytest.raises(VerificationError, match="signed by none of the trusted Rekor keys"):
        verify_checkpoint(
            proof.checkpoint, trusted_keys=not_rekor, root_hash=proof.root, tree_size=proof.tree_size, where="c"
        )


def test_checkpoint_signature_by_an_unknown_witness_is_ignored(rekor_keys: list[PublicKey]) -> None:
    proof = _checkpoint_case()
    witness = base64.b64encode(b"\x01\x02\x03\x04" + b"\x30\x00").decode()
    cosigned = f"{proof.checkpoint}— witness.example {witness}\n"
    verify_checkpoint(cosigned, trusted_keys=rekor_keys, root_hash=proof.root, tree_size=proof.tree_size, where="c")


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        ("origin\n1\nAAAA\n", "not a signed note"),
        ("origin\n1\n\n— origin AAAA\n", "lacks its origin, size or root hash line"),
        ("origin\nten\nAAAA\n\n— origin AAAA\n", "tree size 'ten' is not a number"),
        ("origin\n1\n%%%\n\n— origin AAAA\n", "root hash is not valid base64"),
        ("origin\n1\nAAAA\n\n- origin AAAA\n", "malformed signature line"),
        ("origin\n1\nAAAA\n\n— origin %%%\n", "signature that is not valid base64"),
    ],
)
def test_malformed_checkpoints_are_rejected(envelope: str, reason: str, rekor_keys: list[PublicKey]) -> None:
    with pytest.raises(VerificationError, match=reason):
        verify_checkpoint(envelope, trusted_keys=rekor_keys, root_hash=b"\x00" * 32, tree_size=1, where="c")


def test_checkpoint_signed_by_a_throwaway_log_verifies_with_its_key() -> None:
    log_key = ec.generate_private_key(ec.SECP256R1())
    root = hashlib.sha256(b"root").digest()
    note = f"log.example - 7\n12\n{base64.b64encode(root).decode()}\n"
    signature = log_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
    hint = checkpoint_key_hint(log_key.public_key())
    envelope = f"{note}\n— log.example {base64.b64encode(hint + signature).decode()}\n"
    verify_checkpoint(envelope, trusted_keys=[log_key.public_key()], root_hash=root, tree_size=12, where="c")
