"""Hostile servers through the CLI (issue 12): deep JSON, endless and drip-fed answers end in one clear
error line with a documented exit code, never a crash, a hang or a gigabyte buffered; one hostile
image does not cost the others their results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.cosign.sigmanifest import signature_tag
from pipeline.oci import mediatypes
from tests.hostile_servers import HostileServer, bearer_challenge, deep_json, drip, endless
from tests.oci.helpers import client as make_client
from tests.oci.helpers import push_image
from tests.registry_fixtures import RegistryProcess

PASSWORD = {"COSIGN_PASSWORD": "pw"}


def _registry_with_token_server(token_answer: Any) -> HostileServer:
    server = HostileServer({})
    server.routes = {"/v2/": bearer_challenge(f"{server.url}/token"), "/token": token_answer}
    return server


def test_endless_token_answer_stops_at_the_cap(cli: Any) -> None:
    with _registry_with_token_server(endless()) as server:
        result = cli("pull", f"{server.host}/app:v1")
    assert result.exit_code == 5, result.stderr
    assert "token server's answer too large (over 1048576 bytes" in result.stderr
    assert f"{server.url}/token" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("how", ["option", "env"])
def test_dripping_token_answer_hits_the_request_timeout(cli: Any, how: str) -> None:
    with _registry_with_token_server(drip(interval=0.2)) as server:
        if how == "option":
            result = cli("pull", f"{server.host}/app:v1", "--request-timeout", "1")
        else:
            result = cli("pull", f"{server.host}/app:v1", env={"RELEASE_VECTOR_REQUEST_TIMEOUT": "1"})
    assert result.exit_code == 5, result.stderr
    assert "did not complete within the request timeout of 1 s" in result.stderr
    assert "--request-timeout" in result.stderr  # the hint


def test_deeply_nested_token_answer_is_invalid_input(cli: Any) -> None:
    with _registry_with_token_server(deep_json()) as server:
        result = cli("pull", f"{server.host}/app:v1")
    assert result.exit_code == 3, result.stderr
    assert "nested deeper than 100 levels" in result.stderr
    assert f"{server.url}/token" in result.stderr


def test_deeply_nested_registry_error_body_is_not_a_crash(cli: Any) -> None:
    def ok(handler: Any) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with HostileServer({"/v2/app/manifests/": deep_json(status=404), "/v2/": ok}) as server:
        result = cli("pull", f"{server.host}/app:v1")
    assert result.exit_code == 5, result.stderr
    assert "manifest not found" in result.stderr


def test_deeply_nested_vector_given_to_push_is_invalid_input(cli: Any, tmp_path: Path) -> None:
    vector = tmp_path / "release.yaml"
    vector.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    result = cli("push", str(vector), "--repository", "127.0.0.1:9/releases")
    assert result.exit_code == 3, result.stderr
    assert "nested too deeply" in result.stderr


def test_one_hostile_bundle_annotation_fails_only_its_image(
    cli: Any, plain_registry: RegistryProcess, tmp_path: Path
) -> None:
    from pipeline.cosign.keys import generate_key_pair
    from pipeline.secret import Secret

    pair = generate_key_pair(Secret("pw"))
    key, pub = tmp_path / "cosign.key", tmp_path / "cosign.pub"
    key.write_bytes(pair.private_pem.reveal())
    pub.write_bytes(pair.public_pem)
    with make_client() as registry:
        _, good_digest = push_image(registry, plain_registry.ref("hostile/good:v1"), b"good")
        _, bad_digest = push_image(registry, plain_registry.ref("hostile/bad:v1"), b"bad")
    good = f"{plain_registry.ref('hostile/good')}@{good_digest}"
    bad = f"{plain_registry.ref('hostile/bad')}@{bad_digest}"
    # The legacy layout alone: this is about its layer annotations (a v3 bundle would still verify the image).
    signed = cli("sign", "--no-tlog-upload", good, bad, "--key", str(key), "--bundle-format", "legacy", env=PASSWORD)
    assert signed.exit_code == 0, signed.stderr

    # The bad image's signature layer gets a Rekor bundle annotation of 200,000 nested brackets.
    tag = signature_tag(bad_digest)
    url = f"{plain_registry.url}/v2/hostile/bad/manifests/{tag}"
    manifest = json.loads(httpx.get(url, headers={"Accept": mediatypes.OCI_MANIFEST}).content)
    manifest["layers"][0].setdefault("annotations", {})["dev.sigstore.cosign/bundle"] = "[" * 200_000 + "]" * 200_000
    put = httpx.put(url, content=json.dumps(manifest).encode(), headers={"Content-Type": mediatypes.OCI_MANIFEST})
    assert put.status_code == 201, put.text

    result = cli("verify", good, bad, "--key", str(pub), "--insecure-ignore-tlog", "--json")
    assert result.exit_code == 10, result.stderr
    reports = json.loads(result.stdout)
    assert len(reports) == 2
    assert "nested deeper than 100 levels" in result.stderr
    assert "unexpected" not in result.stderr
