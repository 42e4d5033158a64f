"""The errors a user can act on, each with its own exit code.

Every failure the tool expects is a ``ReleaseVectorError``: a one-line message, the place at fault
(a file and line, an image reference, a URL, a key source) and an optional hint. Only the CLI prints
them, as ``error: <message> (<where>)`` plus ``hint: <hint>``, and exits with ``exit_code``.
Messages never carry secrets: callers pass the *source* of a secret (a path, ``env://NAME``), never
its content.

The exit codes are part of the interface (scripts depend on them) and are documented in README.md.
"""

from __future__ import annotations

import re
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    INVALID_INPUT = 3
    AUTH = 4
    REGISTRY = 5
    KEY = 6
    GITHUB = 7
    CONFLICT = 8
    VERIFICATION_FAILED = 10


# C0 controls but tab and line feed, DEL, C1 controls (incl. the 8-bit CSI \x9b), and the invisible format
# characters that reorder or hide text (bidi overrides and isolates, zero-width, soft hyphen, BOM) and the
# Unicode line/paragraph separators: a server's text could otherwise move the cursor, recolour, set the
# terminal's title (OSC) or fake a line of our own output.
_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]"
)


def printable(text: str) -> str:
    """``text`` without terminal control and invisible format characters (tab and newline are kept)."""
    return _UNPRINTABLE.sub("", text)


class ReleaseVectorError(Exception):
    """Base of every failure the user can act on."""

    exit_code: ExitCode = ExitCode.UNEXPECTED

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def one_line(self) -> str:
        """``<message> (<where>)`` on one line, whatever the message held."""
        text = " ".join(self.message.split())
        if self.where:
            text = f"{text} ({self.where})"
        return " ".join(printable(text).split())

    def lines(self) -> list[str]:
        """Every problem this error reports, one line each (an error can carry several, like a YAML file's)."""
        return [self.one_line()]

    def __str__(self) -> str:
        return self.one_line()


class UsageError(ReleaseVectorError):
    """The command line asks for something contradictory or incomplete."""

    exit_code = ExitCode.USAGE


class InvalidInputError(ReleaseVectorError):
    """A file or value given to the tool is malformed (YAML, reference, JSON, bundle)."""

    exit_code = ExitCode.INVALID_INPUT


class FileConflictError(ReleaseVectorError):
    """Writing would overwrite something that exists (use --force)."""

    exit_code = ExitCode.CONFLICT


class ConflictError(ReleaseVectorError):
    """A target already holds something different from what we would write."""

    exit_code = ExitCode.CONFLICT


class AuthError(ReleaseVectorError):
    """Credentials are missing or were refused (401/403)."""

    exit_code = ExitCode.AUTH


class RegistryError(ReleaseVectorError):
    """An OCI registry or the network failed or answered something unexpected. ``codes``: the OCI
    distribution error codes of the registry's answer, if it gave any."""

    exit_code = ExitCode.REGISTRY
    codes: frozenset[str] = frozenset()


class TransparencyLogError(RegistryError):
    """The transparency log (Rekor) failed, was unreachable, or answered something that does not verify."""

    exit_code = ExitCode.REGISTRY


class NotFoundError(RegistryError):
    """The registry has no such manifest, blob or repository (404)."""


# --- keyless signing: the identity token and Fulcio --------------------------------------------


class IdentityTokenError(AuthError):
    """No usable OIDC identity token: missing, unreadable, malformed, expired or for another audience (exit 4)."""


class TokenServiceError(RegistryError):
    """The OIDC token service (GitHub Actions') failed or was unreachable (exit 5)."""


class FulcioError(RegistryError):
    """Fulcio failed, was unreachable, or answered something unusable (exit 5)."""


class FulcioAuthError(FulcioError):
    """Fulcio refused the identity token (exit 4)."""

    exit_code = ExitCode.AUTH


class GitHubError(ReleaseVectorError):
    """The GitHub REST API failed or answered something unexpected."""

    exit_code = ExitCode.GITHUB


# --- keys and signing (exit 6) -------------------------------------------------------------


class KeyMaterialError(ReleaseVectorError):
    """Base for every problem with a key: reading, decrypting, parsing, signing with it."""

    exit_code = ExitCode.KEY


class KeyNotFoundError(KeyMaterialError):
    """The key file or the environment variable holding it does not exist."""


class KeyFormatError(KeyMaterialError):
    """The key is not a PEM of a type we read (truncated, mislabelled, bad base64 or JSON)."""


class UnsupportedKdfError(KeyMaterialError):
    """The encrypted key names a KDF, cipher or scrypt parameters cosign does not accept."""


class WrongPasswordError(KeyMaterialError):
    """The password does not decrypt the key."""


class CorruptKeyError(KeyMaterialError):
    """The ciphertext or the decrypted key material is damaged."""


class UnsupportedKeyError(KeyMaterialError):
    """The decrypted key is not PKCS#8, or of a type cosign does not accept."""


class PasswordUnavailableError(KeyMaterialError):
    """No password: COSIGN_PASSWORD is unset and there is no terminal to prompt on."""


class SigningError(KeyMaterialError):
    """Producing a signature failed."""


# --- verification (exit 10) -----------------------------------------------------------------


class VerificationError(ReleaseVectorError):
    """A signature, bundle, certificate or transparency-log entry did not verify."""

    exit_code = ExitCode.VERIFICATION_FAILED


class ErrorList(ReleaseVectorError):
    """Several independent failures reported together (every unresolved image, say); exit code of the first."""

    def __init__(self, errors: list[ReleaseVectorError], summary: str) -> None:
        if not errors:
            raise ValueError("ErrorList needs at least one error")
        super().__init__(summary, where=None, hint=errors[0].hint)
        self.errors = tuple(errors)
        self.exit_code = errors[0].exit_code

    def lines(self) -> list[str]:
        return [line for error in self.errors for line in error.lines()] + [self.one_line()]


# --- binaries (issue 14) -------------------------------------------------------------------------


class BinaryFetchError(RegistryError):
    """A binary the vector names by URL could not be downloaded (HTTP error, network, timeout): exit 5."""


class BinaryNotFoundError(BinaryFetchError, NotFoundError):
    """A binary's URL answers 404 or 410: an answer (``verify-release --check-binaries`` fails it, exit 10),
    not an outage; ``assemble`` and ``release`` exit 5 for it, as for every failed download."""


class BinaryTooLargeError(InvalidInputError):
    """A binary is larger than the size limit (``--binary-size-limit``): exit 3."""


# --- carrying a release (mirror, export, import) --------------------------------------------


class UnsignedItemError(VerificationError):
    """An item of the release is missing or unsigned at the source of a mirror, export or import (exit 10
    unless ``--allow-unsigned``); the command lists every one and copies nothing."""


class LayoutError(InvalidInputError):
    """An OCI image layout (or its tar) is malformed, names a path outside ``blobs/``, holds a link or a
    ``..`` member, or has a blob whose content does not match its digest (exit 3; nothing is imported)."""


# --- keys kept elsewhere: PKCS#11 tokens and KMS (issue 19) ------------------------------------


class KeyReferenceError(KeyMaterialError):
    """A ``pkcs11:`` or ``awskms://`` key reference is malformed or names something unusable (exit 6)."""


class KeyPinError(KeyMaterialError):
    """The PKCS#11 token refused the PIN, or no PIN was given (exit 6)."""


class KeyServiceAuthError(AuthError):
    """The key service (KMS) refused the credentials, or there are none (exit 4)."""


class KeyServiceError(RegistryError):
    """The key service (KMS) failed, kept throttling after the retries, or was unreachable (exit 5)."""


# --- could not check (issue 18): a verify command tells an unreachable service from a bad signature ---------


def is_unchecked(error: ReleaseVectorError) -> bool:
    """True when ``error`` kept a check from happening (unreachable, refused, timeout, 5xx after retries,
    credentials refused) rather than finding something wrong: verify commands exit 5 (4 for auth) for it,
    not 10. A 404 is an answer (the signature is not there), not an outage."""
    return isinstance(error, RegistryError | AuthError) and not isinstance(error, NotFoundError)


def unchecked_exit_code(errors: list[ReleaseVectorError]) -> ExitCode:
    """4 when every unchecked image was refused credentials, else 5."""
    return ExitCode.AUTH if errors and all(e.exit_code == ExitCode.AUTH for e in errors) else ExitCode.REGISTRY
