"""A Flask app, served by gevent's pywsgi, whose view calls an upstream Engine.IO server.

Run it with ``python examples/flask_upstream.py [UPSTREAM_URL]`` (without a URL it starts the
embedded echo server from ``echo.py``), then open ``http://127.0.0.1:5000/ask?q=hello``.

One geventio client is shared by every request. Each request tags its message with an id and
waits, blocking only its own greenlet, for the reply carrying the same id; ``on_data`` routes
replies to the waiting requests, so concurrent requests share the connection safely.
"""

from __future__ import annotations

import itertools
import sys

import gevent.event
import gevent.lock
from echo import start_server  # the embedded echo server of the demo (examples/echo.py)
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from gevent import pywsgi

import geventio
from geventio.contrib.server import url_of


class Upstream:
    """A lazily connected client with request/response on top of it."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: geventio.Client | None = None
        self._lock = gevent.lock.Semaphore()
        self._ids = itertools.count()
        self._pending: dict[str, gevent.event.AsyncResult] = {}

    def _on_data(self, data: str | bytes) -> None:
        if isinstance(data, str) and ":" in data:
            key, _, answer = data.partition(":")
            waiter = self._pending.pop(key, None)
            if waiter is not None:
                waiter.set(answer)

    def _connected(self) -> geventio.Client:
        with self._lock:  # one connect at a time
            if self._client is None or not self._client.connected:
                self._client = (
                    geventio.ClientBuilder(self._url).timeout(5).on_data(self._on_data).build()
                )
            return self._client

    def close(self) -> None:
        """Disconnect the shared client, if it was connected."""
        if self._client is not None:
            self._client.disconnect()

    def ask(self, question: str, timeout: float = 5.0) -> str:
        """Send ``question`` and block this greenlet until its reply.

        :raises geventio.EngineIOError: when the upstream cannot be reached.
        :raises gevent.Timeout: when no reply comes within ``timeout``.
        """
        key = str(next(self._ids))
        waiter = gevent.event.AsyncResult()
        self._pending[key] = waiter
        try:
            self._connected().send(f"{key}:{question}")
            return str(waiter.get(timeout=timeout))
        finally:
            self._pending.pop(key, None)


def create_app(upstream_url: str) -> Flask:
    """A Flask app with one ``/ask`` view that relays ``q`` to the upstream server."""
    app = Flask(__name__)
    upstream = Upstream(upstream_url)
    app.config["upstream"] = upstream  # so that the app's owner can close it

    @app.get("/ask")
    def ask() -> ResponseReturnValue:
        question = request.args.get("q", "")
        try:
            answer = upstream.ask(question)
        except (geventio.EngineIOError, gevent.Timeout) as exc:
            return jsonify(error=str(exc) or type(exc).__name__), 502
        return jsonify(question=question, answer=answer)

    return app


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else url_of(start_server())
    app = create_app(url)
    print(f"relaying to {url}; try http://127.0.0.1:5000/ask?q=hello")
    pywsgi.WSGIServer(("127.0.0.1", 5000), app).serve_forever()


if __name__ == "__main__":
    main()
