"""``push`` and ``pull`` through the CLI against a real registry (writes counted in the registry's access log)."""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.artifact import ArtifactAnnotations, make_artifact
from pipeline.oci import mediatypes
from tests.conftest import VECTORS
from tests.registry_fixtures import RegistryProcess
from tests.sigstore.log_fixtures import LocalLog, local_log

PASSWORD = {"COSIGN_PASSWORD": "pw"}
__all__ = ["local_log"]
METAL_STACK = (VECTORS / "metal-stack" / "release-v0.22.19.yaml").read_bytes()
REVISION = "b1065585a627ea6678a7ff5b84a88312aaae4b8e"
VECTOR = METAL_STACK + f"release-vector:\n  version: v0.22.19\n  git-revision: {REVISION}\n".encode()
NO_ENV: dict[str, str | None] = {
    "SOURCE_DATE_EPOCH": None,
    "RELEASE_VECTOR_REPOSITORY": None,
    "RELEASE_VECTOR_SOURCE_URL": None,
    "REGISTRY_USERNAME": None,
    "REGISTRY_PASSWORD": None,
}


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from pipeline.cosign.keys import generate_key_pair
    from pipeline.secret import Secret

    directory = tmp_path_factory.mktemp("artifact-keys")
    pair = generate_key_pair(Secret("pw"))
    (directory / "cosign.key").write_bytes(pair.private_pem.reveal())
    (directory / "cosign.pub").write_bytes(pair.public_pem)
    other = generate_key_pair(Secret("pw"))
    (directory / "other.pub").write_bytes(other.public_pem)
    return directory / "cosign.key", directory / "cosign.pub"


@pytest.fixture
def repo(plain_registry: RegistryProcess) -> str:
    return plain_registry.ref(f"metal-stack/releases-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def vector_file(tmp_path: Path) -> Path:
    path = tmp_path / "release.yaml"
    path.write_bytes(VECTOR)
    return path


def registry_writes(registry: RegistryProcess, repo: str) -> list[str]:
    """Write requests (PUT/POST/PATCH/DELETE) to ``repo`` in the registry's access log."""
    path = repo.split("/", 1)[1]
    pattern = re.compile(rf'"(PUT|POST|PATCH|DELETE) (/v2/{re.escape(path)}/\S*) HTTP')
    return [" ".join(m.groups()) for m in pattern.finditer(registry.log.read_text(errors="replace"))]


def wait_for_log(registry: RegistryProcess, repo: str, needle: str) -> list[str]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        writes = registry_writes(registry, repo)
        if any(needle in w for w in writes):
            return writes
        time.sleep(0.02)
    raise AssertionError(f"{needle} never appeared in the registry log")


def raw_manifest(registry: RegistryProcess, repo: str, reference: str) -> bytes:
    path = repo.split("/", 1)[1]
    response = httpx.get(f"{registry.url}/v2/{path}/manifests/{reference}", headers={"Accept": mediatypes.OCI_MANIFEST})
    response.raise_for_status()
    return response.content


def test_push_defaults_to_the_vector_version_and_a_rerun_writes_nothing(
    cli: Any, plain_registry: RegistryProcess, repo: str, vector_file: Path
) -> None:
    expected = make_artifact(VECTOR, ArtifactAnnotations(version="v0.22.19", revision=REVISION))
    result = cli("push", str(vector_file), "--repository", repo, env=NO_ENV)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{repo}:v0.22.19@{expected.digest} created\n"
    assert raw_manifest(plain_registry, repo, "v0.22.19") == expected.manifest
    before = wait_for_log(plain_registry, repo, "PUT /v2/" + repo.split("/", 1)[1] + "/manifests/v0.22.19")
    assert sum(1 for w in before if "/manifests/" in w) == 1

    again = cli("push", str(vector_file), "--repository", repo, "--json", env=NO_ENV)
    assert again.exit_code == 0, again.stderr
    assert "nothing to push" in again.stderr
    document = json.loads(again.stdout)
    assert document["digest"] == expected.digest
    assert document["reference"] == f"{repo}@{expected.digest}"
    assert document["tags"] == [{"tag": "v0.22.19", "status": "unchanged", "previous": None}]
    time.sleep(0.2)
    assert registry_writes(plain_registry, repo) == before


def test_push_tags_env_repository_source_and_source_date_epoch(
    cli: Any, plain_registry: RegistryProcess, repo: str, vector_file: Path
) -> None:
    env = {
        **NO_ENV,
        "RELEASE_VECTOR_REPOSITORY": repo,
        "RELEASE_VECTOR_SOURCE_URL": "https://github.com/metal-stack/releases",
        "SOURCE_DATE_EPOCH": "1753184000",
    }
    result = cli("push", str(vector_file), "--tag", "latest", "--tag", "v0.22.19", env=env)
    assert result.exit_code == 0, result.stderr
    assert [line.rsplit(" ", 1)[1] for line in result.stdout.splitlines()] == ["created", "created"]
    manifest = json.loads(raw_manifest(plain_registry, repo, "latest"))
    assert manifest["annotations"] == {
        "org.opencontainers.image.created": "2025-07-22T11:33:20Z",
        "org.opencontainers.image.revision": REVISION,
        "org.opencontainers.image.source": "https://github.com/metal-stack/releases",
        "org.opencontainers.image.version": "v0.22.19",
    }
    path = repo.split("/", 1)[1]
    layer = httpx.get(f"{plain_registry.url}/v2/{path}/blobs/{manifest['layers'][0]['digest']}").content
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
        assert tar.getmember("release.yaml").mtime == 1753184000


def test_push_without_a_version_needs_a_tag(cli: Any, repo: str, tmp_path: Path) -> None:
    vector = tmp_path / "release.yaml"
    vector.write_bytes(METAL_STACK)
    result = cli("push", str(vector), "--repository", repo, env=NO_ENV)
    assert result.exit_code == 2
    assert "give --tag" in result.stderr and str(vector) in result.stderr
    assert "Traceback" not in result.stderr


def test_push_invalid_yaml_names_the_line(cli: Any, repo: str, tmp_path: Path) -> None:
    vector = tmp_path / "release.yaml"
    vector.write_text("a: 1\nb: [unclosed\n")
    result = cli("push", str(vector), "--repository", repo, "--tag", "v1", env=NO_ENV)
    assert result.exit_code == 3
    assert re.search(rf"error: release vector is not valid YAML: .* \({re.escape(str(vector))}:\d+\)", result.stderr)


def test_moving_a_version_tag_exits_8_unless_forced(
    cli: Any, plain_registry: RegistryProcess, repo: str, vector_file: Path, tmp_path: Path
) -> None:
    assert cli("push", str(vector_file), "--repository", repo, env=NO_ENV).exit_code == 0
    first = raw_manifest(plain_registry, repo, "v0.22.19")
    changed = tmp_path / "changed.yaml"
    changed.write_bytes(VECTOR + b"# changed\n")
    refused = cli("push", str(changed), "--repository", repo, env=NO_ENV)
    assert refused.exit_code == 8
    assert "error: tag v0.22.19 already points at sha256:" in refused.stderr
    assert f"({repo}:v0.22.19)" in refused.stderr and "hint:" in refused.stderr and "--force" in refused.stderr
    assert raw_manifest(plain_registry, repo, "v0.22.19") == first

    forced = cli("push", str(changed), "--repository", repo, "--force", env=NO_ENV)
    assert forced.exit_code == 0, forced.stderr
    assert forced.stdout.endswith(" moved\n")
    assert raw_manifest(plain_registry, repo, "v0.22.19") != first


def test_pull_by_tag_to_stdout_and_by_digest_to_a_file(cli: Any, repo: str, vector_file: Path, tmp_path: Path) -> None:
    pushed = cli("push", str(vector_file), "--repository", repo, "--json", env=NO_ENV)
    digest = json.loads(pushed.stdout)["digest"]

    by_tag = cli("pull", f"{repo}:v0.22.19")
    assert by_tag.exit_code == 0, by_tag.stderr
    assert by_tag.stdout == VECTOR.decode()
    assert "without signature verification" in by_tag.stderr

    output = tmp_path / "pulled.yaml"
    by_digest = cli("pull", f"{repo}@{digest}", "--output", str(output), "--json")
    assert by_digest.exit_code == 0, by_digest.stderr
    assert output.read_bytes() == VECTOR
    assert output.stat().st_mode & 0o777 == 0o644
    document = json.loads(by_digest.stdout)
    assert document["digest"] == digest and document["verified"] is False and document["output"] == str(output)


def test_pull_with_key_verifies_the_signed_artifact_and_a_wrong_key_writes_nothing(
    cli: Any, repo: str, vector_file: Path, tmp_path: Path, key_pair: tuple[Path, Path]
) -> None:
    key, pub = key_pair
    digest = json.loads(cli("push", str(vector_file), "--repository", repo, "--json", env=NO_ENV).stdout)["digest"]
    output = tmp_path / "verified.yaml"

    unsigned = cli("pull", f"{repo}:v0.22.19", "--key", str(pub), "--insecure-ignore-tlog", "-o", str(output))
    assert unsigned.exit_code == 10
    assert "no signatures found" in unsigned.stderr and f"({repo}@{digest})" in unsigned.stderr
    assert not output.exists()

    signed = cli("sign", "--no-tlog-upload", f"{repo}@{digest}", "--key", str(key), env=PASSWORD)
    assert signed.exit_code == 0, signed.stderr

    ok = cli("pull", f"{repo}:v0.22.19", "--key", str(pub), "--insecure-ignore-tlog", "-o", str(output), "--json")
    assert ok.exit_code == 0, ok.stderr
    assert output.read_bytes() == VECTOR
    assert "without signature verification" not in ok.stderr
    assert f"verified: {repo}@{digest}" in ok.stderr
    document = json.loads(ok.stdout)
    assert document["verified"] is True and len(document["signatures"]) == 1

    output.write_text("keep me\n")
    wrong = cli("pull", f"{repo}:v0.22.19", "--key", str(pub.parent / "other.pub"), "--insecure-ignore-tlog",
                "-o", str(output))  # fmt: skip
    assert wrong.exit_code == 10
    assert wrong.stderr.splitlines()[-1].startswith("error: signature verification failed:")
    assert output.read_text() == "keep me\n"
    assert wrong.stdout == ""

    tlog = cli("pull", f"{repo}:v0.22.19", "--key", str(pub))  # our sign has no Rekor entry: cosign's default refuses
    assert tlog.exit_code == 10 and tlog.stdout == ""


def test_pull_verifies_a_logged_signature_without_ignore_tlog(
    cli: Any, repo: str, vector_file: Path, tmp_path: Path, key_pair: tuple[Path, Path], local_log: LocalLog
) -> None:
    key, pub = key_pair
    digest = json.loads(cli("push", str(vector_file), "--repository", repo, "--json", env=NO_ENV).stdout)["digest"]
    signed = cli("sign", f"{repo}@{digest}", "--key", str(key), *local_log.sign_args, env=PASSWORD)
    assert signed.exit_code == 0, signed.stderr
    output = tmp_path / "logged.yaml"
    ok = cli("pull", f"{repo}:v0.22.19", "--key", str(pub), *local_log.verify_args, "-o", str(output), "--json")
    assert ok.exit_code == 0, ok.stderr
    assert output.read_bytes() == VECTOR
    [signature] = json.loads(ok.stdout)["signatures"]
    assert signature["log_index"] is not None
    untrusted = cli("pull", f"{repo}:v0.22.19", "--key", str(pub), "--trusted-root", str(tmp_path / "missing.json"))
    assert untrusted.exit_code == 3 and "trusted root not found" in untrusted.stderr


def test_pull_missing_artifact_is_a_registry_error(cli: Any, repo: str) -> None:
    result = cli("pull", f"{repo}:v9.9.9")
    assert result.exit_code == 5
    assert result.stderr.splitlines()[-1].startswith("error: ")
