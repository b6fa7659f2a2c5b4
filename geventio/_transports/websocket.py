"""WebSocket on a gevent socket (plus ``gevent.ssl`` for wss): wsproto, with a fast path.

One greenlet reads (:meth:`WebSocketTransport.recv`); any greenlet may write (:meth:`send`), and
writes are serialized by a lock because ``sendall`` can yield partway. WebSocket pings are answered
here (that is framing, not Engine.IO). Messages are reassembled up to ``max_message_size``.

wsproto runs the handshake, the close and anything unusual; the plain frames (whole text or binary
messages, PINGs) are parsed by :mod:`geventio._transports._frames` until the first frame that is
not (see :class:`~geventio._transports._inbox.Inbox`), and the data frames sent are built there.
On that fast path wsproto's open connection is made only once needed (a fallback, the close):
an idle client holds none (about 1.6 KiB less each).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping, Sequence

import gevent
import gevent.lock
import gevent.socket
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    RejectConnection,
    RejectData,
    Request,
)
from wsproto.utilities import LocalProtocolError

from geventio._cookies import CookieJar
from geventio._headers import request_headers
from geventio._proxy import Proxy
from geventio._transports._errors import MAX_ERROR_BODY, deadline, error_body, map_errors, reraise
from geventio._transports._frames import encode_frames
from geventio._transports._inbox import Inbox
from geventio._transports._sockets import open_socket, wrap_tls
from geventio._transports._tunnel import open_tunnel
from geventio._url import Endpoint
from geventio.exceptions import ConnectError, ProtocolError, TransportError

__all__ = ["WebSocketTransport"]

_RECV_SIZE = 65536
#: where an HTTP head ends, as h11 finds it (its ``blank_line_regex``)
_HEAD_END = re.compile(b"\n\r?\n")
_MAX_HEAD = 16384  # h11's max_incomplete_event_size: past it, h11 refuses the head anyway
Frame = str | bytes


class WebSocketTransport:
    """One WebSocket connection; build it with :meth:`connect`."""

    def __init__(self, sock: gevent.socket.socket, ws: WSConnection, max_message_size: int) -> None:
        self._sock = sock
        # the handshake's; once open, wsproto's connection is the inbox's (Inbox.conn)
        self._ws: WSConnection | None = ws
        self._max = max_message_size
        self._lock = gevent.lock.Semaphore()
        self._backlog = b""  # bytes try_send could not send without waiting; they go first
        self._closed = False
        self._in: Inbox  # what was received: set by the handshake, once the connection is open
        self._messages: list[Frame]  # self._in.messages
        # the last read drained the socket: wait for readability before the next (a plain
        # socket only: a TLS one may hold decrypted bytes that the descriptor does not show);
        # the handshake's reads came first (should bytes wait already, the wait returns at once)
        self._drained = True
        self._plain = type(sock) is gevent.socket.socket

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
        """Read the handshake answer; a refusal raises ConnectError with status and body.

        wsproto is fed the head of the answer alone, so that it holds none of the frames that
        follow: those go to the fast path. Should it want more than the head to accept, it is
        fed the rest, and it alone parses the connection from then on.
        """
        ws = self._ws
        assert ws is not None
        reject: RejectConnection | None = None
        body = b""
        finished = False
        head: bytes | None = b""  # the answer until the end of its head is found
        while True:
            data = self._sock.recv(_RECV_SIZE)
            pieces, split = [data], False
            if head is not None:
                head += data
                end = _HEAD_END.search(head, max(0, len(head) - len(data) - 2))
                if end is None and data and len(head) <= _MAX_HEAD:
                    continue
                cut = len(head) if end is None else end.end()
                pieces = [p for p in (head[:cut], head[cut:]) if p] + ([] if data else [b""])
                head, split = None, True
            for i, piece in enumerate(pieces):
                ws.receive_data(piece or None)
                for event in ws.events():
                    if isinstance(event, AcceptConnection):
                        self._accepted(event, cookies, endpoint)
                        assert ws.connection is not None
                        fast = split and i == 0 and not event.extensions
                        # on the fast path wsproto was fed the head alone: the connection it
                        # made holds nothing, and one made later (Inbox.conn) is the same
                        self._in = Inbox(None if fast else ws.connection, self._max, fast=fast)
                        self._ws = None
                        self._messages = self._in.messages
                        for later in pieces[i + 1 :]:
                            self._in.feed(later)
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

    def _accepted(self, event: AcceptConnection, cookies: CookieJar, endpoint: Endpoint) -> None:
        """Keep the cookies the 101 answer set."""
        cookies.update(
            endpoint,
            [v.decode("latin-1") for k, v in event.extra_headers if k.lower() == b"set-cookie"],
        )

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
        inbox = self._in
        try:
            while not inbox.messages:
                if inbox.error is not None:
                    raise inbox.error
                if inbox.eof:
                    return None
                if inbox.pending:  # parse what came in a batch at a time: 64 KiB of tiny
                    out, full = inbox.step()  # frames is 0.2 s through wsproto
                    if out:
                        self._write(out)
                    if full and not inbox.messages:
                        gevent.idle()  # frames that end no message (fragments, pings): a flood
                    continue
                text = inbox.take(self._recv())
                if text is not None:  # a lone short text frame: the idle connection's path
                    return text
        except Exception as exc:
            reraise(exc, "WebSocket read", connecting=connecting)
        return inbox.messages.pop(0)

    def _recv(self) -> bytes:
        """One ``recv`` of the socket; blocks the calling greenlet until it has bytes or ended.

        When the last one drained the socket (it returned less than it asked for), it waits for
        readability first, instead of a ``recv`` that would fail with ``EAGAIN`` before gevent
        waits: one system call and one exception less per message of an idle connection. It
        uses gevent's private ``socket._wait`` and ``_read_event`` (what gevent's own ``recv``
        does; ``tests/faults/test_fault_gevent_wait.py`` fails when gevent changes them).

        :raises OSError: as the socket's ``recv`` does.
        """
        sock = self._sock
        if self._drained and self._plain:
            event = sock._read_event  # None once closed: then recv raises as it did
            if event is not None:
                sock._wait(event)
        data: bytes = sock.recv(_RECV_SIZE)
        self._drained = len(data) < _RECV_SIZE
        return data

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
        ws = self._in.wsproto  # None: not made yet, so open (see Inbox.conn)
        if self._closed or (ws is not None and ws.state is not ConnectionState.OPEN):
            raise TransportError("WebSocket is closed")
        try:
            self._write(encode_frames(frames))
        except Exception as exc:
            reraise(exc, "WebSocket write", connecting=False)

    def try_send(self, frames: Sequence[Frame]) -> bool:
        """Send messages only as far as that needs no wait; never blocks, never raises.

        What cannot be sent at once (another greenlet is writing, or the kernel's buffer is
        full) is kept, in order, for the next :meth:`send`. Returns ``True`` when everything was
        sent, ``False`` when a :meth:`send` must follow (a failure shows up there too).
        """
        ws = self._in.wsproto  # None: not made yet, so open (see Inbox.conn)
        if self._closed or (ws is not None and ws.state is not ConnectionState.OPEN):
            return False
        data = encode_frames(frames)
        if self._backlog or self._lock.locked():  # not idle
            self._backlog += data
            return False
        with self._lock:  # free: acquiring it does not wait
            try:
                sent = self._sock.send(data, 0, 0.0)  # gevent's send: timeout 0, never waits
            except OSError:
                sent = 0
            self._backlog = data[sent:]
        return not self._backlog

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
            ws = self._in.conn
            if ws.state is ConnectionState.OPEN:
                self._write(ws.send(CloseConnection(code=1000)))
            pending = self._in.abandon()  # received, not given to wsproto yet: it goes first
            while not self._in.eof:
                data = pending.pop(0) if pending else self._sock.recv(_RECV_SIZE)
                if not data:
                    break
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, CloseConnection):
                        self._in.eof = True
        except (gevent.Timeout, OSError, LocalProtocolError, TransportError, ProtocolError) as exc:
            if isinstance(exc, gevent.Timeout) and exc is not deadline:
                raise  # someone else's timeout
        finally:
            deadline.close()
            self._sock.close()
