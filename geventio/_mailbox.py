"""A bounded mailbox (``receive()``'s inbox) and the dispatcher that runs callbacks in order.

No protocol in it: what goes in is messages or callback calls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event

from geventio.exceptions import Timeout

monotonic = time.monotonic

__all__ = ["CLOSED", "Dispatcher", "Mailbox"]

#: What :meth:`Mailbox.get` returns once the mailbox is closed and drained.
CLOSED: Any = object()


class Mailbox:
    """A FIFO whose ``put`` blocks while ``size`` items wait (backpressure on the reader).

    ``close`` never blocks; after it, ``get`` drains what is left, then returns ``CLOSED``.
    Built on a list, a count and one small gevent event (a second one only while a ``put``
    waits): a ``gevent.queue.Queue`` costs about 3.5 KiB, which thousands of idle clients would
    pay for nothing.
    """

    __slots__ = ("_free", "_items", "_ready", "_room")

    def __init__(self, size: int) -> None:
        self._items: list[Any] = []
        self._ready = gevent.event.Event()  # set while items wait
        self._free = size  # how many more items put() may add without blocking
        self._room: gevent.event.Event | None = None  # set when get() freed a slot

    def put(self, item: Any) -> None:
        """Append ``item``; blocks the calling greenlet while ``size`` items wait."""
        while self._free <= 0:
            if self._room is None:
                self._room = gevent.event.Event()
            self._room.clear()
            self._room.wait()
        self._free -= 1
        self._append(item)

    def put_final(self, item: Any) -> None:
        self._append((item,))  # a 1-tuple marks an item that took no slot

    def close(self) -> None:
        self._append(CLOSED)

    def _append(self, item: Any) -> None:
        self._items.append(item)
        self._ready.set()

    def get(self, timeout: float | None = None) -> Any:
        items = self._items
        if not items:
            deadline = None if timeout is None else monotonic() + timeout
            while not items:
                left = None if deadline is None else deadline - monotonic()
                if (left is not None and left <= 0) or not self._ready.wait(left):
                    raise Timeout(f"nothing received within {timeout} s")
        item = items[0]
        if item is CLOSED:
            return item  # it stays: every later get() sees it too
        del items[0]
        if not items:
            self._ready.clear()
        if type(item) is tuple and len(item) == 1:
            return item[0]
        self._free += 1
        if self._room is not None:
            self._room.set()
        return item


logger = logging.getLogger("geventio")


#: A dispatcher with no callback to run for this long ends its greenlet, so that thousands of
#: idle clients hold none; the next call starts a new one.
IDLE_EXIT = 1.0
#: the dispatcher drops the calls it ran from the front of its list past this many
_COMPACT = 1024


class Dispatcher:
    """Runs callbacks in order, in one greenlet of its own, so that none blocks the reader.

    The greenlet starts with the first call and ends after :data:`IDLE_EXIT` seconds without
    one. A callback that raises is logged and the next one runs. ``call`` blocks the caller (the
    reader) while ``size`` calls wait: that is the backpressure of slow callbacks.

    Cheap per call: a call is an append to a plain list, and one wake-up runs every call
    pending, so a burst of messages costs one switch to the dispatcher, not one each (no
    semaphore or event per call; the events are touched only when someone waits on them).
    """

    __slots__ = (
        "_calls",
        "_closed",
        "_greenlet",
        "_idle",
        "_next",
        "_room",
        "_size",
        "_waiting",
        "_wake",
    )

    def __init__(self, size: int) -> None:
        self._size = size
        self._calls: list[tuple[Callable[[Any], Any], Any, bool] | None] = []
        self._next = 0  # the index in _calls of the next call to run; those before it ran
        self._waiting = 0  # calls queued and not started, but the final ones
        self._closed = False
        self._idle = False  # the greenlet waits for calls on _wake
        # made on first use: thousands of idle clients with callbacks pay for none
        self._wake: gevent.event.Event | None = None  # the greenlet's: calls are queued
        self._room: gevent.event.Event | None = None  # the caller's: a call was taken
        self._greenlet: gevent.Greenlet[Any, Any] | None = None

    def call(self, callback: Callable[[Any], Any], arg: Any, *, final: bool = False) -> None:
        """Queue ``callback(arg)``; ``final`` calls (on_error, on_close) never block.

        Blocks the calling greenlet while ``size`` calls wait (but for a final one); a call
        after :meth:`close` is dropped.
        """
        if self._closed:
            return
        if not final:
            while self._waiting >= self._size:
                if self._room is None:
                    self._room = gevent.event.Event()
                self._room.clear()
                self._room.wait()
            self._waiting += 1
        self._calls.append((callback, arg, final))
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)
        elif self._idle:
            self._notify()

    def close(self) -> None:
        """Stop once every queued call has run; never blocks."""
        self._closed = True
        if self._idle:
            self._notify()

    def _notify(self) -> None:
        """Wake the greenlet waiting for calls."""
        self._idle = False
        assert self._wake is not None
        self._wake.set()

    def running_here(self) -> bool:
        """``True`` when called from inside a callback."""
        return self._greenlet is not None and gevent.getcurrent() is self._greenlet

    def join(self, timeout: float) -> None:
        """Wait (at most ``timeout``) until the calls queued before :meth:`close` have run."""
        if self._greenlet is not None:
            self._greenlet.join(timeout)

    def _run(self) -> None:
        calls = self._calls
        while True:
            self._drain(calls)
            if self._closed:
                return
            self._idle = True
            if self._wake is None:
                self._wake = gevent.event.Event()
            self._wake.clear()
            if not self._wake.wait(IDLE_EXIT) and self._next == len(calls):
                self._idle = False
                self._greenlet = self._wake = None  # idle: the next call starts a new greenlet
                return

    def _drain(self, calls: list[tuple[Callable[[Any], Any], Any, bool] | None]) -> None:
        """Run every pending call, those queued meanwhile too, in order."""
        while self._next < len(calls):
            item = calls[self._next]
            calls[self._next] = None  # the message goes as soon as its callback ran
            self._next += 1
            assert item is not None
            callback, arg, final = item
            if not final:
                self._waiting -= 1
                if self._room is not None:
                    self._room.set()
            try:
                callback(arg)
            except (gevent.GreenletExit, KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # gevent.Timeout too: one bad callback stops nothing
                logger.exception("a geventio callback raised (the client carries on)")
            if self._next >= _COMPACT and self._next < len(calls):  # a list that never drains
                del calls[: self._next]
                self._next = 0
        del calls[:]
        self._next = 0
