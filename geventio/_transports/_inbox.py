"""The receiving half of a client WebSocket, without I/O: bytes in; messages, bytes to write and
errors out.

:class:`Inbox` runs the fast path (:class:`~geventio._transports._frames.FrameParser`) until it
meets a frame it does not take, then wsproto for the rest of the connection, fed the very pieces
it would have been fed alone. It answers PINGs, reassembles fragments up to ``max_message_size``
and turns a protocol violation into :class:`~geventio.exceptions.ProtocolError`, the same way on
both paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Final

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    TextMessage,
)

from geventio._transports._frames import FrameParser
from geventio.exceptions import ProtocolError

__all__ = ["BATCH", "Inbox"]

#: frames (or wsproto events) parsed per :meth:`Inbox.step`: 64 KiB of tiny frames is 0.2 s
BATCH: Final = 256
Frame = str | bytes


class Inbox:
    """What one client WebSocket received, parsed a batch at a time.

    :meth:`feed` the bytes read from the socket, then :meth:`step` while :attr:`pending`; take
    the complete messages from :attr:`messages` (``bytes`` for binary). :attr:`error` is set once
    the peer broke the protocol (the messages before it stay in :attr:`messages`), :attr:`eof`
    once it closed. Nothing here blocks; :meth:`step` returns the bytes to write (PONGs, the
    answer to a CLOSE) instead of writing them.
    """

    __slots__ = (
        "_events",
        "_fast",
        "_max",
        "_parts",
        "_queue",
        "_size",
        "eof",
        "error",
        "messages",
        "wsproto",
    )

    def __init__(
        self, conn: Connection | None, max_message_size: int, *, fast: bool = True
    ) -> None:
        """``fast=False``: wsproto alone, from the first byte on (``conn`` is then required).

        ``conn`` ``None``: wsproto's connection is made when first needed (:attr:`conn`).
        """
        #: wsproto's open connection, ``None`` until :attr:`conn` made it
        self.wsproto = conn
        self._max = max_message_size
        self._fast: FrameParser | None = FrameParser(max_message_size) if fast else None
        self._queue: list[bytes] = []  # for wsproto, not given to it yet; b"" is the end
        # wsproto's, not taken yet (without the fast path, from what it may hold already)
        self._events: Iterator[Event] | None = None if fast else self.conn.events()
        self._parts: list[str] | list[bytes] = []
        self._size = 0
        #: complete messages, oldest first (a list: a deque costs 770 bytes per connection)
        self.messages: list[Frame] = []
        self.eof = False
        self.error: ProtocolError | None = None

    @property
    def conn(self) -> Connection:
        """wsproto's connection, made on first use: a fallback, a PING to answer, the close.

        Made then, it is the one the handshake would have left: wsproto was fed the head of the
        answer alone and no extension was agreed (the fast path's conditions), so it held no
        byte and no state but OPEN; only the fast path parsed what came since.
        """
        conn = self.wsproto
        if conn is None:
            conn = self.wsproto = Connection(ConnectionType.CLIENT)
        return conn

    @property
    def pending(self) -> bool:
        """``True`` when :meth:`step` has work: bytes fed that were not parsed yet."""
        fast = self._fast
        return self._events is not None or bool(self._queue) or (fast is not None and fast.ready)

    @property
    def fast(self) -> bool:
        """``True`` while the fast path parses (no frame off it was met yet)."""
        return self._fast is not None

    def feed(self, data: bytes) -> None:
        """Take the bytes read from the socket; ``b""``: the peer closed its side."""
        fast = self._fast
        if fast is None:
            self._queue.append(data)
        elif data:
            fast.feed(data)
        else:  # the end: an incomplete frame is wsproto's to judge (bad UTF-8 in it, say)
            self._queue += fast.finish()
            self._queue.append(data)
            self._fast = None

    def take(self, data: bytes) -> str | None:
        """:meth:`feed` ``data``, except one whole short text frame arriving alone on the fast
        path (an idle connection's PING): its text is returned instead, with nothing to step.

        ``None``: ``data`` was fed (``b""`` too: the peer closed its side).
        """
        fast = self._fast
        if fast is not None and (text := fast.lone_text(data)) is not None:
            return text
        self.feed(data)
        return None

    def abandon(self) -> list[bytes]:
        """Stop the fast path; the bytes not given to wsproto yet, in order (``b""``: the end).

        For a caller that feeds wsproto itself from now on (the close handshake).
        """
        if self._fast is not None:
            self._queue += self._fast.finish()
            self._fast = None
        queue, self._queue = self._queue, []
        return queue

    def step(self) -> tuple[bytes, bool]:
        """Parse at most :data:`BATCH` frames (or wsproto events) of what was fed.

        Returns the bytes to write, and ``True`` when the batch was full (a flood: the caller
        should let others run). A violation sets :attr:`error`; wsproto's own
        ``LocalProtocolError`` passes through (a PING to answer once our CLOSE went out).
        """
        if self._events is not None:
            # one event at a time: wsproto's state moves as it parses (a CLOSE parsed before the
            # PING ahead of it is answered would make that PONG a LocalProtocolError)
            out, count = self._collect(islice(self._events, BATCH))
            if count < BATCH:
                self._events = None
            return out, count == BATCH
        if self._queue:
            data = self._queue.pop(0)
            if data:
                conn = self.conn
                conn.receive_data(data)
                self._events = conn.events()
            else:
                self.eof = True
            return b"", False
        fast = self._fast
        if fast is None:
            return b"", False
        items = fast.parse(BATCH)
        if fast.fallen_back:
            self._queue += fast.take_handoff()
            self._fast = None
        if not fast.pings:
            self.messages += items  # type: ignore[arg-type]
            return b"", len(items) == BATCH
        pongs = []
        for item in items:
            if isinstance(item, str | bytes):
                self.messages.append(item)
            else:
                pongs.append(self.conn.send(Pong(payload=item.payload)))
        return b"".join(pongs), len(items) == BATCH

    def _collect(self, events: Iterable[Event]) -> tuple[bytes, int]:
        """Turn wsproto events into complete messages; answer PINGs and the CLOSE.

        Returns the bytes to write and how many events were taken. A protocol error is kept
        until the messages before it have been taken.
        """
        out: list[bytes] = []
        try:
            count = self._collect_events(events, out)
        except ProtocolError as exc:
            self.error = exc
            count = 0  # nothing more is parsed
        return b"".join(out), count

    def _collect_events(self, events: Iterable[Event], out: list[bytes]) -> int:
        conn = self.conn
        count = 0
        for event in events:
            count += 1
            if isinstance(event, Message):
                self._size += len(event.data)
                if self._size > self._max:
                    raise ProtocolError(f"message larger than {self._max} bytes")
                self._parts.append(event.data)
                if event.message_finished:
                    parts, self._parts, self._size = self._parts, [], 0
                    if isinstance(event, TextMessage):
                        self.messages.append("".join(parts))  # type: ignore[arg-type]
                    else:
                        assert isinstance(event, BytesMessage)
                        self.messages.append(b"".join(parts))  # type: ignore[arg-type]
            elif isinstance(event, Ping):
                out.append(conn.send(event.response()))
            elif isinstance(event, CloseConnection):
                if conn.state is ConnectionState.OPEN:
                    # wsproto reports invalid framing (bad UTF-8, masked frame, bad opcode) as a
                    # close event without the peer having closed: that is a protocol error.
                    out.append(conn.send(CloseConnection(event.code, event.reason)))
                    raise ProtocolError(f"invalid WebSocket data: {event.reason} ({event.code})")
                if conn.state is ConnectionState.REMOTE_CLOSING:
                    out.append(conn.send(event.response()))
                self.eof = True
        return count
