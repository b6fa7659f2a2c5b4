"""The fault suite's own checks: a stated time bound per case, and no socket left open.

Every fault test states what the client must do in its docstring's first line and measures the
failure with the ``bound`` fixture (``from tests.faultkit import Bound``)::

    def test_refused_port(bound: Bound) -> None:
        \"\"\"A refused port: ConnectError.\"\"\"
        with bound(1.0), pytest.raises(ConnectError):
            ...

``pytest tests/faults --fault-report=FILE`` writes a Markdown table with a row per case (its
parametrized variants together): what the client did (the docstring), the bound, the times.
On top of the whole suite's checks (no hub error, no client greenlet left), any test fails when
it leaves a socket of this process open.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import gevent
import pytest

__all__ = ["Bound", "open_sockets"]

_HAS_PROC = os.path.isdir("/proc/self/fd")


def _what(item: pytest.Item) -> str:
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    return doc.strip().splitlines()[0] if doc.strip() else item.name


@pytest.fixture
def bound(request: pytest.FixtureRequest) -> Bound:
    """Measure a failure against its stated bound (see the module docstring)."""
    case = CASES.setdefault(request.node.nodeid, Case(request.node.nodeid, _what(request.node)))
    return Bound(case)


@pytest.fixture(autouse=True)
def _no_socket_left_open() -> Iterator[None]:
    """Every test (of the whole suite): set up before and torn down after its other fixtures."""
    if not _HAS_PROC:
        yield
        return
    before = open_sockets()
    yield
    deadline = time.monotonic() + 2.0
    while True:
        gc.collect()
        left = open_sockets() - before
        if not left or time.monotonic() > deadline:
            break
        gevent.sleep(0.05)
    assert not left, f"sockets left open by the test: {sorted(left)}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    case = CASES.get(item.nodeid)
    if case is not None and (report.when == "call" or report.outcome != "passed"):
        case.outcome = report.outcome
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = session.config.getoption("--fault-report", None)
    if target and CASES:
        Path(target).write_text(report(CASES.values()))


def report(cases: Iterable[Case]) -> str:
    """A Markdown table with one row per case: its variants (parameters) grouped together."""
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(case.nodeid.split("[", 1)[0], []).append(case)
    lines = [
        "| case | what the client does | variants | bound (s) | measured (s) | passed |",
        "|---|---|---|---|---|---|",
    ]
    for nodeid, group in groups.items():
        times = [t for case in group for t in case.elapsed]
        bounds = sorted({case.bound for case in group if case.bound is not None})
        measured = "-"
        if times:
            low, high = f"{min(times):.3f}", f"{max(times):.3f}"
            measured = low if low == high else f"{low} to {high}"
        passed = sum(case.outcome == "passed" for case in group)
        lines.append(
            f"| `{nodeid.rsplit('::', 1)[-1]}` | {group[0].what} | {len(group)} "
            f"| {', '.join(f'{b:g}' for b in bounds) or '-'} | {measured} "
            f"| {passed}/{len(group)} |"
        )
    return "\n".join(lines) + "\n"


@dataclass
class Case:
    nodeid: str
    what: str
    bound: float | None = None
    elapsed: list[float] = field(default_factory=list)
    outcome: str = "not run"


CASES: dict[str, Case] = {}


class Bound:
    """``with bound(seconds):`` fails the test when the block takes longer; records the time."""

    def __init__(self, case: Case) -> None:
        self._case = case

    @contextmanager
    def __call__(self, seconds: float) -> Iterator[None]:
        start = time.monotonic()
        yield
        elapsed = time.monotonic() - start
        self._case.bound = max(self._case.bound or 0.0, seconds)
        self._case.elapsed.append(elapsed)
        assert elapsed <= seconds, f"took {elapsed:.3f} s, over the bound of {seconds} s"


def open_sockets() -> set[str]:
    """This process's open sockets (``socket:[inode]`` links under /proc/self/fd)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found
