"""``geventio bench URL``: load an echo server from one process and measure round trips.

The run has three phases, all in greenlets of this process (one per client, no threads):

1. *connect*: ``--clients`` clients connect, at most ``--connect-concurrency`` at a time; each
   connect is timed.
2. *measure*: for ``--duration`` seconds every connected client loops: send one message of
   ``--size`` bytes, wait for its echo (other messages, such as a greeting, are skipped), time the
   round trip. A client that fails stops and its error is counted.
3. *disconnect*: every client disconnects.

Progress goes to stderr: on a terminal a bar redrawn four times a second, else a line when the
connect phase ends and then one every five seconds. The summary table goes to stdout. The exit
status is 0 without errors and 1 with any (when no client could connect, the first error is
reported as one ``geventio: error:`` line instead of the summary). On SIGINT the clients stop,
disconnect, and the summary so far is printed.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.event
import gevent.lock
import gevent.pool

import geventio
from geventio._builder import BUILDS
from geventio._cli_common import (
    FAILURE,
    CommandError,
    add_client_options,
    describe,
    make_builder,
    positive,
    positive_int,
)
from geventio._redact import redact
from geventio._stats import percentile, ranked

__all__ = ["Stats", "add_parser", "percentile", "summary"]

TICK = 0.25  # seconds between progress updates
PLAIN_EVERY = 5.0  # seconds between progress lines when stderr is not a terminal
BAR_WIDTH = 24
SHOWN_ERRORS = 5


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``bench`` subcommand to ``commands``."""
    parser = commands.add_parser(
        "bench",
        help="load an echo server with many clients and measure round trips",
        description=(
            "Connect --clients clients to an Engine.IO echo server (such as 'geventio serve'); "
            "then for --duration seconds each one sends a message and waits for its echo, again "
            "and again. Prints connect times, round trips per second and round-trip times."
        ),
    )
    add_client_options(parser, default_transport="websocket")
    parser.add_argument(
        "-c", "--clients", type=positive_int, default=10, help="clients to connect (%(default)s)"
    )
    parser.add_argument(
        "-d",
        "--duration",
        type=positive,
        default=10.0,
        metavar="SECONDS",
        help="how long the clients send, once connected (%(default)s)",
    )
    parser.add_argument(
        "--size", type=positive_int, default=32, metavar="BYTES", help="message size (%(default)s)"
    )
    parser.add_argument("--binary", action="store_true", help="send binary messages, not text")
    parser.add_argument(
        "--connect-concurrency",
        type=positive_int,
        default=100,
        metavar="N",
        help="at most N clients connecting at once (%(default)s)",
    )
    parser.add_argument(
        "--echo-timeout",
        type=positive,
        default=10.0,
        metavar="SECONDS",
        help="a client fails when an echo takes longer (%(default)s)",
    )
    parser.set_defaults(run=run, interruptible=True)


@dataclass
class Stats:
    """What the clients measured; only greenlets of one thread write it."""

    asked: int
    connect_times: list[float] = field(default_factory=list)
    round_trips: array[float] = field(default_factory=lambda: array("d"))
    open_now: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    connect_started: float = 0.0
    connect_ended: float = 0.0
    measure_started: float = 0.0
    measure_ended: float = 0.0
    interrupted: bool = False

    def error(self, exc: BaseException, when: str) -> None:
        """Count ``exc``, which happened at ``when`` (``connect`` or ``round trip``)."""
        if not isinstance(exc, geventio.EngineIOError):  # not the library's: name it
            when = f"{when}: {type(exc).__name__}"
        self.errors[f"{when}: {describe(exc)}"] += 1


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its summary; return 0, or 1 when any client failed.

    Blocks the calling greenlet for the three phases. Killing it (``GreenletExit``) stops the
    clients, disconnects them and prints the summary so far before it returns.

    :raises CommandError: when the options are bad (before any client connects).
    """
    builder = make_builder(args)
    build = BUILDS[args.transport]
    unit = b"geventio" if args.binary else "geventio"
    payload: str | bytes = (unit * (args.size // len(unit) + 1))[: args.size]
    stats = Stats(asked=args.clients)
    gate = gevent.lock.BoundedSemaphore(args.connect_concurrency)
    go = gevent.event.Event()  # set when the measure phase starts (or the run stops)
    stopping = gevent.event.Event()
    deadline = [math.inf]

    def client_loop() -> None:
        client = None
        failures: list[geventio.EngineIOError] = []  # what closed this client, if anything
        try:
            with gate:
                started = time.perf_counter()
                try:
                    client = build(copy.copy(builder).on_error(failures.append))
                except Exception as exc:  # counted, whatever it is
                    stats.error(exc, "connect")
                    return
                stats.connect_times.append(time.perf_counter() - started)
                stats.open_now += 1
            go.wait()
            while not stopping.is_set() and time.perf_counter() < deadline[0]:
                sent = time.perf_counter()
                client.send(payload)
                while client.receive(timeout=args.echo_timeout) != payload:
                    pass
                stats.round_trips.append(time.perf_counter() - sent)
        except geventio.Timeout:
            stats.error(geventio.Timeout(f"no echo within {args.echo_timeout:g} s"), "round trip")
        except geventio.ConnectionClosed as exc:  # say why, when the client knows
            if failures:
                stats.error(failures[-1], f"round trip: {exc.reason.value}")
            else:
                stats.error(exc, "round trip")
        except Exception as exc:  # a load generator counts every failure and goes on
            stats.error(exc, "round trip")
        finally:
            if client is not None:
                stats.open_now -= 1
                client.disconnect()

    progress = _Progress(stats, args.duration, go, deadline)
    clients = gevent.pool.Group()
    drawer = gevent.spawn(progress.run)
    try:
        stats.connect_started = time.perf_counter()
        for _ in range(args.clients):
            clients.spawn(client_loop)
        while len(stats.connect_times) + sum(stats.errors.values()) < args.clients:
            gevent.sleep(0.01)  # the connect phase; the bar shows it
        stats.connect_ended = stats.measure_started = time.perf_counter()
        if not stats.connect_times:  # nothing to measure, nothing to summarize
            first = next(iter(stats.errors)).removeprefix("connect: ")
            raise CommandError(f"cannot connect to {redact(args.url)}: {first}")
        deadline[0] = stats.measure_started + args.duration
        go.set()
        progress.measuring()
        clients.join()
    except gevent.GreenletExit:
        stats.interrupted = True
        stopping.set()
        go.set()
        clients.join(timeout=2 * TICK)
        clients.kill(timeout=5)
    finally:
        drawer.kill()
        progress.finish()
    stats.measure_ended = min(time.perf_counter(), deadline[0])
    if not stats.measure_started:
        stats.connect_ended = stats.measure_started = stats.measure_ended
    print(summary(stats, args), flush=True)
    return FAILURE if stats.errors else 0


class _Progress:
    """The progress line on stderr: a redrawn bar on a terminal, else a line now and then."""

    def __init__(
        self, stats: Stats, duration: float, go: gevent.event.Event, deadline: list[float]
    ) -> None:
        self.stats = stats
        self.duration = duration
        self.go = go
        self.deadline = deadline
        self.tty = sys.stderr.isatty()
        self.samples: list[tuple[float, int]] = []
        self.drawn = False

    def run(self) -> None:
        last_plain = time.perf_counter()
        while True:
            gevent.sleep(TICK)
            now = time.perf_counter()
            self.samples = [*self.samples[-int(1 / TICK) :], (now, len(self.stats.round_trips))]
            if self.tty:
                self._write("\r" + self.line(now) + "\x1b[K")
                self.drawn = True
            elif now - last_plain >= PLAIN_EVERY:
                last_plain = now
                self._write(self.line(now) + "\n")

    def measuring(self) -> None:
        """Say, once, that the connect phase ended (a line, when not on a terminal)."""
        if not self.tty:
            stats = self.stats
            span = stats.connect_ended - stats.connect_started
            self._write(
                f"connected {len(stats.connect_times)}/{stats.asked} clients in {span:.2f} s,"
                f" sending for {self.duration:g} s\n"
            )

    def line(self, now: float) -> str:
        stats = self.stats
        errors = sum(stats.errors.values())
        if not self.go.is_set():
            done = len(stats.connect_times) + errors
            return f"connecting {done}/{stats.asked}  errors {errors}"
        elapsed = min(self.duration, max(0.0, now - (self.deadline[0] - self.duration)))
        filled = round(BAR_WIDTH * elapsed / self.duration)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        (t0, n0), (t1, n1) = self.samples[0], self.samples[-1]
        rate = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
        return (
            f"[{bar}] {elapsed:5.1f}/{self.duration:g} s  clients {stats.open_now}/{stats.asked}"
            f"  {rate:8.0f} msgs/s  errors {errors}"
        )

    def finish(self) -> None:
        if self.drawn:
            self._write("\n")

    @staticmethod
    def _write(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()


def summary(stats: Stats, args: argparse.Namespace) -> str:
    """The summary table, one ``label  values`` row per line."""
    connects = sorted(stats.connect_times)
    trips = sorted(stats.round_trips)
    connect_span = stats.connect_ended - stats.connect_started
    measured = stats.measure_ended - stats.measure_started
    errors = sum(stats.errors.values())
    kind = "binary" if args.binary else "text"
    rows = [
        ("url", redact(args.url)),
        ("transport", args.transport),
        ("message", f"{args.size} bytes, {kind}"),
        ("clients", f"{len(connects)} connected / {stats.asked} asked"),
        (
            "connect",
            f"p50 {_ms(ranked(connects, 0.5))}   p99 {_ms(ranked(connects, 0.99))}   "
            f"{_per_second(len(connects), connect_span)} connects/s",
        ),
        ("duration", f"{measured:.2f} s" + ("  (interrupted)" if stats.interrupted else "")),
        ("round trips", f"{len(trips)} total   {_per_second(len(trips), measured)} /s"),
        (
            "round trip time",
            f"p50 {_ms(ranked(trips, 0.5))}   p99 {_ms(ranked(trips, 0.99))}   "
            f"max {_ms(trips[-1] if trips else math.nan)}",
        ),
        ("errors", str(errors)),
    ]
    lines = [f"{label:<16} {value}" for label, value in rows]
    for message, count in list(stats.errors.items())[:SHOWN_ERRORS]:
        lines.append(f"{'':<16} {count} x {message}")
    if len(stats.errors) > SHOWN_ERRORS:
        lines.append(f"{'':<16} ... and {len(stats.errors) - SHOWN_ERRORS} other errors")
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.2f} ms"


def _per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:.1f}" if seconds > 0 else "n/a"
