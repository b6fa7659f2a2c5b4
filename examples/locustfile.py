"""Load-test an Engine.IO echo server with Locust and geventio.

Start the embedded echo server, then run Locust headless against it (``pip install -e
'.[server,locust]'`` first)::

    geventio serve --port 4201 &
    locust -f examples/locustfile.py --headless -u 50 -r 10 -t 20s --host http://127.0.0.1:4201

Each simulated user holds one Engine.IO session (a ``WS connect`` sample when it opens) and, in
between waits of 0.5 to 1.5 s, either sends a message (a ``WSS message`` sample; the server's echo
comes back as a ``WSR message`` sample) or makes a request and measures the round trip to its
echo (a ``WSC echo`` sample).
"""

from __future__ import annotations

import itertools

from locust import between, task

from geventio.contrib.locust import EngineIOUser


class EchoUser(EngineIOUser):
    """One Engine.IO session per user: WebSocket after a polling handshake ("auto")."""

    host = "http://127.0.0.1:4201"  # the default; --host overrides it
    transport = "auto"  # or "websocket" (no polling at all), or "polling" (never upgrades)
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self._ids = itertools.count()  # numbers this user's requests, to match their replies
        super().on_start()

    @task(2)
    def send(self) -> None:
        """Fire and forget: the echo is reported as a received message."""
        self.eio.send("hello")

    @task(3)
    def echo(self) -> None:
        """A request and its reply: the echo carrying this request's id."""
        payload = f"echo {next(self._ids)}"
        self.eio.request(payload, match=lambda reply: reply == payload, timeout=5, name="echo")
