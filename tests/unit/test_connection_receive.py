"""Unit tests for geventio._connection: opening, a poll answer a batch at a time, and invalid
or tolerated packets (the sans-IO session driven with explicit ``now`` values).
"""

from __future__ import annotations

import pytest

from geventio import ProtocolError
from geventio._connection import (
    Closed,
    Connection,
    MessageReceived,
    Opened,
    PacketReceived,
    State,
    Upgrade,
)
from geventio._packet import Packet, PacketId
from geventio._reason import CloseReason
from tests.helpers import decode_all
from tests.unit.connection_kit import (
    HANDSHAKE,
    OPEN_PAYLOAD,
    SEPARATOR_B,
    SPAN,
    M,
    assert_protocol_error_close,
    flushed,
    has_output,
    opened,
    opened_ws,
    state,
    transport,
    upgrade,
)

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
