"""Unit tests for geventio._packet: Packet values and their text / WebSocket encodings."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventio import ProtocolError
from geventio._packet import (
    Packet,
    PacketId,
    decode_binary,
    decode_text,
    encode_text,
    encode_ws,
)

FAST = settings(database=None, max_examples=200, deadline=None)

# (packet, text form) -- the text form is also the WebSocket form for every text packet.
TEXT_TABLE: list[tuple[Packet, str]] = [
    (Packet(PacketId.OPEN, '{"sid":"abc"}'), '0{"sid":"abc"}'),
    (Packet(PacketId.OPEN), "0"),
    (Packet(PacketId.CLOSE), "1"),
    (Packet(PacketId.PING), "2"),
    (Packet(PacketId.PING, "probe"), "2probe"),
    (Packet(PacketId.PONG), "3"),
    (Packet(PacketId.PONG, "probe"), "3probe"),
    (Packet(PacketId.MESSAGE, "hello"), "4hello"),
    (Packet(PacketId.MESSAGE), "4"),
    (Packet(PacketId.MESSAGE, "4"), "44"),
    (Packet(PacketId.MESSAGE, "b"), "4b"),
    (Packet(PacketId.MESSAGE, "bAQID"), "4bAQID"),
    (Packet(PacketId.MESSAGE, "é"), "4é"),
    (Packet(PacketId.MESSAGE, "日本"), "4日本"),
    (Packet(PacketId.MESSAGE, "😀 ok"), "4😀 ok"),
    (Packet(PacketId.MESSAGE, "line\nbreak\ttab\x00nul"), "4line\nbreak\ttab\x00nul"),
    (Packet(PacketId.UPGRADE), "5"),
    (Packet(PacketId.NOOP), "6"),
]

# (packet, text form) for binary messages: "b" + base64.
BINARY_TABLE: list[tuple[Packet, str]] = [
    (Packet(PacketId.MESSAGE, b""), "b"),
    (Packet(PacketId.MESSAGE, b"\x00"), "bAA=="),
    (Packet(PacketId.MESSAGE, b"\x01\x02"), "bAQI="),
    (Packet(PacketId.MESSAGE, b"\x01\x02\x03"), "bAQID"),
    (Packet(PacketId.MESSAGE, b"\x01\x02\x03\x04"), "bAQIDBA=="),
    (Packet(PacketId.MESSAGE, b"\xff\xfe\xfd"), "b//79"),
    (Packet(PacketId.MESSAGE, b"hello"), "baGVsbG8="),
]


def _ids(table: list[tuple[Packet, str]]) -> list[str]:
    return [repr(wire) for _, wire in table]


# -- text form ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("packet", "wire"), TEXT_TABLE, ids=_ids(TEXT_TABLE))
def test_encode_text_table(packet: Packet, wire: str) -> None:
    assert encode_text(packet) == wire


@pytest.mark.parametrize(("packet", "wire"), TEXT_TABLE, ids=_ids(TEXT_TABLE))
def test_decode_text_table(packet: Packet, wire: str) -> None:
    decoded = decode_text(wire)
    assert decoded == packet
    assert decoded.packet_id is packet.packet_id
    assert type(decoded.data) is str
    assert decoded.binary is False


@pytest.mark.parametrize(("packet", "wire"), BINARY_TABLE, ids=_ids(BINARY_TABLE))
def test_encode_text_binary_table(packet: Packet, wire: str) -> None:
    assert encode_text(packet) == wire
    assert isinstance(packet.data, bytes)
    assert wire == "b" + base64.b64encode(packet.data).decode("ascii")


@pytest.mark.parametrize(("packet", "wire"), BINARY_TABLE, ids=_ids(BINARY_TABLE))
def test_decode_text_binary_table(packet: Packet, wire: str) -> None:
    decoded = decode_text(wire)
    assert decoded == packet
    assert decoded.packet_id is PacketId.MESSAGE
    assert type(decoded.data) is bytes
    assert decoded.binary is True


def test_all_seven_packet_types_have_their_digit() -> None:
    assert [encode_text(Packet(pid)) for pid in PacketId] == ["0", "1", "2", "3", "4", "5", "6"]
    assert [decode_text(str(i)).packet_id for i in range(7)] == list(PacketId)
    assert [int(p) for p in PacketId] == [0, 1, 2, 3, 4, 5, 6]


def test_empty_message_is_an_empty_text_message() -> None:
    packet = decode_text("4")
    assert packet == Packet(PacketId.MESSAGE, "")
    assert packet.data == ""
    assert type(packet.data) is str
    assert packet != Packet(PacketId.MESSAGE, b"")


def test_empty_binary_message_is_b() -> None:
    assert decode_text("b") == Packet(PacketId.MESSAGE, b"")
    assert encode_text(Packet(PacketId.MESSAGE, b"")) == "b"
    assert encode_ws(Packet(PacketId.MESSAGE, b"")) == b""


@pytest.mark.parametrize("text", ["é", "日本", "😀", "a\u0301", "𝄞 clef", "mixed é日😀"])
def test_multibyte_utf8_round_trip(text: str) -> None:
    packet = Packet(PacketId.MESSAGE, text)
    assert encode_text(packet) == "4" + text
    assert decode_text(encode_text(packet)) == packet
    frame = encode_ws(packet)
    assert frame == "4" + text
    assert isinstance(frame, str)
    assert decode_text(frame) == packet


# -- WebSocket form ----------------------------------------------------------------------------


@pytest.mark.parametrize(("packet", "wire"), TEXT_TABLE, ids=_ids(TEXT_TABLE))
def test_encode_ws_text_is_the_text_form(packet: Packet, wire: str) -> None:
    frame = encode_ws(packet)
    assert type(frame) is str
    assert frame == wire


@pytest.mark.parametrize(("packet", "wire"), BINARY_TABLE, ids=_ids(BINARY_TABLE))
def test_encode_ws_binary_is_raw_bytes(packet: Packet, wire: str) -> None:
    frame = encode_ws(packet)
    assert type(frame) is bytes
    assert frame == packet.data
    assert frame != wire.encode("ascii")  # never the base64 text form


@pytest.mark.parametrize("data", [b"", b"\x00", b"4hello", b"\xff" * 1000, b"b" + b"AQID"])
def test_decode_binary_is_always_a_binary_message(data: bytes) -> None:
    packet = decode_binary(data)
    assert packet == Packet(PacketId.MESSAGE, data)
    assert packet.packet_id is PacketId.MESSAGE
    assert packet.data == data
    assert type(packet.data) is bytes


# -- invalid input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wire",
    [
        "",  # empty packet
        "7",  # unknown type
        "8hello",
        "9",
        "x",
        "xhello",
        "/",  # the character just below "0"
        ":",  # the character just above "9"
        " 4",
        "é",
        "日本",
        "B",  # only a lower-case b means binary
        "b!!!",  # invalid base64 alphabet
        "bAQI",  # bad padding: 3 characters
        "bAQIDBA=",  # bad padding: 7 characters
        "bAQIDBA",  # missing padding
        "bQ",  # one character
        "b====",  # padding only
        "b=AAA",
        "bAQ ID",  # whitespace
        "bAQID\n",
        "bé",  # non-ASCII in base64
    ],
)
def test_decode_text_invalid_raises_protocol_error(wire: str) -> None:
    with pytest.raises(ProtocolError):
        decode_text(wire)


# -- Packet value semantics --------------------------------------------------------------------


def test_packet_is_immutable() -> None:
    packet = Packet(PacketId.MESSAGE, "a")
    with pytest.raises(AttributeError):
        packet.data = "b"
    with pytest.raises(AttributeError):
        packet.packet_id = PacketId.PING
    with pytest.raises(AttributeError):
        packet.extra = 1
    assert packet == Packet(PacketId.MESSAGE, "a")


def test_packet_attributes_cannot_be_deleted() -> None:
    packet = Packet(PacketId.MESSAGE, "a")
    with pytest.raises(AttributeError):
        del packet.data
    with pytest.raises(AttributeError):
        del packet.packet_id
    assert packet.data == "a"
    assert packet.packet_id is PacketId.MESSAGE


def test_packet_equality_and_hash() -> None:
    a = Packet(PacketId.MESSAGE, "x")
    b = Packet(4, "x")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, Packet(PacketId.MESSAGE, "x")}) == 1
    assert a != Packet(PacketId.MESSAGE, "y")
    assert a != Packet(PacketId.PING, "x")
    assert a != Packet(PacketId.MESSAGE, b"x")  # text and binary differ
    assert Packet(PacketId.MESSAGE, b"x") == Packet(PacketId.MESSAGE, bytearray(b"x"))
    assert a != "4x"
    assert a.__eq__("4x") is NotImplemented
    assert {a: 1}[Packet(4, "x")] == 1


def test_packet_defaults_and_repr() -> None:
    packet = Packet(PacketId.CLOSE)
    assert packet.data == ""
    assert type(packet.data) is str
    assert packet.binary is False
    assert repr(packet) == "Packet(CLOSE, '')"
    assert repr(Packet(PacketId.MESSAGE, b"\x01")) == "Packet(MESSAGE, b'\\x01')"


@pytest.mark.parametrize(("value", "expected"), [(i, pid) for i, pid in enumerate(PacketId)])
def test_int_packet_ids_are_converted(value: int, expected: PacketId) -> None:
    packet = Packet(value)
    assert type(packet.packet_id) is PacketId
    assert packet.packet_id is expected


@pytest.mark.parametrize("value", [7, -1, 100])
def test_unknown_int_packet_id_raises_value_error(value: int) -> None:
    with pytest.raises(ValueError, match=str(value)):
        Packet(value)


def test_bytearray_is_copied_to_bytes() -> None:
    source = bytearray(b"abc")
    packet = Packet(PacketId.MESSAGE, source)
    source[0] = ord("z")
    assert type(packet.data) is bytes
    assert packet.data == b"abc"
    assert packet.binary is True


def test_memoryview_is_copied_to_bytes() -> None:
    source = bytearray(b"0123456789")
    packet = Packet(PacketId.MESSAGE, memoryview(source)[2:5])
    source[2] = ord("z")
    assert type(packet.data) is bytes
    assert packet.data == b"234"
    assert encode_ws(packet) == b"234"


@pytest.mark.parametrize("data", [1, 1.5, None, ["a"], {"a": 1}, object()])
def test_other_data_types_raise_type_error(data: object) -> None:
    with pytest.raises(TypeError, match="str or bytes"):
        Packet(PacketId.MESSAGE, data)  # type: ignore[arg-type]


# -- properties --------------------------------------------------------------------------------


@FAST
@given(st.text())
def test_text_message_round_trips(text: str) -> None:
    packet = Packet(PacketId.MESSAGE, text)
    wire = encode_text(packet)
    assert wire == "4" + text
    assert decode_text(wire) == packet
    frame = encode_ws(packet)
    assert isinstance(frame, str)
    assert decode_text(frame) == packet


@FAST
@given(st.binary())
def test_binary_message_round_trips(data: bytes) -> None:
    packet = Packet(PacketId.MESSAGE, data)
    wire = encode_text(packet)
    assert wire == "b" + base64.b64encode(data).decode("ascii")
    assert wire.isascii()
    decoded = decode_text(wire)
    assert decoded == packet
    assert type(decoded.data) is bytes
    frame = encode_ws(packet)
    assert isinstance(frame, bytes)
    assert frame == data
    assert decode_binary(frame) == packet


@FAST
@given(st.sampled_from(list(PacketId)), st.text())
def test_any_text_packet_round_trips(packet_id: PacketId, text: str) -> None:
    packet = Packet(packet_id, text)
    assert decode_text(encode_text(packet)) == packet
    assert encode_text(packet)[0] == str(int(packet_id))


@FAST
@given(st.text())
def test_decode_text_raises_nothing_but_protocol_error(text: str) -> None:
    try:
        packet = decode_text(text)
    except ProtocolError:
        return
    assert isinstance(packet, Packet)
    if not packet.binary:
        assert encode_text(packet) == text


@FAST
@given(st.text(alphabet="ABCDabcd0189+/=!- \n\xe9", max_size=12))
def test_decode_base64_fuzz_raises_nothing_but_protocol_error(body: str) -> None:
    try:
        packet = decode_text("b" + body)
    except ProtocolError:
        return
    assert packet.packet_id is PacketId.MESSAGE
    assert type(packet.data) is bytes
    assert base64.b64decode(body, validate=True) == packet.data
