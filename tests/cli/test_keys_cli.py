"""generate-key-pair and public-key through the CLI: files, modes, passwords, one-line errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import common
from tests.conftest import COSIGN_VECTORS

KEYS = COSIGN_VECTORS / "keys"
PASSWORD = "correct horse battery staple"


def test_generate_key_pair_writes_cosign_files(cli: Any, tmp_path: Path) -> None:
    prefix = tmp_path / "release"
    result = cli("generate-key-pair", "--output-key-prefix", str(prefix), env={"COSIGN_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.stderr
    key_file, pub_file = tmp_path / "release.key", tmp_path / "release.pub"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert pub_file.read_text().startswith("-----BEGIN PUBLIC KEY-----\n")
    assert PASSWORD not in result.stdout + result.stderr

    public = cli("public-key", "--key", str(key_file), env={"COSIGN_PASSWORD": PASSWORD})
    assert public.exit_code == 0, public.stderr
    assert public.stdout == pub_file.read_text()


def test_default_prefix_is_cosign(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("generate-key-pair", env={"COSIGN_PASSWORD": ""}).exit_code == 0
    assert (tmp_path / "cosign.key").exists() and (tmp_path / "cosign.pub").exists()


def test_refuses_to_overwrite_without_force(cli: Any, tmp_path: Path) -> None:
    prefix = str(tmp_path / "k")
    (tmp_path / "k.pub").write_text("keep me")
    result = cli("generate-key-pair", "--output-key-prefix", prefix, env={"COSIGN_PASSWORD": "x"})
    assert result.exit_code == 8
    assert result.stderr.startswith("error: refusing to overwrite existing file")
    assert not (tmp_path / "k.key").exists(), "nothing is written when one file exists"
    assert (tmp_path / "k.pub").read_text() == "keep me"
    forced = cli("generate-key-pair", "--output-key-prefix", prefix, "--force", env={"COSIGN_PASSWORD": "x"})
    assert forced.exit_code == 0
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600


def test_public_key_from_env_var(cli: Any) -> None:
    pem = (KEYS / "podman-sigstore-key.key").read_text()
    result = cli(
        "public-key",
        "--key",
        "env://COSIGN_PRIVATE_KEY",
        env={"COSIGN_PRIVATE_KEY": pem, "COSIGN_PASSWORD": "sigstore pass"},
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (KEYS / "podman-sigstore-key.pub").read_text()


def test_empty_cosign_password_means_the_empty_password(cli: Any) -> None:
    key = KEYS / "sigstore-rs-cosign-generated-empty-password.key"
    result = cli("public-key", "--key", str(key), env={"COSIGN_PASSWORD": ""})
    assert result.exit_code == 0, result.stderr


BAD_KEY_CASES = [
    ("missing", "key file not found"),
    ("truncated", "truncated"),
    ("mislabelled", "unexpected PEM type"),
    ("sec1", "SEC1"),
    ("wrong-password", "wrong password"),
    ("unsupported-n", "unsupported scrypt parameters"),
    ("unset-env", "is not set"),
]


def _bad_key(case: str, tmp_path: Path) -> tuple[str, dict[str, str | None]]:
    podman = (KEYS / "podman-sigstore-key.key").read_text()
    env: dict[str, str | None] = {"COSIGN_PASSWORD": "sigstore pass"}
    path = tmp_path / "bad.key"
    if case == "missing":
        return str(tmp_path / "nope.key"), env
    if case == "unset-env":
        return "env://NO_SUCH_VARIABLE_FOR_TEST", {**env, "NO_SUCH_VARIABLE_FOR_TEST": None}
    if case == "truncated":
        path.write_text(podman[:200])
    elif case == "mislabelled":
        path.write_text(podman.replace("ENCRYPTED COSIGN PRIVATE KEY", "RSA PRIVATE KEY"))
    elif case == "sec1":
        path.write_text((KEYS / "cosign-keystest-sec1-inside.key").read_text())
        env = {"COSIGN_PASSWORD": "hello"}
    elif case == "wrong-password":
        path.write_text(podman)
        env = {"COSIGN_PASSWORD": "not the password"}
    elif case == "unsupported-n":
        from pipeline.cosign import keys

        block = keys.decode_pem(podman.encode(), "podman")
        path.write_bytes(keys.encode_pem(block.label, block.der.replace(b'"N":32768', b'"N":1048576')))
    return str(path), env


@pytest.mark.parametrize(("case", "message"), BAD_KEY_CASES)
def test_bad_keys_give_one_line_errors_exit_6(cli: Any, tmp_path: Path, case: str, message: str) -> None:
    key, env = _bad_key(case, tmp_path)
    result = cli("public-key", "--key", key, env=env)
    assert result.exit_code == 6
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: ") and message in lines[0]
    assert key in lines[0], "the error names the key's source"
    assert all(line.startswith(("error: ", "hint: ")) for line in lines)
    assert "Traceback" not in result.stderr
    for secret in ("sigstore pass", "not the password", "hello"):
        assert secret not in result.stderr


def test_private_key_content_never_printed(cli: Any, tmp_path: Path) -> None:
    pem = (KEYS / "podman-sigstore-key.key").read_text()
    body_line = pem.splitlines()[1]
    result = cli("public-key", "--key", "env://K", env={"K": pem, "COSIGN_PASSWORD": "wrong"})
    assert result.exit_code == 6
    assert body_line not in result.stdout + result.stderr


def test_no_password_and_no_terminal_is_a_clear_error(cli: Any) -> None:
    result = cli("public-key", "--key", str(KEYS / "podman-sigstore-key.key"), env={"COSIGN_PASSWORD": None})
    assert result.exit_code == 6
    assert "COSIGN_PASSWORD is not set" in result.stderr


def test_prompts_twice_on_a_terminal_when_generating(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["pw-one", "pw-two"])
    prompts: list[str] = []

    def fake_getpass(prompt: str, stream: object = None) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(common.getpass, "getpass", fake_getpass)
    monkeypatch.setattr(common.sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(common.sys.stderr, "isatty", lambda: True, raising=False)
    result = cli("generate-key-pair", "--output-key-prefix", str(tmp_path / "k"), env={"COSIGN_PASSWORD": None})
    assert len(prompts) == 2
    assert result.exit_code == 2 and "passwords differ" in result.stderr
    assert not (tmp_path / "k.key").exists()


def test_key_file_is_never_world_readable_even_briefly(cli: Any, tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        cli("generate-key-pair", "--output-key-prefix", str(tmp_path / "u"), env={"COSIGN_PASSWORD": "x"})
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "u.key").stat().st_mode) == 0o600


# --- key files and symlinks -----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".key", ".pub"])
def test_a_dangling_symlink_is_an_existing_file_not_followed(cli: Any, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / "elsewhere" / f"planted{suffix}"
    target.parent.mkdir()
    (tmp_path / f"k{suffix}").symlink_to(target)
    result = cli("generate-key-pair", "--output-key-prefix", str(tmp_path / "k"), env={"COSIGN_PASSWORD": "x"})
    assert result.exit_code == 8, result.stderr
    assert "refusing to overwrite" in result.stderr and f"k{suffix}" in result.stderr
    assert not target.exists(), "the key must not be written at the symlink's target"


@pytest.mark.parametrize("suffix", [".key", ".pub"])
def test_force_replaces_a_symlink_and_leaves_its_target_alone(cli: Any, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"victim{suffix}"
    target.write_text("precious")
    target.chmod(0o640)
    link = tmp_path / f"k{suffix}"
    link.symlink_to(target)
    result = cli(
        "generate-key-pair", "--output-key-prefix", str(tmp_path / "k"), "--force", env={"COSIGN_PASSWORD": "x"}
    )
    assert result.exit_code == 0, result.stderr
    assert target.read_text() == "precious" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert not link.is_symlink() and link.is_file()
    assert stat.S_IMODE(link.stat().st_mode) == (0o600 if suffix == ".key" else 0o644)


def test_missing_directory_is_exit_3_with_its_path(cli: Any, tmp_path: Path) -> None:
    prefix = tmp_path / "no" / "such" / "dir" / "k"
    result = cli("generate-key-pair", "--output-key-prefix", str(prefix), env={"COSIGN_PASSWORD": "x"})
    assert result.exit_code == 3, result.stderr
    assert result.stderr.startswith("error: ") and str(prefix.parent) in result.stderr
    assert "Traceback" not in result.stderr
