"""The running half of a client: its greenlets, the heartbeat timer, events and the close.

:class:`Session` drives the sans-IO :class:`Connection` over the transports once the session is
open. A session owns at most three greenlets, all stopped on close:

* the **reader**: the long-poll GET loop, or the WebSocket read loop after the upgrade;
* the **writer**: sends what the session queues (one POST at a time, or coalesced frames); a
  PONG goes first and never waits for user code;
* the **dispatcher**, only when a callback is registered: runs callbacks in order.

The heartbeat deadline is watched by a hub timer (no greenlet); a ping timeout closes the session
from a short-lived greenlet spawned only then. :class:`geventio.Client` adds the public API and
the opening (handshake and upgrade) on top.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

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
)
from geventio._cookies import CookieJar
from geventio._handshake import Handshake
from geventio._mailbox import Dispatcher, Mailbox
from geventio._options import Options
from geventio._proxy import Proxy, select_proxy
from geventio._reason import CloseReason
from geventio._transports.polling import PollingTransport
from geventio._transports.websocket import WebSocketTransport
from geventio._url import Endpoint, parse_url
from geventio.exceptions import ConnectError, EngineIOError, TransportError

__all__ = ["Session"]

logger = logging.getLogger("geventio")
monotonic = time.monotonic
#: the WebSocket read loop yields to the hub after this many frames, or this many bytes of them
_YIELD_FRAMES = 256
_YIELD_BYTES = 65536
#: the polling read loop yields between the batches of one answer once it held the hub this long
_YIELD_SECONDS = 0.005


def _proxy_for(endpoint: Endpoint, options: Options) -> Proxy | None:
    """The proxy for this session's server: the builder's, else the environment's.

    :raises ConnectError: for a proxy URL in the environment that is not an http:// proxy.
    """
    try:
        return select_proxy(
            endpoint.host,
            endpoint.port,
            endpoint.secure,
            configured=options.proxy,
            from_env=options.proxy_from_env,
            no_proxy=options.no_proxy,
            environ=os.environ,
        )
    except ValueError as exc:
        raise ConnectError(f"proxy from the environment: {exc}") from None


class Session:
    """The state and the background work of one client session (see the module docstring)."""

    def __init__(self, options: Options) -> None:
        self._opts = options
        self._endpoint = parse_url(options.url, options.path, options.query)
        self._cookies = CookieJar()
        self._proxy = _proxy_for(self._endpoint, options)
        self._headers: dict[str, str] = {}
        self._conn = Connection(max_packets=options.max_packets_per_post)
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
        self._error: EngineIOError | None = None  # what closed the session, if an error
        self._finished = False

    @property
    def handshake(self) -> Handshake:
        """The server's handshake."""
        assert self._conn.handshake is not None
        return self._conn.handshake

    @property
    def sid(self) -> str:
        """The session id."""
        return self.handshake.sid

    # -- greenlets --------------------------------------------------------------------------

    def _start(self, *, reader: bool = True) -> None:
        o = self._opts
        # "is not None", never truthiness: a callable object may well be falsy (a recorder with
        # __len__ == 0) and is still registered
        callbacks = (o.on_open, o.on_data, o.on_packet, o.on_error, o.on_close, o.on_upgrade)
        if any(callback is not None for callback in callbacks):
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

    def _guarded(self, loop: Callable[[], None]) -> None:
        """Run a loop; a bug in it becomes a clean close instead of a traceback on the hub.

        A kill on close ends it quietly: a ``GreenletExit`` kept as the greenlet's value would hold
        this session through its traceback, a cycle only the cyclic gc could free.
        """
        try:
            loop()
        except gevent.GreenletExit:
            pass
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
            self._deliver(conn.feed_payload(body, monotonic()))
            conn.poll_finished()
        if conn.paused:
            self._wake.set()

    def _deliver(self, batches: Iterator[list[Event]]) -> None:
        """Handle a poll answer's events a batch at a time (see ``Connection.feed_payload``).

        Between batches it yields to the hub once the answer held it for ``_YIELD_SECONDS``: a
        poll answer of millions of tiny packets must neither stall the other greenlets nor
        become one huge list. A usual answer is one batch, handled without a yield.
        """
        since = monotonic()
        for events in batches:
            self._handle(events)
            if monotonic() - since >= _YIELD_SECONDS and self._conn.state is not State.CLOSED:
                self._yield()
                since = monotonic()

    def _ws_loop(self) -> None:
        """Read frames until the session closes.

        While the socket has data, ``recv`` returns without a switch to the hub, and control
        frames (PING, PONG, NOOP) meet no backpressure: the loop yields to the hub every
        :data:`_YIELD_FRAMES` frames or :data:`_YIELD_BYTES` of them, so a flood neither freezes
        the other greenlets nor keeps the heartbeat deadline from being checked.
        """
        conn, ws = self._conn, self._ws
        assert ws is not None
        frames = size = 0
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
            frames += 1
            size += len(frame)
            if frames >= _YIELD_FRAMES or size >= _YIELD_BYTES:
                frames = size = 0
                self._yield()

    def _yield(self) -> None:
        """Let the rest of the hub run (timers and I/O too, which ``sleep(0)`` would not), then
        check the heartbeat: a flood may have outrun the deadline before its timer could fire."""
        gevent.idle()
        self._handle(self._conn.tick(monotonic()))

    def _lost(self, error: EngineIOError) -> None:
        """I/O failed: past the heartbeat deadline that is a ping timeout, else a lost transport."""
        self._handle(self._conn.tick(monotonic()) or self._conn.connection_lost(error))

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
        else:
            assert self._ws is not None
            frames = conn.next_frames()
            if frames or self._ws.backlogged:
                self._room.set()
                self._ws.send(frames)

    def _output(self) -> None:
        """Send what the session queued: on an open WebSocket, at once from this greenlet when
        that needs no wait (a PONG then costs no switch to the writer); else the writer does."""
        ws, conn = self._ws, self._conn
        on_ws = conn.transport == "websocket" and conn.state is State.OPEN
        if on_ws and ws is not None and ws.idle:
            # only when idle: frames taken here leave the outbox, which the send buffer counts,
            # so at most one batch may wait in the transport's backlog
            frames = conn.next_frames()
            self._room.set()
            if ws.try_send(frames):
                return
        self._wake.set()

    def _finish_upgrade(self) -> None:
        assert self._ws is not None
        assert self._polling is not None
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
            self._output()
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
            self._output()

    def _finish(self, reason: CloseReason, error: EngineIOError | None = None) -> None:
        """Close once: callbacks queued, inbox closed, greenlets stopped, transports closed."""
        if self._finished:
            return
        self._finished = True
        self._reason = reason
        self._error = error
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
