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

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
CLIENTS_DIR = BENCH_DIR / "clients"

#: name -> (label in the tables, command line prefix)
GEVENTIO_BENCH = [sys.executable, str(CLIENTS_DIR / "geventio_bench.py")]
IMPLS: dict[str, tuple[str, list[str]]] = {
    "geventio": ("geventio", GEVENTIO_BENCH),
    "geventio-cb": ("geventio (on_data)", [*GEVENTIO_BENCH, "--on-data"]),
    "geventio-patched": ("geventio (patch_all)", [*GEVENTIO_BENCH, "--patch-all"]),
    "geventio-cb-patched": (
        "geventio (on_data, patch_all)",
        [*GEVENTIO_BENCH, "--on-data", "--patch-all"],
    ),
    "geventio-lifted": ("geventio (limit lifted)", [*GEVENTIO_BENCH, "--lift-limit"]),
    "pyeio": (
        "python-engineio (callbacks, patch_all)",
        [sys.executable, str(CLIENTS_DIR / "pyeio_bench.py")],
    ),
    "pyeio-lifted": (
        "python-engineio (limit lifted)",
        [sys.executable, str(CLIENTS_DIR / "pyeio_bench.py"), "--lift-limit"],
    ),
    # --expose-gc: the idle rows take the baseline RSS after a full GC, as the Python workers do
    "node": (
        "node engine.io-client",
        ["node", "--expose-gc", str(CLIENTS_DIR / "node_bench.js")],
    ),
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
    "node-sio": (
        "node socket.io-client",
        ["node", "--expose-gc", str(CLIENTS_DIR / "node_sio_bench.js")],
    ),
}
#: ``GEVENTIO_BEFORE=DIR`` (a checkout of an earlier commit, e.g. made with ``git worktree add``):
#: that geventio is measured too, as ``geventio-before``, wherever ``geventio`` runs, so that a
#: change is judged within one run (the machine's noise then hits both alike).
BEFORE = os.environ.get("GEVENTIO_BEFORE", "")
if BEFORE:
    IMPLS["geventio-before"] = ("geventio before", [*GEVENTIO_BENCH, f"--source={BEFORE}"])
#: geventio's ways of being used: ``receive()`` or ``on_data``, without or under ``patch_all()``.
GEVENTIO_VARIANTS = ("geventio", "geventio-cb", "geventio-patched", "geventio-cb-patched")
EIO_IMPLS = (
    *GEVENTIO_VARIANTS,
    *(("geventio-before",) if BEFORE else ()),
    *("geventio-lifted", "pyeio", "pyeio-lifted", "node"),
)
SIO_IMPLS = ("gsio", "gsio-catchall", "gsio-patched", "gsio-lifted", "pysio", "node-sio")
#: The implementation the ratios are computed against: geventio, on Engine.IO or Socket.IO rows.
BASE_IMPLS = ("geventio", "gsio")
#: Variants with the 16-packet limit lifted: only on the polling rows of latency/throughput/flood.
LIFTED = ("geventio-lifted", "pyeio-lifted")
#: geventio's other ways of use run where issue 13 measures them (``receive()`` without patching,
#: ``geventio``, runs on every row): ``on_data`` on every message row, the ``patch_all()``
#: variants on the WebSocket message rows, and all three on the idle rows of
#: :data:`IDLE_VARIANT_COUNTS`; none on the connect rows (opening a session reads nothing).
VARIANTS = ("geventio-cb", "geventio-patched", "geventio-cb-patched")
PATCHED = ("geventio-patched", "geventio-cb-patched")
#: The idle client counts the variants run at: issue 13's targets (C = 1000 and 10,000 on
#: WebSocket, 1000 on polling) and C = 100, the one ``--quick`` keeps.  At C = 10,000 only
#: ``geventio-patched`` of the three runs, so that the row's repetition stays near 3 minutes
#: (a geventio run there is mostly its 40 s connect budget); ``on_data`` costs nothing while
#: idle, as the C = 100 and 1000 rows show.
IDLE_VARIANT_COUNTS = {"websocket": (100, 1000, 10000), "polling": (100, 1000)}
IDLE_10K_VARIANTS = ("geventio-patched",)
#: The idle client counts of a full run, and of ``--quick``.
IDLE_COUNTS = {"websocket": (100, 1000, 5000, 10000), "polling": (100, 1000)}
QUICK_IDLE_COUNTS = {"websocket": (100,), "polling": (100,)}
#: Seconds the idle clients are held (``--quick``: 3).  It is longer than pingInterval +
#: pingTimeout (6 s), so a client that stops answering PINGs is dropped within it; the C =
#: 10,000 row holds for less, so that its runs (mostly connecting) stay short.
IDLE_HOLD = 10.0
IDLE_HOLD_10K = 7.0
#: Any single wait of a worker, seconds (every worker gets it on its command line).
WAIT_TIMEOUT = 10.0
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
        left_out = PATCHED if transport == "polling" else LIFTED
        chosen = tuple(i for i in impls if i not in left_out)
        rows.append(Row(scenario, transport, message, size, n, chosen, timeout))
    return rows


def build_plan(
    quick: bool,
    impls: tuple[str, ...],
    only: tuple[str, ...],
    idle_counts: tuple[int, ...] | None = None,
) -> list[Row]:
    """All rows, in the order they run; ``quick`` divides every N for a smoke check.

    The ``-lifted`` variants only run where the 16-packet limit matters: the polling rows of
    latency, throughput and flood; geventio's other variants where :data:`VARIANTS` says;
    ``impls`` picks the Engine.IO clients for the Engine.IO rows and the Socket.IO clients
    (:data:`SIO_IMPLS`) for the ``sio-*`` rows; ``idle_counts`` the idle rows' client counts
    (default: all of :data:`IDLE_COUNTS`, ``--quick``: C = 100).
    """
    eio_impls = tuple(i for i in impls if i in EIO_IMPLS)
    rows = _eio_rows(quick, eio_impls, only, idle_counts)
    rows += _sio_rows(quick, tuple(i for i in impls if i in SIO_IMPLS), only)
    return [row for row in rows if row.impls]


def _idle_row(
    scenario: str,
    transport: str,
    clients: int,
    impls: tuple[str, ...],
    *,
    hold: float,
    budget: float,
) -> Row:
    """An idle row: ``clients`` connect within ``budget`` seconds, then stay ``hold`` seconds."""
    return Row(
        scenario,
        transport,
        "text",
        0,
        clients,
        impls,
        timeout=budget + hold + 60.0,
        ping_interval_ms=IDLE_PING_INTERVAL_MS,
        ping_timeout_ms=IDLE_PING_TIMEOUT_MS,
        extra=(
            *("--concurrency", "100", "--hold", str(hold)),
            *("--connect-budget", str(budget)),
        ),
    )


def _idle_rows(
    quick: bool, impls: tuple[str, ...], counts: tuple[int, ...] | None = None
) -> list[Row]:
    """The idle rows: WebSocket then polling, C from :data:`IDLE_COUNTS` (or ``counts``).

    ``counts`` (``run.py --idle-counts``) picks the client counts, e.g. ``(10000,)`` for the C =
    10,000 row alone; polling has no row for a C it is not measured at.
    """
    rows = []
    chosen_counts = QUICK_IDLE_COUNTS if quick else IDLE_COUNTS
    for transport in ("websocket", "polling"):
        for clients in counts or chosen_counts[transport]:
            if counts and clients not in IDLE_COUNTS[transport]:
                continue
            hold = IDLE_HOLD_10K if clients >= 10000 else IDLE_HOLD
            if quick:
                hold = 3.0
            budget = 20.0 + clients / 500
            variants: tuple[str, ...] = ()
            if clients in IDLE_VARIANT_COUNTS[transport]:
                variants = VARIANTS
            if clients >= 10000:
                variants = IDLE_10K_VARIANTS
            chosen = tuple(i for i in impls if i in variants or i not in VARIANTS)
            rows.append(_idle_row("idle", transport, clients, chosen, hold=hold, budget=budget))
    return rows


def _eio_rows(
    quick: bool,
    impls: tuple[str, ...],
    only: tuple[str, ...],
    idle_counts: tuple[int, ...] | None = None,
) -> list[Row]:
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
    no_lift = tuple(i for i in impls if i not in LIFTED)
    if "connect" in only:
        chosen = tuple(i for i in no_lift if i not in VARIANTS)
        for transport in ("upgrade", "websocket"):
            extra = ("--concurrency", "20", "--connect-budget", str(timeout / 2))
            rows.append(
                Row("connect", transport, "text", 0, 300 // q, chosen, timeout, extra=extra)
            )
    if "idle" in only:
        rows += _idle_rows(quick, no_lift, idle_counts)
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
        rows.append(_idle_row("sio-idle", "websocket", clients, chosen, hold=hold, budget=budget))
    return rows
