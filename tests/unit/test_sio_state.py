"""The sans-IO Socket.IO session state (geventio.socketio._state), without sockets or sleeps."""

from __future__ import annotations

from typing import Any

import pytest

from geventio.socketio._state import (
    MAX_EARLY_EVENTS,
    Acked,
    Connected,
    Kicked,
    Protocol,
    Received,
    Refused,
)
from geventio.socketio.exceptions import ProtocolError


def joined(*namespaces: str) -> Protocol:
    proto = Protocol()
    for ns in namespaces:
        proto.join(ns, None)
        prefix = "" if ns == "/" else ns + ","
        assert proto.receive(f'0{prefix}{{"sid":"s{ns}"}}') == [Connected(ns, f"s{ns}")]
    return proto


def test_join_sends_connect_with_and_without_auth() -> None:
    proto = Protocol()
    assert proto.join("/", None) == ["0"]
    assert proto.join("/admin", {"token": "x"}) == ['0/admin,{"token":"x"}']
    assert sorted(proto.joining()) == ["/", "/admin"]
    assert proto.namespaces == {}


def test_events_before_connect_are_kept_and_follow_it_in_order() -> None:
    proto = Protocol()
    proto.join("/", None)
    assert proto.receive('2["welcome",1]') == []
    assert proto.receive('2["second"]') == []
    events = proto.receive('0{"sid":"abc"}')
    assert events == [
        Connected("/", "abc"),
        Received("/", "welcome", [1], None),
        Received("/", "second", [], None),
    ]
    assert proto.namespaces == {"/": "abc"}
    assert proto.connected("/")
    assert proto.joining() == []


def test_too_many_events_before_connect_is_a_protocol_error() -> None:
    proto = Protocol()
    proto.join("/", None)
    for _ in range(MAX_EARLY_EVENTS):
        proto.receive('2["x"]')
    with pytest.raises(ProtocolError, match="before the CONNECT"):
        proto.receive('2["x"]')


def test_ack_ids_count_per_namespace_and_acks_return_the_token() -> None:
    proto = joined("/", "/chat")
    token_a, token_b, token_c = object(), object(), object()
    assert proto.emit("/", ["a"], token_a) == (['20["a"]'], 0)
    assert proto.emit("/", ["b"], token_b) == (['21["b"]'], 1)
    assert proto.emit("/chat", ["c"], token_c) == (['2/chat,0["c"]'], 0)
    assert proto.emit("/", ["no ack"]) == (['2["no ack"]'], -1)
    assert proto.receive('31["B",2]') == [Acked("/", token_b, ["B", 2])]
    assert proto.receive("3/chat,0[]") == [Acked("/chat", token_c, [])]
    assert proto.pending_tokens() == [token_a]
    assert proto.pending_tokens() == []


def test_binary_ack_carries_the_bytes() -> None:
    proto = joined("/")
    token = object()
    proto.emit("/", ["bin"], token)
    assert proto.receive('61-0[{"_placeholder":true,"num":0}]') == []
    assert proto.receive(b"\x00\x01") == [Acked("/", token, [b"\x00\x01"])]


def test_a_late_ack_is_dropped_and_an_ack_never_sent_is_an_error() -> None:
    proto = joined("/")
    _, ack_id = proto.emit("/", ["slow"], object())
    proto.forget("/", ack_id)
    assert proto.receive(f"3{ack_id}[1]") == []
    with pytest.raises(ProtocolError, match="never sent"):
        proto.receive("37[1]")


@pytest.mark.parametrize(
    "message",
    [
        '2/other,["x"]',  # a namespace never joined
        '0/other,{"sid":"x"}',
        "1/other,",
        '4/other,{"message":"no"}',
    ],
)
def test_packets_for_a_namespace_never_joined_are_errors(message: str) -> None:
    proto = joined("/")
    with pytest.raises(ProtocolError, match="never joined"):
        proto.receive(message)


@pytest.mark.parametrize("message", ["0", "0{}", '0{"sid":""}', '0{"sid":5}'])
def test_a_connect_without_a_sid_is_an_error(message: str) -> None:
    proto = Protocol()
    proto.join("/", None)
    with pytest.raises(ProtocolError, match="without a sid"):
        proto.receive(message)


def test_a_second_connect_is_an_error() -> None:
    proto = joined("/")
    with pytest.raises(ProtocolError, match="second CONNECT"):
        proto.receive('0{"sid":"again"}')


def test_refused_and_kicked_namespaces_are_left() -> None:
    proto = Protocol()
    proto.join("/auth", {"token": "bad"})
    proto.receive('2/auth,["early"]')
    events = proto.receive('4/auth,{"message":"bad token"}')
    assert events == [Refused("/auth", {"message": "bad token"})]
    assert proto.joining() == []
    assert proto.receive('2/auth,["late"]') == []  # dropped: the namespace was left

    proto = joined("/")
    assert proto.receive("1") == [Kicked("/")]
    assert proto.namespaces == {}
    assert proto.receive('2["after"]') == []


def test_leave_sends_disconnect_once_and_drops_what_crossed_it() -> None:
    proto = joined("/", "/chat")
    assert proto.leave("/chat") == ["1/chat,"]
    assert proto.leave("/chat") == []
    assert proto.leave("/never") == []
    assert proto.receive('2/chat,["crossed"]') == []
    assert proto.namespaces == {"/": "s/"}


def test_event_with_ack_id_and_the_ack_of_a_handler() -> None:
    proto = joined("/")
    assert proto.receive('212["ask",{"q":1}]') == [Received("/", "ask", [{"q": 1}], 12)]
    assert proto.ack("/", 12, ["yes", 2]) == ['312["yes",2]']
    assert proto.ack("/", 3, [b"\xff"]) == ['61-3[{"_placeholder":true,"num":0}]', b"\xff"]


def test_emit_of_data_json_cannot_carry_registers_nothing() -> None:
    proto = joined("/")
    with pytest.raises(TypeError):
        proto.emit("/", ["x", {1, 2}], object())
    assert proto.pending_tokens() == []
    assert proto.emit("/", ["y"], "token")[1] == 0  # the id was not used up


def test_messages_fed_one_at_a_time_give_the_same_events() -> None:
    proto = joined("/")
    parts: list[Any] = ['52-["two",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]']
    parts += [b"a", b"b"]
    out = [proto.receive(part) for part in parts]
    assert out == [[], [], [Received("/", "two", [b"a", b"b"], None)]]


@pytest.mark.parametrize("name", ["connect", "connect_error", "disconnect", "newListener"])
def test_a_reserved_event_name_from_the_server_is_an_error(name: str) -> None:
    proto = joined("/")
    with pytest.raises(ProtocolError, match="reserved"):
        proto.receive(f'2["{name}"]')
