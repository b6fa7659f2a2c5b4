"""HTTP long-polling over urllib3, with gevent sockets under urllib3's connection classes.

The transport moves bytes and decides nothing: the session tells it what to GET and POST. Each
call blocks only the calling greenlet. A pool holds at most two keep-alive connections: one for the
GET in flight, one for the POST in flight.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any, cast

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from geventio._cookies import CookieJar
from geventio._headers import request_headers
from geventio._payload import SEPARATOR
from geventio._proxy import Proxy
from geventio._transports._errors import deadline, dial_error, error_body, map_errors
from geventio._transports._sockets import CooperativeSSLContext, open_socket
from geventio._transports._tunnel import open_proxy_socket, open_tunnel
from geventio._url import Endpoint
from geventio.exceptions import ConnectError, TransportError

__all__ = ["PollingTransport"]

_POST_HEADERS = {"Content-Type": "text/plain;charset=UTF-8"}
#: geventio decodes no compressed answer (nor risks a decompression bomb): it asks for none.
_ACCEPT_ENCODING = {"Accept-Encoding": "identity"}


#: The whole request's deadline comes this much after its steps' own timers (a proxy
#: tunnel's, whose error names the proxy), which fire first when a step is what ran late.
_GRACE = 0.05
_CHUNK = 65536
_SEPARATOR = SEPARATOR.encode("ascii")
#: The whole of a poll answer may hold this much at least, whatever the message size limit.
_MIN_BODY_LIMIT = 64 * 1024 * 1024


class _CooperativeConnectionMixin:
    """Open the TCP connection with ``gevent.socket`` instead of the stdlib.

    urllib3 opens every connection through ``_new_conn``, the one private name of urllib3 that
    geventio relies on (``tests/faults/test_fault_urllib3.py`` fails loudly should urllib3
    change it). The address dialled is ``geventio_host`` (the endpoint's host, as geventio parsed
    it), not urllib3's private copy of it. With a ``geventio_proxy``, the connection goes to the
    proxy: through a ``CONNECT`` tunnel when ``geventio_tunnel`` is true (https), else for
    absolute-form requests (http). An ``OSError`` becomes a ``DialError`` right here, which
    urllib3 lets through untouched.
    """

    port: int
    timeout: Any

    def __init__(
        self,
        *args: Any,
        geventio_host: str,
        geventio_proxy: Proxy | None = None,
        geventio_tunnel: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._geventio_host = geventio_host
        self._geventio_proxy = geventio_proxy
        self._geventio_tunnel = geventio_tunnel

    def _new_conn(self) -> Any:
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
        proxy, host = self._geventio_proxy, self._geventio_host
        try:
            if proxy is None:
                return open_socket(host, self.port, timeout)
            if self._geventio_tunnel:
                return open_tunnel(proxy, host, self.port, timeout)
            return open_proxy_socket(proxy, timeout)
        except OSError as exc:
            raise dial_error(exc, host, proxied=proxy is not None) from exc


class _HTTPConnection(_CooperativeConnectionMixin, HTTPConnection):
    pass


class _HTTPSConnection(_CooperativeConnectionMixin, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


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
        pool_timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._pool: HTTPConnectionPool
        if endpoint.secure:
            context = ssl_context or ssl.create_default_context()
            self._pool = _HTTPSPool(
                endpoint.host,
                endpoint.port,
                maxsize=2,
                timeout=pool_timeout,
                ssl_context=cast(ssl.SSLContext, CooperativeSSLContext(context)),
                cert_reqs=context.verify_mode,
                # urllib3 checks the hostname itself unless told the context decides
                assert_hostname=None if context.check_hostname else False,
                retries=False,
                geventio_host=endpoint.host,
                geventio_proxy=proxy,
                geventio_tunnel=True,
            )
        else:
            self._pool = _HTTPPool(
                endpoint.host,
                endpoint.port,
                maxsize=2,
                timeout=pool_timeout,
                retries=False,
                geventio_host=endpoint.host,
                geventio_proxy=proxy,
            )

    def _request(
        self, method: str, target: str, body: bytes | None, limit: float, connecting: bool
    ) -> bytes:
        """One request and its whole answer, within ``limit`` seconds in all.

        :raises ConnectError: (``TransportError`` unless ``connecting``) for any failure, a
            non-2xx answer (with status and body), an encoded or oversized answer.
        :raises ConnectTimeout: (``TransportError`` unless ``connecting``) past ``limit``.
        """
        what = f"{method} {self._endpoint.path}"
        headers = request_headers(self._headers, self._cookies, self._endpoint)
        headers.update(_ACCEPT_ENCODING)
        if body is not None:
            headers.update(_POST_HEADERS)
        error = ConnectError if connecting else TransportError
        # urllib3's timeouts bound each recv; the deadline bounds the whole (a trickling peer)
        whole = deadline(limit + _GRACE, what, connecting=connecting)
        with whole, map_errors(what, connecting=connecting):
            response = self._pool.urlopen(
                method,
                self._origin + target,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                timeout=urllib3.Timeout(connect=self._timeout, read=limit),
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
            )
            complete = False
            try:
                self._cookies.update(self._endpoint, response.headers.getlist("Set-Cookie"))
                self._check_head(response.headers, what, error)
                data = self._read_body(response, what, error)
                status = response.status
                complete = True
            finally:
                if not complete:  # unread bytes, or a timer expired: the connection is closed
                    response.close()
                response.release_conn()
        if not 200 <= status < 300:
            text = error_body(data)
            raise error(f"{what}: HTTP {status}: {text[:200]}", status=status, body=text)
        return data

    def _check_head(
        self, headers: urllib3.HTTPHeaderDict, what: str, error: type[TransportError]
    ) -> None:
        """Refuse, before reading it, an answer that is encoded or announced over the limit."""
        encoding = headers.get("Content-Encoding")
        if encoding is not None and any(
            e.strip().lower() not in ("", "identity") for e in encoding.split(",")
        ):
            raise error(f"{what}: the answer is encoded ({encoding[:50]!r}); none was asked for")
        length = _announced_length(headers.get("Content-Length"))
        if length is not None and length > self._max_body:
            raise error(f"{what}: answer of {length} bytes is over the limit")

    def _read_body(
        self, response: urllib3.BaseHTTPResponse, what: str, error: type[TransportError]
    ) -> bytes:
        """Read the answer, checking the size of each packet in it as it arrives.

        :raises TransportError: (``error``) as soon as a packet or the whole answer is too large,
            without reading the rest.
        """
        chunks: list[bytes] = []
        total = current = 0  # bytes in all, and in the packet not yet ended by a separator
        limit = self._max_packet
        for chunk in response.stream(_CHUNK):
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
        return b"".join(chunks)

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
        target = self._endpoint.target("polling", sid, cache_bust=True)
        return self._request("GET", target, None, read_timeout, connecting=False)

    def post(self, sid: str, body: bytes) -> None:
        """POST one payload; blocks until the server answered it whole, at most ``timeout``.

        :raises TransportError: on any network failure, a non-2xx or encoded answer, or past
            ``timeout`` for the whole request.
        """
        target = self._endpoint.target("polling", sid, cache_bust=True)
        self._request("POST", target, body, self._timeout, connecting=False)

    def close(self) -> None:
        """Close every pooled connection. A request in flight in another greenlet fails."""
        self._pool.close()
