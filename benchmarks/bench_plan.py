"""What one benchmark run measures: the rows (scenario configurations) and the implementations.

A :class:`Row` is one scenario configuration (scenario, transport, message, N).  Each row gets
its own Node ``engine.io`` echo server; every implementation's worker then runs against it,
interleaved and repeated (A B C A B C ...).  The sizes below are chosen so that a full run (all
rows, 3 repetitions, 4 implementations) takes about 25 minutes on 2 cores, most of it in the
idle rows.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
CLIENTS_DIR = BENCH_DIR / "clients"

#: name -> (label in the tables, command line prefix)
IMPLS: dict[str, tuple[str, list[str]]] = {
    "geventio": ("geventio", [sys.executable, str(CLIENTS_DIR / "geventio_bench.py")]),
    "geventio-lifted": (
        "geventio (limit lifted)",
        [sys.executable, str(CLIENTS_DIR / "geventio_bench.py"), "--lift-limit"],
    ),
    "pyeio": (
        "python-engineio",
        [sys.executable, str(CLIENTS_DIR / "pyeio_bench.py")],
    ),
    "pyeio-lifted": (
        "python-engineio (limit lifted)",
        [sys.executable, str(CLIENTS_DIR / "pyeio_bench.py"), "--lift-limit"],
    ),
    "node": ("node engine.io-client", ["node", str(CLIENTS_DIR / "node_bench.js")]),
}
#: Variants with the 16-packet limit lifted: only on the polling rows of latency/throughput/flood.
LIFTED = ("geventio-lifted", "pyeio-lifted")
SCENARIOS = ("latency", "throughput", "flood", "connect", "idle")
TEXT_SIZE = 32
BINARY_SIZE = 64 * 1024
IDLE_PING_INTERVAL_MS = 1000
IDLE_PING_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Row:
    """One scenario configuration, run by every implementation against one fresh server."""

    scenario: str
    transport: str  # websocket, polling, or upgrade (connect only)
    message: str  # text or binary
    size: int
    n: int  # messages, or clients (connect, idle)
    impls: tuple[str, ...]
    timeout: float  # hard limit on one worker process, seconds
    ping_interval_ms: int = 25000
    ping_timeout_ms: int = 20000
    extra: tuple[str, ...] = field(default=())  # more worker options

    @property
    def key(self) -> str:
        """A short unique name, e.g. ``latency/websocket/text32/n2000``."""
        what = "" if self.scenario in ("connect", "idle") else f"{self.message}{self.size}/"
        return f"{self.scenario}/{self.transport}/{what}n{self.n}"

    def argv(self, url: str) -> list[str]:
        """The worker options (identical for every implementation)."""
        return [
            "--scenario",
            self.scenario,
            "--transport",
            self.transport,
            "--message",
            self.message,
            "--size",
            str(self.size),
            "--n",
            str(self.n),
            "--url",
            url,
            *self.extra,
        ]


def _message_rows(
    scenario: str, sizes: dict[tuple[str, str], int], impls: tuple[str, ...], timeout: float
) -> list[Row]:
    rows = []
    for (transport, message), n in sizes.items():
        size = TEXT_SIZE if message == "text" else BINARY_SIZE
        chosen = impls if transport == "polling" else tuple(i for i in impls if i not in LIFTED)
        rows.append(Row(scenario, transport, message, size, n, chosen, timeout))
    return rows


def build_plan(quick: bool, impls: tuple[str, ...], only: tuple[str, ...]) -> list[Row]:
    """All rows, in the order they run; ``quick`` divides every N for a smoke check.

    The ``-lifted`` variants only run where the 16-packet limit matters: the polling rows of
    latency, throughput and flood.
    """
    q = 10 if quick else 1
    rows: list[Row] = []
    timeout = 60.0 if quick else 120.0
    if "latency" in only:
        sizes = {
            ("websocket", "text"): 2000 // q,
            ("websocket", "binary"): 500 // q,
            ("polling", "text"): 500 // q,
            ("polling", "binary"): 200 // q,
        }
        rows += _message_rows("latency", sizes, impls, timeout)
    if "throughput" in only:
        sizes = {
            ("websocket", "text"): 20000 // q,
            ("websocket", "binary"): 1000 // q,
            ("polling", "text"): 5000 // q,
            ("polling", "binary"): 300 // q,
        }
        rows += _message_rows("throughput", sizes, impls, timeout)
    if "flood" in only:
        sizes = {
            ("websocket", "text"): 20000 // q,
            ("websocket", "binary"): 1000 // q,
            ("polling", "text"): 20000 // q,
            ("polling", "binary"): 300 // q,
        }
        rows += _message_rows("flood", sizes, impls, timeout)
    extra: tuple[str, ...]
    no_lift = tuple(i for i in impls if i not in LIFTED)
    if "connect" in only:
        for transport in ("upgrade", "websocket"):
            extra = ("--concurrency", "20", "--connect-budget", str(timeout / 2))
            rows.append(
                Row("connect", transport, "text", 0, 300 // q, no_lift, timeout, extra=extra)
            )
    if "idle" in only:
        ws_counts: tuple[int, ...] = (100,) if quick else (100, 1000, 5000, 10000)
        polling_counts: tuple[int, ...] = (100,) if quick else (100, 1000)
        counts = [("websocket", c) for c in ws_counts] + [("polling", c) for c in polling_counts]
        hold = 3.0 if quick else 10.0
        for transport, clients in counts:
            budget = 20.0 + clients / 500
            extra = (
                *("--concurrency", "100", "--hold", str(hold)),
                *("--connect-budget", str(budget)),
            )
            rows.append(
                Row(
                    "idle",
                    transport,
                    "text",
                    0,
                    clients,
                    no_lift,
                    timeout=budget + hold + 60.0,
                    ping_interval_ms=IDLE_PING_INTERVAL_MS,
                    ping_timeout_ms=IDLE_PING_TIMEOUT_MS,
                    extra=extra,
                )
            )
    return [row for row in rows if row.impls]
