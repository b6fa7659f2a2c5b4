"""The embedded Engine.IO echo server: python-engineio on gevent's pywsgi with gevent-websocket.

It backs the demo, the examples, ``geventio serve`` and Locust runs. Every text or binary
message a client sends comes back to it unchanged (text is never JSON-decoded on the way), and a
new session is greeted with ``welcome`` when ``greeting`` says so. It runs in the calling
process on the gevent hub; nothing is monkey-patched.

Needs the ``server`` extra: ``pip install 'geventio[server]'``.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
from collections.abc import Sequence
from typing import Any

from geventio._url import bracket

__all__ = ["TRANSPORTS", "start_server", "url_of"]

#: The transports the server can offer, in the order it offers them.
TRANSPORTS = ("polling", "websocket")


class _VerbatimJSON:
    """A ``json`` module for python-engineio that never decodes what an embedded server receives.

    python-engineio runs ``json.loads`` on every text message ("[1]" would arrive as a list and
    go back re-encoded); a ``loads`` that fails makes it keep the raw string. python-engineio
    keeps its ``json`` in one class attribute for the whole process, though, and its client
    decodes the OPEN packet with it too: so ``loads`` fails only for the packets of the servers
    marked here (:data:`MARK`), found on the stack of python-engineio's own frames, and decodes as
    ``json.loads`` for any other python-engineio client or server in the process.
    """

    #: the attribute set on each embedded ``engineio.Server``
    MARK = "_geventio_verbatim"

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        return json.dumps(obj, **kwargs)

    @staticmethod
    def loads(s: Any, **kwargs: Any) -> Any:
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith("engineio."):
            owner = frame.f_locals.get("self")
            server = getattr(owner, "server", owner)  # a session of the server, or the server
            if getattr(server, _VerbatimJSON.MARK, False):
                raise ValueError("text messages are delivered verbatim")
            frame = frame.f_back  # type: ignore[assignment]
        return json.loads(s, **kwargs)


def start_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ping_interval: float = 25.0,
    ping_timeout: float = 20.0,
    transports: Sequence[str] = TRANSPORTS,
    path: str = "/engine.io/",
    greeting: str | None = None,
    max_payload: int = 1_000_000,
) -> Any:
    """Start an echo server and return the started ``gevent.pywsgi.WSGIServer``.

    Returns once the socket listens; the server then runs in the hub's greenlets. Its port is
    ``server.server_port`` (``port=0`` picks a free one). ``server.stop(timeout)`` stops it and
    ends every open connection (each one runs in the server's pool). Accepted sockets have
    ``TCP_NODELAY``: without it, small answers wait for the peer's delayed ACK (about 40 ms).

    :param ping_interval: seconds between the server's PINGs.
    :param ping_timeout: seconds the server waits for each PONG.
    :param transports: a non-empty subset of :data:`TRANSPORTS`.
    :param greeting: a text message sent to each new session at once, if not ``None``.
    :param max_payload: the ``maxPayload`` announced, and python-engineio's buffer limit.
    :raises ValueError: for an unknown transport or a bad interval.
    :raises OSError: when the address cannot be bound.
    :raises ImportError: when the ``server`` extra is not installed.
    """
    unknown = [t for t in transports if t not in TRANSPORTS]
    if unknown or not transports:
        raise ValueError(f"transports must be among {', '.join(TRANSPORTS)}, not {unknown}")
    if ping_interval <= 0 or ping_timeout <= 0:
        raise ValueError("ping_interval and ping_timeout must be positive")
    import engineio  # noqa: PLC0415 - the optional ``server`` extra
    import gevent.pool  # noqa: PLC0415
    from gevent import pywsgi  # noqa: PLC0415
    from geventwebsocket.handler import WebSocketHandler  # noqa: PLC0415

    class Server(pywsgi.WSGIServer):  # type: ignore[misc]
        def handle(self, sock: Any, address: Any) -> None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().handle(sock, address)

    eio = engineio.Server(
        async_mode="gevent",
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        transports=list(transports),
        max_http_buffer_size=max_payload,
        cors_allowed_origins="*",
        json=_VerbatimJSON,  # verbatim for this server's packets only: see there
        # python-engineio logs client mistakes at ERROR even with logger=False; under the
        # "geventio" logger they are printed only where the application configures logging
        logger=logging.getLogger("geventio.server"),
    )

    setattr(eio, _VerbatimJSON.MARK, True)

    def on_connect(sid: str, environ: dict[str, Any]) -> None:
        if greeting is not None:
            eio.send(sid, greeting)

    def on_message(sid: str, data: str | bytes) -> None:
        eio.send(sid, data)

    eio.on("connect", on_connect)
    eio.on("message", on_message)
    app = engineio.WSGIApp(eio, engineio_path=path.strip("/"))
    server = Server(
        (host, port), app, handler_class=WebSocketHandler, log=None, spawn=gevent.pool.Pool()
    )
    server.start()
    return server


def url_of(server: Any) -> str:
    """The URL of a started server, ``http://HOST:PORT``, for :class:`geventio.ClientBuilder`.

    ``server`` is what :func:`start_server` returned, or any started gevent server (a
    ``gevent.pywsgi.WSGIServer``). HOST is the address it is bound to (``localhost`` gives
    ``127.0.0.1``; a wildcard such as ``0.0.0.0`` is given as it is), in brackets for IPv6;
    PORT is the port it got (also with ``port=0``). The URL has no path: the client adds the
    Engine.IO path, ``/engine.io/`` by default.
    """
    return f"http://{bracket(server.server_host)}:{server.server_port}"
