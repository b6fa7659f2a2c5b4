"""WebSocket over wsproto on a gevent socket (plus ``gevent.ssl`` for wss).

One greenlet reads (:meth:`WebSocketTransport.recv`); any greenlet may write (:meth:`send`), and
writes are serialized by a lock because ``sendall`` can yield partway. WebSocket pings are answered
here (that is framing, not Engine.IO). Messages are reassembled up to ``max_message_size``.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice

import gevent
import gevent.lock
import gevent.socket
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

from geventio._cookies import CookieJar
from geventio._headers import request_headers
from geventio._proxy import Proxy
from geventio._transports._errors import MAX_ERROR_BODY, deadline, error_body, map_errors, reraise
from geventio._transports._sockets import open_socket, wrap_tls
from geventio._transports._tunnel import open_tunnel
from geventio._url import Endpoint
from geventio.exceptions import ConnectError, ProtocolError, TransportError

__all__ = ["WebSocketTransport"]

_RECV_SIZE = 65536
_EVENT_BATCH = 256
Frame = str | bytes


class WebSocketTransport:
    """One WebSocket connection; build it with :meth:`connect`."""

    def __init__(self, sock: gevent.socket.socket, ws: WSConnection, max_message_size: int) -> None:
        self._sock = sock
        # the handshake's wrapper; once open, its inner Connection alone (the h11 state goes)
        self._ws: WSConnection | Connection = ws
        self._max = max_message_size
        self._lock = gevent.lock.Semaphore()
        self._messages: list[Frame] = []  # a list: a deque costs 770 bytes per connection
        self._backlog = b""  # bytes try_send could not send without waiting; they go first
        self._parts: list[str] | list[bytes] = []
        self._size = 0
        self._closed = False
        self._eof = False
        self._error: ProtocolError | None = None
        self._events: Iterator[Event] | None = None  # received, not yet parsed: see recv

    @classmethod
    def connect(
        cls,
        endpoint: Endpoint,
        target: str,
        *,
        headers: Mapping[str, str],
        cookies: CookieJar,
        ssl_context: ssl.SSLContext | None,
        timeout: float,
        max_message_size: int,
        proxy: Proxy | None = None,
    ) -> WebSocketTransport:
        """Open the TCP (and TLS) connection and run the WebSocket handshake.

        Blocks the calling greenlet, at most ``timeout`` for the whole (a server that trickles
        its answer included). With a ``proxy``, the connection goes through its ``CONNECT``
        tunnel (for ws and wss alike).

        :raises ConnectError: refused, reset, or the server (or the proxy) rejected the
            handshake (with ``status`` and ``body``).
        :raises ConnectTimeout: past ``timeout``.
        """
        what = f"WebSocket {endpoint.path}"
        # each socket step is bounded by ``timeout``, and so is the whole (DNS, trickling peer)
        with deadline(timeout, what, connecting=True), map_errors(what, connecting=True):
            if proxy is None:
                sock = open_socket(endpoint.host, endpoint.port, timeout)
            else:
                sock = open_tunnel(proxy, endpoint.host, endpoint.port, timeout)
            try:
                if endpoint.secure:
                    context = ssl_context or ssl.create_default_context()
                    sock = wrap_tls(sock, context, endpoint.host)
                ws = WSConnection(ConnectionType.CLIENT)
                extra = [
                    (k.encode("latin-1"), v.encode("latin-1"))
                    for k, v in request_headers(headers, cookies, endpoint).items()
                ]
                sock.sendall(
                    ws.send(Request(host=endpoint.host_header, target=target, extra_headers=extra))
                )
                transport = cls(sock, ws, max_message_size)
                transport._handshake(what, cookies, endpoint)
            except BaseException:
                sock.close()
                raise
        sock.settimeout(None)  # once open, I/O waits: the session heartbeat bounds it
        return transport

    def _handshake(self, what: str, cookies: CookieJar, endpoint: Endpoint) -> None:
        """Read the handshake answer; a refusal raises ConnectError with status and body."""
        reject: RejectConnection | None = None
        body = b""
        finished = False
        while True:
            data = self._sock.recv(_RECV_SIZE)
            self._ws.receive_data(data or None)
            for event in self._ws.events():
                if isinstance(event, AcceptConnection):
                    cookies.update(
                        endpoint,
                        [
                            v.decode("latin-1")
                            for k, v in event.extra_headers
                            if k.lower() == b"set-cookie"
                        ],
                    )
                    self._events = self._ws.events()  # what followed the answer: see recv
                    if isinstance(self._ws, WSConnection) and self._ws.connection is not None:
                        self._ws = self._ws.connection
                    return
                if isinstance(event, RejectConnection):
                    reject = event
                    finished = not event.has_body
                elif isinstance(event, RejectData):
                    body += event.data
                    finished = event.body_finished
            if reject is not None and (finished or not data or len(body) > MAX_ERROR_BODY):
                break
            if not data:
                raise ConnectError(f"{what}: connection closed during the handshake")
        text = error_body(body)
        raise ConnectError(
            f"{what}: HTTP {reject.status_code}: {text[:200]}", status=reject.status_code, body=text
        )

    def _collect(self, events: Iterable[Event]) -> None:
        """Turn wsproto events into complete messages; answer pings and the close.

        A protocol error is kept until the messages before it have been taken by :meth:`recv`.
        """
        try:
            self._collect_events(events)
        except ProtocolError as exc:
            self._error = exc

    def _collect_events(self, events: Iterable[Event]) -> None:
        for event in events:
            if isinstance(event, Message):
                self._size += len(event.data)
                if self._size > self._max:
                    raise ProtocolError(f"message larger than {self._max} bytes")
                self._parts.append(event.data)
                if event.message_finished:
                    parts, self._parts, self._size = self._parts, [], 0
                    if isinstance(event, TextMessage):
                        self._messages.append("".join(parts))  # type: ignore[arg-type]
                    else:
                        assert isinstance(event, BytesMessage)
                        self._messages.append(b"".join(parts))  # type: ignore[arg-type]
            elif isinstance(event, Ping):
                self._write(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if self._ws.state is ConnectionState.OPEN:
                    # wsproto reports invalid framing (bad UTF-8, masked frame, bad opcode) as a
                    # close event without the peer having closed: that is a protocol error.
                    self._write(self._ws.send(CloseConnection(event.code, event.reason)))
                    raise ProtocolError(f"invalid WebSocket data: {event.reason} ({event.code})")
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    self._write(self._ws.send(event.response()))
                self._eof = True

    def _write(self, data: bytes) -> None:
        """Write ``data`` after any backlog; blocks until the kernel took it all."""
        with self._lock:
            data, self._backlog = self._backlog + data, b""
            # one send() usually takes it all: cheaper than gevent's sendall, which asks the
            # kernel for the buffer size and slices a memoryview on every call
            sent = self._sock.send(data) if data else 0
            if sent < len(data):
                self._sock.sendall(memoryview(data)[sent:])

    def recv(self, timeout: float | None = None, *, connecting: bool = False) -> Frame | None:
        """The next complete message (``bytes`` for binary), or ``None`` once the peer closed.

        Blocks the calling greenlet until a message arrives, at most ``timeout`` in all, however
        the peer trickles its bytes (default: no limit; the session's heartbeat timer ends a
        silent connection); only one greenlet may call it.

        :raises TransportError: on a network failure, or past ``timeout`` when one is given
            (:class:`ConnectError` and :class:`ConnectTimeout` while ``connecting``).
        :raises ProtocolError: on a WebSocket protocol violation or an oversized message.
        """
        if self._messages:
            return self._messages.pop(0)
        if timeout is None:
            return self._read(connecting)
        with deadline(timeout, "WebSocket read", connecting=connecting):
            return self._read(connecting)

    def _read(self, connecting: bool) -> Frame | None:
        """:meth:`recv` without a bound: read until a message is complete or the peer closed."""
        try:
            while not self._messages:
                if self._error is not None:
                    raise self._error
                if self._eof:
                    return None
                if self._events is not None:  # parse what came in a batch at a time: 64 KiB
                    batch = list(islice(self._events, _EVENT_BATCH))  # of tiny frames is 0.2 s
                    if len(batch) < _EVENT_BATCH:
                        self._events = None
                    self._collect(batch)
                    if len(batch) == _EVENT_BATCH and not self._messages:
                        gevent.idle()  # frames that end no message (fragments, pings): a flood
                    continue
                data = self._sock.recv(_RECV_SIZE)
                if not data:
                    self._eof = True
                    return None
                self._ws.receive_data(data)
                self._events = self._ws.events()
        except Exception as exc:
            reraise(exc, "WebSocket read", connecting=connecting)
        return self._messages.pop(0)

    @property
    def idle(self) -> bool:
        """``True`` when no write is in progress and nothing waits: :meth:`try_send` may go."""
        return not self._backlog and not self._lock.locked()

    @property
    def backlogged(self) -> bool:
        """``True`` when bytes wait for a :meth:`send` (that may block) to push them out."""
        return bool(self._backlog)

    def send(self, frames: Sequence[Frame]) -> None:
        """Send messages, after any backlog, coalesced into one write; blocks until written.

        Serialized with other writers.

        :raises TransportError: on a network failure, or when the socket is closed.
        """
        if self._closed or self._ws.state is not ConnectionState.OPEN:
            raise TransportError("WebSocket is closed")
        try:
            self._write(self._encode(frames))
        except Exception as exc:
            reraise(exc, "WebSocket write", connecting=False)

    def try_send(self, frames: Sequence[Frame]) -> bool:
        """Send messages only as far as that needs no wait; never blocks, never raises.

        What cannot be sent at once (another greenlet is writing, or the kernel's buffer is
        full) is kept, in order, for the next :meth:`send`. Returns ``True`` when everything was
        sent, ``False`` when a :meth:`send` must follow (a failure shows up there too).
        """
        if self._closed or self._ws.state is not ConnectionState.OPEN:
            return False
        try:
            data = self._encode(frames)
        except LocalProtocolError:  # pragma: no cover - the state was checked above
            return False
        if not self.idle:
            self._backlog += data
            return False
        with self._lock:  # free: acquiring it does not wait
            try:
                sent = self._sock.send(data, 0, 0.0)  # gevent's send: timeout 0, never waits
            except OSError:
                sent = 0
            self._backlog = data[sent:]
        return not self._backlog

    def _encode(self, frames: Sequence[Frame]) -> bytes:
        send = self._ws.send
        return b"".join(
            [send(TextMessage(f) if isinstance(f, str) else BytesMessage(f)) for f in frames]
        )

    def close(self, timeout: float = 1.0) -> None:
        """Close with the close handshake, then drain before closing the socket.

        Draining keeps the kernel from resetting the connection, which would lose what the
        peer has not read yet. A ``timeout`` of 0 aborts: the socket is closed at once.
        Idempotent; never raises; blocks at most about ``timeout``.
        """
        if self._closed:
            return
        self._closed = True
        if timeout <= 0:  # abort: the peer is gone or broke the protocol
            self._sock.close()
            return
        # one bound for the whole close: a peer that never stops sending must not keep it open
        deadline = gevent.Timeout(timeout)
        try:
            deadline.start()
            if self._ws.state is ConnectionState.OPEN:
                self._write(self._ws.send(CloseConnection(code=1000)))
            while not self._eof:
                data = self._sock.recv(_RECV_SIZE)
                if not data:
                    break
                self._ws.receive_data(data)
                for event in self._ws.events():
                    if isinstance(event, CloseConnection):
                        self._eof = True
        except (gevent.Timeout, OSError, LocalProtocolError, TransportError, ProtocolError) as exc:
            if isinstance(exc, gevent.Timeout) and exc is not deadline:
                raise  # someone else's timeout
        finally:
            deadline.close()
            self._sock.close()
