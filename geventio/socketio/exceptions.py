"""The Socket.IO exception tree: python-socketio 5.x's names, with the same meanings.

``from geventio.socketio import exceptions`` then ``except exceptions.ConnectionError`` works as
with python-socketio. Two additions: :class:`TimeoutError` is also the built-in ``TimeoutError``,
and :class:`ProtocolError` is what a server that breaks the Socket.IO v5 protocol causes (it is
logged, and the connection is closed as a ``'transport error'``).
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "BadNamespaceError",
    "ConnectionError",
    "ConnectionRefusedError",
    "DisconnectedError",
    "NotConnectedError",
    "ProtocolError",
    "SocketIOError",
    "TimeoutError",
]


class SocketIOError(Exception):
    """Base of every exception ``geventio.socketio`` raises."""


class ConnectionError(SocketIOError):
    """The connection could not be made, or an operation needs one and there is none.

    When a namespace was refused by the server, ``args`` are the ``connect_error`` data: the
    message, then the extra data the server sent, if any.
    """


class ConnectionRefusedError(ConnectionError):
    """Raised by a server-side connect handler to refuse a connection; a client never raises it.

    :param args: the message, then optional extra data, as python-socketio takes them.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        if not args:
            self.error_args: dict[str, Any] = {"message": "Connection rejected by server"}
            return
        self.error_args = {"message": str(args[0])}
        if len(args) == 2:
            self.error_args["data"] = args[1]
        elif len(args) > 2:
            self.error_args["data"] = list(args[1:])


class TimeoutError(SocketIOError, builtins.TimeoutError):
    """``call()`` or ``SimpleClient.receive()`` waited longer than its ``timeout``."""


class BadNamespaceError(SocketIOError):
    """``emit``/``call``/``send`` on a namespace that is not connected."""


class DisconnectedError(SocketIOError):
    """``SimpleClient``: the connection is gone (and no reconnection will bring it back)."""


class ProtocolError(SocketIOError):
    """The server sent something that is not a valid Socket.IO v5 packet."""


class NotConnectedError(ConnectionError, BadNamespaceError):
    """``emit``/``send``/``call`` while the client has no connection (before ``connect()``,
    during a reconnection, after ``disconnect()``).

    Both a :class:`ConnectionError` and a :class:`BadNamespaceError`: python-socketio raises the
    latter in that case, so code written for it keeps catching it.
    """
