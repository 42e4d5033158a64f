"""Which registry receives which credential: REGISTRY_USERNAME/PASSWORD only where they were meant to go.

The hostile registry (:class:`~tests.credential_trap.TrapRegistry`) is named in a source definition, as
a third-party image is in a real release; it must never see the release's registry password, nor
must its token realm.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.cosign.keys import generate_key_pair
from pipeline.secret import Secret
from tests.credential_trap import TRAP_TOKEN, TrapRegistry, basic
from tests.github_standin import GitHubStandIn
from tests.registry_fixtures import RegistryProcess

REV = "0123456789abcdef0123456789abcdef01234567"
USER, PASSWORD = "release-bot", "registry-password-for-the-release-only"
KEY_PASSWORD = "key-pw"
REGISTRY_COMMANDS = ("sign", "verify", "assemble", "push", "pull", "release", "verify-release")


@pytest.fixture
def trap() -> Iterator[TrapRegistry]:
    with TrapRegistry("bearer") as server:
        yield server


@pytest.fixture
def basic_trap() -> Iterator[TrapRegistry]:
    with TrapRegistry("basic") as server:
        yield server


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("credential-keys")
    pair = generate_key_pair(Secret(KEY_PASSWORD))
    (directory / "cosign.key").write_bytes(pair.private_pem.reveal())
    (directory / "cosign.pub").write_bytes(pair.public_pem)
    return directory / "cosign.key", directory / "cosign.pub"


def env_for(tmp_path: Path, **extra: str) -> dict[str, str | None]:
    """The CI setting: env credentials set, an empty docker config (nothing from the machine running tests)."""
    (tmp_path / "docker").mkdir(exist_ok=True)
    return {
        "REGISTRY_USERNAME": USER,
        "REGISTRY_PASSWORD": PASSWORD,
        "DOCKER_CONFIG": str(tmp_path / "docker"),
        "COSIGN_PASSWORD": KEY_PASSWORD,
        "RELEASE_VECTOR_REGISTRY_CREDENTIALS_FOR": None,
        **extra,
    }


def source_naming(tmp_path: Path, *images: str) -> Path:
    path = tmp_path / "release.yaml"
    lines = ["docker-images:"] + [f"  i{n}: {{name: {name}, tag: v1}}" for n, name in enumerate(images)]
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_untouched(trap: TrapRegistry) -> None:
    """The trap never saw the password; the registry at most the token its own realm gave out."""
    assert trap.requests, "the trap was contacted"
    assert not trap.leaked(PASSWORD, basic(USER, PASSWORD))
    assert trap.authorizations("realm") == set()
    assert trap.authorizations("registry") <= {f"Bearer {TRAP_TOKEN}"}


@pytest.mark.parametrize("challenge", ["bearer", "basic"])
def test_assemble_sends_env_credentials_to_no_registry_of_the_source(
    cli: Any, tmp_path: Path, challenge: str, trap: TrapRegistry, basic_trap: TrapRegistry
) -> None:
    hostile = trap if challenge == "bearer" else basic_trap
    source = source_naming(tmp_path, f"{hostile.host}/third/party")
    args = ["assemble", "--source", str(source), "--version", "v1.0.0", "--git-revision", REV]
    result = cli(*args, "--output", str(tmp_path / "vector.yaml"), env=env_for(tmp_path))
    if challenge == "bearer":
        assert result.exit_code == 0, result.stderr
    else:  # the trap wants a password and gets none
        assert result.exit_code == 4, result.stderr
        assert "Traceback" not in result.stderr
    assert_untouched(hostile)


def test_release_sends_env_credentials_only_to_the_repository_registry(
    cli: Any, tmp_path: Path, plain_registry: RegistryProcess, keys: tuple[Path, Path], trap: TrapRegistry
) -> None:
    key, _ = keys
    source = source_naming(tmp_path, f"{trap.host}/third/party")
    result = cli(
        "release",
        "v1.0.0",
        "--source",
        str(source),
        "--repository",
        plain_registry.ref("creds/releases"),
        "--key",
        str(key),
        "--release-dir",
        str(tmp_path / "releases"),
        "--git-revision",
        REV,
        "--no-tlog-upload",
        "--exclude-image",
        f"{trap.host}/*",
        env=env_for(tmp_path),
    )
    assert result.exit_code == 0, result.stderr
    assert_untouched(trap)
    assert (tmp_path / "releases" / "v1.0.0" / "release.yaml").is_file()


def test_registry_credentials_for_names_a_registry_of_the_source(
    cli: Any, tmp_path: Path, basic_trap: TrapRegistry
) -> None:
    source = source_naming(tmp_path, f"{basic_trap.host}/own/image")
    args = ["assemble", "--source", str(source), "--version", "v1.0.0", "--git-revision", REV]
    result = cli(*args, "--registry-credentials-for", basic_trap.host, env=env_for(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert basic_trap.authorizations("registry") == {basic(USER, PASSWORD)}


def test_registry_credentials_for_from_the_environment(cli: Any, tmp_path: Path, basic_trap: TrapRegistry) -> None:
    source = source_naming(tmp_path, f"{basic_trap.host}/own/image")
    args = ["assemble", "--source", str(source), "--version", "v1.0.0", "--git-revision", REV]
    env = env_for(tmp_path, RELEASE_VECTOR_REGISTRY_CREDENTIALS_FOR=f"other.example {basic_trap.host}")
    result = cli(*args, env=env)
    assert result.exit_code == 0, result.stderr
    assert basic_trap.authorizations("registry") == {basic(USER, PASSWORD)}


def test_credentials_belong_to_the_registry_actually_contacted(
    cli: Any, tmp_path: Path, basic_trap: TrapRegistry
) -> None:
    """Credentials for ghcr.io do not follow its images to a mirror; credentials for the mirror do."""
    source = source_naming(tmp_path, "ghcr.io/acme/app")
    args = ["assemble", "--source", str(source), "--version", "v1.0.0", "--git-revision", REV]
    mirror = ["--registry-mirror", f"ghcr.io={basic_trap.host}/ghcr.io"]
    refused = cli(*args, *mirror, "--registry-credentials-for", "ghcr.io", env=env_for(tmp_path))
    assert refused.exit_code == 4, refused.stderr
    assert basic_trap.authorizations("registry") == set()
    allowed = cli(*args, *mirror, "--registry-credentials-for", basic_trap.host, env=env_for(tmp_path))
    assert allowed.exit_code == 0, allowed.stderr
    assert basic_trap.authorizations("registry") == {basic(USER, PASSWORD)}


def test_images_named_on_the_command_line_get_env_credentials(
    cli: Any, tmp_path: Path, keys: tuple[Path, Path], basic_trap: TrapRegistry
) -> None:
    _, pub = keys
    image = f"{basic_trap.host}/named/app:v1"
    result = cli("verify", image, "--key", str(pub), "--insecure-ignore-tlog", env=env_for(tmp_path))
    assert result.exit_code == 10, result.stderr  # no signature there, but the credentials went
    assert basic_trap.authorizations("registry") == {basic(USER, PASSWORD)}


def test_a_token_realm_on_another_host_gets_no_env_credentials(
    cli: Any, tmp_path: Path, keys: tuple[Path, Path], trap: TrapRegistry
) -> None:
    """The registry is named (its credentials apply there), but its realm is another host:port."""
    _, pub = keys
    image = f"{trap.host}/named/app:v1"
    result = cli("verify", image, "--key", str(pub), "--insecure-ignore-tlog", env=env_for(tmp_path))
    assert result.exit_code == 10, result.stderr
    assert trap.realm.requests, "the realm was asked for a token"
    assert trap.authorizations("realm") == set()
    assert not trap.leaked(PASSWORD, USER)
    # Named as a host that may receive credentials, the realm gets them.
    again = cli(
        "verify",
        image,
        "--key",
        str(pub),
        "--insecure-ignore-tlog",
        "--registry-credentials-for",
        trap.realm_host,
        env=env_for(tmp_path),
    )
    assert again.exit_code == 10, again.stderr
    assert trap.authorizations("realm") == {basic(USER, PASSWORD)}


def test_a_token_realm_on_another_host_gets_no_docker_config_credentials(
    cli: Any, tmp_path: Path, keys: tuple[Path, Path], trap: TrapRegistry
) -> None:
    _, pub = keys
    env = env_for(tmp_path, REGISTRY_USERNAME=None, REGISTRY_PASSWORD=None)  # type: ignore[arg-type]
    config = {"auths": {trap.host: {"username": USER, "password": PASSWORD}}}
    (tmp_path / "docker" / "config.json").write_text(json.dumps(config))
    result = cli("verify", f"{trap.host}/named/app:v1", "--key", str(pub), "--insecure-ignore-tlog", env=env)
    assert result.exit_code == 10, result.stderr
    assert trap.realm.requests and trap.authorizations("realm") == set()
    assert not trap.leaked(PASSWORD)


@pytest.mark.parametrize("command", REGISTRY_COMMANDS)
def test_every_registry_command_has_the_option(cli: Any, command: str) -> None:
    result = cli(command, "--help", env={"COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"})
    assert result.exit_code == 0
    assert "--registry-credentials-for" in result.stdout
    assert "RELEASE_VECTOR_REGISTRY_CREDENTIALS_FOR" in result.stdout


def test_registry_credentials_for_takes_a_host_only(cli: Any, tmp_path: Path) -> None:
    source = source_naming(tmp_path, "ghcr.io/acme/app")
    args = ["assemble", "--source", str(source), "--version", "v1", "--git-revision", REV]
    result = cli(*args, "--registry-credentials-for", "https://ghcr.io/acme", env=env_for(tmp_path))
    assert result.exit_code == 2
    assert "--registry-credentials-for" in result.stderr and "Traceback" not in result.stderr


# --- credentials that cannot go in a header: a clear error, exit 4, never a crash ----------------------


def test_a_non_ascii_github_token_is_refused_before_anything_is_written(
    cli: Any, tmp_path: Path, plain_registry: RegistryProcess, keys: tuple[Path, Path], trap: TrapRegistry
) -> None:
    key, _ = keys
    source = source_naming(tmp_path, f"{trap.host}/third/party")
    repository = plain_registry.ref(f"creds-gh-{tmp_path.name}/releases")
    with GitHubStandIn(owner="acme", repo="releases") as github:
        result = cli(
            "release",
            "v1.0.0",
            "--source",
            str(source),
            "--repository",
            repository,
            "--key",
            str(key),
            "--github-repository",
            github.slug,
            "--github-api-url",
            github.api_url,
            "--git-revision",
            REV,
            "--no-tlog-upload",
            "--exclude-image",
            f"{trap.host}/*",
            env=env_for(tmp_path, GITHUB_TOKEN="ghp_tökén"),
        )
        assert github.calls() == []
    assert result.exit_code == 4, result.stderr
    assert "error: the GitHub token is not printable ASCII" in result.stderr  # before the assemble, even
    assert "(env://GITHUB_TOKEN)" in result.stderr and "tökén" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_non_ascii_registry_token_is_refused(cli: Any, tmp_path: Path) -> None:
    with TrapRegistry("bearer", token="tökén") as trap:
        result = cli("pull", f"{trap.host}/named/app:v1", env=env_for(tmp_path))
    assert result.exit_code == 4, result.stderr
    assert "token server answered a token that is not printable ASCII" in result.stderr
    assert "Traceback" not in result.stderr and "tökén" not in result.stderr


def test_registry_credentials_that_are_not_text_are_refused(cli: Any, tmp_path: Path, basic_trap: TrapRegistry) -> None:
    args = ["pull", f"{basic_trap.host}/named/app:v1"]
    from_env = cli(*args, env=env_for(tmp_path, REGISTRY_PASSWORD="pass\udcffword"))
    assert from_env.exit_code == 4, from_env.stderr
    assert "REGISTRY_PASSWORD is not valid UTF-8 text (env://REGISTRY_PASSWORD)" in from_env.stderr
    config = tmp_path / "docker" / "config.json"
    config.write_text(
        '{"auths": {"HOST": {"username": "bot", "password": "x\\udc80y"}}}'.replace("HOST", basic_trap.host)
    )
    from_config = cli(*args, env=env_for(tmp_path, REGISTRY_USERNAME=None, REGISTRY_PASSWORD=None))  # type: ignore[arg-type]
    assert from_config.exit_code == 4, from_config.stderr
    assert "docker credentials are not valid UTF-8 text" in from_config.stderr
    assert "Traceback" not in from_env.stderr + from_config.stderr
    assert basic_trap.authorizations("registry") == set()
