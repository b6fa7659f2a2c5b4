"""One greenlet that runs a client's handlers in order, with a bounded queue in front of it."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event

__all__ = ["Runner"]

logger = logging.getLogger("geventio.socketio")

_STOP: Any = object()
ErrorHook = Callable[[BaseException, Callable[..., Any], tuple[Any, ...]], Any]


class Runner:
    """Runs queued calls one after the other in a greenlet of its own.

    :meth:`put` blocks its caller while ``size`` calls wait (backpressure on the reader), unless
    ``force`` is given or the runner is closed. A call that raises is passed to ``on_error``
    and the next one runs.

    :param size: how many calls may wait before :meth:`put` blocks.
    :param on_error: ``on_error(exc, fn, args)`` for a call that raised.
    """

    def __init__(
        self,
        size: int,
        on_error: Callable[[BaseException, Callable[..., Any], tuple[Any, ...]], Any],
    ) -> None:
        self._size = size
        self._on_error = on_error
        self._items: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._ready = gevent.event.Event()
        self._room = gevent.event.Event()
        self._closed = False
        self._greenlet: gevent.Greenlet[Any, Any] = gevent.spawn(self._run)

    def put(self, fn: Callable[..., Any], *args: Any, force: bool = False) -> None:
        """Queue ``fn(*args)``; blocks while the queue is full, unless ``force`` or closed."""
        items = self._items
        while not force and not self._closed and len(items) >= self._size:
            self._room.clear()
            self._room.wait()
        items.append((fn, args))
        self._ready.set()

    def close(self) -> None:
        """Stop once every queued call has run; never blocks. Idempotent."""
        if not self._closed:
            self._closed = True
            self._items.append((_STOP, ()))
            self._ready.set()
            self._room.set()

    def unbound(self) -> None:
        """From now on :meth:`put` never blocks (the client is closing)."""
        self._size = 1 << 62
        self._room.set()

    def running_here(self) -> bool:
        """``True`` when called from inside a queued call."""
        return bool(gevent.getcurrent() is self._greenlet)

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` or :meth:`kill` was called: nothing queued later runs."""
        return self._closed

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the queued calls to run after :meth:`close`; ``True`` if they did."""
        self._greenlet.join(timeout)
        return bool(self._greenlet.dead)

    def kill(self) -> None:
        """Stop now, dropping what is queued."""
        self._closed = True
        self._room.set()
        self._greenlet.kill()

    def _run(self) -> None:
        items = self._items
        ready = self._ready
        while True:
            if not items:
                ready.clear()
                ready.wait()
                continue
            fn, args = items.popleft()
            if len(items) < self._size:
                self._room.set()
            if fn is _STOP:
                return
            try:
                fn(*args)
            except (gevent.GreenletExit, KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # gevent.Timeout too: one bad handler stops nothing
                self._on_error(exc, fn, args)
