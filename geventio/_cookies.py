"""The cookie jar of one client, with a browser's rules (RFC 6265, and 6265bis where stricter).

A cookie is stored from a ``Set-Cookie`` header as a browser would store it, and sent back only on
the requests a browser would send it on:

- **Domain**: without the attribute, a cookie is host-only (sent to that host alone); with it,
  also to the subdomains of the named domain, which must be the request host or one of its parent
  domains (a foreign domain or a single-label one such as ``com`` is refused). IP addresses have
  no subdomains.
- **Path**: sent when the request path is the cookie's path or below it; the default path is the
  request path up to its last ``/``.
- **Secure**: only stored from, and sent over, https and wss (ws and wss are judged as http and
  https). ``__Secure-`` and ``__Host-`` prefixed names get their extra rules.
- **Expiry**: ``Max-Age`` wins over ``Expires``; an expiry in the past or ``Max-Age<=0`` deletes
  the cookie; expired cookies are never sent.
- **Values** are kept verbatim: quotes, JSON-like text and backslash escapes are not decoded.
- A ``Set-Cookie`` holding a control character (or anything that is not Latin-1) is ignored
  whole, so nothing that could break a request head is ever stored.

The ``Cookie`` header is cached per request (host, security, path) until a ``Set-Cookie`` changes
the jar or the earliest expiry passes: a poll costs a dictionary lookup, not a walk over the jar.
No I/O here; nothing blocks.
"""

from __future__ import annotations

import calendar
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from geventio._url import Endpoint

__all__ = ["CookieJar"]

logger = logging.getLogger("geventio")

#: Anything that may not be in a header value on the wire: controls (HTAB aside) and non-Latin-1.
_UNSAFE = re.compile(r"[^\t\x20-\x7e\x80-\xff]")
#: The most bytes of name and value one cookie may have, and the most cookies a jar keeps.
MAX_COOKIE_SIZE = 4096
#: The longest life a cookie may get (RFC 6265bis): 400 days, in seconds.
_MAX_AGE = 400 * 24 * 3600
MAX_COOKIES = 64
_DELTA = re.compile(r"-?[0-9]+")
_DATE_DELIMITERS = re.compile(r"[\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[^0-9].*)?", re.DOTALL)
_DAY = re.compile(r"([0-9]{1,2})(?:[^0-9].*)?", re.DOTALL)
_YEAR = re.compile(r"([0-9]{2,4})(?:[^0-9].*)?", re.DOTALL)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

_Key = tuple[str, bool, str]  # (host, secure, path) of a request


@dataclass(slots=True)
class _Cookie:
    name: str
    value: str
    domain: str
    path: str
    host_only: bool
    secure: bool
    expiry: float | None  # seconds since the epoch; None for a session cookie
    created: int  # order of creation (a replaced cookie keeps its own)


class CookieJar:
    """One client's cookies, stored and sent back with a browser's rules (module docstring).

    :param clock: the wall clock, in seconds since the epoch (``Expires`` is a calendar date).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._cookies: dict[tuple[str, str, str], _Cookie] = {}
        self._headers: dict[_Key, str | None] = {}  # the Cookie header per request
        self._next_expiry: float | None = None  # when the earliest cookie expires
        self._created = 0

    def update(self, endpoint: Endpoint, set_cookie_headers: Iterable[str]) -> None:
        """Store the cookies of a response to a request for ``endpoint``; never raises.

        A header the rules refuse is ignored (logged at debug with the cookie's name only).
        """
        changed = False
        now = self._clock()
        for header in set_cookie_headers:
            try:
                changed = self._store(endpoint, header, now) or changed
            except Exception:  # a Set-Cookie never breaks the request: it is ignored
                logger.debug("ignored a Set-Cookie that could not be parsed", exc_info=True)
        if changed:
            self._forget()

    def header(self, endpoint: Endpoint) -> str | None:
        """The ``Cookie`` value for a request to ``endpoint``, or ``None`` when none applies."""
        if not self._cookies:  # the usual case: no cache entry either (idle clients pay for none)
            return None
        if self._next_expiry is not None:
            now = self._clock()
            if now >= self._next_expiry:
                self._purge(now)
        key = (endpoint.host, endpoint.secure, endpoint.path)
        try:
            return self._headers[key]
        except KeyError:
            value = self._headers[key] = self._build(*key)
            return value

    def __len__(self) -> int:
        return len(self._cookies)

    # -- storing (RFC 6265 5.2 and 5.3) ------------------------------------------------------

    def _store(self, endpoint: Endpoint, header: str, now: float) -> bool:
        """Parse and store one ``Set-Cookie``; ``True`` when the jar changed."""
        pair, _, attributes = header.partition(";")
        name, eq, value = pair.partition("=")
        name, value = name.strip(" \t"), value.strip(" \t")
        if _UNSAFE.search(header) or not eq or not name:
            logger.debug("ignored a Set-Cookie that is malformed or unsafe to send back")
            return False
        if len(name) + len(value) > MAX_COOKIE_SIZE:
            logger.debug("ignored the cookie %s: over %d bytes", _shown(name), MAX_COOKIE_SIZE)
            return False
        host = endpoint.host.lower()
        domain, path, secure, expiry = _attributes(attributes, now)
        path = path or _default_path(endpoint.path)
        refusal = _refusal(name, host, endpoint.secure, domain=domain, secure=secure, path=path)
        if refusal:
            logger.debug("ignored the cookie %s: %s", _shown(name), refusal)
            return False
        key = (name, domain or host, path)
        old = self._cookies.pop(key, None)
        if expiry is not None and expiry <= now:  # a request to delete it
            return old is not None
        if old is None:
            self._created += 1
        cookie = _Cookie(
            name,
            value,
            domain or host,
            path,
            host_only=domain is None,
            secure=secure,
            expiry=expiry,
            created=self._created if old is None else old.created,
        )
        self._cookies[key] = cookie
        if len(self._cookies) > MAX_COOKIES:
            oldest = min(self._cookies.values(), key=lambda c: c.created)
            del self._cookies[(oldest.name, oldest.domain, oldest.path)]
        return True

    # -- sending (RFC 6265 5.4) --------------------------------------------------------------

    def _build(self, host: str, secure: bool, path: str) -> str | None:
        host = host.lower()
        chosen = [
            c
            for c in self._cookies.values()
            if (host == c.domain if c.host_only else _domain_match(host, c.domain))
            and _path_match(path, c.path)
            and (secure or not c.secure)
        ]
        if not chosen:
            return None
        chosen.sort(key=lambda c: (-len(c.path), c.created))
        return "; ".join(f"{c.name}={c.value}" for c in chosen)

    def _purge(self, now: float) -> None:
        for key, cookie in list(self._cookies.items()):
            if cookie.expiry is not None and cookie.expiry <= now:
                del self._cookies[key]
        self._forget()

    def _forget(self) -> None:
        """The jar changed: drop the cached headers and find the next expiry."""
        self._headers.clear()
        expiries = [c.expiry for c in self._cookies.values() if c.expiry is not None]
        self._next_expiry = min(expiries) if expiries else None


def _shown(name: str) -> str:
    """A cookie's name for a log line (its value is never logged)."""
    return repr(name[:64])


class _Attributes(NamedTuple):
    domain: str | None
    path: str | None
    secure: bool
    expiry: float | None  # -inf for Max-Age<=0


def _attributes(text: str, now: float) -> _Attributes:
    """The attributes that matter (RFC 6265 5.2): the last of each wins, Max-Age over Expires."""
    domain = path = None
    secure = False
    max_age: float | None = None
    expires: float | None = None
    for item in text.split(";"):
        key, _, value = item.partition("=")
        key, value = key.strip(" \t").lower(), value.strip(" \t")
        if key == "domain" and value:
            domain = value.removeprefix(".").lower()
        elif key == "path":
            path = value if value.startswith("/") else None  # else the default path
        elif key == "secure":
            secure = True
        elif key == "max-age" and _DELTA.fullmatch(value):
            # capped at 400 days (RFC 6265bis) before converting: 400 digits would overflow
            digits = value.lstrip("-")
            delta = min(int(digits), _MAX_AGE) if len(digits) <= 12 else _MAX_AGE
            delta = -delta if value.startswith("-") else delta
            max_age = now + delta if delta > 0 else float("-inf")
        elif key == "expires":
            when = parse_cookie_date(value)
            if when is not None:
                expires = when
    return _Attributes(domain, path, secure, max_age if max_age is not None else expires)


def parse_cookie_date(text: str) -> float | None:
    """An ``Expires`` date as seconds since the epoch, by RFC 6265 5.1.1 (as browsers parse it).

    :returns: ``None`` for a date the algorithm rejects.
    """
    clock: tuple[int, int, int] | None = None
    day = month = year = None
    for token in _DATE_DELIMITERS.split(text):
        if clock is None and (found := _TIME.fullmatch(token)):
            clock = (int(found[1]), int(found[2]), int(found[3]))
        elif day is None and (found := _DAY.fullmatch(token)):
            day = int(found[1])
        elif month is None and token[:3].lower() in _MONTHS and len(token) >= 3:
            month = _MONTHS.index(token[:3].lower()) + 1
        elif year is None and (found := _YEAR.fullmatch(token)):
            year = int(found[1])
    if clock is None or day is None or month is None or year is None:
        return None
    year += 1900 if 70 <= year <= 99 else 2000 if year <= 69 else 0
    hour, minute, second = clock
    if year < 1601 or hour > 23 or minute > 59 or second > 59:
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def _refusal(
    name: str, host: str, secure_request: bool, *, domain: str | None, secure: bool, path: str
) -> str | None:
    """Why a cookie may not be stored from this request, or ``None`` when it may."""
    if secure and not secure_request:
        return "Secure, set over an insecure connection"
    if domain is not None:
        if not _domain_match(host, domain):
            return f"its Domain {domain!r} is not the host's"
        if "." not in domain and domain != host:
            return f"its Domain {domain!r} is a top-level domain"
    if name.startswith("__Secure-") and not (secure and secure_request):
        return "a __Secure- cookie without Secure over a secure connection"
    host_ok = secure and secure_request and not domain and path == "/"
    if name.startswith("__Host-") and not host_ok:
        return "a __Host- cookie with a Domain, another Path than /, or without Secure"
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _domain_match(host: str, domain: str) -> bool:
    """RFC 6265 5.1.3: the same, or ``host`` a subdomain of ``domain`` (never for an IP)."""
    return host == domain or (host.endswith("." + domain) and not _is_ip(host))


def _default_path(request_path: str) -> str:
    """RFC 6265 5.1.4: the request path up to (not including) its last ``/``, at least ``/``."""
    if not request_path.startswith("/"):
        return "/"
    cut = request_path.rfind("/")
    return request_path[:cut] if cut > 0 else "/"


def _path_match(request_path: str, path: str) -> bool:
    """RFC 6265 5.1.4: the same path, or a path below the cookie's."""
    if not request_path.startswith(path):
        return False
    return len(request_path) == len(path) or path.endswith("/") or request_path[len(path)] == "/"
