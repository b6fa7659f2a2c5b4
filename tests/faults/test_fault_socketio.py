"""Socket.IO protocol violations from a scripted server (geventio.socketio over WebSocket).

The server opens the Engine.IO session, confirms the namespace, sends one valid event, then
something Socket.IO v5 does not allow. The client must run the handler of the valid event, log a
:class:`geventio.socketio.ProtocolError`, close the session as a ``'transport error'`` (the
``disconnect`` handler says so), and end: no traceback reaches the hub, no greenlet is left.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import gevent
import pytest

from geventio import socketio
from tests.faultkit import Bound
from tests.faults.dummyserver import OPEN, Conn, Server, frame

TEXT, BINARY = 0x1, 0x2
BEFORE = frame(TEXT, b'42["before",1]')

#: id: what the server sends after the valid event
VIOLATIONS: dict[str, bytes] = {
    "packet-type": frame(TEXT, b"49"),
    "namespace-never-joined": frame(TEXT, b'42/other,["x"]'),
    "namespace-without-slash": frame(TEXT, b'42other,["x"]'),
    "bad-json": frame(TEXT, b'42["x",}'),
    "event-not-a-list": frame(TEXT, b'42{"x":1}'),
    "event-name-not-a-string": frame(TEXT, b"42[1,2]"),
    "attachments-not-matching": frame(TEXT, b'451-["x"]'),
    "attachment-without-packet": frame(BINARY, b"\x00\x01"),
    "text-while-attachment-due": frame(TEXT, b'451-["x",{"_placeholder":true,"num":0}]')
    + frame(TEXT, b'42["y"]'),
    "ack-for-an-unknown-id": frame(TEXT, b"437[1]"),
    "connect-without-sid": frame(TEXT, b"40{}"),
    "reserved-event-name": frame(TEXT, b'42["disconnect","spoofed"]'),
}


@contextmanager
def sio_script(*frames: bytes) -> Iterator[Server]:
    """Accept the WebSocket, send OPEN, read the client's CONNECT, confirm it, send ``frames``."""

    def handler(conn: Conn) -> None:
        request = conn.read_request()
        if request is None or not conn.accept_websocket(request):
            return
        if not conn.send(frame(TEXT, OPEN.encode())) or conn.read_frame() is None:
            return
        if conn.send(frame(TEXT, b'40{"sid":"ns-sid"}') + b"".join(frames)):
            conn.stall()

    with Server(handler) as server:
        yield server


@pytest.mark.parametrize("violation", list(VIOLATIONS), ids=list(VIOLATIONS))
def test_a_protocol_violation_is_a_logged_protocol_error_and_a_clean_close(
    violation: str, bound: Bound, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[object] = []
    sio = socketio.Client(reconnection=False)
    sio.on("before", lambda value: events.append(("before", value)))
    sio.on("disconnect", lambda reason: events.append(("disconnect", reason)))
    caplog.set_level(logging.ERROR, logger="geventio.socketio")
    with sio_script(BEFORE, VIOLATIONS[violation]) as server, bound(5.0):
        sio.connect(server.url, transports=["websocket"], wait_timeout=5)
        sio.wait()
    assert events == [("before", 1), ("disconnect", "transport error")]
    assert not sio.connected
    errors = [r for r in caplog.records if r.name == "geventio.socketio"]
    assert errors, "the violation was not logged"
    assert "broke the Socket.IO protocol" in errors[0].getMessage()


def test_a_late_ack_after_a_call_timed_out_is_not_a_violation(bound: Bound) -> None:
    """The server acks id 0 after the client gave up on it: dropped, the session lives on."""
    events: list[object] = []

    def handler(conn: Conn) -> None:
        request = conn.read_request()
        if request is None or not conn.accept_websocket(request):
            return
        conn.send(frame(TEXT, OPEN.encode()))
        conn.read_frame()  # CONNECT
        conn.send(frame(TEXT, b'40{"sid":"ns-sid"}'))
        conn.read_frame()  # the call's EVENT, id 0: not answered in time
        conn.read_frame()  # the second call's EVENT, id 1
        conn.send(frame(TEXT, b'430["late"]') + frame(TEXT, b'431["second"]'))
        conn.stall()

    sio = socketio.Client(reconnection=False)
    sio.on("disconnect", events.append)
    with Server(handler) as server, bound(5.0):
        sio.connect(server.url, transports=["websocket"], wait_timeout=5)
        with pytest.raises(socketio.TimeoutError):
            sio.call("first", timeout=0.2)
        assert sio.call("second", timeout=3) == "second"
        assert sio.connected
        sio.disconnect()
    assert events == ["client disconnect"]


@contextmanager
def silent_namespace_server() -> Iterator[Server]:
    """Opens the Engine.IO session, then never answers the client's CONNECT."""

    def handler(conn: Conn) -> None:
        request = conn.read_request()
        if request is None or not conn.accept_websocket(request):
            return
        if conn.send(frame(TEXT, OPEN.encode())):
            conn.stall()

    with Server(handler) as server:
        yield server


def test_a_namespace_never_confirmed_fails_connect_after_wait_timeout(bound: Bound) -> None:
    sio = socketio.Client(reconnection=False)
    with silent_namespace_server() as server, bound(3.0):
        with pytest.raises(socketio.ConnectionError, match="failed to connect"):
            sio.connect(server.url, transports=["websocket"], wait_timeout=0.5)
        sio.wait()  # DOWN: returns at once
        server.wait_for(lambda: server.hung_up)  # the session was closed, not left open
    assert not sio.connected


def test_a_timeout_around_connect_leaves_nothing_open(bound: Bound) -> None:
    sio = socketio.Client(reconnection=False)
    with silent_namespace_server() as server, bound(3.0):
        with pytest.raises(gevent.Timeout), gevent.Timeout(0.3):
            sio.connect(server.url, transports=["websocket"], wait_timeout=30)
        sio.wait()
        server.wait_for(lambda: server.hung_up)
    assert not sio.connected
