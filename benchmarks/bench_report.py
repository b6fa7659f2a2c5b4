"""The results: medians per row and implementation, ratios, and the Markdown/JSON files.

Every figure in a table is the median over the successful repetitions of a row.  A ratio is
``geventio's median / the other implementation's median`` for the same row (geventio.socketio's
on the Socket.IO rows): below 1 is better for geventio where lower is better (latency, RSS, CPU),
above 1 where higher is better (rates).  The report ends with issue 13's table and targets
(``bench_targets.py``): each geventio variant against the Node client.

Run as a script, it writes the report of an earlier run again, from its JSON::

    python benchmarks/bench_report.py results/latest.json [--baseline OLD.json] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_targets
from bench_plan import (
    BASE_IMPLS,
    BINARY_SIZE,
    IDLE_PING_INTERVAL_MS,
    IDLE_PING_TIMEOUT_MS,
    IMPLS,
    Row,
)


@dataclass(frozen=True)
class Metric:
    """One column: a key of the worker's JSON line."""

    key: str
    label: str
    ratio: bool = False  # also in the ratio table
    higher_is_better: bool = False


METRICS: dict[str, list[Metric]] = {
    "latency": [
        Metric("p50_ms", "p50 ms", ratio=True),
        Metric("p90_ms", "p90 ms"),
        Metric("p99_ms", "p99 ms", ratio=True),
    ],
    "throughput": [
        Metric("msgs_per_s", "msgs/s", ratio=True, higher_is_better=True),
        Metric("mb_per_s", "MB/s", higher_is_better=True),
    ],
    "flood": [
        Metric("msgs_per_s", "msgs/s", ratio=True, higher_is_better=True),
        Metric("mb_per_s", "MB/s", higher_is_better=True),
    ],
    "connect": [
        Metric("conns_per_s", "conn/s", ratio=True, higher_is_better=True),
        Metric("p50_ms", "p50 ms"),
        Metric("p99_ms", "p99 ms"),
    ],
    "idle": [
        Metric("still_connected", "still connected"),
        Metric("kib_per_client", "KiB/client", ratio=True),
        Metric("cpu_percent", "CPU %", ratio=True),
        Metric("connect_seconds", "connect s"),
    ],
    "sio-emit": [
        Metric("msgs_per_s", "msgs/s", ratio=True, higher_is_better=True),
    ],
    "sio-call": [
        Metric("msgs_per_s", "calls/s", ratio=True, higher_is_better=True),
        Metric("p50_ms", "p50 ms", ratio=True),
        Metric("p90_ms", "p90 ms"),
        Metric("p99_ms", "p99 ms", ratio=True),
    ],
    "sio-flood": [
        Metric("msgs_per_s", "msgs/s", ratio=True, higher_is_better=True),
    ],
}
METRICS["sio-idle"] = METRICS["idle"]
VERSIONS = (
    *("gevent", "urllib3", "wsproto", "python-engineio", "python-socketio", "requests"),
    *("websocket-client", "engine.io", "engine.io-client", "socket.io", "socket.io-client"),
)
COMMON = [
    Metric("cpu_s", "CPU s", ratio=True),
    Metric("rss_mib", "RSS MiB"),
    Metric("server_cpu_s", "server CPU s"),
]
DESCRIPTIONS = {
    "latency": "N sequential echo round trips, each timed from send to receive (after 20 warm-up "
    "round trips). CPU s: the client's CPU over the N round trips.",
    "throughput": "N messages sent as fast as possible by one greenlet/loop while the receive "
    "loop waits for all N echoes; msgs/s = N / time to the last echo, MB/s counts the echoed "
    "payload only.",
    "flood": "The server pushes N messages in one go (`cmd:push:N`: text `push <i>`, 6-10 bytes; "
    "`cmd:pushbin:N:65536`); receive rate until the last one arrives.",
    "connect": "Open N sessions, 20 in flight, each counted once open (upgrade: polling handshake "
    "then WebSocket upgrade completed; websocket: direct WebSocket). CPU s: connecting only.",
    "idle": f"C idle clients (100 connecting at a time), server pingInterval "
    f"{IDLE_PING_INTERVAL_MS} ms / pingTimeout {IDLE_PING_TIMEOUT_MS} ms. "
    "KiB/client = (RSS after the hold - RSS before connecting, taken after one connection "
    "was opened and closed) / clients connected; CPU % and CPU s over the hold; still "
    "connected = open at the end of the hold / C. Held 10 s (C = 10,000: 7 s; 3 s with "
    "`--quick`). python-engineio gets the same connect budget as the others "
    "(20 s + C / 500 s); clients not connected by then are given up.",
    "sio-emit": 'Socket.IO, 32-character string argument: N `emit("ack", data)` without ack '
    'request (the server handles each and answers nothing), then one `call("ack")`; the '
    "server handles events in order, so its ack confirms all N. msgs/s = N / (first emit to "
    "that ack).",
    "sio-call": 'Socket.IO `call("ack", data)` round trips (the server acks with the 32-char '
    "argument) on ONE client, by 1 or 50 greenlets (Node: 50 concurrent `emitWithAck`), each "
    "caller one call after the other, after 20 warm-up calls. calls/s = N / the whole time; "
    "p50/p90/p99 of one call.",
    "sio-flood": 'Socket.IO `emit("flood", {count: N, size: 32})`: the server emits N events '
    '`num` `(i, "x" * 32)`, then `flood_done`; counted by an `on("num")` handler (catch-all: '
    "one `'*'` handler). msgs/s = N / (emit to the last event handled).",
    "sio-idle": f"C idle Socket.IO clients (namespace `/` joined; 100 connecting at a time), "
    f"server pingInterval {IDLE_PING_INTERVAL_MS} ms / pingTimeout {IDLE_PING_TIMEOUT_MS} ms. "
    "KiB/client = (RSS after the hold - RSS before connecting) / clients connected; CPU % and "
    "CPU s over the hold; held 10 s (3 s with `--quick`), connect budget 20 s + C / 500 s.",
}


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def _value(run: dict[str, Any], key: str, scenario: str) -> float | None:
    if key == "rss_mib":
        kib = run.get("rss_kib" if scenario in ("idle", "sio-idle") else "rss_peak_kib")
        return None if kib is None else kib / 1024
    value = run.get(key)
    return float(value) if isinstance(value, (int, float)) else None


@dataclass
class Cell:
    """One implementation on one row: its runs and their medians."""

    runs: list[dict[str, Any]]

    @property
    def ok_runs(self) -> list[dict[str, Any]]:
        return [run for run in self.runs if run.get("ok")]

    def median(self, key: str, scenario: str) -> float | None:
        values = [v for run in self.ok_runs if (v := _value(run, key, scenario)) is not None]
        return statistics.median(values) if values else None

    def minimum(self, key: str, scenario: str) -> float | None:
        """The lowest figure of the successful runs (e.g. the fewest clients still connected)."""
        values = [v for run in self.ok_runs if (v := _value(run, key, scenario)) is not None]
        return min(values) if values else None

    def failure(self) -> str:
        """``failed: <reason>`` of the first failed run, or an empty string."""
        failed = [run for run in self.runs if not run.get("ok")]
        return f"failed: {failed[0].get('error', '?')}" if failed else ""


def _row_label(row: Row) -> str:
    if row.scenario in ("connect", "idle", "sio-idle"):
        return f"{row.transport}, {'N' if row.scenario == 'connect' else 'C'} = {row.n:,}"
    if row.server == "sio":
        callers = f", {row.concurrency} caller{'s' * (row.concurrency > 1)}"
        return f"{row.transport}, {row.size} B, N = {row.n:,}" + (callers * bool(row.concurrency))
    size = f"text {row.size} B" if row.message == "text" else f"binary {row.size // 1024} KiB"
    if row.scenario == "flood" and row.message == "text":
        size = "text `push <i>`"
    return f"{row.transport}, {size}, N = {row.n:,}"


def _notes(row: Row, impl: str, cell: Cell, cells: dict[str, Cell]) -> str:
    notes = []
    failed = [run for run in cell.runs if not run.get("ok")]
    if failed:
        notes.append(f"{len(failed)}/{len(cell.runs)} {cell.failure()}")
        lifted = cells.get("pyeio-lifted")
        if impl == "pyeio" and lifted is not None and lifted.ok_runs:
            notes.append("passes with the 16-packet decode limit lifted")
    errors = {str(run["connect_errors"]) for run in cell.runs if run.get("connect_errors")}
    if errors:
        notes.append("connect errors: " + "; ".join(sorted(errors))[:300])
    return "; ".join(notes).replace("|", "/")


def _main_table(scenario: str, rows: list[Row], cells: dict[str, dict[str, Cell]]) -> list[str]:
    metrics = METRICS[scenario] + COMMON
    head = ["row", "client", *(m.label for m in metrics), "runs ok", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        for impl in row.impls:
            cell = cells[row.key][impl]
            values = []
            for metric in metrics:
                median = cell.median(metric.key, scenario)
                if median is None:
                    values.append("—")
                elif metric.key == "still_connected":
                    values.append(f"{median:,.0f} / {row.n:,}")
                else:
                    values.append(_fmt(median))
            if not cell.ok_runs:
                values[0] = "**failed**"
            ok = f"{len(cell.ok_runs)}/{len(cell.runs)}"
            notes = _notes(row, impl, cell, cells[row.key])
            lines.append(
                "| " + " | ".join([_row_label(row), IMPLS[impl][0], *values, ok, notes]) + " |"
            )
    return lines


def _ratio_table(scenario: str, rows: list[Row], cells: dict[str, dict[str, Cell]]) -> list[str]:
    # geventio on the Engine.IO rows, geventio.socketio on the Socket.IO rows
    base = next((b for b in BASE_IMPLS if any(b in row.impls for row in rows)), "")
    others = [i for i in IMPLS if i != base and any(i in row.impls for row in rows)]
    if not base or not others:
        return []
    head = ["row", f"{IMPLS[base][0]} / …", *(IMPLS[i][0] for i in others)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        if base not in row.impls:
            continue
        idle = scenario in ("idle", "sio-idle")
        common = [] if idle else [m for m in COMMON if m.ratio]  # idle: CPU %
        for metric in [m for m in METRICS[scenario] if m.ratio] + common:
            mine = cells[row.key][base].median(metric.key, scenario)
            ratios = []
            for other in others:
                theirs = (
                    cells[row.key][other].median(metric.key, scenario)
                    if other in row.impls
                    else None
                )
                ratios.append("—" if not mine or not theirs else f"{mine / theirs:.2f}")
            better = "higher" if metric.higher_is_better else "lower"
            label = f"{metric.label} ({better} is better)"
            lines.append("| " + " | ".join([_row_label(row), label, *ratios]) + " |")
    return lines


def collect(rows: Sequence[Row], runs: list[dict[str, Any]]) -> dict[str, dict[str, Cell]]:
    """Group the raw runs by row key and implementation."""
    cells: dict[str, dict[str, Cell]] = {
        row.key: {impl: Cell([]) for impl in row.impls} for row in rows
    }
    for run in runs:
        cells[run["row"]][run["impl"]].runs.append(run)
    return cells


def collect_runs(runs: list[dict[str, Any]]) -> dict[str, dict[str, Cell]]:
    """Group runs by row key and implementation, whatever plan they came from (a baseline)."""
    cells: dict[str, dict[str, Cell]] = {}
    for run in runs:
        cells.setdefault(run["row"], {}).setdefault(run["impl"], Cell([])).runs.append(run)
    return cells


def markdown(
    meta: dict[str, Any],
    rows: Sequence[Row],
    runs: list[dict[str, Any]],
    baseline: list[dict[str, Any]] | None = None,
) -> str:
    """The whole report: header, then per scenario a description, the medians and the ratios,
    then issue 13's table and targets (``baseline``: an earlier run's raw runs, for the
    regression check)."""
    cells = collect(rows, runs)
    versions = ", ".join(f"{name} {meta.get(name, '?')}" for name in VERSIONS)
    out = [
        "# geventio benchmarks",
        "",
        f"- date: {meta['date']}; total {meta.get('total_minutes', 0):.1f} min",
        f"- machine: {meta['nproc']} CPUs ({meta['cpu']}), Linux {meta['kernel']}, "
        f"Python {meta['python']}, Node {meta['node']}",
        f"- geventio {meta['geventio']}; {versions}",
        f"- command: `{meta['command']}`",
        *([f"- baseline (regression check): `{meta['baseline']}`"] if meta.get("baseline") else []),
        f"- repetitions per row: {meta['reps']}, implementations interleaved; figures are medians "
        "of the successful runs. Server: `tests/servers/node_server.js` (Socket.IO rows: "
        "`tests/servers/sio_node_server.js`), one per row. "
        f"Binary messages are {BINARY_SIZE // 1024} KiB. RSS MiB is the worker's peak RSS "
        "(idle: current RSS after the hold); CPU s is the worker's own user+system CPU in the "
        "measured phase; server CPU s is the node server's over the whole worker run.",
        "",
    ]
    for scenario in METRICS:
        scenario_rows = [row for row in rows if row.scenario == scenario]
        if not scenario_rows:
            continue
        out += [f"## {scenario}", "", DESCRIPTIONS[scenario], ""]
        out += _main_table(scenario, scenario_rows, cells)
        ratios = _ratio_table(scenario, scenario_rows, cells)
        if ratios:
            base = "geventio.socketio" if scenario.startswith("sio-") else "geventio"
            out += ["", f"Ratios, {base} / the other client (medians):", "", *ratios]
        out.append("")
    old = None if baseline is None else collect_runs(baseline)
    issue13 = bench_targets.section(rows, cells, old)
    if issue13:
        out += [*issue13, ""]
    return "\n".join(out)


def load_runs(path: Path) -> list[dict[str, Any]]:
    """The raw runs of an earlier run's ``latest.json``; raises ``OSError``, ``ValueError``."""
    runs: list[dict[str, Any]] = json.loads(path.read_text())["runs"]
    return runs


def write(
    directory: Path,
    meta: dict[str, Any],
    rows: Sequence[Row],
    runs: list[dict[str, Any]],
    baseline: Path | None = None,
) -> str:
    """Write ``latest.md`` and ``latest.json`` into ``directory``; return the Markdown.

    ``baseline``: an earlier run's ``latest.json`` for the regression check (read before
    anything is written, so it may be ``directory``'s own ``latest.json``).
    """
    old = None
    if baseline is not None:
        old = load_runs(baseline)
        meta["baseline"] = str(baseline)
    directory.mkdir(parents=True, exist_ok=True)
    text = markdown(meta, rows, runs, old)
    (directory / "latest.md").write_text(text)
    plan = [{**row.__dict__, "key": row.key} for row in rows]
    document = {"meta": meta, "plan": plan, "runs": runs}
    (directory / "latest.json").write_text(json.dumps(document, indent=1) + "\n")
    return text


def _row(plan: dict[str, Any]) -> Row:
    fields = {k: v for k, v in plan.items() if k in Row.__dataclass_fields__}
    return Row(**{**fields, "impls": tuple(fields["impls"]), "extra": tuple(fields["extra"])})


def main(argv: list[str] | None = None) -> int:
    """Print the report of a run's JSON again (with ``--out``: write it there)."""
    parser = argparse.ArgumentParser(description="The report of an earlier run, again.")
    parser.add_argument("json", type=Path, help="a run's latest.json")
    parser.add_argument("--baseline", type=Path, default=None, help="an earlier latest.json")
    parser.add_argument("--out", type=Path, default=None, help="write latest.md/.json here")
    args = parser.parse_args(argv)
    document = json.loads(args.json.read_text())
    rows = [_row(plan) for plan in document["plan"]]
    meta, runs = document["meta"], document["runs"]
    if args.out is not None:
        print(write(args.out, meta, rows, runs, args.baseline))
        return 0
    if args.baseline is not None:
        meta["baseline"] = str(args.baseline)
    old = None if args.baseline is None else load_runs(args.baseline)
    print(markdown(meta, rows, runs, old))
    return 0


if __name__ == "__main__":
    sys.exit(main())
