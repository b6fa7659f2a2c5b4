"""What ``profile_ws_idle.py`` and ``profile_polling_idle.py`` both measure of an idle window:
this process' CPU time, its syscalls (``strace -c``) and its greenlet switches.

Everything here blocks only the calling greenlet (``gevent.sleep``), but for ``Strace.stop``,
which waits for strace to print its table.
"""

from __future__ import annotations

import cProfile
import os
import resource
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import gevent
import greenlet  # type: ignore[import-untyped]

__all__ = ["Strace", "Window", "count_switches", "idle_window", "syscalls_per_cycle"]


def _cpu_seconds() -> tuple[float, float]:
    """This process' (user, system) CPU seconds so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


class Strace:
    """``strace -c -f`` attached to this process (when ``enabled``), for a window."""

    def __init__(self, enabled: bool) -> None:
        self._process: subprocess.Popen[str] | None = None
        if enabled:
            self._process = subprocess.Popen(
                ["strace", "-c", "-f", "-p", str(os.getpid())], stderr=subprocess.PIPE, text=True
            )
            gevent.sleep(1.0)  # let it attach

    def stop(self) -> dict[str, int]:
        """Detach; ``{syscall: calls}`` from the table strace printed (empty when disabled)."""
        if self._process is None:
            return {}
        self._process.send_signal(signal.SIGINT)
        _, text = self._process.communicate(timeout=30)
        calls: dict[str, int] = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                try:
                    calls[parts[-1]] = int(parts[3])
                except ValueError:
                    continue
        return calls


@dataclass(frozen=True)
class Window:
    """The CPU seconds (user, system) this process spent over ``wall`` seconds."""

    user: float
    system: float
    wall: float

    @property
    def cpu(self) -> float:
        return self.user + self.system


def idle_window(seconds: float, profile: cProfile.Profile | None) -> Window:
    """Let the hub run for ``seconds`` (under ``profile`` if given) and measure the CPU spent."""
    (user0, system0), start = _cpu_seconds(), time.perf_counter()
    if profile is not None:
        profile.enable()
    gevent.sleep(seconds)
    if profile is not None:
        profile.disable()
    (user1, system1), wall = _cpu_seconds(), time.perf_counter() - start
    return Window(user1 - user0, system1 - system0, wall)


def count_switches(seconds: float) -> tuple[int, float]:
    """Greenlet switches during ``seconds`` of the hub running, and the seconds it took."""
    switches = 0

    def trace(event: str, _: Any) -> None:
        nonlocal switches
        if event in ("switch", "throw"):
            switches += 1

    old = greenlet.settrace(trace)
    start = time.perf_counter()
    try:
        gevent.sleep(seconds)
    finally:
        greenlet.settrace(old)
    return switches, time.perf_counter() - start


def syscalls_per_cycle(calls: dict[str, int], cycles: float) -> str:
    """The line that reports ``calls`` (:meth:`Strace.stop`) per cycle, the most frequent first."""
    per = {name: n / max(1, cycles) for name, n in calls.items()}
    top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda x: -x[1]))
    return f"syscalls per cycle (strace -c, all threads): {sum(per.values()):.2f}: {top}"
