"""Why a session closed: :class:`CloseReason`, a value with no dependency (a leaf module).

It sits apart so that :mod:`geventio.exceptions` (``ConnectionClosed.reason``) and the sans-IO core
can both import it without importing each other.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["CloseReason"]


class CloseReason(str, Enum):
    """Why a client closed; passed to ``on_close`` and returned by ``Client.wait()``."""

    CLIENT_DISCONNECT = "client disconnect"
    SERVER_DISCONNECT = "server disconnect"
    PING_TIMEOUT = "ping timeout"
    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"
