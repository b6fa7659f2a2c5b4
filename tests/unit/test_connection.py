"""Unit tests for geventio._connection: the sans-IO session driven with explicit ``now`` values."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pytest
from helpers import decode_all
from hypothesis import given, settings
from hypothesis import strategies as st

from geventio import ConnectionClosed, ProtocolError, TransportError
from geventio._connection import (
    Closed,
    Connection,
    Event,
    Frame,
    MessageReceived,
    Opened,
    PacketReceived,
    State,
    Upgrade,
)
from geventio._handshake import Handshake
from geventio._packet import Packet, PacketId, decode_binary, decode_text
from geventio._reason import CloseReason

FAST = settings(database=None, max_examples=150, deadline=None)
SEPARATOR_B = b"\x1e"

M = PacketId.MESSAGE

OPEN_PAYLOAD = (
    b'0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,'
    b'"pingTimeout":20000,"maxPayload":1000000}'
)
HANDSHAKE = Handshake(
    sid="abc",
    upgrades=("websocket",),
    ping_interval=25.0,
    ping_timeout=20.0,
    max_payload=1_000_000,
)
SPAN = 45.0  # pingInterval + pingTimeout, in seconds


# Read the attributes through functions: mypy would otherwise keep an attribute narrowed by one
# assert (``conn.state is State.OPEN``) across the method calls that change it.
def state(conn: Connection) -> State:
    return conn.state


def upgrade(conn: Connection) -> Upgrade:
    return conn.upgrade


def transport(conn: Connection) -> str:
    return conn.transport


def flushed(conn: Connection) -> bool:
    return conn.flushed


def has_output(conn: Connection) -> bool:
    return conn.has_output


def paused(conn: Connection) -> bool:
    return conn.paused


def open_packet(
    *,
    upgrades: Sequence[str] = ("websocket",),
    ping_interval: int = 25000,
    ping_timeout: int = 20000,
    max_payload: int = 1_000_000,
) -> str:
    body = {
        "sid": "abc",
        "upgrades": list(upgrades),
        "pingInterval": ping_interval,
        "pingTimeout": ping_timeout,
        "maxPayload": max_payload,
    }
    return "0" + json.dumps(body)


def opened(now: float = 0.0, payload: bytes = OPEN_PAYLOAD, **kwargs: int) -> Connection:
    """A polling Connection opened at ``now``."""
    conn = Connection("polling", **kwargs)
    events = conn.receive_payload(payload, now)
    assert len(events) == 1
    assert isinstance(events[0], Opened)
    assert state(conn) is State.OPEN
    return conn


def opened_ws(now: float = 0.0) -> Connection:
    conn = Connection("websocket")
    assert conn.receive_frame(OPEN_PAYLOAD.decode(), now) == [Opened(HANDSHAKE)]
    return conn


def drain_posts(conn: Connection) -> list[list[Packet]]:
    """Every POST body the connection produces now, decoded, one list per POST."""
    posts: list[list[Packet]] = []
    while (body := conn.next_post()) is not None:
        posts.append(decode_all(body))
        conn.post_finished()
    return posts


def drain(conn: Connection) -> list[Packet]:
    return [p for post in drain_posts(conn) for p in post]


def single_error(events: list[Event], reason: CloseReason) -> Closed:
    assert len(events) == 1
    closed = events[0]
    assert isinstance(closed, Closed)
    assert closed.reason is reason
    return closed


def assert_protocol_error_close(conn: Connection, events: list[Event]) -> None:
    closed = single_error(events, CloseReason.TRANSPORT_ERROR)
    assert isinstance(closed.error, ProtocolError)
    assert state(conn) is State.CLOSED
    assert conn.close_reason is CloseReason.TRANSPORT_ERROR


# -- opening -----------------------------------------------------------------------------------


def test_initial_state() -> None:
    conn = Connection()
    assert state(conn) is State.CONNECTING
    assert transport(conn) == "polling"
    assert upgrade(conn) is Upgrade.NONE
    assert conn.handshake is None
    assert conn.close_reason is None
    assert conn.next_deadline is None
    assert conn.should_poll() is False
    assert conn.can_upgrade() is False
    assert conn.next_post() is None
    assert flushed(conn) is True
    assert has_output(conn) is False


def test_open_payload_opens_the_session() -> None:
    conn = Connection()
    events = conn.receive_payload(OPEN_PAYLOAD, 100.0)
    assert events == [Opened(HANDSHAKE)]
    assert state(conn) is State.OPEN
    assert conn.handshake == HANDSHAKE
    assert conn.next_deadline == 100.0 + SPAN
    assert conn.close_reason is None
    assert conn.should_poll() is True
    assert has_output(conn) is False


def test_messages_after_the_open_packet_are_delivered_after_opened() -> None:
    conn = Connection()
    events = conn.receive_payload(OPEN_PAYLOAD + b"\x1e4hello\x1ebAQID\x1e4", 0.0)
    assert events == [
        Opened(HANDSHAKE),
        PacketReceived(Packet(M, "hello")),
        MessageReceived("hello"),
        PacketReceived(Packet(M, b"\x01\x02\x03")),
        MessageReceived(b"\x01\x02\x03"),
        PacketReceived(Packet(M, "")),
        MessageReceived(""),
    ]
    assert state(conn) is State.OPEN


@pytest.mark.parametrize(
    "payload",
    [
        b"4hello",
        b"2",
        b"1",
        b"6",
        b"bAQID",
        b"4hello\x1e" + OPEN_PAYLOAD,  # OPEN present, but not first
    ],
)
def test_first_packet_not_open_is_a_transport_error(payload: bytes) -> None:
    conn = Connection()
    events = conn.receive_payload(payload, 0.0)
    assert_protocol_error_close(conn, events)
    assert conn.handshake is None
    assert conn.next_deadline is None


@pytest.mark.parametrize(
    "payload",
    [
        b"0",
        b"0not json",
        b'0{"sid":"","upgrades":[],"pingInterval":1,"pingTimeout":1}',
        b'0{"sid":"a","upgrades":[],"pingInterval":-1,"pingTimeout":1}',
        b"",
        b"\xff",
        b"7",
    ],
)
def test_invalid_open_is_a_transport_error(payload: bytes) -> None:
    conn = Connection()
    assert_protocol_error_close(conn, conn.receive_payload(payload, 0.0))


def test_binary_frame_before_open_is_a_transport_error() -> None:
    conn = Connection("websocket")
    assert_protocol_error_close(conn, conn.receive_frame(b"\x00", 0.0))


def test_websocket_connection_opened_by_a_frame() -> None:
    conn = Connection("websocket")
    assert transport(conn) == "websocket"
    events = conn.receive_frame(OPEN_PAYLOAD.decode(), 5.0)
    assert events == [Opened(HANDSHAKE)]
    assert state(conn) is State.OPEN
    assert conn.next_deadline == 5.0 + SPAN
    assert conn.should_poll() is False
    assert conn.can_upgrade() is False
    conn.send(Packet(M, "hi"))
    conn.send(Packet(M, b"\x01\x02"))
    assert conn.next_post() is None
    assert conn.next_frames() == ["4hi", b"\x01\x02"]
    assert conn.next_frames() == []
    assert conn.receive_frame(b"\x01", 6.0) == [
        PacketReceived(Packet(M, b"\x01")),
        MessageReceived(b"\x01"),
    ]
    assert conn.receive_frame("4é日😀", 6.0) == [
        PacketReceived(Packet(M, "é日😀")),
        MessageReceived("é日😀"),
    ]
    assert conn.receive_frame("4", 6.0) == [PacketReceived(Packet(M, "")), MessageReceived("")]


# -- heartbeat ---------------------------------------------------------------------------------


def test_ping_queues_exactly_one_pong_on_polling() -> None:
    conn = opened(0.0)
    events = conn.receive_payload(b"2", 10.0)
    assert events == [PacketReceived(Packet(PacketId.PING))]
    assert has_output(conn) is True
    assert conn.next_post() == b"3"
    conn.post_finished()
    assert conn.next_post() is None
    assert has_output(conn) is False


def test_pings_before_the_pong_is_taken_share_one_pong() -> None:
    conn = opened(0.0)
    conn.receive_payload(b"2\x1e2", 10.0)
    assert drain(conn) == [Packet(PacketId.PONG)]


def test_a_ping_flood_queues_one_pong() -> None:
    """100,000 PINGs in one answer: one PONG at the front, not one insert(0) per PING."""
    conn = opened(0.0)
    conn.send(Packet(M, "queued"))
    conn.receive_payload(b"2\x1e" * 99_999 + b"2", 10.0)
    assert conn.queued_bytes == len("queued") + 1 + 1
    assert drain(conn) == [Packet(PacketId.PONG), Packet(M, "queued")]


def test_the_pending_pong_echoes_the_latest_ping() -> None:
    conn = opened_ws(0.0)
    conn.receive_frame("2a", 1.0)
    conn.receive_frame("2bcd", 2.0)
    assert conn.queued_bytes == len("bcd") + 1
    assert conn.next_frames() == ["3bcd"]


def test_a_ping_after_the_pong_was_taken_queues_a_new_one() -> None:
    conn = opened(0.0)
    conn.receive_payload(b"2", 1.0)
    assert conn.next_post() == b"3"  # in flight
    conn.receive_payload(b"2", 2.0)
    conn.post_finished()
    assert conn.next_post() == b"3"


def test_a_pong_sent_by_the_user_is_not_replaced() -> None:
    conn = opened(0.0)
    conn.send(Packet(PacketId.PONG, "mine"))
    conn.receive_payload(b"2\x1e2", 1.0)
    assert drain(conn) == [Packet(PacketId.PONG), Packet(PacketId.PONG, "mine")]


# -- a poll answer a batch at a time -----------------------------------------------------------


def test_feed_payload_hands_over_batches_that_add_up_to_receive_payload() -> None:
    body = SEPARATOR_B.join([b"4m"] * 300 + [b"6"] * 300)
    batches = list(opened(0.0).feed_payload(body, 1.0, max_packets=256))
    assert [len(b) for b in batches] == [2 * 256, 2 * 44 + 212, 88]  # a message is 2 events
    assert [e for b in batches for e in b] == opened(0.0).receive_payload(body, 1.0)


def test_feed_payload_decodes_only_the_batches_taken() -> None:
    conn = opened(0.0)
    batches = conn.feed_payload(b"4a\x1e4b\x1e1\x1e4never", 1.0, max_packets=2)
    assert next(batches) == [
        PacketReceived(Packet(M, "a")),
        MessageReceived("a"),
        PacketReceived(Packet(M, "b")),
        MessageReceived("b"),
    ]
    assert state(conn) is State.OPEN  # the CLOSE after them is not read yet
    assert next(batches) == [
        PacketReceived(Packet(PacketId.CLOSE)),
        Closed(CloseReason.SERVER_DISCONNECT),
    ]
    assert next(batches, None) is None


def test_feed_payload_stops_once_the_session_closed_between_batches() -> None:
    conn = opened(0.0)
    batches = conn.feed_payload(b"4a\x1e4b\x1e4c", 1.0, max_packets=1)
    assert next(batches) == [PacketReceived(Packet(M, "a")), MessageReceived("a")]
    conn.tick(1000.0)  # a ping timeout, while the caller yielded
    assert list(batches) == []


def test_feed_payload_delivers_the_batches_before_a_fault() -> None:
    conn = opened(0.0)
    body = SEPARATOR_B.join([b"6"] * 600 + [b"9"])
    batches = list(conn.feed_payload(body, 1.0, max_packets=256))
    assert [len(b) for b in batches] == [256, 256, 88 + 1]
    closed = batches[-1][-1]
    assert isinstance(closed, Closed)
    assert closed.reason is CloseReason.TRANSPORT_ERROR
    assert isinstance(closed.error, ProtocolError)


def test_ping_queues_exactly_one_pong_on_websocket() -> None:
    conn = opened_ws(0.0)
    assert conn.receive_frame("2", 10.0) == [PacketReceived(Packet(PacketId.PING))]
    assert conn.next_frames() == ["3"]
    assert conn.next_frames() == []


def test_deadline_is_now_plus_interval_plus_timeout() -> None:
    conn = opened(0.0)
    assert conn.next_deadline == SPAN
    conn.receive_payload(b"2", 30.0)
    assert conn.next_deadline == 30.0 + SPAN
    conn = opened(0.0, open_packet(ping_interval=300, ping_timeout=200).encode())
    assert conn.next_deadline == pytest.approx(0.5)


def test_tick_before_the_deadline_does_nothing() -> None:
    conn = opened(0.0)
    for now in (0.0, 1.0, 25.0, 44.0, 44.999):
        assert conn.tick(now) == []
    assert state(conn) is State.OPEN
    assert has_output(conn) is False
    assert conn.next_deadline == SPAN


@pytest.mark.parametrize("now", [SPAN, SPAN + 0.001, 1000.0])
def test_tick_at_or_after_the_deadline_is_a_ping_timeout(now: float) -> None:
    conn = opened(0.0)
    assert conn.tick(now) == [Closed(CloseReason.PING_TIMEOUT)]
    assert state(conn) is State.CLOSED
    assert conn.close_reason is CloseReason.PING_TIMEOUT
    assert conn.next_deadline is None
    assert conn.tick(now + 100.0) == []


def test_ping_resets_the_deadline() -> None:
    conn = opened(0.0)
    conn.receive_payload(b"2", 30.0)
    assert conn.tick(SPAN) == []
    assert conn.tick(30.0 + SPAN - 0.001) == []
    assert conn.tick(30.0 + SPAN) == [Closed(CloseReason.PING_TIMEOUT)]


def test_ping_resets_the_deadline_on_websocket() -> None:
    conn = opened_ws(0.0)
    conn.receive_frame("2", 40.0)
    assert conn.next_deadline == 40.0 + SPAN
    assert conn.tick(50.0) == []


@pytest.mark.parametrize("payload", [b"4hello", b"bAQID", b"6", b"3"])
def test_only_a_ping_resets_the_deadline(payload: bytes) -> None:
    conn = opened(0.0)
    conn.receive_payload(payload, 30.0)
    assert conn.next_deadline == SPAN
    assert conn.tick(SPAN) == [Closed(CloseReason.PING_TIMEOUT)]


def test_client_never_queues_a_ping_by_itself() -> None:
    conn = opened(0.0)
    sent: list[Packet] = []
    for step in range(1, 40):
        now = float(step)
        assert conn.tick(now) == []
        if step % 5 == 0:
            conn.receive_payload(b"4x\x1e6", now)
        if step % 10 == 0:
            conn.receive_payload(b"2", now)
        sent.extend(drain(conn))
    assert sent == [Packet(PacketId.PONG)] * 3
    assert all(p.packet_id is not PacketId.PING for p in sent)


# -- closing -----------------------------------------------------------------------------------


def test_server_close_is_a_server_disconnect() -> None:
    conn = opened(0.0)
    events = conn.receive_payload(b"1", 1.0)
    assert events == [
        PacketReceived(Packet(PacketId.CLOSE)),
        Closed(CloseReason.SERVER_DISCONNECT),
    ]
    assert state(conn) is State.CLOSED
    assert conn.close_reason is CloseReason.SERVER_DISCONNECT
    assert conn.next_deadline is None
    assert conn.should_poll() is False


def test_packets_after_a_server_close_are_not_delivered() -> None:
    conn = opened(0.0)
    events = conn.receive_payload(b"4a\x1e1\x1e4b", 1.0)
    assert events == [
        PacketReceived(Packet(M, "a")),
        MessageReceived("a"),
        PacketReceived(Packet(PacketId.CLOSE)),
        Closed(CloseReason.SERVER_DISCONNECT),
    ]


def test_server_close_frame_on_websocket() -> None:
    conn = opened_ws(0.0)
    assert conn.receive_frame("1", 1.0) == [
        PacketReceived(Packet(PacketId.CLOSE)),
        Closed(CloseReason.SERVER_DISCONNECT),
    ]


def test_connection_lost_without_error_is_transport_close() -> None:
    conn = opened(0.0)
    assert conn.connection_lost(None) == [Closed(CloseReason.TRANSPORT_CLOSE)]
    assert state(conn) is State.CLOSED
    assert conn.close_reason is CloseReason.TRANSPORT_CLOSE
    assert conn.next_deadline is None


def test_connection_lost_with_error_is_transport_error() -> None:
    conn = opened(0.0)
    error = TransportError("reset", status=400, body="bad")
    events = conn.connection_lost(error)
    assert events == [Closed(CloseReason.TRANSPORT_ERROR, error)]
    closed = single_error(events, CloseReason.TRANSPORT_ERROR)
    assert closed.error is error
    assert conn.close_reason is CloseReason.TRANSPORT_ERROR


def test_connection_lost_while_connecting() -> None:
    conn = Connection()
    assert conn.connection_lost(None) == [Closed(CloseReason.TRANSPORT_CLOSE)]
    assert state(conn) is State.CLOSED


def test_server_close_while_closing_is_a_client_disconnect() -> None:
    conn = opened(0.0)
    conn.close()
    assert state(conn) is State.CLOSING
    assert conn.receive_payload(b"1", 1.0) == [
        PacketReceived(Packet(PacketId.CLOSE)),
        Closed(CloseReason.CLIENT_DISCONNECT),
    ]
    assert state(conn) is State.CLOSED
    assert conn.close_reason is CloseReason.CLIENT_DISCONNECT


@pytest.mark.parametrize("error", [None, TransportError("reset")])
def test_lost_transport_while_closing_is_a_client_disconnect(error: TransportError | None) -> None:
    conn = opened(0.0)
    conn.close()
    assert conn.connection_lost(error) == [Closed(CloseReason.CLIENT_DISCONNECT)]
    assert conn.close_reason is CloseReason.CLIENT_DISCONNECT


@pytest.mark.parametrize(
    "end",
    [
        pytest.param(lambda c: c.receive_payload(b"", 1.0), id="empty-payload"),
        pytest.param(lambda c: c.receive_payload(b"7", 1.0), id="invalid-packet"),
        pytest.param(lambda c: c.receive_frame("x", 1.0), id="invalid-frame"),
        pytest.param(lambda c: c.tick(SPAN), id="ping-timeout"),
        pytest.param(lambda c: c.finish_close(CloseReason.TRANSPORT_ERROR), id="finish-close"),
    ],
)
def test_anything_ending_a_closing_session_is_a_client_disconnect(
    end: Callable[[Connection], list[Event]],
) -> None:
    conn = opened(0.0)
    conn.close()
    assert end(conn) == [Closed(CloseReason.CLIENT_DISCONNECT)]
    assert state(conn) is State.CLOSED
    assert conn.close_reason is CloseReason.CLIENT_DISCONNECT


def test_finish_close() -> None:
    conn = opened(0.0)
    conn.close()
    assert conn.finish_close() == [Closed(CloseReason.CLIENT_DISCONNECT)]
    assert state(conn) is State.CLOSED
    conn = opened(0.0)
    assert conn.finish_close(CloseReason.TRANSPORT_ERROR) == [Closed(CloseReason.TRANSPORT_ERROR)]
    assert conn.close_reason is CloseReason.TRANSPORT_ERROR


def test_events_after_closed_are_ignored() -> None:
    conn = opened(0.0)
    conn.receive_payload(b"1", 1.0)
    assert conn.receive_payload(b"4hello", 2.0) == []
    assert conn.receive_payload(b"2", 2.0) == []
    assert conn.receive_payload(b"\xff", 2.0) == []
    assert conn.receive_payload(b"7", 2.0) == []
    assert conn.receive_payload(OPEN_PAYLOAD, 2.0) == []
    assert conn.receive_frame("4hello", 2.0) == []
    assert conn.receive_frame(b"\x01", 2.0) == []
    assert conn.receive_frame("", 2.0) == []
    assert conn.tick(1e9) == []
    assert conn.connection_lost(None) == []
    assert conn.connection_lost(TransportError("x")) == []
    assert conn.finish_close() == []
    conn.close()
    assert state(conn) is State.CLOSED
    assert conn.close_reason is CloseReason.SERVER_DISCONNECT
    assert has_output(conn) is False  # the PING after CLOSED queued no PONG


def test_send_after_close_raises() -> None:
    conn = opened(0.0)
    conn.close()
    with pytest.raises(ConnectionClosed) as info:
        conn.send(Packet(M, "late"))
    assert info.value.reason is CloseReason.CLIENT_DISCONNECT
    assert drain(conn) == [Packet(PacketId.CLOSE)]


def test_send_after_closed_raises_with_the_reason() -> None:
    conn = opened(0.0)
    conn.receive_payload(b"1", 1.0)
    with pytest.raises(ConnectionClosed) as info:
        conn.send(Packet(M, "late"))
    assert info.value.reason is CloseReason.SERVER_DISCONNECT
    conn = opened(0.0)
    conn.tick(SPAN)
    with pytest.raises(ConnectionClosed) as info:
        conn.send(Packet(M, "late"))
    assert info.value.reason is CloseReason.PING_TIMEOUT


def test_close_before_open_ends_the_session() -> None:
    # Connection.close() documents: "Before the session is open it ends it."
    conn = Connection()
    conn.close()
    assert state(conn) is State.CLOSED
    with pytest.raises(ConnectionClosed):
        conn.send(Packet(M, "x"))


# -- invalid and tolerated packets -------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"7", id="unknown-type"),
        pytest.param(b"x", id="letter"),
        pytest.param(b"b!!!", id="bad-base64"),
        pytest.param(b"bAQI", id="bad-padding"),
        pytest.param(b"4\xff", id="invalid-utf8"),
        pytest.param(b"4\xc3", id="truncated-utf8"),
        pytest.param(b"", id="empty"),
        pytest.param(OPEN_PAYLOAD, id="open-after-open"),
        pytest.param(b"0", id="empty-open-after-open"),
        pytest.param(b"5", id="upgrade"),
    ],
)
def test_invalid_packet_after_open_is_a_transport_error(payload: bytes) -> None:
    conn = opened(0.0)
    assert_protocol_error_close(conn, conn.receive_payload(payload, 1.0))
    assert conn.should_poll() is False


@pytest.mark.parametrize(
    ("payload", "before"),
    [
        pytest.param(b"4a\x1e", ["a"], id="trailing-separator"),
        pytest.param(b"4a\x1e4b\x1e7\x1e4c", ["a", "b"], id="unknown-type-third"),
        pytest.param(b"4a\x1eb!!!", ["a"], id="bad-base64-second"),
        pytest.param(b"4a\x1e4b\xff\x1e4c", ["a"], id="bad-utf8-in-second"),
        pytest.param(b"4a\x1e4b\x1e\xff", ["a", "b"], id="bad-utf8-starts-third"),
        pytest.param(b"4\xff\x1e4b", [], id="bad-utf8-in-first"),
    ],
)
def test_packets_before_an_invalid_one_are_delivered(payload: bytes, before: list[str]) -> None:
    conn = opened(0.0)
    events = conn.receive_payload(payload, 1.0)
    assert [e.data for e in events if isinstance(e, MessageReceived)] == before
    assert isinstance(events[-1], Closed)
    assert events[-1].reason is CloseReason.TRANSPORT_ERROR
    assert isinstance(events[-1].error, ProtocolError)
    assert state(conn) is State.CLOSED


@pytest.mark.parametrize("frame", ["7", "x", "", "b!!!", "bAQI", "5", "0", OPEN_PAYLOAD.decode()])
def test_invalid_frame_after_open_is_a_transport_error(frame: str) -> None:
    conn = opened_ws(0.0)
    assert_protocol_error_close(conn, conn.receive_frame(frame, 1.0))


def test_upgrade_packet_in_the_middle_of_a_payload() -> None:
    conn = opened(0.0)
    events = conn.receive_payload(b"4a\x1e5\x1e4b", 1.0)
    assert events[:2] == [PacketReceived(Packet(M, "a")), MessageReceived("a")]
    assert_protocol_error_close(conn, events[2:])


@pytest.mark.parametrize("payload", [b"6", b"3", b"3probe", b"6\x1e3\x1e6"])
def test_noop_and_pong_are_tolerated(payload: bytes) -> None:
    conn = opened(0.0)
    events = conn.receive_payload(payload, 1.0)
    assert events == [PacketReceived(p) for p in decode_all(payload)]
    assert state(conn) is State.OPEN
    assert has_output(conn) is False


def test_noop_frame_is_tolerated() -> None:
    conn = opened_ws(0.0)
    assert conn.receive_frame("6", 1.0) == [PacketReceived(Packet(PacketId.NOOP))]
    assert state(conn) is State.OPEN


# -- polling output ----------------------------------------------------------------------------


def test_next_post_batches_at_most_sixteen_packets() -> None:
    conn = opened(0.0)
    packets = [Packet(M, str(i)) for i in range(20)]
    for packet in packets:
        conn.send(packet)
    first = conn.next_post()
    assert first is not None
    assert decode_all(first) == packets[:16]
    assert conn.next_post() is None  # in flight
    assert conn.next_post() is None
    conn.post_finished()
    second = conn.next_post()
    assert second is not None
    assert decode_all(second) == packets[16:]
    conn.post_finished()
    assert conn.next_post() is None


def test_next_post_respects_max_packets_argument() -> None:
    conn = opened(0.0, max_packets=3)
    for i in range(7):
        conn.send(Packet(M, str(i)))
    assert [len(post) for post in drain_posts(conn)] == [3, 3, 1]


def test_next_post_respects_the_servers_max_payload() -> None:
    conn = opened(0.0, open_packet(max_payload=11).encode())
    assert conn.handshake is not None
    assert conn.handshake.max_payload == 11
    for _ in range(5):
        conn.send(Packet(M, "aaaa"))  # 5 bytes each; two fit in 11
    posts = drain_posts(conn)
    assert [len(post) for post in posts] == [2, 2, 1]


def test_next_post_encodes_binary_as_base64() -> None:
    conn = opened(0.0)
    conn.send(Packet(M, b"\x01\x02\x03"))
    assert conn.next_post() == b"bAQID"
    conn.post_finished()
    conn.send(Packet(M, "a"))
    conn.send(Packet(M, b"\x00"))
    conn.send(Packet(M, "é"))
    assert conn.next_post() == "4a\x1ebAA==\x1e4é".encode()


def test_next_post_with_nothing_queued_is_none_and_not_in_flight() -> None:
    conn = opened(0.0)
    assert conn.next_post() is None
    assert flushed(conn) is True
    conn.send(Packet(M, "a"))
    assert conn.next_post() == b"4a"


def test_send_before_open_is_posted_after_open() -> None:
    conn = Connection()
    conn.send(Packet(M, "early"))
    assert conn.next_post() is None  # no handshake yet
    conn.receive_payload(OPEN_PAYLOAD, 0.0)
    assert conn.next_post() == b"4early"


def test_transports_do_not_mix_outputs() -> None:
    conn = opened(0.0)
    conn.send(Packet(M, "a"))
    assert conn.next_frames() == []
    assert has_output(conn) is True
    ws = opened_ws(0.0)
    ws.send(Packet(M, "a"))
    assert ws.next_post() is None
    assert has_output(ws) is True


def test_should_poll() -> None:
    conn = Connection()
    assert conn.should_poll() is False  # CONNECTING
    conn.receive_payload(OPEN_PAYLOAD, 0.0)
    assert conn.should_poll() is True
    conn.poll_started()
    assert conn.should_poll() is False
    conn.poll_started()
    assert conn.should_poll() is False
    conn.poll_finished()
    assert conn.should_poll() is True
    conn.send(Packet(M, "a"))
    assert conn.next_post() is not None
    assert conn.should_poll() is True  # a POST in flight does not stop the GET
    conn.close()
    assert conn.should_poll() is False  # CLOSING
    conn.finish_close()
    assert conn.should_poll() is False  # CLOSED


def test_flushed_and_has_output() -> None:
    conn = opened(0.0)
    assert flushed(conn) is True
    assert has_output(conn) is False
    conn.send(Packet(M, "a"))
    assert flushed(conn) is False
    assert has_output(conn) is True
    assert conn.next_post() == b"4a"
    assert has_output(conn) is False
    assert flushed(conn) is False  # POST in flight
    conn.post_finished()
    assert flushed(conn) is True


# -- close() -----------------------------------------------------------------------------------


def test_close_appends_close_after_queued_packets() -> None:
    conn = opened(0.0)
    conn.send(Packet(M, "a"))
    conn.send(Packet(M, b"\x01"))
    conn.close()
    assert state(conn) is State.CLOSING
    assert flushed(conn) is False
    packets = drain(conn)
    assert packets == [Packet(M, "a"), Packet(M, b"\x01"), Packet(PacketId.CLOSE)]
    assert packets[-1] == Packet(PacketId.CLOSE)
    assert flushed(conn) is True
    assert state(conn) is State.CLOSING


def test_close_is_idempotent() -> None:
    conn = opened(0.0)
    conn.send(Packet(M, "a"))
    conn.close()
    conn.close()
    conn.close()
    assert drain(conn) == [Packet(M, "a"), Packet(PacketId.CLOSE)]
    conn.close()
    assert conn.next_post() is None
    assert state(conn) is State.CLOSING


def test_close_with_a_post_in_flight() -> None:
    conn = opened(0.0)
    conn.send(Packet(M, "a"))
    assert conn.next_post() == b"4a"
    conn.close()
    assert conn.next_post() is None
    assert flushed(conn) is False
    conn.post_finished()
    assert conn.next_post() == b"1"
    conn.post_finished()
    assert flushed(conn) is True


def test_close_after_many_packets_ends_with_close() -> None:
    conn = opened(0.0)
    for i in range(40):
        conn.send(Packet(M, str(i)))
    conn.close()
    posts = drain_posts(conn)
    assert all(len(post) <= 16 for post in posts)
    packets = [p for post in posts for p in post]
    assert packets[-1] == Packet(PacketId.CLOSE)
    assert packets[:-1] == [Packet(M, str(i)) for i in range(40)]


def test_close_on_websocket_ends_with_close_frame() -> None:
    conn = opened_ws(0.0)
    conn.send(Packet(M, "a"))
    conn.close()
    assert conn.next_frames() == ["4a", "1"]
    assert flushed(conn) is True


def test_no_packet_follows_close_when_a_ping_arrives_while_closing() -> None:
    # Nothing may be sent after the client's CLOSE packet.
    conn = opened(0.0)
    conn.send(Packet(M, "a"))
    conn.close()
    conn.receive_payload(b"2", 1.0)
    packets = drain(conn)
    assert packets[-1] == Packet(PacketId.CLOSE)
    assert packets.count(Packet(PacketId.CLOSE)) == 1


# -- upgrade -----------------------------------------------------------------------------------


def test_can_upgrade() -> None:
    assert Connection().can_upgrade() is False  # CONNECTING
    assert opened(0.0).can_upgrade() is True
    assert opened(0.0, open_packet(upgrades=[]).encode()).can_upgrade() is False
    assert opened(0.0, open_packet(upgrades=["webtransport"]).encode()).can_upgrade() is False
    assert opened(0.0, open_packet(upgrades=["Websocket"]).encode()).can_upgrade() is False
    assert opened_ws(0.0).can_upgrade() is False  # already on WebSocket
    conn = opened(0.0)
    conn.close()
    assert conn.can_upgrade() is False  # CLOSING
    conn.finish_close()
    assert conn.can_upgrade() is False  # CLOSED


def test_start_probe_when_not_allowed_raises() -> None:
    with pytest.raises(RuntimeError):
        Connection().start_probe()
    with pytest.raises(RuntimeError):
        opened(0.0, open_packet(upgrades=[]).encode()).start_probe()
    with pytest.raises(RuntimeError):
        opened_ws(0.0).start_probe()


def test_upgrade_step_by_step() -> None:
    conn = opened(0.0)
    conn.poll_started()  # a GET is in flight
    conn.send(Packet(M, "m1"))
    assert conn.next_post() == b"4m1"  # a POST is in flight

    assert conn.start_probe() == "2probe"
    assert upgrade(conn) is Upgrade.PROBING
    assert conn.can_upgrade() is False
    with pytest.raises(RuntimeError):
        conn.start_probe()

    conn.receive_probe("3probe")
    assert upgrade(conn) is Upgrade.PAUSING
    assert transport(conn) == "polling"
    assert paused(conn) is False  # GET and POST in flight

    conn.send(Packet(M, "m2"))
    conn.send(Packet(M, b"\x02"))
    conn.send(Packet(M, "m3"))
    conn.post_finished()
    assert conn.next_post() is None  # pausing: no new POST
    assert conn.should_poll() is False
    assert paused(conn) is False  # the GET is still in flight
    with pytest.raises(RuntimeError):
        conn.finish_upgrade()

    conn.poll_finished()
    assert conn.should_poll() is False
    assert conn.next_post() is None
    assert paused(conn) is True

    frames = conn.finish_upgrade()
    assert frames == ["5", "4m2", b"\x02", "4m3"]
    assert transport(conn) == "websocket"
    assert upgrade(conn) is Upgrade.NONE
    assert paused(conn) is False
    assert conn.next_frames() == []
    assert has_output(conn) is False
    assert conn.should_poll() is False
    assert conn.can_upgrade() is False

    conn.send(Packet(M, "m4"))
    assert conn.next_post() is None
    assert conn.next_frames() == ["4m4"]
    conn.receive_frame("2", 10.0)
    assert conn.next_frames() == ["3"]
    assert conn.next_deadline == 10.0 + SPAN


def test_paused_waits_for_the_post() -> None:
    conn = opened(0.0)
    conn.send(Packet(M, "a"))
    assert conn.next_post() is not None
    conn.start_probe()
    conn.receive_probe("3probe")
    assert paused(conn) is False
    conn.post_finished()
    assert paused(conn) is True
    assert conn.finish_upgrade() == ["5"]


def test_polling_continues_while_probing() -> None:
    conn = opened(0.0)
    conn.start_probe()
    assert conn.should_poll() is True
    conn.send(Packet(M, "a"))
    assert conn.next_post() == b"4a"
    conn.post_finished()
    assert paused(conn) is False  # not pausing yet


def test_messages_queued_during_the_upgrade_come_out_exactly_once() -> None:
    conn = opened(0.0)
    posted: list[Packet] = []
    frames: list[Frame] = []

    conn.send(Packet(M, "before"))
    conn.start_probe()
    conn.send(Packet(M, "probing"))
    posted += drain(conn)  # polling carries on while probing
    conn.send(Packet(M, "probing-queued"))
    conn.send(Packet(M, b"\x01"))
    conn.poll_started()
    conn.receive_probe("3probe")
    conn.send(Packet(M, "pausing"))
    assert drain(conn) == []  # nothing is posted while pausing
    conn.poll_finished()
    frames += conn.finish_upgrade()
    conn.send(Packet(M, "after"))
    frames += conn.next_frames()
    assert drain(conn) == []
    frames += conn.next_frames()

    assert posted == [Packet(M, "before"), Packet(M, "probing")]
    assert frames == ["5", "4probing-queued", b"\x01", "4pausing", "4after"]
    on_ws = [decode_binary(f) if isinstance(f, bytes) else decode_text(f) for f in frames[1:]]
    assert posted + on_ws == [
        Packet(M, "before"),
        Packet(M, "probing"),
        Packet(M, "probing-queued"),
        Packet(M, b"\x01"),
        Packet(M, "pausing"),
        Packet(M, "after"),
    ]


def test_wrong_probe_answer_abandons_the_upgrade() -> None:
    conn = opened(0.0)
    conn.start_probe()
    with pytest.raises(ProtocolError):
        conn.receive_probe("3prob")
    assert upgrade(conn) is Upgrade.NONE
    assert transport(conn) == "polling"
    assert conn.should_poll() is True
    assert conn.can_upgrade() is True
    conn.send(Packet(M, "a"))
    assert conn.next_post() == b"4a"
    assert state(conn) is State.OPEN


@pytest.mark.parametrize("answer", ["3", "2probe", "3probe ", "4probe", "", b"3probe"])
def test_any_other_probe_answer_is_a_protocol_error(answer: str | bytes) -> None:
    conn = opened(0.0)
    conn.start_probe()
    with pytest.raises(ProtocolError):
        conn.receive_probe(answer)
    assert upgrade(conn) is Upgrade.NONE
    assert conn.should_poll() is True


def test_receive_probe_without_a_probe_raises() -> None:
    conn = opened(0.0)
    with pytest.raises(RuntimeError):
        conn.receive_probe("3probe")
    assert upgrade(conn) is Upgrade.NONE


def test_probe_failed_returns_to_polling() -> None:
    conn = opened(0.0)
    conn.start_probe()
    conn.probe_failed()
    assert upgrade(conn) is Upgrade.NONE
    assert transport(conn) == "polling"
    assert conn.should_poll() is True
    assert conn.can_upgrade() is True
    assert conn.start_probe() == "2probe"


def test_finish_upgrade_when_not_paused_raises() -> None:
    conn = opened(0.0)
    with pytest.raises(RuntimeError):
        conn.finish_upgrade()  # NONE
    conn.start_probe()
    with pytest.raises(RuntimeError):
        conn.finish_upgrade()  # PROBING
    conn.receive_probe("3probe")
    conn.poll_started()
    with pytest.raises(RuntimeError):
        conn.finish_upgrade()  # PAUSING with a GET in flight
    assert transport(conn) == "polling"
    assert upgrade(conn) is Upgrade.PAUSING


def test_close_while_probing_abandons_the_upgrade() -> None:
    conn = opened(0.0)
    conn.start_probe()
    conn.close()
    assert upgrade(conn) is Upgrade.NONE
    assert drain(conn) == [Packet(PacketId.CLOSE)]


def test_close_while_paused_sends_close_on_websocket() -> None:
    conn = opened(0.0)
    conn.start_probe()
    conn.receive_probe("3probe")
    conn.send(Packet(M, "a"))
    conn.close()
    assert conn.next_post() is None
    assert conn.finish_upgrade() == ["5", "4a", "1"]


# -- properties --------------------------------------------------------------------------------

_message = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x1e"), max_size=20),
    st.binary(max_size=20),
)
_op = st.one_of(
    st.tuples(st.just("send"), _message),
    st.tuples(st.just("post"), st.none()),
    st.tuples(st.just("finish"), st.none()),
)


@FAST
@given(
    st.lists(_op, max_size=80),
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=1, max_value=16),
)
def test_interleaved_sends_and_posts_keep_every_packet_once_in_order(
    ops: list[tuple[str, str | bytes | None]], max_payload: int, max_packets: int
) -> None:
    conn = opened(0.0, open_packet(max_payload=max_payload).encode(), max_packets=max_packets)
    sent: list[Packet] = []
    posted: list[Packet] = []
    in_flight = False
    for op, data in ops:
        if op == "send":
            assert data is not None
            packet = Packet(M, data)
            conn.send(packet)
            sent.append(packet)
        elif op == "post":
            body = conn.next_post()
            if in_flight or len(posted) == len(sent):
                assert body is None
            else:
                assert body is not None
                batch = decode_all(body)
                assert 1 <= len(batch) <= max_packets
                if len(batch) > 1:
                    assert len(body) <= max_payload
                posted.extend(batch)
                in_flight = True
        else:
            conn.post_finished()
            in_flight = False
        assert posted == sent[: len(posted)]
        assert flushed(conn) is (not in_flight and len(posted) == len(sent))
    conn.post_finished()
    posted.extend(drain(conn))
    assert posted == sent


def test_send_rejects_text_that_utf8_cannot_encode() -> None:
    conn = opened()
    with pytest.raises(ValueError, match="UTF-8"):
        conn.send(Packet(PacketId.MESSAGE, "a\ud800"))
    conn.send(Packet(PacketId.MESSAGE, "ok é"))
    assert conn.next_post() == "4ok é".encode()


def test_pong_goes_before_a_backlog_of_messages() -> None:
    conn = opened()
    for i in range(40):
        conn.send(Packet(PacketId.MESSAGE, f"m{i}"))
    conn.receive_payload(b"2", 1.0)
    assert conn.next_post() == b"\x1e".join([b"3"] + [f"4m{i}".encode() for i in range(15)])


# -- queued bytes (the client's send backpressure) -----------------------------------------


def test_queued_bytes_count_data_plus_one_per_packet() -> None:
    conn = opened()
    assert conn.queued_bytes == 0
    conn.send(Packet(PacketId.MESSAGE, "héllo"))
    conn.send(Packet(PacketId.MESSAGE, b"\x00" * 10))
    assert conn.queued_bytes == 6 + 11
    conn.receive_payload(b"2", 1.0)  # the PONG counts too
    assert conn.queued_bytes == 6 + 11 + 1


def test_queued_bytes_fall_as_posts_take_batches() -> None:
    conn = opened()
    for _ in range(40):
        conn.send(Packet(PacketId.MESSAGE, "x" * 9))
    assert conn.queued_bytes == 400
    assert conn.next_post() is not None  # 16 packets at most
    assert conn.queued_bytes == 400 - 16 * 10
    conn.post_finished()
    drain_posts(conn)
    assert conn.queued_bytes == 0


def test_queued_bytes_fall_to_zero_when_frames_are_taken() -> None:
    conn = opened_ws()
    conn.send(Packet(PacketId.MESSAGE, "abc"))
    conn.close()  # the CLOSE packet counts
    assert conn.queued_bytes == 4 + 1
    assert len(conn.next_frames()) == 2
    assert conn.queued_bytes == 0


def test_queued_bytes_fall_when_the_upgrade_takes_the_outbox() -> None:
    conn = opened()
    conn.start_probe()
    conn.receive_probe("3probe")
    conn.send(Packet(PacketId.MESSAGE, "queued"))
    assert conn.queued_bytes == 7
    conn.finish_upgrade()
    assert conn.queued_bytes == 0


def test_max_packets_bounds_each_post() -> None:
    conn = opened(max_packets=100)
    for i in range(250):
        conn.send(Packet(PacketId.MESSAGE, f"m{i}"))
    assert [len(batch) for batch in drain_posts(conn)] == [100, 100, 50]
