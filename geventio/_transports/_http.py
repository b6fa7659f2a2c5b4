"""The HTTP/1.1 connections of the polling transport, and what each of its requests goes through.

* :class:`CooperativeHTTPConnection` and :class:`CooperativeHTTPSConnection`: urllib3's
  connection classes on gevent sockets, which write a request from header lines encoded once
  (:meth:`~_CooperativeConnectionMixin.send_request`) and read the answer with http.client's
  ``getresponse()`` (:meth:`~_CooperativeConnectionMixin.read_head`);
* :func:`dropped`: whether a kept connection was closed by the server while idle;
* :class:`RequestGuard`: a request's deadline and the mapping of its errors, in one reusable
  context manager (what :func:`~geventio._transports._errors.deadline` and
  :func:`~geventio._transports._errors.map_errors` do, at a sixth of their cost: ~1 us).

Nothing here blocks but the connections' own calls, which block the calling greenlet only.
"""

from __future__ import annotations

import http.client
import select
from types import TracebackType
from typing import Any, cast

import gevent
import gevent.monkey
from urllib3.connection import HTTPConnection, HTTPSConnection

from geventio._proxy import Proxy
from geventio._transports._errors import dial_error, reraise
from geventio._transports._sockets import open_socket
from geventio._transports._tunnel import open_proxy_socket, open_tunnel
from geventio.exceptions import ConnectTimeout, TransportError

__all__ = [
    "Connection",
    "CooperativeHTTPConnection",
    "CooperativeHTTPSConnection",
    "RequestGuard",
    "dropped",
    "take",
]

_HTTP_GETRESPONSE = http.client.HTTPConnection.getresponse
#: the stdlib's ``select.poll`` (``select.select`` where there is none), even under
#: ``patch_all()``: gevent's go through the hub
_POLL: Any = getattr(select, "poll", None) and gevent.monkey.get_original("select", "poll")
_SELECT: Any = gevent.monkey.get_original("select", "select")


class _CooperativeConnectionMixin:
    """Open the TCP connection with ``gevent.socket`` instead of the stdlib.

    urllib3 opens every connection through ``_new_conn``, the one private name of urllib3 that
    geventio relies on (``tests/faults/test_fault_urllib3.py`` fails loudly should urllib3
    change it); http.client's ``_buffer`` is the other private name, of the stdlib
    (``tests/faults/test_fault_keepalive.py`` fails should it change). The address dialled is
    ``geventio_host`` (the endpoint's host, as geventio parsed it), not urllib3's private copy
    of it. With a ``geventio_proxy``, the connection goes to the proxy: through a ``CONNECT``
    tunnel when ``geventio_tunnel`` is true (https), else for absolute-form requests (http). An
    ``OSError`` becomes a ``DialError`` right here, which urllib3 lets through untouched.
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

    # A POST's head and body in one write: http.client's ``endheaders`` writes the head through
    # ``send``, and the body is added to that write. Two writes would cost a second system call
    # and, with ``TCP_NODELAY``, a second segment for the server to read.
    _geventio_body: bytes | None = None  # the body that goes with the next write, the head
    sock: Any
    _buffer: list[bytes]  # http.client's header lines of the request being built

    def send(self, data: Any) -> None:
        """http.client's one write (of the head): a POST's body goes out with it."""
        body = self._geventio_body
        if body is not None:
            self._geventio_body = None
            data = bytes(data) + body
        sock = self.sock
        if sock is None or not isinstance(data, bytes):
            super().send(data)  # type: ignore[misc]
            return
        # one send first: gevent's sendall asks the kernel for the buffer size on each call
        sent = sock.send(data)
        if sent < len(data):
            sock.sendall(memoryview(data)[sent:])

    def send_request(
        self, method: str, target: str, lines: list[bytes], body: bytes | None
    ) -> None:
        """Send one request: urllib3's ``putrequest``, the encoded header ``lines`` (which hold
        the ``Host`` and ``Accept-Encoding`` that ``putrequest`` is told to leave out), and
        http.client's ``endheaders``; the head and the body go out in one write.

        Blocks the calling greenlet until written.

        :raises OSError: (and http.client's errors) as ``request()`` does.
        """
        self.putrequest(method, target, skip_host=True, skip_accept_encoding=True)  # type: ignore[attr-defined]
        # http.client's list of the head's lines, which ``putheader`` appends to after encoding
        # and checking each one: these were encoded and checked once, when the transport began
        self._buffer.extend(lines)
        self._geventio_body = body
        try:
            self.endheaders()  # type: ignore[attr-defined]
        finally:
            self._geventio_body = None

    def read_head(self) -> http.client.HTTPResponse:
        """http.client's ``getresponse()``: the answer's status line and head, parsed by
        http.client; its body is read from the returned response. urllib3's ``getresponse()``
        would wrap it (a copy of the head, its ``HTTPResponse``), for nothing geventio uses.

        Blocks the calling greenlet until the head arrived.

        :raises OSError: (and http.client's errors) as ``getresponse()`` does.
        """
        return _HTTP_GETRESPONSE(cast(http.client.HTTPConnection, self))


class CooperativeHTTPConnection(_CooperativeConnectionMixin, HTTPConnection):
    pass


class CooperativeHTTPSConnection(_CooperativeConnectionMixin, HTTPSConnection):
    pass


Connection = CooperativeHTTPConnection | CooperativeHTTPSConnection


def dropped(sock: Any) -> bool:
    """Whether the kept connection on ``sock`` must not be used again: readable while no
    request is in flight means the server closed it (its keep-alive timeout) or sent what it
    must not. urllib3's pool asks the same (``not is_connected``: a ``poll(2)`` with no wait),
    through more layers; never blocks."""
    if _POLL is None:
        return bool(_SELECT([sock], (), (), 0)[0])
    poller = _POLL()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class RequestGuard:
    """One request's deadline and error mapping: ``with guard:`` bounds the block by the
    guard's ``seconds`` and maps the foreign exceptions that leave it, as
    ``with deadline(seconds, what, ...), map_errors(what, ...)`` does.

    It is kept between requests (its timer is restarted, not made anew): :func:`take` hands out
    one that is not in use, with the request's ``what`` and ``connecting``.

    :raises ConnectTimeout: past ``seconds`` while ``connecting``, else ``TransportError``.
    :raises TransportError: (``ConnectError`` while ``connecting``) as ``map_errors`` maps.
    """

    __slots__ = ("_timer", "busy", "connecting", "what")

    def __init__(self, seconds: float) -> None:
        self._timer = gevent.Timeout(seconds)
        self.busy = False
        self.what = ""
        self.connecting = False

    def __enter__(self) -> None:
        self.busy = True
        self._timer.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        self.busy = False
        if exc is None:
            return
        if exc is self._timer:
            failure = ConnectTimeout if self.connecting else TransportError
            raise failure(f"{self.what}: timed out") from None
        if isinstance(exc, Exception):
            reraise(exc, self.what, connecting=self.connecting)


def take(
    guards: dict[float, RequestGuard], seconds: float, what: str, connecting: bool
) -> RequestGuard:
    """A guard of ``seconds`` from ``guards`` (kept there for the next request), or a new one
    when that one is in use (a GET and a POST at once); never blocks."""
    guard = guards.get(seconds)
    if guard is None or guard.busy:
        guard = RequestGuard(seconds)
        guards.setdefault(seconds, guard)
    guard.what = what
    guard.connecting = connecting
    return guard
