"""A secret scan: a whole release and a rehearsal with known secret values, and nowhere do they show.

The values: the key's password, the private key's PEM (through ``--key env://COSIGN_PRIVATE_KEY``),
the GitHub token (the stand-in's), the registry password (the htpasswd ``basic_registry``). Looked for
in stdout, stderr, every log record, the text of every error, and the argv (and environment) of the
child process a rehearsal starts (the docker-registry, through /proc/<pid>/cmdline).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline import rehearsal
from pipeline.cosign.keys import generate_key_pair
from pipeline.oci.auth import Credential, StaticCredentials
from pipeline.secret import Secret
from tests.conftest import REPO_ROOT
from tests.github_standin import GitHubStandIn
from tests.oci.helpers import client as make_client
from tests.oci.helpers import push_image
from tests.registry_fixtures import BASIC_USERS, RegistryProcess, requires_registry

PASSWORD = "key-pw-Zq8vX2mN4tR7"
GITHUB_TOKEN = "ghp_SecretScanToken0123456789abcdefXYZ"
SOURCE = b"""\
docker-images:
  app:
    api: {name: ghcr.io/acme/api, tag: v1.0.0}
    worker: {name: ghcr.io/acme/worker, tag: v1.0.0}
"""
REV = "0123456789abcdef0123456789abcdef01234567"


def forms(value: str) -> list[str]:
    """The value and the encodings it could leak in (base64 of it, of ``user:value``)."""
    found = [value, base64.b64encode(value.encode()).decode()]
    if len(value) > 40:  # a PEM: any line of its body is as bad as the whole
        found += [line for line in value.splitlines() if len(line) > 20 and "-----" not in line]
    return found


def assert_absent(secrets: list[str], **texts: str) -> None:
    for where, text in texts.items():
        for secret in secrets:
            for form in forms(secret):
                assert form not in text, f"a secret appears in {where}"


def test_release_leaks_no_secret(
    cli: Any, basic_registry: RegistryProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user, registry_password = "alice", BASIC_USERS["alice"]
    pair = generate_key_pair(Secret(PASSWORD))
    pem = pair.private_pem.reveal().decode()
    secrets = [PASSWORD, pem, GITHUB_TOKEN, registry_password]
    source = tmp_path / "release.yaml"
    source.write_bytes(SOURCE)
    mirror = f"ghcr.io={basic_registry.host}/secrets/ghcr.io"
    credentials = StaticCredentials({basic_registry.host: Credential(user, Secret(registry_password))})
    with make_client(credentials) as c:
        for name in ("api", "worker"):
            push_image(c, f"{basic_registry.host}/secrets/ghcr.io/acme/{name}:v1.0.0", name.encode())
    env: dict[str, str | None] = {
        "COSIGN_PRIVATE_KEY": pem,
        "COSIGN_PASSWORD": PASSWORD,
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "REGISTRY_USERNAME": user,
        "REGISTRY_PASSWORD": registry_password,
    }
    with GitHubStandIn(owner="acme", repo="app", token=GITHUB_TOKEN) as github:
        args = [
            "--source",
            str(source),
            "--repository",
            f"{basic_registry.host}/secrets/releases",
            "--key",
            "env://COSIGN_PRIVATE_KEY",
            "--registry-mirror",
            mirror,
            "--git-revision",
            REV,
            "--github-repository",
            github.slug,
            "--github-api-url",
            github.api_url,
            "--recursive",
            "--no-tlog-upload",
        ]
        runs = [
            cli("--debug", "release", "v1.0.0", *args, "--dry-run", env=env),
            cli("--debug", "release", "v1.0.0", *args, env=env),
            cli("--debug", "release", "v1.0.0", *args, "--json", env=env),  # the re-run
            # Failures with the same secrets around: their error text and --debug traceback are scanned too.
            cli("--debug", "release", "v1.0.1", *args, env={**env, "COSIGN_PASSWORD": "not-" + PASSWORD}),
            cli("--debug", "release", "v1.0.1", *args, env={**env, "REGISTRY_USERNAME": "mallory"}),
            cli("--debug", "release", "v1.0.1", *args, env={**env, "GITHUB_TOKEN": GITHUB_TOKEN[:-3] + "bad"}),
        ]
        [published] = github.releases_for("v1.0.0")
        assert not published.draft
        verified = cli(
            "verify-release",
            f"{basic_registry.host}/secrets/releases:v1.0.0",
            "--key",
            str(_write(tmp_path / "cosign.pub", pair.public_pem)),
            "--insecure-ignore-tlog",
            "--registry-mirror",
            mirror,
            "--github-repository",
            github.slug,
            "--github-api-url",
            github.api_url,
            env=env,
        )
        runs.append(verified)
    assert [run.exit_code for run in runs[:3]] == [0, 0, 0], runs[1].stderr
    assert json.loads(runs[2].stdout)["actions"] == []
    assert runs[3].exit_code == 6 and runs[4].exit_code == 4 and runs[5].exit_code in (4, 7)
    assert verified.exit_code == 0, verified.stderr
    for number, run in enumerate(runs):
        assert_absent(secrets, **{f"stdout of run {number}": run.stdout, f"stderr of run {number}": run.stderr})
    logs = "\n".join(f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records)
    assert_absent(secrets, logs=logs)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_errors_hold_no_secret() -> None:
    """The exception text of failures that handle secrets (a wrong password, a damaged key)."""
    from pipeline.cosign.keys import load_private_key
    from pipeline.errors import ReleaseVectorError

    pair = generate_key_pair(Secret(PASSWORD))
    pem = pair.private_pem.reveal()
    texts = []
    for attempt in (
        lambda: load_private_key(Secret(pem), Secret("wrong"), "env://COSIGN_PRIVATE_KEY"),
        lambda: load_private_key(Secret(pem[:-40]), Secret(PASSWORD), "env://COSIGN_PRIVATE_KEY"),
        lambda: load_private_key(Secret(pem.replace(b"A", b"B")), Secret(PASSWORD), "env://COSIGN_PRIVATE_KEY"),
    ):
        with pytest.raises(ReleaseVectorError) as caught:
            attempt()
        texts.append(f"{caught.value} {caught.value!r} {caught.value.hint or ''}")
    assert_absent([PASSWORD, pem.decode()], errors="\n".join(texts))
    assert_absent([PASSWORD], repr=repr(Secret(PASSWORD)) + str(Secret(PASSWORD)) + f"{Secret(PASSWORD)}")


@requires_registry
def test_rehearsal_leaks_no_secret(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    made: list[rehearsal.ThrowawayKeys] = []
    original = rehearsal.throwaway_keys

    def recording(directory: Path) -> rehearsal.ThrowawayKeys:
        keys = original(directory)
        made.append(keys)
        return keys

    import pipeline.cli.rehearse as command

    monkeypatch.setattr(command, "throwaway_keys", recording)
    # Secrets in the caller's environment must not reach the registry process either.
    env: dict[str, str | None] = {
        "COSIGN_PASSWORD": PASSWORD,
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "REGISTRY_PASSWORD": BASIC_USERS["bob"],
    }
    source = REPO_ROOT / "release" / "release.yaml"
    result = cli("rehearse", "--source", str(source), "--workdir", str(tmp_path), "--keep", "--json", env=env)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    pid = summary["registry"]["pid"]
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        environ = Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n").decode()
        config = (tmp_path / "registry" / "config.yml").read_text()
        log = (tmp_path / "registry" / "registry.log").read_text()
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            except ChildProcessError:
                break
            time.sleep(0.02)
    assert "docker-registry" in cmdline and "serve" in cmdline
    [keys] = made
    secrets = [
        keys.password.reveal().decode(),
        keys.private_key.read_text(),
        PASSWORD,
        GITHUB_TOKEN,
        BASIC_USERS["bob"],
    ]
    assert_absent(
        secrets,
        stdout=result.stdout,
        stderr=result.stderr,
        child_argv=cmdline,
        child_environment=environ,
        registry_config=config,
        registry_log=log,
        logs="\n".join(record.getMessage() for record in caplog.records),
    )
    assert os.environ.get("COSIGN_PASSWORD") != keys.password.reveal().decode(), "the password was left in env"
    assert (tmp_path / "keys" / "cosign.key").stat().st_mode & 0o077 == 0


def test_keyless_release_leaks_no_token(
    cli: Any, plain_registry: RegistryProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A keyless release (with the key too): the identity token (SIGSTORE_ID_TOKEN), the GitHub Actions
    request token, the key's password: in no output, log or error, also when Fulcio refuses the token."""
    from pipeline.sigstore.fulcio_server import FulcioServer, TrustedIssuer
    from pipeline.sigstore.log_server import LogServer
    from pipeline.sigstore.oidc_issuer import GitHubWorkflowClaims, OidcIssuer

    caplog.set_level(logging.DEBUG)
    pair = generate_key_pair(Secret(PASSWORD))
    source = tmp_path / "release.yaml"
    source.write_bytes(SOURCE)
    mirror = f"ghcr.io={plain_registry.host}/keyless-secrets/ghcr.io"
    with make_client() as c:
        for name in ("api", "worker"):
            push_image(c, f"{plain_registry.host}/keyless-secrets/ghcr.io/acme/{name}:v1.0.0", name.encode())
    workflow = GitHubWorkflowClaims(repository="acme/app", ref="refs/tags/v1.0.0")
    with OidcIssuer("RS256", actions_claims=workflow) as issuer, LogServer() as log:
        fulcio = FulcioServer([TrustedIssuer(issuer.issuer, "github-workflow")])
        with fulcio:
            token = issuer.github_token()
            untrusted = issuer.github_token(issuer="https://untrusted.example")
            actions = issuer.actions_env()
            secrets = [PASSWORD, token, token.rsplit(".", 1)[1], untrusted, actions["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]]
            (tmp_path / "rekor.pub").write_bytes(log.public_key_pem())
            (tmp_path / "cosign.key").write_bytes(pair.private_pem.reveal())
            args = [
                "--source", str(source), "--repository", f"{plain_registry.host}/keyless-secrets/releases",
                "--key", str(tmp_path / "cosign.key"), "--keyless", "--fulcio-url", fulcio.url,
                "--rekor-url", log.url, "--rekor-public-key", str(tmp_path / "rekor.pub"),
                "--registry-mirror", mirror, "--git-revision", REV, "--release-dir", str(tmp_path / "releases"),
            ]  # fmt: skip
            env: dict[str, str | None] = {"COSIGN_PASSWORD": PASSWORD, "SIGSTORE_ID_TOKEN": token,
                                          "ACTIONS_ID_TOKEN_REQUEST_URL": None, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": None}
            actions_env: dict[str, str | None] = {**env, "SIGSTORE_ID_TOKEN": None, **actions}
            runs = [
                cli("--debug", "release", "v1.0.0", *args, "--dry-run", env=env),
                cli("--debug", "release", "v1.0.0", *args, env=env),
                cli("--debug", "release", "v1.0.0", *args, "--json", env=actions_env),  # the re-run, in "Actions"
                cli("--debug", "release", "v1.0.1", *args, env={**env, "SIGSTORE_ID_TOKEN": untrusted}),
            ]
    assert [run.exit_code for run in runs[:3]] == [0, 0, 0], runs[1].stderr
    assert json.loads(runs[2].stdout)["actions"] == []
    assert runs[3].exit_code == 4 and "Fulcio refused the identity token" in runs[3].stderr
    for number, run in enumerate(runs):
        assert_absent(secrets, **{f"stdout of run {number}": run.stdout, f"stderr of run {number}": run.stderr})
    logs = "\n".join(f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records)
    assert_absent(secrets, logs=logs)
