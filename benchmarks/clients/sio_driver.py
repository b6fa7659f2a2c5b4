"""The Socket.IO scenarios, written once for both gevent-based Socket.IO workers.

geventio.socketio's ``Client`` has python-socketio's API, so the same code measures both: a
worker (``gsio_bench.py``, ``pysio_bench.py``) supplies a :class:`SioImpl` (which ``Client``
class, how it handles the flood) and calls :func:`main`.  The command line, the JSON line, the
CPU and RSS figures and the idle scenario are ``gevent_driver.py``'s.  The server is the Node
socket.io test server (``tests/servers/sio_node_server.js``): ``ack`` acknowledges with its
arguments (and does nothing else), ``flood`` ``{"count": N, "size": S}`` answers with N events
``num`` ``(i, "x" * S)`` then ``flood_done``.  See ``benchmarks/README.md``.

Like ``gevent_driver.py`` this module never monkey-patches: the worker decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.event
import gevent_driver
from gevent_driver import TEXT_CHAR, WARMUP, BenchError, Options, run_idle

# importable once gevent_driver (above) has put the repository root on sys.path
from tests.faults.procstats import own_cpu_seconds, percentile


@dataclass
class SioImpl:
    """A Socket.IO client implementation: its ``Client`` class and how it counts the flood.

    :param name: the implementation's name in the JSON line.
    :param client_class: ``socketio.Client`` or ``geventio.socketio.Client``.
    :param catch_all: count the flood with a ``'*'`` handler instead of ``on('num')``.
    """

    name: str
    client_class: Callable[..., Any]
    catch_all: bool = False

    def connect(self, url: str, transport: str, timeout: float) -> Any:
        """A connected client on ``transport`` (``websocket`` or ``polling``, no upgrade).

        Blocks until the namespace ``/`` is connected; raises what ``connect()`` raises.
        """
        client = self.client_class(reconnection=False, request_timeout=timeout)
        client.connect(url, transports=[transport], wait_timeout=timeout)
        return client


def _text(opts: Options) -> str:
    return TEXT_CHAR * opts.size


def _call(client: Any, opts: Options, data: str) -> float:
    """One ``call("ack", data)``; returns its round trip in seconds."""
    start = time.perf_counter()
    answer = client.call("ack", data, timeout=opts.timeout)
    elapsed = time.perf_counter() - start
    if answer != data:
        raise BenchError(f"ack carried {str(answer)[:40]!r}, expected the {opts.size} B sent")
    return elapsed


def run_emit(impl: SioImpl, opts: Options) -> dict[str, Any]:
    """N ``emit("ack", data)`` without ack, then one ``call("ack")``: the server handles events
    in order, so its ack confirms all N.  msgs/s = N / (first emit to that ack)."""
    client = impl.connect(opts.url, opts.transport, opts.timeout)
    data = _text(opts)
    for _ in range(WARMUP):
        _call(client, opts, data)
    cpu0 = own_cpu_seconds()
    start = time.perf_counter()
    for _ in range(opts.n):
        client.emit("ack", data)
    _call(client, opts, data)
    seconds = time.perf_counter() - start
    return _rates(opts, seconds, own_cpu_seconds() - cpu0)


def _rates(opts: Options, seconds: float, cpu: float) -> dict[str, Any]:
    return {
        "cpu_s": cpu,
        "seconds": seconds,
        "msgs_per_s": opts.n / seconds,
        "mb_per_s": opts.n * opts.size / seconds / 1e6,
    }


def run_call(impl: SioImpl, opts: Options) -> dict[str, Any]:
    """N ``call("ack", data)`` by ``--concurrency`` greenlets on one client, each greenlet one
    call after the other; calls/s = N / the whole time, and each call's round trip."""
    client = impl.connect(opts.url, opts.transport, opts.timeout)
    data = _text(opts)
    for _ in range(WARMUP):
        _call(client, opts, data)
    times: list[float] = []
    left = [opts.n]

    def caller() -> None:
        while left[0] > 0:
            left[0] -= 1
            times.append(_call(client, opts, data))

    cpu0 = own_cpu_seconds()
    start = time.perf_counter()
    callers = [gevent.spawn(caller) for _ in range(max(1, opts.concurrency))]
    try:
        gevent.joinall(callers, raise_error=True)
    finally:
        gevent.killall(callers)
    seconds = time.perf_counter() - start
    return {
        **_rates(opts, seconds, own_cpu_seconds() - cpu0),
        "p50_ms": percentile(times, 0.50) * 1e3,
        "p90_ms": percentile(times, 0.90) * 1e3,
        "p99_ms": percentile(times, 0.99) * 1e3,
    }


class _Flood:
    """Counts ``num`` events and notes ``flood_done``; ``finished`` once both are complete.

    python-socketio may run handlers out of order (one greenlet per message), so the flood ends
    when ``flood_done`` came *and* every ``num`` was counted.
    """

    def __init__(self) -> None:
        self.count = 0
        self.expected = 0
        self.done = False
        self.error = ""
        self.finished = gevent.event.Event()

    def reset(self, expected: int) -> None:
        self.count, self.expected, self.done = 0, expected, False
        self.finished.clear()

    def on_num(self, index: int, text: str) -> None:
        self.count += 1
        if self.done and self.count == self.expected:
            self.finished.set()

    def on_done(self, total: int) -> None:
        if total != self.expected:
            self.error = f"flood_done says {total}, expected {self.expected}"
        self.done = True
        if self.error or self.count == self.expected:
            self.finished.set()

    def on_any(self, event: str, *args: Any) -> None:
        if event == "num":
            self.on_num(*args)
        elif event == "flood_done":
            self.on_done(*args)

    def wait(self, opts: Options) -> None:
        """Blocks until finished; :class:`BenchError` after ``opts.timeout`` s without progress."""
        seen = -1
        while not self.finished.wait(opts.timeout):
            if self.count == seen:
                raise BenchError(f"flood stalled at {self.count}/{self.expected} events")
            seen = self.count
        if self.error:
            raise BenchError(self.error)


def run_flood(impl: SioImpl, opts: Options) -> dict[str, Any]:
    """``emit("flood", {"count": N, "size": 32})``; received by an ``on("num")`` handler (or the
    catch-all); msgs/s = N / (emit to the last event and ``flood_done`` handled)."""
    flood = _Flood()
    client = impl.client_class(reconnection=False, request_timeout=opts.timeout)
    if impl.catch_all:
        client.on("*", flood.on_any)
    else:
        client.on("num", flood.on_num)
        client.on("flood_done", flood.on_done)
    client.connect(opts.url, transports=[opts.transport], wait_timeout=opts.timeout)
    flood.reset(WARMUP)
    client.emit("flood", {"count": WARMUP, "size": opts.size})
    flood.wait(opts)
    flood.reset(opts.n)
    cpu0 = own_cpu_seconds()
    start = time.perf_counter()
    client.emit("flood", {"count": opts.n, "size": opts.size})
    flood.wait(opts)
    return _rates(opts, time.perf_counter() - start, own_cpu_seconds() - cpu0)


RUNNERS: dict[str, Callable[[Any, Options], dict[str, Any]]] = {
    "sio-emit": run_emit,
    "sio-call": run_call,
    "sio-flood": run_flood,
    "sio-idle": run_idle,  # gevent_driver's: it needs only connect() and .connected
}


def main(impl: SioImpl, argv: list[str] | None = None) -> None:
    """Run the ``sio-*`` scenario named on the command line, print the JSON line, exit."""
    gevent_driver.main(impl, argv, RUNNERS)
