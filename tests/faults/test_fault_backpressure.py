"""A server that stops reading, and a server that refuses a POST: bounded memory, typed errors."""

from __future__ import annotations

import time

import gevent
import pytest

import geventio
from geventio import CloseReason, ConnectionClosed
from tests.faultkit import Bound
from tests.faults.dummyserver import Conn, frame, open_packet, websocket_script
from tests.helpers import spawn_catching, wait_until
from tests.servers import ServerFactory, ServerKind

CHUNK = 64 * 1024
ATTEMPTED = 3200  # 200 MiB, if nothing pushed back
SEND_BUFFER = 256 * 1024


def _stuck(client: geventio.Client) -> bool:
    """A sender waits for room (the outbox holds more than the send buffer) while the writer is
    in a write that cannot end (it holds the send lock): nothing moves until the server reads."""
    session = client._session
    return (
        session._conn.queued_bytes > session.options.send_buffer and session._writer.lock.locked()
    )


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1])


@pytest.mark.parametrize("kind", ["python", "node"])
@pytest.mark.parametrize("method", ["build_polling", "build_websocket"])
def test_a_server_that_stops_reading_blocks_senders(
    server_factory: ServerFactory, bound: Bound, kind: ServerKind, method: str
) -> None:
    """A server that stops reading: send() blocks, memory stays bounded, then PING_TIMEOUT."""
    handle = server_factory(kind, ping_interval=2000, ping_timeout=2000)
    errors: list[geventio.EngineIOError] = []
    builder = geventio.ClientBuilder(handle.url).send_buffer(SEND_BUFFER).on_error(errors.append)
    client = getattr(builder, method)()
    accepted = 0

    def flood() -> None:
        nonlocal accepted
        for _ in range(ATTEMPTED):
            client.send(bytes(CHUNK))  # a new object each time: nothing is shared
            accepted += 1

    handle.pause()  # SIGSTOP: the server neither reads nor pings any more
    try:
        rss_before = _rss_kib()
        with bound(2 + 2 + 1.5):  # pingInterval + pingTimeout + margin
            sender = spawn_catching(flood)
            wait_until(lambda: _stuck(client))
            blocked_at = accepted
            rss_blocked = _rss_kib()
            assert not sender.dead, "the sender should be blocked, not finished"
            gevent.sleep(0.5)  # a window of real time, in which nothing may move
            assert accepted == blocked_at, "a blocked sender must stay blocked"
            assert client.wait(10) is CloseReason.PING_TIMEOUT
        error = sender.get(timeout=5)
    finally:
        handle.resume()
    assert isinstance(error, ConnectionClosed)
    assert error.reason is CloseReason.PING_TIMEOUT
    # What got past send(): the send buffer, the batch being written and the kernel's socket
    # buffers on both ends (a few MiB on loopback): far from the 200 MiB attempted.
    assert accepted * CHUNK < 32 * 1024 * 1024, accepted
    assert rss_blocked - rss_before < 48 * 1024, (rss_before, rss_blocked)
    assert errors == []  # a ping timeout is a close reason, not an error


def test_a_blocked_sender_is_released_by_disconnect(
    server_factory: ServerFactory, bound: Bound
) -> None:
    """disconnect() while a sender is blocked: the sender gets ConnectionClosed, none hangs."""
    handle = server_factory("node")
    client = (
        geventio.ClientBuilder(handle.url).send_buffer(SEND_BUFFER).timeout(1).build_websocket()
    )
    handle.pause()
    try:

        def flood() -> None:
            for _ in range(ATTEMPTED):
                client.send(bytes(CHUNK))

        sender = spawn_catching(flood)
        wait_until(lambda: _stuck(client))
        assert not sender.dead
        with bound(3.0):
            client.disconnect()  # the flush cannot finish: bounded by timeout, then closed
            error = sender.get(timeout=3)
    finally:
        handle.resume()
    assert isinstance(error, ConnectionClosed)
    assert client.close_reason is CloseReason.CLIENT_DISCONNECT


def test_senders_below_the_buffer_never_block(server_factory: ServerFactory) -> None:
    """A server that reads: a burst of sends returns at once and every message arrives."""
    handle = server_factory("node")
    with geventio.ClientBuilder(handle.url).send_buffer(SEND_BUFFER).build_websocket() as client:
        start = time.monotonic()
        for i in range(2000):
            client.send(f"m{i}")
        assert time.monotonic() - start < 1.0
        client.send("cmd:count")
        got = [client.receive(5) for _ in range(2001)]
        assert got[:2000] == [f"m{i}" for i in range(2000)]
        assert got[2000] == "2000"


@pytest.mark.parametrize(("kind", "status"), [("python", 400), ("node", 413)])
def test_a_refused_post_closes_with_its_status(
    server_factory: ServerFactory, bound: Bound, kind: ServerKind, status: int
) -> None:
    """A POST answered 413 (node) or 400 (python): TRANSPORT_ERROR, status on the error."""
    handle = server_factory(kind, max_payload=1000)
    errors: list[geventio.EngineIOError] = []
    client = geventio.ClientBuilder(handle.url).on_error(errors.append).build_polling()
    with bound(2.0):
        client.send("x" * 5000)  # a single packet over maxPayload still goes (alone)
        assert client.wait(5) is CloseReason.TRANSPORT_ERROR
    assert len(errors) == 1
    assert isinstance(errors[0], geventio.TransportError)
    assert errors[0].status == status


def test_a_server_that_pings_but_never_reads(bound: Bound) -> None:
    """A server that pings but never reads: send() stays blocked, the queue stays bounded."""

    def ping_forever(conn: Conn) -> None:
        while not conn.server.stopping.wait(0.1) and conn.send(frame(0x1, b"2")):
            pass

    opened = frame(0x1, open_packet(pingInterval=300, pingTimeout=5000).encode())
    with websocket_script(opened, after=ping_forever) as server:
        builder = geventio.ClientBuilder(server.url).send_buffer(SEND_BUFFER).timeout(0.5)
        client = builder.build_websocket()
        accepted = 0

        def flood() -> None:
            nonlocal accepted
            for _ in range(ATTEMPTED):
                client.send(bytes(CHUNK))
                accepted += 1

        sender = spawn_catching(flood)
        wait_until(lambda: _stuck(client))
        blocked_at = accepted
        gevent.sleep(1.0)  # about three PINGs: each one's PONG must not carry the outbox along
        assert client.connected, "PINGs keep arriving: the session is alive"
        assert accepted == blocked_at, "the sender must stay blocked while nothing is read"
        assert accepted * CHUNK < 32 * 1024 * 1024, accepted
        with bound(2.0):  # the flush waits up to timeout, so does the close handshake
            client.disconnect()
            assert isinstance(sender.get(timeout=5), ConnectionClosed)
