"""--signing-config on the signing commands: services from the config, conflicts with --rekor-url/--fulcio-url."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.sigstore.log_fixtures import LocalLog, local_log

__all__ = ["local_log"]

PASSWORD = {"COSIGN_PASSWORD": "pw"}
STAGING = Path(__file__).resolve().parents[1] / "vectors" / "sigstore-rekor-v2" / "staging-signing_config.v0.2.json"


def _service(url: str, version: int = 1, start: str = "2020-01-01T00:00:00Z", end: str | None = None) -> Any:
    valid_for = {"start": start, **({"end": end} if end else {})}
    return {"url": url, "majorApiVersion": version, "validFor": valid_for, "operator": "test"}


def _config(tmp_path: Path, rekor: list[Any], *, ca: str = "https://fulcio.example") -> Path:
    path = tmp_path / "signing_config.json"
    path.write_text(json.dumps({
        "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
        "caUrls": [_service(ca)], "oidcUrls": [], "rekorTlogUrls": rekor, "tsaUrls": [],
        "rekorTlogConfig": {"selector": "ANY"}, "tsaConfig": {"selector": "ANY"},
    }))  # fmt: skip
    return path


@pytest.fixture
def key(cli: Any, tmp_path: Path) -> Path:
    assert cli("generate-key-pair", "--output-key-prefix", str(tmp_path / "k"), env=PASSWORD).exit_code == 0
    return tmp_path / "k.key"


def test_sign_blob_logs_into_the_rekor_the_signing_config_names(
    cli: Any, tmp_path: Path, key: Path, local_log: LocalLog
) -> None:
    blob = tmp_path / "b"
    blob.write_bytes(b"config")
    expired = _service("https://rekor.old.example", start="2019-01-01T00:00:00Z", end="2020-01-01T00:00:00Z")
    config = _config(tmp_path, [expired, _service(local_log.server.url)])
    entries = local_log.entries
    signed = cli("sign-blob", str(blob), "--key", str(key), "--signing-config", str(config),
                 "--rekor-public-key", str(local_log.public_key), env=PASSWORD)  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    assert local_log.entries == entries + 1


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--rekor-url", "https://rekor.example"], {}),
        (["--fulcio-url", "https://fulcio.example"], {}),
        ([], {"REKOR_URL": "https://rekor.example"}),
    ],
    ids=["rekor-url", "fulcio-url", "REKOR_URL"],
)
def test_the_signing_config_conflicts_with_explicit_urls(
    cli: Any, tmp_path: Path, key: Path, args: list[str], env: dict[str, str]
) -> None:
    blob = tmp_path / "b"
    blob.write_bytes(b"x")
    result = cli("sign-blob", str(blob), "--key", str(key), "--signing-config", str(STAGING), *args,
                 env={**PASSWORD, **env})  # fmt: skip
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("error: --signing-config conflicts with")
    assert str(STAGING) in result.stderr.splitlines()[0]


def test_a_config_without_a_usable_rekor_is_refused(cli: Any, tmp_path: Path, key: Path) -> None:
    blob = tmp_path / "b"
    blob.write_bytes(b"x")
    only_v3 = _config(tmp_path, [_service("https://rekor.example", version=3)])
    result = cli("sign-blob", str(blob), "--key", str(key), "--signing-config", str(only_v3), env=PASSWORD)
    assert result.exit_code == 2
    assert "names no Rekor transparency log valid now with API version v1" in result.stderr


def test_a_configs_rekor_whose_key_is_not_trusted_is_refused(cli: Any, tmp_path: Path, key: Path) -> None:
    """A config may name any log; its key must come from the trust material, never from the log itself."""
    blob = tmp_path / "b"
    blob.write_bytes(b"x")
    config = _config(tmp_path, [_service("https://rekor.untrusted.example")])
    result = cli("sign-blob", str(blob), "--key", str(key), "--signing-config", str(config), env=PASSWORD)
    assert result.exit_code == 2
    assert "needs its public key" in result.stderr and "rekor.untrusted.example" in result.stderr


def test_a_malformed_config_is_invalid_input(cli: Any, tmp_path: Path, key: Path) -> None:
    blob, config = tmp_path / "b", tmp_path / "cfg.json"
    blob.write_bytes(b"x")
    config.write_text('{"mediaType": "something else"}')
    result = cli("sign-blob", str(blob), "--key", str(key), "--signing-config", str(config), env=PASSWORD)
    assert result.exit_code == 3 and str(config) in result.stderr


def test_a_config_selecting_two_timestamp_authorities_says_it_uses_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """cosign timestamps with each TSA an EXACT/ALL selection names; here one timestamp per signature, said so."""
    from pipeline.cli.keyless_options import KeylessOptions
    from pipeline.cli.signing_config_options import with_signing_config
    from pipeline.cli.trust_options import TlogOptions

    path = _config(tmp_path, [_service("https://rekor.example")])
    document = json.loads(path.read_text())
    first, second = _service("https://tsa-a.example"), {**_service("https://tsa-b.example"), "operator": "other"}
    document.update(tsaUrls=[first, second], tsaConfig={"selector": "EXACT", "count": 2})
    path.write_text(json.dumps(document))
    tlog, _ = with_signing_config(TlogOptions(True, None, None, signing_config=path),
                                  KeylessOptions(False, None, None, None, None))  # fmt: skip
    assert tlog.timestamp_server_url in ("https://tsa-a.example", "https://tsa-b.example")
    note = capsys.readouterr().err
    assert f"selects 2 timestamp authorities; timestamping with {tlog.timestamp_server_url} only" in note
