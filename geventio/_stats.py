"""Summary statistics of measured samples, for ``geventio bench`` and the test suite's benchmarks.

One definition of a percentile, the nearest-rank one: the ``q`` percentile of ``n`` samples is the
smallest sample with at least ``q * n`` samples at or below it (the sorted sample of rank
``ceil(q * n)``). It is always a value that was measured (no interpolation between two), and the
p100 is the maximum. An empty sample has no percentile: nan, never a 0 that would read as a
measurement. Imports nothing but the standard library (:mod:`math`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["percentile", "ranked"]


def percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (``0 < q <= 1``) of ``values``; nan when empty."""
    return ranked(sorted(values), q)


def ranked(ordered: Sequence[float], q: float) -> float:
    """:func:`percentile` of values already sorted (no copy)."""
    if not ordered:
        return math.nan
    return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])
