"""A Flask app, served by gevent's pywsgi, whose view calls an upstream Socket.IO service.

Run it with ``python examples/flask_socketio_client.py [UPSTREAM_URL]`` (without a URL it starts
the Flask-SocketIO service of ``flask_socketio_service.py`` in this process), then open
``http://127.0.0.1:5000/ask?q=hello``.

One ``geventio.socketio.Client`` is shared by every request. Each request ``call()``\\ s the
upstream's ``echo`` event and blocks only its own greenlet until the server acknowledges;
acks are matched by id, so concurrent requests share the connection safely. Nothing is
monkey-patched: the client, the view and pywsgi share the gevent hub.
"""

from __future__ import annotations

import sys

import gevent.lock
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from flask_socketio_service import start_server  # the demo's service (examples/)
from gevent import pywsgi

from geventio import socketio
from geventio.contrib.server import url_of


class Upstream:
    """A lazily connected, shared Socket.IO client."""

    def __init__(self, url: str) -> None:
        self._url = url
        # reconnection=False: a lost connection is opened again by the next request instead
        self._sio = socketio.Client(reconnection=False, request_timeout=5)
        self._lock = gevent.lock.Semaphore()

    def _connected(self) -> socketio.Client:
        with self._lock:  # one connect at a time; the others wait for it
            if not self._sio.connected:
                self._sio.connect(self._url, transports=["websocket"], wait_timeout=5)
            return self._sio

    def close(self) -> None:
        """Disconnect the shared client (idempotent)."""
        self._sio.disconnect()

    def ask(self, question: str, timeout: float = 5.0) -> str:
        """Call the upstream's ``echo`` event; blocks this greenlet until its ack.

        :raises geventio.socketio.ConnectionError: the upstream cannot be reached.
        :raises geventio.socketio.TimeoutError: no answer within ``timeout``.
        """
        return str(self._connected().call("echo", question, timeout=timeout))


def create_app(upstream_url: str) -> Flask:
    """A Flask app with one ``/ask`` view that relays ``q`` to the upstream service."""
    app = Flask(__name__)
    upstream = Upstream(upstream_url)
    app.config["upstream"] = upstream  # so that the app's owner can close it

    @app.get("/ask")
    def ask() -> ResponseReturnValue:
        question = request.args.get("q", "")
        try:
            answer = upstream.ask(question)
        except socketio.SocketIOError as exc:
            return jsonify(error=f"{type(exc).__name__}: {exc}"), 502
        return jsonify(question=question, answer=answer)

    return app


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else url_of(start_server())
    app = create_app(url)
    print(f"calling {url}; try http://127.0.0.1:5000/ask?q=hello")
    pywsgi.WSGIServer(("127.0.0.1", 5000), app).serve_forever()


if __name__ == "__main__":
    main()
