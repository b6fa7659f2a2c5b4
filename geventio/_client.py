"""The public client: the blocking API, and the opening of a session (handshake, upgrade).

What runs in the background once the session is open lives in :mod:`geventio._session`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Literal

import gevent
import gevent.event

from geventio._connection import (
    Closed,
    Connection,
    Event,
    State,
    Upgrade,
)
from geventio._headers import checked_headers
from geventio._mailbox import CLOSED
from geventio._options import Message
from geventio._packet import Packet, PacketId
from geventio._proxy import redact
from geventio._reason import CloseReason
from geventio._session import Session
from geventio._transports.polling import PollingTransport
from geventio._transports.websocket import WebSocketTransport
from geventio.exceptions import (
    ConnectError,
    ConnectionClosed,
    ConnectTimeout,
    EngineIOError,
    ProtocolError,
)

__all__ = ["Client"]

logger = logging.getLogger("geventio")
monotonic = time.monotonic


class Client(Session):
    """A connected Engine.IO client; made by :class:`geventio.ClientBuilder` or ``connect()``.

    Every method may be called from any greenlet, including from inside a callback.
    """

    # -- public API -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """``True`` while the session is open (``False`` as soon as ``disconnect()`` returns)."""
        return not self._finished and self._conn.state is State.OPEN

    @property
    def transport(self) -> str:
        """``"polling"`` or ``"websocket"``."""
        return self._conn.transport

    @property
    def close_reason(self) -> CloseReason | None:
        """Why the client closed, or ``None`` while open."""
        return self._reason

    def emit(self, packet: Packet) -> None:
        """Queue a packet for sending, after every packet queued before.

        Returns at once while less than the builder's ``send_buffer`` bytes wait to be sent;
        past it (a peer that does not read), blocks the calling greenlet until the writer has
        taken enough. The packet is queued either way: an error means it may not have been sent.

        :raises ConnectionClosed: once the client is closed or closing, also while blocked.
        """
        if self._finished:
            raise ConnectionClosed(self._reason or CloseReason.CLIENT_DISCONNECT)
        conn = self._conn
        conn.send(packet)
        self._wake.set()
        while conn.queued_bytes > self._opts.send_buffer:
            if self._finished:
                raise ConnectionClosed(self._reason or CloseReason.CLIENT_DISCONNECT)
            self._room.clear()
            self._room.wait()

    def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """Queue a message: ``str`` is text, bytes-like is binary; blocks as :meth:`emit`.

        :raises ConnectionClosed: once the client is closed or closing, also while blocked.
        :raises TypeError: for any other type.
        :raises ValueError: for text that UTF-8 cannot encode (a lone surrogate), or text holding
            U+001E while the session is on polling (the polling record separator: the server
            would split the message). Over WebSocket such text is sent intact.
        """
        self.emit(Packet(PacketId.MESSAGE, data))

    def receive(self, timeout: float | None = None) -> Message:
        """The next received message; blocks the calling greenlet only.

        Messages come here only when no ``on_data`` callback is registered.

        :raises ConnectionClosed: once the client is closed and every message was taken.
        :raises Timeout: when ``timeout`` seconds pass first.
        """
        item = self._inbox.get(timeout)
        if item is CLOSED:
            raise ConnectionClosed(self._reason or CloseReason.CLIENT_DISCONNECT)
        return item  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[Message]:
        """Yield received messages until the client is closed."""
        while True:
            try:
                yield self.receive()
            except ConnectionClosed:
                return

    def wait(self, timeout: float | None = None) -> CloseReason | None:
        """Block until the client is closed; the :class:`CloseReason`, or ``None`` on timeout."""
        self._done.wait(timeout)
        return self._reason

    def disconnect(self) -> None:
        """Flush what is queued, send CLOSE, close the transports and stop the greenlets.

        Blocks the calling greenlet (each step bounded by the builder's ``timeout``) until
        ``on_close`` has run, unless called from a callback, where ``on_close`` runs right after
        the callback returns. Idempotent; never raises.
        """
        current = gevent.getcurrent()
        if not self._finished:
            self._conn.close()
            self._wake.set()
            writer = self._writer
            if writer is not None and writer is not current and not self._conn.flushed:
                writer.join(self._opts.timeout)
            self._finish(CloseReason.CLIENT_DISCONNECT)
        if self._dispatcher is not None and not self._dispatcher.running_here():
            self._dispatcher.join(self._opts.timeout)

    def upgrade(self) -> None:
        """Upgrade an open polling session to WebSocket, as ``build()`` does after connecting.

        Blocks the calling greenlet until the upgrade completed (each step bounded by the
        builder's ``timeout``). Messages sent meanwhile are delivered exactly once and in order.

        :raises ConnectError: the server offers no upgrade, or the probe failed (the session then
            stays on polling), or the session closed meanwhile.
        """
        if not self._conn.can_upgrade():
            offered = self._conn.handshake is not None and "websocket" in self.handshake.upgrades
            raise ConnectError("cannot upgrade now" if offered else "the server offers no upgrade")
        try:
            self._upgrade()
        except ConnectError:
            raise
        except EngineIOError as exc:
            raise ConnectError(f"upgrade to WebSocket failed: {exc}") from exc

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()

    def __repr__(self) -> str:
        state = "connected" if self.connected else (self._reason or self._conn.state.value)
        sid = self._conn.handshake.sid if self._conn.handshake else None
        return f"<geventio.Client {redact(self._opts.url)} sid={sid} {self.transport} {state}>"

    # -- opening ----------------------------------------------------------------------------

    def _resolve_headers(self) -> dict[str, str]:
        """The headers for this connect: the builder's, or what its callable returns now.

        :raises ValueError: (or ``TypeError``) for a header the callable returned that breaks
            the rule of :meth:`ClientBuilder.headers`; nothing was sent.
        """
        headers = self._opts.headers
        return checked_headers(headers() if callable(headers) else headers)

    def _open_polling(self, upgrade: Literal["no", "try", "require"]) -> None:
        """Handshake over polling, start the greenlets, then upgrade as asked; cleans up on error.

        :raises ConnectError: (or ``ConnectTimeout``) for any failure to connect or to upgrade
            when ``upgrade="require"``.
        :raises ProtocolError: for an invalid handshake.
        """
        self._headers = self._resolve_headers()
        self._polling = PollingTransport(
            self._endpoint,
            headers=self._headers,
            cookies=self._cookies,
            ssl_context=self._opts.tls_config,
            timeout=self._opts.timeout,
            max_message_size=self._opts.max_message_size,
            proxy=self._proxy,
        )
        try:
            batches = self._conn.feed_payload(self._polling.handshake(), monotonic())
            events = next(batches, [])
            self._check_open(events)
            upgrading = upgrade == "require" or (upgrade == "try" and self._conn.can_upgrade())
            # Probe before the first long-poll, as python-engineio's client does: a GET in
            # flight would hold the upgrade until the server ends it (up to 100 ms on node).
            # The server keeps what it sends meanwhile and flushes it on the new transport.
            self._start(reader=False)
            self._handle(events)
            self._deliver(batches)  # the rest of a long handshake body, before any poll
            if self._finished:  # the body's end broke the protocol or closed: as if at its start
                raise self._error or ProtocolError(
                    f"the server closed the session in its handshake ({self._reason})"
                )
            if not upgrading:
                self._spawn_reader()
            if upgrading:
                try:
                    self.upgrade()
                except ConnectError as exc:
                    if upgrade == "require" or self._finished:
                        raise
                    logger.info("staying on polling: %s", exc)
                    self._spawn_reader()
        except BaseException:
            self._abort()
            raise

    def _open_websocket(self) -> None:
        """Open the session directly over WebSocket; cleans up on error.

        :raises ConnectError: (or ``ConnectTimeout``) when the WebSocket cannot be opened.
        :raises ProtocolError: for an invalid open packet.
        """
        self._headers = self._resolve_headers()
        self._conn = Connection("websocket", max_packets=self._opts.max_packets_per_post)
        try:
            self._ws = self._connect_ws(None)
            first = self._ws.recv(self._opts.timeout, connecting=True)
            if first is None:
                raise ConnectError("the server closed the WebSocket before the open packet")
            events = self._conn.receive_frame(first, monotonic())
            self._check_open(events)
            self._start()
            self._handle(events)
        except BaseException:
            self._abort()
            raise

    def _connect_ws(self, sid: str | None) -> WebSocketTransport:
        return WebSocketTransport.connect(
            self._endpoint,
            self._endpoint.target("websocket", sid),
            headers=self._headers,
            cookies=self._cookies,
            ssl_context=self._opts.tls_config,
            timeout=self._opts.timeout,
            max_message_size=self._opts.max_message_size,
            proxy=self._proxy,
        )

    def _check_open(self, events: list[Event]) -> None:
        if self._conn.state is not State.OPEN:
            error = next((e.error for e in events if isinstance(e, Closed)), None)
            raise error or ProtocolError("the server did not open the session")

    def _upgrade(self) -> None:
        """Probe a WebSocket, pause polling, then let the writer switch transports.

        :raises EngineIOError: when the probe fails (polling carries on), or when the pause does
            not complete within ``timeout`` (the session is then closed).
        """
        probe = self._conn.start_probe()
        try:
            ws = self._probe = self._connect_ws(self.sid)  # a close from now on aborts it
            try:
                if self._finished:
                    raise ConnectError(f"the session closed during the upgrade ({self._reason})")
                ws.send([probe])
                answer = ws.recv(self._opts.timeout, connecting=True)
                if self._finished or self._conn.upgrade is not Upgrade.PROBING:
                    raise ConnectError(f"the session closed during the upgrade ({self._reason})")
                self._conn.receive_probe(answer or "")
            except BaseException as exc:
                # a peer that let the probe time out would not answer a close handshake either
                gone = self._finished or isinstance(exc, TimeoutError)
                ws.close(0 if gone else min(1.0, self._opts.timeout))
                raise
            finally:
                self._probe = None
        except BaseException:
            self._conn.probe_failed()
            raise
        self._ws = ws  # from here on, closing the client closes it too
        self._wake.set()
        self._upgraded.wait(self._opts.timeout)
        if self._finished:
            raise ConnectError(f"the session closed during the upgrade ({self._reason})")
        if self._conn.transport != "websocket":
            # python-engineio keeps answering NOOP to polls once the probe succeeded, so the
            # session cannot go back to polling: it ends.
            error = ConnectTimeout("polling did not pause in time for the upgrade")
            self._handle(self._conn.connection_lost(error))
            raise error

    def _abort(self) -> None:
        """Tear down a client whose ``build*`` fails.

        A session that opened is closed as by :meth:`disconnect` (the server is told, and
        ``on_close`` fires after ``on_open``); before that, no callback fires.
        """
        if self._conn.state is not State.CONNECTING and self._writer is not None:
            self.disconnect()
            return
        if not self._finished:
            self._finished = True
            self._reason = CloseReason.TRANSPORT_ERROR
        self._stop_greenlets()
        if self._dispatcher is not None:
            self._dispatcher.kill()
        self._close_transports(graceful=False)
        self._conn.finish_close(CloseReason.TRANSPORT_ERROR)
        self._inbox.close()
        self._done.set()
