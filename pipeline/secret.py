"""A value object for secrets (passwords, private-key PEM, tokens).

Its ``repr`` and ``str`` never show the content, so a secret that ends up in a log line, an
exception message, a traceback's locals or a dataclass ``repr`` stays hidden.
"""

from __future__ import annotations

from typing import Final

_MASK: Final = "Secret(********)"


class Secret:
    """Holds secret bytes; only ``reveal()`` gives them back."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes | str) -> None:
        self._value = value.encode("utf-8") if isinstance(value, str) else bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return _MASK

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is not to be pickled")


_TOKEN_MIN: Final = 0x21
_TOKEN_MAX: Final = 0x7E


def is_header_token(value: str | bytes) -> bool:
    """True for a token that can go in an HTTP header as is (``Authorization: Bearer …``): visible ASCII,
    no space, no control character, not empty. Bearer tokens (RFC 6750) and GitHub's tokens are; a token
    outside that set is a misconfiguration to report, not a value to mangle or crash on."""
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return bool(data) and all(_TOKEN_MIN <= byte <= _TOKEN_MAX for byte in data)


def is_utf8_text(value: str) -> bool:
    """True if ``value`` encodes as UTF-8: a lone surrogate (undecodable bytes in an environment variable,
    a ``\\udc80`` escape in JSON) does not, and would otherwise crash the encoding of a header."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
