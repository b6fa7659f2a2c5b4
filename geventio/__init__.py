"""geventio: a gevent-native Engine.IO (protocol revision 4) client.

The public surface is re-exported here; everything in a ``_module`` is private.

The names are imported on first use (PEP 562), so ``import geventio`` by itself imports neither
``ssl`` nor urllib3. That lets ``from geventio.contrib.locust import EngineIOUser`` be the first
line of a script: Locust's ``gevent.monkey.patch_all()`` then runs before ``ssl`` is imported,
as gevent requires.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geventio._builder import ClientBuilder, connect
    from geventio._client import Client
    from geventio._handshake import Handshake
    from geventio._packet import Packet, PacketId
    from geventio._reason import CloseReason
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

#: Where each public name is defined; imported by :func:`__getattr__` on first use.
_HOMES = {
    "Client": "geventio._client",
    "ClientBuilder": "geventio._builder",
    "connect": "geventio._builder",
    "CloseReason": "geventio._reason",
    "Handshake": "geventio._handshake",
    "Packet": "geventio._packet",
    "PacketId": "geventio._packet",
    **dict.fromkeys(
        (
            "ConnectError",
            "ConnectionClosed",
            "ConnectTimeout",
            "EngineIOError",
            "ProtocolError",
            "Timeout",
            "TransportError",
        ),
        "geventio.exceptions",
    ),
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use, then keep it in this module.

    :raises AttributeError: for a name that is not public.
    """
    if name == "exceptions":  # a public module, which ``import geventio`` used to bring along
        return importlib.import_module("geventio.exceptions")
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


# Nothing is printed unless the application configures logging (no "last resort" output).
logging.getLogger("geventio").addHandler(logging.NullHandler())
