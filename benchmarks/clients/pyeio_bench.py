"""Benchmark worker for python-engineio's sync ``engineio.Client`` under ``patch_all()``.

This is how it is run on gevent today: ``gevent.monkey.patch_all()`` first, then the threading
client, whose threads become greenlets and whose ``requests`` / ``websocket-client`` sockets
become cooperative.  Same command line and JSON line as the other workers (``gevent_driver.py``),
plus ``--lift-limit``: raise ``engineio.payload.Payload.max_decode_packets`` (16) so that a poll
response with more than 16 packets does not abort the session.

Messages arrive through the ``message`` handler (python-engineio runs each in a new greenlet) into
a queue; ``disconnect`` puts a sentinel there.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engineio  # noqa: E402
import engineio.payload  # noqa: E402
import gevent.queue  # noqa: E402
from gevent_driver import BenchError, Closed, main  # noqa: E402

_CLOSED = object()
# python-engineio logs why it gives up ("Unexpected status code 413 ...") at WARNING: keep those
# on stderr (Python's last-resort handler), the orchestrator quotes the last line of a failure.
logging.getLogger("engineio.client").setLevel(logging.WARNING)


class PyeioConn:
    """An ``engineio.Client`` with a queue fed by its handlers."""

    def __init__(self, timeout: float) -> None:
        self.queue: Any = gevent.queue.Queue()
        self.client: Any = engineio.Client(request_timeout=timeout)
        self.client.on("message", self.queue.put)
        self.client.on("disconnect", self._on_disconnect)

    def _on_disconnect(self, reason: Any = None) -> None:
        self.queue.put(_CLOSED)

    def send(self, data: str | bytes) -> None:
        self.client.send(data)

    def receive(self, timeout: float) -> str | bytes:
        try:
            item = self.queue.get(timeout=timeout)
        except gevent.queue.Empty:
            raise TimeoutError from None
        if item is _CLOSED:
            self.queue.put(_CLOSED)
            raise Closed
        data: str | bytes = item
        return data

    @property
    def connected(self) -> bool:
        return bool(self.client.state == "connected")

    def close(self) -> None:
        self.client.disconnect()


class Pyeio:
    """Opens python-engineio clients."""

    name = "pyeio"

    def connect(self, url: str, transport: str, timeout: float) -> PyeioConn:
        conn = PyeioConn(timeout)
        transports = ["polling", "websocket"] if transport == "upgrade" else [transport]
        conn.client.connect(url, transports=transports)
        if transport == "upgrade" and conn.client.transport() != "websocket":
            conn.client.disconnect()
            raise BenchError("the upgrade did not happen (still on polling)")
        return conn


if __name__ == "__main__":
    if "--lift-limit" in sys.argv:
        engineio.payload.Payload.max_decode_packets = 1 << 30
        Pyeio.name = "pyeio-lifted"
    main(Pyeio())
