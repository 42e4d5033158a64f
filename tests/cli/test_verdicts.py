"""pipeline/cli/verdicts.py: exit 10 for a failed check, 5 (4) for one that could not happen, each once."""

from __future__ import annotations

import pytest
import typer

from pipeline.cli.verdicts import Verdict, finish
from pipeline.errors import AuthError, RegistryError

OUTAGE = RegistryError("cannot connect to the registry at http://127.0.0.1:1/v2/ (after 4 attempts)",
                       where="127.0.0.1:1/foo/bar:sha256-00.sig")  # fmt: skip


def exit_code(verdicts: list[Verdict]) -> int | None:
    try:
        finish(verdicts)
    except typer.Exit as exit_:
        return exit_.exit_code
    return None


def test_all_passed_returns() -> None:
    assert exit_code([Verdict("a", None)]) is None


def test_only_unchecked_exits_5_with_one_line_naming_the_image_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code([Verdict("127.0.0.1:1/foo/bar:v1", "x", OUTAGE)]) == 5
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first == (
        "error: could not check 127.0.0.1:1/foo/bar:v1: cannot connect to the registry at http://127.0.0.1:1/v2/"
        " (after 4 attempts)"
    )
    assert err.count("cannot connect") == 1
    assert "hint:" in err


def test_refused_credentials_exit_4() -> None:
    assert exit_code([Verdict("r/a:v1", "x", AuthError("authentication refused"))]) == 4


def test_failures_and_unchecked_exit_10_naming_the_unchecked(capsys: pytest.CaptureFixture[str]) -> None:
    verdicts = [Verdict("r/a:v1", "no signatures found"), Verdict("r/b:v1", "x", OUTAGE), Verdict("r/c:v1", None)]
    assert exit_code(verdicts) == 10
    err = capsys.readouterr().err
    assert "error: verification failed: no signatures found (r/a:v1)" in err
    assert err.rstrip().endswith("1 of 3 images failed verification; 1 could not be checked: r/b:v1")


def test_a_failure_naming_its_subject_does_not_repeat_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code([Verdict("r/a:v1", "bad signature (r/a:v1)")]) == 10
    assert capsys.readouterr().err.count("r/a:v1") == 1


def test_a_private_key_given_to_verify_is_named_with_a_hint(cli: object, tmp_path: object) -> None:
    from pathlib import Path

    from tests.conftest import REPO_ROOT

    key = REPO_ROOT / "tests/vectors/cosign/keys/sigstore-rs-cosign-generated-empty-password.key"
    result = cli("verify", "127.0.0.1:1/a@sha256:" + "0" * 64, "--key", str(key))  # type: ignore[operator]
    assert result.exit_code == 6
    assert result.stderr.splitlines()[-1].startswith("hint: this is a private key")
    assert Path(str(key)).name in result.stderr
