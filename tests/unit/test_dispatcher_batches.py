"""The dispatcher runs every pending callback in one switch, keeps order and backpressure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent
import gevent.event
import greenlet  # type: ignore[import-untyped]
import pytest

from geventio._mailbox import Dispatcher


class SwitchesInto:
    """Counts the switches into one greenlet (set ``target`` once it exists)."""

    def __init__(self) -> None:
        self.target: Any = None
        self.count = 0

    def __call__(self, event: str, args: Any) -> None:
        if event in ("switch", "throw") and args[1] is self.target:
            self.count += 1


@pytest.fixture
def into() -> Iterator[SwitchesInto]:
    counter = SwitchesInto()
    previous = greenlet.settrace(counter)
    try:
        yield counter
    finally:
        greenlet.settrace(previous)


def test_a_burst_of_calls_runs_in_one_switch(into: SwitchesInto) -> None:
    """500 calls queued before the dispatcher runs: one switch into it runs them all."""
    dispatcher = Dispatcher(1024)
    got: list[int] = []
    dispatcher.call(got.append, 0)
    into.target = dispatcher._greenlet
    for i in range(1, 500):
        dispatcher.call(got.append, i)
    assert got == []  # nothing ran yet: the caller did not yield
    gevent.idle()
    assert got == list(range(500))
    assert into.count == 1
    dispatcher.close()
    dispatcher.join(5)


def test_calls_queued_while_it_waits_wake_it_once(into: SwitchesInto) -> None:
    """A dispatcher waiting for calls: a new burst wakes it once, not once per call."""
    dispatcher = Dispatcher(1024)
    got: list[int] = []
    dispatcher.call(got.append, -1)
    into.target = dispatcher._greenlet
    gevent.idle()  # it ran the first call and now waits
    assert got == [-1]
    into.count = 0
    for i in range(300):
        dispatcher.call(got.append, i)
    gevent.idle()
    assert got == [-1, *range(300)]
    assert into.count == 1
    dispatcher.close()
    dispatcher.join(5)


def test_the_caller_blocks_while_size_calls_wait() -> None:
    """Backpressure: the size+1-th call blocks until one was taken; final calls never block."""
    dispatcher = Dispatcher(3)
    got: list[int] = []
    release = gevent.event.Event()

    def slow(value: int) -> None:
        release.wait()
        got.append(value)

    dispatcher.call(slow, 0)
    gevent.idle()  # the dispatcher takes call 0 and waits in it
    for i in range(1, 4):
        dispatcher.call(slow, i)  # three wait: the most allowed
    fifth = gevent.spawn(dispatcher.call, slow, 4)
    gevent.idle()
    assert not fifth.dead
    dispatcher.call(got.append, 99, final=True)  # a final call does not wait for room
    release.set()
    fifth.join(5)
    assert fifth.dead
    dispatcher.close()
    dispatcher.join(5)
    assert got == [0, 1, 2, 3, 99, 4]


def test_order_holds_when_callbacks_yield_and_the_list_never_drains() -> None:
    """Callbacks that yield while the caller keeps up: order holds, the list stays bounded."""
    dispatcher = Dispatcher(8)
    got: list[int] = []
    longest = 0

    def record(value: int) -> None:
        nonlocal longest
        longest = max(longest, len(dispatcher._calls))
        got.append(value)
        if value % 3 == 0:
            gevent.sleep(0)

    def feed() -> None:
        for i in range(5000):
            dispatcher.call(record, i)

    feeder = gevent.spawn(feed)
    feeder.join(10)
    dispatcher.close()
    dispatcher.join(10)
    assert got == list(range(5000))
    assert longest <= 1024 + 8 + 1, longest


def test_a_call_after_close_is_dropped() -> None:
    dispatcher = Dispatcher(4)
    got: list[int] = []
    dispatcher.call(got.append, 1)
    dispatcher.close()
    dispatcher.call(got.append, 2)
    dispatcher.join(5)
    assert got == [1]
