"""release/selfrelease.py: the release workflow's version check and the source definition of our own release."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from pipeline import __version__
from pipeline.vector import load_source
from tests.conftest import REPO_ROOT


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("selfrelease", REPO_ROOT / "release" / "selfrelease.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["selfrelease"] = module
    spec.loader.exec_module(module)
    return module


selfrelease = _load()
TAG = f"v{__version__}"


def _dist(tmp_path: Path, version: str = __version__) -> Path:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / f"release_vector-{version}-py3-none-any.whl").write_bytes(b"wheel bytes")
    (dist / f"release_vector-{version}.tar.gz").write_bytes(b"sdist bytes")
    return dist


def test_the_version_source_is_pipeline_init() -> None:
    assert selfrelease.package_version() == __version__


def test_check_version_accepts_the_package_tag_with_a_changelog_section() -> None:
    assert selfrelease.check_version(TAG) == __version__
    assert selfrelease.main(["check-version", TAG]) == 0


@pytest.mark.parametrize("tag", ["v9.9.9", __version__, f"{TAG}-rc1", "latest"])
def test_check_version_refuses_another_tag(tag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert selfrelease.main(["check-version", tag]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"is not the package version {TAG}" in err and "pipeline/__init__.py" in err


def test_check_version_wants_a_changelog_section(tmp_path: Path) -> None:
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text("# Changelog\n\n## [Unreleased]\n")
    with pytest.raises(selfrelease.SelfReleaseError, match=rf"no section '## \[{__version__}\]'"):
        selfrelease.check_version(TAG, changelog=changelog)


def test_changelog_keeps_a_changelog() -> None:
    text = (REPO_ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n") and "keepachangelog.com" in text
    assert "## [Unreleased]" in text and f"## [{__version__}]" in text


def test_source_definition_names_the_wheel_and_sdist_with_their_sha256(tmp_path: Path) -> None:
    dist = _dist(tmp_path)
    output = tmp_path / "self.yaml"
    assert selfrelease.main(["source", str(dist), "--tag", TAG, "--github-repository", "acme/rv", "--output",
                             str(output)]) == 0  # fmt: skip
    text = output.read_bytes()
    entry = yaml.safe_load(text)["binaries"]["release-vector"]["release-vector"]
    base = f"https://github.com/acme/rv/releases/download/{TAG}/"
    assert entry["wheel"] == {
        "url": f"{base}release_vector-{__version__}-py3-none-any.whl",
        "digest": "sha256:" + hashlib.sha256(b"wheel bytes").hexdigest(),
    }
    assert entry["sdist"]["url"] == f"{base}release_vector-{__version__}.tar.gz"
    assert entry["sdist"]["digest"] == "sha256:" + hashlib.sha256(b"sdist bytes").hexdigest()
    source = load_source(text, str(output))  # a valid source definition: what `release --source` reads
    assert not source.images


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "expected one wheel in .*, found none"),
        (["release_vector-0.0.1-py3-none-any.whl", "release_vector-0.0.2-py3-none-any.whl"], "expected one wheel"),
        (["release_vector-0.0.1-py3-none-any.whl", "release_vector-0.0.1.tar.gz"], "is version 0.0.1, the release"),
    ],
)
def test_source_definition_refuses_other_distributions(tmp_path: Path, files: list[str], message: str) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in files:
        (dist / name).write_bytes(b"x")
    with pytest.raises(selfrelease.SelfReleaseError, match=message):
        selfrelease.source_definition(dist, TAG, "acme/rv")


@pytest.mark.parametrize(("tag", "repository"), [("1.0", "acme/rv"), (TAG, "acme"), (TAG, "a/b\nx: 1"), (TAG, "a/b\n")])
def test_source_definition_refuses_bad_arguments(tmp_path: Path, tag: str, repository: str) -> None:
    with pytest.raises(selfrelease.SelfReleaseError, match="not a"):
        selfrelease.source_definition(_dist(tmp_path), tag, repository)
