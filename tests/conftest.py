"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, cast

import pytest

from tests.servers import (
    SERVER_KINDS,
    ServerFactory,
    ServerHandle,
    ServerKind,
    ServerOptions,
    ServerStartError,
    start_server,
    start_server_with,
)
from tests.servers._cache import SessionServers, start_failure

# Every test fails on an error reaching the gevent hub or a client greenlet left alive; the
# Socket.IO servers' fixtures (sio_server, sio_server_factory, ...): tests.servers.sio_fixtures.
pytest_plugins = ["tests.client_checks", "tests.faultkit", "tests.servers.sio_fixtures"]


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs without the machine's proxy variables (subprocesses inherit that).

    geventio reads them by default; a CI runner behind a proxy would otherwise send the local
    test traffic through it.
    """
    for name in list(os.environ):
        if name.lower() in _PROXY_VARIABLES:  # any case: the standard library reads them all
            monkeypatch.delenv(name, raising=False)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fault-report",
        metavar="FILE",
        help="write a Markdown table of the fault cases in tests/faults (what, bound, time)",
    )


# =========================================================================
# Real Engine.IO test servers (tests/servers/): python-engineio and Node engine.io
# =========================================================================


_SessionServers = SessionServers[ServerKind, ServerHandle]


@pytest.fixture(scope="session")
def _session_servers() -> Iterator[_SessionServers]:
    cache = _SessionServers(lambda kind: start_server_with(kind, ServerOptions()))
    yield cache
    cache.stop_all()


@pytest.fixture(params=SERVER_KINDS, ids=["py", "node"])
def server(request: pytest.FixtureRequest, _session_servers: _SessionServers) -> ServerHandle:
    """A default-configured server, once per kind: tests using it run against both."""
    kind: ServerKind = request.param
    return _session_servers.get(kind)


@pytest.fixture
def py_server(_session_servers: _SessionServers) -> ServerHandle:
    """The session's default-configured python-engineio server."""
    return _session_servers.get("python")


@pytest.fixture
def node_server(_session_servers: _SessionServers) -> ServerHandle:
    """The session's default-configured Node engine.io server."""
    return _session_servers.get("node")


@pytest.fixture
def server_factory() -> Iterator[ServerFactory]:
    """Start servers with custom options; all of them are stopped after the test."""
    started: list[ServerHandle] = []

    def factory(kind: ServerKind, **options: Any) -> ServerHandle:
        try:
            handle = start_server(kind, **options)
        except ServerStartError as exc:
            pytest.fail(start_failure(exc), pytrace=False)
        started.append(handle)
        return handle

    yield cast(ServerFactory, factory)
    for handle in started:
        handle.stop()
