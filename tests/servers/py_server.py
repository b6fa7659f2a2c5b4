"""Real python-engineio test server (gevent + gevent-websocket).

Run as its own process::

    python tests/servers/py_server.py --port 0 [--ping-interval MS] [--ping-timeout MS]
        [--transports polling,websocket] [--no-upgrades] [--max-payload BYTES]
        [--tls-cert PEM --tls-key PEM [--client-ca PEM]]

Prints ``LISTENING <port>`` on stdout once it accepts connections and exits
with status 0 on SIGTERM.  Its behaviour mirrors ``node_server.js`` exactly;
see ``tests/servers/README.md`` for the protocol of test commands.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import ssl
import struct
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import engineio
import gevent
import gevent.event
import gevent.ssl
from gevent.pywsgi import WSGIServer
from geventwebsocket.handler import WebSocketHandler

HOST = "127.0.0.1"
PATH = "/engine.io/"
VALID_TRANSPORTS = ("polling", "websocket")

Headers = dict[str, str]
Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


# --------------------------------------------------------------------------- CLI


def parse_transports(value: str) -> list[str]:
    transports = [t.strip() for t in value.split(",") if t.strip()]
    if not transports or any(t not in VALID_TRANSPORTS for t in transports):
        raise argparse.ArgumentTypeError(f"invalid transports: {value!r}")
    return transports


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="python-engineio test server")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ping-interval", type=int, default=25000, help="milliseconds")
    parser.add_argument("--ping-timeout", type=int, default=20000, help="milliseconds")
    parser.add_argument("--transports", type=parse_transports, default=list(VALID_TRANSPORTS))
    parser.add_argument("--no-upgrades", action="store_true")
    parser.add_argument("--max-payload", type=int, default=1_000_000, help="bytes")
    parser.add_argument("--tls-cert", help="PEM certificate (chain): serve HTTPS/WSS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--client-ca", help="PEM CA: require client certificates it signed")
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.client_ca is not None and args.tls_cert is None:
        parser.error("--client-ca needs --tls-cert and --tls-key")
    return args


# ----------------------------------------------------------------- helpers


class VerbatimJSON:
    """JSON "module" for python-engineio that never decodes received text.

    python-engineio's ``Packet.decode`` runs ``json.loads`` on every text
    packet and hands the *decoded* value to the message handler ("[1]" becomes
    a list, "true" becomes ``True``, "null" becomes ``None`` ...).  Re-encoding
    such values is not byte-exact, so we make ``loads`` always fail, which makes
    engineio fall back to the raw string.  ``dumps`` is still needed for the
    OPEN packet and error bodies.
    """

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        return json.dumps(obj, **kwargs)

    @staticmethod
    def loads(s: Any, **kwargs: Any) -> NoReturn:
        raise ValueError("text messages are delivered verbatim")


def query_of(environ: Environ) -> dict[str, str]:
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {key: values[0] for key, values in query.items()}


def headers_of(environ: Environ) -> Headers:
    """Request headers from a WSGI environ, with lowercased names."""
    headers: Headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def is_uint(text: str) -> bool:
    return text.isascii() and text.isdigit()


def sticky_cookie() -> tuple[str, str]:
    return ("Set-Cookie", f"sticky=s-{secrets.token_hex(8)}; Path=/")


def is_handshake(environ: Environ) -> bool:
    return environ.get("REQUEST_METHOD") == "GET" and "sid" not in query_of(environ)


def is_denied(environ: Environ) -> bool:
    """Handshake query ``deny=1``: the server refuses the session."""
    return query_of(environ).get("deny") == "1"


def ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """Server-side TLS context for ``--tls-cert``/``--tls-key`` (and ``--client-ca``).

    A ``gevent.ssl.SSLContext``: its sockets are cooperative (a stdlib context
    would do blocking TLS handshakes that stall the whole server).
    """
    if args.tls_cert is None:
        return None
    context: ssl.SSLContext = gevent.ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    if args.client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS
        context.load_verify_locations(cafile=args.client_ca)
    return context


# ---------------------------------------------------------- the test server


class EngineIOTestApp:
    """The engine.io application plus the per-session bookkeeping."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.eio: Any = engineio.Server(
            async_mode="gevent",
            ping_interval=args.ping_interval / 1000,
            ping_timeout=args.ping_timeout / 1000,
            max_http_buffer_size=args.max_payload,
            # python-engineio would advertise the websocket upgrade even when
            # that transport is disabled (and then refuse it); node does not.
            # as python-engineio really does: with websocket refused, the upgrade is still offered
            allow_upgrades=not args.no_upgrades,
            transports=args.transports,
            cors_allowed_origins=[],  # like the node server: no CORS/origin checks
            json=VerbatimJSON,
            logger=False,
        )
        self.polling_headers: dict[str, Headers] = {}
        self.websocket_headers: dict[str, Headers] = {}
        self.counts: dict[str, int] = {}
        # sid -> {"messages": n, "closed": bool}; never cleared (see cmd:stats)
        self.stats: dict[str, dict[str, Any]] = {}
        # sid -> number of its long-poll GETs being answered now (see cmd:polls)
        self.polls: dict[str, int] = {}
        self.eio.on("connect", self.on_connect)
        self.eio.on("message", self.on_message)
        self.eio.on("disconnect", self.on_disconnect)
        self.app: WSGIApp = engineio.WSGIApp(self.eio, engineio_path=PATH)

    # -- engine.io events

    def on_connect(self, sid: str, environ: Environ) -> bool:
        if is_denied(environ):
            # python-engineio answers 401 with the JSON body "Unauthorized"
            return False
        self.counts[sid] = 0
        self.stats[sid] = {"messages": 0, "closed": False}
        query = query_of(environ)
        if query.get("transport") == "websocket":
            self.websocket_headers[sid] = headers_of(environ)
        else:
            self.polling_headers[sid] = headers_of(environ)
        if "greet" in query:
            self.eio.send(sid, query["greet"])
        return True

    def on_disconnect(self, sid: str, reason: str = "") -> None:
        if sid in self.stats:
            self.stats[sid]["closed"] = True
        self.counts.pop(sid, None)
        self.polling_headers.pop(sid, None)
        self.websocket_headers.pop(sid, None)

    def on_message(self, sid: str, data: str | bytes) -> None:
        if isinstance(data, bytes) or not data.startswith("cmd:"):
            self._count(sid)
            self.eio.send(sid, data)
        else:
            self.run_command(sid, data)

    def _count(self, sid: str) -> None:
        self.counts[sid] = self.counts.get(sid, 0) + 1
        self.stats.setdefault(sid, {"messages": 0, "closed": False})["messages"] += 1

    # -- commands

    def run_command(self, sid: str, text: str) -> None:
        parts = text.split(":")
        command = parts[1] if len(parts) > 1 else ""
        args = parts[2:]
        if command == "stats" and args and args[0]:
            target = text[len("cmd:stats:") :]
            stats = self.stats.get(target, {"messages": 0, "closed": False})
            self.eio.send(sid, json.dumps(stats, separators=(",", ":")))
        elif command == "polls" and args and args[0]:
            self.eio.send(sid, str(self.polls.get(text[len("cmd:polls:") :], 0)))
        elif command == "push" and len(args) == 1 and is_uint(args[0]):
            for i in range(int(args[0])):
                self.eio.send(sid, f"push {i}")
        elif command == "pushbin" and len(args) == 2 and all(map(is_uint, args)):
            count, size = int(args[0]), int(args[1])
            if size < 4:
                self.eio.send(sid, f"unknown command: {text}")
                return
            for i in range(count):
                self.eio.send(sid, struct.pack(">I", i) + bytes(size - 4))
        elif command == "close" and not args:
            self.eio.disconnect(sid)
        elif command == "headers" and not args:
            reply = {
                "polling": self.polling_headers.get(sid),
                "websocket": self.websocket_headers.get(sid),
            }
            self.eio.send(sid, json.dumps(reply, separators=(",", ":")))
        elif command == "transport" and not args:
            self.eio.send(sid, self.eio.transport(sid))
        elif command == "count" and not args:
            self.eio.send(sid, str(self.counts.get(sid, 0)))
        else:
            self.eio.send(sid, f"unknown command: {text}")

    # -- WSGI side

    def record_request(self, environ: Environ) -> None:
        """Remember the headers of every request that carries a known sid."""
        query = query_of(environ)
        sid = query.get("sid")
        if sid is None or sid not in self.eio.sockets:
            return
        if "wsgi.websocket" in environ:
            self.websocket_headers[sid] = headers_of(environ)
        elif query.get("transport") == "polling":
            self.polling_headers[sid] = headers_of(environ)

    def wsgi(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(PATH):
            return self.app(environ, start_response)
        self.record_request(environ)
        if not is_handshake(environ):
            return self.answer(environ, start_response)

        def start_handshake_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            if status.startswith("200"):
                headers = [*headers, sticky_cookie()]
            return start_response(status, headers, exc_info)

        return self.app(environ, start_handshake_response)

    def answer(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Hand a request with a sid to python-engineio, counting the long-poll GETs it holds.

        python-engineio answers a GET within this call (it waits there for packets to send), so
        the count covers a GET from its arrival to its answer, as the node server's does.
        """
        query = query_of(environ)
        sid = query.get("sid")
        if sid is None or query.get("transport") != "polling" or environ["REQUEST_METHOD"] != "GET":
            return self.app(environ, start_response)
        self.polls[sid] = self.polls.get(sid, 0) + 1
        try:
            return self.app(environ, start_response)
        finally:
            self.polls[sid] -= 1

    def refuse_upgrade_early(self, handler: Any) -> bool:
        """gevent-websocket ``pre_start_hook``: True means "handle as plain HTTP".

        gevent-websocket answers ``101 Switching Protocols`` to any WebSocket
        request *before* the application runs, so python-engineio could only
        refuse by closing the freshly opened WebSocket.  For the requests the
        node server rejects before the WebSocket handshake (transport not
        enabled, unknown sid, unsupported protocol, path outside /engine.io/,
        a handshake with ``deny=1``) we return True: python-engineio (or
        WSGIApp's 404) then answers with a plain HTTP error response, as node
        does.  For ``deny=1`` that is the 401 from the connect handler refusing.
        """
        environ: Environ = handler.environ
        if not environ.get("PATH_INFO", "").startswith(PATH):
            return True  # plain 404 from WSGIApp
        query = query_of(environ)
        if query.get("transport") not in self.eio.transports:
            return True
        sid = query.get("sid")
        if sid is None:
            return query.get("EIO") != "4" or is_denied(environ)
        return sid not in self.eio.sockets


class StickyWebSocketHandler(WebSocketHandler):  # type: ignore[misc]
    """Adds the sticky cookie to the 101 response of a WebSocket handshake."""

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        if status.startswith("101") and "sid" not in query_of(self.environ):
            headers = [*headers, sticky_cookie()]
        return super().start_response(status, headers, exc_info)


class TestWSGIServer(WSGIServer):  # type: ignore[misc]
    """A failed TLS handshake (e.g. no client certificate) logs one line, no traceback."""

    def wrap_socket_and_handle(self, client_socket: Any, address: Any) -> Any:
        try:
            return super().wrap_socket_and_handle(client_socket, address)
        except ssl.SSLError as exc:
            sys.stderr.write(f"TLS handshake with {address} failed: {exc}\n")
            return None


# ------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    test_server = EngineIOTestApp(args)
    context = ssl_context(args)
    tls: dict[str, Any] = {} if context is None else {"ssl_context": context}
    http_server: Any = TestWSGIServer(
        (HOST, args.port),
        test_server.wsgi,
        handler_class=StickyWebSocketHandler,
        log=None,
        **tls,
    )
    http_server.pre_start_hook = test_server.refuse_upgrade_early
    http_server.start()

    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)

    sys.stdout.write(f"LISTENING {http_server.server_port}\n")
    sys.stdout.flush()

    stop.wait()
    http_server.close()
    http_server.stop(timeout=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
