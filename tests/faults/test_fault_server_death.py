"""A server that dies, restarts or goes silent under an open session, on both real servers.

The close reasons match the JS reference client (engine.io-client): a failed long-poll is an
"xhr poll error", i.e. ``transport error`` (so also the 400 "Session ID unknown" of a restarted
server); a WebSocket that ends is ``transport close``; a server that stops pinging is
``ping timeout``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import gevent
import pytest

import geventio
from geventio import CloseReason, ConnectionClosed, TransportError
from tests.faultkit import Bound
from tests.faults.faultproxy import FaultProxy
from tests.helpers import MODES, Mode, build, wait_parked, wait_until
from tests.servers import ServerFactory, ServerKind

KINDS: list[ServerKind] = ["python", "node"]
# How long a dead transport may take to close the client: the kernel ends the sockets of a killed
# process at once, so this is scheduling slack on a loaded machine, not a timer of the client.
DEATH_BOUND = 2.0
# What a restarted server answers a poll with an unknown sid.
UNKNOWN_SID = {"python": "Invalid session", "node": "Session ID unknown"}


@dataclass
class Watched:
    """A client's on_error and on_close calls, recorded."""

    errors: list[geventio.EngineIOError] = field(default_factory=list)
    closes: list[CloseReason] = field(default_factory=list)

    def builder(self, url: str) -> geventio.ClientBuilder:
        """A builder whose clients report their on_error and on_close calls here."""
        return geventio.ClientBuilder(url).on_error(self.errors.append).on_close(self.closes.append)

    def closed_with(self, client: geventio.Client, reason: CloseReason) -> None:
        """The client closed with ``reason``, on_close fired once, receive() says so."""
        assert client.close_reason is reason
        assert not client.connected
        wait_until(lambda: bool(self.closes), 2.0)
        gevent.sleep(0.05)  # a second on_close would be queued by now
        assert self.closes == [reason]
        with pytest.raises(ConnectionClosed) as info:
            client.receive(1)
        assert info.value.reason is reason


def _flushed(client: geventio.Client) -> bool:
    """Everything queued has been sent: an empty outbox, no POST in flight, no write under way."""
    session = client._session
    return session._conn.flushed and not session._writer.lock.locked()


def _echo(client: geventio.Client) -> None:
    client.send("echo")
    assert client.receive(5) == "echo"


@pytest.mark.parametrize("kind", KINDS)
def test_fault_killed_during_a_parked_long_poll(
    server_factory: ServerFactory, kind: ServerKind, bound: Bound
) -> None:
    """A server killed during a parked long-poll: TRANSPORT_ERROR at once, on_error typed."""
    handle = server_factory(kind)
    watched = Watched()
    builder = watched.builder(handle.url)
    with builder.build_polling() as client:
        _echo(client)
        wait_parked(handle.url, client)  # the next GET is parked on the server
        with bound(DEATH_BOUND):
            handle.kill()
            assert client.wait(DEATH_BOUND) is CloseReason.TRANSPORT_ERROR
        watched.closed_with(client, CloseReason.TRANSPORT_ERROR)
        [error] = watched.errors
        assert isinstance(error, TransportError)
        assert error.status is None  # no HTTP answer: the connection ended


@pytest.mark.parametrize("mode", ["websocket", "upgrade"])
@pytest.mark.parametrize("kind", KINDS)
def test_fault_killed_while_the_websocket_reader_waits(
    server_factory: ServerFactory, kind: ServerKind, mode: Mode, bound: Bound
) -> None:
    """A server killed while the WebSocket reader waits: TRANSPORT_CLOSE at once, no on_error."""
    handle = server_factory(kind)
    watched = Watched()
    builder = watched.builder(handle.url)
    with build(builder, mode) as client:
        _echo(client)
        gevent.idle()  # the reader handled the echo and waits in its read again
        with bound(DEATH_BOUND):
            handle.kill()
            assert client.wait(DEATH_BOUND) is CloseReason.TRANSPORT_CLOSE
        watched.closed_with(client, CloseReason.TRANSPORT_CLOSE)
        assert watched.errors == []


@pytest.mark.parametrize("kind", KINDS)
def test_fault_restarted_server_on_polling(
    server_factory: ServerFactory, kind: ServerKind, bound: Bound
) -> None:
    """A restarted server behind a proxy: the old sid's poll gets 400, TRANSPORT_ERROR(status)."""
    first = server_factory(kind)
    with FaultProxy(first.port) as proxy:
        watched = Watched()
        with watched.builder(proxy.url).build_polling() as client:
            _echo(client)
            wait_parked(first.url, client)  # the next GET is parked on the first server
            first.kill()
            second = server_factory(kind)
            wait_until(lambda: proxy.retried > 0)  # the proxy saw the GET's upstream die
            assert client.connected  # the proxy holds the GET until an upstream is up
            with bound(1.0):
                proxy.retarget(second.port)  # the GET is retried there, with the old sid
                assert client.wait(1.0) is CloseReason.TRANSPORT_ERROR
            watched.closed_with(client, CloseReason.TRANSPORT_ERROR)
            [error] = watched.errors
            assert isinstance(error, TransportError)
            assert error.status == 400
            assert error.body is not None
            assert UNKNOWN_SID[kind] in error.body
        with geventio.ClientBuilder(proxy.url).build_polling() as fresh:
            _echo(fresh)  # the proxy now fronts the second server


@pytest.mark.parametrize("kind", KINDS)
def test_fault_restarted_server_on_websocket(
    server_factory: ServerFactory, kind: ServerKind, bound: Bound
) -> None:
    """A restarted server behind a proxy: the old WebSocket just ends, TRANSPORT_CLOSE."""
    first = server_factory(kind)
    with FaultProxy(first.port) as proxy:
        watched = Watched()
        with watched.builder(proxy.url).build() as client:
            assert client.transport == "websocket"
            _echo(client)
            with bound(DEATH_BOUND):
                first.kill()
                assert client.wait(DEATH_BOUND) is CloseReason.TRANSPORT_CLOSE
            watched.closed_with(client, CloseReason.TRANSPORT_CLOSE)
            assert watched.errors == []
            second = server_factory(kind)
            proxy.retarget(second.port)
        with geventio.ClientBuilder(proxy.url).build() as fresh:
            assert fresh.transport == "websocket"
            _echo(fresh)  # a new session on the second server


# python-engineio advertises pingInterval rounded down to whole seconds (500 ms reads 0)
PING = {"python": (1000, 500), "node": (500, 500)}
PING_MARGIN = 0.5
PING_ID = geventio.PacketId.PING


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_fault_silent_server_gives_ping_timeout_on_time(
    server_factory: ServerFactory, kind: ServerKind, mode: Mode, bound: Bound
) -> None:
    """A server gone silent (SIGSTOP): PING_TIMEOUT within pingInterval + pingTimeout."""
    interval, timeout = PING[kind]
    handle = server_factory(kind, ping_interval=interval, ping_timeout=timeout)
    watched = Watched()
    pings: list[float] = []
    builder = watched.builder(handle.url).on_packet(
        lambda p: pings.append(time.monotonic()) if p.packet_id == PING_ID else None
    )
    client = build(builder, mode)
    _echo(client)
    wait_until(lambda: bool(pings), 3.0)  # the heartbeat runs: the deadline now follows PINGs
    wait_until(lambda: _flushed(client))  # the PONG went out
    handle.pause()  # SIGSTOP: the server goes silent, its sockets stay open
    try:
        start = time.monotonic()
        with bound((interval + timeout) / 1000 + PING_MARGIN):
            reason = client.wait(5)
        elapsed = time.monotonic() - start
    finally:
        handle.resume()
    assert reason is CloseReason.PING_TIMEOUT
    # the last PING came at most pingInterval before the pause: never before pingTimeout
    assert elapsed >= timeout / 1000 - 0.1
    watched.closed_with(client, CloseReason.PING_TIMEOUT)
    assert watched.errors == []
    client.disconnect()
