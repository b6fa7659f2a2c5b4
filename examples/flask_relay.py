"""A Flask app that relays each browser WebSocket to an upstream Engine.IO server via geventio.

Run it with ``python examples/flask_relay.py`` (it starts the embedded echo server as the
upstream) or ``python examples/flask_relay.py --upstream http://host:port``, then open the
printed URL: the page opens a WebSocket to ``/relay`` and every message you type goes to the
upstream and back. Ctrl-C (SIGINT) or SIGTERM stops it.

Each browser WebSocket gets its own geventio client and two greenlets, one per direction:

- the *reader* reads the browser socket and sends each message upstream (``client.send``);
- the *pump* takes each upstream message (``client.receive``) and writes it to the browser.

The view's own greenlet waits until either one ends, then tears the pair down: when the browser
leaves, the upstream client is disconnected; when the upstream closes (or the relay stops), the
browser socket is closed with code 1001 and a reason. A slow browser pushes back on the
upstream: the pump waits on the browser socket, the client's inbox fills, and the client stops
reading.

Nothing is monkey-patched: gevent's pywsgi, gevent-websocket and geventio all use gevent's
cooperative sockets.
"""

from __future__ import annotations

import argparse
import os
import signal
import struct
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
import gevent.lock
import gevent.pool
from flask import Flask, request
from flask.typing import ResponseReturnValue
from gevent import pywsgi
from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.handler import WebSocketHandler

import geventio
from geventio.contrib import server

#: The close code sent to the browser when the upstream session ends or the relay stops.
GOING_AWAY = 1001
#: The close code sent to the browser when the upstream cannot be reached ("internal error").
UPSTREAM_UNREACHABLE = 1011
#: Seconds to wait for the pump to stop once either side ended.
STOP_TIMEOUT = 5.0

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>geventio relay</title>
<form id="form"><input id="text" autofocus value="hello"> <button>send</button></form>
<pre id="log"></pre>
<script>
const log = (line) => { document.getElementById("log").textContent += line + "\\n"; };
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const ws = new WebSocket(scheme + location.host + "/relay");
ws.onopen = () => log("open");
ws.onmessage = (event) => log("< " + event.data);
ws.onclose = (event) => log(`closed: ${event.code} ${event.reason}`);
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const text = document.getElementById("text").value;
  ws.send(text);
  log("> " + text);
};
</script>
"""


def _serialized(write: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """``write`` behind a lock, so that frames from two greenlets never interleave.

    gevent-websocket writes each frame with one ``raw_write`` call, from whichever greenlet
    sends: the pump's messages, but also the reader's automatic PONG and close replies. Two
    greenlets inside ``sendall`` on one socket would mix their bytes (or raise
    ``ConcurrentObjectUseError``), so every write goes through this lock.
    """
    lock = gevent.lock.Semaphore()

    def locked_write(data: bytes) -> None:
        with lock:
            write(data)

    return locked_write


def _browser_to_upstream(ws: Any, client: geventio.Client) -> None:
    """The reader: browser messages to the upstream, until either side is closed."""
    try:
        while (message := ws.receive()) is not None:  # None: the browser closed the socket
            client.send(message)  # str is a text message, bytearray a binary one
    except (WebSocketError, geventio.ConnectionClosed):
        pass  # the browser socket or the upstream client was closed under us


def _upstream_to_browser(client: geventio.Client, ws: Any) -> None:
    """The pump: upstream messages to the browser, until either side is closed."""
    try:
        for message in client:  # ends once the client is closed
            ws.send(message)  # str as text, bytes as binary; waits while the browser is slow
    except WebSocketError:
        pass  # the browser is gone


def relay(ws: Any, upstream_url: str) -> None:
    """Relay one browser WebSocket (a ``geventwebsocket`` socket) to a new upstream session.

    Blocks the calling greenlet until either side has closed, then disconnects the upstream
    client and closes the browser socket if the browser did not: code 1001 when the upstream
    ended or the calling greenlet was killed (the server stops), 1011 when the upstream could
    not be reached. Leaves no greenlet behind, also when the calling greenlet is killed.
    """
    ws.raw_write = _serialized(ws.raw_write)
    try:
        client = geventio.ClientBuilder(upstream_url).timeout(5).build()
    except geventio.EngineIOError as exc:
        _close_browser(ws, UPSTREAM_UNREACHABLE, f"upstream unreachable: {exc}")
        return
    reader = gevent.spawn(_browser_to_upstream, ws, client)
    pump = gevent.spawn(_upstream_to_browser, client, ws)
    try:
        gevent.wait([reader, pump], count=1)  # the browser left, or the upstream closed
    finally:  # also when this greenlet is killed: the server stops
        upstream_ended = client.close_reason  # None while the upstream session is open
        client.disconnect()  # ends the pump's loop if it still runs; idempotent
        pump.join(STOP_TIMEOUT)
        # Still alive: the reader waits for the browser, or the pump for a browser that does
        # not read. Killing them is safe: the socket is closed right after.
        gevent.killall([reader, pump])
        if not ws.closed:  # the browser did not close it first
            why = f"upstream closed: {upstream_ended.value}" if upstream_ended else "relay stopped"
            _close_browser(ws, GOING_AWAY, why)


def _close_browser(ws: Any, code: int, reason: str) -> None:
    """Send the browser a close frame with ``code`` and ``reason``, and mark the socket closed.

    Not ``ws.close(code, reason)``: gevent-websocket 0.10.1 leaves the code out of the frame
    and, on Python 3, sends ``str(reason)`` for bytes (``"b'...'"``). So the frame is written
    here (the code, then at most 123 bytes of UTF-8), and ``closed`` is set as ``close()`` would.
    """
    text = reason.encode()[:123].decode(errors="ignore")  # not cut inside a character
    try:
        ws.send_frame(struct.pack("!H", code) + text.encode(), ws.OPCODE_CLOSE)
    except WebSocketError:
        pass  # the browser is gone already
    finally:
        ws.closed = True  # no more writes; gevent-websocket's handler then closes the connection


def create_app(upstream_url: str) -> Flask:
    """A Flask app: the test page at ``/`` and the WebSocket relay at ``/relay``.

    Serve it with :func:`serve` (gevent's pywsgi with gevent-websocket's handler): ``/relay``
    needs the ``wsgi.websocket`` that the handler puts in the environ.
    """
    app = Flask(__name__)

    @app.get("/")
    def page() -> ResponseReturnValue:
        return PAGE

    # websocket=True: Werkzeug routes a WebSocket request only to such a rule (plain HTTP
    # requests to it get 400), and gevent-websocket's handler puts the socket in the environ.
    @app.route("/relay", websocket=True)
    def relay_view() -> ResponseReturnValue:
        ws = request.environ.get("wsgi.websocket")
        if ws is None:  # served without geventwebsocket's WebSocketHandler
            return "serve this app with gevent-websocket's WebSocketHandler\n", 500
        relay(ws, upstream_url)
        return ""  # once upgraded, the HTTP response is ignored

    return app


def serve(app: Flask, host: str = "127.0.0.1", port: int = 5000) -> pywsgi.WSGIServer:
    """Start serving ``app`` with WebSocket support; returns the started server.

    Returns once the socket listens (``port=0`` picks a free port, see ``server.server_port``);
    the server runs in the hub's greenlets. ``server.stop(timeout)`` stops it, and kills the
    relays still open after ``timeout`` (each then closes its upstream client and its browser
    socket).

    :raises OSError: when the address cannot be bound.
    """
    # A pool, because without one pywsgi's stop() leaves the handlers (the open relays) running.
    wsgi = pywsgi.WSGIServer(
        (host, port), app, handler_class=WebSocketHandler, spawn=gevent.pool.Pool(), log=None
    )
    wsgi.start()
    return wsgi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--upstream",
        default=os.environ.get("RELAY_UPSTREAM"),
        help="the upstream Engine.IO URL (default: $RELAY_UPSTREAM, else an embedded echo server)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    args = parser.parse_args()

    embedded = None if args.upstream else server.start_server(port=0)
    upstream_url = args.upstream or server.url_of(embedded)
    wsgi = serve(create_app(upstream_url), args.host, args.port)
    print(f"relaying to {upstream_url}", flush=True)
    print(f"open http://{args.host}:{wsgi.server_port}/", flush=True)

    stop = gevent.event.Event()
    handlers = [gevent.signal_handler(sig, stop.set) for sig in (signal.SIGINT, signal.SIGTERM)]
    try:
        stop.wait()
    finally:
        for handler in handlers:
            handler.cancel()
        # Waits up to 1 s for the open relays, then kills them: each one disconnects its
        # upstream client and closes its browser socket (1001, "relay stopped") as it goes.
        wsgi.stop(timeout=1)
        if embedded is not None:
            embedded.stop(timeout=2)
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
