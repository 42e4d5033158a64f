"""release-vector's own release: the checks and the source definition the release workflow uses.

Standard library only, so the workflow runs it with any Python 3.11+ before release-vector is installed:

    python release/selfrelease.py check-version v1.2.3
        the tag is "v" + pipeline/__init__.py's __version__ (the one version source) and CHANGELOG.md has a
        section for that version; exit 1 naming the mismatch otherwise.
    python release/selfrelease.py tag
        "v" + __version__: the tag a release of this checkout gets.
    python release/selfrelease.py source dist/ --tag v1.2.3 --github-repository OWNER/REPO [--output FILE]
        the source definition of the release (metal-stack's release.yaml shape): the wheel and the sdist in
        dist/ as `binaries` entries, each with the URL the GitHub release serves it from and its sha256 as
        `digest: sha256:<hex>` (the shape `assemble` gives pinned binaries), and the repository at that tag.
        No image is built yet, so `docker-images` is empty.

release/release.yaml stays what `make rehearse` and the tests use (it names images this project does not
build yet); this file describes only what a release really ships.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION_FILE = ROOT / "pipeline" / "__init__.py"
CHANGELOG = ROOT / "CHANGELOG.md"
WHEEL = re.compile(r"^release_vector-(?P<version>[^-]+)-py3-none-any\.whl$")
SDIST = re.compile(r"^release_vector-(?P<version>[^-]+)\.tar\.gz$")
REPOSITORY = re.compile(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+")


class SelfReleaseError(Exception):
    """One line naming what is wrong and where."""


def package_version(path: Path = VERSION_FILE) -> str:
    """``__version__`` of ``pipeline/__init__.py``, read without importing the package."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.Assign):
            continue
        named = any(isinstance(target, ast.Name) and target.id == "__version__" for target in node.targets)
        if named and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return node.value.value
    raise SelfReleaseError(f"no __version__ = '...' in {path}")


def check_version(tag: str, version_file: Path = VERSION_FILE, changelog: Path = CHANGELOG) -> str:
    """The version the tag releases, after checking it against the version source and the changelog."""
    version = package_version(version_file)
    if tag != f"v{version}":
        raise SelfReleaseError(
            f"tag {tag!r} is not the package version v{version} ({version_file}): set __version__ or tag v{version}"
        )
    heading = re.compile(rf"^## \[{re.escape(version)}\]", re.MULTILINE)
    if not heading.search(changelog.read_text(encoding="utf-8")):
        raise SelfReleaseError(f"{changelog} has no section '## [{version}]' for release {tag}")
    return version


def _one(dist: Path, pattern: re.Pattern[str], what: str, version: str) -> Path:
    found = sorted(p for p in dist.iterdir() if p.is_file() and pattern.match(p.name))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise SelfReleaseError(f"expected one {what} in {dist}, found {names}")
    file_version = pattern.match(found[0].name)["version"]  # type: ignore[index]
    if file_version != version:
        raise SelfReleaseError(f"{found[0]} is version {file_version}, the release is {version}")
    return found[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_definition(dist: Path, tag: str, github_repository: str) -> str:
    """The source definition (YAML text) of release ``tag`` with the wheel and sdist found in ``dist``."""
    if not REPOSITORY.fullmatch(github_repository):
        raise SelfReleaseError(f"not a GitHub repository OWNER/REPO: {github_repository!r}")
    if not re.fullmatch(r"v[0-9A-Za-z][0-9A-Za-z._+-]*", tag):
        raise SelfReleaseError(f"not a release tag: {tag!r}")
    version = tag[1:]
    home = f"https://github.com/{github_repository}"
    lines = [
        f"# release-vector's own release {tag}: written by release/selfrelease.py from the built distributions.",
        "# Each binary names the URL its GitHub release serves it from and its sha256.",
        "binaries:",
        "  release-vector:",
        "    release-vector:",
        f"      repository: {home}",
        f"      version: {tag}",
    ]
    for key, pattern, what in (("wheel", WHEEL, "wheel"), ("sdist", SDIST, "sdist")):
        path = _one(dist, pattern, what, version)
        lines += [
            f"      {key}:",
            f"        url: {home}/releases/download/{tag}/{path.name}",
            f"        digest: sha256:{_sha256(path)}",
        ]
    lines += [
        "docker-images: {}",
        "projects:",
        "  release-vector:",
        "    - release-vector",
        "repositories:",
        "  release-vector:",
        "    release-vector:",
        f"      ref: {tag}",
        f"      url: {home}.git",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="selfrelease.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("tag", help='"v" + __version__')
    check = commands.add_parser("check-version", help="the tag is v + __version__ and CHANGELOG.md has it")
    check.add_argument("tag")
    source = commands.add_parser("source", help="write the release's source definition")
    source.add_argument("dist", type=Path)
    source.add_argument("--tag", required=True)
    source.add_argument("--github-repository", required=True)
    source.add_argument("--output", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    try:
        if args.command == "tag":
            print(f"v{package_version()}")
        elif args.command == "check-version":
            print(check_version(args.tag))
        else:
            text = source_definition(args.dist, args.tag, args.github_repository)
            if args.output is None:
                sys.stdout.write(text)
            else:
                args.output.write_text(text, encoding="utf-8")
    except (SelfReleaseError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
