"""Edge helpers the commands share: reading secrets from env/file/prompt, writing files, JSON out.

``PrintableStream``, ``raw_stream`` and ``one_line`` live in :mod:`pipeline.cli.streams` (light to import)."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.cli.streams import PrintableStream, one_line, raw_stream
from pipeline.cosign.keyref import is_key_uri
from pipeline.errors import (
    FileConflictError,
    InvalidInputError,
    KeyNotFoundError,
    PasswordUnavailableError,
    UsageError,
)
from pipeline.localfiles import DEFAULT_LIMIT, KEY_LIMIT, read_bounded, too_large
from pipeline.secret import Secret

if TYPE_CHECKING:  # cryptography loads when a key does, not with every command (start-up time)
    from pipeline.cosign.keys import PrivateKeyHandle

ENV_PREFIX = "env://"
PASSWORD_ENV = "COSIGN_PASSWORD"  # noqa: S105 (a variable name, not a password)


def read_key_source(spec: str) -> tuple[Secret, str]:
    """The PEM bytes behind ``--key``: a path, or ``env://NAME`` (PEM content in that variable).

    Returns the content as a Secret and the source's name for messages (never the content).
    """
    if spec.startswith(ENV_PREFIX):
        name = spec[len(ENV_PREFIX) :]
        value = os.environ.get(name)
        if not name or value is None:
            raise KeyNotFoundError(f"environment variable {name or '(empty name)'} is not set", where=spec)
        if not value.strip():
            raise KeyNotFoundError(f"environment variable {name} is empty", where=spec)
        if len(value) > KEY_LIMIT:
            raise too_large(f"environment variable {name}", len(value), KEY_LIMIT, spec)
        return Secret(value), spec
    return Secret(read_bounded(Path(spec), "key file", limit=KEY_LIMIT, missing=KeyNotFoundError)), spec


def obtain_password(*, confirm: bool, purpose: str) -> Secret:
    """``COSIGN_PASSWORD`` (set but empty means the empty password), else a TTY prompt, else an error."""
    value = os.environ.get(PASSWORD_ENV)
    if value is not None:
        return Secret(value)
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise PasswordUnavailableError(
            f"no password for the {purpose}: {PASSWORD_ENV} is not set and there is no terminal to ask on",
            hint=f"set {PASSWORD_ENV} (an empty value means the empty password)",
        )
    first = Secret(getpass.getpass(f"Enter password for {purpose}: ", stream=sys.stderr))
    if confirm:
        second = Secret(getpass.getpass(f"Enter password for {purpose} again: ", stream=sys.stderr))
        if first != second:
            raise UsageError("the two passwords differ")
    return first


OPENED_KEYS: list[Callable[[], None]] = []
"""How to close each token or KMS key this command opened (see :func:`close_opened_keys`)."""


def close_opened_keys() -> None:
    """Close every key :func:`load_signing_key` opened (a token's login ends with it); called once per run."""
    while OPENED_KEYS:
        close = OPENED_KEYS.pop()
        with contextlib.suppress(Exception):  # closing is best effort: the command's outcome stands
            close()


def load_signing_key(spec: str) -> PrivateKeyHandle:
    """The key ``--key`` names: a key file or ``env://`` (decrypted here), or a ``pkcs11:``/``awskms://`` key,
    opened for this command and closed when it ends (the token's login ends with it)."""
    if is_key_uri(spec):
        from pipeline.signatures.keystores import open_key

        key = open_key(spec, os.environ)
        OPENED_KEYS.append(key.close)  # closed by the CLI's run() when the command ends, however it ends
        return key
    from pipeline.cosign.keys import load_private_key

    pem, source = read_key_source(spec)
    return load_private_key(pem, obtain_password(confirm=False, purpose=f"private key {source}"), source)


def read_input_file(path: Path, what: str, *, limit: int = DEFAULT_LIMIT) -> bytes:
    """A file named by an option, bounded (see :func:`pipeline.localfiles.read_bounded`; exit 3)."""
    return read_bounded(path, what, limit=limit)


def write_new_files(files: dict[Path, tuple[bytes, int]], *, force: bool) -> None:
    """Write every file with its mode; without ``force`` refuse before writing anything if one exists.

    A file is created, never opened: ``O_CREAT|O_EXCL|O_NOFOLLOW``, so a symlink planted at the path (even
    a dangling one) is refused rather than followed, and ``--force`` removes what is there (the link, not
    its target) before creating. A missing or unwritable directory is exit 3 naming the path.
    """
    if not force:
        existing = [str(p) for p in files if os.path.lexists(p)]
        if existing:
            raise FileConflictError(
                "refusing to overwrite existing file" + ("s" if len(existing) > 1 else ""),
                where=", ".join(existing),
                hint="pass --force to overwrite",
            )
    for path in files:
        directory = path.parent if str(path.parent) else Path()
        if not directory.is_dir():
            raise InvalidInputError("the directory to write in does not exist", where=str(directory))
    for path, (content, mode) in files.items():
        try:
            if force and os.path.lexists(path):
                if path.is_dir() and not path.is_symlink():
                    raise InvalidInputError("cannot write the file: the path is a directory", where=str(path))
                path.unlink()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        except FileExistsError:
            raise FileConflictError(
                "refusing to overwrite existing file (created meanwhile)", where=str(path), hint="pass --force"
            ) from None
        except OSError as exc:
            raise InvalidInputError(f"cannot write the file: {exc.strerror or exc}", where=str(path)) from None
        try:
            os.fchmod(fd, mode)  # exactly this mode, whatever the umask
            os.write(fd, content)
        finally:
            os.close(fd)


def write_atomically(path: Path, content: bytes, what: str) -> None:
    """Write ``content`` to ``path`` through a temp file beside it and a rename (mode 0644): a reader never
    sees half a file, and a failure leaves the old file (if any) untouched."""
    directory = path.parent if str(path.parent) else Path()
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise InvalidInputError(f"cannot write the {what}: {exc.strerror or exc}", where=str(path)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except OSError as exc:
        Path(temp_name).unlink(missing_ok=True)
        raise InvalidInputError(f"cannot write the {what}: {exc.strerror or exc}", where=str(path)) from None


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


__all__ = ["PrintableStream", "one_line", "raw_stream"]  # re-exported: importers of the old place
