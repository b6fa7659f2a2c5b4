"""Socket.IO in one process: an embedded python-socketio server and a geventio.socketio client.

Run it with ``python examples/socketio_demo.py`` (needs the ``server`` extra). Nothing is
monkey-patched: the server (python-socketio on gevent's pywsgi with gevent-websocket) and the
client share the gevent hub cooperatively. The client code is what you would write for
python-socketio's ``socketio.Client``, with one import changed.
"""

from __future__ import annotations

import logging
from typing import Any

import gevent.event

from geventio import socketio  # was: import socketio


def start_server(port: int = 0) -> Any:
    """A python-socketio server on 127.0.0.1 in this process: it greets each client, echoes
    ``echo`` events back, and answers ``add`` calls. Returns the started ``WSGIServer``."""
    import socketio as server_socketio  # noqa: PLC0415 - python-socketio, the ``server`` extra
    from gevent import pywsgi  # noqa: PLC0415
    from geventwebsocket.handler import WebSocketHandler  # noqa: PLC0415

    sio = server_socketio.Server(async_mode="gevent")

    @sio.event
    def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        sio.emit("welcome", {"user": (auth or {}).get("user")}, to=sid)

    @sio.event
    def echo(sid: str, *args: Any) -> None:
        sio.emit("echo", args, to=sid)

    @sio.event
    def add(sid: str, a: int, b: int) -> int:
        return a + b

    server = pywsgi.WSGIServer(
        ("127.0.0.1", port), server_socketio.WSGIApp(sio), handler_class=WebSocketHandler, log=None
    )
    server.start()
    return server


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    server = start_server()
    url = f"http://127.0.0.1:{server.server_port}"
    print(f"embedded Socket.IO server on {url}")

    sio = socketio.Client()
    echoed = gevent.event.AsyncResult()

    @sio.event
    def connect() -> None:
        print(f"connected: sid={sio.get_sid()} transport={sio.transport()}")

    @sio.on("welcome")
    def welcome(data: dict[str, Any]) -> None:
        print(f"server says welcome to {data['user']}")

    @sio.on("echo")
    def echo(*args: Any) -> None:
        echoed.set(args)

    @sio.event
    def disconnect(reason: str) -> None:
        print(f"disconnected: {reason}")

    try:
        sio.connect(url, auth={"user": "ada"})
        print(f"add(2, 3) = {sio.call('add', (2, 3), timeout=5)}")
        sio.emit("echo", ("text", {"nested": b"\x00\x01 bytes"}))
        print(f"echoed: {echoed.get(timeout=5)!r}")
        sio.disconnect()
    finally:
        server.stop(timeout=2)
    print("done")


if __name__ == "__main__":
    main()
