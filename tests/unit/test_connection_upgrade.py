"""Unit tests for geventio._connection: the upgrade sub-machine (probe, pause, finish, abandon)."""

from __future__ import annotations

import pytest

from geventio import ProtocolError
from geventio._connection import (
    Connection,
    Frame,
    State,
    Upgrade,
)
from geventio._packet import Packet, PacketId, decode_binary, decode_text
from tests.unit.connection_kit import (
    SPAN,
    M,
    drain,
    has_output,
    open_packet,
    opened,
    opened_ws,
    paused,
    state,
    transport,
    upgrade,
)

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
