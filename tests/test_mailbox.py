"""The bounded mailbox behind receive() and the dispatcher (no server needed)."""

from __future__ import annotations

import time

import gevent
import pytest

from geventio import Timeout
from geventio._mailbox import CLOSED, Mailbox


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
    gevent.sleep(0.02)
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
    gevent.sleep(0.01)
    box.put("one")
    box.put("two")
    gevent.joinall(getters, timeout=2)
    assert sorted(str(r) for r in results if isinstance(r, str)) == ["one", "two"]
    assert sum(isinstance(r, Timeout) for r in results) == 1


def test_waiting_getters_wake_on_close() -> None:
    box = Mailbox(1)
    getters = [gevent.spawn(box.get) for _ in range(3)]
    gevent.sleep(0.01)
    box.close()
    gevent.joinall(getters, timeout=2)
    assert all(g.value is CLOSED for g in getters)
