"""Pytest fixtures for the real Socket.IO test servers (a plugin of tests/conftest.py).

- ``sio_server``: one default-configured server per kind (``py``: python-socketio, ``flask``:
  Flask-SocketIO, ``node``: Node socket.io), shared by the session; a test using it runs
  against the three. A server a test stopped or killed is started again (on a new port) for
  the next test; one a test restarted keeps its port.
- ``sio_py_server``, ``sio_flask_server``, ``sio_node_server``: the shared server of one kind.
- ``sio_server_factory(kind, ping_interval=, ping_timeout=, transports=, port=)``: a fresh
  server, stopped after the test. ``port=<a former server's port>`` starts a server on that
  port again; ``handle.restart()`` does the same in place (for reconnection tests).

The fixtures live here, next to the servers they start; ``tests/conftest.py`` loads this module
as a plugin (``pytest_plugins``), so that every test folder can use them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest

from . import (
    SIO_SERVER_KINDS,
    ServerStartError,
    SioServerFactory,
    SioServerHandle,
    SioServerKind,
    SioServerOptions,
    start_sio_server,
    start_sio_server_with,
)
from ._cache import SessionServers, start_failure

_SessionSioServers = SessionServers[SioServerKind, SioServerHandle]


@pytest.fixture(scope="session")
def _session_sio_servers() -> Iterator[_SessionSioServers]:
    cache = _SessionSioServers(lambda kind: start_sio_server_with(kind, SioServerOptions()))
    yield cache
    cache.stop_all()


@pytest.fixture(params=SIO_SERVER_KINDS, ids=list(SIO_SERVER_KINDS))
def sio_server(
    request: pytest.FixtureRequest, _session_sio_servers: _SessionSioServers
) -> SioServerHandle:
    """A default-configured Socket.IO server, once per kind: a test using it runs against all 3."""
    kind: SioServerKind = request.param
    return _session_sio_servers.get(kind)


@pytest.fixture
def sio_py_server(_session_sio_servers: _SessionSioServers) -> SioServerHandle:
    """The session's default-configured python-socketio server."""
    return _session_sio_servers.get("py")


@pytest.fixture
def sio_flask_server(_session_sio_servers: _SessionSioServers) -> SioServerHandle:
    """The session's default-configured Flask-SocketIO server."""
    return _session_sio_servers.get("flask")


@pytest.fixture
def sio_node_server(_session_sio_servers: _SessionSioServers) -> SioServerHandle:
    """The session's default-configured Node socket.io server."""
    return _session_sio_servers.get("node")


@pytest.fixture
def sio_server_factory() -> Iterator[SioServerFactory]:
    """Start Socket.IO servers with custom options; all of them are stopped after the test."""
    started: list[SioServerHandle] = []

    def factory(kind: SioServerKind, **options: Any) -> SioServerHandle:
        try:
            handle = start_sio_server(kind, **options)
        except ServerStartError as exc:
            pytest.fail(start_failure(exc), pytrace=False)
        started.append(handle)
        return handle

    yield cast(SioServerFactory, factory)
    for handle in started:
        handle.stop()
