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
import gevent.lock

from geventio.exceptions import Timeout

monotonic = time.monotonic

__all__ = ["CLOSED", "Dispatcher", "Mailbox"]

#: What :meth:`Mailbox.get` returns once the mailbox is closed and drained.
CLOSED: Any = object()


class Mailbox:
    """A FIFO whose ``put`` blocks while ``size`` items wait (backpressure on the reader).

    ``close`` never blocks; after it, ``get`` drains what is left, then returns ``CLOSED``.
    Built on a list and two small gevent primitives: a ``gevent.queue.Queue`` costs about
    3.5 KiB, which thousands of idle clients would pay for nothing.
    """

    def __init__(self, size: int) -> None:
        self._items: list[Any] = []
        self._ready = gevent.event.Event()  # set while items wait
        self._slots = gevent.lock.Semaphore(size)

    def put(self, item: Any) -> None:
        self._slots.acquire()
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
        self._slots.release()
        return item


logger = logging.getLogger("geventio")


#: A dispatcher with no callback to run for this long ends its greenlet, so that thousands of
#: idle clients hold none; the next call starts a new one.
IDLE_EXIT = 1.0


class Dispatcher:
    """Runs callbacks in order, in one greenlet of its own, so that none blocks the reader.

    The greenlet starts with the first call and ends after :data:`IDLE_EXIT` seconds without
    one. A callback that raises is logged and the next one runs. ``call`` blocks the caller (the
    reader) while ``size`` calls wait: that is the backpressure of slow callbacks.
    """

    def __init__(self, size: int) -> None:
        self._calls = Mailbox(size)
        self._greenlet: gevent.Greenlet[Any, Any] | None = None

    def call(self, callback: Callable[[Any], Any], arg: Any, *, final: bool = False) -> None:
        """Queue ``callback(arg)``; ``final`` calls (on_error, on_close) never block."""
        if final:
            self._calls.put_final((callback, arg))
        else:
            self._calls.put((callback, arg))
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def close(self) -> None:
        """Stop once every queued call has run."""
        self._calls.close()

    def running_here(self) -> bool:
        """``True`` when called from inside a callback."""
        return self._greenlet is not None and gevent.getcurrent() is self._greenlet

    def join(self, timeout: float) -> None:
        """Wait (at most ``timeout``) until the calls queued before :meth:`close` have run."""
        if self._greenlet is not None:
            self._greenlet.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                item = self._calls.get(IDLE_EXIT)
            except Timeout:  # idle: the next call starts a new greenlet
                self._greenlet = None
                return
            if item is CLOSED:
                return
            callback, arg = item
            try:
                callback(arg)
            except (gevent.GreenletExit, KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # gevent.Timeout too: one bad callback stops nothing
                logger.exception("a geventio callback raised (the client carries on)")
