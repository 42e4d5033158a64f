"""``--key pkcs11:…`` and ``--key awskms://…`` through the real commands: an image in the local registry
signed with a SoftHSM2 token key and a (moto) KMS key, verified with ``public-key``'s output by our verify
and the raw signature by openssl; ``sign-blob`` with both; ``generate-key-pair --kms``; the faults' exit codes."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.keystore_fixtures import AWS_ENV, PIN, PIN_TOKEN, Kms, KmsStandIn, SoftHsm, kms_error
from tests.oci.helpers import client as make_client
from tests.oci.helpers import push_image
from tests.registry_fixtures import RegistryProcess, free_port
from tests.sigstore.log_fixtures import LocalLog, local_log

__all__ = ["local_log"]


def _openssl_verifies(folder: Path, pem: bytes, data: bytes, signature: bytes, digest: str = "sha256") -> bool:
    (folder / "k.pem").write_bytes(pem)
    (folder / "data").write_bytes(data)
    (folder / "sig").write_bytes(signature)
    done = subprocess.run(["openssl", "dgst", f"-{digest}", "-verify", str(folder / "k.pem"), "-signature",
                           str(folder / "sig"), str(folder / "data")], capture_output=True, text=True)  # fmt: skip
    return done.returncode == 0


def _sign_verify_image(cli: Any, registry: RegistryProcess, log: LocalLog, tmp_path: Path, key: str,
                       repository: str, env: dict[str, str | None] | None = None) -> None:  # fmt: skip
    with make_client() as registry_client:
        _, digest = push_image(registry_client, registry.ref(f"{repository}:v1"), f"layer-{repository}".encode())
    image = f"{registry.ref(repository)}@{digest}"
    public = cli("public-key", "--key", key, env=env)
    assert public.exit_code == 0, public.stderr
    assert public.stdout.startswith("-----BEGIN PUBLIC KEY-----\n")
    pub = tmp_path / "token.pub"
    pub.write_text(public.stdout)

    signed = cli("sign", image, "--key", key, *log.sign_args, env=env)
    assert signed.exit_code == 0, signed.stderr
    assert signed.stdout == f"{image} signed\n"
    verified = cli("verify", image, "--key", str(pub), *log.verify_args)
    assert verified.exit_code == 0, verified.stderr

    # The raw signature over the exact payload, checked by openssl; the log entry a key file's would be.
    tag = "sha256-" + digest.removeprefix("sha256:") + ".sig"
    manifest = httpx.get(f"{registry.url}/v2/{repository}/manifests/{tag}",
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).json()  # fmt: skip
    [layer] = manifest["layers"]
    payload = httpx.get(f"{registry.url}/v2/{repository}/blobs/{layer['digest']}").content
    signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    assert _openssl_verifies(tmp_path, pub.read_bytes(), payload, signature)
    bundle = json.loads(layer["annotations"]["dev.sigstore.cosign/bundle"])
    body = json.loads(base64.b64decode(bundle["Payload"]["body"]))
    assert body["kind"] == "hashedrekord"
    assert body["spec"]["data"]["hash"] == {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}
    assert base64.b64decode(body["spec"]["signature"]["publicKey"]["content"]) == pub.read_bytes()

    again = cli("sign", image, "--key", key, *log.sign_args, env=env)
    assert again.exit_code == 0 and again.stdout == f"{image} already signed\n"


def test_sign_and_verify_an_image_with_a_token_key(cli: Any, plain_registry: RegistryProcess, local_log: LocalLog,
                                                   softhsm: SoftHsm, tmp_path: Path) -> None:  # fmt: skip
    _sign_verify_image(cli, plain_registry, local_log, tmp_path, softhsm.uri("p256"), "pkcs11/app")


def test_sign_and_verify_an_image_with_a_kms_key(cli: Any, plain_registry: RegistryProcess, local_log: LocalLog,
                                                 kms: Kms, aws_env: object, tmp_path: Path) -> None:  # fmt: skip
    _sign_verify_image(cli, plain_registry, local_log, tmp_path, kms.uri("alias/rv-p256"), "awskms/app")


def test_sign_blob_with_token_and_kms_keys(cli: Any, softhsm: SoftHsm, kms: Kms, aws_env: dict[str, str],
                                           tmp_path: Path) -> None:  # fmt: skip
    blob = tmp_path / "blob.txt"
    blob.write_bytes(b"release notes\n")
    for key, digest in ((softhsm.uri("p384"), "sha384"), (kms.uri("alias/rv-rsa"), "sha256")):
        public = cli("public-key", "--key", key)
        assert public.exit_code == 0, public.stderr
        signed = cli("sign-blob", str(blob), "--key", key, "--no-tlog-upload")
        assert signed.exit_code == 0, signed.stderr
        assert _openssl_verifies(tmp_path, public.stdout.encode(), blob.read_bytes(),
                                 base64.b64decode(signed.stdout.strip()), digest)  # fmt: skip


def test_generate_key_pair_on_the_token_and_in_kms(cli: Any, softhsm: SoftHsm, kms: Kms, aws_env: dict[str, str],
                                                   tmp_path: Path) -> None:  # fmt: skip
    for name, uri in (("token", softhsm.uri("generated")), ("kms", kms.uri("alias/rv-generated"))):
        prefix = tmp_path / name
        made = cli("generate-key-pair", "--kms", uri, "--output-key-prefix", str(prefix), "--json")
        assert made.exit_code == 0, made.stderr
        assert json.loads(made.stdout)["public_key"] == f"{prefix}.pub"
        assert not Path(f"{prefix}.key").exists()
        assert cli("public-key", "--key", uri).stdout == Path(f"{prefix}.pub").read_text()
        assert PIN not in made.stdout + made.stderr
        again = cli("generate-key-pair", "--kms", uri, "--output-key-prefix", str(tmp_path / f"{name}2"))
        assert again.exit_code == 8, again.stderr


def _one_line_error(result: Any, code: int, text: str, *secrets: str) -> None:
    assert result.exit_code == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and text in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    for secret in secrets:
        assert secret not in result.stderr + result.stdout


def test_pkcs11_faults(cli: Any, softhsm: SoftHsm, tmp_path: Path) -> None:
    blob = tmp_path / "b"
    blob.write_bytes(b"x")
    wrong = cli("sign-blob", str(blob), "--no-tlog-upload", "--key", softhsm.uri("p256", token=PIN_TOKEN, pin="97531"))
    _one_line_error(wrong, 6, "the token refused the PIN", "97531")
    missing = f"pkcs11:token=rv-test;object=p256?module-path=/nowhere/lib.so&pin-value={PIN}"
    _one_line_error(cli("public-key", "--key", missing), 6, "cannot load the PKCS#11 module /nowhere/lib.so", PIN)
    _one_line_error(cli("public-key", "--key", softhsm.uri("p256", token="nope")), 6, "no such PKCS#11 token", PIN)
    _one_line_error(cli("public-key", "--key", softhsm.uri("nope")), 6, "the token has no such", PIN)
    _one_line_error(cli("public-key", "--key", softhsm.uri("ed25519")), 6, "unsupported key type", PIN)
    _one_line_error(cli("public-key", "--key", "pkcs11:object=k;bad=1?pin-value=86420"), 6, "unknown pkcs11", "86420")


def test_kms_faults(cli: Any, kms: Kms, aws_env: dict[str, str]) -> None:
    secret = AWS_ENV["AWS_SECRET_ACCESS_KEY"]
    with KmsStandIn(kms.url, [kms_error("AccessDeniedException", "not authorized")]) as server:
        denied = cli("public-key", "--key", kms.uri("alias/rv-p256", host=server.host))
    _one_line_error(denied, 4, "KMS refused the request: AccessDeniedException", secret)
    with KmsStandIn(kms.url, [kms_error("ThrottlingException")]) as server:
        throttled_once = cli("public-key", "--key", kms.uri("alias/rv-p256", host=server.host))
    assert throttled_once.exit_code == 0, throttled_once.stderr
    unreachable = cli("public-key", "--key", f"awskms://127.0.0.1:{free_port()}/alias/rv-p256")
    _one_line_error(unreachable, 5, "KMS is unreachable", secret)
    _one_line_error(cli("public-key", "--key", kms.uri("alias/none")), 6, "KMS has no such key", secret)
    _one_line_error(cli("public-key", "--key", kms.uri("alias/rv-aes")), 6, "not SIGN_VERIFY", secret)


@pytest.mark.parametrize("pin_in", ["env", "file"])
def test_pin_from_the_environment_or_a_file(cli: Any, softhsm: SoftHsm, tmp_path: Path, pin_in: str) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    base = f"pkcs11:token=rv-test;object=p256?module-path={softhsm.module}"
    key = base if pin_in == "env" else f"{base}&pin-source={pin_file}"
    result = cli("public-key", "--key", key, env={"COSIGN_PKCS11_PIN": PIN if pin_in == "env" else None})
    assert result.exit_code == 0, result.stderr


def test_v3_bundle_signed_by_a_token_key_verifies(cli: Any, plain_registry: RegistryProcess, local_log: LocalLog,
                                                  softhsm: SoftHsm, tmp_path: Path) -> None:  # fmt: skip
    """DSSE (cosign v3 bundles) signs through the same key handle: the envelope verifies with the PEM."""
    with make_client() as registry_client:
        _, digest = push_image(registry_client, plain_registry.ref("pkcs11/v3:v1"), b"layer-pkcs11-v3")
    image = f"{plain_registry.ref('pkcs11/v3')}@{digest}"
    key = softhsm.uri("p384")
    pub = tmp_path / "p384.pub"
    pub.write_text(cli("public-key", "--key", key).stdout)
    signed = cli("sign", image, "--key", key, "--bundle-format", "both", *local_log.sign_args)
    assert signed.exit_code == 0, signed.stderr
    verified = cli("verify", image, "--key", str(pub), *local_log.verify_args, "--json")
    assert verified.exit_code == 0, verified.stderr
    [result] = json.loads(verified.stdout)
    assert {s["format"] for s in result["signatures"]} == {"legacy", "v3"}


def test_dry_run_release_takes_a_key_uri(cli: Any, plain_registry: RegistryProcess, kms: Kms, aws_env: object,
                                         tmp_path: Path) -> None:  # fmt: skip
    source = tmp_path / "release.yaml"
    with make_client() as registry_client:
        push_image(registry_client, plain_registry.ref("dry/app:v1"), b"layer-dry")
    source.write_text(f"docker-images:\n  app:\n    name: {plain_registry.ref('dry/app')}\n    tag: v1\n")
    result = cli("release", "v1.0.0", "--source", str(source), "--repository", plain_registry.ref("dry/releases"),
                 "--key", kms.uri("alias/rv-p256"), "--release-dir", str(tmp_path / "out"), "--dry-run", "--json",
                 "--git-revision", "0" * 40)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert {a["kind"] for a in json.loads(result.stdout)} >= {"sign-image", "sign-vector"}
