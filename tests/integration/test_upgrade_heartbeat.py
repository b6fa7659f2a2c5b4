"""Upgrade and heartbeat against both real servers."""

from __future__ import annotations

import logging

import gevent
import pytest

import geventio
from geventio import ConnectError
from tests.helpers import MODES, Mode, build, wait_until
from tests.servers import ServerFactory, ServerHandle, ServerKind


def test_build_upgrades_and_reports_it(server: ServerHandle) -> None:
    upgrades: list[str] = []
    client = geventio.ClientBuilder(server.url).on_upgrade(upgrades.append).build()
    with client:
        assert client.transport == "websocket"
        client.send("cmd:transport")
        assert client.receive(5) == "websocket"
    assert upgrades == ["websocket"]


def test_build_websocket_with_upgrade(server: ServerHandle) -> None:
    with geventio.ClientBuilder(server.url).build_websocket_with_upgrade() as client:
        assert client.transport == "websocket"
        client.send("after upgrade")
        assert client.receive(5) == "after upgrade"


def test_build_polling_never_upgrades(server: ServerHandle) -> None:
    with geventio.ClientBuilder(server.url).build_polling() as client:
        gevent.sleep(0.2)  # a window of real time, in which an upgrade would start
        client.send("cmd:transport")
        assert client.receive(5) == "polling"
        assert client.transport == "polling"


@pytest.mark.parametrize("kind", ["python", "node"])
def test_no_websocket_on_the_server(
    server_factory: ServerFactory, kind: ServerKind, caplog: pytest.LogCaptureFixture
) -> None:
    """python-engineio offers the upgrade and refuses the probe (400); node offers none."""
    handle = server_factory(kind, transports=("polling",))
    with caplog.at_level(logging.INFO, logger="geventio"):
        client = geventio.ClientBuilder(handle.url).build()
    if kind == "python":
        assert client.handshake.upgrades == ("websocket",)
        assert any("staying on polling" in r.getMessage() for r in caplog.records)
    with client:
        assert client.transport == "polling"
        client.send("still here")
        assert client.receive(5) == "still here"
    with pytest.raises(ConnectError) as info:
        geventio.ClientBuilder(handle.url).build_websocket()
    assert info.value.status == 400
    with pytest.raises(ConnectError):
        geventio.ClientBuilder(handle.url).build_websocket_with_upgrade()
    with geventio.ClientBuilder(handle.url).build_with_fallback() as client:
        assert client.transport == "polling"


@pytest.mark.parametrize("kind", ["python", "node"])
def test_server_without_upgrades(server_factory: ServerFactory, kind: ServerKind) -> None:
    handle = server_factory(kind, upgrades=False)
    with geventio.ClientBuilder(handle.url).build() as client:
        assert client.handshake.upgrades == ()
        assert client.transport == "polling"
    with pytest.raises(ConnectError, match="offers no upgrade"):
        geventio.ClientBuilder(handle.url).build_websocket_with_upgrade()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["python", "node"])
def test_pong_keeps_the_session_alive(
    server_factory: ServerFactory, kind: ServerKind, mode: Mode
) -> None:
    # python-engineio rounds pingInterval down to whole seconds
    interval, timeout = (1000, 500) if kind == "python" else (200, 150)
    handle = server_factory(kind, ping_interval=interval, ping_timeout=timeout)
    pings: list[object] = []
    builder = geventio.ClientBuilder(handle.url).on_packet(
        lambda p: pings.append(p) if p.packet_id is geventio.PacketId.PING else None
    )
    with build(builder, mode) as client:
        gevent.sleep(3 * (interval + timeout) / 1000)
        assert client.connected
        assert len(pings) >= 2
        client.send("alive")
        assert client.receive(5) == "alive"


@pytest.mark.parametrize("mode", MODES)
def test_slow_callback_does_not_delay_pong(server_factory: ServerFactory, mode: Mode) -> None:
    handle = server_factory("node", ping_interval=200, ping_timeout=150)
    done: list[object] = []

    def slow(data: object) -> None:
        gevent.sleep(1.2)  # far longer than interval + timeout
        done.append(data)

    with build(geventio.ClientBuilder(handle.url).on_data(slow), mode) as client:
        client.send("slow")
        client.send("slower")
        wait_until(lambda: len(done) >= 2)
        assert done == ["slow", "slower"]
        assert client.connected
