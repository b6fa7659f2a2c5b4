"""The greenlet that runs one client's handlers, in the order the events arrived.

The Engine.IO dispatcher's greenlet decodes what the server sends and queues handler calls here
(:meth:`Runner.fire`, :meth:`Runner.event`, :meth:`Runner.callback`); this greenlet runs them one
after the other and sends the ack of an event whose handler returned. The queue is bounded: when
it is full, the dispatcher waits, which stops the reader, which pushes back on the server.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import gevent
import gevent.event

from geventio._mailbox import IDLE_EXIT as DISPATCHER_IDLE_EXIT
from geventio.socketio._handlers import Handlers
from geventio.socketio._state import Received

__all__ = ["Runner"]

logger = logging.getLogger("geventio.socketio")

_STOP: Any = object()
#: A runner with nothing to run for this long ends its greenlet (thousands of idle clients then
#: hold none); the next call queued starts a new one. The same as the Engine.IO dispatcher's.
IDLE_EXIT = DISPATCHER_IDLE_EXIT
#: ``on_error(event, namespace, exc)``: a handler raised.
ErrorHook = Callable[[str, str, BaseException], Any]
#: The session an event came in on: the runner only hands it back to the ack hook.
S = TypeVar("S")


class Runner(Generic[S]):
    """Runs queued handler calls one after the other in a greenlet of its own, started by the
    first call queued and ended after :data:`IDLE_EXIT` seconds without any.

    Queuing blocks the caller (the Engine.IO dispatcher) while ``size`` calls wait, except while
    a handler waits in ``call()`` (its ack must not queue behind it) or once :meth:`unbound`.

    :param handlers: where the handlers are found.
    :param on_error: called for a handler that raised; the next call runs.
    :param ack: ``ack(session, event, result)`` sends the ack of an event whose handler
        returned ``result``, on the session the event came in on.
    :param size: how many calls may wait before queuing blocks.
    """

    def __init__(
        self,
        handlers: Handlers,
        on_error: ErrorHook,
        ack: Callable[[S, Received, Any], Any],
        size: int = 1024,
    ) -> None:
        self._handlers = handlers
        self._on_error = on_error
        self._ack = ack
        self._size = size
        #: Handlers of this runner blocked in ``call()``; while any is, queuing never blocks.
        self.waiting = 0
        self._items: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._ready = gevent.event.Event()
        self._room = gevent.event.Event()
        self._closed = False
        self._greenlet: gevent.Greenlet[Any, Any] | None = None

    # -- queuing (from the Engine.IO dispatcher, or the client) ---------------------------------

    def fire(self, event: str, namespace: str, *args: Any, force: bool = False) -> None:
        """Queue the handler of a reserved event (``connect``, ``disconnect``, ...)."""
        call = self._handlers.call
        self._put(self._guarded, (event, namespace, call, event, namespace, *args), force)

    def event(self, session: S, event: Received) -> None:
        """Queue the handler of an event the server sent, and its ack if one is asked for."""
        self._put(self._event, (session, event), self.waiting > 0)

    def callback(self, namespace: str, fn: Callable[..., Any], args: list[Any]) -> None:
        """Queue an ``emit(..., callback=fn)`` callback with the ack's arguments."""
        self._put(self._guarded, ("ack", namespace, fn, *args), self.waiting > 0)

    def sync(self, timeout: float) -> None:
        """Block until what is queued now has run (at most ``timeout``); not from a handler."""
        if not self.running_here():
            done = gevent.event.Event()
            self._put(done.set, (), True)
            done.wait(timeout)

    def _put(self, fn: Callable[..., Any], args: tuple[Any, ...], force: bool) -> None:
        items = self._items
        while not force and not self._closed and len(items) >= self._size:
            self._room.clear()
            self._room.wait()
        items.append((fn, args))
        self._ready.set()
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    # -- lifecycle ------------------------------------------------------------------------------

    def unbound(self) -> None:
        """From now on queuing never blocks (the client is closing)."""
        self._size = 1 << 62
        self._room.set()

    def close(self) -> None:
        """Stop once every queued call has run; never blocks. Idempotent."""
        if not self._closed:
            self._closed = True
            self._room.set()
            if self._greenlet is not None:
                self._items.append((_STOP, ()))
                self._ready.set()

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` was called: nothing queued later runs."""
        return self._closed

    def running_here(self) -> bool:
        """``True`` when called from inside a handler."""
        return self._greenlet is not None and gevent.getcurrent() is self._greenlet

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the queued calls to run after :meth:`close`; ``True`` if they did."""
        greenlet = self._greenlet
        if greenlet is None:
            return True
        greenlet.join(timeout)
        return bool(greenlet.dead)

    # -- the greenlet ---------------------------------------------------------------------------

    def _run(self) -> None:
        items = self._items
        ready = self._ready
        while True:
            if not items:
                ready.clear()
                if not ready.wait(IDLE_EXIT) and not items and not self._closed:
                    self._greenlet = None  # idle: the next call queued starts a new one
                    return
                continue
            fn, args = items.popleft()
            if len(items) < self._size:
                self._room.set()
            if fn is _STOP:
                return
            fn(*args)

    def _event(self, session: S, event: Received) -> None:
        call = self._handlers.call
        result = self._guarded(event.event, event.namespace, call, event.event, event.namespace,
                               *event.args)  # fmt: skip
        if event.id is not None:
            self._ack(session, event, result)

    def _guarded(self, event: str, namespace: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except (gevent.GreenletExit, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # gevent.Timeout too: one bad handler stops nothing
            try:
                self._on_error(event, namespace, exc)
            except Exception:  # the hook itself: logged, the next handler runs
                logger.exception("the handler error hook raised")
            return None
