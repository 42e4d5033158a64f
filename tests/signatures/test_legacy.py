"""pipeline/signatures/legacy.py: the look's ``.sig`` read handed to the signing, and blobs uploaded side by side."""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.cosign.keys import SigningKey, generate_key_pair, load_private_key
from pipeline.cosign.sigmanifest import read_signature_manifest
from pipeline.errors import NotFoundError, RegistryError
from pipeline.oci import digest as digests
from pipeline.oci.client import Descriptor, Manifest
from pipeline.oci.reference import Reference, Repository, parse_reference
from pipeline.secret import Secret
from pipeline.signatures.layout import SignatureReads
from pipeline.signatures.legacy import LegacyLayout, signature_reference
from pipeline.signatures.registry import upload_blobs
from pipeline.signatures.signers import KeySigner
from pipeline.signatures.target import SignatureTarget

DIGEST = "sha256:" + "ab" * 32
IMAGE = parse_reference(f"registry.example/team/app@{DIGEST}")
TARGET = SignatureTarget(IMAGE, DIGEST)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    pair = generate_key_pair(Secret("pw"))
    return load_private_key(pair.private_pem, Secret("pw"), "test")


class MemoryRegistry:
    """Manifests by tag and blobs in memory; counts every call by operation."""

    def __init__(self) -> None:
        self.manifests: dict[str, Manifest] = {}
        self.blobs: dict[str, bytes] = {}
        self.calls: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_blob: bytes | None = None
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def head_manifest(self, ref: Reference) -> Descriptor | None:
        self._count("head_manifest")
        found = self.manifests.get(ref.tag or "")
        return found.descriptor() if found else None

    def get_manifest(self, ref: Reference) -> Manifest:
        self._count("get_manifest")
        found = self.manifests.get(ref.tag or "")
        if found is None:
            raise NotFoundError("manifest unknown", where=str(ref))
        return found

    def put_manifest(
        self, target: Reference | Repository, tag_or_digest: str | None, data: bytes, media_type: str
    ) -> str:
        self._count("put_manifest")
        digest = digests.compute(data)
        self.manifests[tag_or_digest or digest] = Manifest(data, media_type, digest)
        return digest

    def upload_blob(
        self, target: Reference | Repository, data: bytes, mount_from: object = None, *, check_exists: bool = True
    ) -> str:
        with self._lock:
            self._count("upload_blob")
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(0.05)  # long enough for a second upload to start beside this one
            if data == self.fail_blob:
                raise RegistryError("registry answered 500 to upload the blob", where=str(target))
            self.blobs[digests.compute(data)] = data
            return digests.compute(data)
        finally:
            with self._lock:
                self.in_flight -= 1


def test_a_read_is_handed_out_once_and_only_while_fresh() -> None:
    reads = SignatureReads()
    sig_ref = signature_reference(IMAGE, DIGEST)
    assert reads.take(sig_ref) == (False, None)
    reads.record(sig_ref, None)  # "no .sig manifest" is worth keeping too
    assert len(reads) == 1
    assert reads.take(sig_ref) == (True, None)
    assert reads.take(sig_ref) == (False, None), "a second signing (a retry) reads afresh"
    stale = SignatureReads(max_age=-1.0)
    stale.record(sig_ref, None)
    assert stale.take(sig_ref) == (False, None)


def test_signing_after_the_look_reads_the_sig_manifest_once(key: SigningKey) -> None:
    registry = MemoryRegistry()
    reads = SignatureReads()
    layout = LegacyLayout(registry, reads=reads)
    assert not layout.is_signed(TARGET, KeySigner(key.public_key), None)
    assert registry.calls == {"get_manifest": 1}
    assert layout.ensure(TARGET, KeySigner.of(key), None) == "signed"
    # the look's read is reused; the tag is read again right before the PUT and once more a moment after
    # it (issue 12: concurrent signers must not drop each other's signatures)
    assert registry.calls == {"get_manifest": 3, "upload_blob": 2, "put_manifest": 1}

    # Without the look's copy, the signing reads for itself; and what it wrote is found.
    assert layout.ensure(TARGET, KeySigner.of(key), None) == "already signed"
    assert registry.calls["get_manifest"] == 4


def test_the_copy_the_look_read_is_what_the_new_layer_is_appended_to(key: SigningKey) -> None:
    """A layer already there when the look read is kept; the new one goes after it."""
    registry = MemoryRegistry()
    other = load_private_key(generate_key_pair(Secret("o")).private_pem, Secret("o"), "other")
    assert LegacyLayout(registry).ensure(TARGET, KeySigner.of(other), None) == "signed"
    reads = SignatureReads()
    layout = LegacyLayout(registry, reads=reads)
    assert not layout.is_signed(TARGET, KeySigner(key.public_key), None)
    assert layout.ensure(TARGET, KeySigner.of(key), None) == "signed"
    tag = signature_reference(IMAGE, DIGEST).tag or ""
    manifest = read_signature_manifest(registry.manifests[tag].data, tag)
    assert len(manifest.signature_layers) == 2
    plain = LegacyLayout(registry)
    assert plain.is_signed(TARGET, KeySigner(other.public_key), None)
    assert plain.is_signed(TARGET, KeySigner(key.public_key), None)


def test_a_signatures_blobs_are_uploaded_side_by_side_and_a_failure_is_raised_after_both() -> None:
    registry = MemoryRegistry()
    upload_blobs(registry, IMAGE.repo, [b"payload", b"config"])
    assert registry.max_in_flight == 2 and len(registry.blobs) == 2

    failing = MemoryRegistry()
    failing.fail_blob = b"payload"
    with pytest.raises(RegistryError, match="upload the blob"):
        upload_blobs(failing, IMAGE.repo, [b"payload", b"config"])
    assert failing.in_flight == 0 and list(failing.blobs.values()) == [b"config"]
