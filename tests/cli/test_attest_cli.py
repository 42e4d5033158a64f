"""attest / verify-attestation through the CLI against a real registry and the embedded log: round trip,
idempotent re-run, --policy, --json, the exit codes of bad input (3, nothing written) and failed checks (10)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.oci import mediatypes
from tests.oci.helpers import client as make_client
from tests.oci.helpers import push_image
from tests.registry_fixtures import RegistryProcess
from tests.sigstore.log_fixtures import LocalLog, local_log

__all__ = ["local_log"]

PASSWORD = {"COSIGN_PASSWORD": "pw"}
PREDICATE = {"runDetails": {"builder": {"id": "https://example.com/builder"}}, "buildDefinition": {"buildType": "x"}}


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from pipeline.cosign.keys import generate_key_pair
    from pipeline.secret import Secret

    directory = tmp_path_factory.mktemp("keys")
    pair = generate_key_pair(Secret("pw"))
    (directory / "cosign.key").write_bytes(pair.private_pem.reveal())
    (directory / "cosign.pub").write_bytes(pair.public_pem)
    return directory / "cosign.key", directory / "cosign.pub"


def _image(registry: RegistryProcess, name: str, content: bytes) -> tuple[str, str]:
    with make_client() as client:
        _, digest = push_image(client, registry.ref(name), content)
    return registry.ref(name), digest


def _att_exists(registry: RegistryProcess, repository: str, digest: str) -> bool:
    tag = digest.replace(":", "-") + ".att"
    url = f"{registry.url}/v2/{repository}/manifests/{tag}"
    return httpx.get(url, headers={"Accept": mediatypes.OCI_MANIFEST}, trust_env=False).status_code == 200


def test_attest_verify_rerun_policy_and_json(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path], local_log: LocalLog, tmp_path: Path
) -> None:
    key, pub = key_pair
    image, digest = _image(plain_registry, "attcli/app:v1", b"attcli")
    predicate = tmp_path / "predicate.json"
    predicate.write_text(json.dumps(PREDICATE))
    args = ["--predicate", str(predicate), "--type", "slsaprovenance1", "--key", str(key), "--bundle-format", "both"]
    done = cli("attest", image, *args, *local_log.sign_args, env=PASSWORD)
    assert done.exit_code == 0, done.stderr
    assert done.stdout == f"{plain_registry.ref('attcli/app')}@{digest} signed\n"
    entries = local_log.entries
    again = cli("attest", image, *args, *local_log.sign_args, env=PASSWORD)
    assert again.exit_code == 0, again.stderr
    assert "already signed" in again.stdout and local_log.entries == entries

    verify = ["verify-attestation", image, "--type", "slsaprovenance1", "--key", str(pub), *local_log.verify_args]
    verified = cli(*verify)
    assert verified.exit_code == 0, verified.stderr
    statements = [json.loads(line) for line in verified.stdout.splitlines()]
    assert len(statements) == 2 and all(s["predicate"] == PREDICATE for s in statements)
    assert {s["subject"][0]["digest"]["sha256"] for s in statements} == {digest.split(":")[1]}

    as_json = cli(*verify, "--json")
    [result] = json.loads(as_json.stdout)
    assert result["ok"] and sorted(a["format"] for a in result["attestations"]) == ["legacy", "v3"]

    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"require": [{"path": "predicate.runDetails.builder.id",
                                               "matches": "^https://example.com/"}]}))  # fmt: skip
    assert cli(*verify, "--policy", str(policy)).exit_code == 0
    policy.write_text(json.dumps({"require": [{"path": "predicate.runDetails.builder.id", "equals": "other"}]}))
    refused = cli(*verify, "--policy", str(policy))
    assert refused.exit_code == 10
    assert 'policy: predicate.runDetails.builder.id is "https://example.com/builder", not "other"' in refused.stderr

    other_type = cli("verify-attestation", image, "--type", "spdx", "--key", str(pub), *local_log.verify_args)
    assert other_type.exit_code == 10
    assert "not https://spdx.dev/Document" in other_type.stderr


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"{nope", "the predicate is not JSON"), (b"[1]", "the predicate is not a JSON object"),
     (None, "predicate file is too large")],
)  # fmt: skip
def test_bad_predicates_exit_3_and_write_nothing(
    cli: Any, plain_registry: RegistryProcess, key_pair: tuple[Path, Path], local_log: LocalLog, tmp_path: Path,
    content: bytes | None, reason: str,
) -> None:  # fmt: skip
    key, _ = key_pair
    image, digest = _image(plain_registry, "attcli/bad:v1", b"bad")
    predicate = tmp_path / "predicate.json"
    if content is None:
        with predicate.open("wb") as handle:
            handle.truncate(16 * 1024 * 1024 + 1)
    else:
        predicate.write_bytes(content)
    entries = local_log.entries
    result = cli("attest", image, "--predicate", str(predicate), "--key", str(key), *local_log.sign_args, env=PASSWORD)
    assert result.exit_code == 3
    assert reason in result.stderr and str(predicate) in result.stderr
    assert "Traceback" not in result.stderr
    assert local_log.entries == entries and not _att_exists(plain_registry, "attcli/bad", digest)


def test_unknown_predicate_type_is_a_usage_error(cli: Any, tmp_path: Path) -> None:
    predicate = tmp_path / "p.json"
    predicate.write_text("{}")
    result = cli("attest", "127.0.0.1:1/a/b:c", "--predicate", str(predicate), "--type", "nonsense", "--key", "k")
    assert result.exit_code == 2 and "invalid predicate type 'nonsense'" in result.stderr
