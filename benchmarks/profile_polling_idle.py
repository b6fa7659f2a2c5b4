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
import pstats
import sys
from collections import Counter
from pathlib import Path

import gevent

import geventio
from geventio._transports.polling import PollingTransport

ROOT = Path(__file__).resolve().parent.parent
# this script's one sys.path edit: the repository root, for the test servers by their full name
sys.path.insert(0, str(ROOT))

from cycle_kit import Strace, count_switches, idle_window, syscalls_per_cycle  # noqa: E402

from tests.servers import start_server  # noqa: E402


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

        strace = Strace(args.strace)
        profile = cProfile.Profile() if args.profile else None
        gets = counter.gets
        window = idle_window(args.seconds, profile)
        user, system, wall, cpu = window.user, window.system, window.wall, window.cpu
        cycles = counter.gets - gets
        syscalls = strace.stop()
        gets = counter.gets
        switches, _ = count_switches(min(3.0, args.seconds))
        switch_cycles = counter.gets - gets
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
        if syscalls:
            print(syscalls_per_cycle(syscalls, cycles))
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


if __name__ == "__main__":
    main()
