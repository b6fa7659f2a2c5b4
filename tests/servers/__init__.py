"""Real Engine.IO and Socket.IO servers for the test suite.

``py_server.py`` and ``node_server.js`` (Engine.IO), ``sio_py_server.py``,
``sio_flask_server.py`` and ``sio_node_server.js`` (Socket.IO) are standalone
programs; this package only exposes the helpers that start them (see
``_runner`` and ``_sio_runner``).
"""

from __future__ import annotations

from ._runner import (
    SERVER_KINDS,
    NodeSetupError,
    ServerFactory,
    ServerHandle,
    ServerKind,
    ServerOptions,
    ServerStartError,
    start_server,
    start_server_with,
    transport_tuple,
)
from ._sio_runner import (
    SIO_SERVER_KINDS,
    SioServerFactory,
    SioServerHandle,
    SioServerKind,
    SioServerOptions,
    start_sio_server,
    start_sio_server_with,
)

__all__ = [
    "SERVER_KINDS",
    "SIO_SERVER_KINDS",
    "NodeSetupError",
    "ServerFactory",
    "ServerHandle",
    "ServerKind",
    "ServerOptions",
    "ServerStartError",
    "SioServerFactory",
    "SioServerHandle",
    "SioServerKind",
    "SioServerOptions",
    "start_server",
    "start_server_with",
    "start_sio_server",
    "start_sio_server_with",
    "transport_tuple",
]
