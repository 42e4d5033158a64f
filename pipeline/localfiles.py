"""Reading a local file named on the command line, bounded: a path can name ``/dev/zero``, a FIFO or a
file of gigabytes, and reading it whole before a size check took minutes and gigabytes (or MemoryError).

:func:`read_bounded` opens without following into a block (``O_NONBLOCK``: a FIFO does not wait for a
writer), checks with ``fstat`` that it is a regular file within the limit, and then reads at most
``limit + 1`` bytes even so, since a file can grow after the check. Too large or not a regular file is
exit 3 naming the path. (Answers from servers are bounded in the network layer; this is for local files.)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from pipeline.errors import InvalidInputError, ReleaseVectorError

MiB: Final = 1024 * 1024
DEFAULT_LIMIT: Final = 16 * MiB  # keys, certificates, bundles, trusted roots, signatures: far below
KEY_LIMIT: Final = 1 * MiB  # a PEM key (file or env://NAME)
BLOB_LIMIT: Final = 1024 * MiB  # sign-blob / verify-blob: the blob is held in memory to be hashed


def too_large(what: str, size: int, limit: int, where: str) -> InvalidInputError:
    return InvalidInputError(f"{what} is too large ({size} bytes; the limit is {limit} bytes)", where=where)


def read_bounded(
    path: Path, what: str, *, limit: int = DEFAULT_LIMIT, missing: type[ReleaseVectorError] = InvalidInputError
) -> bytes:
    """The bytes of the regular file ``path`` if it holds at most ``limit`` bytes.

    ``what`` names it in messages (``release vector``); ``missing`` is the error type for a file that is
    absent, a directory or unreadable (a key's: exit 6); too large or not a regular file is exit 3.
    """
    where = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise missing(f"{what} not found", where=where) from None
    except IsADirectoryError:
        raise missing(f"{what} is a directory", where=where) from None
    except PermissionError:
        raise missing(f"{what} is not readable (permission denied)", where=where) from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read the {what}: {exc.strerror or exc}", where=where) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise missing(f"{what} is a directory", where=where)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInputError(f"{what} is not a regular file", where=where)
        if info.st_size > limit:
            raise too_large(what, info.st_size, limit, where)
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, MiB))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise InvalidInputError(f"cannot read the {what}: {exc.strerror or exc}", where=where) from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise too_large(what, len(data), limit, where)
    return data
