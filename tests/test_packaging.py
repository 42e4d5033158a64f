"""The wheel and the sdist stand alone: `python -m build` makes both, `twine check` passes, the wheel carries
every data file, and the wheel installed into a fresh venv outside the checkout runs `rehearse` in an empty
folder (and the rehearsal of our own release, with the source definition the release workflow writes).

Slow (a build, a venv, an install from the package index, two rehearsals): marked ``slow``; CI runs it.
"""

from __future__ import annotations

import email.parser
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import __version__
from tests.action_steps import Runner
from tests.conftest import REPO_ROOT
from tests.registry_fixtures import requires_registry

pytestmark = pytest.mark.slow

WHEEL_NAME = f"release_vector-{__version__}-py3-none-any.whl"
SDIST_NAME = f"release_vector-{__version__}.tar.gz"


@dataclass(frozen=True)
class Dists:
    folder: Path
    wheel: Path
    sdist: Path


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """`python -m build` of the checkout (the wheel is built from the sdist, so the sdist is complete too)."""
    folder = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(folder), str(REPO_ROOT)],
                   check=True, capture_output=True, cwd=folder)  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == sorted([WHEEL_NAME, SDIST_NAME])
    return Dists(folder, folder / WHEEL_NAME, folder / SDIST_NAME)


def _package_data() -> set[str]:
    """Every file under pipeline/ that is not Python source: what the code reads as package data."""
    return {
        path.relative_to(REPO_ROOT).as_posix()
        for path in (REPO_ROOT / "pipeline").rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }


def test_twine_check_passes(dists: Dists) -> None:
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(dists.wheel), str(dists.sdist)],
                             capture_output=True, text=True)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2


def test_wheel_carries_every_module_and_data_file(dists: Dists) -> None:
    names = set(zipfile.ZipFile(dists.wheel).namelist())
    data = _package_data()
    assert {"pipeline/data/trusted_root.json", "pipeline/py.typed"} <= data
    assert data <= names, f"package data missing from the wheel: {sorted(data - names)}"
    modules = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "pipeline").rglob("*.py")}
    assert modules <= names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "release/"))]


def test_wheel_metadata_is_what_an_index_shows(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as wheel:
        info = f"release_vector-{__version__}.dist-info"
        metadata = email.parser.Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        assert f"{info}/licenses/LICENSE" in wheel.namelist()
    assert metadata["Name"] == "release-vector" and metadata["Version"] == __version__
    assert metadata["Summary"] and metadata["Requires-Python"] == ">=3.11"
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Description-Content-Type"] == "text/markdown"
    classifiers = metadata.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers and "Typing :: Typed" in classifiers
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(urls)
    assert "release-vector = pipeline.cli:main" in entry_points


def test_sdist_builds_the_wheel_and_nothing_else(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "pipeline/data/trusted_root.json"} <= names
    assert _package_data() <= names
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]


@pytest.fixture(scope="module")
def installed(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The wheel in a fresh venv outside the checkout, made by action.yml's own steps (resolve: the `wheel`
    input; install: `python -m venv` + pip): its ``release-vector`` script."""
    runner = Runner(tmp_path_factory.mktemp("runner"))
    env = {"INPUT_VERSION": "", "INPUT_WHEEL": str(dists.wheel), "ACTION_REF": "", "PYTHON_VERSION": "3"}
    code, resolved, text = runner.run("resolve", env)
    assert code == 0, text
    venv = Path(resolved["venv"])
    assert not venv.exists() and not venv.is_relative_to(REPO_ROOT)
    env = {"PYTHON": sys.executable, "SPEC": resolved["spec"], "VENV": str(venv)}
    code, outputs, text = runner.run("install", env)
    assert code == 0, text[-3000:]
    assert outputs == {"version": __version__}
    assert (venv / "pyvenv.cfg").exists()
    yield venv / "bin" / "release-vector"


def _clean_env() -> dict[str, str]:
    """No trace of the checkout: no PYTHONPATH, no virtualenv of ours, none of the caller's settings."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "COSIGN_PASSWORD", "GITHUB_TOKEN", "REGISTRY_USERNAME", "REGISTRY_PASSWORD")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("RELEASE_VECTOR_")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env


def _run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script), *args], cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_installed_wheel_runs_from_its_venv(installed: Path, tmp_path: Path) -> None:
    version = _run(installed, "--version", cwd=tmp_path)
    assert (version.returncode, version.stdout) == (0, f"release-vector {__version__}\n")
    where = subprocess.run([str(installed.parent / "python"), "-c", "import pipeline; print(pipeline.__file__)"],
                           cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, check=True)  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(installed.parent.parent)  # the venv's copy, not the checkout


@requires_registry
def test_installed_wheel_rehearses_in_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _run(installed, "rehearse", "--json", cwd=empty)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["version"] and summary["vector"]["digest"].startswith("sha256:")
    assert summary["images"] >= 1
    assert "minimal source definition" in done.stderr
    assert list(empty.iterdir()) == []  # the rehearsal's temp folder is elsewhere and gone


@requires_registry
def test_installed_wheel_rehearses_our_own_release(installed: Path, dists: Dists, tmp_path: Path) -> None:
    """The source definition the release workflow writes (release/selfrelease.py), rehearsed by the wheel."""
    spec = importlib.util.spec_from_file_location("selfrelease", REPO_ROOT / "release" / "selfrelease.py")
    assert spec is not None and spec.loader is not None
    selfrelease = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(selfrelease)
    source = tmp_path / "release.yaml"
    source.write_text(selfrelease.source_definition(dists.folder, f"v{__version__}", "release-vector/release-vector"))
    work = tmp_path / "work"
    done = _run(installed, "rehearse", "--source", str(source), "--workdir", str(work), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    published = next(work.rglob("release.yaml"))
    assert f"sha256:{selfrelease._sha256(dists.wheel)}" in published.read_text()  # the signed vector pins the wheel


def test_no_command_reads_files_of_the_checkout() -> None:
    """The code names no path inside the repository but the default source definition, which `rehearse`
    replaces by a built-in minimal one when it is missing (the test above runs it so)."""
    relative = []
    for path in (REPO_ROOT / "pipeline").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for needle in ('Path("release', "Path('release", "parent.parent", "parents[", '"tests/', '"bench/'):
            if needle in text:
                relative.append(f"{path.relative_to(REPO_ROOT)}: {needle}")
    # A new one: make the file package data under pipeline/data/ and read it with importlib.resources
    # (as cosign/trust.py reads trusted_root.json), or the installed wheel cannot find it.
    # release-vector.yaml is the user's settings file in the working directory, not a file of this checkout.
    assert relative == ['pipeline/cli/config.py: Path("release', 'pipeline/cli/vector.py: Path("release']
