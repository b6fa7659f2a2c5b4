"""The handlers' runner: order, backpressure, errors, and a greenlet only while there is work."""

from __future__ import annotations

from typing import Any

import gevent
import gevent.event
import pytest

from geventio.socketio import _runner
from geventio.socketio._handlers import Handlers
from geventio.socketio._runner import Runner
from tests.helpers import wait_until


def make(size: int = 4) -> tuple[Runner[Any], Handlers, list[Any]]:
    handlers = Handlers()
    errors: list[Any] = []
    runner = Runner(handlers, lambda event, ns, exc: errors.append((event, ns, exc)), print, size)
    return runner, handlers, errors


def greenlet_of(runner: Runner[Any]) -> Any:
    """The runner's greenlet, read anew (mypy keeps an attribute narrowed across calls)."""
    return runner._greenlet


def test_handlers_run_in_order_and_an_error_stops_nothing() -> None:
    runner, handlers, errors = make()
    got: list[Any] = []
    handlers.set("connect", lambda: got.append("connect"), "/")
    handlers.set("connect_error", lambda data: 1 / 0, "/")
    handlers.set("disconnect", got.append, "/")
    runner.fire("connect", "/")
    runner.fire("connect_error", "/", {"message": "x"})
    runner.fire("disconnect", "/", "client disconnect")
    runner.close()
    assert runner.join(5)
    assert got == ["connect", "client disconnect"]
    assert [(e, ns, type(x)) for e, ns, x in errors] == [("connect_error", "/", ZeroDivisionError)]


def test_queuing_blocks_when_full_unless_forced_or_a_handler_waits() -> None:
    runner, handlers, _ = make(size=2)
    release = gevent.event.Event()
    handlers.set("slow", release.wait, "/")
    for _ in range(3):  # one runs (and blocks), two wait
        runner.fire("slow", "/")
    wait_until(lambda: len(runner._items) == 2)
    blocked = gevent.spawn(runner.fire, "slow", "/")
    gevent.idle()
    assert not blocked.dead  # the queue is full
    runner.fire("slow", "/", force=True)
    runner.waiting = 1  # a handler waits in call(): its ack must not queue behind it
    runner.callback("/", release.set, [])
    assert not blocked.dead
    release.set()
    blocked.join(5)
    assert blocked.dead
    runner.close()
    assert runner.join(5)


def test_the_greenlet_ends_when_idle_and_starts_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_runner, "IDLE_EXIT", 0.05)
    runner, handlers, _ = make()
    got: list[int] = []
    handlers.set("n", got.append, "/")
    assert greenlet_of(runner) is None  # nothing queued yet: no greenlet
    runner.fire("n", "/", 1)
    first = greenlet_of(runner)
    assert first is not None
    wait_until(lambda: greenlet_of(runner) is None)
    assert first.dead
    runner.fire("n", "/", 2)
    runner.sync(5)
    assert got == [1, 2]
    runner.close()
    assert runner.join(5)


def test_close_without_a_greenlet_is_immediate() -> None:
    runner, _, _ = make()
    runner.close()
    assert runner.closed
    assert runner.join(0)
