"""Process figures for the soak script and the benchmarks: CPU, RSS, file limit, percentiles.

Imports nothing but the standard library and :mod:`geventio._stats` (the one definition of a
percentile, which imports only :mod:`math`; ``geventio/__init__`` imports its names lazily), so a
benchmark worker can use it without loading geventio's client or the test servers (which would
count in its RSS).
"""

from __future__ import annotations

import os
import resource

from geventio._stats import percentile

__all__ = ["own_cpu_seconds", "percentile", "proc_cpu_seconds", "proc_status", "raise_nofile"]

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in KiB (0 where the kernel does not report one)."""
    found = {"VmRSS": 0, "VmHWM": 0}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key = line.split(":", 1)[0]
            if key in found:
                found[key] = int(line.split()[1])
    return found


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime (fields 14, 15)


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_nofile() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
