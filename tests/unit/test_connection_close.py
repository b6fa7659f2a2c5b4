"""Unit tests for geventio._connection: how a session ends, and ``close()``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from geventio import ConnectionClosed, TransportError
from geventio._connection import (
    Closed,
    Connection,
    Event,
    MessageReceived,
    PacketReceived,
    State,
)
from geventio._packet import Packet, PacketId
from geventio._reason import CloseReason
from tests.unit.connection_kit import (
    OPEN_PAYLOAD,
    SPAN,
    M,
    drain,
    drain_posts,
    flushed,
    has_output,
    opened,
    opened_ws,
    single_error,
    state,
)

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
