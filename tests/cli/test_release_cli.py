"""release and verify-release end to end: a real registry, the release folder and the GitHub stand-in."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.apply import ReleasePorts, ReleaseRequest, ReleaseSettings, apply_plan, desired_release, observe_release
from pipeline.cosign.keys import generate_key_pair, load_private_key, load_public_key
from pipeline.cosign.verify import VerificationPolicy
from pipeline.oci import mediatypes
from pipeline.oci.mirror import parse_mirrors
from pipeline.oci.reference import parse_reference, parse_repository
from pipeline.plan import Action, build_plan
from pipeline.release import verify_release
from pipeline.secret import Secret
from pipeline.targets import ReleaseDirTarget
from pipeline.vector import load_source
from tests.conftest import REPO_ROOT
from tests.github_standin import GitHubStandIn
from tests.oci.helpers import client as make_client
from tests.oci.helpers import push_image
from tests.registry_fixtures import RegistryProcess
from tests.sigstore.log_fixtures import LocalLog, local_log
from tests.test_assemble import mirror_specs

SOURCE = REPO_ROOT / "release" / "release.yaml"
REV = "0123456789abcdef0123456789abcdef01234567"
PASSWORD = "release-pw"
_COUNTER = itertools.count()

__all__ = ["local_log"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("release-keys")
    pair = generate_key_pair(Secret(PASSWORD))
    (directory / "cosign.key").write_bytes(pair.private_pem.reveal())
    (directory / "cosign.pub").write_bytes(pair.public_pem)
    return directory / "cosign.key", directory / "cosign.pub"


class Setup:
    """One isolated release world: its own mirror prefix and artifact repository in the session registry."""

    def __init__(self, registry: RegistryProcess, tmp_path: Path) -> None:
        n = next(_COUNTER)
        self.registry = registry
        self.prefix = f"rel{n}"
        self.mirrors = mirror_specs(registry, self.prefix)
        self.repository = registry.ref(f"{self.prefix}/releases")
        self.release_dir = tmp_path / "releases"
        source = load_source(SOURCE.read_bytes(), "release.yaml")
        mirrors = parse_mirrors(self.mirrors)
        self.digests = {}
        with make_client() as c:
            for ref in source.references():
                _, self.digests[ref] = push_image(c, str(mirrors.apply(ref)), f"{self.prefix} {ref}".encode())

    def args(self, version: str, *extra: str) -> list[str]:
        mirror_args = [arg for spec in self.mirrors for arg in ("--registry-mirror", spec)]
        return [
            version,
            "--source",
            str(SOURCE),
            "--repository",
            self.repository,
            "--git-revision",
            REV,
            "--no-binaries",  # release/release.yaml's binaries are on github.com (tests with binaries: a local server)
            *mirror_args,
            *extra,
        ]


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under the roots with its size and mtime: equal snapshots mean nothing was written."""
    files: dict[str, tuple[int, int]] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                stat = path.stat()
                files[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return files


def test_release_to_a_folder_then_rerun_and_verify(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, local_log: LocalLog
) -> None:
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    env = {"COSIGN_PASSWORD": PASSWORD}
    args = world.args("v1.0.0", "--key", str(key), "--release-dir", str(world.release_dir), *local_log.sign_args)
    entries = local_log.entries

    registry_before = snapshot(plain_registry.storage)
    dry = cli("release", *args, "--dry-run", "--json", env=env)
    assert snapshot(plain_registry.storage) == registry_before, "a dry run writes nothing to the registry"
    assert dry.exit_code == 0, dry.stderr
    kinds = [action["kind"] for action in json.loads(dry.stdout)]
    assert kinds == [
        "push-vector",
        "sign-vector",
        *["sign-image"] * 5,
        "create-draft",
        "upload-asset",
        "upload-asset",
        "publish",
    ]
    assert not world.release_dir.exists(), "a dry run writes nothing"

    first = cli("release", *args, "--json", env=env)
    assert first.exit_code == 0, first.stderr
    result = json.loads(first.stdout)
    assert len(result["actions"]) == len(kinds)
    folder = world.release_dir / "v1.0.0"
    assert (folder / "cosign.pub").read_bytes() == pub.read_bytes()
    vector = (folder / "release.yaml").read_bytes()
    assert b"digest: sha256:" in vector and b"release-vector:\n  version: " in vector
    assert json.loads((folder / "release.json").read_text())["state"] == "published"
    # The default --bundle-format both: a hashedrekord entry (legacy .sig) and a dsse entry (v3 bundle) each.
    assert local_log.entries == entries + 12, "the vector and five images, each logged once per format"

    before = snapshot(plain_registry.storage, world.release_dir)
    again = cli("release", *args, "--json", env=env)
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["actions"] == []
    assert snapshot(plain_registry.storage, world.release_dir) == before, "a re-run writes nothing"
    assert local_log.entries == entries + 12, "a re-run uploads nothing"

    verify_args = [
        f"{world.repository}:v1.0.0",
        "--key",
        str(pub),
        *local_log.verify_args,
        "--release-dir",
        str(world.release_dir),
        *[arg for spec in world.mirrors for arg in ("--registry-mirror", spec)],
    ]
    verified = cli("verify-release", *verify_args, "--json")
    assert verified.exit_code == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] and len(report["images"]) == 5 and report["version"] == "v1.0.0"
    # Both formats are there (the default); one valid signature is enough, so the legacy one is verified and
    # the v3 referrer is only seen listed.
    assert [(i["formats"], i["verified_formats"]) for i in report["images"]] == [(["legacy", "v3"], ["legacy"])] * 5
    # The plain report does not show them, so it does not look the other format up (a request per image).
    policy = VerificationPolicy(public_key=load_public_key(pub.read_bytes(), str(pub)), keyless=None, rekor_keys=(),
                                ignore_tlog=True)  # fmt: skip
    with make_client() as c:
        plain = verify_release(c, parse_reference(f"{world.repository}:v1.0.0"), policy,
                               mirrors=parse_mirrors(world.mirrors), carried_formats=False)  # fmt: skip
    assert plain.ok and [check.formats for check in plain.images] == [("legacy",)] * 5

    # An image tag moved after the release: deployments would pull something else.
    moved = next(iter(world.digests))
    with make_client() as c:
        push_image(c, str(parse_mirrors(world.mirrors).apply(moved)), b"a different image")
    tag_moved = cli("verify-release", *verify_args)
    assert tag_moved.exit_code == 10
    # The result line on stdout, the reason once on stderr.
    assert f"FAILED  {moved.repo}" in tag_moved.stdout and "tag moved" not in tag_moved.stdout
    assert tag_moved.stderr.count("tag moved") == 1 and moved.repository in tag_moved.stderr
    assert cli("verify-release", *verify_args, "--ignore-tags").exit_code == 0

    # One image's legacy signature deleted: its v3 bundle still verifies.
    victim_ref, victim_digest = list(world.digests.items())[1]
    mirrored = parse_mirrors(world.mirrors).apply(victim_ref)
    sig_tag = "sha256-" + victim_digest.removeprefix("sha256:") + ".sig"
    base = f"{plain_registry.url}/v2/{mirrored.repository}/manifests"
    head = httpx.head(f"{base}/{sig_tag}", headers={"Accept": mediatypes.OCI_MANIFEST})
    assert httpx.delete(f"{base}/{head.headers['Docker-Content-Digest']}").status_code == 202
    v3_only = cli("verify-release", *verify_args, "--ignore-tags", "--json")
    assert v3_only.exit_code == 0, v3_only.stderr
    victim = next(i for i in json.loads(v3_only.stdout)["images"] if i["digest"] == victim_digest)
    assert (victim["formats"], victim["verified_formats"]) == (["v3"], ["v3"])
    # And its referrers fallback index (this registry has no referrers API): no signature left.
    index_tag = "sha256-" + victim_digest.removeprefix("sha256:")
    head = httpx.head(f"{base}/{index_tag}", headers={"Accept": mediatypes.OCI_INDEX})
    assert httpx.delete(f"{base}/{head.headers['Docker-Content-Digest']}").status_code == 202
    unsigned = cli("verify-release", *verify_args, "--ignore-tags", "--json")
    assert unsigned.exit_code == 10
    failures = [image for image in json.loads(unsigned.stdout)["images"] if not image["ok"]]
    assert len(failures) == 1 and "no signatures found" in failures[0]["problems"][0]

    # The wrong key: the vector's own signature fails first, nothing else is trusted.
    other = tmp_path / "other"
    cli("generate-key-pair", "--output-key-prefix", str(other), env={"COSIGN_PASSWORD": "x"})
    wrong = cli("verify-release", f"{world.repository}:v1.0.0", "--key", f"{other}.pub", "--insecure-ignore-tlog")
    assert wrong.exit_code == 10 and "signature verification failed" in wrong.stderr


def test_release_to_github_stand_in(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    with GitHubStandIn(owner="acme", repo="releases") as github:
        env = {"COSIGN_PASSWORD": PASSWORD, "GITHUB_TOKEN": github.token}
        args = world.args(
            "v2.0.0",
            "--key",
            str(key),
            "--github-repository",
            github.slug,
            "--github-api-url",
            github.api_url,
            "--no-tlog-upload",
        )
        result = cli("release", *args, env=env)
        assert result.exit_code == 0, result.stderr
        [release] = github.releases_for("v2.0.0")
        assert not release.draft
        assert {a.name: a.data for a in release.assets}["cosign.pub"] == pub.read_bytes()
        calls = github.calls()
        created = calls.index(("POST", "/repos/acme/releases/releases"))
        published = max(i for i, call in enumerate(calls) if call[0] == "PATCH")
        uploads = [i for i, call in enumerate(calls) if call[0] == "POST" and "/assets" in call[1]]
        assert created < min(uploads) and max(uploads) < published, "draft, uploads, then publish"
        assert all(github.token not in line for line in result.stderr.splitlines())

        requests_before = len(github.requests)
        dry = cli("release", *args, "--dry-run", env=env)
        assert dry.exit_code == 0 and "nothing to do" in dry.stdout
        again = cli("release", *args, env=env)
        assert again.exit_code == 0 and "already complete" in again.stdout
        assert all(seen.method == "GET" for seen in github.requests[requests_before:])

        verified = cli(
            "verify-release",
            f"{world.repository}:v2.0.0",
            "--key",
            str(pub),
            "--insecure-ignore-tlog",
            "--github-repository",
            github.slug,
            "--github-api-url",
            github.api_url,
            *[arg for spec in world.mirrors for arg in ("--registry-mirror", spec)],
            env={"GITHUB_TOKEN": github.token},
        )
        assert verified.exit_code == 0, verified.stderr


def test_published_release_without_our_assets_is_a_conflict(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, _ = keys
    world = Setup(plain_registry, tmp_path)
    with GitHubStandIn(owner="acme", repo="releases") as github:
        github.add_release("v3.0.0", draft=False, assets={"notes.txt": b"hand-made"})
        env = {"COSIGN_PASSWORD": PASSWORD, "GITHUB_TOKEN": github.token}
        args = world.args(
            "v3.0.0",
            "--key",
            str(key),
            "--github-repository",
            github.slug,
            "--github-api-url",
            github.api_url,
            "--no-tlog-upload",
        )
        before = snapshot(plain_registry.storage)
        result = cli("release", *args, env=env)
        assert result.exit_code == 8
        assert "published without" in result.stderr and "hint:" in result.stderr
        assert snapshot(plain_registry.storage) == before, "a conflict is found before any write"


def test_dry_run_takes_a_public_key(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    _, pub = keys
    world = Setup(plain_registry, tmp_path)
    args = world.args("v4.0.0", "--key", str(pub), "--dry-run", "--no-publish")
    result = cli("release", *args, env={"COSIGN_PASSWORD": None})
    assert result.exit_code == 0, result.stderr
    assert "push-vector" in result.stdout and "nothing written; not published (--no-publish)" in result.stderr
    assert result.stdout.startswith("release v4.0.0: 7 action(s); not published (--no-publish)\n")


def test_a_release_without_a_destination_is_refused_unless_no_publish(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, _ = keys
    world = Setup(plain_registry, tmp_path)
    env = {"COSIGN_PASSWORD": PASSWORD}
    refused = cli("release", *world.args("v4.1.0", "--key", str(key), "--no-tlog-upload"), env=env)
    assert refused.exit_code == 2
    assert refused.stderr == (
        "error: a release needs --github-repository or --release-dir (where it is published), or --no-publish\n"
    )
    tags = httpx.get(f"http://{plain_registry.host}/v2/{world.prefix}/releases/tags/list")
    assert tags.status_code == 404  # nothing pushed
    both = cli("release", *world.args("v4.1.0", "--key", str(key), "--no-publish", "--release-dir", "d"), env=env)
    assert both.exit_code == 2 and "--no-publish publishes nothing" in both.stderr
    done = cli("release", *world.args("v4.1.0", "--key", str(key), "--no-tlog-upload", "--no-publish"), env=env)
    assert done.exit_code == 0, done.stderr
    assert "not published (--no-publish)" in done.stdout
    again = cli("release", *world.args("v4.1.0", "--key", str(key), "--no-tlog-upload", "--no-publish"), env=env)
    assert again.stdout.rstrip().endswith("nothing written (" + again.stdout.split("(", 1)[1].split(")")[0]
                                          + "); not published (--no-publish)")  # fmt: skip
    as_json = cli("release", *world.args("v4.1.0", "--key", str(key), "--no-tlog-upload", "--no-publish", "--json"),
                  env=env)  # fmt: skip
    assert json.loads(as_json.stdout)["published"] is False


def test_a_release_made_without_the_log_is_completed_with_logged_signatures(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, local_log: LocalLog
) -> None:
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    env = {"COSIGN_PASSWORD": PASSWORD}
    base = world.args("v6.0.0", "--key", str(key), "--release-dir", str(world.release_dir))
    assert cli("release", *base, "--no-tlog-upload", env=env).exit_code == 0
    mirror_args = [arg for spec in world.mirrors for arg in ("--registry-mirror", spec)]
    verify = [f"{world.repository}:v6.0.0", "--key", str(pub), *mirror_args]
    unlogged = cli("verify-release", *verify, *local_log.verify_args)
    assert unlogged.exit_code == 10 and "no transparency log entry" in unlogged.stderr
    assert cli("verify-release", *verify, "--insecure-ignore-tlog").exit_code == 0

    dry = cli("release", *base, *local_log.sign_args, "--dry-run", "--json", env=env)
    assert dry.exit_code == 0, dry.stderr
    assert [a["kind"] for a in json.loads(dry.stdout)] == ["sign-vector", *["sign-image"] * 5]
    logged = cli("release", *base, *local_log.sign_args, env=env)
    assert logged.exit_code == 0, logged.stderr
    ok = cli("verify-release", *verify, *local_log.verify_args, "--json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"]
    state = _state(world, plain_registry)
    assert all(v == 2 for k, v in state.items() if k.endswith("layers")), "one unlogged and one logged layer each"
    again = cli("release", *base, *local_log.sign_args, "--json", env=env)
    assert again.exit_code == 0 and json.loads(again.stdout)["actions"] == []


def test_release_with_an_unreachable_log_fails_before_publishing(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, local_log: LocalLog
) -> None:
    key, _ = keys
    world = Setup(plain_registry, tmp_path)
    bogus = ["--rekor-url", "http://127.0.0.1:9", "--rekor-public-key", str(local_log.public_key)]
    args = world.args("v7.0.0", "--key", str(key), "--release-dir", str(world.release_dir), *bogus)
    result = cli("release", *args, env={"COSIGN_PASSWORD": PASSWORD})
    assert result.exit_code == 5
    assert (
        "error: cannot connect to the transparency log (after 4 attempts) (http://127.0.0.1:9/api/v1/log/entries)"
        in (result.stderr)
    )
    assert "Traceback" not in result.stderr
    assert not (world.release_dir / "v7.0.0" / "release.json").exists()


def _state(world: Setup, registry: RegistryProcess) -> dict[str, object]:
    """What a finished release leaves: the release folder's files and every .sig manifest's layer count."""
    state: dict[str, object] = {
        str(p.relative_to(world.release_dir)): p.read_bytes()
        for p in sorted(world.release_dir.rglob("*"))
        if p.is_file()
    }
    mirrors = parse_mirrors(world.mirrors)
    for ref, digest in world.digests.items():
        mirrored = mirrors.apply(ref)
        tag = "sha256-" + digest.removeprefix("sha256:") + ".sig"
        response = httpx.get(
            f"{registry.url}/v2/{mirrored.repository}/manifests/{tag}", headers={"Accept": mediatypes.OCI_MANIFEST}
        )
        state[f"{ref}.sig layers"] = len(response.json()["layers"])
    return state


class Crash(Exception):
    pass


def test_a_crash_between_any_two_actions_is_completed_by_a_rerun(
    plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """Crash before action k (every k), re-run, and reach the same state as an uninterrupted release."""
    key_path, _ = keys
    signing_key = load_private_key(Secret(key_path.read_bytes()), Secret(PASSWORD), str(key_path))
    from pipeline.artifact import ArtifactAnnotations, make_artifact
    from pipeline.assemble import build_vector

    def run_release(world: Setup, crash_at: int | None) -> int:
        mirrors = parse_mirrors(world.mirrors)
        with make_client() as resolving:
            source = load_source(SOURCE.read_bytes(), str(SOURCE))
            built = build_vector(resolving, source, SOURCE, "v5.0.0", REV, mirrors, concurrency=4)
        request = ReleaseRequest(
            version="v5.0.0",
            vector=built.vector,
            artifact=make_artifact(built.vector, ArtifactAnnotations(version="v5.0.0")),
            repository=parse_repository(world.repository),
            public_key_pem=signing_key.public_key_pem(),
            target_commitish=REV,
        )
        counter = itertools.count()

        def before(action: Action) -> None:
            if next(counter) == crash_at:
                raise Crash(action.kind)

        with make_client() as registry_client:
            target = ReleaseDirTarget(world.release_dir)
            ports = ReleasePorts(registry_client, signing_key.public_key, signing_key, target)
            settings = ReleaseSettings(mirrors, 1)
            desired = desired_release(request, settings, ports)
            plan = build_plan(desired, observe_release(desired, request, settings, ports))
            apply_plan(plan, request, settings, ports, before_action=before)
        return len(plan.actions)

    reference = Setup(plain_registry, tmp_path / "reference")
    total = run_release(reference, None)
    expected = _state(reference, plain_registry)
    assert total == 11
    for crash_at in range(total):
        world = Setup(plain_registry, tmp_path / f"crash-{crash_at}")
        with pytest.raises(Crash):
            run_release(world, crash_at)
        if crash_at < total - 1:
            published = world.release_dir / "v5.0.0" / "release.json"
            assert not published.exists() or json.loads(published.read_text())["state"] == "draft"
        remaining = run_release(world, None)
        # Image signatures run as a batch: the others may finish while one crashes.
        assert 1 <= remaining <= total - crash_at
        assert run_release(world, None) == 0
        state = _state(world, plain_registry)
        assert {k: v for k, v in state.items() if k.endswith("layers")} == {
            k: v for k, v in expected.items() if k.endswith("layers")
        }
        assert state["v5.0.0/cosign.pub"] == expected["v5.0.0/cosign.pub"]
        record = json.loads(state["v5.0.0/release.json"])  # type: ignore[arg-type]
        assert record["state"] == "published" and set(record["assets"]) == {"cosign.pub", "release.yaml"}
        # The vector differs between worlds (each seeds its own images); its structure does not.
        assert len(state["v5.0.0/release.yaml"]) == len(expected["v5.0.0/release.yaml"])  # type: ignore[arg-type]


def test_excluded_images_are_neither_signed_nor_checked(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """Third-party images (docker.io here) can be left out: we cannot push signatures to their registry."""
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    env = {"COSIGN_PASSWORD": PASSWORD}
    exclude = ["--exclude-image", "docker.io/*"]
    args = world.args("v6.0.0", "--key", str(key), "--no-tlog-upload", "--no-publish", *exclude)
    plan = cli("release", *args, "--dry-run", "--json", env=env)
    assert plan.exit_code == 0, plan.stderr
    signed = [a["target"] for a in json.loads(plan.stdout) if a["kind"] == "sign-image"]
    assert signed and all(name.startswith("ghcr.io/") for name in signed)
    done = cli("release", *args, "--json", env=env)
    assert done.exit_code == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["signatures_in"] == "own repositories" and report["signed"] == len(signed)
    assert sorted(name.split("@")[0] for name in report["unsigned"]) == [
        "docker.io/library/python",
        "docker.io/library/registry",
    ]
    assert f"{len(signed)} images and 0 oci artifacts signed in their own repositories; 2 pinned but not signed" in (
        done.stderr
    )
    verify = [
        f"{world.repository}:v6.0.0",
        "--key",
        str(pub),
        "--insecure-ignore-tlog",
        *[arg for spec in world.mirrors for arg in ("--registry-mirror", spec)],
    ]
    assert cli("verify-release", *verify).exit_code == 10, "without the exclusion the docker.io images fail"
    result = cli("verify-release", *verify, *exclude, "--json")
    assert result.exit_code == 0, result.stderr
    assert {image["image"].split("/")[0] for image in json.loads(result.stdout)["images"]} == {"ghcr.io"}


def test_release_in_v3_then_both_signs_only_what_each_format_lacks(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, local_log: LocalLog
) -> None:
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    env = {"COSIGN_PASSWORD": PASSWORD, "SOURCE_DATE_EPOCH": "1775719409"}
    base = world.args("v7.0.0", "--key", str(key), "--release-dir", str(world.release_dir), *local_log.sign_args)
    entries = local_log.entries
    first = cli("release", *base, "--bundle-format", "v3", env=env)
    assert first.exit_code == 0, first.stderr
    assert local_log.entries == entries + 6, "the vector and five images, one dsse entry each"
    mirror_args = [arg for spec in world.mirrors for arg in ("--registry-mirror", spec)]
    verify = [f"{world.repository}:v7.0.0", "--key", str(pub), *mirror_args, *local_log.verify_args]
    verified = cli("verify-release", *verify, "--json")
    assert verified.exit_code == 0, verified.stderr
    assert json.loads(verified.stdout)["ok"]
    again = cli("release", *base, "--bundle-format", "v3", "--json", env=env)
    assert again.exit_code == 0 and json.loads(again.stdout)["actions"] == []

    # legacy (the default) is missing everywhere: a legacy release re-signs all, "both" then plans nothing
    dry = cli("release", *base, "--dry-run", "--json", env={**env, "RELEASE_VECTOR_BUNDLE_FORMAT": "both"})
    assert [a["kind"] for a in json.loads(dry.stdout)] == ["sign-vector", *["sign-image"] * 5]
    assert cli("release", *base, env=env).exit_code == 0
    assert local_log.entries == entries + 12
    both = cli("release", *base, "--bundle-format", "both", "--json", env=env)
    assert both.exit_code == 0 and json.loads(both.stdout)["actions"] == []


def test_progress_is_a_rich_bar_on_a_terminal_and_plain_lines_otherwise(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    key, _ = keys
    world = Setup(plain_registry, tmp_path)
    env = {"COSIGN_PASSWORD": PASSWORD}
    plain = cli("release", *world.args("v7.0.0", "--key", str(key), "--no-tlog-upload", "--no-publish"), env=env)
    assert plain.exit_code == 0, plain.stderr
    # No release target: push and sign the vector, sign 5 images; the vector's lane runs beside the
    # images', so the order of the lines varies, but each action has one line, numbered 1 to 7.
    lines = [line for line in plain.stderr.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in lines] == [f"[{n}/7" for n in range(1, 8)]
    kinds = sorted(line.split()[1] for line in lines)
    assert kinds == ["push-vector", *["sign-image"] * 5, "sign-vector"]
    order = [line.split()[1] for line in lines]
    assert order.index("push-vector") < order.index("sign-vector")

    other = Setup(plain_registry, tmp_path / "tty")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = cli("release", *other.args("v7.0.0", "--key", str(key), "--no-tlog-upload", "--no-publish"), env=env)
    assert bar.exit_code == 0, bar.stderr
    assert "[1/7]" not in bar.stderr and "release v7.0.0" in bar.stderr


def test_a_release_dir_that_is_a_file_fails_before_anything_is_pushed(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], tmp_path: Path, local_log: LocalLog
) -> None:
    key, _ = keys
    world = Setup(plain_registry, tmp_path)
    world.release_dir.write_text("a file, not a folder")
    before = snapshot(plain_registry.storage)
    args = world.args("v8.0.0", "--key", str(key), "--release-dir", str(world.release_dir), *local_log.sign_args)
    result = cli("release", *args, env={"COSIGN_PASSWORD": PASSWORD})
    assert result.exit_code == 3, result.stderr
    assert "not a directory" in result.stderr and str(world.release_dir) in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(plain_registry.storage) == before, "nothing is pushed or signed before the target is checked"
