"""A Flask-SocketIO service answering the events of Locust's Socket.IO example, and a few more.

Run it with ``python examples/flask_socketio_service.py [--port 5001]`` (5001 is the port Locust's
example locustfile, ``locust_socketio.py``, connects to; ``--port 0`` picks a free one). It prints
``serving Socket.IO on http://127.0.0.1:PORT`` once it listens, and stops on SIGINT or SIGTERM.
It is Flask-SocketIO (python-socketio's server) on gevent's pywsgi with gevent-websocket, so it
offers polling and WebSocket; nothing is monkey-patched.

Events, as Locust's ``examples/socketio/socketio_echo_server.py`` answers them:

- ``join_room {"room": R}``: joins R, emits ``room_joined`` to R, acks ``"Joined room R"``;
- ``leave_room {"room": R}``: leaves R (no ack arguments);
- ``send_message {"room": R, "message": M}``: emits ``chat_message M`` to R.

And, for the other examples and the tests:

- ``echo *args``: acks with the same arguments;
- ``slow_echo seconds *args``: the same, ``seconds`` later;
- ``reflect {"event": E, "args": [...]}``: emits E back to the sender with those arguments (any
  number, none included);
- an event with no handler is never acknowledged, so a ``call()`` of it times out;
- ``GET /`` answers ``ok`` (Locust's example also makes an HTTP request);
- ``GET /stats?tag=T``: how many clients that connected with ``auth={"tag": T}`` are connected
  now, and how many left for each reason (``{"connected": 1, "left": {"client disconnect":
  2}}``), as the server saw it: ``client disconnect`` when the client said goodbye,
  ``transport close`` when its connection just ended.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
from collections import Counter
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

__all__ = ["create_app", "main", "start_server"]


def create_app() -> tuple[Flask, Any]:
    """A new Flask app and its ``flask_socketio.SocketIO``, with the handlers above.

    :raises ImportError: without Flask-SocketIO.
    """
    import gevent  # noqa: PLC0415
    from flask_socketio import (  # noqa: PLC0415
        SocketIO,
        emit,
        join_room,
        leave_room,
    )

    app = Flask(__name__)
    sio = SocketIO(app, async_mode="gevent", cors_allowed_origins="*")

    tags: dict[str, str] = {}  # sid -> the tag of its auth
    connected: Counter[str] = Counter()
    left: dict[str, Counter[str]] = {}

    @app.get("/")
    def index() -> str:
        return "ok"

    @app.get("/stats")
    def stats() -> ResponseReturnValue:
        tag = request.args.get("tag", "")
        return jsonify(connected=connected[tag], left=left.get(tag, {}))

    def on_connect(auth: Any = None) -> None:
        tag = str(auth.get("tag", "")) if isinstance(auth, dict) else ""
        tags[request.sid] = tag  # type: ignore[attr-defined]
        connected[tag] += 1

    def on_disconnect(reason: Any = None) -> None:
        tag = tags.pop(request.sid, "")  # type: ignore[attr-defined]
        connected[tag] -= 1
        left.setdefault(tag, Counter())[str(reason)] += 1

    def on_join_room(data: dict[str, Any]) -> str:
        room = data["room"]
        join_room(room)
        emit("room_joined", f"{request.sid} joined {room}", to=room)  # type: ignore[attr-defined]
        return f"Joined room {room}"

    def on_leave_room(data: dict[str, Any]) -> None:
        leave_room(data["room"])

    def on_send_message(data: dict[str, Any]) -> None:
        emit("chat_message", data["message"], to=data["room"])

    def on_echo(*args: Any) -> tuple[Any, ...]:
        return args  # a tuple: acked as that many arguments

    def on_slow_echo(seconds: float, *args: Any) -> tuple[Any, ...]:
        gevent.sleep(seconds)
        return args

    def on_reflect(data: dict[str, Any]) -> None:
        emit(data["event"], tuple(data.get("args", ())))

    sio.on_event("connect", on_connect)
    sio.on_event("disconnect", on_disconnect)
    sio.on_event("join_room", on_join_room)
    sio.on_event("leave_room", on_leave_room)
    sio.on_event("send_message", on_send_message)
    sio.on_event("echo", on_echo)
    sio.on_event("slow_echo", on_slow_echo)
    sio.on_event("reflect", on_reflect)
    return app, sio


def start_server(host: str = "127.0.0.1", port: int = 0) -> Any:
    """Start the service in this process; returns the started ``gevent.pywsgi.WSGIServer``.

    Returns once the socket listens; the server then runs in the hub's greenlets (its port is
    ``server.server_port``). ``server.stop(timeout)`` stops it.

    :raises OSError: when the address cannot be bound.
    """
    import gevent.pool  # noqa: PLC0415
    from gevent import pywsgi  # noqa: PLC0415
    from geventwebsocket.handler import WebSocketHandler  # noqa: PLC0415

    class Server(pywsgi.WSGIServer):  # type: ignore[misc]
        def handle(self, sock: Any, address: Any) -> None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stalls
            super().handle(sock, address)

    app, _ = create_app()
    server = Server(
        (host, port), app, handler_class=WebSocketHandler, log=None, spawn=gevent.pool.Pool()
    )
    server.start()
    return server


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGINT or SIGTERM; exits 0."""
    import gevent.event  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    args = parser.parse_args(argv)
    server = start_server(args.host, args.port)
    stopped = gevent.event.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stopped.set)
    print(f"serving Socket.IO on http://{args.host}:{server.server_port}", flush=True)
    stopped.wait()
    server.stop(timeout=2)
    sys.exit(0)


if __name__ == "__main__":
    main()
