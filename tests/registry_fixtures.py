"""Real registries for tests: CNCF Distribution (Debian's ``docker-registry``) on 127.0.0.1.

Four flavours, each started once per test session (on a free port, with a temp storage dir):

- ``plain_registry``  — HTTP, anonymous.
- ``tls_registry``    — HTTPS with a certificate from a ``trustme`` CA (``.cacert`` is the CA PEM).
- ``basic_registry``  — HTTP with htpasswd Basic auth (bcrypt lines made here, in Python).
- ``token_registry``  — HTTP with ``auth: token``; the :class:`TokenIssuer` below is the realm, a real
  HTTP server that issues ES256 JWTs with an ``x5c`` header, signed by a key whose CA is the
  registry's ``rootcertbundle``. Its policy (:data:`TOKEN_POLICY`) gives users different scopes on
  different repositories.

Other test packages use them by importing the fixtures into their ``conftest.py``
(``from tests.registry_fixtures import plain_registry  # noqa: F401``); a registry is shared by
every test of the session however many conftests import it. :func:`start_registry` and
:func:`running_registry` start one with any config for a single test. :class:`ScriptedServer` is a
tiny HTTP server answering from a function, for registries that misbehave (lying, flaky, recording).
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

DOCKER_REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
STARTUP_TIMEOUT = 20.0

BASIC_USERS: Mapping[str, str] = {"alice": "alice-secret-pw", "bob": "bob-secret-pw"}
"""Users of ``basic_registry`` (htpasswd)."""

TOKEN_USERS: Mapping[str, str] = {"admin": "admin-pw", "pusher": "pusher-pw", "reader": "reader-pw"}
"""Users of the token issuer behind ``token_registry``."""

TOKEN_REFRESH_TOKENS: Mapping[str, str] = {"refresh-token-of-pusher": "pusher"}
"""Identity (refresh) tokens the issuer accepts (``identitytoken`` in docker's config), and their user."""

TOKEN_POLICY: Mapping[str | None, Mapping[str, tuple[str, ...]]] = {
    "admin": {"*": ("pull", "push", "delete")},
    "pusher": {"team/app": ("pull", "push"), "team/app-*": ("pull", "push"), "team/base": ("pull",)},
    "reader": {"team/*": ("pull",)},
    None: {"public/*": ("pull",)},
}
"""What each user (None: anonymous) may do, per repository glob; the issuer grants the intersection."""


def registry_available() -> bool:
    return Path(DOCKER_REGISTRY).exists()


requires_registry = pytest.mark.skipif(not registry_available(), reason="docker-registry is not installed")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def htpasswd_line(user: str, password: str) -> str:
    """An htpasswd bcrypt line (cost 4, the minimum Go's bcrypt accepts: fast in tests)."""
    hashed = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=4)).decode("ascii")
    return f"{user}:{hashed}"


# --- TLS ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSFiles:
    cert: Path  # server chain PEM
    key: Path
    cacert: Path  # the CA a client must trust


def make_tls_files(directory: Path, ca: trustme.CA | None = None) -> TLSFiles:
    ca = ca or trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost", "::1")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, cacert = directory / "server.pem", directory / "server.key", directory / "ca.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    ca.cert_pem.write_to_path(str(cacert))
    return TLSFiles(cert, key, cacert)


# --- a scripted HTTP server --------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # with the query
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    @property
    def url_path(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


Handler = Callable[[Recorded], Reply]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up early (as the client under test may) is no test failure


class ScriptedServer:
    """An HTTP/1.1 server on 127.0.0.1 whose every answer comes from ``handler``; it records requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer._lock:
                    outer.requests.append(recorded)
                try:
                    reply = outer.handler(recorded)
                except Exception as exc:  # a broken test handler: answer 500 and say why
                    reply = Reply(500, {"Content-Type": "text/plain"}, f"handler failed: {exc!r}".encode())
                self.send_response(reply.status)
                names = {k.lower() for k in reply.headers}
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if "content-length" not in names:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD" and reply.body:
                    self.wfile.write(reply.body)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self._server = _QuietServer(("127.0.0.1", 0), _Handler)
        self.port = int(self._server.server_address[1])
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name=f"scripted-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the token issuer ---------------------------------------------------------------------------


def _first(values: Mapping[str, list[str]], name: str) -> str | None:
    found = values.get(name)
    return found[0] if found else None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class TokenRequest:
    """What the issuer saw: who asked (None: anonymous), for which scopes, how (GET or POST)."""

    method: str
    user: str | None
    scopes: tuple[str, ...]
    service: str | None


class TokenIssuer:
    """Distribution's token server in miniature (GET with Basic, POST with a refresh token)."""

    def __init__(
        self,
        *,
        service: str = "release-vector-test-registry",
        issuer: str = "release-vector-test-issuer",
        users: Mapping[str, str] = TOKEN_USERS,
        refresh_tokens: Mapping[str, str] = TOKEN_REFRESH_TOKENS,
        policy: Mapping[str | None, Mapping[str, tuple[str, ...]]] = TOKEN_POLICY,
        expires_in: int = 300,
        ca: trustme.CA | None = None,
    ) -> None:
        self.service = service
        self.issuer = issuer
        self.users = dict(users)
        self.refresh_tokens = dict(refresh_tokens)
        self.policy = policy
        self.expires_in = expires_in
        self.requests: list[TokenRequest] = []
        self.issued: list[str] = []
        ca = ca or trustme.CA()
        leaf = ca.issue_cert("token-issuer.test")
        self.root_pem = ca.cert_pem.bytes()
        key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self._key = key
        cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
        self._x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")]
        self._server = ScriptedServer(self._handle)
        self.url = self._server.url
        self.realm = f"{self._server.url}/token"

    def stop(self) -> None:
        self._server.stop()

    # policy ---------------------------------------------------------------------------------------

    def granted(self, user: str | None, repository: str, wanted: tuple[str, ...]) -> tuple[str, ...]:
        allowed: set[str] = set()
        for pattern, actions in self.policy.get(user, {}).items():
            if fnmatch.fnmatchcase(repository, pattern):
                allowed.update(actions)
        return tuple(a for a in wanted if a in allowed)

    def make_token(self, user: str | None, scopes: tuple[str, ...]) -> str:
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3 or parts[0] != "repository":
                continue
            repository, actions = ":".join(parts[1:-1]), tuple(parts[-1].split(","))
            granted = self.granted(user, repository, actions)
            if granted:
                access.append({"type": "repository", "name": repository, "actions": list(granted)})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": self._x5c}
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 5,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        der = self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        token = signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        self.issued.append(token)
        return token

    # HTTP -----------------------------------------------------------------------------------------

    def _handle(self, request: Recorded) -> Reply:
        if request.url_path != "/token":
            return Reply(404)
        if request.method == "GET":
            query = request.query
            scopes = tuple(s for value in query.get("scope", []) for s in value.split())
            service = _first(query, "service")
            user: str | None = None
            authorization = request.headers.get("authorization")
            if authorization:
                scheme, _, value = authorization.partition(" ")
                if scheme.lower() != "basic":
                    return Reply(401, {"Content-Type": "application/json"}, b'{"details":"basic auth only"}')
                name, _, password = base64.b64decode(value).decode().partition(":")
                if self.users.get(name) != password:
                    return Reply(401, {"Content-Type": "application/json"}, b'{"details":"incorrect password"}')
                user = name
            self.requests.append(TokenRequest("GET", user, scopes, service))
            if service != self.service:
                return Reply(400, {"Content-Type": "application/json"}, b'{"details":"unknown service"}')
            token = self.make_token(user, scopes)
            body = {"token": token, "access_token": token, "expires_in": self.expires_in}
            return Reply(200, {"Content-Type": "application/json"}, json.dumps(body).encode())
        if request.method == "POST":
            form = urllib.parse.parse_qs(request.body.decode())
            grant = (form.get("grant_type") or [""])[0]
            scopes = tuple(s for value in form.get("scope", []) for s in value.split())
            service = _first(form, "service")
            if grant == "refresh_token":
                user = self.refresh_tokens.get((form.get("refresh_token") or [""])[0])
            elif grant == "password":
                name = (form.get("username") or [""])[0]
                user = name if self.users.get(name) == _first(form, "password") else None
            else:
                return Reply(400, {"Content-Type": "application/json"}, b'{"error":"unsupported_grant_type"}')
            if user is None:
                return Reply(401, {"Content-Type": "application/json"}, b'{"error":"invalid_grant"}')
            self.requests.append(TokenRequest("POST", user, scopes, service))
            token = self.make_token(user, scopes)
            body = {"access_token": token, "expires_in": self.expires_in, "scope": " ".join(scopes)}
            return Reply(200, {"Content-Type": "application/json"}, json.dumps(body).encode())
        return Reply(405)


# --- the registry process -----------------------------------------------------------------------


@dataclass
class RegistryProcess:
    """A running ``docker-registry``; ``host`` is what goes in references (``127.0.0.1:PORT/repo``)."""

    name: str
    host: str
    url: str
    workdir: Path
    storage: Path
    log: Path
    process: subprocess.Popen[bytes]
    cacert: Path | None = None
    users: Mapping[str, str] = field(default_factory=dict)
    token_issuer: TokenIssuer | None = None

    def ref(self, repository_and_tag: str) -> str:
        """``127.0.0.1:PORT/<repository_and_tag>``."""
        return f"{self.host}/{repository_and_tag}"

    @property
    def credential_hosts(self) -> frozenset[str]:
        """The token issuer's ``127.0.0.1:PORT``: another host than the registry, so its credentials go
        there only when the client is told to trust it (``RegistryOptions.credential_hosts``)."""
        if self.token_issuer is None:
            return frozenset()
        return frozenset({self.token_issuer.url.removeprefix("http://")})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.token_issuer is not None:
            self.token_issuer.stop()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _registry_config(
    *,
    port: int,
    storage: Path,
    tls: TLSFiles | None,
    htpasswd: Path | None,
    token: TokenIssuer | None,
    token_bundle: Path | None,
) -> dict[str, Any]:
    http: dict[str, Any] = {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)}
    if tls is not None:
        http["tls"] = {"certificate": str(tls.cert), "key": str(tls.key)}
    config: dict[str, Any] = {
        "version": "0.1",
        "log": {"level": "info", "accesslog": {"disabled": False}, "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": http,
        "health": {"storagedriver": {"enabled": False}},
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "release-vector-test", "path": str(htpasswd)}}
    if token is not None and token_bundle is not None:
        config["auth"] = {
            "token": {
                "realm": token.realm,
                "service": token.service,
                "issuer": token.issuer,
                "rootcertbundle": str(token_bundle),
            }
        }
    return config


def _wait_ready(registry: RegistryProcess) -> None:
    verify: ssl.SSLContext | bool = False
    if registry.cacert is not None:
        verify = ssl.create_default_context(cafile=str(registry.cacert))
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with httpx.Client(verify=verify, timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if registry.process.poll() is not None:
                raise RuntimeError(f"docker-registry {registry.name} exited at start:\n{registry.log_tail()}")
            try:
                if client.get(f"{registry.url}/v2/").status_code in (200, 401):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    registry.stop()
    raise RuntimeError(f"docker-registry {registry.name} did not answer in {STARTUP_TIMEOUT} s:\n{registry.log_tail()}")


def start_registry(
    workdir: Path,
    *,
    name: str = "registry",
    tls: TLSFiles | None = None,
    htpasswd: Mapping[str, str] | None = None,
    token: TokenIssuer | None = None,
) -> RegistryProcess:
    """Start ``docker-registry serve`` on a free port of 127.0.0.1 and wait until ``/v2/`` answers.

    ``tls``: serve HTTPS with these files; ``htpasswd``: Basic auth for these users; ``token``: bearer
    auth with this issuer (which the registry then owns: ``stop()`` stops it too).
    """
    if not registry_available():
        pytest.skip("docker-registry is not installed (make install)")
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    htpasswd_path: Path | None = None
    if htpasswd is not None:
        htpasswd_path = workdir / "htpasswd"
        htpasswd_path.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in htpasswd.items()))
    bundle: Path | None = None
    if token is not None:
        bundle = workdir / "token-root.pem"
        bundle.write_bytes(token.root_pem)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir)}  # no REGISTRY_* overrides
    last_error = ""
    for _ in range(3):
        port = free_port()
        config_path = workdir / "config.yml"
        config = _registry_config(
            port=port, storage=storage, tls=tls, htpasswd=htpasswd_path, token=token, token_bundle=bundle
        )
        config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        log = workdir / "registry.log"
        with log.open("ab") as log_file:
            process = subprocess.Popen(
                [DOCKER_REGISTRY, "serve", str(config_path)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=workdir,
            )
        scheme = "https" if tls is not None else "http"
        registry = RegistryProcess(
            name=name,
            host=f"127.0.0.1:{port}",
            url=f"{scheme}://127.0.0.1:{port}",
            workdir=workdir,
            storage=storage,
            log=log,
            process=process,
            cacert=tls.cacert if tls is not None else None,
            users=dict(htpasswd or (token.users if token is not None else {})),
            token_issuer=token,
        )
        try:
            _wait_ready(registry)
            return registry
        except RuntimeError as exc:
            last_error = str(exc)
            if registry.process.poll() is None:
                registry.process.kill()
                registry.process.wait(timeout=10)
            if "address already in use" not in last_error:
                break
    if token is not None:
        token.stop()
    raise RuntimeError(last_error)


@contextlib.contextmanager
def running_registry(workdir: Path, **kwargs: Any) -> Iterator[RegistryProcess]:
    """``start_registry`` for a ``with`` block; stopped at its end."""
    registry = start_registry(workdir, **kwargs)
    try:
        yield registry
    finally:
        registry.stop()


# --- session fixtures (one process per flavour per session) -------------------------------------

_SHARED = pytest.StashKey[dict[str, RegistryProcess]]()


def _shared(request: pytest.FixtureRequest, flavour: str, start: Callable[[], RegistryProcess]) -> RegistryProcess:
    """The session's ``flavour`` registry, started on first use and stopped when the session ends."""
    config = request.config
    registries = config.stash.setdefault(_SHARED, {})
    registry = registries.get(flavour)
    if registry is None or registry.process.poll() is not None:
        registry = start()
        registries[flavour] = registry
        config.add_cleanup(registry.stop)
    return registry


@pytest.fixture(scope="session")
def plain_registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> RegistryProcess:
    """Anonymous HTTP registry."""
    return _shared(request, "plain", lambda: start_registry(tmp_path_factory.mktemp("registry-plain"), name="plain"))


@pytest.fixture(scope="session")
def tls_registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> RegistryProcess:
    """Anonymous HTTPS registry; trust ``tls_registry.cacert``."""

    def start() -> RegistryProcess:
        workdir = tmp_path_factory.mktemp("registry-tls")
        return start_registry(workdir, name="tls", tls=make_tls_files(workdir / "tls"))

    return _shared(request, "tls", start)


@pytest.fixture(scope="session")
def basic_registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> RegistryProcess:
    """HTTP registry with htpasswd Basic auth for :data:`BASIC_USERS`."""

    def start() -> RegistryProcess:
        return start_registry(tmp_path_factory.mktemp("registry-basic"), name="basic", htpasswd=BASIC_USERS)

    return _shared(request, "basic", start)


@pytest.fixture(scope="session")
def token_registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> RegistryProcess:
    """HTTP registry with bearer-token auth; ``token_registry.token_issuer`` is the realm (see TOKEN_POLICY)."""

    def start() -> RegistryProcess:
        return start_registry(tmp_path_factory.mktemp("registry-token"), name="token", token=TokenIssuer())

    return _shared(request, "token", start)
