"""SignatureTarget: where signatures live (the image's repository, or a signature repository) against what
is signed (the image's digest, in its own repository)."""

from __future__ import annotations

from pipeline.oci.reference import parse_reference, parse_repository
from pipeline.signatures.legacy import signature_reference, signed_payload
from pipeline.signatures.target import SignatureTarget

DIGEST = "sha256:" + "ab" * 32


def test_without_a_signature_repository_everything_is_beside_the_image() -> None:
    target = SignatureTarget(parse_reference(f"docker.io/library/nginx@{DIGEST}"), DIGEST)
    assert target.repository == parse_repository("docker.io/library/nginx")
    assert target.store == target.subject == parse_reference(f"docker.io/library/nginx@{DIGEST}")


def test_a_signature_repository_holds_the_signatures_not_the_subject_nor_the_payload_name() -> None:
    signatures = parse_repository("ghcr.io/acme/signatures")
    target = SignatureTarget(parse_reference(f"nginx@{DIGEST}"), DIGEST, signatures=signatures)
    assert target.repository == signatures
    assert target.store == signatures.digest(DIGEST)
    assert target.subject == parse_reference(f"docker.io/library/nginx@{DIGEST}")
    assert str(signature_reference(target.store, DIGEST)) == f"ghcr.io/acme/signatures:sha256-{'ab' * 32}.sig"
    assert b'"docker-reference":"index.docker.io/library/nginx"' in signed_payload(target)
    assert target.where == f"docker.io/library/nginx@{DIGEST}"
