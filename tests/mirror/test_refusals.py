"""What mirror, export and import refuse: a layout that lies about its digests or leaves blobs/, a tar
with ``..`` or links (exit 3, nothing imported); a release with unsigned or missing items (exit 10
unless --allow-unsigned)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import run
from pipeline.oci.reference import parse_repository
from tests.cli.test_release_cli import REV, keys
from tests.mirror.world import make_world, mirrored, release
from tests.oci.helpers import client as make_client
from tests.registry_fixtures import RegistryProcess

__all__ = ["keys"]


@dataclass(frozen=True)
class Ran:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def cli_module() -> Callable[..., Ran]:
    """The CLI in-process for module fixtures (``cli`` needs a test's capsys)."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Ran:
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            code = run(list(args))
        return Ran(code, out.getvalue(), err.getvalue())

    return invoke


@pytest.fixture(scope="module")
def exported(
    cli_module: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """An export of a small signed release, and its vector's reference."""
    tmp = tmp_path_factory.mktemp("exported")
    world = make_world(plain_registry.host, tmp)
    release(cli_module, world, keys[0])
    result = cli_module("export", f"{world.repository}:v1.0.0", "--to", str(tmp / "layout"))
    assert result.exit_code == 0, result.stderr
    return tmp / "layout", f"{world.repository}:v1.0.0"


def _nothing_imported(registry: RegistryProcess, to: str, reference: str) -> None:
    with make_client() as client:
        assert client.list_tags(parse_repository(mirrored(to, reference).rsplit(":", 1)[0])) == []


def _blob_changed(layout: Path) -> None:
    biggest = max((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(biggest.read_bytes())
    data[-1] ^= 1
    biggest.write_bytes(bytes(data))


def _index_outside(layout: Path) -> None:
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["digest"] = "sha256:../../../../etc/passwd"
    (layout / "index.json").write_text(json.dumps(index))


def _blob_is_a_link(layout: Path) -> None:
    victim = next((layout / "blobs" / "sha256").iterdir())
    (layout.parent / "outside").write_bytes(victim.read_bytes())
    victim.unlink()
    victim.symlink_to(layout.parent / "outside")


def _blobs_folder_is_a_link(layout: Path) -> None:
    (layout / "blobs").rename(layout.parent / "elsewhere")
    (layout / "blobs").symlink_to(layout.parent / "elsewhere")


LAYOUT_FAULTS: dict[str, Callable[[Path], None]] = {
    "blobs/ is a link": _blobs_folder_is_a_link,
    "blob content does not match its digest": _blob_changed,
    "index.json points outside blobs/": _index_outside,
    "a blob is a symlink": _blob_is_a_link,
}


@pytest.mark.parametrize("fault", LAYOUT_FAULTS)
def test_a_bad_layout_is_refused_and_nothing_imported(
    cli: Any, exported: tuple[Path, str], plain_registry: RegistryProcess, tmp_path: Path, fault: str
) -> None:
    layout, reference = exported
    bad = tmp_path / "bad" / "layout"
    shutil.copytree(layout, bad)
    LAYOUT_FAULTS[fault](bad)
    to = f"{plain_registry.host}/refused-{tmp_path.name}"
    result = cli("import", str(bad), "--to", to)
    assert result.exit_code == 3, (fault, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    _nothing_imported(plain_registry, to, reference)


def _tar_with(layout: Path, target: Path, extra: Callable[[tarfile.TarFile], None]) -> None:
    with tarfile.open(target, "w") as archive:
        for path in sorted(layout.rglob("*")):
            archive.add(path, arcname=path.relative_to(layout).as_posix(), recursive=False)
        extra(archive)


def _dotdot(archive: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("../escaped")
    info.size = 0
    archive.addfile(info)


def _symlink(archive: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("blobs/sha256/link")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive.addfile(info)


def _hardlink(archive: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("hard")
    info.type, info.linkname = tarfile.LNKTYPE, "index.json"
    archive.addfile(info)


@pytest.mark.parametrize("extra", [_dotdot, _symlink, _hardlink], ids=["dotdot", "symlink", "hardlink"])
def test_a_tar_with_escapes_or_links_is_refused(
    cli: Any, exported: tuple[Path, str], plain_registry: RegistryProcess, tmp_path: Path,
    extra: Callable[[tarfile.TarFile], None],
) -> None:  # fmt: skip
    layout, reference = exported
    archive = tmp_path / "bad.tar"
    _tar_with(layout, archive, extra)
    to = f"{plain_registry.host}/refused-tar-{tmp_path.name}"
    result = cli("import", str(archive), "--to", to)
    assert result.exit_code == 3, result.stderr
    assert "bad.tar" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()
    _nothing_imported(plain_registry, to, reference)


def test_unsigned_or_missing_items_fail_unless_allowed(cli: Any, plain_registry: RegistryProcess,
                                                       tmp_path: Path) -> None:  # fmt: skip
    world = make_world(plain_registry.host, tmp_path)
    vector = tmp_path / "vector.yaml"
    assembled = cli("assemble", "--source", str(world.source), "--version", "v1.0.0", "--git-revision", REV,
                    "-o", str(vector))  # fmt: skip
    assert assembled.exit_code == 0, assembled.stderr
    text = vector.read_text()
    first_digest = text.split("digest: ")[1].split()[0]
    vector.write_text(text.replace(first_digest, "sha256:" + "0" * 64, 1))  # pins an image that is not there
    pushed = cli("push", str(vector), "--repository", world.repository, "--tag", "v1.0.0")
    assert pushed.exit_code == 0, pushed.stderr
    to = f"{plain_registry.host}/unsigned-{tmp_path.name}"

    refused = cli("mirror", f"{world.repository}:v1.0.0", "--to", to)
    assert refused.exit_code == 10, refused.stderr
    assert "3 item(s) missing or unsigned" in refused.stderr
    assert "image missing at the source" in refused.stderr and "no signature" in refused.stderr
    _nothing_imported(plain_registry, to, f"{world.repository}:v1.0.0")

    allowed = cli("mirror", f"{world.repository}:v1.0.0", "--to", to, "--allow-unsigned", "--json")
    assert allowed.exit_code == 0, allowed.stderr
    result = json.loads(allowed.stdout)
    assert sorted(c["kind"] for c in result["copied"]) == ["index", "vector"]
    assert len(result["skipped"]) == 3
