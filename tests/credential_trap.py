"""A hostile registry for credential tests: it records every request and hopes for a password.

:class:`TrapRegistry` is two :class:`~tests.registry_fixtures.ScriptedServer` on 127.0.0.1: the registry
and, on another port (so another host as registries are named: ``127.0.0.1:PORT``), its token realm.
With ``challenge="bearer"`` the registry answers 401 with a Bearer challenge naming that realm, which
hands anyone the token ``trap-token``; with ``challenge="basic"`` it asks for Basic credentials and
takes whatever comes. Either way it serves one image manifest under every name and tag, so a release or
an assemble that names it goes on as with a real registry.

:meth:`TrapRegistry.authorizations` and :meth:`TrapRegistry.leaked` say what a test needs: which
``Authorization`` headers arrived, and whether a given secret appeared anywhere in a request.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Literal

from pipeline.oci import digest as digests
from pipeline.oci import mediatypes
from tests.oci.helpers import image_manifest
from tests.registry_fixtures import Recorded, Reply, ScriptedServer

TRAP_TOKEN = "trap-token"
MANIFEST = image_manifest(b"the trap's only layer")
MANIFEST_DIGEST = digests.compute(MANIFEST)


class TrapRegistry:
    """A registry (``.host``) and its token realm (``.realm_host``), both recording requests."""

    def __init__(self, challenge: Literal["bearer", "basic"] = "bearer", *, token: str = TRAP_TOKEN) -> None:
        self.challenge = challenge
        self.token = token
        self.realm = ScriptedServer(self._token_endpoint)
        self.registry = ScriptedServer(self._registry_endpoint)
        self.host = self.registry.host
        self.realm_host = self.realm.host

    def stop(self) -> None:
        self.registry.stop()
        self.realm.stop()

    def __enter__(self) -> TrapRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # HTTP ---------------------------------------------------------------------------------------------

    def _token_endpoint(self, request: Recorded) -> Reply:
        body = json.dumps({"token": self.token, "expires_in": 300}).encode("utf-8")
        return Reply(200, {"Content-Type": "application/json"}, body)

    def _registry_endpoint(self, request: Recorded) -> Reply:
        authorization = request.headers.get("authorization")
        if self.challenge == "bearer":
            if authorization != f"Bearer {self.token}":
                challenge = f'Bearer realm="{self.realm.url}/token",service="trap"'
                return Reply(401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"}, b"{}")
        elif authorization is None:
            return Reply(401, {"WWW-Authenticate": 'Basic realm="trap"', "Content-Type": "application/json"}, b"{}")
        if request.url_path == "/v2/":
            return Reply(200, {"Content-Type": "application/json"}, b"{}")
        if "/manifests/" in request.url_path and request.method in ("GET", "HEAD"):
            reference = request.url_path.rsplit("/", 1)[1]
            if reference.startswith("sha256:") and reference != MANIFEST_DIGEST:
                return Reply(404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            if reference.startswith("sha256-"):  # no signatures here
                return Reply(404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            headers = {"Content-Type": mediatypes.OCI_MANIFEST, "Docker-Content-Digest": MANIFEST_DIGEST}
            return Reply(200, headers, MANIFEST)
        return Reply(404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')

    # what was seen ------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        return [*self.registry.requests, *self.realm.requests]

    def authorizations(self, server: Literal["registry", "realm"]) -> set[str]:
        """Every ``Authorization`` value the registry or the realm received."""
        recorded = self.registry.requests if server == "registry" else self.realm.requests
        return {r.headers["authorization"] for r in recorded if "authorization" in r.headers}

    def leaked(self, *secrets: str) -> bool:
        """True if any secret (or a Basic encoding with it) shows in any request: headers, path, body."""
        needles = [s.encode("utf-8") for s in secrets if s]
        for request in self.requests:
            text = "\n".join([request.path, *request.headers.values()]).encode("utf-8") + b"\n" + request.body
            decoded = _decoded_basic(request.headers.values())
            if any(needle in text or needle in decoded for needle in needles):
                return True
        return False


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _decoded_basic(values: Iterable[str]) -> bytes:
    out = b""
    for value in values:
        scheme, _, rest = value.partition(" ")
        if scheme.lower() == "basic":
            try:
                out += base64.b64decode(rest.strip()) + b"\n"
            except ValueError:
                continue
    return out
