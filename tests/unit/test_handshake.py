"""Unit tests for geventio._handshake: parsing the open packet's JSON."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventio import ProtocolError
from geventio._handshake import DEFAULT_MAX_PAYLOAD, Handshake, parse_handshake
from geventio._reason import CloseReason

FAST = settings(database=None, max_examples=150, deadline=None)

VALID: dict[str, Any] = {
    "sid": "abc",
    "upgrades": ["websocket"],
    "pingInterval": 25000,
    "pingTimeout": 20000,
    "maxPayload": 1000000,
}


def _with(**changes: Any) -> str:
    obj = dict(VALID)
    obj.update(changes)
    return json.dumps(obj)


def _without(name: str) -> str:
    obj = dict(VALID)
    del obj[name]
    return json.dumps(obj)


def test_parse_valid_handshake() -> None:
    handshake = parse_handshake(json.dumps(VALID))
    assert handshake == Handshake(
        sid="abc",
        upgrades=("websocket",),
        ping_interval=25.0,
        ping_timeout=20.0,
        max_payload=1_000_000,
    )
    assert type(handshake.upgrades) is tuple


def test_milliseconds_become_seconds() -> None:
    handshake = parse_handshake(_with(pingInterval=1500, pingTimeout=250, maxPayload=42))
    assert handshake.ping_interval == pytest.approx(1.5)
    assert handshake.ping_timeout == pytest.approx(0.25)
    assert handshake.max_payload == 42


def test_default_max_payload_when_missing() -> None:
    assert DEFAULT_MAX_PAYLOAD == 1_000_000
    assert parse_handshake(_without("maxPayload")).max_payload == 1_000_000
    assert parse_handshake(_with(maxPayload=None)).max_payload == 1_000_000


def test_zero_ping_timeout_is_accepted() -> None:
    assert parse_handshake(_with(pingTimeout=0)).ping_timeout == 0.0


def test_zero_ping_interval_is_accepted() -> None:
    # python-engineio rounds pingInterval down to whole seconds, so 0 can be announced
    handshake = parse_handshake(_with(pingInterval=0, pingTimeout=0))
    assert handshake.ping_interval == 0.0
    assert handshake.ping_timeout == 0.0


def test_empty_and_multiple_upgrades() -> None:
    assert parse_handshake(_with(upgrades=[])).upgrades == ()
    assert parse_handshake(_with(upgrades=["websocket", "webtransport"])).upgrades == (
        "websocket",
        "webtransport",
    )


def test_unknown_fields_are_ignored() -> None:
    handshake = parse_handshake(_with(extra={"a": 1}, pingInterval=300))
    assert handshake.sid == "abc"
    assert handshake.ping_interval == pytest.approx(0.3)


def test_unicode_sid() -> None:
    assert parse_handshake(_with(sid="sé日😀")).sid == "sé日😀"


def test_handshake_is_frozen() -> None:
    handshake = parse_handshake(json.dumps(VALID))
    with pytest.raises(dataclasses.FrozenInstanceError):
        handshake.sid = "other"  # type: ignore[misc]


def test_close_reason_values() -> None:
    assert {r.name: r.value for r in CloseReason} == {
        "CLIENT_DISCONNECT": "client disconnect",
        "SERVER_DISCONNECT": "server disconnect",
        "PING_TIMEOUT": "ping timeout",
        "TRANSPORT_CLOSE": "transport close",
        "TRANSPORT_ERROR": "transport error",
    }
    assert CloseReason("ping timeout") is CloseReason.PING_TIMEOUT
    assert isinstance(CloseReason.PING_TIMEOUT, str)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("", id="empty"),
        pytest.param("not json", id="not-json"),
        pytest.param("{", id="truncated"),
        pytest.param('{"sid": "abc",}', id="trailing-comma"),
        pytest.param("[]", id="list"),
        pytest.param('["sid"]', id="list-of-str"),
        pytest.param('"abc"', id="string"),
        pytest.param("1", id="number"),
        pytest.param("null", id="null"),
        pytest.param("true", id="bool"),
        pytest.param("NaN", id="nan"),
        pytest.param("{}", id="empty-object"),
        pytest.param(_without("sid"), id="missing-sid"),
        pytest.param(_with(sid=""), id="empty-sid"),
        pytest.param(_with(sid=None), id="null-sid"),
        pytest.param(_with(sid=123), id="int-sid"),
        pytest.param(_with(sid=["abc"]), id="list-sid"),
        pytest.param(_without("upgrades"), id="missing-upgrades"),
        pytest.param(_with(upgrades="websocket"), id="str-upgrades"),
        pytest.param(_with(upgrades=None), id="null-upgrades"),
        pytest.param(_with(upgrades={"websocket": True}), id="object-upgrades"),
        pytest.param(_with(upgrades=[1]), id="int-upgrade"),
        pytest.param(_with(upgrades=["websocket", None]), id="null-upgrade"),
        pytest.param(_with(upgrades=[["websocket"]]), id="nested-upgrade"),
        pytest.param(_without("pingInterval"), id="missing-interval"),
        pytest.param(_with(pingInterval=None), id="null-interval"),
        pytest.param(_with(pingInterval="25000"), id="str-interval"),
        pytest.param(_with(pingInterval=25000.0), id="float-interval"),
        pytest.param(_with(pingInterval=2.5), id="fraction-interval"),
        pytest.param(_with(pingInterval=True), id="bool-interval"),
        pytest.param(_with(pingInterval=-1), id="negative-interval"),
        pytest.param(_without("pingTimeout"), id="missing-timeout"),
        pytest.param(_with(pingTimeout="20000"), id="str-timeout"),
        pytest.param(_with(pingTimeout=False), id="bool-timeout"),
        pytest.param(_with(pingTimeout=1.5), id="float-timeout"),
        pytest.param(_with(pingTimeout=-1), id="negative-timeout"),
        pytest.param(_with(maxPayload="1000"), id="str-max-payload"),
        pytest.param(_with(maxPayload=True), id="bool-max-payload"),
        pytest.param(_with(maxPayload=1.5), id="float-max-payload"),
        pytest.param(_with(maxPayload=0), id="zero-max-payload"),
        pytest.param(_with(maxPayload=-5), id="negative-max-payload"),
        pytest.param(_with(maxPayload=[1]), id="list-max-payload"),
    ],
)
def test_invalid_handshake_raises_protocol_error(data: str) -> None:
    with pytest.raises(ProtocolError):
        parse_handshake(data)


def test_deeply_nested_json_raises_protocol_error() -> None:
    # A (hostile) server's open packet must not escape as RecursionError.
    with pytest.raises(ProtocolError):
        parse_handshake("[" * 100_000 + "]" * 100_000)


@FAST
@given(st.text())
def test_parse_handshake_fuzz_text(data: str) -> None:
    try:
        handshake = parse_handshake(data)
    except ProtocolError:
        return
    assert handshake.sid


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "sid": _json | st.text(max_size=5),
        "upgrades": _json | st.lists(st.text(max_size=9), max_size=2),
        "pingInterval": _json | st.integers(),
        "pingTimeout": _json | st.integers(),
        "maxPayload": _json | st.integers(),
    },
)


@FAST
@given(_fields)
def test_parse_handshake_fuzz_fields(obj: dict[str, Any]) -> None:
    try:
        handshake = parse_handshake(json.dumps(obj))
    except ProtocolError:
        return
    assert isinstance(obj["sid"], str)
    assert handshake.sid == obj["sid"] != ""
    assert handshake.upgrades == tuple(obj["upgrades"])
    assert handshake.ping_interval == obj["pingInterval"] / 1000 >= 0
    assert handshake.ping_timeout == obj["pingTimeout"] / 1000 >= 0
    max_payload = obj.get("maxPayload")
    assert handshake.max_payload == (DEFAULT_MAX_PAYLOAD if max_payload is None else max_payload)
    assert handshake.max_payload > 0


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_with(pingInterval=10**400), id="huge-interval"),
        pytest.param(_with(pingTimeout=10**400), id="huge-timeout"),
        pytest.param(_with(pingInterval=2**31), id="interval-past-js-timers"),
        pytest.param(_with(pingTimeout=2**31), id="timeout-past-js-timers"),
        pytest.param(_with(maxPayload=10**400), id="huge-max-payload"),
        pytest.param(_with(maxPayload=2**53), id="max-payload-past-js-integers"),
        pytest.param(_with(pingInterval=-(10**400)), id="hugely-negative-interval"),
        pytest.param(_with(sid="a\r\nb"), id="sid-with-crlf"),
        pytest.param(_with(sid="a\x00"), id="sid-with-nul"),
        pytest.param(_with(sid="\ud800"), id="sid-lone-surrogate"),
        pytest.param(_with(sid="a" * 1025), id="sid-overlong"),
        pytest.param(
            '{"sid": "a", "upgrades": [], "pingInterval": 1e400, "pingTimeout": 1}', id="inf"
        ),
    ],
)
def test_out_of_range_raises_protocol_error(data: str) -> None:
    """Numbers past what a JS server can mean, and sids that cannot go into a URL: refused
    (10**400 ms used to escape as OverflowError)."""
    with pytest.raises(ProtocolError):
        parse_handshake(data)


def test_the_largest_values_are_accepted() -> None:
    most = parse_handshake(
        _with(pingInterval=2**31 - 1, pingTimeout=2**31 - 1, maxPayload=2**53 - 1)
    )
    assert most.ping_interval == most.ping_timeout == pytest.approx(2147483.647)
    assert most.max_payload == 2**53 - 1
    assert parse_handshake(_with(sid="a" * 1024)).sid == "a" * 1024


_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=2**30, max_value=2**60),
    st.integers(min_value=-(10**500), max_value=10**500),
    st.floats(),
    st.booleans(),
)


@FAST
@given(_numbers, _numbers, _numbers | st.none())
def test_parse_handshake_fuzz_numbers(interval: Any, timeout: Any, max_payload: Any) -> None:
    """Any numbers: a ProtocolError, or times within 0..2**31-1 ms and a positive maxPayload."""
    text = _with(pingInterval=interval, pingTimeout=timeout, maxPayload=max_payload)
    try:
        handshake = parse_handshake(text)
    except ProtocolError:
        return
    assert 0 <= handshake.ping_interval <= (2**31 - 1) / 1000
    assert 0 <= handshake.ping_timeout <= (2**31 - 1) / 1000
    assert 0 < handshake.max_payload < 2**53
