"""Benchmark worker for ``geventio.socketio.Client``, without monkey-patching by default.

::

    python benchmarks/clients/gsio_bench.py --scenario sio-call --transport websocket \\
        --size 32 --n 1000 --concurrency 50 --url http://127.0.0.1:PORT [--catch-all] [--patch-all]

Prints one JSON line (see ``gevent_driver.py`` and ``sio_driver.py``).  ``--catch-all`` counts
the flood with a ``'*'`` handler instead of ``on("num")``; ``--patch-all`` runs
``gevent.monkey.patch_all()`` first, as a Locust process does; ``--lift-limit`` lifts the cap of
16 packets per polling POST (``max_packets_per_post``), which only python-engineio's server needs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial

if "--patch-all" in sys.argv:
    from gevent import monkey

    monkey.patch_all()

from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sio_driver import SioImpl, main

from geventio import socketio

if __name__ == "__main__":
    flags = ("--catch-all", "--patch-all")
    # the name must be the orchestrator's (bench_plan.IMPLS): the runs are grouped by it
    variants = {"--catch-all": "gsio-catchall", "--patch-all": "gsio-patched"}
    variants["--lift-limit"] = "gsio-lifted"
    name = variants.get(next((arg for arg in sys.argv if arg in variants), ""), "gsio")
    client_class: Callable[..., socketio.Client] = socketio.Client
    if "--lift-limit" in sys.argv:
        client_class = partial(socketio.Client, max_packets_per_post=1 << 30)
    impl = SioImpl(name, client_class, catch_all="--catch-all" in sys.argv)
    main(impl, [arg for arg in sys.argv[1:] if arg not in flags])
