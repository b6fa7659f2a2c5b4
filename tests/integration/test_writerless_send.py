"""The writer-less send path against the Node server: no writer greenlet while nothing waits.

An idle session holds its reader alone; a ``send()`` on a writable WebSocket is written by the
caller, with no switch to another greenlet; many senders at once keep each one's order.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import gevent
import greenlet  # type: ignore[import-untyped]
import pytest

import geventio
from geventio._session import Session
from tests.client_checks import live_greenlets
from tests.helpers import receive_all, wait_until
from tests.servers import ServerHandle


def _session(client: geventio.Client) -> Session:
    return client._session


class Switches:
    """Counts greenlet switches while active (``greenlet.settrace``)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            self.count += 1


class CountingSocket:
    """A socket's stand-in that counts ``send`` calls and passes everything on."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.sends = 0

    def send(self, *args: Any) -> int:
        self.sends += 1
        return self._sock.send(*args)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@pytest.fixture
def switches() -> Iterator[Switches]:
    counter = Switches()
    previous = greenlet.settrace(counter)
    try:
        yield counter
    finally:
        greenlet.settrace(previous)


@pytest.mark.parametrize("method", ["build_websocket", "build_polling"])
def test_an_idle_session_holds_its_reader_alone(node_server: ServerHandle, method: str) -> None:
    """After some traffic, an idle session (no callback) runs one greenlet: the reader."""
    client = getattr(geventio.ClientBuilder(node_server.url), method)()
    try:
        for i in range(20):
            client.send(f"m{i}")
        assert receive_all(client, 20) == [f"m{i}" for i in range(20)]
        wait_until(lambda: len(live_greenlets("geventio")) == 1)
        assert live_greenlets("geventio") == [_session(client)._reader]
        assert _session(client)._writer.greenlet is None
    finally:
        client.disconnect()


def test_a_send_on_a_writable_websocket_is_written_by_the_caller(
    node_server: ServerHandle, switches: Switches
) -> None:
    """send(): no switch to any other greenlet, and the frame is on the wire when it returns."""
    with geventio.ClientBuilder(node_server.url).build_websocket() as client:
        session = _session(client)
        client.send("warm-up")
        assert client.receive(5) == "warm-up"
        gevent.idle()  # the cork of the warm-up's write is released
        switches.count = 0
        client.send("hello")
        assert switches.count == 0
        assert not session._conn.has_output  # taken from the outbox...
        assert session._ws is not None
        assert not session._ws.backlogged  # ...and written
        assert session._writer.greenlet is None
        assert client.receive(5) == "hello"


def test_an_echo_round_trip_costs_four_switches(
    node_server: ServerHandle, switches: Switches
) -> None:
    """send() then receive(): to the hub, to the reader, to the hub, back (no writer's two)."""
    with geventio.ClientBuilder(node_server.url).build_websocket() as client:
        for _ in range(10):
            client.send("x")
            client.receive(5)
        rounds = 200
        switches.count = 0
        for _ in range(rounds):
            client.send("x")
            assert client.receive(5) == "x"
        # 4 each; a little slack for a read split in two or a timer turn of the hub
        assert switches.count / rounds <= 4.5, switches.count / rounds


@pytest.mark.parametrize("send_buffer", [256, 1 << 20])
def test_fifty_concurrent_senders_keep_their_order(
    node_server: ServerHandle, send_buffer: int
) -> None:
    """50 greenlets send at once, yielding at random: each one's messages arrive in order.

    A small send buffer makes senders block and the writer start and stop in between.
    """
    senders, each = 50, 100
    rng = random.Random(13)
    pauses = [[rng.random() < 0.2 for _ in range(each)] for _ in range(senders)]
    builder = geventio.ClientBuilder(node_server.url).send_buffer(send_buffer)
    with builder.build_websocket() as client:

        def send(index: int) -> None:
            for j in range(each):
                client.send(f"{index}:{j}:" + "p" * (j % 7) * 50)
                if pauses[index][j]:
                    gevent.idle()

        greenlets = [gevent.spawn(send, i) for i in range(senders)]
        got = receive_all(client, senders * each, timeout=20)
        gevent.joinall(greenlets, timeout=5, raise_error=True)
    seen: dict[int, list[int]] = {i: [] for i in range(senders)}
    for message in got:
        assert isinstance(message, str)
        index, j, _ = message.split(":")
        seen[int(index)].append(int(j))
    assert all(order == list(range(each)) for order in seen.values())


def test_a_burst_of_sends_is_coalesced_until_the_caller_yields(node_server: ServerHandle) -> None:
    """The first send() of a burst is written at once; the rest wait for one write at the yield.

    A loop of send() calls thus costs one socket write, not one each, and still no greenlet.
    """
    with geventio.ClientBuilder(node_server.url).build_websocket() as client:
        session = _session(client)
        client.send("warm-up")
        assert client.receive(5) == "warm-up"
        gevent.idle()
        assert session._ws is not None
        counting = CountingSocket(session._ws._sock)
        session._ws._sock = counting
        for i in range(100):
            client.send(f"b{i}")
        assert session._conn.queued_bytes == sum(len(f"b{i}") + 1 for i in range(1, 100))
        gevent.idle()  # the hub callback writes the 99 others in one go
        assert not session._conn.has_output
        assert counting.sends == 2
        assert session._writer.greenlet is None
        assert receive_all(client, 100) == [f"b{i}" for i in range(100)]
