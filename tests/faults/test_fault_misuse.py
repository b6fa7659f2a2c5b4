"""Misuse: calls on a closed client, disconnects from odd places, raising callbacks, races."""

from __future__ import annotations

import logging

import gevent
import gevent.event
import pytest

import geventio
from geventio import CloseReason, ConnectError, ConnectionClosed, Packet, PacketId
from tests.faultkit import Bound
from tests.helpers import MODES, Mode, build, receive_all, spawn_catching, wait_parked, wait_until
from tests.servers import ServerHandle


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> Mode:
    return request.param  # type: ignore[no-any-return]


def test_send_after_close(server: ServerHandle, mode: Mode, bound: Bound) -> None:
    """send() or emit() after close: ConnectionClosed with the close reason, at once."""
    client = build(geventio.ClientBuilder(server.url), mode)
    client.send("sync")  # python-engineio sends its CLOSE only to a GET already parked
    assert client.receive(5) == "sync"
    if client.transport == "polling":
        wait_parked(server.url, client)
    client.send("cmd:close")
    client.wait(5)
    reason = client.close_reason
    assert reason in (CloseReason.SERVER_DISCONNECT, CloseReason.TRANSPORT_CLOSE)
    with bound(0.1):
        with pytest.raises(ConnectionClosed) as info:
            client.send("late")
        assert info.value.reason is reason
        with pytest.raises(ConnectionClosed):
            client.emit(Packet(PacketId.PING))
    client.disconnect()  # still fine, and it changes nothing
    assert client.close_reason is reason


def test_send_while_disconnecting(server: ServerHandle, bound: Bound) -> None:
    """send() while another greenlet disconnects: ConnectionClosed, or sent before the CLOSE."""
    client = geventio.ClientBuilder(server.url).build()
    sent: list[int] = []
    refused: list[ConnectionClosed] = []

    def sender() -> None:
        for i in range(10_000):
            try:
                client.send(f"s{i}")
            except ConnectionClosed as exc:
                refused.append(exc)
                return
            sent.append(i)
            under_way.set()
            if i % 50 == 0:
                gevent.sleep(0)

    under_way = gevent.event.Event()
    task = gevent.spawn(sender)
    assert under_way.wait(5), "the sender is under way"
    with bound(2.0):
        client.disconnect()
        task.get(timeout=2)
    assert refused, "the sender should have been refused once the client was closing"
    assert refused[0].reason is CloseReason.CLIENT_DISCONNECT


def test_disconnect_from_inside_callbacks(server: ServerHandle, mode: Mode, bound: Bound) -> None:
    """disconnect() from on_data, then again from on_close: one CLIENT_DISCONNECT, no deadlock."""
    closes: list[CloseReason] = []
    holder: list[geventio.Client] = []

    def on_close(reason: CloseReason) -> None:
        closes.append(reason)
        holder[0].disconnect()  # a second, nested disconnect is a no-op

    builder = (
        geventio.ClientBuilder(server.url)
        .on_data(lambda data: holder[0].disconnect())
        .on_close(on_close)
    )
    client = build(builder, mode)
    holder.append(client)
    with bound(2.0):
        client.send("bye")
        assert client.wait(5) is CloseReason.CLIENT_DISCONNECT
        wait_until(lambda: closes == [CloseReason.CLIENT_DISCONNECT])
    gevent.sleep(0.05)  # a window of real time: a second on_close would be queued by now
    assert closes == [CloseReason.CLIENT_DISCONNECT]


def test_disconnect_from_on_open_during_build(server: ServerHandle, bound: Bound) -> None:
    """disconnect() from on_open while build() runs: build ends, the client is closed."""
    holder: list[geventio.Client] = []
    closes: list[CloseReason] = []

    def on_open(handshake: geventio.Handshake) -> None:
        wait_until(lambda: bool(holder))
        holder[0].disconnect()

    builder = geventio.ClientBuilder(server.url).on_open(on_open).on_close(closes.append)
    with bound(3.0):
        client = builder.build()
        holder.append(client)
        assert client.wait(5) is CloseReason.CLIENT_DISCONNECT
    wait_until(lambda: closes == [CloseReason.CLIENT_DISCONNECT])


def test_disconnect_while_receive_waits(server: ServerHandle, mode: Mode, bound: Bound) -> None:
    """disconnect() from another greenlet while receive() waits: receive raises ConnectionClosed."""
    client = build(geventio.ClientBuilder(server.url), mode)
    waiters = [spawn_catching(client.receive) for _ in range(3)]
    gevent.idle()  # each waiter has run into its receive(), where it waits
    assert not any(w.dead for w in waiters)
    with bound(2.0):
        gevent.spawn(client.disconnect).get(timeout=5)
        results = [w.get(timeout=5) for w in waiters]
    assert all(isinstance(r, ConnectionClosed) for r in results)
    assert list(client) == []


def test_concurrent_disconnects(server: ServerHandle, mode: Mode, bound: Bound) -> None:
    """disconnect() from five greenlets at once: all return, on_close fires exactly once."""
    closes: list[CloseReason] = []
    client = build(geventio.ClientBuilder(server.url).on_close(closes.append), mode)
    for i in range(20):
        client.send(f"q{i}")
    with bound(2.0):
        gevent.joinall([gevent.spawn(client.disconnect) for _ in range(5)], timeout=5)
    assert not client.connected
    wait_until(lambda: closes == [CloseReason.CLIENT_DISCONNECT])


@pytest.mark.parametrize("kind", ["exception", "gevent-timeout"])
def test_a_callback_that_raises(
    server: ServerHandle, bound: Bound, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    """Callbacks that raise (even gevent.Timeout): logged, the client carries on, no hub error."""
    got: list[object] = []

    def on_data(data: object) -> None:
        if data == "boom":
            if kind == "exception":
                raise RuntimeError("user bug")
            with gevent.Timeout(0.01):
                gevent.sleep(1)
        got.append(data)

    def explode(arg: object) -> None:
        raise RuntimeError(f"user bug in a callback for {arg!r}")

    builder = (
        geventio.ClientBuilder(server.url)
        .on_open(explode)
        .on_packet(explode)
        .on_data(on_data)
        .on_upgrade(explode)
        .on_close(explode)
    )
    with caplog.at_level(logging.ERROR, logger="geventio"):
        client = builder.build()
        with bound(2.0):
            client.send("boom")
            client.send("after")
            wait_until(lambda: got == ["after"])
        assert client.connected
        client.disconnect()
    assert client.close_reason is CloseReason.CLIENT_DISCONNECT
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) >= 4  # open, packets, boom, close (upgrade where it happened)


def test_receive_with_on_data_registered(server: ServerHandle, bound: Bound) -> None:
    """receive() when on_data takes every message: Timeout, not a hang."""
    with geventio.ClientBuilder(server.url).on_data(lambda data: None).build() as client:
        client.send("x")
        with bound(1.0), pytest.raises(geventio.Timeout):
            client.receive(0.3)


def test_upgrade_twice(server: ServerHandle, bound: Bound) -> None:
    """upgrade() while an upgrade runs, and after it: ConnectError, the first one completes."""
    with geventio.ClientBuilder(server.url).build_polling() as client:
        first = spawn_catching(client.upgrade)
        gevent.sleep(0)  # no timed wait: the first upgrade() runs up to its first block
        with bound(0.1), pytest.raises(ConnectError, match="cannot upgrade now"):
            client.upgrade()
        assert first.get(timeout=5) is None
        assert client.transport == "websocket"
        with pytest.raises(ConnectError, match="cannot upgrade now"):
            client.upgrade()
        client.send("still here")
        assert client.receive(5) == "still here"


def test_many_senders_during_the_upgrade(server: ServerHandle, bound: Bound) -> None:
    """Ten greenlets send while the upgrade runs: every message once, each sender's order kept."""
    senders, count = 10, 60
    with geventio.ClientBuilder(server.url).build_polling() as client:
        under_way = gevent.event.Event()
        started: set[int] = set()

        def sender(n: int) -> None:
            for i in range(count):
                client.send(f"{n}:{i}")
                started.add(n)
                if len(started) == senders:
                    under_way.set()
                if i % 7 == 0:
                    gevent.sleep(0.001)

        tasks = [gevent.spawn(sender, n) for n in range(senders)]
        assert under_way.wait(5), "every sender has sent its first message"
        with bound(5.0):
            client.upgrade()
            gevent.joinall(tasks, timeout=10, raise_error=True)
        assert client.transport == "websocket"
        received = [str(m) for m in receive_all(client, senders * count)]
        for n in range(senders):
            assert [m for m in received if m.startswith(f"{n}:")] == [
                f"{n}:{i}" for i in range(count)
            ]
        client.send("cmd:count")
        assert client.receive(5) == str(senders * count)
