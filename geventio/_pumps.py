"""The loops that move packets between the sans-IO core and a transport, with no state of their own.

Each runs in a greenlet of :class:`geventio._session.Session` and reports through the session's
``handle`` (events from the core) and ``lost`` (an I/O error) callbacks:

* :func:`poll`: the long-poll GET loop, until the session closes or polling pauses;
* :func:`read_websocket`: the WebSocket read loop, until the session closes;
* :func:`flush`: the writer's step, sending the outbox on the active transport;
* :func:`send_now`: a send from the reading greenlet that needs no wait (a PONG).

Both read loops yield to the hub now and then, so that a flood neither freezes the other
greenlets nor keeps the heartbeat deadline from being checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import gevent

from geventio._connection import Connection, Event, State
from geventio._transports.polling import PollingTransport
from geventio._transports.websocket import WebSocketTransport
from geventio.exceptions import EngineIOError

__all__ = ["deliver", "flush", "poll", "read_websocket", "send_now"]

monotonic = time.monotonic
Handle = Callable[[list[Event]], None]
Lost = Callable[[EngineIOError], None]
#: the WebSocket read loop yields to the hub after this many frames, or this many bytes of them
YIELD_FRAMES = 256
YIELD_BYTES = 65536
#: the polling read loop yields between the batches of one answer once it held the hub this long
YIELD_SECONDS = 0.005


def poll(
    conn: Connection, polling: PollingTransport, read_timeout: float, handle: Handle, lost: Lost
) -> None:
    """Long-poll until the session closes or polling pauses for the upgrade.

    Blocks the calling greenlet in each GET (at most ``read_timeout``); never raises an
    :class:`EngineIOError`: a failed GET goes to ``lost``, and the loop ends.
    """
    assert conn.handshake is not None
    sid = conn.handshake.sid
    while conn.should_poll():
        conn.poll_started()
        try:
            body = polling.get(sid, read_timeout)
        except EngineIOError as exc:
            conn.poll_finished()
            lost(exc)
            return
        deliver(conn, conn.feed_payload(body, monotonic()), handle)
        conn.poll_finished()


def deliver(conn: Connection, batches: Iterator[list[Event]], handle: Handle) -> None:
    """Handle a poll answer's events a batch at a time (see ``Connection.feed_payload``).

    Between batches it yields to the hub once the answer held it for :data:`YIELD_SECONDS`: a
    poll answer of millions of tiny packets must neither stall the other greenlets nor become
    one huge list. A usual answer is one batch, handled without a yield.
    """
    since = monotonic()
    for events in batches:
        handle(events)
        if monotonic() - since >= YIELD_SECONDS and conn.state is not State.CLOSED:
            _yield(conn, handle)
            since = monotonic()


def read_websocket(conn: Connection, ws: WebSocketTransport, handle: Handle, lost: Lost) -> None:
    """Read frames until the session closes.

    While the socket has data, ``recv`` returns without a switch to the hub, and control frames
    (PING, PONG, NOOP) meet no backpressure: the loop yields to the hub every
    :data:`YIELD_FRAMES` frames or :data:`YIELD_BYTES` of them. Never raises an
    :class:`EngineIOError`: a failed read goes to ``lost``, and the loop ends.
    """
    frames = size = 0
    while conn.state is not State.CLOSED:
        try:
            frame = ws.recv()
        except EngineIOError as exc:
            lost(exc)
            return
        if frame is None:
            handle(conn.connection_lost(None))
            return
        handle(conn.receive_frame(frame, monotonic()))
        frames += 1
        size += len(frame)
        if frames >= YIELD_FRAMES or size >= YIELD_BYTES:
            frames = size = 0
            _yield(conn, handle)


def _yield(conn: Connection, handle: Handle) -> None:
    """Let the rest of the hub run (timers and I/O too, which ``sleep(0)`` would not), then
    check the heartbeat: a flood may have outrun the deadline before its timer could fire."""
    gevent.idle()
    handle(conn.tick(monotonic()))


def flush(
    conn: Connection,
    polling: PollingTransport | None,
    ws: WebSocketTransport | None,
    took: Callable[[], None],
) -> None:
    """Send the outbox on the active transport: POSTs one at a time, or frames coalesced.

    The caller holds the session's send lock. ``took`` runs whenever packets left the outbox
    (it wakes blocked senders). Blocks the calling greenlet until written.

    :raises EngineIOError: when a POST or a write fails.
    """
    if conn.transport == "polling":
        assert polling is not None
        assert conn.handshake is not None
        sid = conn.handshake.sid
        while (body := conn.next_post()) is not None:
            took()
            try:
                polling.post(sid, body)
            finally:
                conn.post_finished()
    else:
        assert ws is not None
        frames = conn.next_frames()
        if frames or ws.backlogged:
            took()
            ws.send(frames)


def send_now(conn: Connection, ws: WebSocketTransport | None, took: Callable[[], None]) -> bool:
    """Send the outbox from the calling greenlet when that needs no wait; ``True`` if it did.

    Only on an open WebSocket that is idle (a PONG then costs no switch to the writer): frames
    taken here leave the outbox, which the send buffer counts, so at most one batch may wait in
    the transport's backlog. ``False``: the writer must send (or finish sending) the rest.
    """
    on_ws = conn.transport == "websocket" and conn.state is State.OPEN
    if on_ws and ws is not None and ws.idle:
        frames = conn.next_frames()
        took()
        return ws.try_send(frames)
    return False
