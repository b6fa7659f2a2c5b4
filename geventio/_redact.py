"""What a message, a repr or a log line may show: URLs without credentials, headers without secrets.

Nothing here blocks or raises.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SECRET_HEADERS", "redact", "redact_headers"]


def redact(url: str) -> str:
    """``url`` for a message, repr or log line: its credentials, if any, replaced by ``***``.

    Everything from the scheme up to the last ``@`` goes, so a password stays hidden even where
    it holds ``/``, ``?``, ``#``, ``@`` or ``:`` unencoded (an ``@`` in a path or query hides a
    little more than needed, never less).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return f"{scheme}{sep}{rest}"


#: Request headers whose values are secrets: never shown in a message, repr or log line.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` for a message or repr: the values of :data:`SECRET_HEADERS` as ``***``."""
    return {k: "***" if k.lower() in SECRET_HEADERS else v for k, v in headers.items()}
