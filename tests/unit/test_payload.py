"""Unit tests for geventio._payload: polling payloads, encoded sizes and POST batching."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventio import ProtocolError
from geventio._packet import Packet, PacketId, decode_text, encode_text
from geventio._payload import (
    MAX_CONTROL_PACKETS,
    MAX_PACKETS,
    SEPARATOR,
    encode_payload,
    encoded_size,
    iter_payload,
    take_batch,
)
from tests.helpers import decode_all, decode_prefix

FAST = settings(database=None, max_examples=150, deadline=None)

M = PacketId.MESSAGE

# (packets, payload)
PAYLOAD_TABLE: list[tuple[list[Packet], bytes]] = [
    ([Packet(M, "hello")], b"4hello"),
    ([Packet(M)], b"4"),
    ([Packet(PacketId.CLOSE)], b"1"),
    ([Packet(PacketId.NOOP)], b"6"),
    ([Packet(M, b"\x01\x02\x03")], b"bAQID"),
    ([Packet(M, b"")], b"b"),
    ([Packet(M, "a"), Packet(M, "b")], b"4a\x1e4b"),
    ([Packet(M), Packet(M)], b"4\x1e4"),
    (
        [Packet(M, "a"), Packet(PacketId.PING), Packet(M, b"\x01\x02"), Packet(PacketId.CLOSE)],
        b"4a\x1e2\x1ebAQI=\x1e1",
    ),
    ([Packet(M, "é"), Packet(M, "日本"), Packet(M, "😀")], "4é\x1e4日本\x1e4😀".encode()),
    (
        [Packet(PacketId.OPEN, '{"sid":"x"}'), Packet(M, "hi")],
        b'0{"sid":"x"}\x1e4hi',
    ),
]


def _ids(table: list[tuple[list[Packet], bytes]]) -> list[str]:
    return [repr(body) for _, body in table]


# -- encode / decode tables --------------------------------------------------------------------


def test_separator_is_record_separator() -> None:
    assert SEPARATOR == "\x1e"
    assert MAX_PACKETS == 16


@pytest.mark.parametrize(("packets", "body"), PAYLOAD_TABLE, ids=_ids(PAYLOAD_TABLE))
def test_encode_payload_table(packets: list[Packet], body: bytes) -> None:
    encoded = encode_payload(packets)
    assert type(encoded) is bytes
    assert encoded == body


@pytest.mark.parametrize(("packets", "body"), PAYLOAD_TABLE, ids=_ids(PAYLOAD_TABLE))
def test_decode_payload_table(packets: list[Packet], body: bytes) -> None:
    assert decode_all(body) == packets


@pytest.mark.parametrize(("packets", "body"), PAYLOAD_TABLE, ids=_ids(PAYLOAD_TABLE))
def test_decode_payload_accepts_str(packets: list[Packet], body: bytes) -> None:
    assert decode_all(body.decode("utf-8")) == packets


def test_encode_payload_accepts_any_iterable() -> None:
    packets = (Packet(M, str(i)) for i in range(3))
    assert encode_payload(packets) == b"40\x1e41\x1e42"


def test_encode_empty_payload_is_empty() -> None:
    assert encode_payload([]) == b""


def test_decoded_binary_and_text_keep_their_kind() -> None:
    text, binary = decode_all(b"4AQID\x1ebAQID")
    assert text == Packet(M, "AQID")
    assert type(text.data) is str
    assert binary == Packet(M, b"\x01\x02\x03")
    assert type(binary.data) is bytes


@pytest.mark.parametrize(
    "body",
    [
        b"",  # empty payload
        b"\x1e",
        b"4a\x1e",  # trailing separator
        b"4a\x1e\x1e",
        b"\x1e4a",  # leading separator
        b"4a\x1e\x1e4b",  # empty packet in the middle
        b"4a\x1ex",  # garbage after a valid packet
        b"4a\x1e7",  # unknown type after a valid packet
        b"4a\x1eb!!!",  # bad base64 after a valid packet
        b"bAQI",  # bad padding
        b"x",
        b"7hello",
        b"4a\x1e4b\x1e",
    ],
)
def test_decode_payload_invalid_raises_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_all(body)
    with pytest.raises(ProtocolError):
        decode_all(body.decode("utf-8"))


@pytest.mark.parametrize(
    "body",
    [
        b"4\xff",  # never valid in UTF-8
        b"4\xc3",  # truncated two-byte sequence
        b"4\xc3\x28",  # invalid continuation
        b"4\xc0\xaf",  # overlong encoding
        b"4\xed\xa0\x80",  # encoded surrogate
        b"4\xf4\x90\x80\x80",  # above U+10FFFF
        b"\xfe\xff",
        b"4ok\x1e4\xe6\x97",  # truncated in the second packet
    ],
)
def test_decode_payload_invalid_utf8_raises_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError, match="UTF-8"):
        decode_all(body)


def test_record_separator_inside_text_cannot_round_trip() -> None:
    """The polling format has no escaping: a text message containing \\x1e is split in two.

    This is a limit of the Engine.IO v4 polling format, not of the encoder: the separator is
    written as is, and the decoder reads two packets (here a message and a PING).
    """
    packet = Packet(M, "a\x1e2probe")
    body = encode_payload([packet])
    assert body == b"4a\x1e2probe"
    assert decode_all(body) == [Packet(M, "a"), Packet(PacketId.PING, "probe")]
    assert decode_all(body) != [packet]


# -- encoded_size ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("packet", "size"),
    [
        (Packet(PacketId.CLOSE), 1),
        (Packet(M), 1),
        (Packet(M, "hello"), 6),
        (Packet(M, "é"), 3),
        (Packet(M, "日本"), 7),
        (Packet(M, "😀"), 5),
        (Packet(M, b""), 1),
        (Packet(M, b"a"), 5),
        (Packet(M, b"ab"), 5),
        (Packet(M, b"abc"), 5),
        (Packet(M, b"abcd"), 9),
        (Packet(M, b"x" * 100), 1 + 4 * 34),
    ],
)
def test_encoded_size_table(packet: Packet, size: int) -> None:
    assert encoded_size(packet) == size
    assert len(encode_payload([packet])) == size


# -- take_batch --------------------------------------------------------------------------------


def _msgs(*texts: str) -> list[Packet]:
    return [Packet(M, t) for t in texts]


def test_take_batch_empty_queue_returns_empty() -> None:
    queue: list[Packet] = []
    assert take_batch(queue, 1000) == []
    assert take_batch(queue, 1000, 1) == []


def test_take_batch_respects_sixteen_packets() -> None:
    packets = _msgs(*(str(i) for i in range(40)))
    queue = list(packets)
    first = take_batch(queue, 1_000_000)
    assert first == packets[:16]
    assert len(queue) == 24
    second = take_batch(queue, 1_000_000)
    assert second == packets[16:32]
    third = take_batch(queue, 1_000_000)
    assert third == packets[32:]
    assert not queue


def test_take_batch_respects_max_packets_argument() -> None:
    packets = _msgs("a", "b", "c", "d", "e")
    queue = list(packets)
    assert take_batch(queue, 1000, 2) == packets[:2]
    assert take_batch(queue, 1000, 2) == packets[2:4]
    assert take_batch(queue, 1000, 2) == packets[4:]
    assert not queue


@pytest.mark.parametrize(("max_payload", "count"), [(10, 1), (11, 2), (16, 2), (17, 3), (100, 3)])
def test_take_batch_text_size_limit_is_exact(max_payload: int, count: int) -> None:
    # each packet is "4aaaa" (5 bytes); n packets take 5n + (n - 1) bytes
    packets = _msgs("aaaa", "aaaa", "aaaa")
    queue = list(packets)
    batch = take_batch(queue, max_payload)
    assert batch == packets[:count]
    assert len(queue) == 3 - count
    if count > 1:
        assert len(encode_payload(batch)) <= max_payload


@pytest.mark.parametrize(("max_payload", "count"), [(14, 1), (15, 2), (22, 2), (23, 3)])
def test_take_batch_counts_utf8_bytes(max_payload: int, count: int) -> None:
    # "4日本" is 7 bytes in UTF-8 but 3 characters
    packets = _msgs("日本", "日本", "日本")
    queue = list(packets)
    assert take_batch(queue, max_payload) == packets[:count]


@pytest.mark.parametrize(
    ("data", "max_payload", "count"),
    [
        (b"xxxx", 18, 1),  # "b" + 8 base64 chars = 9; two = 19
        (b"xxxx", 19, 2),
        (b"xxx", 10, 1),  # "b" + 4 = 5; two = 11
        (b"xxx", 11, 2),
        (b"x", 11, 2),  # one byte still takes 4 base64 characters
        (b"x", 10, 1),
        (b"", 2, 1),  # "b"; two = 3
        (b"", 3, 2),
    ],
)
def test_take_batch_counts_base64_size(data: bytes, max_payload: int, count: int) -> None:
    packets = [Packet(M, data), Packet(M, data)]
    queue = list(packets)
    batch = take_batch(queue, max_payload)
    assert batch == packets[:count]
    assert len(encode_payload(packets)) == 2 * (1 + 4 * ((len(data) + 2) // 3)) + 1


def test_take_batch_oversized_packet_goes_alone() -> None:
    big = Packet(M, "x" * 100)
    small = Packet(M, "s")
    queue = [big, small, small]
    assert take_batch(queue, 10) == [big]
    assert take_batch(queue, 10) == [small, small]
    assert not queue


def test_take_batch_oversized_packet_in_the_middle() -> None:
    big = Packet(M, b"\x00" * 60)
    a, b = Packet(M, "a"), Packet(M, "b")
    queue = [a, big, b]
    assert take_batch(queue, 20) == [a]
    assert take_batch(queue, 20) == [big]
    assert take_batch(queue, 20) == [b]
    assert not queue


def test_take_batch_never_empty_for_a_non_empty_queue() -> None:
    packets = _msgs("one", "two", "three")
    queue = list(packets)
    batches = []
    while queue:
        batch = take_batch(queue, 1)
        assert batch
        batches.append(batch)
    assert batches == [[p] for p in packets]


def test_take_batch_preserves_order_and_leaves_the_rest() -> None:
    packets = [Packet(M, "a"), Packet(PacketId.PONG), Packet(M, b"\x01"), Packet(PacketId.CLOSE)]
    queue = list(packets)
    assert take_batch(queue, 1000) == packets
    assert not queue
    queue = list(packets)
    batch = take_batch(queue, 4)  # "4a" + sep + "3" = 4 bytes
    assert batch == packets[:2]
    assert list(queue) == packets[2:]


# -- properties --------------------------------------------------------------------------------

# Text without the separator (which cannot round trip, see above) and without lone surrogates
# (which UTF-8 cannot encode); every packet type for text.
_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x1e"))
_text_packets = st.builds(Packet, st.sampled_from(list(PacketId)), _text)
_binary_packets = st.builds(Packet, st.just(M), st.binary())
packets_strategy = st.one_of(_text_packets, _binary_packets)


@FAST
@given(st.lists(packets_strategy, min_size=1, max_size=20))
def test_payload_round_trips(packets: list[Packet]) -> None:
    body = encode_payload(packets)
    decoded = decode_all(body)
    assert decoded == packets
    assert [type(p.data) for p in decoded] == [type(p.data) for p in packets]
    assert len(body) == sum(encoded_size(p) for p in packets) + len(packets) - 1


@FAST
@given(packets_strategy)
def test_encoded_size_is_exact(packet: Packet) -> None:
    assert encoded_size(packet) == len(encode_text(packet).encode("utf-8"))
    assert encoded_size(packet) == len(encode_payload([packet]))


@FAST
@given(st.binary(max_size=64))
def test_decode_payload_bytes_raises_nothing_but_protocol_error(body: bytes) -> None:
    try:
        packets = decode_all(body)
    except ProtocolError:
        return
    assert packets
    assert all(isinstance(p, Packet) for p in packets)


@FAST
@given(st.lists(st.sampled_from(["4", "b", "bAQ", "AQID", "=", "\x1e", "7", "", "é", "\xff"])))
def test_decode_payload_fragments_raise_nothing_but_protocol_error(parts: list[str]) -> None:
    body = "".join(parts).encode("utf-8", "surrogatepass")
    try:
        packets = decode_all(body)
    except ProtocolError:
        return
    assert len(packets) == body.count(b"\x1e") + 1


@FAST
@given(st.text())
def test_decode_payload_text_raises_nothing_but_protocol_error(body: str) -> None:
    try:
        packets = decode_all(body)
    except ProtocolError:
        return
    assert len(packets) == body.count(SEPARATOR) + 1


@FAST
@given(
    st.lists(packets_strategy, max_size=60),
    st.integers(min_value=1, max_value=200),
    st.integers(min_value=1, max_value=MAX_PACKETS),
)
def test_take_batch_drains_queue_in_order(
    packets: list[Packet], max_payload: int, max_packets: int
) -> None:
    queue = list(packets)
    taken: list[Packet] = []
    while queue:
        before = len(queue)
        batch = take_batch(queue, max_payload, max_packets)
        assert batch, "take_batch returned nothing for a non-empty queue"
        assert len(queue) == before - len(batch)
        assert len(batch) <= max_packets
        if len(batch) > 1:
            assert len(encode_payload(batch)) <= max_payload
        if queue and len(batch) < max_packets:
            # the batch is as large as allowed: the next packet would not have fit
            assert len(encode_payload([*batch, queue[0]])) > max_payload
        taken.extend(batch)
    assert taken == packets


@FAST
@given(st.lists(packets_strategy, min_size=1, max_size=60))
def test_take_batch_default_limits(packets: list[Packet]) -> None:
    queue = list(packets)
    taken: list[Packet] = []
    while queue:
        batch = take_batch(queue, 1_000_000)
        assert 1 <= len(batch) <= 16
        taken.extend(batch)
    assert taken == packets


# -- lazy decoding and the bound on control packets ------------------------------------------


def test_iter_payload_yields_the_packets_before_a_fault_then_raises() -> None:
    packets = iter_payload(b"4a\x1e2\x1e9\x1e4never")
    assert next(packets) == Packet(M, "a")
    assert next(packets) == Packet(PacketId.PING)
    with pytest.raises(ProtocolError, match="unknown packet type"):
        next(packets)


def test_iter_payload_yields_what_precedes_invalid_utf8_then_raises() -> None:
    packets = iter_payload(b"4a\x1e4b\x1e4\xff")
    assert [next(packets), next(packets)] == [Packet(M, "a"), Packet(M, "b")]
    with pytest.raises(ProtocolError, match="UTF-8"):
        next(packets)


@pytest.mark.parametrize("body", [b"", b"\xff"])
def test_iter_payload_of_nothing_valid_raises_at_once(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        next(iter_payload(body))


@pytest.mark.parametrize("control", ["2", "3", "6"])
def test_control_packets_past_the_bound_are_a_protocol_error(control: str) -> None:
    body = SEPARATOR.join(["4a", control, "4b", control, "4c", control, "4d"]).encode()
    packets = iter_payload(body, max_control=2)
    taken = [next(packets) for _ in range(5)]
    assert taken[4] == Packet(M, "c")
    with pytest.raises(ProtocolError, match="more than 2 control packets"):
        next(packets)
    decoded, error = decode_prefix(body)  # the default bound is far from 3
    assert error is None
    assert len(decoded) == 7


def test_messages_do_not_count_against_the_control_bound() -> None:
    body = SEPARATOR.join(["4"] * 1000 + ["6"]).encode()
    assert len(list(iter_payload(body, max_control=1))) == 1001


def test_the_default_control_bound_is_generous() -> None:
    """Far above the handful a real server sends (tests/faults/test_fault_flood.py hits it)."""
    assert MAX_CONTROL_PACKETS >= 100_000
    body = SEPARATOR.join(["2"] * 100_000).encode()
    assert decode_prefix(body)[1] is None


def test_iter_payload_does_not_hold_every_packet() -> None:
    """50,000 NOOPs taken one by one: memory stays near the body's, no list of packets."""
    body = b"6" + b"\x1e6" * 49_999
    tracemalloc.start()
    try:
        for _ in iter_payload(body):
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(body), peak  # the text, and the packets of one window of it


@FAST
@given(st.lists(packets_strategy, min_size=1, max_size=20))
def test_iter_payload_round_trips(packets: list[Packet]) -> None:
    body = encode_payload(packets)
    assert list(iter_payload(body)) == packets


def _reference(text: str) -> tuple[list[Packet], bool]:
    """The packets of ``text`` split at once, and whether a fault ended them."""
    packets = []
    for part in text.split(SEPARATOR):
        try:
            packets.append(decode_text(part))
        except ProtocolError:
            return packets, True
    return packets, False


@FAST
@given(st.lists(st.integers(min_value=0, max_value=9000), min_size=1, max_size=12))
def test_iter_payload_across_windows_agrees_with_one_split(sizes: list[int]) -> None:
    """Packets shorter and longer than the 4096-character window, and empty (invalid) ones."""
    text = SEPARATOR.join("4" + "x" * (size - 1) if size else "" for size in sizes)
    expected, faulty = _reference(text)
    decoded: list[Packet] = []
    try:
        decoded.extend(iter_payload(text.encode()))
    except ProtocolError:
        assert faulty
    else:
        assert not faulty
    assert decoded == expected
