"""Issue 13's table and targets: each of geventio's ways of use against the Node client.

Two tables, from the medians of one run (:func:`section`):

- **geventio / Node**: the rows of issue 13's table (WebSocket throughput, flood and echo p50 at
  32 B, polling throughput at 32 B, and every idle row geventio's variants ran on: KiB/client,
  CPU %, still connected), with the Node client's and python-engineio's medians and, per
  geventio variant, its median and its ratio to the Node client's;
- **targets** (issue 13, section 4): met / not met per variant, with the figure that decides;
  the last line compares geventio's connect rates, 64 KiB rows and polling throughput with an
  earlier run (``run.py --baseline OLD/latest.json``), where given.

Nothing here blocks or raises on missing data: a figure without a successful run is ``—`` and its
target ``not measured``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bench_plan import GEVENTIO_VARIANTS, IDLE_VARIANT_COUNTS, IMPLS, PATCHED, Row

NODE = "node"
PYEIO = "pyeio"
#: A regression beyond this fraction of the baseline's figure fails the last target.
REGRESSION = 0.10
MAX_KIB_UNPATCHED = 16.0


class CellLike(Protocol):
    """One implementation on one row (``bench_report.Cell``)."""

    def median(self, key: str, scenario: str) -> float | None: ...

    def minimum(self, key: str, scenario: str) -> float | None: ...


Cells = Mapping[str, Mapping[str, CellLike]]


@dataclass(frozen=True)
class Line:
    """One figure of one row of the run."""

    label: str
    row: Row
    key: str  # the worker's JSON key
    higher_is_better: bool = False

    def value(self, cells: Cells, impl: str, lowest: bool = False) -> float | None:
        """The median (``lowest``: the lowest) figure of ``impl``'s successful runs on this
        row, ``None`` without one."""
        cell = cells.get(self.row.key, {}).get(impl)
        if cell is None:
            return None
        pick = cell.minimum if lowest else cell.median
        return pick(self.key, self.row.scenario)


def _find(rows: Sequence[Row], scenario: str, transport: str, message: str) -> Row | None:
    return next(
        (r for r in rows if (r.scenario, r.transport, r.message) == (scenario, transport, message)),
        None,
    )


#: The idle rows of issue 13's table and targets, as (transport, C).
ISSUE_IDLE = (("websocket", 1000), ("websocket", 10000), ("polling", 1000))


def _variant_idle_rows(rows: Sequence[Row]) -> list[Row]:
    """The idle rows of issue 13 (:data:`ISSUE_IDLE`) that geventio ran on; without any
    (``--quick``), those where its variants ran (C = 100)."""
    ran = [
        r
        for r in rows
        if r.scenario == "idle"
        and r.n in IDLE_VARIANT_COUNTS[r.transport]
        and set(GEVENTIO_VARIANTS) & set(r.impls)
    ]
    return [r for r in ran if (r.transport, r.n) in ISSUE_IDLE] or ran


def lines(rows: Sequence[Row]) -> list[Line]:
    """The figures of issue 13's table that this run has."""
    found: list[Line] = []
    for label, scenario, transport, key in (
        ("websocket throughput, 32 B (msgs/s)", "throughput", "websocket", "msgs_per_s"),
        ("websocket flood, 32 B (msgs/s)", "flood", "websocket", "msgs_per_s"),
        ("websocket echo p50 (ms)", "latency", "websocket", "p50_ms"),
        ("polling throughput, 32 B, default cap (msgs/s)", "throughput", "polling", "msgs_per_s"),
    ):
        row = _find(rows, scenario, transport, "text")
        if row is not None:
            found.append(Line(label, row, key, higher_is_better=key == "msgs_per_s"))
    for row in _variant_idle_rows(rows):
        where = f"idle {row.transport}, C = {row.n:,}"
        found.append(Line(f"{where}: KiB/client", row, "kib_per_client"))
        found.append(Line(f"{where}: CPU %", row, "cpu_percent"))
        found.append(Line(f"{where}: connected by the end of the budget", row, "connected"))
        found.append(Line(f"{where}: still connected", row, "still_connected", True))
    return found


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def _variants(rows: Sequence[Row]) -> list[str]:
    return [v for v in GEVENTIO_VARIANTS if any(v in r.impls for r in rows)]


def summary(rows: Sequence[Row], cells: Cells) -> list[str]:
    """Issue 13's table: Node's and python-engineio's medians, then each geventio variant's
    median with its ratio to Node's (``variant / node``)."""
    variants = _variants(rows)
    found = lines(rows)
    if not variants or not found:
        return []
    head = ["scenario", IMPLS[NODE][0], IMPLS[PYEIO][0], *(IMPLS[v][0] for v in variants)]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for line in found:
        node = line.value(cells, NODE)
        values = [_fmt(node), _fmt(line.value(cells, PYEIO))]
        for variant in variants:
            mine = line.value(cells, variant)
            ratio = f" ({mine / node:.2f}x)" if mine is not None and node else ""
            values.append(_fmt(mine) + ratio)
        out.append("| " + " | ".join([line.label, *values]) + " |")
    return out


@dataclass(frozen=True)
class Target:
    """One of issue 13's targets, decided per geventio variant."""

    label: str
    line: Line
    #: (variant's median, the Node client's, python-engineio's, the variant) -> (met, the
    #: deciding figure), or ``None`` when the other side has no figure
    check: Callable[[float, float | None, float | None, str], tuple[bool, str] | None]
    #: decide on the variant's worst run (the lowest figure), not its median
    worst: bool = False


def _at_least_node(ratio: float) -> Callable[..., tuple[bool, str] | None]:
    def check(mine: float, node: float | None, _py: float | None, _v: str) -> Any:
        return None if not node else (mine / node >= ratio, f"{mine / node:.2f}x")

    return check


def _within_node(factor: float) -> Callable[..., tuple[bool, str] | None]:
    def check(mine: float, node: float | None, _py: float | None, _v: str) -> Any:
        return None if not node else (mine <= factor * node, f"{mine / node:.2f}x")

    return check


def _all_connected(n: int) -> Callable[..., tuple[bool, str] | None]:
    def check(mine: float, _node: float | None, _py: float | None, _v: str) -> Any:
        return mine >= n, f"{mine:,.0f} / {n:,}"

    return check


def _memory(mine: float, _node: float | None, py: float | None, variant: str) -> Any:
    if variant not in PATCHED:
        return mine <= MAX_KIB_UNPATCHED, f"{mine:.1f} KiB"
    if not py:
        return None
    return mine <= py / 2, f"{mine:.1f} KiB = {mine / py:.2f}x python-engineio"


def targets(rows: Sequence[Row]) -> list[Target]:
    """Issue 13, section 4, for the rows of this run."""
    by_key = {(line.row.key, line.key): line for line in lines(rows)}
    found: list[Target] = []

    def add(label: str, row: Row | None, key: str, check: Any, worst: bool = False) -> None:
        line = None if row is None else by_key.get((row.key, key))
        if line is not None:
            found.append(Target(label, line, check, worst))

    add(
        "websocket throughput, 32 B: at least 1.0x Node",
        _find(rows, "throughput", "websocket", "text"),
        "msgs_per_s",
        _at_least_node(1.0),
    )
    add(
        "websocket flood, 32 B: at least 1.0x Node",
        _find(rows, "flood", "websocket", "text"),
        "msgs_per_s",
        _at_least_node(1.0),
    )
    add(
        "websocket echo p50: within 2x Node",
        _find(rows, "latency", "websocket", "text"),
        "p50_ms",
        _within_node(2.0),
    )
    for row in _variant_idle_rows(rows):
        where = f"idle {row.transport}, C = {row.n:,}"
        add(f"{where}: CPU % at most Node's", row, "cpu_percent", _within_node(1.0))
        if row.transport == "websocket":
            add(
                f"{where}: all stay connected (in every run)",
                row,
                "still_connected",
                _all_connected(row.n),
                worst=True,
            )
            add(
                f"{where}: at most {MAX_KIB_UNPATCHED:g} KiB/client unpatched, "
                "half of python-engineio's under patch_all()",
                row,
                "kib_per_client",
                _memory,
            )
    return found


def _decide(target: Target, cells: Cells, variant: str) -> str:
    line = target.line
    if variant not in line.row.impls:
        return "not run"
    mine = line.value(cells, variant, lowest=target.worst)
    if mine is None:
        return "not measured"
    decided = target.check(mine, line.value(cells, NODE), line.value(cells, PYEIO), variant)
    if decided is None:
        return "not measured"
    met, figure = decided
    return f"{'met' if met else '**not met**'} ({figure})"


#: The rows that must not regress, by (scenario, transport, message): the connect rates, the
#: 64 KiB rows, polling throughput; geventio's and geventio-lifted's figures.
REGRESSION_ROWS = {
    ("connect", "upgrade", "text"): "conns_per_s",
    ("connect", "websocket", "text"): "conns_per_s",
    **{
        (s, t, "binary"): "msgs_per_s"
        for s in ("throughput", "flood")
        for t in ("websocket", "polling")
    },
    **{("latency", t, "binary"): "p50_ms" for t in ("websocket", "polling")},
    ("throughput", "polling", "text"): "msgs_per_s",
}


def regressions(rows: Sequence[Row], cells: Cells, baseline: Cells | None) -> list[str]:
    """One table line per row that must not regress: geventio's median now, in the baseline,
    and the change (rates: now / before, times: before / now; below 0.90 is a regression)."""
    if baseline is None:
        return []
    out = []
    for row in rows:
        key = REGRESSION_ROWS.get((row.scenario, row.transport, row.message))
        for impl in ("geventio", "geventio-lifted"):
            if key is None or impl not in row.impls or row.key not in baseline:
                continue
            now = Line("", row, key).value(cells, impl)
            old_cell = baseline[row.key].get(impl)
            before = None if old_cell is None else old_cell.median(key, row.scenario)
            if now is None or not before:
                verdict = "not measured"
            else:
                change = now / before if key != "p50_ms" else before / now
                verdict = f"{change:.2f}" + (" **regressed**" if change < 1 - REGRESSION else "")
            label = f"{row.key}, {IMPLS[impl][0]}, {key}"
            out.append(f"| {label} | {_fmt(before)} | {_fmt(now)} | {verdict} |")
    return out


def section(rows: Sequence[Row], cells: Cells, baseline: Cells | None = None) -> list[str]:
    """The Markdown of both tables (and the regression check when ``baseline`` is given)."""
    table = summary(rows, cells)
    if not table:
        return []
    variants = _variants(rows)
    out = [
        "## geventio's ways of use against the Node client (issue 13)",
        "",
        "Medians of this run; in brackets each geventio variant's ratio to the Node client "
        "(variant / node: above 1 is faster for msgs/s, below 1 cheaper for ms, KiB and CPU %). "
        "`receive()`: the client's inbox; `on_data`: a callback handing each message to the "
        "waiting measuring code; `patch_all`: `gevent.monkey.patch_all()` first, as Locust "
        "runs it. python-engineio's client delivers messages to a handler it runs in a new "
        "greenlet (its worker runs under `patch_all()`).",
        "",
        *table,
        "",
        "Targets of issue 13, section 4:",
        "",
        "| target | " + " | ".join(IMPLS[v][0] for v in variants) + " |",
        "|" + "---|" * (len(variants) + 1),
    ]
    for target in targets(rows):
        verdicts = [_decide(target, cells, v) for v in variants]
        out.append("| " + " | ".join([target.label, *verdicts]) + " |")
    checked = regressions(rows, cells, baseline)
    if baseline is None:
        out += ["", "No regression check: no `--baseline` run given."]
    elif checked:
        out += [
            "",
            f"No regression of more than {REGRESSION:.0%} against the baseline run "
            "(change: rates now / before, times before / now):",
            "",
            "| row, client, figure | before | now | change |",
            "|---|---|---|---|",
            *checked,
        ]
    else:
        out += ["", "No regression check: the baseline run has none of this run's rows."]
    return out
