"""Real Engine.IO servers (python-engineio and Node engine.io) for the test suite.

``py_server.py`` and ``node_server.js`` are standalone programs; this package
only exposes the helpers that start them (see ``_runner``).
"""

from __future__ import annotations

from servers._runner import (
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

__all__ = [
    "SERVER_KINDS",
    "NodeSetupError",
    "ServerFactory",
    "ServerHandle",
    "ServerKind",
    "ServerOptions",
    "ServerStartError",
    "start_server",
    "start_server_with",
    "transport_tuple",
]
