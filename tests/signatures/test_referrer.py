"""cosign v3 bundles in registries (pipeline.signatures.referrer): write, find, verify; both referrer paths.

The fallback path runs against the Distribution registry (no referrers API); the API path through
:class:`tests.referrers_proxy.ReferrersProxy` in front of the same registry. Manifests are decoded
here from the format description in ``vectors/cosign/bundle-v03/README.md``, not with our reader.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.cosign.keys import SigningKey, public_key_to_pem
from pipeline.cosign.verify import VerificationPolicy
from pipeline.errors import InvalidInputError, RegistryError
from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from pipeline.oci.client import Descriptor, RegistryClient
from pipeline.oci.reference import Reference, parse_reference
from pipeline.rehearsal.log_server import LogServer
from pipeline.signatures.referrer import (
    BUNDLE_ARTIFACT_TYPE,
    ReferrerLayout,
    attach_bundle,
    created_now,
    fallback_index_with,
    find_bundles,
    referrer_manifest,
    referrers_tag,
    verify_image_bundles,
)
from pipeline.signatures.signers import KeySigner
from pipeline.signatures.target import SignatureTarget
from pipeline.signatures.verify import verify_image
from pipeline.sigstore.bundle import COSIGN_SIGN_PREDICATE_TYPE
from pipeline.sigstore.dsse import dsse_pae
from pipeline.sigstore.rekor_client import RekorClient
from pipeline.sigstore.tlog import TransparencyLog
from pipeline.sigstore.writer import cosign_sign_statement, dsse_bundle, sign_dsse
from tests.oci.helpers import client as make_client
from tests.oci.helpers import push_image
from tests.referrers_proxy import ReferrersProxy
from tests.registry_fixtures import Recorded, RegistryProcess, Reply, ScriptedServer


@dataclass(frozen=True)
class Log:
    server: LogServer
    client: RekorClient


@pytest.fixture(scope="module")
def log() -> Iterator[Log]:
    with LogServer() as server, RekorClient(server.url, [server.public_key]) as client:
        yield Log(server, client)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), "test key")


def key_policy(key: SigningKey, log: Log | None) -> VerificationPolicy:
    if log is None:
        return VerificationPolicy(key.public_key, None, (), ignore_tlog=True)
    return VerificationPolicy(key.public_key, None, (log.server.public_key,))


def raw(url: str, path: str, accept: str = mediatypes.OCI_MANIFEST) -> httpx.Response:
    return httpx.get(f"{url}{path}", headers={"Accept": accept}, trust_env=False)


def new_image(host_ref: str, content: bytes) -> tuple[Reference, str]:
    with make_client() as client:
        _, digest = push_image(client, host_ref, content)
    return parse_reference(host_ref).repo.digest(digest), digest


def sign_digest_v3(
    client: RegistryClient,
    image: Reference,
    digest: str,
    key: SigningKey,
    annotations: dict[str, str] | None = None,
    *,
    tlog: TransparencyLog | None = None,
    created: str | None = None,
) -> str:
    target = SignatureTarget(image, digest, dict(annotations or {}))
    return ReferrerLayout(client, created=created).ensure(target, KeySigner.of(key), tlog)


def has_valid_bundle(
    client: RegistryClient,
    image: Reference,
    digest: str,
    key: SigningKey,
    annotations: dict[str, str],
    *,
    tlog: TransparencyLog | None = None,
) -> bool:
    target = SignatureTarget(image, digest, annotations)
    return ReferrerLayout(client).is_signed(target, KeySigner(key.public_key), tlog)


# --- pure -------------------------------------------------------------------------------------


SUBJECT = Descriptor(mediatypes.OCI_MANIFEST, "sha256:" + "c" * 64, 525)


def test_referrer_manifest_is_cosigns_bytes() -> None:
    bundle = b'{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}'
    manifest = referrer_manifest(bundle, SUBJECT, created="2026-04-09T07:23:29Z")
    expected = (
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":'
        '"application/vnd.oci.empty.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe7'
        '7e8310c060f61caaff8a","artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"},"layers":[{"mediaType'
        f'":"application/vnd.dev.sigstore.bundle.v0.3+json","size":{len(bundle)},"digest":"'
        f'sha256:{hashlib.sha256(bundle).hexdigest()}"}}],"annotations":{{"dev.sigstore.bundle.content":"dsse-envelope"'
        ',"dev.sigstore.bundle.predicateType":"https://sigstore.dev/cosign/sign/v1","org.opencontainers.image.created"'
        f':"2026-04-09T07:23:29Z"}},"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":525,'
        f'"digest":"sha256:{"c" * 64}"}},"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}}'
    )
    assert manifest.decode() == expected


def test_fallback_index_appends_sorted_keeps_entries_and_drops_annotations() -> None:
    first = referrer_manifest(b"one", SUBJECT, created="2026-01-01T00:00:00Z")
    second = referrer_manifest(b"two", SUBJECT, created="2026-01-01T00:00:00Z")
    index = fallback_index_with(None, first, "t")
    assert index is not None
    other = {"mediaType": mediatypes.OCI_MANIFEST, "size": 1, "digest": "sha256:" + "0" * 64, "artifactType": "x/y"}
    existing = json.loads(index)
    existing["manifests"].append(other)
    grown = fallback_index_with(json.dumps(existing).encode(), second, "t")
    assert grown is not None
    document = json.loads(grown)
    assert document["mediaType"] == mediatypes.OCI_INDEX and document["schemaVersion"] == 2
    listed = [entry["digest"] for entry in document["manifests"]]
    assert listed == sorted([digests.compute(first), digests.compute(second), other["digest"]])
    entry = next(e for e in document["manifests"] if e["digest"] == digests.compute(second))
    assert entry == {"mediaType": mediatypes.OCI_MANIFEST, "size": len(second), "digest": digests.compute(second),
                     "artifactType": BUNDLE_ARTIFACT_TYPE}  # fmt: skip
    assert fallback_index_with(grown, second, "t") is None  # listed already: nothing to write
    with pytest.raises(InvalidInputError, match="no OCI image index"):
        fallback_index_with(b"[]", second, "t")


def test_names_and_times() -> None:
    assert referrers_tag("sha256:" + "a" * 64) == "sha256-" + "a" * 64
    assert created_now("1775719409") == "2026-04-09T07:23:29Z"
    with pytest.raises(InvalidInputError, match="SOURCE_DATE_EPOCH"):
        created_now("yesterday")


def test_statement_and_envelope_are_cosigns_shape(key: SigningKey) -> None:
    statement = cosign_sign_statement("ab" * 32, {"team": "x"})
    assert statement == (
        b'{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"' + b"ab" * 32
        + b'"},"annotations":{"team":"x"}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}'
    )  # fmt: skip
    envelope = sign_dsse(key, statement)
    key.public_key.verify(  # type: ignore[union-attr, call-arg]
        envelope.signatures[0].sig, dsse_pae("application/vnd.in-toto+json", statement), ec.ECDSA(_sha256())
    )


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


# --- get_referrers ------------------------------------------------------------------------------


def test_get_referrers_without_the_api_is_none(plain_registry: RegistryProcess) -> None:
    with make_client() as client:
        assert client.get_referrers(parse_reference(plain_registry.ref("x/y")).repo, "sha256:" + "1" * 64) is None


ANY_DIGEST = "sha256:" + "1" * 64


def _no_api(answer: Reply) -> None:
    def handler(request: Recorded) -> Reply:
        return Reply(200) if request.url_path == "/v2/" else answer

    with ScriptedServer(handler) as server, make_client() as client:
        assert client.get_referrers(parse_reference(f"{server.host}/a/b").repo, ANY_DIGEST) is None


@pytest.mark.parametrize("status", [400, 404, 405, 406])
def test_get_referrers_statuses_that_mean_no_api(status: int) -> None:
    _no_api(Reply(status))


def test_get_referrers_non_index_200_is_no_api_and_500_is_an_error() -> None:
    _no_api(Reply(200, {"Content-Type": "text/html"}, b"<html>"))

    def broken(request: Recorded) -> Reply:
        return Reply(200) if request.url_path == "/v2/" else Reply(500, {}, b"boom")

    with ScriptedServer(broken) as server, make_client() as client, pytest.raises(RegistryError, match="500"):
        client.get_referrers(parse_reference(f"{server.host}/a/b").repo, "sha256:" + "1" * 64)


def test_get_referrers_merges_pages_and_sends_the_filter() -> None:
    def page(entries: list[str], link: str | None) -> Reply:
        headers = {"Content-Type": mediatypes.OCI_INDEX}
        if link:
            headers["Link"] = f'<{link}>; rel="next"'
        body = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX,
                "manifests": [{"digest": d, "mediaType": mediatypes.OCI_MANIFEST, "size": 1} for d in entries]}
        return Reply(200, headers, json.dumps(body).encode())  # fmt: skip

    one, two = "sha256:" + "1" * 64, "sha256:" + "2" * 64

    def handler(request: Recorded) -> Reply:
        if request.url_path == "/v2/":
            return Reply(200)
        if "last=1" in request.path:
            return page([two], None)
        return page([one], f"/v2/a/b/referrers/sha256:{'9' * 64}?last=1")

    with ScriptedServer(handler) as server, make_client() as client:
        index = client.get_referrers(parse_reference(f"{server.host}/a/b").repo, "sha256:" + "9" * 64, "x/y")
        assert index is not None
        assert [m["digest"] for m in json.loads(index.data)["manifests"]] == [one, two]
        assert "artifactType=x%2Fy" in server.requests[1].path


# --- sign and verify: the fallback path ----------------------------------------------------------


def test_sign_v3_fallback_path_writes_cosigns_layout_and_resigning_adds_nothing(
    plain_registry: RegistryProcess, key: SigningKey, log: Log
) -> None:
    image, digest = new_image(plain_registry.ref("v3/fallback:v1"), b"fallback-image")
    before = len(log.server.log)
    with make_client() as client:
        assert sign_digest_v3(client, image, digest, key, {"team": "x"}, tlog=log.client,
                              created="2026-04-09T07:23:29Z") == "signed"  # fmt: skip
    assert len(log.server.log) == before + 1

    # An independent decoder: the fallback index, the referrer manifest, the bundle, the statement.
    index_response = raw(plain_registry.url, f"/v2/v3/fallback/manifests/{referrers_tag(digest)}", mediatypes.OCI_INDEX)
    index = json.loads(index_response.content)
    [entry] = index["manifests"]
    assert entry["artifactType"] == BUNDLE_ARTIFACT_TYPE and "annotations" not in entry
    manifest = json.loads(raw(plain_registry.url, f"/v2/v3/fallback/manifests/{entry['digest']}").content)
    assert manifest["subject"]["digest"] == digest and manifest["artifactType"] == BUNDLE_ARTIFACT_TYPE
    assert manifest["annotations"] == {
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": COSIGN_SIGN_PREDICATE_TYPE,
        "org.opencontainers.image.created": "2026-04-09T07:23:29Z",
    }
    [layer] = manifest["layers"]
    bundle = json.loads(raw(plain_registry.url, f"/v2/v3/fallback/blobs/{layer['digest']}").content)
    assert bundle["mediaType"] == BUNDLE_ARTIFACT_TYPE
    hint = base64.b64encode(hashlib.sha256(_spki(key)).digest()).decode()
    assert bundle["verificationMaterial"]["publicKey"] == {"hint": hint}
    [tlog_entry] = bundle["verificationMaterial"]["tlogEntries"]
    assert tlog_entry["kindVersion"] == {"kind": "dsse", "version": "0.0.1"}
    assert isinstance(tlog_entry["logIndex"], str) and isinstance(tlog_entry["integratedTime"], str)
    assert tlog_entry["inclusionPromise"]["signedEntryTimestamp"]
    assert tlog_entry["inclusionProof"]["checkpoint"]["envelope"].startswith(log.server.log.origin)
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": digest.removeprefix("sha256:")}, "annotations": {"team": "x"}}],
        "predicateType": COSIGN_SIGN_PREDICATE_TYPE,
        "predicate": {},
    }

    with make_client() as client:
        result = verify_image(client, image, key_policy(key, log), annotations={"team": "x"})
        assert result.ok and result.formats == ("v3",) and result.found == ("v3",), result.failures
        assert has_valid_bundle(client, image, digest, key, {"team": "x"}, tlog=log.client)
        assert not has_valid_bundle(client, image, digest, key, {"team": "y"}, tlog=log.client)
        assert sign_digest_v3(client, image, digest, key, {"team": "x"}, tlog=log.client) == "already signed"
    assert len(log.server.log) == before + 1
    again = raw(plain_registry.url, f"/v2/v3/fallback/manifests/{referrers_tag(digest)}", mediatypes.OCI_INDEX)
    assert again.content == index_response.content


def _spki(key: SigningKey) -> bytes:
    from pipeline.cosign.keys import public_key_der

    return public_key_der(key.public_key)


def test_sign_v3_without_log_verifies_only_when_the_log_is_ignored(plain_registry: RegistryProcess,
                                                                   key: SigningKey, log: Log) -> None:  # fmt: skip
    image, digest = new_image(plain_registry.ref("v3/nolog:v1"), b"nolog-image")
    with make_client() as client:
        assert sign_digest_v3(client, image, digest, key) == "signed"
        assert verify_image(client, image, key_policy(key, None)).ok
        strict = verify_image(client, image, key_policy(key, log))
        assert not strict.ok and "no dsse 0.0.1 transparency-log entry" in strict.reason()
        # with the log on, an unlogged bundle does not count: signing adds a logged one
        assert sign_digest_v3(client, image, digest, key, tlog=log.client) == "signed"
        assert verify_image(client, image, key_policy(key, log)).ok
        assert len(find_bundles(client, image, digest).found) == 2


# --- the API path, through the proxy ------------------------------------------------------------


def test_sign_v3_through_the_referrers_api_writes_no_fallback_tag(
    plain_registry: RegistryProcess, key: SigningKey, log: Log
) -> None:
    with ReferrersProxy(plain_registry.url) as proxy:
        image, digest = new_image(proxy.ref("v3/api:v1"), b"api-image")
        with make_client() as client:
            assert sign_digest_v3(client, image, digest, key, tlog=log.client) == "signed"
            [listed] = proxy.referrers[("v3/api", digest)]
            assert listed["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"  # type: ignore[index]
            search = find_bundles(client, image, digest)
            assert search.api and search.source == "the referrers API" and len(search.found) == 1
            result = verify_image(client, image, key_policy(key, log))
            assert result.ok and result.formats == ("v3",)
            assert sign_digest_v3(client, image, digest, key, tlog=log.client) == "already signed"
        assert proxy.api_requests >= 3
    missing = raw(plain_registry.url, f"/v2/v3/api/manifests/{referrers_tag(digest)}", mediatypes.OCI_INDEX)
    assert missing.status_code == 404


def test_ghcr_style_listing_with_the_empty_artifact_type_is_found(plain_registry: RegistryProcess,
                                                                  key: SigningKey) -> None:  # fmt: skip
    with ReferrersProxy(plain_registry.url) as proxy:
        image, digest = new_image(proxy.ref("v3/ghcr:v1"), b"ghcr-image")
        with make_client() as client:
            assert sign_digest_v3(client, image, digest, key) == "signed"
            for entry in proxy.referrers[("v3/ghcr", digest)]:
                entry["artifactType"] = mediatypes.OCI_EMPTY
                entry.pop("annotations")
            assert verify_image(client, image, key_policy(key, None)).ok


# --- bad input ----------------------------------------------------------------------------------


def _bundle(key: SigningKey, digest_hex: str, log: Log | None, *, predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE
            ) -> dict[str, Any]:  # fmt: skip
    envelope = sign_dsse(key, cosign_sign_statement(digest_hex, predicate_type=predicate_type))
    entry = log.client.upload_dsse(envelope, public_key_to_pem(key.public_key)) if log is not None else None
    document: dict[str, Any] = json.loads(dsse_bundle(envelope, key.public_key, entry))
    return document


def _attach(client: RegistryClient, image: Reference, digest: str, bundle: dict[str, Any] | bytes) -> None:
    data = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
    subject = client.head_manifest(image.repo.digest(digest))
    assert subject is not None
    attach_bundle(client, image.repo, subject, data)


def _reason(client: RegistryClient, image: Reference, key: SigningKey, log: Log | None) -> str:
    result = verify_image(client, image, key_policy(key, log))
    assert not result.ok
    return result.reason()


def test_bad_bundles_are_rejected_with_their_reason(plain_registry: RegistryProcess, key: SigningKey,
                                                    log: Log) -> None:  # fmt: skip
    with make_client() as client:
        image, digest = new_image(plain_registry.ref("v3/bad-version:v1"), b"bad-version")
        wrong = _bundle(key, digest[7:], None)
        wrong["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.4+json"
        _attach(client, image, digest, wrong)
        assert "unsupported Sigstore bundle media type" in _reason(client, image, key, None)

        image, digest = new_image(plain_registry.ref("v3/old-version:v1"), b"old-version")
        old = _bundle(key, digest[7:], None)
        old["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2"
        _attach(client, image, digest, old)
        assert "but its layer says application/vnd.dev.sigstore.bundle.v0.3+json" in _reason(client, image, key, None)

        image, digest = new_image(plain_registry.ref("v3/other-digest:v1"), b"other-digest")
        _attach(client, image, digest, _bundle(key, "e" * 64, None))
        assert "the signature is for another image" in _reason(client, image, key, None)

        image, digest = new_image(plain_registry.ref("v3/predicate:v1"), b"predicate")
        _attach(client, image, digest, _bundle(key, digest[7:], None, predicate_type="https://example.com/other"))
        assert "predicateType is https://example.com/other" in _reason(client, image, key, None)

        image, digest = new_image(plain_registry.ref("v3/tlog-swap:v1"), b"tlog-swap")
        mine, other = _bundle(key, digest[7:], log), _bundle(key, "d" * 64, log)
        mine["verificationMaterial"]["tlogEntries"] = other["verificationMaterial"]["tlogEntries"]
        _attach(client, image, digest, mine)
        assert "the dsse log entry is for another payload" in _reason(client, image, key, log)

        image, digest = new_image(plain_registry.ref("v3/checkpoint:v1"), b"checkpoint")
        forged = _bundle(key, digest[7:], log)
        checkpoint = forged["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
        origin = checkpoint["envelope"].split("\n", 1)[0]
        checkpoint["envelope"] = checkpoint["envelope"].replace(origin, "forged.example - 1", 1)  # signature kept
        _attach(client, image, digest, forged)
        assert "checkpoint" in _reason(client, image, key, log)


def test_a_referrers_index_naming_a_missing_manifest_is_reported(plain_registry: RegistryProcess,
                                                                 key: SigningKey) -> None:  # fmt: skip
    # Distribution refuses an index naming an unknown manifest, so the referrer is deleted after the fact.
    image, digest = new_image(plain_registry.ref("v3/missing:v1"), b"missing")
    with make_client() as client:
        _attach(client, image, digest, _bundle(key, digest[7:], None))
        [entry] = json.loads(client.get_manifest(image.repo.tag(referrers_tag(digest))).data)["manifests"]
        deleted = httpx.delete(f"{plain_registry.url}/v2/v3/missing/manifests/{entry['digest']}", trust_env=False)
        assert deleted.status_code == 202
        result = verify_image_bundles(client, image, digest, key_policy(key, None))
        [failure] = result.failures
        assert f"names manifest {entry['digest']}, which is missing" in failure
        assert "which is missing" in _reason(client, image, key, None)

    with ReferrersProxy(plain_registry.url) as proxy, make_client() as client:  # the API path: a stale listing
        image, digest = new_image(proxy.ref("v3/missing-api:v1"), b"missing-api")
        ghost = "sha256:" + "7" * 64
        proxy.referrers[("v3/missing-api", digest)] = [
            {"mediaType": mediatypes.OCI_MANIFEST, "size": 1, "digest": ghost, "artifactType": BUNDLE_ARTIFACT_TYPE}
        ]
        reason = _reason(client, image, key, None)
        assert f"the referrers list (the referrers API) names manifest {ghost}, which is missing" in reason


# --- requests (issue 13: the v3 signature's cost) -------------------------------------------------


def test_v3_signing_of_images_in_one_repository_uploads_the_empty_config_once(
    plain_registry: RegistryProcess, key: SigningKey
) -> None:
    """Counted: N images of one repository signed by one client. The empty config ``{}`` every referrer
    names goes up once (HEAD, POST, PUT), then is known; images another repository of the registry got it
    from are mounted (one POST). The referrer's subject comes from the tag's HEAD (the assemble's) with no
    HEAD by digest, and the fallback index is read three times per image (the look, right before its PUT,
    the read-back), not four."""
    from pipeline.signatures.referrer import EMPTY_DIGEST

    run = secrets.token_hex(4)  # fresh repositories: the registry outlives this test
    refs = [plain_registry.ref(f"v3/count-{run}:v{i}") for i in range(4)] + [plain_registry.ref(f"v3/other-{run}:v1")]
    images = [new_image(ref, f"count-image-{i}".encode()) for i, ref in enumerate(refs)]
    requests: list[tuple[str, str]] = []
    with make_client() as client:
        for ref in refs:
            client.head_manifest(parse_reference(ref))  # the assemble resolves each tag (one HEAD each)
        client._http.event_hooks["request"].append(lambda r: requests.append((r.method, str(r.url))))
        for image, digest in images:
            assert sign_digest_v3(client, image, digest, key) == "signed"
        for image, digest in images:
            assert has_valid_bundle(client, image, digest, key, {})
    empty_hex = EMPTY_DIGEST.removeprefix("sha256:")
    empty = [(method, url) for method, url in requests if empty_hex in url]
    # the first image: a HEAD (the test images' own config is ``{}`` already: no upload); the next three:
    # nothing; the other repository: one mount (201)
    assert [method for method, _ in empty] in (["HEAD", "POST"], ["HEAD", "POST", "PUT", "POST"]), empty
    assert "mount=" in empty[-1][1] and f"other-{run}" in empty[-1][1]
    assert not [url for method, url in requests if method == "HEAD" and "/manifests/sha256:" in url]
    for _image, digest in images:
        tag = referrers_tag(digest)
        assert sum(method == "GET" and url.endswith(f"/manifests/{tag}") for method, url in requests) == 3 + 1


def test_v3_signing_through_the_api_asks_the_referrers_once(
    plain_registry: RegistryProcess, key: SigningKey
) -> None:
    """With the referrers API, the look's listing says so: the attach does not ask the API again."""
    with ReferrersProxy(plain_registry.url) as proxy:
        image, digest = new_image(proxy.ref("v3/api-count:v1"), b"api-count-image")
        with make_client() as client:
            before = proxy.api_requests
            assert sign_digest_v3(client, image, digest, key) == "signed"
            assert proxy.api_requests == before + 1


class _SlowIndexPuts:
    """A registry client whose fallback-index PUTs wait a moment first: without turns, two writers of one
    run would both re-read the index before either PUT, and one PUT would replace the other's."""

    def __init__(self, client: RegistryClient, tag: str) -> None:
        self._client, self._tag = client, tag
        self.index_puts = 0

    def put_manifest(self, target: Any, tag_or_digest: str | None, *args: Any, **kwargs: Any) -> str:
        if tag_or_digest == self._tag:
            self.index_puts += 1
            time.sleep(0.3)
        return self._client.put_manifest(target, tag_or_digest, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_two_referrers_of_one_subject_attached_at_once_take_turns_at_its_fallback_index(
    plain_registry: RegistryProcess,
) -> None:
    """The vector's signature and its provenance go up side by side; their shared ``sha256-<hex>`` index is
    written in turn (FALLBACK_INDEX_TURNS), so each PUT builds on the other's: two PUTs, both listed, no
    redo at the read-back."""
    from pipeline.http import parallel_map
    from pipeline.signatures.referrer import FALLBACK_INDEX_TURNS

    image, digest = new_image(plain_registry.ref(f"v3/turns-{secrets.token_hex(4)}:v1"), b"turns-image")
    bundles = [b'{"bundle": "signature"}', b'{"bundle": "provenance"}']
    with make_client() as client:
        subject = client.head_manifest(image)
        assert subject is not None
        slow = _SlowIndexPuts(client, referrers_tag(digest))

        def attach(bundle: bytes) -> str:
            return attach_bundle(slow, image.repo, subject, bundle)  # type: ignore[arg-type]

        manifests = parallel_map(attach, bundles, concurrency=2)
        listed = json.loads(client.get_manifest(image.repo.tag(referrers_tag(digest))).data)
    assert slow.index_puts == 2
    assert sorted(entry["digest"] for entry in listed["manifests"]) == sorted(manifests)
    assert len(FALLBACK_INDEX_TURNS) == 0  # a tag's lock is dropped once nobody holds or waits for it
