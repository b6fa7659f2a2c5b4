"""The idle WebSocket cycle's cost: CPU microseconds and Python calls per PING -> PONG cycle.

::

    python benchmarks/profile_ws_idle.py [--clients 200] [--ping-ms 250] [--seconds 10]
        [--source DIR] [--patch-all] [--profile /tmp/ws.prof] [--calls] [--strace]

Opens ``--clients`` WebSocket clients against the Node ``engine.io`` test server with a
``--ping-ms`` ping interval, lets them idle for ``--seconds`` and reports this process' CPU time
divided by the cycles done meanwhile. A cycle is one PING of the server answered by one PONG;
cycles are counted as the server sends them, ``clients * window / ping interval`` (so that
nothing in the measured code is wrapped). ``--source DIR`` imports geventio from ``DIR`` (an
earlier checkout: compare variants interleaved, in one session, since CPU time per cycle grows
when other processes load the machine).

``--calls`` counts the Python calls per cycle with ``sys.setprofile`` (C calls included) in a
separate window and lists the most frequent; ``--profile`` writes cProfile stats of the measured
window (profiling slows Python down about 2x: read shares); ``--strace`` attaches
``strace -c -f`` for the window and prints syscalls per cycle. Hub switches per cycle are
counted with ``greenlet.settrace`` in a separate, shorter window.
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--ping-ms", type=int, default=250)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--source", help="import geventio from this checkout")
    parser.add_argument("--patch-all", action="store_true", help="gevent.monkey.patch_all()")
    parser.add_argument("--on-data", action="store_true", help="register an on_data callback")
    parser.add_argument("--profile", help="write cProfile stats of the idle window here")
    parser.add_argument("--calls", action="store_true", help="count Python calls per cycle")
    parser.add_argument("--strace", action="store_true", help="count syscalls with strace -c")
    args = parser.parse_args()
    if args.patch_all:
        from gevent import monkey  # noqa: PLC0415

        monkey.patch_all()
    if args.source:
        sys.path.insert(0, args.source)
    sys.path.insert(1, str(ROOT))  # the test servers, by their full name

    import gevent  # noqa: PLC0415
    from cycle_kit import (  # noqa: PLC0415
        Strace,
        count_switches,
        idle_window,
        syscalls_per_cycle,
    )

    import geventio  # noqa: PLC0415
    from tests.servers import start_server  # noqa: PLC0415

    server = start_server("node", ping_interval=args.ping_ms, ping_timeout=5000)
    clients: list[geventio.Client] = []
    interval = args.ping_ms / 1000
    try:
        builder = geventio.ClientBuilder(server.url).timeout(10)
        if args.on_data:
            builder = builder.on_data(lambda data: None)
        jobs = [gevent.spawn(builder.build_websocket) for _ in range(args.clients)]
        gevent.joinall(jobs, raise_error=True)
        clients = [job.value for job in jobs]
        gevent.sleep(2 * interval)  # settle: every client in its cycle

        strace = Strace(args.strace)
        profile = cProfile.Profile() if args.profile else None
        window = idle_window(args.seconds, profile)
        user, system, wall, cpu = window.user, window.system, window.wall, window.cpu
        cycles = args.clients * wall / interval
        syscalls = strace.stop()
        sample = min(3.0, args.seconds)  # the windows that count switches and calls
        switches, switched = count_switches(sample)
        switch_cycles = args.clients * switched / interval

        calls: Counter[str] = Counter()
        if args.calls:

            def count(frame: FrameType, event: str, arg: Any) -> None:
                if event == "call":
                    code = frame.f_code
                    calls[f"{Path(code.co_filename).name}:{code.co_name}"] += 1
                elif event == "c_call":
                    calls[f"<c>{getattr(arg, '__qualname__', arg)}"] += 1

            t0 = time.perf_counter()
            sys.setprofile(count)  # the hub and its greenlets run in this thread
            try:
                gevent.sleep(sample)
            finally:
                sys.setprofile(None)
            call_cycles = args.clients * (time.perf_counter() - t0) / interval

        still = sum(c.connected for c in clients)
        lost = Counter(str(c.close_reason) for c in clients if not c.connected)
        print(f"geventio from {Path(geventio.__file__).parent}, patch_all {args.patch_all}")
        print(f"clients {args.clients}, ping {args.ping_ms} ms, window {wall:.1f} s")
        print(f"cycles {cycles:.0f}, still connected {still} {dict(lost)}")
        us = 1e6 / max(1, cycles)
        print(
            f"CPU {cpu:.3f} s = {100 * cpu / wall:.1f} %, {cpu * us:.1f} us/cycle "
            f"(user {user * us:.1f}, system {system * us:.1f})"
        )
        print(f"greenlet switches per cycle: {switches / max(1, switch_cycles):.2f}")
        if args.calls:
            total = sum(calls.values())
            print(f"calls per cycle (sys.setprofile, C calls too): {total / call_cycles:.1f}")
            for name, n in calls.most_common(80):
                print(f"  {n / call_cycles:6.2f}  {name}")
        if syscalls:
            print(syscalls_per_cycle(syscalls, cycles))
        if profile is not None:
            profile.dump_stats(args.profile)
            print(f"profile written to {args.profile}")
    finally:
        for client in clients:
            client.disconnect()
        server.stop()


if __name__ == "__main__":
    main()
