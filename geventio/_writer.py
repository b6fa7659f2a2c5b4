"""The write side of a session: from the caller when that needs no wait, else a writer greenlet.

On an open WebSocket, :meth:`Writer.push` writes the queued frames from the greenlet that queued
them (a ``send()``, or the reader's PONG), with no switch, when the transport is idle: nobody
else writing, nothing backlogged. The socket takes what it can at once; whatever it could not
take stays in the transport's backlog, in order. Only then, or when another greenlet holds the
send lock, does a **writer** greenlet start; it pushes the backlog and the outbox out (blocking
in the socket's ``sendall``) and ends as soon as both are empty. An idle WebSocket session thus
holds no writer at all.

A burst is coalesced (*corked*): after a write from the caller, further pushes before the caller
yields to the hub only queue; one hub callback, run when it yields, writes them all in one
``send`` (one syscall for a loop of ``send()`` calls, as the writer greenlet did before). The
callback never blocks: what the socket does not take goes to the writer. :meth:`Writer.flush`
(a PONG, the CLOSE of a disconnect) writes at once, cork or not.

Polling has the same lazy writer: it starts when there is something to POST and ends once the
outbox is empty and no POST is in flight (one POST at a time, as before). While polling pauses
for the upgrade it waits, so that what was queued meanwhile goes out on the WebSocket.

Order: packets leave the core's outbox in the order they were queued, and the outbox is taken
only under the send lock or, on the fast path, while nobody else writes; frames that the socket
did not take wait in the transport's backlog, which every later write sends first. Many
greenlets sending at once therefore keep each one's order and never interleave frames.

Backpressure: the send buffer counts the outbox. The fast path takes the outbox only while the
transport is idle, so at most one batch waits in the backlog beyond it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import gevent
import gevent.event
import gevent.lock

from geventio import _pumps as pumps
from geventio._connection import Connection, State
from geventio._transports.polling import PollingTransport
from geventio._transports.websocket import WebSocketTransport
from geventio.exceptions import EngineIOError

__all__ = ["Owner", "Writer"]


class Owner(Protocol):
    """What the writer reads of its session, anew at each step (the upgrade changes them)."""

    _conn: Connection
    _polling: PollingTransport | None
    _ws: WebSocketTransport | None

    def _guarded(self, loop: Callable[[], None]) -> None:
        """Runs the writer's loop; a bug in it closes the session."""

    def _lost(self, error: EngineIOError) -> None:
        """A write failed: the session closes."""


class Writer:
    """Sends what the session queues; holds a writer greenlet only while something waits.

    Its events exist only while someone waits on them (thousands of idle clients pay for none).
    """

    __slots__ = ("_corked", "_owner", "_room", "_wake", "greenlet", "lock")

    def __init__(self, owner: Owner) -> None:
        self._owner = owner
        self.lock = gevent.lock.Semaphore()  # held by whoever writes to a transport
        self.greenlet: gevent.Greenlet[Any, Any] | None = None
        self._wake: gevent.event.Event | None = None  # the writer greenlet's: more to do
        self._room: gevent.event.Event | None = None  # blocked senders': packets left the outbox
        self._corked = False  # a write from the caller happened; the hub callback is due

    def push(self) -> None:
        """Send what the session queued: at once when that needs no wait, else soon.

        Right after a write from this greenlet (corked), it only queues: the hub callback writes
        the lot when the greenlet yields. Never blocks and never raises: a failed write shows up
        in the writer, which closes the session.
        """
        if not self._corked:
            self.flush()

    def flush(self, *, cork: bool = True) -> None:
        """Like :meth:`push`, but writes now even when corked (a PONG, the CLOSE).

        ``cork=False``: a write from the caller does not cork (no hub callback), for a write
        that no burst of pushes follows (the reader's PONG). Never blocks and never raises.
        """
        owner = self._owner
        conn, ws = owner._conn, owner._ws
        if conn.state is State.CLOSED:
            return
        if (
            ws is not None
            and conn.transport == "websocket"
            and ws.idle
            and not self.lock.locked()
            and (conn.state is State.OPEN or conn.state is State.CLOSING)
        ):
            frames = conn.next_frames()
            if self._room is not None:  # as took(), without a call on this hot path
                self._room.set()
            if ws.try_send(frames):  # all written, from this greenlet: no writer, no switch
                if self._wake is not None:  # a writer waiting for the upgrade may end now
                    self._wake.set()
                if cork and not self._corked:
                    self._corked = True
                    gevent.get_hub().loop.run_callback(self._uncork)
                return
        if self._wake is None:
            self._wake = gevent.event.Event()
        self._wake.set()
        if self.greenlet is None:
            self.greenlet = gevent.spawn(owner._guarded, self._run)

    def _uncork(self) -> None:
        """The hub callback after a write from the caller: write what was queued since.

        Runs in the hub, so it must not block (it does not: see :meth:`flush`).
        """
        self._corked = False
        if self._owner._conn.has_output:
            self.flush()

    def took(self) -> None:
        """Packets left the outbox: wake the senders blocked in :meth:`wait_room`."""
        if self._room is not None:
            self._room.set()

    def wait_room(self, conn: Connection, limit: int, check: Callable[[], None]) -> None:
        """Block the calling greenlet while ``conn`` queues more than ``limit`` bytes.

        :raises ConnectionClosed: from ``check``, run before each wait (the close wakes it).
        """
        while conn.queued_bytes > limit:
            check()
            if self._room is None:
                self._room = gevent.event.Event()
            self._room.clear()
            self._room.wait()

    def join(self, timeout: float) -> None:
        """Wait until everything queued is written (the writer ended), at most ``timeout``.

        Blocks the calling greenlet; returns at once when called from the writer itself.
        """
        greenlet = self.greenlet
        if greenlet is not None and greenlet is not gevent.getcurrent():
            greenlet.join(timeout)

    def stop(self, timeout: float) -> None:
        """Kill the writer (unless it is the caller) and wait for it, at most ``timeout``."""
        greenlet = self.greenlet
        self.took()  # wakes blocked senders: the session tells them it closed
        if greenlet is not None and greenlet is not gevent.getcurrent():
            greenlet.kill(block=True, timeout=timeout)

    def _run(self) -> None:
        """The writer greenlet: flush under the send lock until nothing is left, then end.

        Blocks in the transport's writes; waits for a wake-up only while something queued cannot
        be sent yet (polling paused for the upgrade).
        """
        owner = self._owner
        while True:
            wake = self._wake
            assert wake is not None
            wake.clear()
            conn, polling, ws = owner._conn, owner._polling, owner._ws
            try:
                with self.lock:
                    pumps.flush(conn, polling, ws, self.took)
            except EngineIOError as exc:
                self._end()
                owner._lost(exc)
                return
            backlogged = ws is not None and ws.backlogged
            if conn.state is State.CLOSED or (conn.flushed and not backlogged):
                self._end()  # no switch since the check: a push from now on spawns a new one
                return
            wake.wait()

    def _end(self) -> None:
        if self.greenlet is gevent.getcurrent():
            self.greenlet = None
            self._wake = None
