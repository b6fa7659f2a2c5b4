"""The client against both real servers, on each way of connecting."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Callable

import gevent
import pytest

import geventio
from geventio import CloseReason, ConnectionClosed, Packet, PacketId
from tests.helpers import MODES, Mode, build, raw_websocket, receive_all, wait_parked, wait_until
from tests.servers import ServerFactory, ServerHandle, ServerKind


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> Mode:
    return request.param  # type: ignore[no-any-return]


def test_echo_text_binary_empty_and_utf8(server: ServerHandle, mode: Mode) -> None:
    with build(geventio.ClientBuilder(server.url).timeout(5), mode) as client:
        messages: list[str | bytes] = [
            "hello",
            "",
            "héllo wörld 日本 🎉",
            b"\x00\x01\xff",
            b"",
            "b",
        ]
        for message in messages:
            client.send(message)
            echo = client.receive(5)
            assert echo == message
            assert type(echo) is type(message)


def test_handshake_in_seconds_and_bytes(server_factory: ServerFactory, mode: Mode) -> None:
    handle = server_factory("node", ping_interval=1500, ping_timeout=2500, max_payload=5000)
    with build(geventio.ClientBuilder(handle.url), mode) as client:
        hs = client.handshake
        assert (hs.ping_interval, hs.ping_timeout, hs.max_payload) == (1.5, 2.5, 5000)
        assert client.sid == hs.sid
        assert client.connected
        assert client.transport == ("polling" if mode == "polling" else "websocket")


def test_connect_messages_are_delivered(server: ServerHandle, mode: Mode) -> None:
    """python-engineio puts the connect handler's messages into the handshake response."""
    builder = geventio.ClientBuilder(server.url).query({"greet": "welcome"})
    with build(builder, mode) as client:
        assert client.receive(5) == "welcome"


def test_server_pushes_many_messages_in_order(server: ServerHandle, mode: Mode) -> None:
    with build(geventio.ClientBuilder(server.url), mode) as client:
        client.send("cmd:push:300")
        assert receive_all(client, 300) == [f"push {i}" for i in range(300)]
        client.send("cmd:pushbin:20:70000")
        for i, data in enumerate(receive_all(client, 20)):
            assert isinstance(data, bytes)
            assert len(data) == 70000
            assert struct.unpack(">I", data[:4]) == (i,)


def test_many_queued_messages_are_batched_and_none_dropped(
    server: ServerHandle, mode: Mode
) -> None:
    """python-engineio drops POSTs of more than 16 packets: batches must stay under that."""
    with build(geventio.ClientBuilder(server.url), mode) as client:
        for i in range(500):
            client.send(f"m{i}")
        assert receive_all(client, 500) == [f"m{i}" for i in range(500)]
        client.send("cmd:count")
        assert client.receive(5) == "500"


@pytest.mark.parametrize("kind", ["python", "node"])
def test_polling_posts_stay_under_max_payload(
    server_factory: ServerFactory, kind: ServerKind
) -> None:
    """The server rejects a POST over maxPayload; batches are split to fit."""
    handle = server_factory(kind, max_payload=2000)
    with geventio.ClientBuilder(handle.url).build_polling() as client:
        messages = [f"{i:04d}" + "x" * 300 for i in range(40)] + [b"\x07" * 600] * 5
        for message in messages:
            client.send(message)
        assert receive_all(client, len(messages)) == messages
        assert client.connected


def test_concurrent_senders_keep_their_own_order(server: ServerHandle, mode: Mode) -> None:
    with build(geventio.ClientBuilder(server.url), mode) as client:

        def sender(n: int) -> None:
            for i in range(50):
                client.send(f"{n}:{i}")
                if i % 7 == 0:
                    gevent.sleep(0)

        gevent.joinall([gevent.spawn(sender, n) for n in range(10)], raise_error=True)
        received = receive_all(client, 500)
        for n in range(10):
            mine = [m for m in received if isinstance(m, str) and m.startswith(f"{n}:")]
            assert mine == [f"{n}:{i}" for i in range(50)]


def test_callbacks_run_in_order_in_one_greenlet(server: ServerHandle, mode: Mode) -> None:
    seen: list[tuple[str, object]] = []
    greenlets: set[object] = set()

    def record(kind: str) -> Callable[[object], None]:
        def callback(arg: object) -> None:
            greenlets.add(gevent.getcurrent())
            seen.append((kind, arg))

        return callback

    builder = (
        geventio.ClientBuilder(server.url)
        .on_open(record("open"))
        .on_data(record("data"))
        .on_close(record("close"))
        .on_upgrade(record("upgrade"))
    )
    client = build(builder, mode)
    for i in range(30):
        client.send(str(i))
    wait_until(lambda: len([s for s in seen if s[0] == "data"]) == 30)
    with pytest.raises(geventio.Timeout):  # on_data takes the messages: the inbox stays empty
        client.receive(0.01)
    client.disconnect()
    kinds = [k for k, _ in seen]
    assert kinds[0] == "open"
    assert kinds[-1] == "close"
    assert [a for k, a in seen if k == "data"] == [str(i) for i in range(30)]
    assert kinds.count("upgrade") == (1 if mode == "upgrade" else 0)
    assert len(greenlets) == 1
    assert gevent.getcurrent() not in greenlets
    assert seen[-1] == ("close", CloseReason.CLIENT_DISCONNECT)


def test_on_packet_sees_messages(server: ServerHandle, mode: Mode) -> None:
    packets: list[Packet] = []
    builder = geventio.ClientBuilder(server.url).on_packet(packets.append)
    with build(builder, mode) as client:
        client.send("x")
        assert client.receive(5) == "x"
        wait_until(lambda: Packet(PacketId.MESSAGE, "x") in packets)


def test_disconnect_flushes_queue_and_closes_once(server: ServerHandle, mode: Mode) -> None:
    closes: list[CloseReason] = []
    client = build(geventio.ClientBuilder(server.url).on_close(closes.append), mode)
    probe = build(geventio.ClientBuilder(server.url), mode)
    for i in range(40):
        client.send(f"q{i}")
    start = time.monotonic()
    client.disconnect()
    assert time.monotonic() - start < 2.0
    assert not client.connected
    assert closes == [CloseReason.CLIENT_DISCONNECT]
    client.disconnect()  # idempotent
    assert closes == [CloseReason.CLIENT_DISCONNECT]
    assert client.wait(0) is CloseReason.CLIENT_DISCONNECT
    with pytest.raises(ConnectionClosed) as info:
        client.send("late")
    assert info.value.reason is CloseReason.CLIENT_DISCONNECT
    # the 40 messages were flushed before CLOSE: their echoes were sent back to the client,
    # and the server saw them: ask a second client's server-side view of the first session
    probe.send(f"cmd:stats:{client.sid}")
    stats = json.loads(str(probe.receive(5)))
    assert stats["messages"] == 40
    probe.disconnect()


def _expected_server_close(server: ServerHandle, mode: Mode) -> CloseReason:
    """The node server ends a WebSocket session by closing the socket, without a CLOSE packet."""
    if server.kind == "node" and mode != "polling":
        return CloseReason.TRANSPORT_CLOSE
    return CloseReason.SERVER_DISCONNECT


def _park_a_poll(server: ServerHandle, client: geventio.Client) -> None:
    """Make sure a long-poll GET is parked at the server (on polling; on WebSocket, a round trip).

    python-engineio answers 400 to a GET that arrives after it closed the session, even though
    its CLOSE packet is still queued; only a GET already parked receives that CLOSE.
    """
    client.send("sync")
    assert client.receive(5) == "sync"
    if client.transport == "polling":
        wait_parked(server.url, client)


def test_server_close_gives_server_disconnect(server: ServerHandle, mode: Mode) -> None:
    errors: list[object] = []
    client = build(geventio.ClientBuilder(server.url).on_error(errors.append), mode)
    _park_a_poll(server, client)
    client.send("cmd:close")
    assert client.wait(5) is _expected_server_close(server, mode)
    assert not client.connected
    assert errors == []
    with pytest.raises(ConnectionClosed):
        client.receive(1)


def _messages(packets: list[Packet]) -> int:
    """How many MESSAGE packets ``on_packet`` saw: each one is in the inbox by then (the reader
    queues a packet's callback, then puts its message, without a switch in between)."""
    return sum(p.packet_id is PacketId.MESSAGE for p in packets)


def test_messages_received_before_close_are_drained(server: ServerHandle, mode: Mode) -> None:
    seen: list[Packet] = []
    client = build(geventio.ClientBuilder(server.url).on_packet(seen.append), mode)
    _park_a_poll(server, client)
    client.send("cmd:push:5")
    wait_until(lambda: _messages(seen) >= 5)
    client.send("cmd:close")
    assert client.wait(5) is _expected_server_close(server, mode)
    assert list(client) == [f"push {i}" for i in range(5)]


def test_iteration_and_backpressure_with_a_small_inbox(server: ServerHandle, mode: Mode) -> None:
    seen: list[Packet] = []
    builder = geventio.ClientBuilder(server.url).inbox_size(2).on_packet(seen.append)
    with build(builder, mode) as client:
        client.send("cmd:push:50")
        wait_until(lambda: _messages(seen) >= 3)
        gevent.sleep(0.2)  # a real window, in which a reader that does not wait would go on
        # the reader waits for the consumer: two messages in the inbox, a third in its hands
        assert _messages(seen) <= 3
        received = []
        for message in client:
            received.append(message)
            if len(received) == 50:
                break
        assert received == [f"push {i}" for i in range(50)]


def test_connect_shortcut(server: ServerHandle) -> None:
    with geventio.connect(server.url, transports=("websocket",), timeout=5) as client:
        assert client.transport == "websocket"
    with geventio.connect(server.url, transports=("polling",)) as client:
        assert client.transport == "polling"
    with geventio.connect(server.url, query={"greet": "hi"}) as client:
        assert client.transport == "websocket"
        assert client.receive(5) == "hi"
    with pytest.raises(ValueError, match="unknown option"):
        geventio.connect(server.url, nope=1)


def test_binary_as_base64_text_frames(node_server: ServerHandle, mode: Mode) -> None:
    """With ``b64=1`` the node server sends binary as ``b<base64>`` text, also over WebSocket."""
    with build(geventio.ClientBuilder(node_server.url).query({"b64": "1"}), mode) as client:
        client.send(b"\x00\xffbin")
        assert client.receive(5) == b"\x00\xffbin"
        client.send("cmd:pushbin:3:10")
        assert receive_all(client, 3) == [struct.pack(">I", i) + bytes(6) for i in range(3)]


def test_node_really_sends_base64_text_frames_with_b64(node_server: ServerHandle) -> None:
    """Guards the test above: on the wire, the binary echo is a ``b…`` text frame."""
    ws = raw_websocket(node_server.url, {"b64": "1"})
    try:
        assert str(ws.recv(5)).startswith("0{")
        ws.send([b"\x00\xffbin"])
        assert ws.recv(5) == "bAP9iaW4="
    finally:
        ws.close()


def test_a_poll_answer_may_hold_more_than_max_message_size(node_server: ServerHandle) -> None:
    """max_message_size bounds each message: node packs all 40 pushes into one poll answer."""
    builder = geventio.ClientBuilder(node_server.url).max_message_size(256 * 1024)
    with builder.build_polling() as client:
        client.send("cmd:pushbin:40:65536")  # about 3.5 MB of base64 in one answer
        received = [client.receive(10) for _ in range(40)]
        assert all(isinstance(m, bytes) for m in received)
        assert [struct.unpack(">I", m[:4])[0] for m in received] == list(range(40))  # type: ignore[arg-type]
        assert {len(m) for m in received} == {65536}


def test_max_packets_per_post_lifts_the_sixteen_packet_cap(node_server: ServerHandle) -> None:
    """Node takes any number of packets per POST: 2000 messages go in a few POSTs, none lost."""
    with pytest.raises(ValueError, match="positive"):
        geventio.ClientBuilder(node_server.url).max_packets_per_post(0)
    builder = geventio.ClientBuilder(node_server.url).max_packets_per_post(100_000)
    with builder.build_polling() as client:
        for i in range(2000):
            client.send(f"m{i}")
        received = [client.receive(10) for _ in range(2000)]
        assert received == [f"m{i}" for i in range(2000)]
        client.send("cmd:count")
        assert client.receive(5) == "2000"
