"""Request URLs: the base URL and path, ``EIO=4``, transport, sid and the cache-buster; the
bracketing of an IPv6 host (:func:`bracket`), used wherever a host goes into a URL."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from geventio._redact import redact

__all__ = ["Endpoint", "bracket", "normalize_path", "parse_url"]


def bracket(host: str) -> str:
    """``host`` as it goes into a URL or a ``host:port`` authority: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


_SCHEMES = {"http": False, "https": True, "ws": False, "wss": True}
_DEFAULT_PATH = "/engine.io/"
_counter = itertools.count()
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"


def _base64ish(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 64)
        out = _ALPHABET[r] + out
        if not n:
            return out


def cache_buster() -> str:
    """A value for ``t`` that differs on every call (time-based, like the JS client's)."""
    return _base64ish(int(time.time() * 1000)) + "." + _base64ish(next(_counter))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the server is: ``secure`` selects https/wss."""

    host: str
    port: int
    secure: bool
    path: str
    query: tuple[tuple[str, str], ...]

    @property
    def host_header(self) -> str:
        default = 443 if self.secure else 80
        host = bracket(self.host)
        return host if self.port == default else f"{host}:{self.port}"

    def target(self, transport: str, sid: str | None = None, *, cache_bust: bool = False) -> str:
        """The request target (path and query) for one request."""
        params = [*self.query, ("EIO", "4"), ("transport", transport)]
        if sid is not None:
            params.append(("sid", sid))
        if cache_bust:
            params.append(("t", cache_buster()))
        return f"{self.path}?{urlencode(params)}"


def normalize_path(path: str) -> str:
    """An Engine.IO path with a leading and a trailing slash (``engine.io`` -> ``/engine.io/``)."""
    return "/" + path.strip("/") + "/" if path.strip("/") else "/"


def parse_url(
    url: str, path: str | None = None, query: Mapping[str, str] | None = None
) -> Endpoint:
    """Split a user's URL into an :class:`Endpoint`.

    :param path: the Engine.IO path; default: the URL's path unless empty or ``/``, else
        ``/engine.io/``.
    :param query: extra query parameters, after those of the URL.
    :raises ValueError: for a scheme other than http, https, ws or wss, no host or a bad port
        (the message hides any credentials in ``url``).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"unsupported URL scheme {parts.scheme!r}: use http, https, ws or wss")
    if not parts.hostname:
        raise ValueError(f"no host in URL {redact(url)!r}")
    try:
        port = parts.port
    except ValueError:
        hint = " (percent-encode '/', '?' and '#' in credentials)" if "@" in url else ""
        raise ValueError(f"bad port in URL {redact(url)!r}{hint}") from None
    secure = _SCHEMES[scheme]
    if path is None:
        path = parts.path if parts.path not in ("", "/") else _DEFAULT_PATH
    # as the JS client does: a leading and a trailing slash ("/engine.io" -> "/engine.io/")
    path = normalize_path(path)
    params: list[tuple[str, str]] = []
    if parts.query:
        params.extend(parse_qsl(parts.query, keep_blank_values=True))
    if query:
        params.extend((str(k), str(v)) for k, v in query.items())
    return Endpoint(
        host=parts.hostname,
        port=port or (443 if secure else 80),
        secure=secure,
        path=path,
        query=tuple(params),
    )
