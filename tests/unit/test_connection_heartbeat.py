"""Unit tests for geventio._connection: pongs and the ping deadline (explicit ``now`` values)."""

from __future__ import annotations

import pytest

from geventio._connection import (
    Closed,
    PacketReceived,
    State,
)
from geventio._packet import Packet, PacketId
from geventio._reason import CloseReason
from tests.unit.connection_kit import (
    SPAN,
    M,
    drain,
    has_output,
    open_packet,
    opened,
    opened_ws,
    state,
)

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


def test_a_lone_ping_on_websocket_takes_over_our_waiting_pong_not_the_users() -> None:
    """The short path of ``"2"`` keeps the rules: our PONG waiting at the front takes the latest
    PING's (empty) data, the user's PONG stays, and the queued bytes follow."""
    conn = opened_ws(0.0)
    conn.send(Packet(PacketId.PONG, "mine"))
    conn.receive_frame("2abc", 1.0)
    assert conn.receive_frame("2", 2.0) == [PacketReceived(Packet(PacketId.PING))]
    assert conn.queued_bytes == 1 + len("mine") + 1
    assert conn.next_frames() == ["3", "3mine"]
    assert conn.next_deadline == 2.0 + SPAN


def test_a_lone_ping_while_closing_queues_no_pong_on_websocket() -> None:
    conn = opened_ws(0.0)
    conn.close()
    assert conn.next_frames() == ["1"]
    assert conn.receive_frame("2", 5.0) == [PacketReceived(Packet(PacketId.PING))]
    assert conn.next_frames() == []
    assert conn.next_deadline == 5.0 + SPAN
