"""The greenlet-owning client: drives the sans-IO :class:`Connection` over the transports.

A connected client owns at most three greenlets, all stopped on close:

* the **reader**: the long-poll GET loop, or the WebSocket read loop after the upgrade;
* the **writer**: sends what the session queues (one POST at a time, or coalesced frames); a
  PONG goes first and never waits for user code;
* the **dispatcher**, only when a callback is registered: runs callbacks in order.

The heartbeat deadline is watched by a hub timer (no greenlet); a ping timeout closes the client
from a short-lived greenlet spawned only then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import gevent
import gevent.event

from geventio._connection import (
    Closed,
    Connection,
    Event,
    MessageReceived,
    Opened,
    PacketReceived,
    State,
    Upgrade,
)
from geventio._handshake import CloseReason, Handshake
from geventio._mailbox import CLOSED, Dispatcher, Mailbox, Message, Options
from geventio._packet import Packet, PacketId
from geventio._transports._net import CookieJar
from geventio._transports.polling import PollingTransport
from geventio._transports.websocket import WebSocketTransport
from geventio._url import parse_url
from geventio.exceptions import (
    ConnectError,
    ConnectionClosed,
    ConnectTimeout,
    EngineIOError,
    ProtocolError,
    TransportError,
)

__all__ = ["Client", "Options"]

logger = logging.getLogger("geventio")
monotonic = time.monotonic


class Client:
    """A connected Engine.IO client; made by :class:`geventio.ClientBuilder` or ``connect()``.

    Every method may be called from any greenlet, including from inside a callback.
    """

    def __init__(self, options: Options) -> None:
        self._opts = options
        self._endpoint = parse_url(options.url, options.path, options.query)
        self._cookies = CookieJar()
        self._headers: dict[str, str] = {}
        self._conn = Connection()
        self._polling: PollingTransport | None = None
        self._ws: WebSocketTransport | None = None
        self._probe: WebSocketTransport | None = None  # the upgrade's WebSocket until it is done
        self._reader: gevent.Greenlet[Any, Any] | None = None
        self._writer: gevent.Greenlet[Any, Any] | None = None
        self._dispatcher: Dispatcher | None = None
        self._wake = gevent.event.Event()
        self._room = gevent.event.Event()  # set when the writer took from the outbox
        self._heartbeat: Any = None  # the hub timer watching the heartbeat deadline
        self._upgraded = gevent.event.Event()
        self._done = gevent.event.Event()
        self._inbox = Mailbox(options.inbox_size)
        self._reason: CloseReason | None = None
        self._finished = False

    # -- public API -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """``True`` while the session is open (``False`` as soon as ``disconnect()`` returns)."""
        return not self._finished and self._conn.state is State.OPEN

    @property
    def handshake(self) -> Handshake:
        """The server's handshake."""
        assert self._conn.handshake is not None
        return self._conn.handshake

    @property
    def sid(self) -> str:
        """The session id."""
        return self.handshake.sid

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
        :raises ValueError: for text that UTF-8 cannot encode (a lone surrogate).
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
        return f"<geventio.Client {self._opts.url} sid={sid} {self.transport} {state}>"

    # -- opening ----------------------------------------------------------------------------

    def _resolve_headers(self) -> dict[str, str]:
        headers = self._opts.headers
        return dict(headers() if callable(headers) else headers)

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
            max_body=self._opts.max_message_size,
        )
        try:
            events = self._conn.receive_payload(self._polling.handshake(), monotonic())
            self._check_open(events)
            upgrading = upgrade == "require" or (upgrade == "try" and self._conn.can_upgrade())
            # Probe before the first long-poll, as python-engineio's client does: a GET in
            # flight would hold the upgrade until the server ends it (up to 100 ms on node).
            # The server keeps what it sends meanwhile and flushes it on the new transport.
            self._start(reader=not upgrading)
            self._handle(events)
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
        self._conn = Connection("websocket")
        try:
            self._ws = self._connect_ws(None)
            first = self._ws.recv(self._opts.timeout, connecting=True)
            if first is None:
                raise ConnectError("the server closed the WebSocket before the open packet")
            events = self._conn.receive_frame(first, monotonic())
            self._check_open(events)
            self._ws.set_io_timeout(self._heartbeat_window())
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
        )

    def _check_open(self, events: list[Event]) -> None:
        if self._conn.state is not State.OPEN:
            error = next((e.error for e in events if isinstance(e, Closed)), None)
            raise error or ProtocolError("the server did not open the session")

    def _start(self, *, reader: bool = True) -> None:
        o = self._opts
        if any((o.on_open, o.on_data, o.on_packet, o.on_error, o.on_close, o.on_upgrade)):
            self._dispatcher = Dispatcher(o.inbox_size)
        self._writer = gevent.spawn(self._guarded, self._write_loop)
        if reader:
            self._spawn_reader()
        self._arm_heartbeat()

    def _arm_heartbeat(self) -> None:
        """Watch the heartbeat deadline with a hub timer, not a greenlet.

        It fires even while the reader and the writer are both blocked in I/O (a stalled server
        holding a GET and a POST): a ping timeout is then detected on time, not when some I/O
        timeout runs out. It fires once per ping interval and re-arms while PINGs arrive.
        """
        deadline = self._conn.next_deadline
        if deadline is None or self._finished:
            return
        self._heartbeat = gevent.get_hub().loop.timer(max(0.0, deadline - monotonic()))
        self._heartbeat.start(self._heartbeat_due)

    def _heartbeat_due(self) -> None:
        """Runs in the hub, so it must not block: the close itself runs in a greenlet."""
        deadline = self._conn.next_deadline
        if deadline is not None and deadline <= monotonic() and not self._finished:
            gevent.spawn(self._guarded, lambda: self._handle(self._conn.tick(monotonic())))
        else:
            self._arm_heartbeat()

    def _spawn_reader(self) -> None:
        """Start the read loop of the active transport (the previous one has ended)."""
        loop = self._poll_loop if self._conn.transport == "polling" else self._ws_loop
        self._reader = gevent.spawn(self._guarded, loop)

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
            except BaseException:
                ws.close(0 if self._finished else min(1.0, self._opts.timeout))
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

    # -- greenlets --------------------------------------------------------------------------

    def _guarded(self, loop: Callable[[], None]) -> None:
        """Run a loop; a bug in it becomes a clean close instead of a traceback on the hub."""
        try:
            loop()
        except Exception as exc:
            logger.exception("geventio internal error")
            self._finish(CloseReason.TRANSPORT_ERROR, TransportError(f"internal error: {exc!r}"))

    def _poll_loop(self) -> None:
        conn, polling = self._conn, self._polling
        assert polling is not None
        read_timeout = self.handshake.ping_interval + self.handshake.ping_timeout
        read_timeout += self._opts.timeout
        while conn.should_poll():
            conn.poll_started()
            try:
                body = polling.get(self.sid, read_timeout)
            except EngineIOError as exc:
                conn.poll_finished()
                self._lost(exc)
                return
            self._handle(conn.receive_payload(body, monotonic()))
            conn.poll_finished()
        if conn.paused:
            self._wake.set()

    def _ws_loop(self) -> None:
        conn, ws = self._conn, self._ws
        assert ws is not None
        while conn.state is not State.CLOSED:
            try:
                frame = ws.recv()
            except EngineIOError as exc:
                self._lost(exc)
                return
            if frame is None:
                self._handle(conn.connection_lost(None))
                return
            self._handle(conn.receive_frame(frame, monotonic()))

    def _lost(self, error: EngineIOError) -> None:
        """I/O failed: past the heartbeat deadline that is a ping timeout, else a lost transport."""
        self._handle(self._conn.tick(monotonic()) or self._conn.connection_lost(error))

    def _heartbeat_window(self) -> float:
        """How long a WebSocket read or write may block: past it, the heartbeat has failed."""
        return self.handshake.ping_interval + self.handshake.ping_timeout + 1.0

    def _write_loop(self) -> None:
        conn = self._conn
        while conn.state is not State.CLOSED:
            self._wake.wait()
            self._wake.clear()
            try:
                self._flush()
            except EngineIOError as exc:
                self._lost(exc)
                return
            if conn.state is State.CLOSING and conn.flushed:
                return

    def _flush(self) -> None:
        conn = self._conn
        if conn.transport == "polling":
            assert self._polling is not None
            while (body := conn.next_post()) is not None:
                self._room.set()
                try:
                    self._polling.post(self.sid, body)
                finally:
                    conn.post_finished()
            if conn.paused:
                self._finish_upgrade()
        elif frames := conn.next_frames():
            assert self._ws is not None
            self._room.set()
            self._ws.send(frames)

    def _finish_upgrade(self) -> None:
        assert self._ws is not None
        assert self._polling is not None
        self._ws.set_io_timeout(self._heartbeat_window())
        frames = self._conn.finish_upgrade()
        self._room.set()
        self._ws.send(frames)
        self._polling.close()
        self._polling = None
        self._spawn_reader()
        self._upgraded.set()
        logger.debug("upgraded to WebSocket, sid %s", self.sid)
        if self._opts.on_upgrade is not None:
            self._call(self._opts.on_upgrade, "websocket")

    # -- events -----------------------------------------------------------------------------

    def _call(self, callback: Callable[[Any], Any], arg: Any, *, final: bool = False) -> None:
        if self._dispatcher is not None:
            self._dispatcher.call(callback, arg, final=final)

    def _handle(self, events: list[Event]) -> None:
        o = self._opts
        if self._conn.has_output:  # a PONG goes out before delivery can block on a full inbox
            self._wake.set()
        for event in events:
            if isinstance(event, MessageReceived):
                if o.on_data is not None:
                    self._call(o.on_data, event.data)
                else:
                    self._inbox.put(event.data)
            elif isinstance(event, PacketReceived):
                if o.on_packet is not None:
                    self._call(o.on_packet, event.packet)
            elif isinstance(event, Opened):
                if o.on_open is not None:
                    self._call(o.on_open, event.handshake)
            elif isinstance(event, Closed):
                self._finish(event.reason, event.error)
        if self._conn.has_output:
            self._wake.set()

    def _finish(self, reason: CloseReason, error: EngineIOError | None = None) -> None:
        """Close once: callbacks queued, inbox closed, greenlets stopped, transports closed."""
        if self._finished:
            return
        self._finished = True
        self._reason = reason
        self._conn.finish_close(reason)
        if error is not None:
            logger.info("closing after an error: %s", error)
            if self._opts.on_error is not None:
                self._call(self._opts.on_error, error, final=True)
        sid = self._conn.handshake.sid if self._conn.handshake else None
        logger.debug("closed (%s), sid %s", reason.value, sid)
        if self._opts.on_close is not None:
            self._call(self._opts.on_close, reason, final=True)
        if self._dispatcher is not None:
            self._dispatcher.close()
        self._inbox.close()
        self._upgraded.set()  # wakes an upgrade waiting in build()
        self._room.set()  # wakes blocked senders: they raise ConnectionClosed
        if self._heartbeat is not None:
            self._heartbeat.close()
        self._stop_greenlets()
        self._close_transports(graceful=reason is CloseReason.CLIENT_DISCONNECT)
        self._done.set()

    def _stop_greenlets(self) -> None:
        current = gevent.getcurrent()
        for greenlet in (self._reader, self._writer):
            if greenlet is not None and greenlet is not current:
                greenlet.kill(block=True, timeout=self._opts.timeout)

    def _close_transports(self, *, graceful: bool) -> None:
        """Close both transports; gracefully (WebSocket close handshake and drain) or at once."""
        if self._polling is not None:
            self._polling.close()
        if self._ws is not None:
            self._ws.close(min(1.0, self._opts.timeout) if graceful else 0)
        if self._probe is not None:  # wakes the upgrade waiting for the probe's answer
            self._probe.close(0)
