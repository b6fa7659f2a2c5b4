"""Fuzz of what the server controls: every byte a GET body or a frame can hold, in any state.

The decoders alone are fuzzed in tests/unit/test_packet.py and tests/unit/test_payload.py (they
raise only ProtocolError, and round trips are exact); here the whole session core is: it never
raises on input, closes exactly once with a typed error, and delivers what came before the fault.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from geventio import ProtocolError
from geventio._connection import Closed, Connection, Event, MessageReceived, Opened, State
from geventio._packet import Packet, PacketId
from geventio._payload import SEPARATOR, encode_payload
from geventio._reason import CloseReason
from tests.helpers import decode_prefix

FUZZ = settings(database=None, max_examples=300, deadline=None)

OPEN = "0" + json.dumps(
    {"sid": "f", "upgrades": ["websocket"], "pingInterval": 1000, "pingTimeout": 1000}
)
_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters=SEPARATOR), max_size=12)
_packets = st.one_of(
    st.builds(Packet, st.sampled_from([PacketId.MESSAGE, PacketId.PING, PacketId.NOOP]), _text),
    st.builds(Packet, st.just(PacketId.MESSAGE), st.binary(max_size=12)),
)
# Bytes that look like Engine.IO, mixed with bytes that break it.
_pieces = st.sampled_from(
    [b"4", b"b", b"bAQ==", b"2", b"3", b"6", b"1", b"0", b"5", b"7", b"\x1e", b"\xff", b"\xc3",
     b"{}", b"!", OPEN.encode(), "é".encode()]
)  # fmt: skip
_garbage = st.one_of(st.binary(max_size=40), st.lists(_pieces, max_size=12).map(b"".join))


def _check(events: list[Event], conn: Connection) -> None:
    """At most one Closed, last; its error (if any) is a ProtocolError; CLOSED after it."""
    closes = [e for e in events if isinstance(e, Closed)]
    assert len(closes) <= 1
    if closes:
        assert events[-1] is closes[0]
        assert conn.state is State.CLOSED
        if closes[0].error is not None:
            assert isinstance(closes[0].error, ProtocolError)
            assert closes[0].reason is CloseReason.TRANSPORT_ERROR


@FUZZ
@given(st.lists(_garbage, min_size=1, max_size=6), st.booleans())
def test_any_polling_bodies_in_any_state(bodies: list[bytes], open_first: bool) -> None:
    """Any GET bodies, opened or not: no exception, one typed close at most, nothing after it."""
    conn = Connection("polling")
    if open_first:
        assert isinstance(conn.receive_payload(OPEN.encode(), 0.0)[0], Opened)
    closed = False
    for now, body in enumerate(bodies):
        events = conn.receive_payload(body, float(now))
        if closed:
            assert events == []
        _check(events, conn)
        closed = conn.state is State.CLOSED


@FUZZ
@given(st.lists(st.one_of(_garbage, _garbage.map(lambda b: b.decode("latin-1"))), max_size=8))
def test_any_websocket_frames_in_any_state(frames: list[bytes | str]) -> None:
    """Any frames, text or binary, before and after the open: no exception, one typed close."""
    conn = Connection("websocket")
    for now, frame in enumerate([OPEN, *frames]):
        _check(conn.receive_frame(frame, float(now)), conn)


@FUZZ
@given(st.lists(_packets, min_size=1, max_size=8), _garbage)
def test_a_valid_payload_then_garbage_delivers_the_valid_part(
    packets: list[Packet], garbage: bytes
) -> None:
    """Valid packets, then anything: the valid packets come out whole, then at most one error."""
    body = encode_payload(packets) + b"\x1e" + garbage
    decoded, error = decode_prefix(body)
    assert decoded[: len(packets)] == packets
    if error is None:
        assert len(decoded) == len(packets) + 1 + garbage.count(b"\x1e")
    conn = Connection("polling")
    conn.receive_payload(OPEN.encode(), 0.0)
    events = conn.receive_payload(body, 1.0)
    messages = [e.data for e in events if isinstance(e, MessageReceived)]
    expected = [p.data for p in packets if p.packet_id is PacketId.MESSAGE]
    assert messages[: len(expected)] == expected
    _check(events, conn)


@FUZZ
@given(st.lists(st.one_of(_packets, st.sampled_from(["post", "frames", "ping"])), max_size=40))
def test_queued_bytes_match_the_outbox(ops: list[Packet | str]) -> None:
    """The send buffer's count never drifts: it is the outbox's size whatever is taken or added."""
    conn = Connection("polling")
    conn.receive_payload(OPEN.encode(), 0.0)
    queued: list[Packet] = []
    pong_waits = False  # our PONG is at the front, not yet taken: a PING shares it
    for op in ops:
        if isinstance(op, Packet):
            conn.send(op)
            queued.append(op)
        elif op == "ping":
            conn.receive_payload(b"2", 0.5)
            if not pong_waits:
                queued.insert(0, Packet(PacketId.PONG))
            pong_waits = True
        elif op == "post" and (body := conn.next_post()) is not None:
            conn.post_finished()
            taken, error = decode_prefix(body)
            assert error is None
            assert taken == queued[: len(taken)]
            del queued[: len(taken)]
            pong_waits = False  # a POST always takes the front packet
        assert conn.queued_bytes == sum(len(p.data) + 1 for p in queued)
