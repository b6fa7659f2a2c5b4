"""The demo: an embedded python-engineio echo server and a geventio client, in one process.

Run it with ``python examples/echo.py``. Nothing is monkey-patched: the server (gevent's pywsgi
with gevent-websocket) and the client share the gevent hub cooperatively.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import geventio
from geventio.contrib import server


def start_server(port: int = 0) -> Any:
    """Start the embedded echo server on 127.0.0.1 in this process; returns the started server."""
    return server.start_server(port=port, ping_interval=5, ping_timeout=5, greeting="welcome")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("geventwebsocket").setLevel(logging.WARNING)
    echo_server = start_server()
    url = server.url_of(echo_server)
    print(f"embedded Engine.IO server on {url}")
    try:
        with (
            geventio.ClientBuilder(url)
            .on_upgrade(lambda transport: print(f"upgraded to {transport}"))
            .on_close(lambda reason: print(f"closed: {reason.value}"))
            .build()
        ) as client:
            print(f"connected: sid={client.sid} transport={client.transport}")
            print(f"server says: {client.receive(timeout=5)!r}")
            for message in ("hello", "héllo wörld", b"\x00\x01binary"):
                start = time.perf_counter()
                client.send(message)
                echo = client.receive(timeout=5)
                elapsed = (time.perf_counter() - start) * 1000
                print(f"sent {message!r}, echoed {echo!r} in {elapsed:.2f} ms")
                assert echo == message
    finally:
        echo_server.stop(timeout=2)
    print("done")


if __name__ == "__main__":
    main()
