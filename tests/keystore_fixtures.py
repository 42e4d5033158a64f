"""Real key stores for the tests: a SoftHSM2 token (PKCS#11) and moto's KMS server, one each per session.

* :func:`softhsm`: a token initialised in a temp dir (``SOFTHSM2_CONF`` set for the whole session, since the
  module reads it once when first loaded), with key pairs made by opensc's ``pkcs11-tool``: ECDSA P-256 and
  P-384, RSA 2048 and an Ed25519 key (a type we refuse). A second token, ``rv-pin``, is for wrong-PIN tests
  (no other test logs in to it).
* :func:`kms`: ``moto_server`` on 127.0.0.1 (a real HTTP endpoint speaking the KMS API), with keys made
  through boto3. :class:`KmsStandIn` sits in front of it to record requests and answer faults.

Both are installed by ``make install`` (Debian ``softhsm2``/``opensc``, PyPI ``moto[server]``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.registry_fixtures import Recorded, Reply, ScriptedServer, free_port

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN = "rv-test"
PIN_TOKEN = "rv-pin"
PIN = "pin-Zq7Xw"  # distinctive: tests look for it in output
SO_PIN = "87654321"
PKCS11_KEYS = {"p256": "EC:prime256v1", "p384": "EC:secp384r1", "rsa": "rsa:2048", "ed25519": "EC:edwards25519"}
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing-key-id",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-key-value",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@dataclass(frozen=True)
class SoftHsm:
    conf: Path
    module: str = SOFTHSM_MODULE

    def uri(self, label: str, *, token: str = TOKEN, pin: str | None = PIN) -> str:
        query = f"module-path={self.module}" + (f"&pin-value={pin}" if pin is not None else "")
        return f"pkcs11:token={token};object={label}?{query}"


def _pkcs11_tool(*args: str) -> None:
    subprocess.run(["pkcs11-tool", "--module", SOFTHSM_MODULE, *args], check=True, capture_output=True)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    if not (Path(SOFTHSM_MODULE).exists() and shutil.which("pkcs11-tool") and shutil.which("softhsm2-util")):
        pytest.skip("softhsm2/opensc are not installed (make install)")
    folder = tmp_path_factory.mktemp("softhsm")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstoremode = file\nlog.level = ERROR\n")
    saved = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for label in (TOKEN, PIN_TOKEN):
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN],
                       check=True, capture_output=True)  # fmt: skip
    for number, (label, key_type) in enumerate(PKCS11_KEYS.items(), start=1):
        _pkcs11_tool("--token-label", TOKEN, "--login", "--pin", PIN, "--keypairgen", "--key-type", key_type,
                     "--label", label, "--id", f"{number:02x}")  # fmt: skip
    _pkcs11_tool("--token-label", PIN_TOKEN, "--login", "--pin", PIN, "--keypairgen", "--key-type", "EC:prime256v1",
                 "--label", "p256", "--id", "01")  # fmt: skip
    yield SoftHsm(conf)
    if saved is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = saved


# --- KMS ------------------------------------------------------------------------------------------


@dataclass
class Kms:
    url: str
    host: str
    keys: dict[str, str] = field(default_factory=dict)  # name -> key ARN

    def client(self) -> Any:
        import boto3

        return boto3.client("kms", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"])  # fmt: skip

    def uri(self, key: str, *, host: str | None = None) -> str:
        return f"awskms://{host or self.host}/{key}"


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("moto_server exited")
        try:
            httpx.get(url + "/moto-api/", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("moto_server did not start")


@pytest.fixture(scope="session")
def kms() -> Iterator[Kms]:
    server = Path(sys.executable).parent / "moto_server"
    if not server.exists():
        pytest.skip("moto[server] is not installed (make install)")
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), **AWS_ENV}
    process = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(url, process)
        found = Kms(url, f"127.0.0.1:{port}")
        client = found.client()
        for name, spec, usage in (("p256", "ECC_NIST_P256", "SIGN_VERIFY"), ("p384", "ECC_NIST_P384", "SIGN_VERIFY"),
                                  ("rsa", "RSA_2048", "SIGN_VERIFY"), ("k256", "ECC_SECG_P256K1", "SIGN_VERIFY"),
                                  ("aes", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")):  # fmt: skip
            arn = client.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["Arn"]
            client.create_alias(AliasName=f"alias/rv-{name}", TargetKeyId=arn)
            found.keys[name] = arn
        yield found
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Test credentials and region in the environment (no profile or endpoint of the caller's)."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    return dict(AWS_ENV)


class KmsStandIn(ScriptedServer):
    """In front of moto: records every request; answers ``faults`` (in order) first, then forwards."""

    def __init__(self, upstream: str, faults: list[Reply] | None = None) -> None:
        self.faults = list(faults or [])
        self.upstream = upstream
        super().__init__(self._answer)

    def _answer(self, request: Recorded) -> Reply:
        if self.faults:
            return self.faults.pop(0)
        headers = {k: v for k, v in request.headers.items() if k not in ("host", "content-length", "connection")}
        answer = httpx.request(request.method, self.upstream + request.path, headers=headers, content=request.body)
        return Reply(answer.status_code, {"Content-Type": answer.headers.get("content-type", "")}, answer.content)


def kms_error(code: str, message: str = "", status: int = 400) -> Reply:
    """A KMS JSON-protocol error answer."""
    import json

    body = json.dumps({"__type": code, "message": message or code}).encode()
    return Reply(status, {"Content-Type": "application/x-amz-json-1.1"}, body)


def kms_targets(request: Recorded) -> str:
    return request.headers.get("x-amz-target", "")


Factory = Callable[..., KmsStandIn]
