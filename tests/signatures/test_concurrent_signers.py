"""Issue 12: two signers over the same images at the same time both keep their signatures.

Each layout reads a manifest at a tag (the ``.sig`` manifest, the referrers fallback index), extends
it and writes it back: without reading the write back, the last writer wins and the other's signature
is gone although its run exited 0. Run against the real Distribution registry, both runs at once.
"""

from __future__ import annotations

import threading

import pytest

from pipeline.cosign.keys import SigningKey, generate_key_pair, load_private_key
from pipeline.oci.reference import Reference, parse_reference
from pipeline.secret import Secret
from pipeline.signatures.formats import BundleFormat, layouts_for
from pipeline.signatures.layout import WriteConfirmations
from pipeline.signatures.sign import sign_images
from pipeline.signatures.signers import KeySigner
from pipeline.signatures.target import SignatureTarget
from tests.oci.helpers import client, push_image
from tests.registry_fixtures import RegistryProcess

IMAGES = 20


def new_key(name: str) -> SigningKey:
    return load_private_key(generate_key_pair(Secret(name)).private_pem, Secret(name), name)


@pytest.mark.parametrize("bundle_format", ["legacy", "v3"])
def test_two_concurrent_signers_both_keep_their_signature_on_every_image(
    plain_registry: RegistryProcess, bundle_format: BundleFormat
) -> None:
    """As `sign` and `release` run it: every write read back once, at the end of the run (the inline
    read-back of one-off callers waits on one write's window only, which threads in one process make too
    erratic to test for without flakiness)."""
    deferred = True
    keys = [new_key("first"), new_key("second")]
    with client() as registry:
        images: list[Reference] = []
        for number in range(IMAGES):
            ref = plain_registry.ref(f"race-{bundle_format}-{int(deferred)}/app{number}:v1")
            _, digest = push_image(registry, ref, f"{bundle_format} image {number}".encode())
            images.append(parse_reference(ref).repo.digest(digest))
    start = threading.Barrier(len(keys))
    failures: list[str] = []

    def run(key: SigningKey) -> None:
        with client() as registry:
            start.wait()
            confirmations = WriteConfirmations() if deferred else None  # as `sign` runs it: read back at the end
            layouts = layouts_for(bundle_format, registry, confirmations=confirmations)
            outcomes = sign_images(registry, images, [KeySigner.of(key)], layouts, concurrency=IMAGES,
                                   confirmations=confirmations)  # fmt: skip
            failures.extend(o.error.one_line() for o in outcomes if o.error is not None)

    threads = [threading.Thread(target=run, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    with client() as registry:
        [layout] = layouts_for(bundle_format, registry)
        missing = [
            f"{image} lacks signer {number}"
            for image in images
            for number, key in enumerate(keys)
            if not layout.is_signed(SignatureTarget(image, str(image.digest)), KeySigner(key.public_key), None)
        ]
    assert not missing, f"{len(missing)} signatures lost: {missing[:4]}"


def test_many_referrers_in_one_repository_at_once_all_land(plain_registry: RegistryProcess) -> None:
    """Every v3 referrer of a repository names the same empty config blob ``{}``: signing many images of
    one repository at once makes their uploads of it race (Distribution then refuses a manifest with
    MANIFEST_BLOB_UNKNOWN or DIGEST_INVALID). Each such write is made again; every image ends up signed."""
    key = new_key("one")
    with client() as registry:
        images: list[Reference] = []
        for number in range(IMAGES):
            ref = plain_registry.ref(f"shared-repo/app:v{number}")
            _, digest = push_image(registry, ref, f"shared repository image {number}".encode())
            images.append(parse_reference(ref).repo.digest(digest))
        confirmations = WriteConfirmations()
        layouts = layouts_for("v3", registry, confirmations=confirmations)
        outcomes = sign_images(registry, images, [KeySigner.of(key)], layouts, concurrency=IMAGES,
                               confirmations=confirmations)  # fmt: skip
        assert [o.error.one_line() for o in outcomes if o.error is not None] == []
        [layout] = layouts_for("v3", registry)
        signer = KeySigner(key.public_key)
        assert all(layout.is_signed(SignatureTarget(image, str(image.digest)), signer, None) for image in images)
