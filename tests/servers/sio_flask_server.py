"""Real Flask-SocketIO test server (gevent + gevent-websocket).

Run as its own process::

    python tests/servers/sio_flask_server.py --port 0 [--ping-interval MS] [--ping-timeout MS]
        [--transports polling,websocket]

Prints ``LISTENING <port>`` on stdout once it accepts connections and exits
with status 0 at once on SIGTERM/SIGINT, dropping every connection without a
goodbye.  The same scripted behaviour as ``sio_py_server.py`` (whose
python-socketio server Flask-SocketIO wraps), written the Flask-SocketIO way:
handlers find the client in ``flask.request``.  It is a standalone program, so
its few helpers are repeated here rather than imported.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import flask
import flask_socketio
import gevent
import gevent.event
from gevent.pywsgi import WSGIServer
from geventwebsocket.handler import WebSocketHandler
from socketio.exceptions import ConnectionRefusedError as Refused

HOST = "127.0.0.1"
NAMESPACES = ("/", "/auth")
VALID_TRANSPORTS = ("polling", "websocket")
BINARY = {"bin": b"\x00\x01\xff", "list": [b"a", 1, {"deep": b"b"}]}


# --------------------------------------------------------------------------- CLI


def parse_transports(value: str) -> list[str]:
    transports = [t.strip() for t in value.split(",") if t.strip()]
    if not transports or any(t not in VALID_TRANSPORTS for t in transports):
        raise argparse.ArgumentTypeError(f"invalid transports: {value!r}")
    return transports


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Flask-SocketIO test server")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ping-interval", type=int, default=25000, help="milliseconds")
    parser.add_argument("--ping-timeout", type=int, default=20000, help="milliseconds")
    parser.add_argument("--transports", type=parse_transports, default=list(VALID_TRANSPORTS))
    return parser.parse_args(argv)


# ---------------------------------------------------------- the test server


def create_app(args: argparse.Namespace) -> tuple[flask.Flask, Any]:
    """The Flask app and its ``SocketIO``, with the scripted handlers in ``/`` and ``/auth``."""
    app = flask.Flask(__name__)
    socketio: Any = flask_socketio.SocketIO(
        app,
        async_mode="gevent",
        ping_interval=args.ping_interval / 1000,
        ping_timeout=args.ping_timeout / 1000,
        transports=args.transports,
        cors_allowed_origins=[],  # like the node server: no CORS/origin checks
        manage_session=False,  # no Flask session cookies in the way
        logger=False,
        engineio_logger=False,
    )
    for namespace in NAMESPACES:
        register(socketio, namespace)
    return app, socketio


def register(socketio: Any, ns: str) -> None:
    """Install the scripted handlers in namespace ``ns``."""
    auths: dict[str, Any] = {}  # namespace sid -> auth

    def sid() -> str:
        return str(flask.request.sid)  # type: ignore[attr-defined]

    def connect(auth: Any = None) -> None:
        # Flask-SocketIO (python-socketio) sends what this emits before the CONNECT packet.
        if ns == "/auth" and not (isinstance(auth, dict) and auth.get("token") == "secret"):
            raise Refused("bad token")
        auth = auth or None  # no auth (or an empty one) reads null, as on node
        auths[sid()] = auth
        flask_socketio.emit("welcome", {"sid": sid(), "auth": auth})

    def disconnect(*reason: Any) -> None:
        auths.pop(sid(), None)

    def echo(*args: Any) -> tuple[Any, ...]:
        flask_socketio.emit("echo", args)
        return args  # the ack, if the client asked for one

    def ack(*args: Any) -> tuple[Any, ...]:
        return args

    def ask(spec: dict[str, Any]) -> None:
        to = sid()

        def asked(*ack: Any) -> None:
            socketio.emit("asked", (list(ack),), to=to, namespace=ns)

        flask_socketio.emit(spec["event"], tuple(spec.get("args", ())), callback=asked)

    def flood(spec: dict[str, Any]) -> None:
        to, count, size = sid(), int(spec["count"]), int(spec["size"])

        def run() -> None:
            payload = "x" * size
            for i in range(count):
                socketio.emit("num", (i, payload), to=to, namespace=ns)
            socketio.emit("flood_done", count, to=to, namespace=ns)

        socketio.start_background_task(run)

    def binary() -> dict[str, Any]:
        flask_socketio.emit("binary", BINARY)
        return BINARY

    def whoami() -> dict[str, Any]:
        request = flask.request
        return {
            "sid": sid(),
            "headers": {"x-test": request.headers.get("X-Test")},
            "query": {"q": request.args.get("q")},
            "auth": auths.get(sid()),
        }

    def disconnect_me() -> None:
        flask_socketio.disconnect()  # this namespace only

    def close_me() -> None:
        server = socketio.server
        server.eio.disconnect(server.manager.eio_sid_from_sid(sid(), ns))

    def emit_to_client_then_ack() -> str:
        flask_socketio.emit("first")
        return "done"

    handlers: dict[str, Callable[..., Any]] = {
        "connect": connect,
        "disconnect": disconnect,
        "echo": echo,
        "ack": ack,
        "ask": ask,
        "flood": flood,
        "binary": binary,
        "whoami": whoami,
        "disconnect_me": disconnect_me,
        "close_me": close_me,
        "emit_to_client_then_ack": emit_to_client_then_ack,
    }
    # "noack" has no handler on purpose: an unhandled event is never acknowledged.
    for event, handler in handlers.items():
        socketio.on_event(event, handler, namespace=ns)


# ------------------------------------------------------------------- main


def serve(app: flask.Flask, port: int) -> None:
    """Serve ``app`` on 127.0.0.1:``port`` until SIGTERM/SIGINT, then exit 0 at once.

    :param app: the Flask app (Flask-SocketIO wrapped its ``wsgi_app``); WebSocket
        requests go through gevent-websocket.
    :param port: 0 picks a free port; the address is reused, so a restart on the
        same port works right after a stop.
    """
    http_server: Any = WSGIServer((HOST, port), app, handler_class=WebSocketHandler, log=None)
    http_server.start()  # gevent's server sockets set SO_REUSEADDR

    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)

    sys.stdout.write(f"LISTENING {http_server.server_port}\n")
    sys.stdout.flush()
    stop.wait()
    # A crash, as far as clients can tell: no Engine.IO/Socket.IO goodbye, no
    # WebSocket close frame; the kernel closes every socket.
    os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    app, _socketio = create_app(args)
    serve(app, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
