"""What one benchmark run measures: the rows (scenario configurations) and the implementations.

A :class:`Row` is one scenario configuration (scenario, transport, message, N).  Each row gets
its own Node server (``engine.io`` echo server for the Engine.IO rows, ``socket.io`` test server
for the ``sio-*`` rows); every implementation's worker then runs against it, interleaved and
repeated (A B C A B C ...).  The sizes below are chosen so that a full run of the Engine.IO rows
(3 repetitions, 4 implementations) takes about 25 minutes on 2 cores, most of it in the idle
rows, and the Socket.IO rows about 6 more (each measured phase of a message row lasts at least
about a second).
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
    # Socket.IO clients (the sio-* scenarios)
    "gsio": ("geventio.socketio", [sys.executable, str(CLIENTS_DIR / "gsio_bench.py")]),
    "gsio-catchall": (
        "geventio.socketio (catch-all)",
        [sys.executable, str(CLIENTS_DIR / "gsio_bench.py"), "--catch-all"],
    ),
    "gsio-patched": (
        "geventio.socketio (patch_all)",
        [sys.executable, str(CLIENTS_DIR / "gsio_bench.py"), "--patch-all"],
    ),
    "gsio-lifted": (
        "geventio.socketio (limit lifted)",
        [sys.executable, str(CLIENTS_DIR / "gsio_bench.py"), "--lift-limit"],
    ),
    "pysio": ("python-socketio", [sys.executable, str(CLIENTS_DIR / "pysio_bench.py")]),
    "node-sio": ("node socket.io-client", ["node", str(CLIENTS_DIR / "node_sio_bench.js")]),
}
EIO_IMPLS = ("geventio", "geventio-lifted", "pyeio", "pyeio-lifted", "node")
SIO_IMPLS = ("gsio", "gsio-catchall", "gsio-patched", "gsio-lifted", "pysio", "node-sio")
#: The implementation the ratios are computed against: geventio, on Engine.IO or Socket.IO rows.
BASE_IMPLS = ("geventio", "gsio")
#: Variants with the 16-packet limit lifted: only on the polling rows of latency/throughput/flood.
LIFTED = ("geventio-lifted", "pyeio-lifted")
EIO_SCENARIOS = ("latency", "throughput", "flood", "connect", "idle")
SIO_SCENARIOS = ("sio-emit", "sio-call", "sio-flood", "sio-idle")
SCENARIOS = (*EIO_SCENARIOS, *SIO_SCENARIOS)
#: Socket.IO variants that run on some rows only, as ``scenario/transport`` (the other clients
#: run on every sio-* row).  ``gsio-lifted`` lifts geventio's default cap of 16 packets per POST
#: (python-engineio's server drops bigger POSTs; Node's has no such limit).
SIO_VARIANTS = {
    "gsio-catchall": ("sio-flood/websocket",),
    "gsio-patched": (
        *("sio-emit/websocket", "sio-emit/polling", "sio-call/websocket"),
        "sio-flood/websocket",
    ),
    "gsio-lifted": ("sio-emit/polling",),
}
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
    concurrency: int = 0  # sio-call: callers on one client (0: the worker's default)

    @property
    def server(self) -> str:
        """``sio`` (the Node socket.io test server) or ``eio`` (the engine.io echo server)."""
        return "sio" if self.scenario in SIO_SCENARIOS else "eio"

    @property
    def key(self) -> str:
        """A short unique name, e.g. ``latency/websocket/text32/n2000``, ``sio-call/…/c50``."""
        idle = self.scenario in ("connect", "idle", "sio-idle")
        what = "" if idle else f"{self.message}{self.size}/"
        callers = f"/c{self.concurrency}" if self.concurrency else ""
        return f"{self.scenario}/{self.transport}/{what}n{self.n}{callers}"

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
            *(("--concurrency", str(self.concurrency)) if self.concurrency else ()),
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
    latency, throughput and flood; ``impls`` picks the Engine.IO clients for the Engine.IO rows
    and the Socket.IO clients (:data:`SIO_IMPLS`) for the ``sio-*`` rows.
    """
    rows = _eio_rows(quick, tuple(i for i in impls if i in EIO_IMPLS), only)
    rows += _sio_rows(quick, tuple(i for i in impls if i in SIO_IMPLS), only)
    return [row for row in rows if row.impls]


def _idle_extra(hold: float, budget: float) -> tuple[str, ...]:
    return (
        *("--concurrency", "100", "--hold", str(hold)),
        *("--connect-budget", str(budget)),
    )


def _eio_rows(quick: bool, impls: tuple[str, ...], only: tuple[str, ...]) -> list[Row]:
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
                    extra=_idle_extra(hold, budget),
                )
            )
    return rows


def _sio_rows(quick: bool, impls: tuple[str, ...], only: tuple[str, ...]) -> list[Row]:
    """The Socket.IO rows, against the Node ``socket.io`` test server: 32-byte text payloads.

    ``gsio-catchall`` and ``gsio-patched`` run only where :data:`SIO_VARIANTS` says.
    """
    q = 10 if quick else 1
    timeout = 60.0 if quick else 120.0

    def row(scenario: str, transport: str, n: int, concurrency: int = 0) -> Row:
        where = f"{scenario}/{transport}"
        chosen = tuple(i for i in impls if where in SIO_VARIANTS.get(i, (where,)))
        return Row(
            scenario, transport, "text", TEXT_SIZE, n, chosen, timeout, concurrency=concurrency
        )

    rows: list[Row] = []
    if "sio-emit" in only:
        rows += [row("sio-emit", "websocket", 50000 // q), row("sio-emit", "polling", 20000 // q)]
    if "sio-call" in only:
        rows += [row("sio-call", "websocket", 3000 // q, 1)]
        rows += [row("sio-call", "websocket", 20000 // q, 50)]
    if "sio-flood" in only:
        rows.append(row("sio-flood", "websocket", 50000 // q))
    if "sio-idle" in only:
        clients = 100 if quick else 1000
        hold = 3.0 if quick else 10.0
        budget = 20.0 + clients / 500
        chosen = tuple(i for i in impls if i not in SIO_VARIANTS)
        idle = Row(
            "sio-idle",
            "websocket",
            "text",
            0,
            clients,
            chosen,
            timeout=budget + hold + 60.0,
            ping_interval_ms=IDLE_PING_INTERVAL_MS,
            ping_timeout_ms=IDLE_PING_TIMEOUT_MS,
            extra=_idle_extra(hold, budget),
        )
        rows.append(idle)
    return rows
