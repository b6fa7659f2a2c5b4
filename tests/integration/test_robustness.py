"""Failure paths: stalled peers, closes during an upgrade, failed builds."""

from __future__ import annotations

import json
import os

import pytest

import geventio
from geventio import ConnectError
from tests.helpers import wait_until
from tests.servers import ServerFactory, ServerHandle


def test_a_backlog_does_not_delay_the_pong(server_factory: ServerFactory) -> None:
    handle = server_factory("node", ping_interval=300, ping_timeout=300)
    with geventio.ClientBuilder(handle.url).build_polling() as client:
        for i in range(5000):
            client.send(f"m{i}")
        received = [client.receive(10) for _ in range(5000)]
        assert received == [f"m{i}" for i in range(5000)]
        assert client.connected


def test_a_failed_build_after_the_handshake_closes_the_session(
    server_factory: ServerFactory,
) -> None:
    handle = server_factory("python", upgrades=False)
    calls: list[object] = []
    builder = (
        geventio.ClientBuilder(handle.url)
        .on_open(lambda hs: calls.append(("open", hs.sid)))
        .on_close(lambda reason: calls.append(("close", reason)))
    )
    with pytest.raises(ConnectError, match="offers no upgrade"):
        builder.build_websocket_with_upgrade()
    assert [c[0] for c in calls] == ["open", "close"]  # type: ignore[index]
    sid = calls[0][1]  # type: ignore[index]
    with geventio.ClientBuilder(handle.url).build() as probe:
        probe.send(f"cmd:stats:{sid}")
        assert json.loads(str(probe.receive(5))) == {"messages": 0, "closed": True}


def test_path_without_trailing_slash(server: ServerHandle) -> None:
    with geventio.ClientBuilder(server.url + "/engine.io").build() as client:
        client.send("slash")
        assert client.receive(5) == "slash"


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_no_socket_is_left_open_after_close(server: ServerHandle) -> None:
    builder = geventio.ClientBuilder(server.url)
    with builder.build():  # warm up: imports, resolver, pools
        pass
    before = _open_fds()
    for _ in range(20):
        for client in (builder.build(), builder.build_polling(), builder.build_websocket()):
            client.send("x")
            assert client.receive(5) == "x"
            client.disconnect()
    wait_until(lambda: _open_fds() <= before)  # fails on a descriptor left open
