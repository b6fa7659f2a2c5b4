"""What a request may carry from the user: header names and values, the path and the query.

One rule for both transports, checked when the user gives them (the builder, and the headers
callable at each connect), so that nothing malformed reaches the wire on either one. It is
h11's rule (RFC 7230), which the WebSocket handshake enforces anyway:

- a header name is a ``token``: one or more of ``A-Z a-z 0-9 !#$%&'*+-.^_`|~``;
- a header value is empty, or ``field-vchar`` characters (``0x21``-``0x7E`` and, as latin-1,
  ``0x80``-``0xFF``) with runs of spaces or tabs only between them: no leading or trailing
  whitespace, no CR, LF, NUL or other control character (so no obs-fold continuation line);
- the path goes into the request line as it is, so it holds printable ASCII only
  (``0x21``-``0x7E``): percent-encode anything else;
- query keys and values are percent-encoded as UTF-8, so any text goes except a lone surrogate.

:func:`request_headers` merges, per request, the user's checked headers with the cookie jar's
``Cookie``. Nothing here blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from geventio._cookies import CookieJar
from geventio._url import Endpoint

__all__ = ["check_header", "check_path", "check_query", "checked_headers", "request_headers"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VCHAR = r"[\x21-\x7e\x80-\xff]"
_FIELD_VALUE = re.compile(rf"(?:{_VCHAR}+(?:[ \t]+{_VCHAR}+)*)?")
_TARGET = re.compile(r"[\x21-\x7e]*")


def check_header(name: object, value: object) -> None:
    """Check one header.

    :raises TypeError: when the name or the value is not a ``str``.
    :raises ValueError: for a name that is not a token, or a value that breaks the rule above;
        the message names the header.
    """
    if not isinstance(name, str):
        raise TypeError(f"header name {name!r} must be str, not {type(name).__name__}")
    if not isinstance(value, str):
        raise TypeError(f"header {name!r}: the value must be str, not {type(value).__name__}")
    if not _TOKEN.fullmatch(name):
        raise ValueError(
            f"invalid header name {name!r}: use letters, digits and !#$%&'*+-.^_`|~ only"
        )
    if not _FIELD_VALUE.fullmatch(value):
        raise ValueError(f"invalid value for header {name!r}: {_value_fault(value)}")


def _value_fault(value: str) -> str:
    """Why ``value`` breaks the rule (it does)."""
    if value != value.strip(" \t"):
        return "leading or trailing whitespace"
    bad = next(c for c in value if not (" " <= c <= "~" or c == "\t" or "\x80" <= c <= "\xff"))
    if ord(bad) > 0xFF:
        return f"{bad!r} is not latin-1 (encode the value, e.g. percent-encoded UTF-8)"
    return f"control character {bad!r}"


def checked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers``, each one checked with :func:`check_header`.

    :raises TypeError: as :func:`check_header`, or when ``dict(headers)`` does.
    :raises ValueError: as :func:`check_header`.
    """
    out = dict(headers)
    for name, value in out.items():
        check_header(name, value)
    return out


def check_path(path: str) -> None:
    """Check an Engine.IO path (from the URL or the builder).

    :raises ValueError: for a character outside printable ASCII, naming the path.
    """
    if not _TARGET.fullmatch(path):
        bad = next(c for c in path if not "\x21" <= c <= "\x7e")
        raise ValueError(
            f"invalid path {path!r}: {bad!r} cannot go in a request line; percent-encode it"
        )


def check_query(items: Iterable[tuple[str, str]]) -> None:
    """Check query parameters (``(key, value)`` pairs, from the URL or the builder).

    :raises ValueError: for a key or value that UTF-8 cannot encode (a lone surrogate), naming
        the parameter.
    """
    for key, value in items:
        for text in (key, value):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(
                    f"invalid query parameter {key!r}: {text!r} is not valid text "
                    "(a lone surrogate UTF-8 cannot encode)"
                ) from None


def request_headers(
    headers: Mapping[str, str], cookies: CookieJar, endpoint: Endpoint
) -> dict[str, str]:
    """The user's headers plus the jar's cookies for ``endpoint`` (after any ``Cookie`` the
    user set); never blocks, never raises.

    The user's headers were checked once, when given (:func:`geventio._headers.checked_headers`),
    and the jar holds only values safe to send: nothing is checked again per request.
    """
    out = dict(headers)
    jar = cookies.header(endpoint)
    if jar:
        key = next((k for k in out if k.lower() == "cookie"), "Cookie")
        out[key] = f"{out[key]}; {jar}" if out.get(key) else jar
    return out
