"""The benchmarks' and the soak's figures use the same percentile as ``geventio bench``."""

from __future__ import annotations

import math

from geventio._stats import percentile
from tests.faults import procstats


def test_procstats_percentile_is_the_nearest_rank_one() -> None:
    """One definition: procstats' percentile is geventio's, so p50 of 1..100 is 50, not 51."""
    values = [float(v) for v in range(100, 0, -1)]  # unsorted on purpose
    assert procstats.percentile is percentile
    assert [procstats.percentile(values, q) for q in (0.01, 0.5, 0.9, 0.99, 1)] == [
        1,
        50,
        90,
        99,
        100,
    ]
    assert math.isnan(procstats.percentile([], 0.5))
