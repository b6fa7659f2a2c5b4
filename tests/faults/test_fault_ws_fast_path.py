"""The WebSocket fast path on a real socket, against a scripted server: the bytes that come with
the 101 answer, a fallback in the middle of a read, and an incomplete frame at the end."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable

import pytest

from geventio import ConnectError, ProtocolError, TransportError
from tests.faults.dummyserver import Conn, Server, frame
from tests.helpers import raw_websocket

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_with(conn: Conn, then: bytes) -> bool:
    """Answer the handshake with the 101 head and ``then`` in one write (one TCP segment)."""
    request = conn.read_request()
    if request is None:
        return False
    key = request.headers["sec-websocket-key"].encode()
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
    head = Conn.head(
        101, {"Upgrade": "websocket", "Connection": "Upgrade"}, [("Sec-WebSocket-Accept", accept)]
    )
    return conn.send(head + then)


def script(then: bytes, after: Callable[[Conn], None] = Conn.stall) -> Server:
    def handler(conn: Conn) -> None:
        if accept_with(conn, then):
            after(conn)

    return Server(handler)


def test_frames_that_came_with_the_101_take_the_fast_path() -> None:
    seen: list[tuple[int, bytes] | None] = []

    def after(conn: Conn) -> None:
        seen.append(conn.read_frame())
        conn.stall()

    with script(frame(TEXT, b"one") + frame(BINARY, b"\x02") + frame(PING, b"hi"), after) as server:
        ws = raw_websocket(server.url)
        try:
            assert ws.recv(5) == "one"
            assert ws.recv(5) == b"\x02"
            server.wait_for(lambda: seen == [(PONG, b"hi")])
            # wsproto was given the head alone: should it ever keep the bytes after it, this
            # fails (they would then be wsproto's to parse, off the fast path)
            assert ws._in.fast
            assert ws._in.wsproto is not None  # made to build the PONG
        finally:
            ws.close(0)


def test_a_fragmented_message_with_the_101_goes_to_wsproto() -> None:
    data = frame(TEXT, b"frag", fin=False) + frame(CONTINUATION, b"ment") + frame(TEXT, b"after")
    with script(frame(TEXT, b"first") + data) as server:
        ws = raw_websocket(server.url)
        try:
            assert [ws.recv(5) for _ in range(3)] == ["first", "fragment", "after"]
            assert not ws._in.fast
        finally:
            ws.close(0)


def _half_then_hang_up(rest: bytes) -> Callable[[Conn], None]:
    def after(conn: Conn) -> None:
        conn.send(rest)

    return after


@pytest.mark.parametrize("cut", [4, 8])
def test_bad_utf8_in_a_frame_cut_short_by_the_end_is_a_protocol_error(cut: int) -> None:
    """The peer hangs up in the middle of a text frame holding invalid UTF-8: wsproto alone
    reports it, so the fast path hands the incomplete frame over at the end (not ``None``)."""
    bad = frame(TEXT, b"a\xffbcdefghij")[:cut]
    with script(frame(TEXT, b"ok") + bad, after=lambda conn: None) as server:
        ws = raw_websocket(server.url)
        try:
            assert ws.recv(5) == "ok"
            with pytest.raises(ProtocolError, match="utf-8' codec can't decode byte 0xff"):
                ws.recv(5)
        finally:
            ws.close(0)
        assert server.conns


def test_a_frame_cut_short_by_the_end_is_the_end() -> None:
    with script(
        frame(TEXT, b"ok") + frame(TEXT, b"abcdefghij")[:6], after=lambda conn: None
    ) as server:
        ws = raw_websocket(server.url)
        try:
            assert ws.recv(5) == "ok"
            assert ws.recv(5) is None
        finally:
            ws.close(0)


def test_wsproto_still_decides_when_a_frame_may_be_sent() -> None:
    """The data frames are built without wsproto, but after the peer's CLOSE (answered by
    wsproto) a send fails as before: wsproto's state is the one checked."""
    seen: list[tuple[int, bytes] | None] = []

    def after(conn: Conn) -> None:
        seen.append(conn.read_frame())
        seen.append(conn.read_frame())
        conn.stall()

    with script(frame(TEXT, b"one") + frame(CLOSE, b"\x03\xe8bye"), after) as server:
        ws = raw_websocket(server.url)
        try:
            ws.send(["sent"])
            assert ws.recv(5) == "one"
            assert ws.recv(5) is None
            server.wait_for(lambda: seen == [(TEXT, b"sent"), (CLOSE, b"\x03\xe8bye")])
            with pytest.raises(TransportError, match="WebSocket is closed"):
                ws.send(["late"])
            assert ws.try_send(["late"]) is False
        finally:
            ws.close(0)


@pytest.mark.parametrize("before", ["", "fragmented"])
def test_a_ping_right_before_the_close_is_answered(before: str) -> None:
    """PING then CLOSE in one read: the PONG goes out before wsproto takes the CLOSE (it used to
    parse the whole batch first, and refuse the PONG as sent after the CLOSE: TransportError)."""
    seen: list[tuple[int, bytes] | None] = []

    def after(conn: Conn) -> None:
        seen.append(conn.read_frame())
        seen.append(conn.read_frame())
        conn.stall()

    first = frame(TEXT, b"a", fin=False) + frame(CONTINUATION, b"b") if before else b""
    with script(first + frame(PING, b"p") + frame(CLOSE, b"\x03\xe8"), after) as server:
        ws = raw_websocket(server.url)
        try:
            if before:
                assert ws.recv(5) == "ab"
            assert ws.recv(5) is None
            server.wait_for(lambda: seen == [(PONG, b"p"), (CLOSE, b"\x03\xe8")])
        finally:
            ws.close(0)


def test_a_trickled_101_then_frames() -> None:
    """The head's end is found however it is cut (the search overlaps the pieces)."""

    def handler(conn: Conn) -> None:
        request = conn.read_request()
        if request is None:
            return
        key = request.headers["sec-websocket-key"].encode()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
        head = Conn.head(
            101,
            {"Upgrade": "websocket", "Connection": "Upgrade"},
            [("Sec-WebSocket-Accept", accept)],
        )
        for i in range(len(head)):
            conn.send(head[i : i + 1])
            time.sleep(0.0005)  # real time apart: each byte its own segment, as a trickle
        conn.send(frame(TEXT, b"after"))
        conn.stall()

    with Server(handler) as server:
        ws = raw_websocket(server.url)
        try:
            assert ws.recv(5) == "after"
            assert ws._in.fast
        finally:
            ws.close(0)


def test_a_head_past_h11_s_limit_is_refused() -> None:
    def handler(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.send(b"HTTP/1.1 101 Switching Protocols\r\nX-Big: " + b"b" * 40000 + b"\r\n\r\n")
            conn.stall()

    with Server(handler) as server, pytest.raises(ConnectError):
        raw_websocket(server.url)


def test_plain_frames_need_no_wsproto_connection_until_the_close() -> None:
    """An open WebSocket on the fast path holds no wsproto connection; the close makes one for
    its handshake, and the server sees a proper CLOSE."""
    seen: list[tuple[int, bytes] | None] = []

    def after(conn: Conn) -> None:
        seen.append(conn.read_frame())  # the message
        seen.append(conn.read_frame())  # the client's CLOSE
        conn.send(frame(CLOSE, b"\x03\xe8"))
        conn.wait_hangup(5)

    with script(frame(TEXT, b"one") + frame(BINARY, b"\x02"), after) as server:
        ws = raw_websocket(server.url)
        try:
            assert ws.recv(5) == "one"
            assert ws.recv(5) == b"\x02"
            ws.send(["sent"])
            assert ws._in.wsproto is None
        finally:
            ws.close(5)
        server.wait_for(lambda: len(seen) == 2)
    assert seen == [(TEXT, b"sent"), (CLOSE, b"\x03\xe8")]
    assert ws._in.wsproto is not None
