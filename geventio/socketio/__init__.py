"""geventio.socketio: a Socket.IO v5 client on geventio, with python-socketio 5.x's sync API.

``import geventio.socketio as socketio`` in code written for python-socketio's ``Client`` and
``SimpleClient``; the contract is python-socketio's, for the subset it documents here. It never
monkey-patches, starts no thread and installs no signal handler.
"""

from __future__ import annotations

from geventio.socketio import exceptions
from geventio.socketio._client import Client
from geventio.socketio._handlers import ClientNamespace
from geventio.socketio._simple import SimpleClient
from geventio.socketio.exceptions import (
    BadNamespaceError,
    ConnectionError,
    ConnectionRefusedError,
    DisconnectedError,
    NotConnectedError,
    ProtocolError,
    SocketIOError,
    TimeoutError,
)

__all__ = [
    "BadNamespaceError",
    "Client",
    "ClientNamespace",
    "ConnectionError",
    "ConnectionRefusedError",
    "DisconnectedError",
    "NotConnectedError",
    "ProtocolError",
    "SimpleClient",
    "SocketIOError",
    "TimeoutError",
    "exceptions",
]
