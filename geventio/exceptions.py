"""The exception tree of geventio.

Every exception the library raises derives from :class:`EngineIOError`. Classes that describe a
timeout also derive from the builtin :class:`TimeoutError`, so ``except TimeoutError`` works.
"""

from __future__ import annotations

from geventio._reason import CloseReason

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosed",
    "EngineIOError",
    "ProtocolError",
    "Timeout",
    "TransportError",
]


class EngineIOError(Exception):
    """Base class of every exception raised by geventio."""


class TransportError(EngineIOError):
    """The network failed under an open session (reset, refused request, bad HTTP status).

    :ivar status: the HTTP status when the server answered with an error, else ``None``.
    :ivar body: the body of that answer (decoded leniently), else ``None``.
    """

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None):
        super().__init__(message)
        self.status = status
        self.body = body


class ConnectError(TransportError):
    """The session could not be opened.

    ``status`` and ``body`` are set when the server answered the handshake (or the WebSocket
    handshake) with an HTTP error, else they are ``None``.
    """


class ConnectTimeout(ConnectError, TimeoutError):
    """A connecting step (TCP, TLS, HTTP answer, WebSocket handshake, probe) ran too long."""


class Timeout(EngineIOError, TimeoutError):
    """:meth:`geventio.Client.receive` ran past its timeout."""


class ConnectionClosed(EngineIOError):
    """An operation needed an open client, and the client is closed.

    :ivar reason: the :class:`geventio.CloseReason` the client closed with.
    """

    def __init__(self, reason: CloseReason):
        super().__init__(f"connection closed: {reason.value}")
        self.reason = reason


class ProtocolError(EngineIOError):
    """The server broke the Engine.IO v4 protocol (bad packet, bad payload, bad handshake)."""
