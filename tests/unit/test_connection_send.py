"""Unit tests for geventio._connection: POST batching and frames, ordering properties, and the
queued bytes behind the client's send backpressure.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geventio._connection import (
    Connection,
)
from geventio._packet import Packet, PacketId
from tests.helpers import decode_all
from tests.unit.connection_kit import (
    FAST,
    OPEN_PAYLOAD,
    M,
    drain,
    drain_posts,
    flushed,
    has_output,
    open_packet,
    opened,
    opened_ws,
)

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
