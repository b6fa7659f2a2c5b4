"""The scenarios, written once for both gevent-based workers (geventio and python-engineio).

A worker module supplies an :class:`Impl` (how to open one connection) and calls :func:`main`.
Everything else is shared, so the two Python clients run exactly the same measuring code:
the command line (the same as ``node_bench.js``), the scenarios, the CPU and RSS figures, and
the single JSON line printed on stdout.  See ``benchmarks/README.md`` for what each scenario
measures.

The driver imports gevent but never monkey-patches: the python-engineio worker patches before it
imports this module, the geventio worker does not patch at all.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import gevent
import gevent.pool

# The workers' one sys.path edit: the repository root, so that the measuring helpers shared with
# the soak script (standard library only) are imported by their full name, tests.faults.procstats.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.faults.procstats import own_cpu_seconds, percentile, proc_status, raise_nofile

SCENARIOS = ("latency", "throughput", "flood", "connect", "idle")
TRANSPORTS = ("websocket", "polling", "upgrade")  # upgrade: polling handshake, then WebSocket
TEXT_CHAR = "t"  # text payloads are TEXT_CHAR * size: not JSON, so python-engineio keeps a str
WARMUP = 20  # round trips before the measured ones


class Closed(Exception):
    """The connection closed while a message was awaited."""


class Conn(Protocol):
    """One open Engine.IO connection, as the scenarios see it."""

    def send(self, data: str | bytes) -> None:
        """Queue one message; may block the calling greenlet (backpressure)."""

    def receive(self, timeout: float) -> str | bytes:
        """Next message; :class:`TimeoutError` after ``timeout`` s, :class:`Closed` once closed."""

    @property
    def connected(self) -> bool:
        """Whether the session is still open."""

    def close(self) -> None:
        """Close the session; blocks until it is closed."""


class Impl(Protocol):
    """A client implementation: opens connections."""

    name: str

    def connect(self, url: str, transport: str, timeout: float) -> Conn:
        """Open a session on ``transport`` (see :data:`TRANSPORTS`); raise on any failure."""


class BenchError(Exception):
    """The scenario could not complete; the message goes into the results table."""


# ----------------------------------------------------------------- measuring


def proc_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process, in KiB."""
    found = proc_status()
    return found["VmRSS"], found["VmHWM"]


def payload(message: str, size: int) -> str | bytes:
    """The message the scenarios send: ``size`` text characters or ``size`` random bytes."""
    return TEXT_CHAR * size if message == "text" else os.urandom(size)


def describe(exc: BaseException) -> str:
    """A one-line description of an exception, for the table."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:160] if text else type(exc).__name__


# ----------------------------------------------------------------- scenarios


@dataclass
class Options:
    """The worker command line (shared with ``node_bench.js``)."""

    scenario: str
    transport: str
    message: str
    size: int
    n: int
    url: str
    concurrency: int
    hold: float
    connect_budget: float
    timeout: float
    lift_limit: bool = False
    profile: str = ""


def _expect(conn: Conn, opts: Options, done: int) -> str | bytes:
    try:
        return conn.receive(opts.timeout)
    except TimeoutError:
        raise BenchError(f"no message within {opts.timeout:g} s after {done}/{opts.n}") from None
    except Closed:
        raise BenchError(f"connection closed after {done}/{opts.n} messages") from None


def run_latency(impl: Impl, opts: Options) -> dict[str, Any]:
    """N sequential round trips; each one timed from send() to the echo's receive()."""
    conn = impl.connect(opts.url, opts.transport, opts.timeout)
    data = payload(opts.message, opts.size)
    for i in range(WARMUP):
        conn.send(data)
        _expect(conn, opts, -WARMUP + i)
    times: list[float] = []
    cpu0 = own_cpu_seconds()
    for i in range(opts.n):
        start = time.perf_counter()
        conn.send(data)
        echo = _expect(conn, opts, i)
        times.append(time.perf_counter() - start)
        if len(echo) != opts.size:
            raise BenchError(f"echo {i} has {len(echo)} bytes, expected {opts.size}")
    cpu = own_cpu_seconds() - cpu0
    return {
        "cpu_s": cpu,
        "p50_ms": percentile(times, 0.50) * 1e3,
        "p90_ms": percentile(times, 0.90) * 1e3,
        "p99_ms": percentile(times, 0.99) * 1e3,
        "mean_ms": sum(times) / len(times) * 1e3,
        "seconds": sum(times),
    }


def _rates(opts: Options, seconds: float, size: int, cpu: float) -> dict[str, Any]:
    return {
        "cpu_s": cpu,
        "seconds": seconds,
        "msgs_per_s": opts.n / seconds,
        "mb_per_s": opts.n * size / seconds / 1e6,
    }


def run_throughput(impl: Impl, opts: Options) -> dict[str, Any]:
    """A sender greenlet sends N messages at once; the receive loop waits for all N echoes."""
    conn = impl.connect(opts.url, opts.transport, opts.timeout)
    data = payload(opts.message, opts.size)
    conn.send(data)
    _expect(conn, opts, 0)  # warm up the connection (and the server's JIT)
    cpu0 = own_cpu_seconds()
    start = time.perf_counter()

    def sender() -> None:
        for _ in range(opts.n):
            conn.send(data)

    sending = gevent.spawn(sender)
    try:
        for i in range(opts.n):
            _expect(conn, opts, i)
        seconds = time.perf_counter() - start
    finally:
        sending.kill()
    return _rates(opts, seconds, opts.size, own_cpu_seconds() - cpu0)


def run_flood(impl: Impl, opts: Options) -> dict[str, Any]:
    """The server pushes N messages (cmd:push / cmd:pushbin); timed until the last one arrives."""
    conn = impl.connect(opts.url, opts.transport, opts.timeout)
    conn.send("cmd:push:1")
    _expect(conn, opts, 0)
    if opts.message == "text":
        command, size = f"cmd:push:{opts.n}", len(f"push {opts.n // 2}")
    else:
        command, size = f"cmd:pushbin:{opts.n}:{opts.size}", opts.size
    cpu0 = own_cpu_seconds()
    start = time.perf_counter()
    conn.send(command)
    for i in range(opts.n):
        _expect(conn, opts, i)
    return _rates(opts, time.perf_counter() - start, size, own_cpu_seconds() - cpu0)


@dataclass
class Opened:
    """What :func:`connect_many` achieved."""

    conns: list[Conn]
    times: list[float]
    errors: Counter[str]
    seconds: float


def connect_many(impl: Impl, opts: Options, budget: float) -> Opened:
    """Open ``opts.n`` connections, ``opts.concurrency`` in flight, within ``budget`` seconds.

    Connects still running when the budget ends are killed and counted as errors.
    """
    pool = gevent.pool.Pool(opts.concurrency)
    opened = Opened([], [], Counter(), 0.0)

    def one() -> None:
        begin = time.perf_counter()
        try:
            conn = impl.connect(opts.url, opts.transport, opts.timeout)
        except Exception as exc:
            opened.errors[describe(exc)] += 1
        else:
            opened.conns.append(conn)
            opened.times.append(time.perf_counter() - begin)

    start = time.perf_counter()
    deadline = time.monotonic() + budget
    launched = 0
    while launched < opts.n and pool.wait_available(timeout=deadline - time.monotonic()):
        pool.spawn(one)
        launched += 1
    pool.join(timeout=max(0.0, deadline - time.monotonic()))
    opened.seconds = time.perf_counter() - start
    unfinished = len(pool)
    pool.kill(timeout=5)
    if unfinished or launched < opts.n:
        opened.errors[f"not connected within the {budget:g} s budget"] += (
            unfinished + opts.n - launched
        )
    return opened


def run_connect(impl: Impl, opts: Options) -> dict[str, Any]:
    """Open N connections, ``--concurrency`` (20) in flight; connections per second."""
    cpu0 = own_cpu_seconds()
    opened = connect_many(impl, opts, budget=opts.connect_budget)
    cpu = own_cpu_seconds() - cpu0
    result: dict[str, Any] = {
        "cpu_s": cpu,
        "seconds": opened.seconds,
        "connected": len(opened.conns),
        "conns_per_s": len(opened.conns) / opened.seconds,
        "p50_ms": percentile(opened.times, 0.5) * 1e3,
        "p99_ms": percentile(opened.times, 0.99) * 1e3,
    }
    if opened.errors:
        reason, count = opened.errors.most_common(1)[0]
        result["error"] = f"{sum(opened.errors.values())}/{opts.n} failed ({count}x {reason})"
    return result


def warm_up(impl: Impl, opts: Options) -> None:
    """Open one connection and close it, so that what any first connection loads (modules
    imported on first use, e.g. geventio's lazy ``__init__``: about 12 MiB) is in the baseline
    RSS, not counted per client.  A Socket.IO client has ``disconnect()`` instead of ``close()``.
    """
    conn: Any = impl.connect(opts.url, opts.transport, opts.timeout)
    close = getattr(conn, "close", None) or conn.disconnect
    close()


def run_idle(impl: Impl, opts: Options) -> dict[str, Any]:
    """Hold N idle connections for ``--hold`` s; RSS per client, CPU %, still connected.

    The baseline RSS is taken after :func:`warm_up` and a full collection.
    """
    warm_up(impl, opts)
    gc.collect()
    rss_base, _ = proc_kib()
    opened = connect_many(impl, opts, budget=opts.connect_budget)
    connected = len(opened.conns)
    cpu0 = own_cpu_seconds()
    start = time.perf_counter()
    gevent.sleep(opts.hold)
    held = time.perf_counter() - start
    cpu = own_cpu_seconds() - cpu0
    rss, _ = proc_kib()
    still = sum(conn.connected for conn in opened.conns)
    result: dict[str, Any] = {
        "cpu_s": cpu,
        "cpu_percent": 100 * cpu / held,
        "connected": connected,
        "still_connected": still,
        "connect_seconds": opened.seconds,
        "rss_baseline_kib": rss_base,
        "kib_per_client": (rss - rss_base) / max(1, connected),
    }
    if opened.errors:
        reason, count = opened.errors.most_common(1)[0]
        result["connect_errors"] = f"{sum(opened.errors.values())} ({count}x {reason})"
    if connected == 0:
        result["error"] = "no client connected: " + result.get("connect_errors", "")
    return result


RUNNERS: dict[str, Callable[[Impl, Options], dict[str, Any]]] = {
    "latency": run_latency,
    "throughput": run_throughput,
    "flood": run_flood,
    "connect": run_connect,
    "idle": run_idle,
}


# ----------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None, scenarios: tuple[str, ...] = SCENARIOS) -> Options:
    """The worker command line, identical for every implementation (``scenarios``: the choices)."""
    parser = argparse.ArgumentParser(description="One benchmark run; prints one JSON line.")
    parser.add_argument("--scenario", choices=scenarios, required=True)
    parser.add_argument("--transport", choices=TRANSPORTS, required=True)
    parser.add_argument("--message", choices=("text", "binary"), default="text")
    parser.add_argument("--size", type=int, default=32, help="message size in bytes")
    parser.add_argument("--n", type=int, required=True, help="messages, or clients")
    parser.add_argument("--url", required=True, help="http://127.0.0.1:<port>")
    parser.add_argument("--concurrency", type=int, default=20, help="connects in flight")
    parser.add_argument("--hold", type=float, default=10.0, help="idle: seconds held")
    parser.add_argument("--connect-budget", type=float, default=60.0, help="connect, idle: s")
    parser.add_argument("--timeout", type=float, default=10.0, help="any single wait, s")
    parser.add_argument("--lift-limit", action="store_true", help="no 16-packet limit")
    parser.add_argument("--profile", default="", help="write cProfile stats of the run here")
    ns = parser.parse_args(argv)
    return Options(**vars(ns))


def _profiled(
    runner: Callable[[Any, Options], dict[str, Any]], impl: Any, opts: Options
) -> dict[str, Any]:
    """``runner(impl, opts)``, under cProfile when ``--profile PATH`` is given (stats to PATH,
    for ``python -m pstats``; every greenlet's calls count, the hub's waiting shows as the
    time of ``gevent._gevent_cgreenlet.Hub.switch``/``run``)."""
    if not opts.profile:
        return runner(impl, opts)
    profiler = cProfile.Profile()
    try:
        return profiler.runcall(runner, impl, opts)
    finally:
        profiler.dump_stats(opts.profile)


def emit(result: dict[str, Any]) -> None:
    """Print the one JSON line the orchestrator reads."""
    rss, peak = proc_kib()
    result.setdefault("rss_kib", rss)
    result["rss_peak_kib"] = peak
    result["cpu_total_s"] = own_cpu_seconds()
    result["ok"] = "error" not in result
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def main(
    impl: Any,
    argv: list[str] | None = None,
    runners: dict[str, Callable[[Any, Options], dict[str, Any]]] | None = None,
) -> None:
    """Run the scenario named on the command line with ``impl``, print the JSON line, exit.

    ``runners`` maps scenario names to their functions (default: the Engine.IO scenarios above;
    ``sio_driver.py`` passes the Socket.IO ones).

    The process exits with ``os._exit`` right after printing, without disconnecting anything:
    teardown is not measured, and python-engineio's polling ``disconnect()`` can wait a whole
    ping interval (25 s here), which would only slow the run down.
    """
    runners = RUNNERS if runners is None else runners
    opts = parse_args(argv, tuple(runners))
    raise_nofile()
    head: dict[str, Any] = {
        "impl": impl.name,
        "scenario": opts.scenario,
        "transport": opts.transport,
        "message": opts.message,
        "size": opts.size,
        "n": opts.n,
    }
    try:
        result = {**head, **_profiled(runners[opts.scenario], impl, opts)}
    except BenchError as exc:
        result = {**head, "error": str(exc)}
    except Exception as exc:
        traceback.print_exc()
        result = {**head, "error": describe(exc)}
    emit(result)
    os._exit(0)
