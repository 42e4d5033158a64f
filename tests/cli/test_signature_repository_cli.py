"""--signature-repository (cosign's COSIGN_REPOSITORY): signatures of images in a registry we do not write to,
kept in a repository of another registry. Real registries: the images in the anonymous one (nothing is
written there), the signatures in the Basic-auth one (REGISTRY_USERNAME/PASSWORD go to it because the option
names it). Debian's docker-registry 2.8 has no referrers API: the v3 bundles are listed in the fallback index
at tag sha256-<hex> of the signature repository, their subject the image's digest in its own repository."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.cosign.keys import generate_key_pair
from pipeline.oci.auth import Credential, StaticCredentials
from pipeline.oci.mirror import parse_mirrors
from pipeline.oci.reference import parse_reference, parse_repository
from pipeline.secret import Secret
from pipeline.signatures.referrer import referrers_tag
from tests.cli.test_release_cli import Setup
from tests.oci.helpers import client as make_client
from tests.oci.helpers import push_image
from tests.registry_fixtures import BASIC_USERS, RegistryProcess

PASSWORD = "sigrepo-pw"
USER = "alice"
_COUNTER = itertools.count()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("sigrepo-keys")
    pair = generate_key_pair(Secret(PASSWORD))
    (directory / "cosign.key").write_bytes(pair.private_pem.reveal())
    (directory / "cosign.pub").write_bytes(pair.public_pem)
    return directory / "cosign.key", directory / "cosign.pub"


def _env(**extra: str | None) -> dict[str, str | None]:
    env: dict[str, str | None] = {"COSIGN_PASSWORD": PASSWORD, "REGISTRY_USERNAME": USER,
                                  "REGISTRY_PASSWORD": BASIC_USERS[USER], "COSIGN_REPOSITORY": None}  # fmt: skip
    env.update(extra)
    return env


def _tags_of(registry: RegistryProcess, repositories: Iterable[str]) -> dict[str, list[str]]:
    """The tags of each repository (``PATH`` in the anonymous registry)."""
    with httpx.Client(trust_env=False) as http:
        return {repo: sorted(http.get(f"{registry.url}/v2/{repo}/tags/list").json()["tags"] or [])
                for repo in repositories}  # fmt: skip


def test_sign_verify_in_a_signature_repository_of_another_registry(
    cli: Any, plain_registry: RegistryProcess, basic_registry: RegistryProcess, keys: tuple[Path, Path]
) -> None:
    key, pub = keys
    n = next(_COUNTER)
    prefix = f"third{n}"
    image = plain_registry.ref(f"{prefix}/library/nginx:1.27")
    with make_client() as c:
        _, digest = push_image(c, image, f"nginx {n}".encode())
    signatures = basic_registry.ref(f"sigs{n}/signatures")
    before = _tags_of(plain_registry, [f"{prefix}/library/nginx"])

    signed = cli("sign", image, "--key", str(key), "--no-tlog-upload", "--signature-repository", signatures, "--json",
                 env=_env())  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    assert _tags_of(plain_registry, [f"{prefix}/library/nginx"]) == before == {f"{prefix}/library/nginx": ["1.27"]}

    # Both layouts landed in the signature repository: the .sig tag, and (no referrers API) the fallback
    # index whose one entry is a referrer manifest with the image's digest as subject.
    credentials = StaticCredentials({basic_registry.host: Credential(USER, Secret(BASIC_USERS[USER]))})
    repo = parse_repository(signatures)
    with make_client(credentials) as c:
        assert set(c.list_tags(repo)) == {f"{referrers_tag(digest)}.sig", referrers_tag(digest)}
        sig = json.loads(c.get_manifest(repo.tag(f"{referrers_tag(digest)}.sig")).data)
        payload = json.loads(c.get_blob(repo, sig["layers"][0]["digest"]))
        assert payload["critical"]["identity"]["docker-reference"] == parse_reference(image).cosign_name
        assert payload["critical"]["image"]["docker-manifest-digest"] == digest
        index = json.loads(c.get_manifest(repo.tag(referrers_tag(digest))).data)
        (entry,) = index["manifests"]
        referrer = json.loads(c.get_manifest(repo.digest(entry["digest"])).data)
        assert referrer["subject"]["digest"] == digest

    verify = ["verify", image, "--key", str(pub), "--insecure-ignore-tlog", "--check-reference", "--json"]
    found = cli(*verify, "--signature-repository", signatures, env=_env())
    assert found.exit_code == 0, found.stderr
    assert [s["format"] for s in json.loads(found.stdout)[0]["signatures"]] == ["legacy", "v3"]
    assert cli(*verify, env=_env(COSIGN_REPOSITORY=signatures)).exit_code == 0, "the env var is cosign's"
    missing = cli(*verify, env=_env())
    assert missing.exit_code == 10 and "no signatures found" in missing.stderr
    # The signature repository's registry is named on the command line: the env credentials go there, and
    # without them it refuses (exit 4), it does not look unsigned.
    refused = cli(*verify, "--signature-repository", signatures, env=_env(REGISTRY_USERNAME=None,
                                                                         REGISTRY_PASSWORD=None))  # fmt: skip
    assert refused.exit_code == 4, refused.stderr
    again = cli("sign", image, "--key", str(key), "--no-tlog-upload", "--signature-repository", signatures, "--json",
                env=_env())  # fmt: skip
    assert again.exit_code == 0 and {r["status"] for r in json.loads(again.stdout)} == {"already signed"}


@pytest.mark.parametrize("command", ["verify", "pull"])
def test_bad_signature_repository_is_a_usage_error(
    cli: Any, plain_registry: RegistryProcess, keys: tuple[Path, Path], command: str
) -> None:
    result = cli(command, plain_registry.ref("x/y:1"), "--key", str(keys[1]), "--signature-repository",
                 "example.com/sigs:v1")  # fmt: skip
    assert result.exit_code == 2, result.stderr
    assert "--signature-repository" in result.stderr and "without tag or digest" in result.stderr
    assert "Traceback" not in result.stderr


def test_release_signs_third_party_images_into_the_signature_repository(
    cli: Any,
    plain_registry: RegistryProcess,
    basic_registry: RegistryProcess,
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    """metal-stack's release.yaml names docker.io images: with --signature-repository they are signed too."""
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    signatures = basic_registry.ref(f"{world.prefix}/signatures")
    mirrors = parse_mirrors(world.mirrors)
    image_repositories = {mirrors.apply(ref).repository for ref in world.digests}
    before = _tags_of(plain_registry, image_repositories)
    args = world.args("v7.0.0", "--key", str(key), "--no-tlog-upload", "--no-publish",
                      "--signature-repository", signatures)  # fmt: skip
    plan = cli("release", *args, "--dry-run", "--json", env=_env())
    assert plan.exit_code == 0, plan.stderr
    planned = [a["target"] for a in json.loads(plan.stdout) if a["kind"] == "sign-image"]
    assert any(name.startswith("docker.io/") for name in planned)
    # a dry run signs nothing: its summary says what would be signed, never that it was
    assert f"{len(planned)} images and 0 oci artifacts to be signed in {signatures}" in plan.stderr
    assert "artifacts signed in" not in plan.stderr
    done = cli("release", *args, "--json", env=_env())
    assert done.exit_code == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["signatures_in"] == signatures and report["unsigned"] == []
    assert f"{len(planned)} images and 0 oci artifacts signed in {signatures}; 0 pinned but not signed" in done.stderr
    assert _tags_of(plain_registry, image_repositories) == before, "nothing is written beside the images"

    again = cli("release", *args, "--dry-run", "--json", env=_env())
    assert again.exit_code == 0 and json.loads(again.stdout) == [], again.stdout

    mirror_args = [arg for spec in world.mirrors for arg in ("--registry-mirror", spec)]
    verify = [f"{world.repository}:v7.0.0", "--key", str(pub), "--insecure-ignore-tlog", *mirror_args, "--json"]
    checked = cli("verify-release", *verify, "--signature-repository", signatures, env=_env())
    assert checked.exit_code == 0, checked.stderr
    images = json.loads(checked.stdout)["images"]
    assert {image["image"].split("/")[0] for image in images} == {"ghcr.io", "docker.io"}
    assert all(image["formats"] == ["legacy", "v3"] for image in images)
    assert cli("verify-release", *verify, env=_env()).exit_code == 10, "without it the signatures are missing"

    pull = ["pull", f"{world.repository}:v7.0.0", "--key", str(pub), "--insecure-ignore-tlog", "--json"]
    pulled = cli(*pull, "--signature-repository", signatures, env=_env())
    assert pulled.exit_code == 0, pulled.stderr
    assert cli(*pull, env=_env()).exit_code == 10

    # --exclude-image still leaves images out, and the summary names them beside the signature repository.
    excluded = cli("release", *world.args("v7.0.1", "--key", str(key), "--no-tlog-upload", "--no-publish",
                                          "--signature-repository", signatures, "--exclude-image", "docker.io/*",
                                          "--json"), env=_env())  # fmt: skip
    assert excluded.exit_code == 0, excluded.stderr
    report = json.loads(excluded.stdout)
    assert report["signatures_in"] == signatures
    assert sorted(name.split("@")[0] for name in report["unsigned"]) == ["docker.io/library/python",
                                                                         "docker.io/library/registry"]  # fmt: skip
    assert f"signed in {signatures}; 2 pinned but not signed (--exclude-image)" in excluded.stderr


def test_the_config_file_key_sets_it(
    cli: Any, plain_registry: RegistryProcess, basic_registry: RegistryProcess, keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    key, pub = keys
    n = next(_COUNTER)
    image = plain_registry.ref(f"conf{n}/quay.io/app:1")
    with make_client() as c:
        push_image(c, image, f"conf {n}".encode())
    signatures = basic_registry.ref(f"conf{n}/signatures")
    config = tmp_path / "release-vector.yaml"
    config.write_text(f"signature-repository: {signatures}\n")
    env = _env(RELEASE_VECTOR_CONFIG=str(config))
    assert cli("sign", image, "--key", str(key), "--no-tlog-upload", env=env).exit_code == 0
    verify = ["verify", image, "--key", str(pub), "--insecure-ignore-tlog"]
    assert cli(*verify, env=env).exit_code == 0
    assert cli(*verify, "--signature-repository", plain_registry.ref(f"conf{n}/elsewhere"), env=env).exit_code == 10


def test_mirror_and_export_carry_the_signatures_from_the_signature_repository(
    cli: Any, plain_registry: RegistryProcess, basic_registry: RegistryProcess, keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    """Read from the signature repository, the signatures land beside each item at the destination: the copy
    verifies without the option (and the layout offline)."""
    key, pub = keys
    world = Setup(plain_registry, tmp_path)
    signatures = basic_registry.ref(f"{world.prefix}/signatures")
    released = cli("release", *world.args("v8.0.0", "--key", str(key), "--no-tlog-upload", "--no-publish",
                                          "--signature-repository", signatures), env=_env())  # fmt: skip
    assert released.exit_code == 0, released.stderr
    mirror_args = [arg for spec in world.mirrors for arg in ("--registry-mirror", spec)]
    to = plain_registry.ref(f"{world.prefix}-copy")
    args = [f"{world.repository}:v8.0.0", "--to", to, *mirror_args, "--key", str(pub), "--insecure-ignore-tlog",
            "--json"]  # fmt: skip
    assert cli("mirror", *args, env=_env()).exit_code == 10, "without it the vector's signature is missing"
    mirrored = cli("mirror", *args, "--signature-repository", signatures, env=_env())
    assert mirrored.exit_code == 0, mirrored.stderr
    result = json.loads(mirrored.stdout)
    kinds = [copied["kind"] for copied in result["copied"]]
    assert kinds.count("signature") == 2 * (1 + kinds.count("image")), kinds  # a .sig and a referrer each
    assert all(c["source"].startswith(f"{signatures}:") or c["source"].startswith(f"{signatures}@")
               for c in result["copied"] if c["kind"] == "signature")  # fmt: skip
    host, _, path = world.repository.partition("/")
    copy = f"{to}/{host.replace(':', '_')}/{path}:v8.0.0"
    rules = [arg for rule in result["registry_mirrors"] for arg in ("--registry-mirror", rule)]
    verified = cli("verify-release", copy, "--key", str(pub), "--insecure-ignore-tlog", *rules, env=_env())
    assert verified.exit_code == 0, verified.stderr

    layout = tmp_path / "export.tar"
    exported = cli("export", f"{world.repository}:v8.0.0", "--to", str(layout), *mirror_args, "--key", str(pub),
                   "--insecure-ignore-tlog", "--signature-repository", signatures, env=_env())  # fmt: skip
    assert exported.exit_code == 0, exported.stderr
    offline = cli("verify-release", "--oci-layout", str(layout), "--key", str(pub), "--insecure-ignore-tlog")
    assert offline.exit_code == 0, offline.stderr


def test_through_the_referrers_api_the_signature_repository_lists_a_subject_it_does_not_hold(
    cli: Any, plain_registry: RegistryProcess, basic_registry: RegistryProcess, keys: tuple[Path, Path]
) -> None:
    """A registry with the referrers API (the proxy) takes the referrer whose subject is in another registry
    and lists it under the image's digest in the signature repository: no fallback index is written."""
    from tests.referrers_proxy import ReferrersProxy

    key, pub = keys
    n = next(_COUNTER)
    image = basic_registry.ref(f"api{n}/app:1")
    credentials = StaticCredentials({basic_registry.host: Credential(USER, Secret(BASIC_USERS[USER]))})
    with make_client(credentials) as c:
        _, digest = push_image(c, image, f"api {n}".encode())
    with ReferrersProxy(plain_registry.url) as proxy:
        signatures = proxy.ref(f"api{n}/signatures")
        sign = ["sign", image, "--key", str(key), "--no-tlog-upload", "--bundle-format", "v3"]
        signed = cli(*sign, "--signature-repository", signatures, env=_env())
        assert signed.exit_code == 0, signed.stderr
        assert len(proxy.referrers[(f"api{n}/signatures", digest)]) == 1
        verify = ["verify", image, "--key", str(pub), "--insecure-ignore-tlog"]
        assert cli(*verify, "--signature-repository", signatures, env=_env()).exit_code == 0
        assert cli(*verify, env=_env()).exit_code == 10
    with httpx.Client(trust_env=False) as http:
        tags = http.get(f"{plain_registry.url}/v2/api{n}/signatures/tags/list").json().get("tags")
    assert not tags, tags  # the referrer is stored by digest only


def test_attest_and_verify_attestation_in_the_signature_repository(
    cli: Any, plain_registry: RegistryProcess, basic_registry: RegistryProcess, keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    key, pub = keys
    n = next(_COUNTER)
    image = plain_registry.ref(f"att{n}/quay.io/tool:2")
    with make_client() as c:
        push_image(c, image, f"att {n}".encode())
    signatures = basic_registry.ref(f"att{n}/signatures")
    predicate = tmp_path / "predicate.json"
    predicate.write_text('{"scanner": "none"}')
    attested = cli("attest", image, "--predicate", str(predicate), "--key", str(key), "--no-tlog-upload",
                   "--signature-repository", signatures, env=_env())  # fmt: skip
    assert attested.exit_code == 0, attested.stderr
    assert _tags_of(plain_registry, [f"att{n}/quay.io/tool"]) == {f"att{n}/quay.io/tool": ["2"]}
    verify = ["verify-attestation", image, "--key", str(pub), "--insecure-ignore-tlog"]
    found = cli(*verify, env=_env(COSIGN_REPOSITORY=signatures))
    assert found.exit_code == 0, found.stderr
    assert '"scanner":"none"' in found.stdout
    assert cli(*verify, env=_env()).exit_code == 10
