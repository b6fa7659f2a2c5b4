"""Real python-socketio test server (gevent + gevent-websocket).

Run as its own process::

    python tests/servers/sio_py_server.py --port 0 [--ping-interval MS] [--ping-timeout MS]
        [--transports polling,websocket]

Prints ``LISTENING <port>`` on stdout once it accepts connections and exits
with status 0 at once on SIGTERM/SIGINT, dropping every connection without a
goodbye.  Its behaviour mirrors ``sio_flask_server.py`` and
``sio_node_server.js``; see the Socket.IO section of ``tests/servers/README.md``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

import gevent
import gevent.event
import socketio
from gevent.pywsgi import WSGIServer
from geventwebsocket.handler import WebSocketHandler

HOST = "127.0.0.1"
NAMESPACES = ("/", "/auth")
VALID_TRANSPORTS = ("polling", "websocket")
BINARY = {"bin": b"\x00\x01\xff", "list": [b"a", 1, {"deep": b"b"}]}

Environ = dict[str, Any]


# --------------------------------------------------------------------------- CLI


def parse_transports(value: str) -> list[str]:
    transports = [t.strip() for t in value.split(",") if t.strip()]
    if not transports or any(t not in VALID_TRANSPORTS for t in transports):
        raise argparse.ArgumentTypeError(f"invalid transports: {value!r}")
    return transports


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="python-socketio test server")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ping-interval", type=int, default=25000, help="milliseconds")
    parser.add_argument("--ping-timeout", type=int, default=20000, help="milliseconds")
    parser.add_argument("--transports", type=parse_transports, default=list(VALID_TRANSPORTS))
    return parser.parse_args(argv)


# ----------------------------------------------------------------- helpers


def auth_accepted(namespace: str, auth: Any) -> bool:
    """Namespace ``/auth`` wants ``auth`` with ``"token": "secret"``; ``/`` takes anyone."""
    return namespace != "/auth" or (isinstance(auth, dict) and auth.get("token") == "secret")


def whoami(sid: str, environ: Environ, auth: Any) -> dict[str, Any]:
    """The ``whoami`` ack: namespace sid, header X-Test, query q and auth of the connection."""
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {
        "sid": sid,
        "headers": {"x-test": environ.get("HTTP_X_TEST")},
        "query": {"q": query["q"][0] if "q" in query else None},
        "auth": auth,
    }


# ---------------------------------------------------------- the test server


class SocketIOTestApp:
    """The python-socketio server with the scripted handlers, in ``/`` and ``/auth``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.sio: Any = socketio.Server(
            async_mode="gevent",
            ping_interval=args.ping_interval / 1000,
            ping_timeout=args.ping_timeout / 1000,
            transports=args.transports,
            cors_allowed_origins=[],  # like the node server: no CORS/origin checks
            logger=False,
            engineio_logger=False,
        )
        self.auth: dict[tuple[str, str], Any] = {}  # (namespace, sid) -> auth
        for namespace in NAMESPACES:
            self.register(namespace)
        self.app: Any = socketio.WSGIApp(self.sio)

    def register(self, ns: str) -> None:
        """Install the scripted handlers in namespace ``ns``."""
        sio = self.sio
        handlers: dict[str, Callable[..., Any]] = {
            "connect": lambda sid, environ, auth: self.connect(ns, sid, auth),
            "disconnect": lambda sid, *reason: self.auth.pop((ns, sid), None),
            "echo": lambda sid, *args: self.echo(ns, sid, args),
            "ack": lambda sid, *args: args,
            "ask": lambda sid, spec: self.ask(ns, sid, spec),
            "flood": lambda sid, spec: self.flood(ns, sid, spec),
            "binary": lambda sid: self.binary(ns, sid),
            "whoami": lambda sid: whoami(
                sid, sio.get_environ(sid, namespace=ns), self.auth.get((ns, sid))
            ),
            "disconnect_me": lambda sid: sio.disconnect(sid, namespace=ns),
            "close_me": lambda sid: sio.eio.disconnect(sio.manager.eio_sid_from_sid(sid, ns)),
            "emit_to_client_then_ack": lambda sid: self.first_then_done(ns, sid),
        }
        # "noack" has no handler on purpose: an unhandled event is never acknowledged.
        for event, handler in handlers.items():
            sio.on(event, handler, namespace=ns)

    # -- handlers

    def connect(self, ns: str, sid: str, auth: Any) -> None:
        """Refuse ``/auth`` without the token, else remember auth and emit ``welcome``.

        python-socketio sends what the connect handler emits before the CONNECT packet.
        """
        if not auth_accepted(ns, auth):
            raise socketio.exceptions.ConnectionRefusedError("bad token")
        auth = auth or None  # no auth (or an empty one) reads null, as on node
        self.auth[(ns, sid)] = auth
        self.sio.emit("welcome", {"sid": sid, "auth": auth}, to=sid, namespace=ns)

    def echo(self, ns: str, sid: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
        self.sio.emit("echo", args, to=sid, namespace=ns)
        return args  # the ack, if the client asked for one

    def ask(self, ns: str, sid: str, spec: dict[str, Any]) -> None:
        def asked(*ack: Any) -> None:
            self.sio.emit("asked", (list(ack),), to=sid, namespace=ns)

        args = tuple(spec.get("args", ()))
        self.sio.emit(spec["event"], args, to=sid, namespace=ns, callback=asked)

    def flood(self, ns: str, sid: str, spec: dict[str, Any]) -> None:
        count, size = int(spec["count"]), int(spec["size"])

        def run() -> None:
            payload = "x" * size
            for i in range(count):
                self.sio.emit("num", (i, payload), to=sid, namespace=ns)
            self.sio.emit("flood_done", count, to=sid, namespace=ns)

        self.sio.start_background_task(run)

    def binary(self, ns: str, sid: str) -> dict[str, Any]:
        self.sio.emit("binary", BINARY, to=sid, namespace=ns)
        return BINARY

    def first_then_done(self, ns: str, sid: str) -> str:
        self.sio.emit("first", to=sid, namespace=ns)
        return "done"


# ------------------------------------------------------------------- main


def serve(app: Any, port: int) -> None:
    """Serve ``app`` on 127.0.0.1:``port`` until SIGTERM/SIGINT, then exit 0 at once.

    :param app: the WSGI application (WebSocket requests go through gevent-websocket).
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
    serve(SocketIOTestApp(args).app, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
