"""sign --keyless / verify keyless through the CLI, on the embedded stack: a test OIDC issuer (GitHub-workflow
tokens), the Fulcio stand-in, the Rekor stand-in and a real Distribution registry."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.cosign.keys import generate_key_pair
from pipeline.oci.reference import parse_reference
from pipeline.rehearsal.fulcio_server import FulcioServer, TrustedIssuer
from pipeline.secret import Secret
from pipeline.signatures.formats import layouts_for
from pipeline.signatures.sign import sign_images
from pipeline.signatures.signers import KeylessSigner
from pipeline.sigstore.fulcio_client import FulcioClient
from pipeline.sigstore.oidc import parse_identity_token
from pipeline.sigstore.rekor_client import RekorClient
from tests.oci.helpers import client as make_client
from tests.oci.helpers import push_image
from tests.registry_fixtures import RegistryProcess
from tests.sigstore.keyless_fixtures import WORKFLOW, KeylessStack, keyless_stack

__all__ = ["keyless_stack"]

PASSWORD = {"COSIGN_PASSWORD": "pw"}
NO_AMBIENT_TOKEN: dict[str, str | None] = {
    "SIGSTORE_ID_TOKEN": None,
    "ACTIONS_ID_TOKEN_REQUEST_URL": None,
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": None,
}


@dataclass(frozen=True)
class Files:
    """The stack's trust material and a GitHub-workflow identity token, as files."""

    stack: KeylessStack
    token: Path
    roots: Path  # the Fulcio stand-in's root (what a verifier passes as --ca-roots)
    chain: Path  # intermediate + root (--fulcio-ca-roots when signing; the intermediate for v3 verification)
    intermediates: Path
    rekor_key: Path
    other_root: Path
    key: Path
    pub: Path
    token_value: str
    ct_log: Path  # the key of the CT log whose SCT the stand-in embeds (--ct-log-public-key)

    @property
    def identity(self) -> str:
        return WORKFLOW.certificate_identity

    @property
    def issuer(self) -> str:
        return self.stack.github_issuer.issuer

    def sign_args(self, *, with_token: bool = True) -> list[str]:
        token = ["--identity-token", str(self.token)] if with_token else []
        return [
            "--keyless",
            *token,
            "--fulcio-url",
            self.stack.fulcio.url,
            "--fulcio-ca-roots",
            str(self.chain),
            "--rekor-url",
            self.stack.log.url,
            "--rekor-public-key",
            str(self.rekor_key),
            "--ct-log-public-key",
            str(self.ct_log),
        ]

    def verify_args(
        self, identity: str | None = None, issuer: str | None = None, roots: Path | None = None
    ) -> list[str]:
        return [
            "--certificate-identity",
            identity or self.identity,
            "--certificate-oidc-issuer",
            issuer or self.issuer,
            "--ca-roots",
            str(roots or self.roots),
            "--rekor-public-key",
            str(self.rekor_key),
            "--ct-log-public-key",
            str(self.ct_log),
        ]


@pytest.fixture(scope="module")
def files(keyless_stack: KeylessStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Files]:
    directory = tmp_path_factory.mktemp("keyless")
    stack = keyless_stack
    token = stack.github_issuer.github_token(lifetime=3600)
    (directory / "token").write_text(token)
    (directory / "roots.pem").write_bytes(stack.fulcio.roots_pem())
    (directory / "chain.pem").write_bytes(stack.fulcio.chain_pem())
    (directory / "intermediates.pem").write_bytes(stack.fulcio.intermediates_pem())
    (directory / "rekor.pub").write_bytes(stack.log.public_key_pem())
    (directory / "ct-log.pub").write_bytes(stack.fulcio.ct_log_public_key_pem())
    pair = generate_key_pair(Secret("pw"))
    (directory / "cosign.key").write_bytes(pair.private_pem.reveal())
    (directory / "cosign.pub").write_bytes(pair.public_pem)
    with FulcioServer() as other:
        (directory / "other-root.pem").write_bytes(other.roots_pem())
    yield Files(
        stack,
        directory / "token",
        directory / "roots.pem",
        directory / "chain.pem",
        directory / "intermediates.pem",
        directory / "rekor.pub",
        directory / "other-root.pem",
        directory / "cosign.key",
        directory / "cosign.pub",
        token,
        directory / "ct-log.pub",
    )


def sig_manifest(registry: RegistryProcess, repository: str, digest: str) -> dict[str, Any]:
    tag = "sha256-" + digest.removeprefix("sha256:") + ".sig"
    response = httpx.get(
        f"{registry.url}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def pushed(registry: RegistryProcess, repository: str) -> tuple[str, str]:
    with make_client() as client:
        _, digest = push_image(client, registry.ref(f"{repository}:v1"), f"layer {repository}".encode())
    return f"{registry.ref(repository)}@{digest}", digest


def assert_no_token(files: Files, *texts: str) -> None:
    for text in texts:
        assert files.token_value not in text
        assert files.token_value.split(".")[1] not in text  # not even the claims part


def test_sign_keyless_verifies_and_a_rerun_adds_nothing(
    cli: Any, plain_registry: RegistryProcess, files: Files
) -> None:
    image, digest = pushed(plain_registry, "keyless/api")
    signed = cli("sign", image, *files.sign_args(), env=NO_AMBIENT_TOKEN)
    assert signed.exit_code == 0, signed.stderr
    assert signed.stdout == f"{image} signed\n"
    assert f"keyless signing as {files.identity}" in signed.stderr and files.issuer in signed.stderr
    [layer] = sig_manifest(plain_registry, "keyless/api", digest)["layers"]
    annotations = layer["annotations"]
    assert {"dev.sigstore.cosign/certificate", "dev.sigstore.cosign/chain", "dev.sigstore.cosign/bundle"} <= set(
        annotations
    )

    verified = cli("verify", image, *files.verify_args(), "--json")
    assert verified.exit_code == 0, verified.stderr
    [result] = json.loads(verified.stdout)
    [signature] = result["signatures"]
    assert signature["signer"] == files.identity and signature["issuer"] == files.issuer
    assert signature["log_index"] is not None

    again = cli("sign", image, *files.sign_args(), env=NO_AMBIENT_TOKEN)
    assert again.exit_code == 0, again.stderr
    assert again.stdout == f"{image} already signed\n"
    assert len(sig_manifest(plain_registry, "keyless/api", digest)["layers"]) == 1
    assert_no_token(files, signed.stdout, signed.stderr, again.stdout, again.stderr)


def test_the_certificate_must_carry_an_sct_from_a_trusted_ct_log(
    cli: Any, plain_registry: RegistryProcess, files: Files, tmp_path: Path
) -> None:
    """As cosign: without the CT log's key the stand-in's SCT is not trusted (exit 10, the way out named);
    --insecure-ignore-sct accepts that with a warning; the right key (also from the env) verifies it."""
    image, _ = pushed(plain_registry, "keyless/sct")
    assert cli("sign", image, *files.sign_args(), env=NO_AMBIENT_TOKEN).exit_code == 0
    without_key = [arg for arg in files.verify_args() if arg not in ("--ct-log-public-key", str(files.ct_log))]
    untrusted = cli("verify", image, *without_key, env={"SIGSTORE_CT_LOG_PUBLIC_KEY_FILE": None})
    assert untrusted.exit_code == 10
    assert "no valid SCT" in untrusted.stderr and "which is not trusted" in untrusted.stderr
    assert "--insecure-ignore-sct" in untrusted.stderr and "Traceback" not in untrusted.stderr

    other = tmp_path / "other-ct.pub"
    with FulcioServer() as unrelated:
        other.write_bytes(unrelated.ct_log_public_key_pem())
    wrong = cli("verify", image, *without_key, "--ct-log-public-key", str(other))
    assert wrong.exit_code == 10 and "no valid SCT" in wrong.stderr

    ignored = cli("verify", image, *without_key, "--insecure-ignore-sct", "--json")
    assert ignored.exit_code == 0, ignored.stderr
    assert "warning: skipping the certificate's SCT check" in ignored.stderr
    from_env = cli("verify", image, *without_key, env={"SIGSTORE_CT_LOG_PUBLIC_KEY_FILE": str(files.ct_log)})
    assert from_env.exit_code == 0, from_env.stderr


def test_signing_checks_the_sct_of_fulcios_certificate_before_signing(
    cli: Any, plain_registry: RegistryProcess, files: Files, tmp_path: Path
) -> None:
    """As cosign sign: a certificate whose SCT is not from the given CT log is refused before any write."""
    image, digest = pushed(plain_registry, "keyless/sct-sign")
    other = tmp_path / "other-ct.pub"
    with FulcioServer() as unrelated:
        other.write_bytes(unrelated.ct_log_public_key_pem())
    args = [arg if arg != str(files.ct_log) else str(other) for arg in files.sign_args()]
    refused = cli("sign", image, *args, env=NO_AMBIENT_TOKEN)
    assert refused.exit_code == 5, refused.stderr
    assert "Fulcio's certificate: the signing certificate has no valid SCT" in refused.stderr
    assert httpx.get(f"{plain_registry.url}/v2/keyless/sct-sign/manifests/sha256-"
                     f"{digest.removeprefix('sha256:')}.sig").status_code == 404  # fmt: skip
    unchecked = [a for a in files.sign_args() if a not in ("--ct-log-public-key", str(files.ct_log))]
    noted = cli("sign", image, *unchecked, env={**NO_AMBIENT_TOKEN, "SIGSTORE_CT_LOG_PUBLIC_KEY_FILE": None})
    assert noted.exit_code == 0, noted.stderr
    assert "certificates is not checked (pass --ct-log-public-key)" in noted.stderr


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"identity": "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main"},
         "certificate identity is not"),
        ({"issuer": "https://token.actions.githubusercontent.com"}, "OIDC issuer is not"),
        ({"roots": "other"}, "does not chain to a trusted root"),
    ],
)  # fmt: skip
def test_keyless_verification_rejects_with_the_reason(
    cli: Any, plain_registry: RegistryProcess, files: Files, change: dict[str, str], reason: str
) -> None:
    image, _ = pushed(plain_registry, "keyless/rejected")
    assert cli("sign", image, *files.sign_args(), env=NO_AMBIENT_TOKEN).exit_code == 0
    roots = files.other_root if change.get("roots") else None
    result = cli("verify", image, *files.verify_args(change.get("identity"), change.get("issuer"), roots))
    assert result.exit_code == 10
    assert reason in result.stderr and image in result.stderr


def test_a_certificate_expired_at_integrated_time_is_rejected(
    cli: Any, plain_registry: RegistryProcess, files: Files
) -> None:
    """Fulcio's clock an hour behind: the certificate had expired when the log integrated the signature."""
    image, _ = pushed(plain_registry, "keyless/expired")
    an_hour_ago = time.time() - 3600
    token = parse_identity_token(Secret(files.token_value), "test")
    past = FulcioServer([TrustedIssuer(files.issuer, "github-workflow")], clock=lambda: an_hour_ago)
    with (
        past,
        FulcioClient(past.url) as fulcio,
        RekorClient(files.stack.log.url, [files.stack.log.public_key]) as rekor,
        make_client() as registry,
    ):
        signing = KeylessSigner(
            token, fulcio, roots=(past.root,), clock=lambda: datetime.fromtimestamp(an_hour_ago + 1, UTC)
        )
        [outcome] = sign_images(registry, [parse_reference(image)], [signing], layouts_for("legacy", registry),
                                log=rekor)
        assert outcome.status == "signed", outcome.error
        roots = files.token.parent / "past-root.pem"
        roots.write_bytes(past.roots_pem())
    result = cli("verify", image, *files.verify_args(roots=roots))
    assert result.exit_code == 10
    assert "signing certificate was not valid at" in result.stderr


def test_keyless_and_key_give_both_signatures_and_both_verify(
    cli: Any, plain_registry: RegistryProcess, files: Files
) -> None:
    image, digest = pushed(plain_registry, "keyless/both")
    args = ["--key", str(files.key), *files.sign_args()]
    signed = cli("sign", image, *args, env={**PASSWORD, **NO_AMBIENT_TOKEN})
    assert signed.exit_code == 0, signed.stderr
    layers = sig_manifest(plain_registry, "keyless/both", digest)["layers"]
    assert len(layers) == 2
    assert ["dev.sigstore.cosign/certificate" in layer["annotations"] for layer in layers] == [False, True]
    by_key = cli("verify", image, "--key", str(files.pub), "--rekor-public-key", str(files.rekor_key))
    assert by_key.exit_code == 0, by_key.stderr
    keyless = cli("verify", image, *files.verify_args())
    assert keyless.exit_code == 0, keyless.stderr
    again = cli("sign", image, *args, env={**PASSWORD, **NO_AMBIENT_TOKEN})
    assert again.exit_code == 0 and again.stdout == f"{image} already signed\n"
    assert len(sig_manifest(plain_registry, "keyless/both", digest)["layers"]) == 2


def test_v3_keyless_signs_verifies_and_reruns_add_nothing(
    cli: Any, plain_registry: RegistryProcess, files: Files
) -> None:
    image, digest = pushed(plain_registry, "keyless/v3")
    args = [*files.sign_args(), "--bundle-format", "v3"]
    signed = cli("sign", image, *args, env=NO_AMBIENT_TOKEN)
    assert signed.exit_code == 0, signed.stderr
    verify_args = [*files.verify_args(), "--ca-intermediates", str(files.intermediates)]
    verified = cli("verify", image, *verify_args, "--json")
    assert verified.exit_code == 0, verified.stderr
    [result] = json.loads(verified.stdout)
    assert result["formats_found"] == ["v3"]
    assert result["signatures"][0]["signer"] == files.identity
    wrong = cli("verify", image, *files.verify_args(identity="someone@example.com"),
                "--ca-intermediates", str(files.intermediates))  # fmt: skip
    assert wrong.exit_code == 10 and "certificate identity is not" in wrong.stderr
    again = cli("sign", image, *args, env=NO_AMBIENT_TOKEN)
    assert again.exit_code == 0 and again.stdout == f"{image} already signed\n"
    index = httpx.get(
        f"{plain_registry.url}/v2/keyless/v3/manifests/sha256-{digest.removeprefix('sha256:')}",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
    ).json()
    assert len(index["manifests"]) == 1


def test_inside_github_actions_the_token_comes_from_the_token_service(
    cli: Any, plain_registry: RegistryProcess, files: Files
) -> None:
    image, _ = pushed(plain_registry, "keyless/actions")
    actions_env = files.stack.github_issuer.actions_env()
    env: dict[str, str | None] = {"SIGSTORE_ID_TOKEN": None, **actions_env, "FULCIO_URL": files.stack.fulcio.url}
    args = [a for a in files.sign_args(with_token=False) if a not in ("--fulcio-url", files.stack.fulcio.url)]
    signed = cli("sign", image, *args, env=env)
    assert signed.exit_code == 0, signed.stderr
    assert "token from GitHub Actions OIDC token service" in signed.stderr
    assert cli("verify", image, *files.verify_args()).exit_code == 0
    request_token = actions_env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    assert request_token not in signed.stdout + signed.stderr


def test_keyless_usage_errors(cli: Any, plain_registry: RegistryProcess, files: Files) -> None:
    image, _ = pushed(plain_registry, "keyless/usage")
    neither = cli("sign", image)
    assert neither.exit_code == 2 and "give --key, --keyless, or both" in neither.stderr
    offline = cli("sign", image, *files.sign_args(), "--no-tlog-upload")
    assert offline.exit_code == 2 and "--no-tlog-upload" in offline.stderr
    stray = cli("sign", image, "--key", str(files.key), "--identity-token", str(files.token), env=PASSWORD)
    assert stray.exit_code == 2 and "add --keyless" in stray.stderr
    no_token = cli("sign", image, *files.sign_args(with_token=False), env=NO_AMBIENT_TOKEN)
    assert no_token.exit_code == 4 and "no OIDC identity token" in no_token.stderr
    on_argv = cli("sign", image, *files.sign_args(with_token=False), "--identity-token", files.token_value)
    assert on_argv.exit_code == 2 and files.token_value not in on_argv.stdout + on_argv.stderr
    far = cli("sign", image, "--keyless", "--identity-token", str(files.token), "--fulcio-url",
              "https://fulcio.example.com", "--rekor-url", files.stack.log.url, "--rekor-public-key",
              str(files.rekor_key), env=NO_AMBIENT_TOKEN)  # fmt: skip
    assert far.exit_code == 2 and "--fulcio-ca-roots" in far.stderr
