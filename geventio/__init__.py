"""geventio: a gevent-native Engine.IO (protocol revision 4) client.

The public surface is re-exported here; everything in a ``_module`` is private.
"""

from __future__ import annotations

import logging

from geventio._builder import ClientBuilder, connect
from geventio._client import Client
from geventio._handshake import CloseReason, Handshake
from geventio._packet import Packet, PacketId
from geventio.exceptions import (
    ConnectError,
    ConnectionClosed,
    ConnectTimeout,
    EngineIOError,
    ProtocolError,
    Timeout,
    TransportError,
)

__version__ = "0.1.0"

__all__ = [
    "Client",
    "ClientBuilder",
    "CloseReason",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosed",
    "EngineIOError",
    "Handshake",
    "Packet",
    "PacketId",
    "ProtocolError",
    "Timeout",
    "TransportError",
    "__version__",
    "connect",
]

# Nothing is printed unless the application configures logging (no "last resort" output).
logging.getLogger("geventio").addHandler(logging.NullHandler())
