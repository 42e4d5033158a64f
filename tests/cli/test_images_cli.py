"""sign / verify against a real Distribution registry: our signatures, and cosign's real ones."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pipeline.cosign.sigmanifest import (
    SignatureLayer,
    build_signature_manifest,
    decode_dir_signature,
    signature_config,
    signature_tag,
)
from pipeline.oci import mediatypes
from pipeline.oci.reference import parse_reference
from pipeline.secret import Secret
from tests.conftest import COSIGN_VECTORS
from tests.oci.helpers import client as make_client
from tests.oci.helpers import push_image
from tests.registry_fixtures import RegistryProcess
from tests.sigstore.log_fixtures import LocalLog, local_log

__all__ = ["local_log"]

SIGS = COSIGN_VECTORS / "image-signatures"
PASSWORD = {"COSIGN_PASSWORD": "pw"}


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from pipeline.cosign.keys import generate_key_pair
    from pipeline.secret import Secret

    directory = tmp_path_factory.mktemp("keys")
    pair = generate_key_pair(Secret("pw"))
    (directory / "cosign.key").write_bytes(pair.private_pem.reveal())
    (directory / "cosign.pub").write_bytes(pair.public_pem)
    return directory / "cosign.key", directory / "cosign.pub"


def fetch_raw_manifest(registry: RegistryProcess, repository: str, reference: str) -> bytes:
    response = httpx.get(
        f"{registry.url}/v2/{repository}/manifests/{reference}",
        headers={"Accept": mediatypes.OCI_MANIFEST},
    )
    response.raise_for_status()
    return response.content


def test_sign_then_verify_and_rerun_adds_nothing(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path]
) -> None:
    key, pub = key_pair
    with make_client() as registry_client:
        _, digest = push_image(registry_client, plain_registry.ref("app/api:v1"), b"layer-api-v1")
    image = plain_registry.ref("app/api:v1")

    signed = cli("sign", "--no-tlog-upload", image, "--key", str(key), env=PASSWORD)
    assert signed.exit_code == 0, signed.stderr
    assert signed.stdout == f"{plain_registry.ref('app/api')}@{digest} signed\n"
    assert "uses a tag, not a digest" in signed.stderr

    # An independent decoder: the .sig manifest read raw, checked from the format description.
    sig_tag = "sha256-" + digest.removeprefix("sha256:") + ".sig"
    manifest = json.loads(fetch_raw_manifest(plain_registry, "app/api", sig_tag))
    assert manifest["mediaType"] == mediatypes.OCI_MANIFEST
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    payload = httpx.get(f"{plain_registry.url}/v2/app/api/blobs/{layer['digest']}").content
    assert hashlib.sha256(payload).hexdigest() == layer["digest"].removeprefix("sha256:")
    expected = {
        "critical": {
            "identity": {"docker-reference": plain_registry.ref("app/api")},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    assert payload == json.dumps(expected, separators=(",", ":")).encode()
    public_key = serialization.load_pem_public_key(pub.read_bytes())
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))

    verified = cli("verify", image, "--key", str(pub), "--insecure-ignore-tlog")
    assert verified.exit_code == 0, verified.stderr
    assert f"Verification for {image} --" in verified.stderr
    assert json.loads(verified.stdout)[0]["critical"]["image"]["docker-manifest-digest"] == digest

    again = cli(
        "sign", "--no-tlog-upload", f"{plain_registry.ref('app/api')}@{digest}", "--key", str(key), env=PASSWORD
    )
    assert again.exit_code == 0, again.stderr
    assert again.stdout.endswith("already signed\n")
    assert json.loads(fetch_raw_manifest(plain_registry, "app/api", sig_tag)) == manifest


def test_verify_requires_tlog_unless_ignored(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path]
) -> None:
    key, pub = key_pair
    with make_client() as registry_client:
        _, digest = push_image(registry_client, plain_registry.ref("app/tlog:v1"), b"layer-tlog")
    image = f"{plain_registry.ref('app/tlog')}@{digest}"
    assert cli("sign", "--no-tlog-upload", image, "--key", str(key), env=PASSWORD).exit_code == 0
    result = cli("verify", image, "--key", str(pub))
    assert result.exit_code == 10
    assert "no transparency log entry" in result.stderr and image in result.stderr


def test_annotations_are_signed_and_checked(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path]
) -> None:
    key, pub = key_pair
    with make_client() as registry_client:
        _, digest = push_image(registry_client, plain_registry.ref("app/notes:v1"), b"layer-notes")
    image = f"{plain_registry.ref('app/notes')}@{digest}"
    assert cli("sign", "--no-tlog-upload", image, "--key", str(key), "-a", "version=v1", env=PASSWORD).exit_code == 0
    ok = cli("verify", image, "--key", str(pub), "--insecure-ignore-tlog", "-a", "version=v1", "--json")
    assert ok.exit_code == 0, ok.stderr
    [result] = json.loads(ok.stdout)
    assert result["signatures"][0]["payload"]["optional"] == {"version": "v1"}
    wrong = cli("verify", image, "--key", str(pub), "--insecure-ignore-tlog", "-a", "version=v2")
    assert wrong.exit_code == 10 and "annotation version" in wrong.stderr


def test_one_failing_image_does_not_stop_the_others(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path]
) -> None:
    key, pub = key_pair
    with make_client() as registry_client:
        _, digest = push_image(registry_client, plain_registry.ref("app/good:v1"), b"layer-good")
    missing = plain_registry.ref("app/missing:v1")
    good = f"{plain_registry.ref('app/good')}@{digest}"
    result = cli("sign", "--no-tlog-upload", missing, good, "--key", str(key), "--json", env=PASSWORD)
    assert result.exit_code == 5, result.stderr
    outcomes = {item["reference"]: item for item in json.loads(result.stdout)}
    assert outcomes[good]["status"] == "signed"
    assert outcomes[missing]["status"] == "failed" and missing in result.stderr
    assert "1 of 2 images failed" in result.stderr

    verify = cli("verify", missing, good, "--key", str(pub), "--insecure-ignore-tlog")
    assert verify.exit_code == 10
    assert good in verify.stderr  # the good image's Verification block
    assert f"({missing})" in verify.stderr


def test_recursive_signs_index_and_platforms(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path]
) -> None:
    key, pub = key_pair
    repo = plain_registry.ref("app/multi")
    with make_client() as registry_client:
        children = [
            push_image(registry_client, f"{repo}:{arch}", f"layer-{arch}".encode()) for arch in ("amd64", "arm64")
        ]
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": mediatypes.OCI_INDEX,
                "manifests": [{"mediaType": mediatypes.OCI_MANIFEST, "digest": d, "size": len(m)} for m, d in children],
            },
            separators=(",", ":"),
        ).encode()
        index_digest = registry_client.put_manifest(
            parse_reference(f"{repo}:latest"), None, index, mediatypes.OCI_INDEX
        )
    result = cli("sign", "--no-tlog-upload", f"{repo}:latest", "--recursive", "--key", str(key), "--json", env=PASSWORD)
    assert result.exit_code == 0, result.stderr
    signed = {item["digest"] for item in json.loads(result.stdout)}
    assert signed == {index_digest, children[0][1], children[1][1]}
    for digest in signed:
        assert cli("verify", f"{repo}@{digest}", "--key", str(pub), "--insecure-ignore-tlog").exit_code == 0


# --- signing with the transparency log (the embedded Rekor) ------------------------------------------


def sig_manifest(registry: RegistryProcess, repository: str, digest: str) -> dict[str, Any]:
    tag = "sha256-" + digest.removeprefix("sha256:") + ".sig"
    return json.loads(fetch_raw_manifest(registry, repository, tag))  # type: ignore[no-any-return]


def test_signed_with_the_log_verifies_without_ignore_tlog_and_resigning_adds_nothing(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path], local_log: LocalLog, tmp_path: Path
) -> None:
    key, pub = key_pair
    with make_client() as registry_client:
        _, digest = push_image(registry_client, plain_registry.ref("tlog/api:v1"), b"layer-tlog-api")
    image = f"{plain_registry.ref('tlog/api')}@{digest}"
    entries = local_log.entries
    signed = cli("sign", image, "--key", str(key), *local_log.sign_args, env=PASSWORD)
    assert signed.exit_code == 0, signed.stderr
    assert signed.stdout == f"{image} signed\n"
    # The default --bundle-format both: a hashedrekord entry (the .sig layer) and a dsse entry (the v3 bundle).
    assert local_log.entries == entries + 2

    # The layer's bundle annotation, decoded here from cosign's format description.
    [layer] = sig_manifest(plain_registry, "tlog/api", digest)["layers"]
    text = layer["annotations"]["dev.sigstore.cosign/bundle"]
    bundle = json.loads(text)
    assert text == json.dumps(bundle, separators=(",", ":")), "compact JSON, as cosign writes it"
    assert list(bundle) == ["SignedEntryTimestamp", "Payload"]
    assert list(bundle["Payload"]) == ["body", "integratedTime", "logIndex", "logID"]
    message = json.dumps(bundle["Payload"], sort_keys=True, separators=(",", ":")).encode()
    local_log.server.public_key.verify(
        base64.b64decode(bundle["SignedEntryTimestamp"]), message, ec.ECDSA(hashes.SHA256())
    )
    body = json.loads(base64.b64decode(bundle["Payload"]["body"]))
    payload = httpx.get(f"{plain_registry.url}/v2/tlog/api/blobs/{layer['digest']}").content
    assert body["spec"]["data"]["hash"]["value"] == hashlib.sha256(payload).hexdigest()
    assert body["spec"]["signature"]["content"] == layer["annotations"]["dev.cosignproject.cosign/signature"]
    assert base64.b64decode(body["spec"]["signature"]["publicKey"]["content"]) == pub.read_bytes()

    verified = cli("verify", image, "--key", str(pub), *local_log.verify_args, "--json")
    assert verified.exit_code == 0, verified.stderr
    [result] = json.loads(verified.stdout)
    assert result["signatures"][0]["log_index"] == bundle["Payload"]["logIndex"]
    # The same trust through a Sigstore trusted_root.json naming the local log's key.
    der = local_log.server.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    root = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{"baseUrl": local_log.server.url, "hashAlgorithm": "SHA2_256",
                   "publicKey": {"rawBytes": base64.b64encode(der).decode(), "keyDetails": "PKIX_ECDSA_P256_SHA_256"},
                   "logId": {"keyId": base64.b64encode(bytes.fromhex(bundle["Payload"]["logID"])).decode()}}],
    }  # fmt: skip
    (tmp_path / "trusted_root.json").write_text(json.dumps(root))
    through_root = cli("verify", image, "--key", str(pub), "--trusted-root", str(tmp_path / "trusted_root.json"))
    assert through_root.exit_code == 0, through_root.stderr
    public_good = cli("verify", image, "--key", str(pub))
    assert public_good.exit_code == 10 and "matches none of the" in public_good.stderr

    manifest = sig_manifest(plain_registry, "tlog/api", digest)
    again = cli("sign", image, "--key", str(key), *local_log.sign_args, env=PASSWORD)
    assert again.exit_code == 0 and again.stdout == f"{image} already signed\n"
    assert sig_manifest(plain_registry, "tlog/api", digest) == manifest
    assert local_log.entries == entries + 2, "nothing uploaded again"


def test_signed_earlier_without_the_log_gets_a_logged_layer(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path], local_log: LocalLog
) -> None:
    key, pub = key_pair
    with make_client() as registry_client:
        _, digest = push_image(registry_client, plain_registry.ref("tlog/old:v1"), b"layer-tlog-old")
    image = f"{plain_registry.ref('tlog/old')}@{digest}"
    assert cli("sign", "--no-tlog-upload", image, "--key", str(key), env=PASSWORD).exit_code == 0
    assert cli("verify", image, "--key", str(pub), *local_log.verify_args).exit_code == 10
    logged = cli("sign", image, "--key", str(key), *local_log.sign_args, env=PASSWORD)
    assert logged.exit_code == 0 and logged.stdout.endswith(" signed\n"), logged.stderr
    layers = sig_manifest(plain_registry, "tlog/old", digest)["layers"]
    assert len(layers) == 2 and layers[0]["digest"] == layers[1]["digest"]
    assert "dev.sigstore.cosign/bundle" not in layers[0]["annotations"]
    assert "dev.sigstore.cosign/bundle" in layers[1]["annotations"]
    assert cli("verify", image, "--key", str(pub), *local_log.verify_args).exit_code == 0
    third = cli("sign", image, "--key", str(key), *local_log.sign_args, env=PASSWORD)
    assert third.stdout.endswith("already signed\n")
    assert len(sig_manifest(plain_registry, "tlog/old", digest)["layers"]) == 2
    # Without the log, the first (unlogged) layer already counts.
    offline = cli("sign", "--no-tlog-upload", image, "--key", str(key), env=PASSWORD)
    assert offline.stdout.endswith("already signed\n")


def test_unreachable_log_fails_each_image_with_one_line(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path], local_log: LocalLog
) -> None:
    key, _ = key_pair
    with make_client() as registry_client:
        _, digest = push_image(registry_client, plain_registry.ref("tlog/down:v1"), b"layer-tlog-down")
    image = f"{plain_registry.ref('tlog/down')}@{digest}"
    bogus = ["--rekor-url", "http://127.0.0.1:9", "--rekor-public-key", str(local_log.public_key)]
    result = cli("sign", image, "--key", str(key), *bogus, env=PASSWORD)
    assert result.exit_code == 5
    assert (
        "error: cannot connect to the transparency log (after 4 attempts) (http://127.0.0.1:9/api/v1/log/entries)"
        in (result.stderr)
    )
    assert "Traceback" not in result.stderr
    head = httpx.head(
        f"{plain_registry.url}/v2/tlog/down/manifests/sha256-{digest.removeprefix('sha256:')}.sig",
        headers={"Accept": mediatypes.OCI_MANIFEST},
    )
    assert head.status_code == 404, "nothing written when the log is down"


def test_another_log_needs_its_key(cli: Any, key_pair: tuple[Path, Path], tmp_path: Path) -> None:
    key, _ = key_pair
    image = f"127.0.0.1:1/app@sha256:{'3' * 64}"
    result = cli("sign", image, "--key", str(key), "--rekor-url", "https://rekor.example.com", env=PASSWORD)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: a transparency log other than the public-good one needs its public key (https://rekor.example.com)"
    )
    assert "--rekor-public-key" in result.stderr
    plain = cli("sign", image, "--key", str(key), "--rekor-url", "http://rekor.example.com", env=PASSWORD)
    assert plain.exit_code == 3 and "plain HTTP" in plain.stderr


def test_a_loopback_log_without_a_key_is_asked_for_it(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path], local_log: LocalLog
) -> None:
    key, pub = key_pair
    with make_client() as registry_client:
        _, digest = push_image(registry_client, plain_registry.ref("tlog/loop:v1"), b"layer-tlog-loop")
    image = f"{plain_registry.ref('tlog/loop')}@{digest}"
    result = cli(
        "sign",
        image,
        "--key",
        str(key),
        "--rekor-url",
        local_log.server.url,
        env={**PASSWORD, "SIGSTORE_REKOR_PUBLIC_KEY": None},
    )
    assert result.exit_code == 0, result.stderr
    assert "trusting the key served by the transparency log on this machine" in result.stderr
    assert cli("verify", image, "--key", str(pub), *local_log.verify_args).exit_code == 0


# --- cosign's real signatures, laid out in the registry as cosign lays them out --------------------


def push_signatures(registry: RegistryProcess, repository: str, digest: str, layers: list[SignatureLayer]) -> str:
    ref = parse_reference(registry.ref(f"{repository}:{signature_tag(digest)}"))
    config = signature_config(layers)
    with make_client() as registry_client:
        for layer in layers:
            registry_client.upload_blob(ref, layer.payload)
        registry_client.upload_blob(ref, config)
        registry_client.put_manifest(ref, None, build_signature_manifest(layers, config), mediatypes.OCI_MANIFEST)
    return f"{registry.ref(repository)}@{digest}"


def vector_layer(folder: str) -> SignatureLayer:
    return decode_dir_signature((SIGS / folder / "signature-1").read_bytes(), folder)


def vector_digest(folder: str) -> str:
    return "sha256:" + hashlib.sha256((SIGS / folder / "manifest.json").read_bytes()).hexdigest()


def test_cosign_key_signature_verifies(cli: Any, plain_registry: RegistryProcess) -> None:
    image = push_signatures(
        plain_registry, "vectors/valid", vector_digest("dir-img-cosign-valid"), [vector_layer("dir-img-cosign-valid")]
    )
    ok = cli("verify", image, "--key", str(SIGS / "cosign.pub"), "--insecure-ignore-tlog")
    assert ok.exit_code == 0, ok.stderr
    wrong_key = cli("verify", image, "--key", str(SIGS / "cosign2.pub"), "--insecure-ignore-tlog")
    assert wrong_key.exit_code == 10 and "does not verify" in wrong_key.stderr


def test_cosign_key_signature_with_rekor_bundle_verifies(cli: Any, plain_registry: RegistryProcess) -> None:
    folder = "dir-img-cosign-key-rekor-valid"
    image = push_signatures(plain_registry, "vectors/key-rekor", vector_digest(folder), [vector_layer(folder)])
    ok = cli("verify", image, "--key", str(SIGS / "cosign2.pub"), "--rekor-public-key", str(SIGS / "rekor.pub"))
    assert ok.exit_code == 0, ok.stderr
    assert "transparency log was verified offline" in ok.stderr
    default_trust = cli("verify", image, "--key", str(SIGS / "cosign2.pub"))
    assert default_trust.exit_code == 0, default_trust.stderr
    other_rekor = cli(
        "verify", image, "--key", str(SIGS / "cosign2.pub"), "--rekor-public-key", str(SIGS / "cosign.pub")
    )
    assert other_rekor.exit_code == 10


def test_cosign_keyless_signature_verifies(cli: Any, plain_registry: RegistryProcess) -> None:
    folder = "dir-img-cosign-fulcio-rekor-valid"
    image = push_signatures(plain_registry, "vectors/keyless", vector_digest(folder), [vector_layer(folder)])
    base = ["--ca-roots", str(SIGS / "fulcio_v1.crt.pem"), "--rekor-public-key", str(SIGS / "rekor.pub")]
    ok = cli(
        "verify",
        image,
        *base,
        "--certificate-identity",
        "mitr@redhat.com",
        "--certificate-oidc-issuer",
        "https://github.com/login/oauth",
    )
    assert ok.exit_code == 0, ok.stderr
    wrong = cli(
        "verify",
        image,
        *base,
        "--certificate-identity",
        "someone@else.com",
        "--certificate-oidc-issuer",
        "https://github.com/login/oauth",
    )
    assert wrong.exit_code == 10 and "identity" in wrong.stderr


def test_registry_signature_manifest_verifies_keyless(cli: Any, plain_registry: RegistryProcess) -> None:
    folder = COSIGN_VECTORS / "registry-sig-manifest"
    payload = (folder / "payload.reconstructed.json").read_bytes()
    layer = SignatureLayer(
        payload=payload,
        signature_b64=(folder / "signature.b64").read_text().strip(),
        bundle=(folder / "bundle.json").read_text().strip(),
        certificate=(folder / "cert.pem").read_text(),
        chain=(folder / "chain.pem").read_text(),
    )
    digest = json.loads(payload)["critical"]["image"]["docker-manifest-digest"]
    image = push_signatures(plain_registry, "vectors/salrashid", digest, [layer])
    identity = (
        "https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/tags/v0.0.30"
    )
    ok = cli(
        "verify",
        image,
        "--certificate-identity",
        identity,
        "--certificate-oidc-issuer",
        "https://token.actions.githubusercontent.com",
    )
    assert ok.exit_code == 0, ok.stderr
    # The payload names index.docker.io/salrashid123/server_image, not this registry's repository.
    strict = cli(
        "verify",
        image,
        "--check-reference",
        "--certificate-identity",
        identity,
        "--certificate-oidc-issuer",
        "https://token.actions.githubusercontent.com",
    )
    assert strict.exit_code == 10 and "names repository" in strict.stderr


def test_containers_image_signature_with_tagged_reference(cli: Any, plain_registry: RegistryProcess) -> None:
    folder = "dir-img-cosign-valid-with-tag"
    image = push_signatures(plain_registry, "vectors/with-tag", vector_digest(folder), [vector_layer(folder)])
    ok = cli("verify", image, "--key", str(SIGS / "cosign.pub"), "--insecure-ignore-tlog", "--json")
    assert ok.exit_code == 0, ok.stderr
    [result] = json.loads(ok.stdout)
    assert result["signatures"][0]["payload"]["optional"]["creator"] == "containers/image 5.21.2-dev"


def test_unknown_key_signature_fails_with_the_reason(cli: Any, plain_registry: RegistryProcess) -> None:
    unknown = decode_dir_signature((SIGS / "unknown-cosign-key.signature").read_bytes(), "unknown")
    image = push_signatures(plain_registry, "vectors/unknown", vector_digest("dir-img-cosign-valid"), [unknown])
    for pub in ("cosign.pub", "cosign2.pub"):
        result = cli("verify", image, "--key", str(SIGS / pub), "--insecure-ignore-tlog")
        assert result.exit_code == 10
        assert "does not verify" in result.stderr


def test_payload_for_another_digest_is_a_digest_mismatch(cli: Any, plain_registry: RegistryProcess) -> None:
    layer = vector_layer("dir-img-cosign-valid")
    other = "sha256:" + "1" * 64
    image = push_signatures(plain_registry, "vectors/mismatch", other, [layer])
    result = cli("verify", image, "--key", str(SIGS / "cosign.pub"), "--insecure-ignore-tlog")
    assert result.exit_code == 10 and "digest mismatch" in result.stderr


def test_unsigned_image_has_no_signatures(cli: Any, plain_registry: RegistryProcess) -> None:
    image = f"{plain_registry.ref('vectors/unsigned')}@sha256:{'2' * 64}"
    result = cli("verify", image, "--key", str(SIGS / "cosign.pub"), "--insecure-ignore-tlog")
    assert result.exit_code == 10 and "no signatures found" in result.stderr


def test_malformed_reference_is_one_line(cli: Any, key_pair: tuple[Path, Path]) -> None:
    result = cli("verify", "UPPER/Case::bad", "--key", str(key_pair[1]))
    assert result.exit_code == 3
    assert result.stderr.startswith("error: malformed image reference") and "Traceback" not in result.stderr


# --- the CLI's registry plumbing: TLS with a private CA, Basic and Bearer auth from the environment ----


def test_sign_and_verify_over_tls_with_private_ca(
    cli: Any, tls_registry: RegistryProcess, key_pair: tuple[Path, Path]
) -> None:
    key, pub = key_pair
    assert tls_registry.cacert is not None
    with make_client(cacert=tls_registry.cacert) as registry_client:
        _, digest = push_image(registry_client, tls_registry.ref("tls/app:v1"), b"layer-tls")
    image = f"{tls_registry.ref('tls/app')}@{digest}"
    untrusted = cli("sign", "--no-tlog-upload", image, "--key", str(key), env=PASSWORD)
    assert untrusted.exit_code == 5 and "--registry-cacert" in untrusted.stderr
    cacert = ["--registry-cacert", str(tls_registry.cacert)]
    assert cli("sign", "--no-tlog-upload", image, "--key", str(key), *cacert, env=PASSWORD).exit_code == 0
    ok = cli("verify", image, "--key", str(pub), "--insecure-ignore-tlog", *cacert)
    assert ok.exit_code == 0, ok.stderr


def test_basic_auth_from_environment(
    cli: Any, basic_registry: RegistryProcess, key_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    from pipeline.oci.auth import Credential, StaticCredentials
    from pipeline.secret import Secret
    from tests.registry_fixtures import BASIC_USERS

    key, pub = key_pair
    credential = Credential("alice", Secret(BASIC_USERS["alice"]), None, "test")
    with make_client(StaticCredentials({basic_registry.host: credential})) as registry_client:
        _, digest = push_image(registry_client, basic_registry.ref("private/app:v1"), b"layer-basic")
    image = f"{basic_registry.ref('private/app')}@{digest}"
    no_config = {"DOCKER_CONFIG": str(tmp_path), "REGISTRY_USERNAME": None, "REGISTRY_PASSWORD": None}
    denied = cli("sign", "--no-tlog-upload", image, "--key", str(key), env={**PASSWORD, **no_config})
    assert denied.exit_code == 4, denied.stderr
    env = {**PASSWORD, **no_config, "REGISTRY_USERNAME": "alice", "REGISTRY_PASSWORD": BASIC_USERS["alice"]}
    signed = cli("sign", "--no-tlog-upload", image, "--key", str(key), env=env)
    assert signed.exit_code == 0, signed.stderr
    verified = cli("verify", image, "--key", str(pub), "--insecure-ignore-tlog", env=env)
    assert verified.exit_code == 0, verified.stderr
    assert BASIC_USERS["alice"] not in signed.stdout + signed.stderr + verified.stdout + verified.stderr


def test_bearer_auth_from_docker_config(
    cli: Any, token_registry: RegistryProcess, key_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    from pipeline.oci.auth import Credential, StaticCredentials
    from pipeline.secret import Secret
    from tests.registry_fixtures import TOKEN_USERS

    key, pub = key_pair
    admin = Credential("admin", Secret(TOKEN_USERS["admin"]), None, "test")
    trusted = token_registry.credential_hosts
    with make_client(StaticCredentials({token_registry.host: admin}), credential_hosts=trusted) as registry_client:
        _, digest = push_image(registry_client, token_registry.ref("team/app:v1"), b"layer-token")
    auth = base64.b64encode(f"pusher:{TOKEN_USERS['pusher']}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {token_registry.host: {"auth": auth}}}))
    env = {**PASSWORD, "DOCKER_CONFIG": str(tmp_path), "REGISTRY_USERNAME": None, "REGISTRY_PASSWORD": None}
    image = f"{token_registry.ref('team/app')}@{digest}"
    # The token issuer is another host:port than the registry: without trusting it, no credentials go there.
    anonymous = cli("sign", "--no-tlog-upload", image, "--key", str(key), env=env)
    assert anonymous.exit_code == 4, anonymous.stderr
    assert "--registry-credentials-for" in anonymous.stderr
    (issuer_host,) = trusted
    env["RELEASE_VECTOR_REGISTRY_CREDENTIALS_FOR"] = issuer_host
    signed = cli("sign", "--no-tlog-upload", image, "--key", str(key), env=env)
    assert signed.exit_code == 0, signed.stderr
    assert cli("verify", image, "--key", str(pub), "--insecure-ignore-tlog", env=env).exit_code == 0


# --- cosign v3 bundles (--bundle-format, and what verify finds) -----------------------------------

BUNDLE_V03 = COSIGN_VECTORS / "bundle-v03"
KUBEWARDEN = BUNDLE_V03 / "cosign-sign-image-v3"
ATTEST = BUNDLE_V03 / "cosign-attest-keyless"
KUBEWARDEN_DIGEST = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172"
KUBEWARDEN_IDENTITY = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0"


def referrers_index(registry: RegistryProcess, repository: str, digest: str) -> httpx.Response:
    tag = "sha256-" + digest.removeprefix("sha256:")
    return httpx.get(f"{registry.url}/v2/{repository}/manifests/{tag}", headers={"Accept": mediatypes.OCI_INDEX})


def test_sign_v3_with_the_log_then_verify_reports_the_format(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path], local_log: LocalLog
) -> None:
    key, pub = key_pair
    with make_client() as registry_client:
        _, digest = push_image(registry_client, plain_registry.ref("v3cli/api:v1"), b"layer-v3cli-api")
    image = f"{plain_registry.ref('v3cli/api')}@{digest}"
    entries = local_log.entries
    signed = cli("sign", image, "--key", str(key), "--bundle-format", "v3", *local_log.sign_args, env=PASSWORD)
    assert signed.exit_code == 0, signed.stderr
    assert signed.stdout == f"{image} signed\n" and local_log.entries == entries + 1
    assert fetch_sig_status(plain_registry, "v3cli/api", digest) == 404, "v3 alone writes no .sig tag"
    [entry] = referrers_index(plain_registry, "v3cli/api", digest).json()["manifests"]
    assert entry["artifactType"] == mediatypes.SIGSTORE_BUNDLE_V03

    verified = cli("verify", image, "--key", str(pub), *local_log.verify_args)
    assert verified.exit_code == 0, verified.stderr
    assert "Signature formats found: cosign v3 (Sigstore bundle referrer)" in verified.stderr
    [statement] = json.loads(verified.stdout)
    assert statement["subject"][0]["digest"]["sha256"] == digest.removeprefix("sha256:")
    as_json = cli("verify", image, "--key", str(pub), *local_log.verify_args, "--json")
    [result] = json.loads(as_json.stdout)
    assert result["formats_found"] == ["v3"] and [s["format"] for s in result["signatures"]] == ["v3"]
    assert result["signatures"][0]["log_index"] is not None

    again = cli("sign", image, "--key", str(key), "--bundle-format", "v3", *local_log.sign_args, env=PASSWORD)
    assert again.exit_code == 0 and again.stdout == f"{image} already signed\n"
    assert local_log.entries == entries + 1
    assert len(referrers_index(plain_registry, "v3cli/api", digest).json()["manifests"]) == 1


def fetch_sig_status(registry: RegistryProcess, repository: str, digest: str) -> int:
    tag = "sha256-" + digest.removeprefix("sha256:") + ".sig"
    return httpx.get(f"{registry.url}/v2/{repository}/manifests/{tag}").status_code


def test_sign_v3_offline_verifies_with_insecure_ignore_tlog(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path]
) -> None:
    key, pub = key_pair
    with make_client() as registry_client:
        _, digest = push_image(registry_client, plain_registry.ref("v3cli/offline:v1"), b"layer-v3cli-offline")
    image = f"{plain_registry.ref('v3cli/offline')}@{digest}"
    env = {**PASSWORD, "RELEASE_VECTOR_BUNDLE_FORMAT": "v3", "SOURCE_DATE_EPOCH": "1775719409"}
    signed = cli("sign", "--no-tlog-upload", image, "--key", str(key), "-a", "team=x", env=env)
    assert signed.exit_code == 0, signed.stderr
    [entry] = referrers_index(plain_registry, "v3cli/offline", digest).json()["manifests"]
    manifest = json.loads(fetch_raw_manifest(plain_registry, "v3cli/offline", entry["digest"]))
    assert manifest["annotations"]["org.opencontainers.image.created"] == "2026-04-09T07:23:29Z"
    ok = cli("verify", image, "--key", str(pub), "--insecure-ignore-tlog", "-a", "team=x")
    assert ok.exit_code == 0, ok.stderr
    strict = cli("verify", image, "--key", str(pub))
    assert strict.exit_code == 10 and "no dsse 0.0.1 transparency-log entry" in strict.stderr
    wrong_note = cli("verify", image, "--key", str(pub), "--insecure-ignore-tlog", "-a", "team=y")
    assert wrong_note.exit_code == 10 and "annotation team=y is missing" in wrong_note.stderr
    bad = cli("sign", "--no-tlog-upload", image, "--key", str(key), "--bundle-format", "v4", env=PASSWORD)
    assert bad.exit_code == 2 and "--bundle-format must be legacy, v3 or both" in bad.stderr


def test_sign_both_formats_verify_reports_both_and_resigning_adds_nothing(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path], local_log: LocalLog
) -> None:
    key, pub = key_pair
    with make_client() as registry_client:
        _, digest = push_image(registry_client, plain_registry.ref("v3cli/both:v1"), b"layer-v3cli-both")
    image = f"{plain_registry.ref('v3cli/both')}@{digest}"
    entries = local_log.entries
    args = ["--key", str(key), "--bundle-format", "both", *local_log.sign_args]
    assert cli("sign", image, *args, env=PASSWORD).exit_code == 0
    assert local_log.entries == entries + 2, "one hashedrekord and one dsse entry"
    result = cli("verify", image, "--key", str(pub), *local_log.verify_args, "--json")
    assert result.exit_code == 0, result.stderr
    [report] = json.loads(result.stdout)
    assert report["formats_found"] == ["legacy", "v3"]
    assert sorted(s["format"] for s in report["signatures"]) == ["legacy", "v3"]
    text = cli("verify", image, "--key", str(pub), *local_log.verify_args)
    assert "found: legacy (.sig tag), cosign v3 (Sigstore bundle referrer)" in text.stderr
    sig_before = sig_manifest(plain_registry, "v3cli/both", digest)
    index_before = referrers_index(plain_registry, "v3cli/both", digest).content
    again = cli("sign", image, *args, env=PASSWORD)
    assert again.exit_code == 0 and again.stdout == f"{image} already signed\n"
    assert local_log.entries == entries + 2
    assert sig_manifest(plain_registry, "v3cli/both", digest) == sig_before
    assert referrers_index(plain_registry, "v3cli/both", digest).content == index_before


def test_sign_v3_through_the_referrers_api_writes_no_fallback_index(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path]
) -> None:
    from tests.referrers_proxy import ReferrersProxy

    key, pub = key_pair
    with ReferrersProxy(plain_registry.url) as proxy:
        with make_client() as registry_client:
            _, digest = push_image(registry_client, proxy.ref("v3cli/api-path:v1"), b"layer-v3cli-api-path")
        image = f"{proxy.ref('v3cli/api-path')}@{digest}"
        signed = cli("sign", "--no-tlog-upload", image, "--key", str(key), "--bundle-format", "v3", env=PASSWORD)
        assert signed.exit_code == 0, signed.stderr
        assert len(proxy.referrers[("v3cli/api-path", digest)]) == 1
        ok = cli("verify", image, "--key", str(pub), "--insecure-ignore-tlog")
        assert ok.exit_code == 0, ok.stderr
    assert referrers_index(plain_registry, "v3cli/api-path", digest).status_code == 404


def attach_vector_bundle(repository: str, subject: Any, bundle: bytes, predicate_type: str) -> None:
    from pipeline.signatures.referrer import attach_bundle

    with make_client() as registry_client:
        attach_bundle(registry_client, parse_reference(repository).repo, subject, bundle,
                      created="2026-04-09T07:23:29Z", predicate_type=predicate_type)  # fmt: skip


def test_real_cosign_v3_image_signature_verifies_keyless(cli: Any, plain_registry: RegistryProcess) -> None:
    from pipeline.oci.client import Descriptor

    layer = (KUBEWARDEN / "kubewarden-controller-v1.34.0.bundle.layer.derived.json").read_bytes()
    pretty = json.loads((KUBEWARDEN / "kubewarden-controller-v1.34.0.bundle.pretty.json").read_bytes())
    assert json.dumps(pretty, separators=(",", ":"), ensure_ascii=False).encode() == layer
    assert hashlib.sha256(layer).hexdigest() == "121ecb638da858178a0d57de5686709769f15b47d9fa5e3270dd7c64aea046d5"
    # The image itself cannot be pushed (its manifest is not in the vectors): the referrer goes into the
    # fallback index at sha256-c811…, and a digest reference needs no image manifest.
    subject = Descriptor(mediatypes.OCI_INDEX, KUBEWARDEN_DIGEST, 1000)
    attach_vector_bundle(plain_registry.ref("kubewarden/kubewarden-controller"), subject, layer,
                         "https://sigstore.dev/cosign/sign/v1")  # fmt: skip
    image = f"{plain_registry.ref('kubewarden/kubewarden-controller')}@{KUBEWARDEN_DIGEST}"
    trust = ["--trusted-root", str(BUNDLE_V03 / "trusted_root.public-good.json")]
    issuer = ["--certificate-oidc-issuer", "https://token.actions.githubusercontent.com"]
    ok = cli("verify", image, "--certificate-identity", KUBEWARDEN_IDENTITY, *issuer, *trust, "--json")
    assert ok.exit_code == 0, ok.stderr
    [result] = json.loads(ok.stdout)
    [signature] = result["signatures"]
    assert signature["format"] == "v3" and signature["signer"] == KUBEWARDEN_IDENTITY
    assert signature["log_index"] == 1261105807 and signature["integrated_time"] == 1775719409
    wrong = cli("verify", image, "--certificate-identity", "https://example.com/other", *issuer, *trust)
    assert wrong.exit_code == 10 and "cosign v3 bundle:" in wrong.stderr and "Traceback" not in wrong.stderr


def test_real_cosign_attestation_bundle_is_read_as_an_attestation_not_a_signature(
    cli: Any, plain_registry: RegistryProcess
) -> None:
    from pipeline.cosign.certificate import IdentityPolicy
    from pipeline.cosign.trust import (
        ct_log_keys_from_trusted_root,
        fulcio_certificates_from_trusted_root,
        rekor_keys_from_trusted_root,
    )
    from pipeline.cosign.verify import KeylessTrust, VerificationPolicy
    from pipeline.signatures.referrer import verify_image_bundles
    from pipeline.sigstore.bundle import COSIGN_ATTESTATION_PREDICATE_TYPE

    manifest = (ATTEST / "empty-image.manifest.derived.json").read_bytes()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert digest == "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
    config = (  # GGCR empty.Image's config file, serialised by Go's json.Marshal
        b'{"architecture":"","created":"0001-01-01T00:00:00Z","os":"",'
        b'"rootfs":{"type":"layers","diff_ids":null},"config":{}}'
    )
    assert json.loads(manifest)["config"]["digest"] == "sha256:" + hashlib.sha256(config).hexdigest()
    ref = parse_reference(plain_registry.ref("attest/empty:latest"))
    with make_client() as registry_client:  # the exact empty.Image manifest cosign's test attaches to
        registry_client.upload_blob(ref, config)
        assert registry_client.put_manifest(ref, digest, manifest, mediatypes.DOCKER_MANIFEST) == digest
        subject = registry_client.head_manifest(ref.repo.digest(digest))
    assert subject is not None and subject.media_type == mediatypes.DOCKER_MANIFEST
    bundle = (ATTEST / "oci-attestation.sigstore.json").read_bytes()
    attach_vector_bundle(str(ref.repo), subject, bundle, COSIGN_ATTESTATION_PREDICATE_TYPE)

    root = (BUNDLE_V03 / "trusted_root.public-good.json").read_bytes()
    roots, intermediates = fulcio_certificates_from_trusted_root(root, "root")
    identity = IdentityPolicy("cody@soyland.com", None, "https://github.com/login/oauth", None)
    ct_logs = tuple(ct_log_keys_from_trusted_root(root, "root"))
    policy = VerificationPolicy(None, KeylessTrust(identity, tuple(roots), tuple(intermediates), ct_logs),
                                tuple(rekor_keys_from_trusted_root(root, "root")))  # fmt: skip
    image = ref.repo.digest(digest)
    with make_client() as registry_client:
        result = verify_image_bundles(
            registry_client, image, digest, policy, predicate_type=COSIGN_ATTESTATION_PREDICATE_TYPE
        )
    [verified] = result.verified
    assert verified.signature.signer == "cody@soyland.com" and verified.signature.log_index == 175508996
    # `verify` looks for image signatures: the attestation (another predicateType) is not one.
    signature = cli("verify", str(image), "--certificate-identity", "cody@soyland.com",
                    "--certificate-oidc-issuer", "https://github.com/login/oauth",
                    "--trusted-root", str(BUNDLE_V03 / "trusted_root.public-good.json"))  # fmt: skip
    assert signature.exit_code == 10 and "no signatures found" in signature.stderr


def test_a_message_signature_bundle_is_not_an_image_signature(cli: Any, plain_registry: RegistryProcess) -> None:
    from pipeline.oci.client import Descriptor

    key_signed = BUNDLE_V03 / "key-signed"
    artifact = (key_signed / "a.txt").read_bytes()
    digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    repository = plain_registry.ref("v3cli/message")
    attach_vector_bundle(repository, Descriptor(mediatypes.OCI_MANIFEST, digest, len(artifact)),
                         (key_signed / "bundle.sigstore.json").read_bytes(),
                         "https://sigstore.dev/cosign/sign/v1")  # fmt: skip
    result = cli("verify", f"{repository}@{digest}", "--key", str(key_signed / "key.pub"),
                 "--trusted-root", str(BUNDLE_V03 / "trusted_root.public-good.json"))  # fmt: skip
    assert result.exit_code == 10
    assert "holds a message signature, not the DSSE envelope" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("make", "algorithm"),
    [
        (lambda: ec.generate_private_key(ec.SECP384R1()), "sha384"),
        (lambda: ec.generate_private_key(ec.SECP521R1()), "sha512"),
        (lambda: ed25519.Ed25519PrivateKey.generate(), "sha512"),
    ],
    ids=["p384", "p521", "ed25519"],
)
def test_other_key_types_sign_images_into_the_log_with_their_own_hash(
    cli: Any, plain_registry: RegistryProcess, local_log: LocalLog, tmp_path: Path, make: Any, algorithm: str
) -> None:
    """As cosign: a P-384 key signs with SHA-384, P-521 with SHA-512, Ed25519 with Ed25519ph; the
    hashedrekord entry records the payload's digest by that hash (Rekor takes only sha512 for Ed25519)."""
    from pipeline.cosign.keys import encrypt_key_pair

    pair = encrypt_key_pair(make(), Secret("pw"))
    key, pub = tmp_path / "other.key", tmp_path / "other.pub"
    key.write_bytes(pair.private_pem.reveal())
    pub.write_bytes(pair.public_pem)
    repository = f"keytypes/{algorithm}-{tmp_path.name[-8:]}".lower()
    with make_client() as registry_client:
        _, digest = push_image(registry_client, plain_registry.ref(f"{repository}:v1"), repository.encode())
    image = f"{plain_registry.ref(repository)}@{digest}"
    signed = cli("sign", image, "--key", str(key), *local_log.sign_args, env={"COSIGN_PASSWORD": "pw"})
    assert signed.exit_code == 0, signed.stderr
    [layer] = sig_manifest(plain_registry, repository, digest)["layers"]
    bundle = json.loads(layer["annotations"]["dev.sigstore.cosign/bundle"])
    body = json.loads(base64.b64decode(bundle["Payload"]["body"]))
    payload = httpx.get(f"{plain_registry.url}/v2/{repository}/blobs/{layer['digest']}").content
    expected = {"algorithm": algorithm, "value": hashlib.new(algorithm, payload).hexdigest()}
    assert body["spec"]["data"]["hash"] == expected

    verified = cli("verify", image, "--key", str(pub), *local_log.verify_args)
    assert verified.exit_code == 0, verified.stderr
    again = cli("sign", image, "--key", str(key), *local_log.sign_args, env={"COSIGN_PASSWORD": "pw"})
    assert again.exit_code == 0 and again.stdout == f"{image} already signed\n"
    # cosign v3's DSSE bundle: the envelope is signed with pure Ed25519, logged as a dsse entry.
    v3 = cli("sign", image, "--key", str(key), "--bundle-format", "v3", *local_log.sign_args,
             env={"COSIGN_PASSWORD": "pw"})  # fmt: skip
    assert v3.exit_code == 0, v3.stderr
    both = cli("verify", image, "--key", str(pub), *local_log.verify_args, "--json")
    assert both.exit_code == 0, both.stderr
    assert json.loads(both.stdout)[0]["formats_found"] == ["legacy", "v3"]
