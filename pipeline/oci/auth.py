"""Registry authentication: challenges, credentials and bearer tokens.

- :func:`parse_www_authenticate` reads ``WWW-Authenticate`` headers (RFC 7235: several challenges per
  header, quoted strings with escapes and commas, token68) into :class:`Challenge` objects.
- :class:`Credential` is a user name with a password or an identity (refresh) token; the secrets are
  :class:`~pipeline.secret.Secret` objects, so a ``repr`` never shows them.
- :func:`load_credentials` builds the credential lookup from docker's ``config.json`` (``auths`` with
  ``auth``/``username``/``password``/``identitytoken``, ``credHelpers``, ``credsStore`` through
  ``docker-credential-*``) and from ``REGISTRY_USERNAME``/``REGISTRY_PASSWORD``. The environment is a
  mapping passed in; nothing here reads ``os.environ``.
- :class:`TokenCache` keeps bearer tokens per registry and set of scopes until they expire.

Credentials are looked up by registry (``ghcr.io``, ``localhost:5000``; Docker Hub under docker's key
``https://index.docker.io/v1/``), and the client only ever sends them to that registry and to a token
realm on that same host (:func:`realm_may_receive_credentials`): a realm elsewhere is asked anonymously
unless the user named its host as one that may receive credentials.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from pipeline import jsonbounded
from pipeline.errors import AuthError, InvalidInputError
from pipeline.oci.reference import DOCKER_HUB_ALIASES
from pipeline.secret import Secret, is_utf8_text

DOCKER_HUB_CONFIG_KEY: Final = "https://index.docker.io/v1/"
"""The key docker uses for Docker Hub in ``config.json`` and with credential helpers."""
DOCKER_HUB_REALM_HOST: Final = "auth.docker.io"
"""Docker Hub's token realm: the one realm on another host than its registry that gets Docker Hub's
credentials without being named (Docker Hub's logins work only through it)."""
ENV_USERNAME: Final = "REGISTRY_USERNAME"
ENV_PASSWORD: Final = "REGISTRY_PASSWORD"  # noqa: S105 (a variable name)
HELPER_PREFIX: Final = "docker-credential-"
HELPER_TIMEOUT_SECONDS: Final = 30.0
IDENTITY_TOKEN_USERNAME: Final = "<token>"  # noqa: S105 (docker's marker for an identity token)

# --- WWW-Authenticate -----------------------------------------------------------------------

_TOKEN_CHARS: Final = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68_CHARS: Final = frozenset("-._~+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_WS: Final = " \t"


@dataclass(frozen=True)
class Challenge:
    """One challenge: ``Bearer realm="…",service="…",scope="…"``. Scheme and parameter names are lower case."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        """The ``scope`` parameter split on spaces (a registry may ask for several)."""
        return tuple(self.params.get("scope", "").split())

    @property
    def error(self) -> str | None:
        return self.params.get("error")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def take(self, allowed: frozenset[str]) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in allowed:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        """A quoted-string starting at the opening quote; an unterminated one runs to the end."""
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\" and self.pos < len(self.text):
                out.append(self.text[self.pos])
                self.pos += 1
            elif char == '"':
                break
            else:
                out.append(char)
        return "".join(out)

    def param_follows(self) -> bool:
        """True if the text from here is ``token BWS "="`` (an auth-param, not a new challenge)."""
        saved = self.pos
        try:
            if not self.take(_TOKEN_CHARS):
                return False
            self.skip(_WS)
            return self.peek() == "="
        finally:
            self.pos = saved

    def token68_follows(self) -> bool:
        """True if the text from here is a token68 that ends the challenge (end of text or a comma)."""
        saved = self.pos
        try:
            if not self.take(_TOKEN68_CHARS):
                return False
            self.skip("=")
            self.skip(_WS)
            return self.at_end() or self.peek() == ","
        finally:
            self.pos = saved


def _parse_one_header(text: str) -> list[Challenge]:
    scanner = _Scanner(text)
    challenges: list[Challenge] = []
    while True:
        scanner.skip(_WS + ",")
        if scanner.at_end():
            return challenges
        scheme = scanner.take(_TOKEN_CHARS)
        if not scheme:
            return challenges  # garbage: keep what was understood
        scanner.skip(_WS)
        params: dict[str, str] = {}
        token68: str | None = None
        if scanner.token68_follows():
            start = scanner.pos
            scanner.take(_TOKEN68_CHARS)
            scanner.skip("=")
            token68 = scanner.text[start : scanner.pos]
        else:
            while scanner.param_follows():
                name = scanner.take(_TOKEN_CHARS).lower()
                scanner.skip(_WS)
                scanner.pos += 1  # the "="
                scanner.skip(_WS)
                value = scanner.quoted() if scanner.peek() == '"' else scanner.take(_TOKEN_CHARS)
                params.setdefault(name, value)
                scanner.skip(_WS)
                if scanner.peek() != ",":
                    break
                saved = scanner.pos
                scanner.skip(_WS + ",")
                if not scanner.param_follows():
                    scanner.pos = saved
                    break
        challenges.append(Challenge(scheme.lower(), params, token68))
        scanner.skip(_WS)
        if not scanner.at_end() and scanner.peek() != ",":
            return challenges  # trailing garbage


def parse_www_authenticate(headers: Iterable[str]) -> tuple[Challenge, ...]:
    """Every challenge in the given ``WWW-Authenticate`` header values, in order."""
    out: list[Challenge] = []
    for header in headers:
        out.extend(_parse_one_header(header))
    return tuple(out)


# --- scopes ---------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Scope:
    """``repository:<name>:<actions>``, the unit a bearer token grants."""

    repository: str
    actions: tuple[str, ...]

    @classmethod
    def of(cls, repository: str, *actions: str) -> Scope:
        return cls(repository, tuple(sorted(set(actions))))

    def __str__(self) -> str:
        return f"repository:{self.repository}:{','.join(self.actions)}"


def merge_scopes(scopes: Iterable[Scope]) -> tuple[Scope, ...]:
    """One scope per repository with the union of the actions, sorted (a stable cache key)."""
    merged: dict[str, set[str]] = {}
    for scope in scopes:
        merged.setdefault(scope.repository, set()).update(scope.actions)
    return tuple(Scope.of(repo, *actions) for repo, actions in sorted(merged.items()))


# --- credentials ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """A user name with a password, or an identity token (an OAuth2 refresh token for the token realm).

    ``source`` says where it came from (``env REGISTRY_USERNAME``, a config path, a helper name) for
    messages; it never holds the secret.
    """

    username: str
    password: Secret | None = None
    identity_token: Secret | None = None
    source: str = ""

    def basic_header(self) -> str:
        """The ``Authorization`` value for Basic auth (user name and password)."""
        password = self.password.reveal() if self.password is not None else b""
        raw = self.username.encode("utf-8") + b":" + password
        return "Basic " + base64.b64encode(raw).decode("ascii")


class CredentialStore(Protocol):
    def get(self, registry: str) -> Credential | None:
        """The credential for ``registry`` (``ghcr.io``, ``localhost:5000``, ``docker.io``), or None."""
        ...


class NoCredentials:
    """Anonymous access everywhere."""

    def get(self, registry: str) -> Credential | None:
        return None


@dataclass(frozen=True)
class StaticCredentials:
    """Credentials given per registry; Docker Hub's aliases find the ``docker.io`` entry."""

    entries: Mapping[str, Credential]

    def get(self, registry: str) -> Credential | None:
        for key in _lookup_names(registry):
            if key in self.entries:
                return self.entries[key]
        return None


def _lookup_names(registry: str) -> list[str]:
    if registry in DOCKER_HUB_ALIASES:
        return ["docker.io", "index.docker.io", "registry-1.docker.io", DOCKER_HUB_CONFIG_KEY]
    return [registry]


def config_key(registry: str) -> str:
    """The key docker uses for ``registry`` in ``config.json`` and with credential helpers."""
    return DOCKER_HUB_CONFIG_KEY if registry in DOCKER_HUB_ALIASES else registry


def _hostname_of_key(key: str) -> str:
    """docker's ``ConvertToHostname``: ``https://ghcr.io/v1/`` → ``ghcr.io``."""
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    return key.split("/", 1)[0]


def _same_registry(key: str, registry: str) -> bool:
    host = _hostname_of_key(key)
    if registry in DOCKER_HUB_ALIASES:
        return host in DOCKER_HUB_ALIASES
    return host == registry


HelperRunner = Callable[[str, str], tuple[int, bytes, bytes]]
"""Runs ``<helper executable> get`` with the server URL on stdin: (exit code, stdout, stderr)."""


class DockerConfigCredentials:
    """Credentials from docker's ``config.json``: ``credHelpers`` first, then ``credsStore``, then ``auths``.

    That is docker's own order: with a ``credsStore`` set, entries in ``auths`` are not used.
    """

    def __init__(
        self,
        config_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        runner: HelperRunner | None = None,
    ) -> None:
        self.config_path = config_path
        self._env = dict(env or {})
        self._runner = runner or self._run_helper
        self._config: dict[str, object] | None = None
        self._cache: dict[str, Credential | None] = {}
        self._lock = threading.Lock()

    # config.json ---------------------------------------------------------------------------

    def _load(self) -> dict[str, object]:
        if self._config is None:
            try:
                raw = self.config_path.read_bytes()
            except FileNotFoundError:
                self._config = {}
                return self._config
            except OSError as exc:
                raise InvalidInputError(
                    f"cannot read docker config: {exc.strerror or exc}", where=str(self.config_path)
                ) from None
            try:
                data = jsonbounded.loads(raw, source=str(self.config_path), what="docker config") if raw.strip() else {}
            except (ValueError, UnicodeDecodeError):
                raise InvalidInputError("docker config is not valid JSON", where=str(self.config_path)) from None
            if not isinstance(data, dict):
                raise InvalidInputError("docker config is not a JSON object", where=str(self.config_path))
            self._config = data
        return self._config

    def get(self, registry: str) -> Credential | None:
        with self._lock:
            if registry not in self._cache:
                self._cache[registry] = self._resolve(registry)
            return self._cache[registry]

    def _resolve(self, registry: str) -> Credential | None:
        config = self._load()
        helpers = config.get("credHelpers")
        if isinstance(helpers, dict):
            for key, helper in helpers.items():
                if isinstance(key, str) and isinstance(helper, str) and helper and _same_registry(key, registry):
                    return self._from_helper(helper, registry)
        store = config.get("credsStore")
        if isinstance(store, str) and store:
            return self._from_helper(store, registry)
        return self._from_auths(config, registry)

    def _from_auths(self, config: Mapping[str, object], registry: str) -> Credential | None:
        auths = config.get("auths")
        if not isinstance(auths, dict):
            return None
        wanted = config_key(registry)
        keys = [wanted] if wanted in auths else []
        keys += sorted(k for k in auths if isinstance(k, str) and k != wanted and _same_registry(k, registry))
        for key in keys:
            entry = auths[key]
            if isinstance(entry, dict):
                credential = self._from_entry(entry, key)
                if credential is not None:
                    return credential
        return None

    def _from_entry(self, entry: Mapping[str, object], key: str) -> Credential | None:
        where = f"{self.config_path} (auths.{key})"
        username = entry.get("username") if isinstance(entry.get("username"), str) else ""
        password = entry.get("password") if isinstance(entry.get("password"), str) else ""
        auth = entry.get("auth")
        if isinstance(auth, str) and auth:
            try:
                decoded = base64.b64decode(auth, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidInputError("docker config: 'auth' is not base64 of user:password", where=where) from None
            user, sep, secret = decoded.partition(":")
            if not sep:
                raise InvalidInputError("docker config: 'auth' is not base64 of user:password", where=where)
            username, password = user, secret
        identity = entry.get("identitytoken")
        _check_text(where, username, password, identity)
        source = f"docker config {self.config_path}"
        if isinstance(identity, str) and identity:
            return Credential(str(username or ""), None, Secret(identity), source)
        if username or password:
            return Credential(str(username), Secret(str(password)), None, source)
        return None

    # credential helpers ----------------------------------------------------------------------

    def _run_helper(self, helper: str, server_url: str) -> tuple[int, bytes, bytes]:
        executable = f"{HELPER_PREFIX}{helper}"
        path = shutil.which(executable, path=self._env.get("PATH", os.defpath))
        if path is None:
            raise AuthError(
                f"credential helper {executable} is not installed (named in docker config)",
                where=str(self.config_path),
                hint=f"install {executable} or remove it from {self.config_path}",
            )
        try:
            done = subprocess.run(
                [path, "get"],
                input=server_url.encode("utf-8"),
                capture_output=True,
                timeout=HELPER_TIMEOUT_SECONDS,
                env=dict(self._env),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise AuthError(f"credential helper {executable} did not answer in time", where=server_url) from None
        except OSError as exc:
            raise AuthError(f"cannot run credential helper {executable}: {exc.strerror}", where=server_url) from None
        return done.returncode, done.stdout, done.stderr

    def _from_helper(self, helper: str, registry: str) -> Credential | None:
        executable = f"{HELPER_PREFIX}{helper}"
        server_url = config_key(registry)
        code, out, err = self._runner(helper, server_url)
        if code != 0:
            text = (out + b" " + err).decode("utf-8", "replace")
            if "credentials not found" in text.lower():
                return None
            first = " ".join(text.split())[:200] or f"exit code {code}"
            raise AuthError(f"credential helper {executable} failed: {first}", where=server_url)
        try:
            answer = jsonbounded.loads(out, source=server_url, what=f"credential helper {executable}'s answer")
        except (ValueError, InvalidInputError):
            raise AuthError(
                f"credential helper {executable} answered something that is not JSON", where=server_url
            ) from None
        if not isinstance(answer, dict):
            raise AuthError(f"credential helper {executable} answered something unexpected", where=server_url)
        username = answer.get("Username")
        secret = answer.get("Secret")
        if not isinstance(secret, str) or not secret:
            return None
        _check_text(f"{executable} ({server_url})", username, secret)
        source = executable
        if username == IDENTITY_TOKEN_USERNAME:
            return Credential("", None, Secret(secret), source)
        return Credential(username if isinstance(username, str) else "", Secret(secret), None, source)


def _check_text(where: str, *values: object) -> None:
    """A credential that is not text (a lone surrogate from a ``\\udc80`` escape) is refused, not crashed on."""
    if any(isinstance(value, str) and not is_utf8_text(value) for value in values):
        raise AuthError("docker credentials are not valid UTF-8 text", where=where)


@dataclass(frozen=True)
class ChainedCredentials:
    """The first store that knows a registry wins."""

    stores: tuple[CredentialStore, ...]

    def get(self, registry: str) -> Credential | None:
        for store in self.stores:
            credential = store.get(registry)
            if credential is not None:
                return credential
        return None


def docker_config_path(env: Mapping[str, str]) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``$HOME/.docker/config.json``."""
    directory = env.get("DOCKER_CONFIG")
    if directory:
        return Path(directory) / "config.json"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".docker" / "config.json"


def load_credentials(
    env: Mapping[str, str],
    *,
    env_registries: Collection[str] = (),
    runner: HelperRunner | None = None,
) -> CredentialStore:
    """The credential lookup the CLI uses.

    ``REGISTRY_USERNAME``/``REGISTRY_PASSWORD`` (both must be set) apply only to ``env_registries``
    (registries the user named: the one written to, ``--registry-credentials-for``), never to a registry
    merely mentioned in a file, so that a token meant for one registry never reaches another; every other
    registry gets what docker's config gives it for that host, or nothing.
    """
    stores: list[CredentialStore] = []
    username, password = env.get(ENV_USERNAME), env.get(ENV_PASSWORD)
    if (username is None) != (password is None):
        missing = ENV_PASSWORD if password is None else ENV_USERNAME
        raise AuthError(
            f"{missing} is not set while {ENV_USERNAME if missing == ENV_PASSWORD else ENV_PASSWORD} is",
            where=f"env://{missing}",
            hint=f"set both {ENV_USERNAME} and {ENV_PASSWORD}, or neither",
        )
    if username is not None and password is not None and env_registries:
        for name, value in ((ENV_USERNAME, username), (ENV_PASSWORD, password)):
            if not is_utf8_text(value):
                raise AuthError(
                    f"{name} is not valid UTF-8 text", where=f"env://{name}", hint=f"set {name} to the plain value"
                )
        credential = Credential(username, Secret(password), None, f"env {ENV_USERNAME}")
        stores.append(StaticCredentials({registry: credential for registry in env_registries}))
    stores.append(DockerConfigCredentials(docker_config_path(env), env=env, runner=runner))
    return ChainedCredentials(tuple(stores))


def realm_may_receive_credentials(
    registry: str, endpoint_host: str, realm_scheme: str, realm_host: str, trusted_hosts: Collection[str] = ()
) -> bool:
    """May the token realm at ``realm_host`` (``host`` or ``host:port``, as registries are named) receive the
    credentials of ``registry`` (reached at ``endpoint_host``)?

    Yes if it is that registry's own host and port, Docker Hub's realm for Docker Hub, or a host the user
    named as one that may receive credentials (``trusted_hosts``). Otherwise a registry could send the
    credentials meant for it to any server it likes by naming that server as its realm; the realm is then
    asked for an anonymous token.
    """
    realm_host = realm_host.lower()
    if realm_host in (registry.lower(), endpoint_host.lower()):
        return True
    if registry in DOCKER_HUB_ALIASES and realm_host == DOCKER_HUB_REALM_HOST and realm_scheme == "https":
        return True
    return realm_host in {host.lower() for host in trusted_hosts}


# --- bearer tokens --------------------------------------------------------------------------

DEFAULT_TOKEN_LIFETIME: Final = 60.0
"""What the token spec says to assume when a token server gives no ``expires_in``."""
EXPIRY_MARGIN: Final = 10.0


@dataclass(frozen=True)
class CachedToken:
    token: Secret
    expires_at: float


class TokenCache:
    """Bearer tokens per (registry, scopes): a token for one registry is never looked up for another."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, tuple[Scope, ...]], CachedToken] = {}
        self._lock = threading.Lock()

    def get(self, registry: str, scopes: tuple[Scope, ...]) -> Secret | None:
        with self._lock:
            entry = self._tokens.get((registry, scopes))
            if entry is None:
                return None
            if self._clock() >= entry.expires_at:
                del self._tokens[(registry, scopes)]
                return None
            return entry.token

    def put(self, registry: str, scopes: tuple[Scope, ...], token: Secret, expires_in: float | None) -> None:
        lifetime = expires_in if expires_in is not None and expires_in > 0 else DEFAULT_TOKEN_LIFETIME
        margin = min(EXPIRY_MARGIN, lifetime / 2)
        with self._lock:
            self._tokens[(registry, scopes)] = CachedToken(token, self._clock() + lifetime - margin)

    def invalidate(self, registry: str, scopes: tuple[Scope, ...]) -> None:
        with self._lock:
            self._tokens.pop((registry, scopes), None)

    def __len__(self) -> int:
        return len(self._tokens)
