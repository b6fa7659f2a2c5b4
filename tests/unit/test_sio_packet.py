"""Unit tests for geventio.socketio._packet: the sans-IO Socket.IO v5 packet codec.

Three sources of truth: the examples of the socket.io-protocol README (tables), python-socketio
5.x's ``socketio.packet.Packet`` (differential tests: same bytes out, same values in), and the
protocol's rules (a table of refusals, a fuzz that only ever sees ProtocolError).
"""

from __future__ import annotations

import ast
import json
import math
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from socketio.packet import Packet as SioPacket

import geventio.socketio._packet as codec
from geventio.socketio._packet import (
    Decoder,
    Packet,
    PacketType,
    encode,
    encode_event,
    has_binary,
)
from geventio.socketio.exceptions import ProtocolError

FAST = settings(database=None, max_examples=150, deadline=None)
T = PacketType
MAX_ID = 2**53 - 1
PLACEHOLDER_0 = {"_placeholder": True, "num": 0}


def _pending(decoder: Decoder) -> bool:
    """``decoder.pending``, read through a call so that mypy does not narrow it."""
    return decoder.pending


def _decode(messages: list[str | bytes], decoder: Decoder | None = None) -> Packet:
    """Feed every message; only the last may complete the packet."""
    decoder = decoder or Decoder()
    *head, last = messages
    for message in head:
        assert decoder.feed(message) is None
        assert decoder.pending
    packet = decoder.feed(last)
    assert packet is not None
    assert not decoder.pending
    return packet


def _same(got: Any, want: Any) -> bool:
    """Equal, and of the same types all the way down (so True is not 1, nor 1.0 is 1)."""
    if type(got) is not type(want):
        return False
    if isinstance(want, list):
        return len(got) == len(want) and all(map(_same, got, want))
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(_same(got[k], want[k]) for k in want)
    return bool(got == want)


def _normal(data: Any) -> Any:
    """What a decoder gives back for ``data``: tuples as lists, bytes-like as bytes."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, (list, tuple)):
        return [_normal(item) for item in data]
    if isinstance(data, dict):
        return {key: _normal(value) for key, value in data.items()}
    return data


# =========================================================================
# Tables: packet <-> wire
# =========================================================================

#: every example of the socket.io-protocol README's "Packet encoding" and "Sample session"
README: list[tuple[Packet, list[str | bytes]]] = [
    (Packet(T.CONNECT), ["0"]),
    (Packet(T.CONNECT, "/", {"sid": "wZX3oN0bSVIhsaknAAAI"}), ['0{"sid":"wZX3oN0bSVIhsaknAAAI"}']),
    (Packet(T.CONNECT, "/admin"), ["0/admin,"]),
    (
        Packet(T.CONNECT, "/admin", {"sid": "oSO0OpakMV_3jnilAAAA"}),
        ['0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}'],
    ),
    (Packet(T.CONNECT, "/admin", {"token": "123"}), ['0/admin,{"token":"123"}']),
    (
        Packet(T.CONNECT_ERROR, "/", {"message": "Not authorized"}),
        ['4{"message":"Not authorized"}'],
    ),
    (Packet(T.EVENT, "/", ["foo"]), ['2["foo"]']),
    (Packet(T.EVENT, "/admin", ["bar"]), ['2/admin,["bar"]']),
    (
        Packet(T.BINARY_EVENT, "/", ["baz", b"\x01\x02\x03\x04"]),
        ['51-["baz",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"],
    ),
    (
        Packet(T.BINARY_EVENT, "/admin", ["baz", b"\x01\x02", b"\x03\x04"]),
        [
            '52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
            b"\x01\x02",
            b"\x03\x04",
        ],
    ),
    (Packet(T.EVENT, "/", ["foo"], 12), ['212["foo"]']),
    (Packet(T.ACK, "/", [], 12), ["312[]"]),
    (Packet(T.EVENT, "/admin", ["foo"], 13), ['2/admin,13["foo"]']),
    (Packet(T.ACK, "/admin", ["bar"], 13), ['3/admin,13["bar"]']),
    (
        Packet(T.BINARY_EVENT, "/", ["foo", b"\x01\x02\x03\x04"], 14),
        ['51-14["foo",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"],
    ),
    (Packet(T.ACK, "/", ["bar"], 14), ['314["bar"]']),
    (Packet(T.EVENT, "/", ["foo"], 15), ['215["foo"]']),
    (
        Packet(T.BINARY_ACK, "/", ["bar", b"\x01\x02\x03\x04"], 15),
        ['61-15["bar",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"],
    ),
    (Packet(T.DISCONNECT), ["1"]),
    (Packet(T.DISCONNECT, "/admin"), ["1/admin,"]),
    # sample session
    (Packet(T.EVENT, "/", ["hey", "Jude"]), ['2["hey","Jude"]']),
    (Packet(T.EVENT, "/admin", ["tellme"], 1), ['2/admin,1["tellme"]']),
    (
        Packet(T.BINARY_ACK, "/admin", [b"\xff"], 1),
        ['61-/admin,1[{"_placeholder":true,"num":0}]', b"\xff"],
    ),
]

#: beyond the README: nesting, ordering, edge values
MORE: list[tuple[Packet, list[str | bytes]]] = [
    (
        Packet(T.BINARY_EVENT, "/", ["e", {"a": [b"1", {"b": b"2"}], "c": b"3"}, b"4"], 7),
        [
            '54-7["e",{"a":[{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}],'
            '"c":{"_placeholder":true,"num":2}},{"_placeholder":true,"num":3}]',
            b"1",
            b"2",
            b"3",
            b"4",
        ],
    ),
    (Packet(T.BINARY_ACK, "/", [b""], 0), ['61-0[{"_placeholder":true,"num":0}]', b""]),
    (Packet(T.EVENT, "/", ["é", "日本", "😀"]), ['2["\\u00e9","\\u65e5\\u672c","\\ud83d\\ude00"]']),
    (
        Packet(T.EVENT, "/", ["x", None, True, False, 0, -1.5, {}, []]),
        ['2["x",null,true,false,0,-1.5,{},[]]'],
    ),
    (Packet(T.EVENT, "/", ["x"], MAX_ID), [f'2{MAX_ID}["x"]']),
    (Packet(T.ACK, "/", []), ["3[]"]),
    (Packet(T.CONNECT_ERROR, "/nsp", "refused"), ['4/nsp,"refused"']),
    (
        Packet(T.CONNECT_ERROR, "/", {"message": "no", "data": {"why": 1}}),
        ['4{"message":"no","data":{"why":1}}'],
    ),
    (Packet(T.EVENT, "/", ['a"b\\c\n']), ['2["a\\"b\\\\c\\n"]']),
    (Packet(T.EVENT, "/", ["[1]"], 3), ['23["[1]"]']),
    (Packet(T.EVENT, "/a/b-c", ["x"]), ['2/a/b-c,["x"]']),
]
TABLE = README + MORE


def test_encode_table() -> None:
    wrong = {repr(wire[0]): encode(packet) for packet, wire in TABLE if encode(packet) != wire}
    assert not wrong


def test_decode_table() -> None:
    wrong = {}
    for packet, wire in TABLE:
        got = _decode(wire)
        if got != packet or not _same(got.data, packet.data) or type(got.type) is not PacketType:
            wrong[repr(wire[0])] = got
    assert not wrong


NORMALIZED: list[tuple[Packet, list[str | bytes]]] = [
    # the type on the wire follows the data: bytes-like anywhere make it BINARY_*
    (
        Packet(T.EVENT, "/", ("t", (1, bytearray(b"ab")))),
        ['51-["t",[1,{"_placeholder":true,"num":0}]]', b"ab"],
    ),
    (
        Packet(T.ACK, "/", (memoryview(b"mv"),), 2),
        ['61-2[{"_placeholder":true,"num":0}]', b"mv"],
    ),
    (Packet(T.BINARY_EVENT, "/", ["no bytes"]), ['2["no bytes"]']),
    (Packet(T.BINARY_ACK, "/", [], 4), ["34[]"]),
    (Packet(T.EVENT, "/", ("t", ("u", 1))), ['2["t",["u",1]]']),
    # json's own rule for keys, as python-socketio sends them
    (
        Packet(T.EVENT, "/", ["k", {1: "i", None: "n", 2.5: "f"}]),
        ['2["k",{"1":"i","null":"n","2.5":"f"}]'],
    ),
    # a dict that looks like a placeholder is plain data in a packet without attachments
    (Packet(T.EVENT, "/", ["p", PLACEHOLDER_0]), ['2["p",{"_placeholder":true,"num":0}]']),
]


def test_encode_normalizes() -> None:
    for packet, wire in NORMALIZED:
        assert encode(packet) == wire, packet


def test_codec_imports_only_the_standard_library() -> None:
    """Sans-IO: nothing but the standard library and the exception tree."""
    assert codec.__file__ is not None
    with open(codec.__file__, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    imported = {
        name.split(".")[0] if not name.startswith("geventio") else name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
    }
    assert imported - sys.stdlib_module_names == {"geventio.socketio.exceptions"}


def test_has_binary() -> None:
    assert not has_binary(["a", 1, None, {"b": [2.0, "c"]}, ("d",)])
    assert has_binary(["a", {"b": [1, (2, bytearray())]}])
    assert has_binary(memoryview(b""))
    assert not has_binary({b"key": "bytes keys are not data"})


# =========================================================================
# Encoding refusals
# =========================================================================

_circular: list[Any] = ["loop"]
_circular.append(_circular)

ENCODE_REFUSALS: list[tuple[str, Packet, type[Exception]]] = [
    ("namespace-no-slash", Packet(T.EVENT, "admin", ["x"]), ValueError),
    ("namespace-empty", Packet(T.EVENT, "", ["x"]), ValueError),
    ("namespace-comma", Packet(T.EVENT, "/a,b", ["x"]), ValueError),
    ("id-negative", Packet(T.EVENT, "/", ["x"], -1), ValueError),
    ("id-too-large", Packet(T.EVENT, "/", ["x"], MAX_ID + 1), ValueError),
    ("id-bool", Packet(T.ACK, "/", [], True), ValueError),
    ("id-float", Packet(T.ACK, "/", [], 1.0), ValueError),  # type: ignore[arg-type]
    ("id-on-connect", Packet(T.CONNECT, "/", None, 1), ValueError),
    ("id-on-disconnect", Packet(T.DISCONNECT, "/", None, 1), ValueError),
    ("event-empty", Packet(T.EVENT, "/", []), ValueError),
    ("event-no-data", Packet(T.EVENT), ValueError),
    ("event-name-not-str", Packet(T.EVENT, "/", [1, "x"]), ValueError),
    ("event-dict", Packet(T.EVENT, "/", {"x": 1}), ValueError),
    ("ack-none", Packet(T.ACK, "/", None, 1), ValueError),
    ("ack-str", Packet(T.ACK, "/", "x", 1), ValueError),
    ("connect-str-auth", Packet(T.CONNECT, "/", "token"), ValueError),
    ("connect-bytes", Packet(T.CONNECT, "/", {"k": b"x"}), ValueError),
    ("connect-error-none", Packet(T.CONNECT_ERROR), ValueError),
    ("disconnect-data", Packet(T.DISCONNECT, "/", {}), ValueError),
    ("type-unknown", Packet(7, "/", ["x"]), ValueError),  # type: ignore[arg-type]
    ("nan", Packet(T.EVENT, "/", ["x", math.nan]), ValueError),
    ("inf", Packet(T.EVENT, "/", ["x", {"y": -math.inf}]), ValueError),
    ("nan-binary", Packet(T.EVENT, "/", ["x", b"b", math.nan]), ValueError),
    ("circular", Packet(T.EVENT, "/", _circular), ValueError),
    ("set", Packet(T.EVENT, "/", ["x", {1, 2}]), TypeError),
    ("object", Packet(T.EVENT, "/", ["x", object()]), TypeError),
    ("bytes-key", Packet(T.EVENT, "/", ["x", {b"k": 1}]), TypeError),
    ("tuple-key", Packet(T.ACK, "/", [{(1,): 1}]), TypeError),
]


def test_encode_refuses() -> None:
    wrong = {}
    for name, packet, error in ENCODE_REFUSALS:
        try:
            wrong[name] = f"encoded as {encode(packet)!r}"
        except error:
            pass
        except Exception as exc:
            wrong[name] = f"{type(exc).__name__}: {exc}"
    assert not wrong


def test_encode_refuses_deep_data() -> None:
    """Nesting past the recursion limit is a ValueError, not a RecursionError (built here: a
    module-level one would slow down every test's gc scan)."""
    for leaf in ("plain", b"binary"):
        deep: list[Any] = [leaf]
        for _ in range(10_000):
            deep = [deep]
        with pytest.raises(ValueError, match="nested too deeply"):
            encode(Packet(T.EVENT, "/", ["deep", deep]))


# =========================================================================
# Decoding refusals
# =========================================================================

P = '{"_placeholder":true,"num":%s}'
LIMITS = {"max_attachments": 3, "max_attachment_bytes": 8}

DECODE_REFUSALS: dict[str, list[str | bytes]] = {
    "empty": [""],
    "type-7": ['7["x"]'],
    "type-9": ["9"],
    "type-letter": ['e["x"]'],
    "type-space": [' 2["x"]'],
    "type-arabic-digit": ['\u0662["x"]'],
    "namespace-no-slash": ["0admin,"],
    "namespace-no-slash-event": ['2admin,["x"]'],
    "namespace-no-data": ['2/admin["x"]'],
    "id-arabic-digit": ['2\u0663["x"]'],
    "id-superscript": ['2\u00b2["x"]'],
    "id-negative": ['2-1["x"]'],
    "id-letters": ['2abc["x"]'],
    "id-on-connect": ["012{}"],
    "id-on-connect-nsp": ["0/a,1"],
    "id-on-disconnect": ["11"],
    "id-on-connect-error": ['45{"message":"x"}'],
    "id-2**53": [f'2{MAX_ID + 1}["x"]'],
    "id-17-digits": ["2" + "1" * 17 + '["x"]'],
    "id-5000-digits": ["2" + "1" * 5000 + '["x"]'],
    "json-truncated": ['2["x"'],
    "json-trailing": ['2["x"]x'],
    "json-two-values": ['2["x"]["y"]'],
    "json-nan": ['2["x",NaN]'],
    "json-infinity": ['2["x",Infinity]'],
    "json-minus-infinity": ["3[-Infinity]"],
    "json-int-digit-limit": ['2["x",' + "1" * 5000 + "]"],
    "json-deep": ['2["x",' + "[" * 100_000 + "]" * 100_000 + "]"],
    "json-single-quotes": ["2['x']"],
    "json-control-char": ['2["x\x01"]'],
    "event-no-data": ["2"],
    "event-empty": ["2[]"],
    "event-object": ['2{"x":1}'],
    "event-str": ['2"x"'],
    "event-null": ["2null"],
    "event-name-int": ["2[1]"],
    "event-name-null": ["2[null]"],
    "ack-no-data": ["31"],
    "ack-object": ["31{}"],
    "ack-str": ['3"x"'],
    "connect-array": ["0[]"],
    "connect-str": ['0"x"'],
    "connect-null": ["0null"],
    "connect-number": ["0/a,true"],
    "connect-error-no-data": ["4"],
    "connect-error-array": ['4["x"]'],
    "connect-error-null": ["4null"],
    "disconnect-object": ["1{}"],
    "disconnect-null": ["1null"],
    "disconnect-str": ['1/a,"x"'],
    "binary-no-count": ['5["x"]'],
    "binary-ack-no-count": ["6[]"],
    "binary-count-no-dash": ['51["x",' + P % 0 + "]"],
    "binary-count-empty": ['5-["x"]'],
    "binary-count-letter": ['5x-["x"]'],
    "binary-count-arabic": ['5\u0661-["x",' + P % 0 + "]"],
    "binary-count-absurd": ["5" + "9" * 11 + '-["x"]'],
    "binary-count-over-max": ['54-["x",' + ",".join(P % i for i in range(4)) + "]"],
    "binary-no-data": ["51-"],
    "binary-event-empty": ["51-[]"],
    "placeholders-fewer": ['52-["x",' + P % 0 + "]"],
    "placeholders-more": ['51-["x",' + P % 0 + "," + P % 0 + "]"],
    "placeholders-none": ['51-["x"]'],
    "placeholders-for-zero": ['50-["x",' + P % 0 + "]"],
    "placeholder-out-of-range": ['51-["x",' + P % 1 + "]"],
    "placeholder-negative": ['51-["x",' + P % -1 + "]"],
    "placeholder-repeated": ['52-["x",' + P % 0 + "," + P % 0 + "]"],
    "placeholder-str": ['51-["x",' + P % '"0"' + "]"],
    "placeholder-bool": ['51-["x",' + P % "false" + "]"],
    "placeholder-float": ['51-["x",' + P % "0.0" + "]"],
    "placeholder-null": ['51-["x",' + P % "null" + "]"],
    "placeholder-missing-num": ['51-["x",{"_placeholder":true}]'],
    "placeholder-nested-in-dict": ['61-[{"a":{"b":[' + P % 1 + "]}}]"],
    "binary-unexpected-first": [b"\x01"],
    "binary-after-event": ['2["x"]', b"\x01"],
    "binary-after-complete": ['51-["x",' + P % 0 + "]", b"a", b"b"],
    "text-while-pending": ['51-["x",' + P % 0 + "]", '2["y"]'],
    "text-while-pending-2": ['52-["x",' + P % 0 + "," + P % 1 + "]", b"a", "3[]"],
    "attachment-bytes-over": ['52-["x",' + P % 0 + "," + P % 1 + "]", b"abcd", b"efghi"],
    "attachment-bytes-one-over": ['51-["x",' + P % 0 + "]", b"123456789"],
}


def test_decode_refuses() -> None:
    """Everything before the last message is accepted; the last one raises ProtocolError."""
    wrong = {}
    for name, (*head, last) in DECODE_REFUSALS.items():
        decoder = Decoder(**LIMITS)
        for message in head:
            decoder.feed(message)
        try:
            wrong[name] = f"decoded as {decoder.feed(last)!r}"
        except ProtocolError as exc:
            if not str(exc):
                wrong[name] = "no message"
        except Exception as exc:
            wrong[name] = f"{type(exc).__name__}: {exc}"
    assert not wrong


def test_decode_refusal_chains_cause() -> None:
    for text in ['2["x"', '2["x",NaN]', '2["x",' + "1" * 5000 + "]", "2" + "[" * 100_000]:
        with pytest.raises(ProtocolError) as info:
            Decoder().feed(text)
        assert isinstance(info.value.__cause__, (ValueError, RecursionError))


ACCEPTED_AT_LIMITS: dict[str, list[str | bytes]] = {
    "id-max": [f'2{MAX_ID}["x"]'],
    "id-leading-zeros": ['2007["x"]'],
    "count-at-max": ['53-["x",' + ",".join(P % i for i in range(3)) + "]", b"a", b"b", b"c"],
    "bytes-at-max": ['52-["x",' + P % 1 + "," + P % 0 + "]", b"abcd", b"efgh"],
    "empty-attachment": ['51-["x",' + P % 0 + "]", b""],
    "zero-attachments": ['50-["x"]'],
    "placeholder-extra-keys": ['51-["x",{"_placeholder":true,"num":0,"y":1}]', b"a"],
    "placeholder-like-not-true": ['51-["x",{"_placeholder":1,"num":0},' + P % 0 + "]", b"a"],
    "nsp-only-slash": ['2/,["x"]'],
    "nsp-without-comma": ["0/admin"],
    "whitespace": ['2 ["x" , 1 ] '],
    "connect-error-str": ['4"x"'],
    "ack-without-id": ["3[]"],
}


def test_decode_accepts_at_limits() -> None:
    for messages in ACCEPTED_AT_LIMITS.values():
        _decode(messages, Decoder(**LIMITS))


def test_decode_values_at_limits() -> None:
    assert _decode(['2007["x"]']).id == 7
    assert _decode(["0/admin"]) == Packet(T.CONNECT, "/admin")
    assert _decode(['2/,["x"]']) == Packet(T.EVENT, "/", ["x"])
    got = _decode(['52-["x",' + P % 1 + "," + P % 0 + "]", b"first", b"second"])
    assert got == Packet(T.BINARY_EVENT, "/", ["x", b"second", b"first"])
    got = _decode(['51-["x",{"_placeholder":1,"num":0},' + P % 0 + "]", b"a"])
    assert got.data == ["x", {"_placeholder": 1, "num": 0}, b"a"]
    assert _decode(['50-["x"]']) == Packet(T.BINARY_EVENT, "/", ["x"])


def test_default_limits() -> None:
    many = ",".join(P % i for i in range(1001))
    with pytest.raises(ProtocolError):
        Decoder().feed(f'51001-["x",{many}]')
    decoder = Decoder()
    assert decoder.feed('51-["x",' + P % 0 + "]") is None
    with pytest.raises(ProtocolError):
        decoder.feed(bytes(16 * 1024 * 1024 + 1))
    decoder = Decoder()
    decoder.feed('51-["x",' + P % 0 + "]")
    assert decoder.feed(bytes(16 * 1024 * 1024)) is not None


def test_decode_one_message_at_a_time() -> None:
    """A binary packet's messages one by one: pending until the last, then the decoder is fresh."""
    packet = Packet(T.BINARY_ACK, "/chat", [b"a", {"n": [b"bb", b"ccc"]}, "s"], 9)
    first, *attachments = encode(packet)
    assert len(attachments) == 3
    decoder = Decoder()
    assert not _pending(decoder)
    assert decoder.feed(first) is None
    for attachment in attachments[:-1]:
        assert _pending(decoder)
        assert decoder.feed(attachment) is None
    assert _pending(decoder)
    assert decoder.feed(attachments[-1]) == packet
    assert not _pending(decoder)
    # the same decoder takes the next packets, text and binary
    assert decoder.feed('2["next"]') == Packet(T.EVENT, "/", ["next"])
    assert decoder.feed(first) is None
    assert _pending(decoder)
    for attachment in attachments[:-1]:
        decoder.feed(attachment)
    assert decoder.feed(attachments[-1]) == packet


# =========================================================================
# Property tests
# =========================================================================

_keys = st.text(max_size=8)
_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
_finite = st.floats(allow_nan=False, allow_infinity=False)
#: JSON values as python-socketio takes them: lists, str-keyed dicts, bytes and bytearray
sio_json = st.recursive(
    _scalars | _finite | st.binary(max_size=8) | st.binary(max_size=4).map(bytearray),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)


def _view(data: bytes) -> memoryview:
    return memoryview(data)


#: and what ours also takes: tuples and memoryviews
any_json: st.SearchStrategy[Any] = st.recursive(
    _scalars | _finite | st.binary(max_size=8) | st.binary(max_size=4).map(_view),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(_keys, inner, max_size=4)
    ),
    max_leaves=12,
)
#: no "," (it ends the namespace) and no "?" (python-socketio cuts a query off when decoding)
namespaces = st.just("/") | st.text(
    st.characters(exclude_characters=",?", exclude_categories=["Cs"]), max_size=10
).map(lambda s: "/" + s)
ids = st.none() | st.integers(0, MAX_ID)
no_bytes_json = st.recursive(
    _scalars | _finite,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=8,
)


def _packets(values: st.SearchStrategy[Any], server: bool) -> st.SearchStrategy[Packet]:
    """Packets a client sends (and, with ``server``, the ones a server sends too)."""
    args = st.lists(values, max_size=4)
    strategies = [
        st.builds(
            Packet,
            st.just(T.CONNECT),
            namespaces,
            st.none() | st.dictionaries(_keys, no_bytes_json, max_size=3),
        ),
        st.builds(Packet, st.just(T.DISCONNECT), namespaces),
        st.builds(
            Packet,
            st.just(T.EVENT),
            namespaces,
            st.builds(lambda e, a: [e, *a], st.text(max_size=6), args),
            ids,
        ),
        st.builds(Packet, st.just(T.ACK), namespaces, args, ids),
    ]
    if server:
        strategies += [
            st.builds(
                Packet,
                st.just(T.CONNECT),
                namespaces,
                st.fixed_dictionaries({"sid": st.text(max_size=20)}),
            ),
            st.builds(
                Packet,
                st.just(T.CONNECT_ERROR),
                namespaces,
                st.text(max_size=10) | st.dictionaries(_keys, no_bytes_json, max_size=3),
            ),
        ]
    return st.one_of(strategies)


def _wire_type(packet: Packet) -> PacketType:
    if has_binary(packet.data):
        return T.BINARY_EVENT if packet.type in (T.EVENT, T.BINARY_EVENT) else T.BINARY_ACK
    return packet.type


@FAST
@given(_packets(any_json, server=True))
def test_round_trip(packet: Packet) -> None:
    """decode(encode(p)) is p, with tuples as lists and bytes-like as bytes, types kept."""
    got = _decode(encode(packet))
    assert (got.type, got.namespace, got.id) == (_wire_type(packet), packet.namespace, packet.id)
    assert _same(got.data, _normal(packet.data))


def _sio_encode(packet: Packet) -> list[str | bytes]:
    encoded = SioPacket(int(packet.type), packet.data, packet.namespace, packet.id).encode()
    messages = encoded if isinstance(encoded, list) else [encoded]
    return [m if isinstance(m, str) else bytes(m) for m in messages]


@FAST
@given(_packets(sio_json, server=True))
def test_same_bytes_as_python_socketio(packet: Packet) -> None:
    assert encode(packet) == _sio_encode(packet)


@FAST
@given(_packets(sio_json, server=True))
def test_decodes_as_python_socketio(packet: Packet) -> None:
    first, *attachments = _sio_encode(packet)
    theirs = SioPacket(encoded_packet=first)
    for attachment in attachments:
        theirs.add_attachment(attachment)
    ours = _decode([first, *attachments])
    assert int(ours.type) == theirs.packet_type
    assert ours.namespace == (theirs.namespace or "/")
    assert ours.id == theirs.id
    assert _same(ours.data, theirs.data)


@pytest.mark.parametrize(
    "packet",
    [
        Packet(T.CONNECT),
        Packet(T.CONNECT, "/", {"token": "t"}),
        Packet(T.CONNECT, "/admin"),
        Packet(T.CONNECT, "/admin", {"token": "t", "n": 1}),
        Packet(T.DISCONNECT),
        Packet(T.DISCONNECT, "/admin"),
        Packet(T.EVENT, "/", ["e"]),
        Packet(T.EVENT, "/", ["e", 1, "é"], 0),
        Packet(T.EVENT, "/x", ["e", {"k": [1, {"b": b"\x00"}]}, bytearray(b"\xff")], 99),
        Packet(T.EVENT, "/", ["e", {2: "int key", 1.5: "float key", None: 0}]),
        Packet(T.ACK, "/", []),
        Packet(T.ACK, "/x", [None], 5),
        Packet(T.ACK, "/", [b"a", [b"b", {"c": b"c"}]], 6),
    ],
)
def test_client_packets_as_python_socketio(packet: Packet) -> None:
    """Every packet a client sends, in the forms the lead's client uses."""
    assert encode(packet) == _sio_encode(packet)


# --- fuzz ---------------------------------------------------------------

_json_text = st.one_of(
    no_bytes_json.map(lambda v: json.dumps(v, separators=(",", ":"))),
    st.sampled_from(
        ["", "[", "]", "{}", "[]", "null", '"', "NaN", '{"_placeholder":true,"num":0}']
    ),
)
_head = st.builds(
    lambda t, c, n, i: t + c + n + i,
    st.sampled_from(list("0123456789x")),
    st.sampled_from(["", "0-", "1-", "2-", "-", "99-", "1"]),
    st.sampled_from(["", "/", "/a,", "/a", ",", "/b/c,"]),
    st.sampled_from(["", "0", "12", "9" * 17, "x"]),
)
_texts = st.one_of(
    st.text(max_size=30),
    st.builds(lambda h, j: h + j, _head, _json_text),
    st.builds(
        lambda h, ps: h + '["x",' + ",".join(ps) + "]",
        _head,
        st.lists(st.sampled_from([P % 0, P % 1, P % 2, P % "true", P % -1, "1"]), max_size=4),
    ),
)
_messages = st.lists(_texts | st.binary(max_size=6), max_size=8)


@settings(database=None, max_examples=400, deadline=None)
@given(_messages)
def test_fuzz_only_protocol_errors(messages: list[str | bytes]) -> None:
    decoder = Decoder(**LIMITS)
    for message in messages:
        try:
            result = decoder.feed(message)
        except ProtocolError:
            decoder = Decoder(**LIMITS)
            continue
        assert result is None or isinstance(result, Packet)
        assert (result is None) == decoder.pending


@FAST
@given(_packets(sio_json, server=True), st.data())
def test_fuzz_mutated_packets(packet: Packet, data: st.DataObject) -> None:
    """A valid encoding with one character inserted, deleted or replaced: a packet or a refusal."""
    first, *attachments = encode(packet)
    assert isinstance(first, str)
    at = data.draw(st.integers(0, len(first)))
    char = data.draw(st.sampled_from(list('0123456789-/,[]{}":nt\x1e')) | st.characters())
    mutated = data.draw(
        st.sampled_from(
            [
                first[:at] + char + first[at:],
                first[:at] + first[at + 1 :],
                first[:at] + char + first[at + 1 :],
            ]
        )
    )
    decoder = Decoder()
    try:
        for message in [mutated, *attachments]:
            decoder.feed(message)
    except ProtocolError:
        pass


@FAST
@given(
    st.recursive(
        _scalars
        | st.floats()
        | st.binary(max_size=3)
        | st.sets(st.integers(), max_size=2)
        | st.just(object()),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(_keys | st.integers(), inner, max_size=3)
        ),
        max_leaves=8,
    ),
    ids,
)
def test_encode_refuses_only_with_type_or_value_error(args: Any, ack_id: int | None) -> None:
    """Whatever the data: messages that decode back to it, or TypeError/ValueError."""
    packet = Packet(T.EVENT, "/", ["e", args], ack_id)
    try:
        messages = encode(packet)
    except (TypeError, ValueError):
        return
    got = _decode(messages)
    assert got.id == ack_id
    assert got.data[0] == "e"


@given(
    st.sampled_from(["/", "/chat"]),
    st.lists(any_json, max_size=4),
    st.one_of(st.none(), st.text(max_size=8), st.integers()),
    ids,
)
def test_encode_event_is_encode(namespace: str, args: list[Any], name: Any, ack_id: Any) -> None:
    """The client's fast path gives the same messages, or the same error type, as encode()."""
    data = [name, *args] if name is not None else args
    try:
        expected: Any = encode(Packet(PacketType.EVENT, namespace, data, ack_id))
    except (TypeError, ValueError) as exc:
        expected = type(exc)
    try:
        got: Any = encode_event(namespace, data, ack_id)
    except (TypeError, ValueError) as exc:
        got = type(exc)
    assert got == expected
