"""``rehearse``: the whole release on embedded local targets (its own docker-registry process)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.provenance import BUILD_TYPE
from pipeline.rehearsal import targets as rehearsal
from pipeline.vector import read_vector
from tests.conftest import REPO_ROOT, VECTORS
from tests.registry_fixtures import requires_registry

SOURCE = REPO_ROOT / "release" / "release.yaml"


def _gone(pid: int) -> bool:
    """The process has exited (reaped, or a zombie waiting for its parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _stop(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


@requires_registry
def test_rehearsal_releases_verifies_and_reruns(cli: Any, tmp_path: Path) -> None:
    result = cli("rehearse", "--source", str(SOURCE), "--workdir", str(tmp_path / "w"), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] and summary["rerun_actions"] == 0
    assert summary["images"] == 5 and summary["verified_images"] == 5
    assert summary["verified_binaries"] == 2  # release.yaml's wheel and sdist, served by the local binary server
    # Every second image is a 2-platform index: with --recursive its children are signed too.
    assert summary["multiarch_indexes"] == 2 and summary["images_signed"] == 5 + 2 * 2
    assert summary["vector"]["digest"].startswith("sha256:") and summary["vector_signed"]
    provenance = summary["provenance"]  # attested by release --attest provenance, verified with --require-provenance
    assert provenance["build_type"] == BUILD_TYPE and provenance["dependencies"] >= 5  # one per YAML path
    assert {Path(f).name for f in summary["outputs"]["files"]} == {"cosign.pub", "release.yaml", "release.json"}
    release_dir = Path(summary["outputs"]["release_dir"])
    assert json.loads((release_dir / "release.json").read_text())["state"] == "published"
    assert set(summary["seconds"]) >= {"registry", "seed", "keys", "release", "verify-release", "rerun", "total"}
    assert summary["registry"]["pid"] is None and not summary["registry"]["running"]
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{summary['registry']['url']}/v2/", timeout=1)
    assert "rehearse: release again" in result.stderr and "[1/" in result.stderr
    assert summary["timestamp_authority"].endswith("/api/v1/timestamp")  # every signature timestamped
    # The source definition itself is never touched.
    assert b"rehearsal-padding" not in SOURCE.read_bytes()

    text = cli("rehearse", "--source", str(SOURCE), "--workdir", str(tmp_path / "w"))  # the folder is reused
    assert text.exit_code == 0, text.stderr
    assert "rehearsal of release v0.0.0-rehearsal: ok" in text.stdout and "re-run planned nothing" in text.stdout
    # the summary counts the vector's entries, and the platform manifests --recursive adds apart from them
    assert ("5 images and 0 oci artifacts signed in their own repositories, with 4 platform manifests"
            " (--recursive); 0 pinned but not signed") in text.stderr + text.stdout


@requires_registry
@pytest.mark.parametrize("name", ["release-v0.22.18.yaml", "release-v0.22.19.yaml"])
def test_metal_stack_rehearsal_signs_charts_and_roles_and_pins_binaries(cli: Any, tmp_path: Path, name: str) -> None:
    """metal-stack's real vectors: every image, chart and role pinned and signed, every binary pinned from a local
    server and downloaded again by verify-release --check-binaries; the re-run plans nothing."""
    source = VECTORS / "metal-stack" / name
    result = cli("rehearse", "--source", str(source), "--workdir", str(tmp_path / "w"), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] and summary["rerun_actions"] == 0
    assert summary["artifacts_signed"] == 5  # 3 ansible roles, 2 OCI helm charts (single manifests)
    assert summary["verified_binaries"] == 5 and summary["verified_images"] == summary["images"]
    vector = read_vector((Path(summary["outputs"]["release_dir"]) / "release.yaml").read_bytes(), "release.yaml")
    assert not vector.unpinned() and all(binary.digest for binary in vector.binaries)
    kinds = [pinned.kind for pinned in vector.pinned_oci_references()]
    assert kinds.count("oci-artifact") == 5 and kinds.count("image") == len(vector.images)


@requires_registry
def test_rehearsal_padded_with_synthetic_images(cli: Any, tmp_path: Path) -> None:
    before = SOURCE.read_bytes()
    result = cli("rehearse", "--source", str(SOURCE), "--images", "20", "--version", "v9.9.9", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["images"] == 25 and summary["verified_images"] == 25
    assert summary["images_signed"] == 25 + 2 * summary["multiarch_indexes"]
    assert summary["version"] == "v9.9.9" and summary["outputs"]["removed"] is True
    assert not Path(summary["outputs"]["workdir"]).exists(), "a temp work folder is removed"
    assert SOURCE.read_bytes() == before


@requires_registry
def test_keep_leaves_the_registry_running_until_stopped(cli: Any, tmp_path: Path) -> None:
    result = cli("rehearse", "--source", str(SOURCE), "--workdir", str(tmp_path), "--keep")
    assert result.exit_code == 0, result.stderr
    lines = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in result.stdout.splitlines()[1:]}
    assert "verify" in lines and lines["verify"].startswith("release-vector verify-release ")
    assert "--registry-mirror ghcr.io=127.0.0.1:" in lines["mirrors"]
    url = lines["registry"].split()[0]
    pid = int(lines["registry"].split("(pid ")[1].split(";")[0])
    try:
        assert httpx.get(f"{url}/v2/", timeout=2).status_code == 200
        # The printed command line verifies the kept release as is.
        argv = lines["verify"].split()[1:]
        verified = cli(*argv)
        assert verified.exit_code == 0, verified.stderr
        assert (tmp_path / "keys" / "cosign.pub").exists()
    finally:
        _stop(pid)
    assert _gone(pid)


def test_missing_registry_binary_is_a_clear_error(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rehearsal, "DOCKER_REGISTRY", tmp_path / "no-such-docker-registry")
    result = cli("rehearse", "--source", str(SOURCE), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 5
    lines = result.stderr.strip().splitlines()
    assert lines[-2] == f"error: the docker-registry binary is not installed ({tmp_path / 'no-such-docker-registry'})"
    assert lines[-1].startswith("hint: run `make install`, or `apt-get install docker-registry`")
    assert result.stdout == ""


@requires_registry
def test_keyless_rehearsal_signs_both_ways_and_verifies_both_ways(cli: Any, tmp_path: Path) -> None:
    env = {"SIGSTORE_ID_TOKEN": None, "ACTIONS_ID_TOKEN_REQUEST_URL": None, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": None}
    result = cli("rehearse", "--source", str(SOURCE), "--workdir", str(tmp_path / "w"), "--keyless", "--json", env=env)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] and summary["rerun_actions"] == 0 and summary["verified_images"] == 5
    keyless = summary["keyless"]
    assert keyless["identity"] == (
        "https://github.com/rehearsal/releases/.github/workflows/release.yml@refs/tags/v0.0.0-rehearsal"
    )
    assert keyless["issuer"].startswith("http://127.0.0.1:")
    assert "--certificate-identity" in keyless["verify_command"] and "--ca-roots" in keyless["verify_command"]
    assert "verify-release-keyless" in summary["seconds"]
    assert "token from GitHub Actions OIDC token service" in result.stderr


@requires_registry
def test_a_rekor_v2_rehearsal_signs_v3_bundles_with_timestamps_and_verifies_them(cli: Any, tmp_path: Path) -> None:
    """rehearse --rekor-v2 --keyless: the signing config names the v2 stand-in and the TSA stand-in; release writes
    v3 bundles with dsse 0.0.2 entries and timestamps, verify-release (key and keyless) dates them by the
    timestamps, and the re-run plans nothing."""
    env = {"SIGSTORE_ID_TOKEN": None, "ACTIONS_ID_TOKEN_REQUEST_URL": None, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": None}
    work = tmp_path / "w"
    result = cli("rehearse", "--source", str(SOURCE), "--workdir", str(work), "--rekor-v2", "--keyless", "--keep",
                 "--json", env=env)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    try:
        assert summary["ok"] and summary["rerun_actions"] == 0 and summary["verified_images"] == 5
        assert summary["transparency_log"]["rekor_v2_url"].startswith("http://127.0.0.1:")
        assert summary["timestamp_authority"].endswith("/api/v1/timestamp")
        assert "--trusted-root" in summary["verify_command"]
        config = json.loads((work / "keys" / "signing_config.json").read_text())
        assert [s["majorApiVersion"] for s in config["rekorTlogUrls"]] == [2]
        assert "signing into the Rekor v2 log" in result.stderr
    finally:
        _stop(summary["registry"]["pid"])


def test_a_workdir_the_rehearsal_did_not_make_is_refused_and_left_alone(cli: Any, tmp_path: Path) -> None:
    """Issue 12: ``--workdir DIR`` wiped an existing DIR/keys/cosign.key and DIR/releases/."""
    work = tmp_path / "mine"
    (work / "keys").mkdir(parents=True)
    (work / "keys" / "cosign.key").write_text("my real key")
    (work / "releases" / "v1.0.0").mkdir(parents=True)
    (work / "releases" / "v1.0.0" / "release.yaml").write_text("published")
    result = cli("rehearse", "--source", str(SOURCE), "--workdir", str(work))
    assert result.exit_code == 8, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-2] == f"error: the work folder is not empty and was not made by a rehearsal ({work})"
    assert lines[-1].startswith("hint: choose a new or empty --workdir, or pass --force")
    assert (work / "keys" / "cosign.key").read_text() == "my real key"
    assert (work / "releases" / "v1.0.0" / "release.yaml").read_text() == "published"
    assert sorted(p.name for p in work.iterdir()) == ["keys", "releases"] and result.stdout == ""


def test_a_workdir_that_is_a_file_is_refused(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = cli("rehearse", "--source", str(SOURCE), "--workdir", str(tmp_path / "file"))
    assert result.exit_code == 8 and (tmp_path / "file").read_text() == "x"
    assert f"error: the work folder is not a folder ({tmp_path / 'file'})" in result.stderr


@requires_registry
def test_force_takes_over_a_foreign_workdir_and_keeps_what_is_not_the_rehearsals(cli: Any, tmp_path: Path) -> None:
    work = tmp_path / "mine"
    (work / "keys").mkdir(parents=True)
    (work / "keys" / "cosign.key").write_text("my real key")
    (work / "notes.txt").write_text("mine")
    result = cli("rehearse", "--source", str(SOURCE), "--workdir", str(work), "--force", "--json")
    assert result.exit_code == 0, result.stderr
    assert (work / "keys" / "cosign.key").read_text() != "my real key"
    assert (work / "notes.txt").read_text() == "mine" and (work / ".release-vector-rehearsal").is_file()
    again = cli("rehearse", "--source", str(SOURCE), "--workdir", str(work), "--json")  # now it is the rehearsal's
    assert again.exit_code == 0, again.stderr
