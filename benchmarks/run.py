"""Run the geventio benchmarks: one command, every scenario, every client implementation.

::

    python benchmarks/run.py [--quick] [--reps 3] [--only latency,idle,sio-call] \\
        [--clients geventio,geventio-cb,pyeio,node,gsio,pysio,node-sio,...] \\
        [--idle-counts 1000,10000] [--baseline OLD/latest.json] [--out benchmarks/results]

For each row of the plan (``bench_plan.py``) a fresh Node server is started (the ``engine.io``
echo server, or the ``socket.io`` test server for the ``sio-*`` rows),
then each implementation's worker runs against it, interleaved and repeated (A B C A B C ...),
each with a hard timeout.  The results go to ``<out>/latest.md`` (also printed) and
``<out>/latest.json`` (every raw run).  See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_exec import describe_machine, run_worker, start_row_server
from bench_plan import BENCH_DIR, IDLE_COUNTS, IMPLS, SCENARIOS, build_plan
from bench_report import write


def _names(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown}; choose from {allowed}")
    return names


def _counts(text: str) -> tuple[int, ...]:
    allowed = IDLE_COUNTS["websocket"]
    try:
        counts = tuple(int(c) for c in text.split(",") if c.strip())
    except ValueError:
        counts = ()
    if not counts or any(c not in allowed for c in counts):
        raise argparse.ArgumentTypeError(f"idle counts: choose from {allowed}")
    return counts


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line described in the module docstring."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny N, for a smoke check")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per row (default 3)")
    parser.add_argument(
        "--only",
        type=lambda s: _names(s, SCENARIOS, "scenario"),
        default=SCENARIOS,
        help="scenarios, comma-separated: " + ",".join(SCENARIOS),
    )
    parser.add_argument(
        "--clients",
        type=lambda s: _names(s, tuple(IMPLS), "client"),
        default=tuple(IMPLS),
        help="implementations, comma-separated: " + ",".join(IMPLS),
    )
    parser.add_argument(
        "--idle-counts",
        type=_counts,
        default=None,
        help="idle rows: only these client counts, comma-separated, from "
        + ",".join(str(c) for c in IDLE_COUNTS["websocket"]),
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="an earlier run's latest.json: the targets table checks geventio's connect rates, "
        "64 KiB rows and polling throughput against it (regression of more than 10 %%)",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="output dir")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


def _progress(run: dict[str, Any]) -> str:
    figures = ", ".join(
        f"{key} {run[key]:.4g}"
        for key in ("p50_ms", "msgs_per_s", "conns_per_s", "kib_per_client", "still_connected")
        if isinstance(run.get(key), (int, float))
    )
    status = figures if run["ok"] else f"FAILED {run.get('error')}"
    return f"  {run['impl']:<13} rep {run['rep']}  {run['wall_s']:6.1f} s  {status}"


def main(argv: list[str] | None = None) -> int:
    """Run the plan, write the reports, print the Markdown; exit status 0 even if runs failed."""
    raw_argv = sys.argv[1:] if argv is None else argv
    # SIGTERM unwinds like Ctrl-C: the finally below stops the row's server.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    args = parse_args(raw_argv)
    rows = build_plan(args.quick, args.clients, args.only, args.idle_counts)
    meta = describe_machine([sys.argv[0], *raw_argv])
    meta["reps"] = args.reps
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    for index, row in enumerate(rows, 1):
        print(f"[{index}/{len(rows)}] {row.key} ({', '.join(row.impls)})", flush=True)
        server = start_row_server(row)
        try:
            for rep in range(1, args.reps + 1):
                for impl in row.impls:
                    run = run_worker(row, impl, rep, server)
                    runs.append(run)
                    print(_progress(run), flush=True)
                    if not server.alive:
                        server.stop()
                        server = start_row_server(row)
                    if row.scenario in ("idle", "sio-idle") and row.n >= 1000:
                        time.sleep(2.0)  # let the server drop the previous worker's sessions
        finally:
            server.stop()
    meta["total_minutes"] = (time.monotonic() - started) / 60
    end = describe_machine([])["geventio"]
    if end != meta["geventio"]:  # geventio is installed editable: say when it moved meanwhile
        meta["geventio"] += f", **changed during the run**, at the end {end}"
    text = write(args.out, meta, rows, runs, args.baseline)
    print(text)
    print(f"written: {args.out / 'latest.md'}, {args.out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
