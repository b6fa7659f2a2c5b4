"""Load-test a Socket.IO chat service with Locust and geventio's ``SocketIOUser``.

Start the Flask-SocketIO service, then run Locust headless against it (``pip install -e
'.[locust]' flask-socketio gevent-websocket`` first)::

    python examples/flask_socketio_service.py --port 5001 &
    locust -f examples/locust_socketio.py --headless -u 50 -r 10 -t 20s --host http://127.0.0.1:5001

This locustfile is written for Locust's built-in ``locust.contrib.socketio.SocketIOUser``, in the
shape of Locust's own example (``examples/socketio/socketio_ex.py``): python-socketio's API on
``self.sio``, mixed with ``HttpUser``. Only its two imports marked ``geventio`` below differ
from what the built-in user needs; everything else runs unchanged on either.

Each user, in a loop: joins a room (``WSC join_room``: the round trip to the server's ack),
sends a chat message to it (``WSE send_message``) and waits for its own message to come back
(``WSR chat_message``), sends one more that is not reported (``Client.call`` on the base class),
leaves the room (``WSC leave_room``) and makes an HTTP request (``GET /``). Every other event the
server sends (``room_joined``) is a ``WSR`` sample of the catch-all ``on_message``.
"""

from __future__ import annotations

import itertools
from threading import Event  # under Locust, the standard library is gevent's (monkey-patched)
from typing import Any

import gevent
from locust import HttpUser, between, task

from geventio.contrib.locust import SocketIOUser  # built-in: from locust.contrib.socketio ...
from geventio.socketio import Client  # built-in: from socketio import Client

ROOM = "room1"


class ChatUser(SocketIOUser, HttpUser):
    """A chat user: Socket.IO for the chat, HTTP (``self.client``) for the rest of the site."""

    options: dict[str, Any] = {"reconnection": False}  # noqa: RUF012 - socketio.Client options
    wait_time = between(0.5, 1.5)
    host = "http://127.0.0.1:5001"  # the default; --host overrides it

    def on_start(self) -> None:
        self.numbers = itertools.count()
        self.expected = ""
        self.echoed = Event()
        self.sio.on("chat_message", self.on_chat_message)
        self.sio.connect(self.host, wait_timeout=10)
        self.sio_greenlet = gevent.spawn(self.sio.wait)  # ends once disconnected

    @task
    def chat(self) -> None:
        self.sio.call("join_room", {"room": ROOM})  # waits for the ack: a WSC sample
        self.expected = f"{self.sio.sid} says {next(self.numbers)}"
        self.echoed.clear()
        self.sio.emit("send_message", {"room": ROOM, "message": self.expected})
        if not self.echoed.wait(timeout=5):
            raise TimeoutError(f"{self.expected!r} did not come back")
        # the base class's call: sent and acknowledged, but not a sample
        Client.call(self.sio, "send_message", {"room": ROOM, "message": "unreported"})
        self.sio.call("leave_room", {"room": ROOM})
        self.client.get("/")

    def on_chat_message(self, message: str) -> None:
        """Every chat message to the room (all users' messages): one argument, the text."""
        if message == self.expected:
            self.echoed.set()
        self.sio.on_message("chat_message", message)  # a WSR sample, as the catch-all's

    def on_stop(self) -> None:
        self.sio.disconnect()
