"""The idle polling cycle's cost: CPU microseconds per cycle, and what a cycle is made of.

::

    python benchmarks/profile_polling_idle.py [--clients 200] [--ping-ms 250] [--seconds 10]
        [--profile /tmp/idle.prof] [--strace]

Opens ``--clients`` polling clients (no upgrade) against the Node ``engine.io`` test server with
a ``--ping-ms`` ping interval, lets them idle for ``--seconds``, and reports this process' CPU
time divided by the cycles done meanwhile. One cycle: the server's PING answers a long-poll GET,
the client POSTs the PONG and sends the next GET. Cycles are counted as the long-poll GETs that
returned (a counter wrapped around ``PollingTransport.get``, which costs well under 1 us).
CPU time per cycle grows when other processes load the machine (and when cycles are few per
second, with less batching in the hub): compare variants interleaved, in one session.

``--profile`` writes cProfile stats of the idle window and prints the Python function calls
per cycle (summarize the stats with ``profile_layers.py``; profiling slows Python down about
2x, so read shares); ``--strace`` attaches ``strace -c -f`` to this process for the window and
prints syscalls per cycle. Hub switches per cycle are counted with ``greenlet.settrace`` in a
separate, shorter window.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
import greenlet  # type: ignore[import-untyped]

import geventio
from geventio._transports.polling import PollingTransport

ROOT = Path(__file__).resolve().parent.parent
# this script's one sys.path edit: the repository root, for the test servers by their full name
sys.path.insert(0, str(ROOT))

from tests.servers import start_server  # noqa: E402


def cpu_seconds() -> tuple[float, float]:
    """This process' (user, system) CPU seconds so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


class GetCounter:
    """Counts the long-poll GETs that returned, by wrapping ``PollingTransport.get``."""

    def __init__(self) -> None:
        self.gets = 0
        original = PollingTransport.get

        def get(transport: PollingTransport, sid: str, read_timeout: float) -> bytes:
            body = original(transport, sid, read_timeout)
            self.gets += 1
            return body

        PollingTransport.get = get  # type: ignore[method-assign, assignment]


def count_switches(seconds: float, counter: GetCounter) -> tuple[int, int]:
    """Greenlet switches, and the cycles, during ``seconds``."""
    switches = 0

    def trace(event: str, args: Any) -> None:
        nonlocal switches
        if event in ("switch", "throw"):
            switches += 1

    before = counter.gets
    old = greenlet.settrace(trace)
    try:
        gevent.sleep(seconds)
    finally:
        greenlet.settrace(old)
    return switches, counter.gets - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--ping-ms", type=int, default=250)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profile", help="write cProfile stats of the idle window here")
    parser.add_argument("--strace", action="store_true", help="count syscalls with strace -c")
    args = parser.parse_args()

    counter = GetCounter()
    server = start_server("node", ping_interval=args.ping_ms, ping_timeout=5000)
    clients: list[geventio.Client] = []
    try:
        builder = geventio.ClientBuilder(server.url).timeout(10)
        jobs = [gevent.spawn(builder.build_polling) for _ in range(args.clients)]
        gevent.joinall(jobs, raise_error=True)
        clients = [job.value for job in jobs]
        gevent.sleep(2 * args.ping_ms / 1000)  # settle: every client in its cycle

        tracer = None
        if args.strace:
            tracer = subprocess.Popen(
                ["strace", "-c", "-f", "-p", str(os.getpid())],
                stderr=subprocess.PIPE,
                text=True,
            )
            gevent.sleep(1.0)  # let it attach
        profile = cProfile.Profile() if args.profile else None
        gets0, cpu0, start = counter.gets, cpu_seconds(), time.perf_counter()
        if profile is not None:
            profile.enable()
        gevent.sleep(args.seconds)
        if profile is not None:
            profile.disable()
        (user1, sys1), wall = cpu_seconds(), time.perf_counter() - start
        user, system = user1 - cpu0[0], sys1 - cpu0[1]
        cpu = user + system
        cycles = counter.gets - gets0
        strace_out = ""
        if tracer is not None:
            tracer.send_signal(signal.SIGINT)
            _, strace_out = tracer.communicate(timeout=30)
        switches, switch_cycles = count_switches(min(3.0, args.seconds), counter)
        still = sum(c.connected for c in clients)
        lost = Counter(str(c.close_reason) for c in clients if not c.connected)

        print(f"geventio from {Path(geventio.__file__).parent}")
        print(f"clients {args.clients}, ping {args.ping_ms} ms, window {wall:.1f} s")
        print(f"cycles {cycles} ({cycles / wall:.0f}/s), still connected {still} {dict(lost)}")
        us = 1e6 / max(1, cycles)
        print(
            f"CPU {cpu:.3f} s = {100 * cpu / wall:.1f} %, {cpu * us:.0f} us/cycle "
            f"(user {user * us:.0f}, system {system * us:.0f})"
        )
        print(f"greenlet switches per cycle: {switches / max(1, switch_cycles):.2f}")
        if strace_out:
            calls = _strace_calls(strace_out)
            per = {name: n / max(1, cycles) for name, n in calls.items()}
            total = sum(per.values())
            top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda x: -x[1]))
            print(f"syscalls per cycle (strace -c, all threads): {total:.1f}: {top}")
        if profile is not None:
            profile.dump_stats(args.profile)
            stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
            made = sum(stat[1] for stat in stats.values())
            print(f"Python function calls per cycle (cProfile): {made / max(1, cycles):.0f}")
            print(f"profile written to {args.profile}")
    finally:
        for client in clients:
            client.disconnect()
        server.stop()


def _strace_calls(text: str) -> dict[str, int]:
    """``{syscall: calls}`` from the table that ``strace -c`` prints."""
    calls: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            try:
                calls[parts[-1]] = int(parts[3])
            except ValueError:
                continue
    return calls


if __name__ == "__main__":
    main()
