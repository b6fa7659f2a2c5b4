"""Benchmark worker for geventio (public API only), in each of the ways it is used.

::

    python benchmarks/clients/geventio_bench.py --scenario latency --transport websocket \\
        --message text --size 32 --n 1000 --url http://127.0.0.1:PORT [--on-data] [--patch-all]

Prints one JSON line (see ``gevent_driver.py``).  ``--transport websocket`` is
``build_websocket()``, ``polling`` is ``build_polling()``, ``upgrade`` is ``build()`` (polling
handshake, then the upgrade), which must end on WebSocket.

- by default messages are read with ``client.receive()``;
- ``--on-data`` registers ``on_data`` (and ``on_close``) instead: the callback, which runs in the
  client's dispatcher greenlet, hands each message to the waiting measuring code through
  :class:`Handoff`, so the driver's measurement is the same as with ``receive()``;
- ``--patch-all`` calls ``gevent.monkey.patch_all()`` before anything else is imported, as a
  Locust process does;
- ``--lift-limit`` lifts the cap of 16 packets per polling POST (``max_packets_per_post``);
- ``--source=DIR`` imports geventio from ``DIR`` (a checkout of an earlier commit: the
  ``geventio-before`` implementation of ``bench_plan``), so that one run measures both.
"""

from __future__ import annotations

import sys

if "--patch-all" in sys.argv:
    from gevent import monkey

    monkey.patch_all()

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
from gevent.hub import Waiter

#: --source=DIR: geventio is imported from there, first (the driver's helpers import from it too)
SOURCE = next((arg.partition("=")[2] for arg in sys.argv if arg.startswith("--source=")), "")
if SOURCE:
    sys.path.insert(0, SOURCE)

import geventio  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gevent_driver import BenchError, Closed, main  # noqa: E402

#: :class:`Handoff`'s batch when it has none: an iterator that is always exhausted.
_DRAINED: Iterator[Any] = iter(())
_EMPTY: Any = object()


class GeventioConn:
    """A :class:`geventio.Client`, read through its inbox with ``receive()``."""

    def __init__(self, client: geventio.Client) -> None:
        self.client = client

    def send(self, data: str | bytes) -> None:
        self.client.send(data)

    def receive(self, timeout: float) -> str | bytes:
        try:
            return self.client.receive(timeout=timeout)
        except geventio.ConnectionClosed:
            raise Closed from None

    @property
    def connected(self) -> bool:
        return self.client.connected

    def close(self) -> None:
        self.client.disconnect()


class Handoff:
    """Messages from the ``on_data`` callback to the one greenlet waiting in :meth:`receive`.

    The cheapest correct hand-off measured (``benchmarks/README.md``): the callback appends to
    a list and, only when the reader is waiting, schedules one wake-up of it on the hub; the
    reader takes the whole list at once and iterates over it, so a burst of callbacks costs one
    switch to the reader, not one per message, and a message read costs one ``next()``.  An
    idle client holds an empty list and this object (about 150 bytes): no queue, event or
    timer.
    """

    __slots__ = ("_batch", "_closed", "_hub", "_items", "_waiter", "client")

    def __init__(self) -> None:
        self.client: geventio.Client | None = None
        self._items: list[str | bytes] = []  # appended to by on_data
        self._batch: Iterator[str | bytes] = _DRAINED  # what the reader took, being read
        self._waiter: Any = None  # the reader's Waiter while it waits
        self._closed = False
        self._hub = gevent.get_hub()

    def on_data(self, data: str | bytes) -> None:
        """The ``on_data`` callback: never blocks."""
        self._items.append(data)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            self._hub.loop.run_callback(waiter.switch, None)

    def on_close(self, _reason: geventio.CloseReason) -> None:
        """The ``on_close`` callback, after every ``on_data`` call: never blocks."""
        self._closed = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            self._hub.loop.run_callback(waiter.switch, None)

    def receive(self, timeout: float) -> str | bytes:
        """The next message; blocks on the callback's wake-up or a timer of ``timeout`` s.

        :raises TimeoutError: nothing came within ``timeout``.
        :raises Closed: the client closed and every message before was handed out.
        """
        item = next(self._batch, _EMPTY)
        if item is not _EMPTY:
            return item
        if not self._items:
            if self._closed:
                raise Closed
            waiter = self._waiter = Waiter(self._hub)
            timer = self._hub.loop.timer(timeout)
            timer.start(waiter.switch, None)
            try:
                waiter.get()
            finally:
                timer.close()
                self._waiter = None
            if not self._items:
                raise Closed if self._closed else TimeoutError
        batch = self._items
        self._items = []
        self._batch = iter(batch)
        return next(self._batch)

    def send(self, data: str | bytes) -> None:
        assert self.client is not None
        self.client.send(data)

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.connected

    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()


class Geventio:
    """Opens geventio clients."""

    name = "geventio"
    lifted = False
    on_data = False

    def connect(self, url: str, transport: str, timeout: float) -> GeventioConn | Handoff:
        builder = geventio.ClientBuilder(url).timeout(timeout)
        if self.lifted:
            builder.max_packets_per_post(1 << 30)
        handoff = None
        if self.on_data:
            handoff = Handoff()
            builder.on_data(handoff.on_data).on_close(handoff.on_close)
        if transport == "websocket":
            client = builder.build_websocket()
        elif transport == "polling":
            client = builder.build_polling()
        else:
            client = builder.build()
            if client.transport != "websocket":
                client.disconnect()
                raise BenchError("build() stayed on polling")
        if handoff is None:
            return GeventioConn(client)
        handoff.client = client
        return handoff


if __name__ == "__main__":
    flags = ("--on-data", "--patch-all")
    Geventio.on_data = "--on-data" in sys.argv
    if "--lift-limit" in sys.argv:  # no 16-packet cap per POST (for servers without one)
        Geventio.lifted = True
    # the name must be the orchestrator's (bench_plan.IMPLS): the runs are grouped by it
    Geventio.name = {
        (False, False, True): "geventio-lifted",
        (True, False, False): "geventio-cb",
        (False, True, False): "geventio-patched",
        (True, True, False): "geventio-cb-patched",
    }.get((Geventio.on_data, "--patch-all" in sys.argv, Geventio.lifted), "geventio")
    if SOURCE:
        Geventio.name = "geventio-before"
        assert Path(geventio.__file__).is_relative_to(SOURCE), geventio.__file__
    args = [arg for arg in sys.argv[1:] if arg not in flags and not arg.startswith("--source=")]
    main(Geventio(), args)
