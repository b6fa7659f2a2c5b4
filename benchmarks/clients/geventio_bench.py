"""Benchmark worker for geventio, without monkey-patching (public API only).

::

    python benchmarks/clients/geventio_bench.py --scenario latency --transport websocket \\
        --message text --size 32 --n 1000 --url http://127.0.0.1:PORT

Prints one JSON line (see ``gevent_driver.py``).  ``--transport websocket`` is
``build_websocket()``, ``polling`` is ``build_polling()``, ``upgrade`` is ``build()`` (polling
handshake, then the upgrade), which must end on WebSocket.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gevent_driver import BenchError, Closed, main

import geventio


class GeventioConn:
    """A :class:`geventio.Client`, read through its inbox with ``receive()``."""

    def __init__(self, client: geventio.Client) -> None:
        self.client = client

    def send(self, data: str | bytes) -> None:
        self.client.send(data)

    def receive(self, timeout: float) -> str | bytes:
        try:
            return self.client.receive(timeout=timeout)
        except geventio.ConnectionClosed:
            raise Closed from None

    @property
    def connected(self) -> bool:
        return self.client.connected


class Geventio:
    """Opens geventio clients."""

    name = "geventio"
    lifted = False

    def connect(self, url: str, transport: str, timeout: float) -> GeventioConn:
        builder = geventio.ClientBuilder(url).timeout(timeout)
        if self.lifted:
            builder.max_packets_per_post(1 << 30)
        if transport == "websocket":
            client = builder.build_websocket()
        elif transport == "polling":
            client = builder.build_polling()
        else:
            client = builder.build()
            if client.transport != "websocket":
                client.disconnect()
                raise BenchError("build() stayed on polling")
        return GeventioConn(client)


if __name__ == "__main__":
    if "--lift-limit" in sys.argv:  # no 16-packet cap per POST (for servers without one)
        Geventio.name, Geventio.lifted = "geventio-lifted", True
    main(Geventio())
