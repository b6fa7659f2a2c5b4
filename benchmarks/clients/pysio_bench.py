"""Benchmark worker for python-socketio's sync ``socketio.Client`` under ``patch_all()``.

This is how it runs on gevent (and in Locust's built-in ``SocketIOUser``):
``gevent.monkey.patch_all()`` first, then the threading client on ``websocket-client`` and
``requests``, whose threads become greenlets.  Same command line and JSON line as the other
workers (``gevent_driver.py``, ``sio_driver.py``).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import socketio  # noqa: E402
from sio_driver import SioImpl, main  # noqa: E402

if __name__ == "__main__":
    main(SioImpl("pysio", socketio.Client))
