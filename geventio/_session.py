"""One client session from its opening to its close: the owner of the whole lifecycle.

:class:`Session` drives the sans-IO :class:`~geventio._connection.Connection` over the transports.
:class:`geventio.Client` is a facade over one ``Session``; the builder makes the session, opens it,
then wraps it. The lifecycle, each arrow one method of this class::

    NEW --open_polling() / open_websocket()--------------------------> OPEN
    NEW --the open fails (any exception, KeyboardInterrupt too)--------> CLOSED  (no callback)
    OPEN on polling --upgrade()-------------------------------------> OPEN on WebSocket
    OPEN on polling --upgrade() whose probe fails--------------------> OPEN on polling
    OPEN --disconnect(): flush, CLOSE, then _close()-----------------> CLOSED
    OPEN --server CLOSE, ping timeout, lost transport, internal bug--> CLOSED

Every arrow into CLOSED ends in :meth:`Session._close`, the one teardown. Whether the session
is closed is one fact, ``_closed`` (the :class:`Closed` event that ended it, ``None`` before):
set first, never unset. ``_done`` is set when the teardown has finished.

Sending needs no greenlet of its own (:mod:`geventio._writer`): ``emit`` and the reader's PONG
write from the calling greenlet when the WebSocket is idle. An idle session holds one greenlet,
its reader; at most four, all stopped by the close:

* the **reader**: the long-poll GET loop, or the WebSocket read loop after the upgrade;
* the **writer**, only while something queued waits: on WebSocket while the socket's buffer is
  full or another greenlet writes, on polling while there is a POST to make (one at a time) or
  polling pauses for the upgrade; it ends once all is out; a PONG never waits for user code;
* the **dispatcher**, while callbacks are due (and a second after): runs them in order, all
  the pending ones in one run;
* the **closer**, only on a ping timeout: the hub timer watching the heartbeat deadline cannot
  block, so it spawns this greenlet to close the session.

The close kills the reader, the writer and the closer, waiting up to ``timeout`` for each (but
the one running it); a disconnect first writes CLOSE and joins the writer, if any, so that what
was queued goes out. The dispatcher runs the calls queued before (on_error, on_close), then ends.

The upgrade runs in the greenlet that asked for it (``build()`` or :meth:`Session.upgrade`),
alone: it probes a WebSocket while polling carries on; on ``3probe`` polling pauses, so the
reader's GET ends and the reader returns; the upgrade joins it, takes the send lock (a POST in
flight ends first), switches the core to WebSocket, sends UPGRADE and the outbox, closes polling
and starts the WebSocket reader.

The steps live next door, one job per module: :mod:`geventio._opening` dials the transports and
runs the probe, :mod:`geventio._pumps` holds the read loops and the writer's flush,
:mod:`geventio._writer` who writes when, and :mod:`geventio._heartbeat` the deadline timer and
its closer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

import gevent
import gevent.event

from geventio import _pumps as pumps
from geventio._connection import (
    Closed,
    Connection,
    Event,
    MessageReceived,
    Opened,
    PacketReceived,
    State,
)
from geventio._handshake import Handshake
from geventio._heartbeat import HeartbeatWatch
from geventio._mailbox import CLOSED, Dispatcher, Mailbox
from geventio._opening import Dialer, check_open, closed_during_upgrade, first_frame, probe
from geventio._options import Message, Options
from geventio._packet import Packet
from geventio._reason import CloseReason
from geventio._transports.polling import PollingTransport
from geventio._transports.websocket import WebSocketTransport
from geventio._writer import Writer
from geventio.exceptions import (
    ConnectError,
    ConnectionClosed,
    ConnectTimeout,
    EngineIOError,
    ProtocolError,
    TransportError,
)

__all__ = ["Session"]

logger = logging.getLogger("geventio")
monotonic = time.monotonic


class Session:
    """The state and the background work of one client session (see the module docstring).

    :raises ConnectError: for a bad proxy in the environment.
    """

    def __init__(self, options: Options) -> None:
        self.options = options
        self._dial = Dialer.create(options)
        self._conn = Connection(max_packets=options.max_packets_per_post)
        self._polling: PollingTransport | None = None
        self._ws: WebSocketTransport | None = None
        self._probe: WebSocketTransport | None = None  # the upgrade's WebSocket while it probes
        self._reader: gevent.Greenlet[Any, Any] | None = None
        self._writer = Writer(self)
        self._started = False  # the greenlets and the timer run: see _abort
        self._dispatcher: Dispatcher | None = None
        # bound methods, not lambdas: a closure each costs thousands of idle clients 0.3 KiB
        self._heartbeat = HeartbeatWatch(self._deadline, self._spawn_guarded, self._check_heartbeat)
        self._inbox = Mailbox(options.inbox_size)
        self._closed: Closed | None = None  # THE fact: how the session ended, once it did
        self._done = gevent.event.Event()  # the teardown has finished

    # -- facts ------------------------------------------------------------------------------

    @property
    def handshake(self) -> Handshake:
        """The server's handshake."""
        assert self._conn.handshake is not None
        return self._conn.handshake

    @property
    def sid(self) -> str | None:
        """The session id, ``None`` before the open packet."""
        return self._conn.handshake.sid if self._conn.handshake else None

    @property
    def transport(self) -> str:
        return self._conn.transport

    @property
    def connected(self) -> bool:
        return self._closed is None and self._conn.state is State.OPEN

    @property
    def close_reason(self) -> CloseReason | None:
        return None if self._closed is None else self._closed.reason

    @property
    def state(self) -> str:
        """``connected``, or the close reason, or the core's state (for a repr)."""
        return "connected" if self.connected else (self.close_reason or self._conn.state.value)

    # -- opening (NEW -> OPEN) --------------------------------------------------------------

    def open_polling(self, upgrade: Literal["no", "try", "require"]) -> None:
        """Handshake over polling, start the greenlets, then upgrade as asked; closes on error.

        Blocks the calling greenlet until open (and the upgrade completed or failed).

        :raises ConnectError: (or ``ConnectTimeout``) for any failure to connect, or to upgrade
            when ``upgrade="require"``.
        :raises ProtocolError: for an invalid handshake.
        :raises ValueError: for a header from the headers callable that breaks the rule.
        """
        try:
            self._polling = self._dial.polling()
            batches = self._conn.feed_payload(self._polling.handshake(), monotonic())
            events = check_open(self._conn, next(batches, []))
            upgrading = upgrade == "require" or (upgrade == "try" and self._conn.can_upgrade())
            self._start()
            self._handle(events)
            # the rest of a long handshake body, before any poll
            pumps.deliver(self._conn, batches, self._handle)
            if self._closed is not None:  # the body's end closed it: as if at its start
                raise self._closed.error or ProtocolError(
                    f"the server closed the session in its handshake ({self.close_reason})"
                )
            # Probe before the first long-poll, as python-engineio's client does: a GET in
            # flight would hold the upgrade until the server ends it (up to 100 ms on node).
            # The server keeps what it sends meanwhile and flushes it on the new transport.
            if upgrading:
                try:
                    self.upgrade()
                except ConnectError as exc:
                    if upgrade == "require" or self._closed is not None:
                        raise
                    logger.info("staying on polling: %s", exc)
            if self._reader is None:
                self._spawn_reader()
        except BaseException:
            self._abort()
            raise

    def open_websocket(self) -> None:
        """Open the session directly over WebSocket; closes on error.

        Blocks the calling greenlet until the open packet came.

        :raises ConnectError: (or ``ConnectTimeout``) when the WebSocket cannot be opened.
        :raises ProtocolError: for an invalid open packet.
        :raises ValueError: for a header from the headers callable that breaks the rule.
        """
        self._conn = Connection("websocket", max_packets=self.options.max_packets_per_post)
        try:
            self._ws = self._dial.websocket(None)
            events = check_open(self._conn, first_frame(self._ws, self._conn, self.options.timeout))
            self._start()
            self._spawn_reader()
            self._handle(events)
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        """End a session whose opening failed.

        One that opened is closed as by :meth:`disconnect` (the server is told, and ``on_close``
        fires after ``on_open``); before that, it closes with no callback (none is registered
        with a dispatcher yet).
        """
        if self._started:
            self.disconnect()
        else:
            self._close(CloseReason.TRANSPORT_ERROR)

    # -- the upgrade (OPEN on polling -> OPEN on WebSocket) ----------------------------------

    def upgrade(self) -> None:
        """Upgrade an open polling session to WebSocket (see the module docstring).

        Blocks the calling greenlet until done (each step bounded by the builder's ``timeout``).

        :raises ConnectError: the server offers no upgrade, or the probe failed (the session then
            stays on polling), or the session closed meanwhile.
        """
        conn = self._conn
        if not conn.can_upgrade():
            offered = conn.handshake is not None and "websocket" in conn.handshake.upgrades
            raise ConnectError("cannot upgrade now" if offered else "the server offers no upgrade")
        try:
            frame = conn.start_probe()
            try:
                ws = self._probe = self._dial.websocket(self.sid)  # a close now aborts it
                try:
                    probe(ws, frame, conn, self.options.timeout, lambda: self.close_reason)
                finally:
                    self._probe = None
            except BaseException:
                conn.probe_failed()
                raise
            self._switch(ws)
        except ConnectError:
            raise
        except EngineIOError as exc:
            raise ConnectError(f"upgrade to WebSocket failed: {exc}") from exc

    def _switch(self, ws: WebSocketTransport) -> None:
        """Polling is pausing: once quiet, move the session onto ``ws``.

        :raises ConnectError: the session closed meanwhile; ``ConnectTimeout`` when polling did
            not pause within ``timeout`` (python-engineio keeps answering NOOP to polls once the
            probe succeeded, so the session cannot go back to polling: it is closed).
        """
        conn, timeout = self._conn, self.options.timeout
        self._ws = ws  # from here on, closing the session closes it too
        limit = monotonic() + timeout
        if self._reader is not None:  # it returns once its GET ends
            self._reader.join(timeout)
        locked = self._writer.lock.acquire(timeout=max(0.0, limit - monotonic()))
        try:
            if self._closed is None and locked and conn.paused:
                frames = conn.finish_upgrade()
                self._writer.took()
                ws.send(frames)
                assert self._polling is not None
                self._polling.close()
                self._polling = None
        except EngineIOError as exc:
            if self._closed is None:
                self._lost(exc)
            raise closed_during_upgrade(self.close_reason) from exc
        finally:
            if locked:
                self._writer.lock.release()
        if self._closed is not None:  # checked with no switch before the reader starts
            raise closed_during_upgrade(self.close_reason)
        if conn.transport != "websocket":
            error = ConnectTimeout("polling did not pause in time for the upgrade")
            self._handle(conn.connection_lost(error))
            raise error
        self._spawn_reader()
        self._writer.push()  # what was queued since (a waiting writer goes on, on WebSocket)
        logger.debug("upgraded to WebSocket, sid %s", self.sid)
        if self.options.on_upgrade is not None:
            self._call(self.options.on_upgrade, "websocket")

    # -- the user's calls -------------------------------------------------------------------

    def emit(self, packet: Packet) -> None:
        """Queue a packet; blocks while the send buffer is full (see ``Client.emit``).

        :raises ConnectionClosed: once the session is closed or closing, also while blocked.
        """
        self._check_open()
        self._conn.send(packet)
        self._writer.push()
        if self._conn.queued_bytes > self.options.send_buffer:
            self._writer.wait_room(self._conn, self.options.send_buffer, self._check_open)

    def _check_open(self) -> None:
        if self._closed is not None:
            raise ConnectionClosed(self._closed.reason)

    def receive(self, timeout: float | None) -> Message:
        """The next received message; blocks the calling greenlet only.

        :raises ConnectionClosed: once the session is closed and every message was taken.
        :raises Timeout: when ``timeout`` seconds pass first.
        """
        item = self._inbox.get(timeout)
        if item is CLOSED:
            raise ConnectionClosed(self.close_reason or CloseReason.CLIENT_DISCONNECT)
        return item  # type: ignore[no-any-return]

    def wait(self, timeout: float | None) -> CloseReason | None:
        """Block until the teardown finished; the :class:`CloseReason`, or ``None`` on timeout."""
        self._done.wait(timeout)
        return self.close_reason

    def disconnect(self) -> None:
        """Flush, send CLOSE, then :meth:`_close`; idempotent, never raises.

        Blocks the calling greenlet (each step bounded by ``timeout``) until ``on_close`` ran,
        unless called from a callback.
        """
        if self._closed is None:
            self._conn.close()
            if self._started:
                self._writer.flush()  # CLOSE, after what was queued
                self._writer.join(self.options.timeout)
            self._close(CloseReason.CLIENT_DISCONNECT)
        if self._dispatcher is not None and not self._dispatcher.running_here():
            self._dispatcher.join(self.options.timeout)

    # -- greenlets --------------------------------------------------------------------------

    def _start(self) -> None:
        """Make the dispatcher (if any callback) and start the heartbeat timer."""
        o = self.options
        # "is not None", never truthiness: a callable object may well be falsy (a recorder with
        # __len__ == 0) and is still registered
        callbacks = (o.on_open, o.on_data, o.on_packet, o.on_error, o.on_close, o.on_upgrade)
        if any(callback is not None for callback in callbacks):
            self._dispatcher = Dispatcher(o.inbox_size)
        self._started = True
        self._heartbeat.arm()

    def _deadline(self) -> float | None:
        """The core's next deadline, for the heartbeat watch."""
        return self._conn.next_deadline

    def _spawn_guarded(self, loop: Callable[[], None]) -> gevent.Greenlet[Any, Any]:
        """A new greenlet running ``loop`` under :meth:`_guarded` (the heartbeat's closer)."""
        return gevent.spawn(self._guarded, loop)

    def _check_heartbeat(self) -> None:
        """The closer's job: a ping timeout closes the session (see :mod:`geventio._heartbeat`)."""
        self._handle(self._conn.tick(monotonic()))

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
            self._close(CloseReason.TRANSPORT_ERROR, TransportError(f"internal error: {exc!r}"))

    def _poll_loop(self) -> None:
        h = self.handshake
        read_timeout = h.ping_interval + h.ping_timeout + self.options.timeout
        assert self._polling is not None
        pumps.poll(self._conn, self._polling, read_timeout, self._handle, self._lost)

    def _ws_loop(self) -> None:
        assert self._ws is not None
        pumps.read_websocket(self._conn, self._ws, self._handle, self._lost)

    def _lost(self, error: EngineIOError) -> None:
        """I/O failed: past the heartbeat deadline that is a ping timeout, else a lost transport."""
        self._handle(self._conn.tick(monotonic()) or self._conn.connection_lost(error))

    # -- events -----------------------------------------------------------------------------

    def _call(self, callback: Callable[[Any], Any], arg: Any, *, final: bool = False) -> None:
        if self._dispatcher is not None:
            self._dispatcher.call(callback, arg, final=final)

    def _handle(self, events: list[Event]) -> None:
        o, conn = self.options, self._conn
        # a PONG goes out before delivery can block on a full inbox; nothing follows it that a
        # cork could coalesce with (see Writer.flush)
        if conn.has_output:
            self._writer.flush(cork=False)
        for event in events:  # the events are final classes: type() is the cheapest test
            if type(event) is PacketReceived:
                if o.on_packet is not None:
                    self._call(o.on_packet, event.packet)
            elif type(event) is MessageReceived:
                if o.on_data is not None:
                    self._call(o.on_data, event.data)
                else:
                    self._inbox.put(event.data)
            elif type(event) is Opened:
                if o.on_open is not None:
                    self._call(o.on_open, event.handshake)
            elif type(event) is Closed:
                self._close(event.reason, event.error)
        if conn.has_output:
            self._writer.flush()

    # -- the one teardown (-> CLOSED) -------------------------------------------------------

    def _close(self, reason: CloseReason, error: EngineIOError | None = None) -> None:
        """Close once: callbacks queued, inbox closed, greenlets stopped, transports closed.

        Every way to CLOSED comes here; a second call returns at once. Blocks the calling
        greenlet while the other greenlets stop (each bounded by ``timeout``).
        """
        if self._closed is not None:
            return
        self._closed = Closed(reason, error)
        self._conn.finish_close(reason)
        if error is not None:
            logger.info("closing after an error: %s", error)
            if self.options.on_error is not None:
                self._call(self.options.on_error, error, final=True)
        logger.debug("closed (%s), sid %s", reason.value, self.sid)
        if self.options.on_close is not None:
            self._call(self.options.on_close, reason, final=True)
        if self._dispatcher is not None:
            self._dispatcher.close()
        self._inbox.close()
        self._heartbeat.stop(self.options.timeout)
        self._writer.stop(self.options.timeout)  # wakes blocked senders: ConnectionClosed
        reader = self._reader
        if reader is not None and reader is not gevent.getcurrent():
            reader.kill(block=True, timeout=self.options.timeout)
        # gracefully (WebSocket close handshake and drain) only for a disconnect
        if self._polling is not None:
            self._polling.close()
        if self._ws is not None:
            graceful = reason is CloseReason.CLIENT_DISCONNECT
            self._ws.close(min(1.0, self.options.timeout) if graceful else 0)
        if self._probe is not None:  # wakes the upgrade waiting for the probe's answer
            self._probe.close(0)
        self._done.set()
