"""HTTP long-polling over urllib3, with gevent sockets under urllib3's connection classes.

The transport moves bytes and decides nothing: the session tells it what to GET and POST. Each
call blocks only the calling greenlet. It keeps at most two keep-alive connections: one for the
GET in flight, one for the POST in flight.

Each request goes out on a kept urllib3 connection, without urllib3's pool: the idle polling
cycle (a PING answered by a PONG POST and a new GET) is most of an idle client's cost, and the
pool's per-request machinery (its queue, the ``Retry`` and ``Timeout`` objects, the redirect
and retry checks that geventio turns off anyway) was a good part of it. What the pool did that
matters is done here: a kept connection that the server closed meanwhile is dropped before use,
a connection whose answer was not read whole is closed, and a POST's head and body go out in one
write.

The request is written with the connection's own ``putrequest``/``endheaders``, and its header
lines are encoded once per transport (the user's headers were checked when given, see
:mod:`geventio._headers`), not for each request as urllib3's ``request()`` does. The answer is
read with http.client's ``getresponse()`` (its parser, unchanged), without urllib3's wrapper
around it (its ``HTTPHeaderDict`` copy of the head and its ``HTTPResponse``), which decoded
nothing for geventio.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from collections.abc import Mapping
from contextlib import suppress
from typing import Any, cast

import urllib3

from geventio._cookies import CookieJar
from geventio._headers import request_headers
from geventio._payload import SEPARATOR
from geventio._proxy import Proxy
from geventio._transports._errors import error_body
from geventio._transports._http import (
    Connection,
    CooperativeHTTPConnection,
    CooperativeHTTPSConnection,
    RequestGuard,
    dropped,
    take,
)
from geventio._transports._sockets import CooperativeSSLContext
from geventio._url import Endpoint, cache_buster
from geventio.exceptions import ConnectError, TransportError

__all__ = ["PollingTransport"]

_POST_HEADERS = {"Content-Type": "text/plain;charset=UTF-8"}
#: geventio decodes no compressed answer (nor risks a decompression bomb): it asks for none.
_ACCEPT_ENCODING = {"Accept-Encoding": "identity"}


#: The whole request's deadline comes this much after its steps' own timers (a proxy
#: tunnel's, whose error names the proxy), which fire first when a step is what ran late.
_GRACE = 0.05
_CHUNK = 65536
#: keep-alive connections kept between requests: the GET's and the POST's
_KEEP = 2
_SEPARATOR = SEPARATOR.encode("ascii")
#: The whole of a poll answer may hold this much at least, whatever the message size limit.
_MIN_BODY_LIMIT = 64 * 1024 * 1024


#: the User-Agent urllib3's ``request()`` sends when the user set none
_USER_AGENT = f"python-urllib3/{urllib3.__version__}"  # type: ignore[attr-defined]
#: an obsolete line folding in a header value (urllib3 turns each into one space)
_OBS_FOLD = re.compile(r"[ \t]*\r\n[ \t]+")


def _encode_lines(headers: Mapping[str, str]) -> list[bytes]:
    """The head's lines for ``headers``, encoded as http.client's ``putheader`` encodes them."""
    return [f"{name}: {value}".encode("latin-1") for name, value in headers.items()]


class _Head:
    """What geventio reads of an answer's head, in one pass over http.client's parsed head
    (each ``get_all`` would be a pass of its own): the ``Set-Cookie`` values, and the
    ``Content-Encoding`` and ``Content-Length`` values, each joined with ``", "`` as urllib3's
    headers gave them (``None`` when absent)."""

    __slots__ = ("cookies", "encoding", "length")

    def __init__(self, headers: http.client.HTTPMessage) -> None:
        cookies: list[str] = []
        encodings: list[str] = []
        lengths: list[str] = []
        for name, value in headers.raw_items():
            key = name.lower()
            if key == "content-length":
                lengths.append(value)
            elif key == "set-cookie":
                cookies.append(_OBS_FOLD.sub(" ", value))
            elif key == "content-encoding":
                encodings.append(value)
        self.cookies = cookies
        self.encoding = ", ".join(encodings) if encodings else None
        self.length = ", ".join(lengths) if lengths else None


def _announced_length(value: str | None) -> int | None:
    """A Content-Length of ASCII digits as a number, else ``None`` (urllib3 ignores it too).

    ``str.isdigit`` alone accepts ``"²"``, which ``int`` refuses; and ``int`` refuses more than
    4300 digits, so a length of more than 18 is taken as 10**18, over any limit.
    """
    digits = (value or "").strip()
    if not (digits.isascii() and digits.isdigit()):
        return None
    digits = digits.lstrip("0") or "0"
    return 10**18 if len(digits) > 18 else int(digits)


class PollingTransport:
    """GET and POST against one Engine.IO endpoint.

    :param endpoint: where the server is.
    :param headers: sent on every request (after the cookie jar's cookies are added).
    :param cookies: the client's jar; every ``Set-Cookie`` goes into it.
    :param ssl_context: for https; certificates are verified unless the context says otherwise.
    :param timeout: bound on each request but the long-poll GET, from connecting to the last
        byte of the answer. geventio asks for no compression and refuses an encoded answer.
    :param max_message_size: the largest message accepted, in bytes. A poll answer may hold
        many: each packet in it may take up to that (4/3 of it for a base64 binary message),
        and the whole answer up to ``max(64 MiB, 4 * max_message_size)``.
    :param proxy: an HTTP proxy: absolute-form requests to it for http, a ``CONNECT`` tunnel
        through it for https.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        headers: Mapping[str, str],
        cookies: CookieJar,
        ssl_context: ssl.SSLContext | None,
        timeout: float,
        max_message_size: int,
        proxy: Proxy | None = None,
    ):
        self._endpoint = endpoint
        self._headers = dict(headers)
        # through a proxy without a tunnel, the request target is the absolute URL
        self._origin = ""
        if proxy is not None and not endpoint.secure:
            self._origin = f"http://{endpoint.host_header}"
            self._headers.update(proxy.headers())
        self._cookies = cookies
        self._timeout = timeout
        self._max_packet = max_message_size * 4 // 3 + 8  # base64, its "b" and the type
        self._max_body = max(_MIN_BODY_LIMIT, 4 * max_message_size)
        self._conn_kw: dict[str, Any] = {"geventio_host": endpoint.host, "geventio_proxy": proxy}
        if endpoint.secure:
            context = ssl_context or ssl.create_default_context()
            self._conn_kw |= {
                "ssl_context": cast(ssl.SSLContext, CooperativeSSLContext(context)),
                "cert_reqs": context.verify_mode,
                # urllib3 checks the hostname itself unless told the context decides
                "assert_hostname": None if context.check_hostname else False,
                "geventio_tunnel": True,
            }
        self._idle: list[Connection] = []  # kept alive, at most _KEEP
        self._busy: set[Connection] = set()  # a request in flight on each
        self._closed = False
        self._targets: dict[str, str] = {}  # the target of each sid's requests, but its "t"
        self._guards: dict[float, RequestGuard] = {}  # kept for the next request, by deadline
        # the headers of a request when the jar has no cookie for it (else a copy, with them),
        # and their lines, encoded once: urllib3's ``request()`` would send its User-Agent
        base = dict(self._headers)
        names = {name.lower() for name in base}
        if "user-agent" not in names:
            base["User-Agent"] = _USER_AGENT
        self._get_headers = {**base, **_ACCEPT_ENCODING}
        self._post_headers = {**self._get_headers, **_POST_HEADERS}
        self._host = [] if "host" in names else self._host_line()
        self._get_lines = self._host + _encode_lines(self._get_headers)
        self._post_lines = self._host + _encode_lines(self._post_headers)
        self._cookie: str | None = None  # the last Cookie sent, and the lines with it
        self._cookie_lines: tuple[list[bytes], ...] = ()

    def _new_connection(self) -> Connection:
        """A connection to the endpoint (or its proxy), not yet connected; never blocks."""
        cls = CooperativeHTTPSConnection if self._endpoint.secure else CooperativeHTTPConnection
        return cls(self._endpoint.host, self._endpoint.port, **self._conn_kw)

    def _host_line(self) -> list[bytes]:
        """The ``Host`` line http.client's ``putrequest`` writes for this endpoint (an IDNA or
        IPv6 host, a default port left out, the URL's authority through a proxy), computed once
        by ``putrequest`` itself on a connection that is never opened."""
        conn = self._new_connection()
        conn.putrequest("GET", self._origin + "/", skip_accept_encoding=True)
        return [line for line in conn._buffer if line.startswith(b"Host: ")]

    def _lines(self, body: bytes | None) -> list[bytes]:
        """The head's lines of a GET (``body`` is ``None``) or a POST, with the jar's cookies
        (encoded again only when the jar's ``Cookie`` for the endpoint changed)."""
        cookie = self._cookies.header(self._endpoint)
        if not cookie:
            get, post = self._get_lines, self._post_lines
        else:
            if cookie != self._cookie:
                self._cookie = cookie
                self._cookie_lines = tuple(
                    self._host
                    + _encode_lines(request_headers(headers, self._cookies, self._endpoint))
                    for headers in (self._get_headers, self._post_headers)
                )
            get, post = self._cookie_lines
        return get if body is None else [*post, b"Content-Length: %d" % len(body)]

    def _take(self, what: str, error: type[TransportError]) -> Connection:
        """A kept connection that the server did not close meanwhile, else a new one (not yet
        connected); never blocks.

        :raises TransportError: (``error``) once the transport is closed.
        """
        if self._closed:
            raise error(f"{what}: the transport is closed")
        if self._idle:
            conn = self._idle.pop()
            # a poll(2) with no wait, as urllib3's pool does: the server may have closed it
            # while idle (its keep-alive timeout); it is then dialled again
            if conn.sock is not None and dropped(conn.sock):
                conn.close()
        else:
            conn = self._new_connection()
        self._busy.add(conn)
        return conn

    def _give_back(self, conn: Connection, reusable: bool) -> None:
        """Keep ``conn`` for the next request when ``reusable`` (its answer was read whole),
        else close it (a timer cut it, or an error left bytes unread)."""
        self._busy.discard(conn)
        if reusable and not self._closed and len(self._idle) < _KEEP:
            self._idle.append(conn)
        else:
            conn.close()

    def _request(
        self, method: str, target: str, body: bytes | None, limit: float, connecting: bool
    ) -> bytes:
        """One request and its whole answer, within ``limit`` seconds in all.

        :raises ConnectError: (``TransportError`` unless ``connecting``) for any failure, a
            non-2xx answer (with status and body), an encoded or oversized answer.
        :raises ConnectTimeout: (``TransportError`` unless ``connecting``) past ``limit``.
        """
        what = f"{method} {self._endpoint.path}"
        error = ConnectError if connecting else TransportError
        lines = self._lines(body)
        # the deadline bounds the whole request (a trickling peer too); foreign errors are mapped
        with take(self._guards, limit + _GRACE, what, connecting):
            conn = self._take(what, error)
            response: http.client.HTTPResponse | None = None
            complete = False
            try:
                if conn.sock is None:
                    conn.timeout = self._timeout  # each step of the dial (a proxy's too)
                    conn.connect()
                    # then the deadline alone bounds each request: a socket timeout would start
                    # a timer for each wait as well (gevent's), which could fire only after it
                    cast(socket.socket, conn.sock).settimeout(None)
                conn.send_request(method, self._origin + target, lines, body)
                response = conn.read_head()
                head = _Head(response.msg)
                if head.cookies:
                    self._cookies.update(self._endpoint, head.cookies)
                self._check_head(head, what, error)
                data = self._read_body(response, what, error)
                status = response.status
                complete = True
            finally:
                # not read whole (an error, or the deadline cut it): the connection is closed,
                # and the answer too (after "Connection: close" it holds the socket open)
                if not complete and response is not None:
                    response.close()
                self._give_back(conn, complete)
        if not 200 <= status < 300:
            text = error_body(data)
            raise error(f"{what}: HTTP {status}: {text[:200]}", status=status, body=text)
        return data

    def _check_head(self, head: _Head, what: str, error: type[TransportError]) -> None:
        """Refuse, before reading it, an answer that is encoded, announced over the limit, or
        with Content-Lengths that differ (http.client would read by the first; urllib3's
        ``HTTPResponse`` refused them)."""
        encoding = head.encoding
        if encoding is not None and any(
            e.strip().lower() not in ("", "identity") for e in encoding.split(",")
        ):
            raise error(f"{what}: the answer is encoded ({encoding[:50]!r}); none was asked for")
        announced = head.length
        if announced is not None and len({v.strip() for v in announced.split(",")}) > 1:
            raise error(f"{what}: Content-Lengths that differ ({announced[:50]!r})")
        length = _announced_length(announced)
        if length is not None and length > self._max_body:
            raise error(f"{what}: answer of {length} bytes is over the limit")

    def _read_body(
        self, response: http.client.HTTPResponse, what: str, error: type[TransportError]
    ) -> bytes:
        """Read the answer, checking the size of each packet in it as it arrives.

        :raises TransportError: (``error``) as soon as a packet or the whole answer is too large,
            without reading the rest, or when it ends short of its ``Content-Length``.
        :raises http.client.IncompleteRead: for a chunked answer cut short.
        """
        chunks: list[bytes] = []
        total = current = 0  # bytes in all, and in the packet not yet ended by a separator
        limit = self._max_packet
        while chunk := response.read(_CHUNK):
            total += len(chunk)
            if total > self._max_body:
                raise error(f"{what}: answer is over {self._max_body} bytes")
            first = chunk.find(_SEPARATOR)
            if first == -1:
                current += len(chunk)
            else:
                ended = [current + first]
                if len(chunk) > limit:  # whole packets inside this chunk may be too large too
                    ended += [len(p) for p in chunk[first + 1 :].split(_SEPARATOR)[:-1]]
                if max(ended) > limit:
                    raise error(f"{what}: a message is over the limit of {limit} bytes")
                current = len(chunk) - chunk.rfind(_SEPARATOR) - 1
            if current > limit:
                raise error(f"{what}: a message is over the limit of {limit} bytes")
            chunks.append(chunk)
            if response.isclosed():  # read whole (its Content-Length): no read for the end
                break
        # ``read(amt)`` ends at the end of the stream without a word when it comes short of the
        # Content-Length: what is left of it stays in ``length``
        if response.length:
            raise error(f"{what}: the answer ended {response.length} bytes short of its length")
        return b"".join(chunks)

    def _target(self, sid: str) -> str:
        """``Endpoint.target("polling", sid, cache_bust=True)``, the query encoded once per sid:
        the cache-buster is last, and needs no quoting (letters, digits, ``-_.``)."""
        base = self._targets.get(sid)
        if base is None:
            self._targets.clear()  # one sid at a time
            base = self._targets[sid] = self._endpoint.target("polling", sid) + "&t="
        return base + cache_buster()

    def handshake(self) -> bytes:
        """GET the handshake; returns the whole body (the open packet and what follows it).

        :raises ConnectError: for a refused connection, a non-2xx answer (with status/body), or
            an encoded answer.
        :raises ConnectTimeout: past ``timeout`` for the whole request.
        """
        target = self._endpoint.target("polling", cache_bust=True)
        return self._request("GET", target, None, self._timeout, connecting=True)

    def get(self, sid: str, read_timeout: float) -> bytes:
        """One long-poll GET; blocks until the server answered it whole, at most ``read_timeout``.

        :raises TransportError: on any network failure, a non-2xx or encoded answer, or past
            ``read_timeout`` for the whole request.
        """
        return self._request("GET", self._target(sid), None, read_timeout, connecting=False)

    def post(self, sid: str, body: bytes) -> None:
        """POST one payload; blocks until the server answered it whole, at most ``timeout``.

        :raises TransportError: on any network failure, a non-2xx or encoded answer, or past
            ``timeout`` for the whole request.
        """
        self._request("POST", self._target(sid), body, self._timeout, connecting=False)

    def close(self) -> None:
        """Close every connection; never blocks. A request in flight in another greenlet fails
        (its socket is closed under it), and any later request raises ``TransportError``."""
        self._closed = True
        for conn in self._busy:  # a response's file holds the socket open: shut it down too
            if conn.sock is not None:
                with suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)
        for conn in [*self._idle, *self._busy]:
            conn.close()
        self._idle.clear()
