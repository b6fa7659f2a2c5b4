"""The bounded mailbox behind receive() and the dispatcher (no server needed)."""

from __future__ import annotations

import time
from typing import Any

import gevent
import pytest

from geventio import Timeout, _mailbox
from geventio._mailbox import CLOSED, Dispatcher, Mailbox
from tests.helpers import wait_until


def test_fifo_and_final_items() -> None:
    box = Mailbox(2)
    box.put("a")
    box.put_final("b")  # takes no slot
    box.put("c")
    assert [box.get(0.1), box.get(0.1), box.get(0.1)] == ["a", "b", "c"]
    with pytest.raises(Timeout):  # nothing is left
        box.get(0)


def test_put_blocks_while_size_items_wait() -> None:
    box = Mailbox(2)
    box.put(1)
    box.put(2)
    third = gevent.spawn(box.put, 3)
    gevent.idle()  # the put has run, as far as it can
    assert not third.dead
    assert box.get(0.1) == 1
    third.join(1)
    assert third.dead
    assert [box.get(0.1), box.get(0.1)] == [2, 3]


def test_get_times_out() -> None:
    box = Mailbox(1)
    start = time.monotonic()
    with pytest.raises(Timeout):
        box.get(0.05)
    assert 0.04 < time.monotonic() - start < 1.0


def test_close_drains_then_closed_for_every_getter() -> None:
    box = Mailbox(4)
    box.put("x")
    box.close()
    assert box.get(0.1) == "x"
    assert box.get(0.1) is CLOSED
    assert box.get(0.1) is CLOSED


def test_many_getters_each_get_one_item_or_time_out() -> None:
    box = Mailbox(8)
    results: list[object] = []

    def get() -> None:
        try:
            results.append(box.get(0.2))
        except Timeout as exc:
            results.append(exc)

    getters = [gevent.spawn(get) for _ in range(3)]
    gevent.idle()  # every getter waits in get()
    box.put("one")
    box.put("two")
    gevent.joinall(getters, timeout=2)
    assert sorted(str(r) for r in results if isinstance(r, str)) == ["one", "two"]
    assert sum(isinstance(r, Timeout) for r in results) == 1


def test_waiting_getters_wake_on_close() -> None:
    box = Mailbox(1)
    getters = [gevent.spawn(box.get) for _ in range(3)]
    gevent.idle()  # every getter waits in get()
    assert not any(g.dead for g in getters)
    box.close()
    gevent.joinall(getters, timeout=2)
    assert all(g.value is CLOSED for g in getters)


def _greenlet_of(dispatcher: Dispatcher) -> Any:
    """The dispatcher's greenlet, read anew (mypy keeps an attribute narrowed across calls)."""
    return dispatcher._greenlet


def test_dispatcher_holds_a_greenlet_only_while_it_has_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thousands of idle clients with callbacks must not each keep a greenlet."""
    monkeypatch.setattr(_mailbox, "IDLE_EXIT", 0.05)
    dispatcher = Dispatcher(4)
    assert _greenlet_of(dispatcher) is None
    got: list[int] = []
    dispatcher.call(got.append, 1)
    first = _greenlet_of(dispatcher)
    assert first is not None
    wait_until(lambda: _greenlet_of(dispatcher) is None)
    assert first.dead
    assert got == [1]
    dispatcher.call(got.append, 2)
    dispatcher.call(got.append, 3, final=True)
    dispatcher.close()
    dispatcher.join(5)
    assert got == [1, 2, 3]
    assert _greenlet_of(dispatcher).dead


def test_a_dispatcher_never_called_closes_at_once() -> None:
    dispatcher = Dispatcher(4)
    dispatcher.close()
    dispatcher.join(0)
    assert _greenlet_of(dispatcher) is None
