"""The WebSocket transport's two write paths keep one order: try_send never waits, send does."""

from __future__ import annotations

import threading

import gevent

from tests.faultkit import Bound
from tests.faults.dummyserver import Conn, websocket_script
from tests.helpers import raw_websocket


def test_try_send_behind_a_busy_writer_keeps_the_order(bound: Bound) -> None:
    """try_send while another greenlet writes: nothing waits, the peer gets every frame in order."""
    received: list[str] = []
    done = threading.Event()
    start_reading = threading.Event()

    def read_all(conn: Conn) -> None:
        start_reading.wait(5)  # first let the client's writes pile up
        while (got := conn.read_frame()) is not None and got[0] == 0x1:
            received.append(got[1].decode())
            if len(received) == 402:
                break
        done.set()
        conn.stall()

    with websocket_script(after=read_all) as server:
        ws = raw_websocket(server.url)
        try:
            big = "x" * 65536
            writer = gevent.spawn(ws.send, [f"big{i}{big}" for i in range(200)])  # blocks
            gevent.idle()  # the writer has written all it could: the kernel buffers are full
            assert not writer.dead, "the kernel buffers should be full by now"
            with bound(0.05):
                assert ws.try_send(["small-1"]) is False  # the writer holds the lock
                assert ws.try_send(["small-2"]) is False
            assert ws.backlogged
            start_reading.set()
            writer.get(timeout=10)
            ws.send(["after"])  # flushes the backlog first
            ws.send([f"big{i}{big}" for i in range(200, 399)])
            assert done.wait(10)
        finally:
            ws.close(0)
    names = [m if len(m) < 100 else m[: m.index("x")] for m in received]
    expected = [f"big{i}" for i in range(200)] + ["small-1", "small-2", "after"]
    assert names[:203] == expected
    assert names[203:] == [f"big{i}" for i in range(200, 399)]


def test_try_send_on_an_idle_connection_sends_at_once(bound: Bound) -> None:
    """try_send on an idle connection: everything goes out at once, no backlog."""
    received: list[str] = []
    done = threading.Event()

    def read_two(conn: Conn) -> None:
        while len(received) < 2 and (got := conn.read_frame()) is not None:
            received.append(got[1].decode())
        done.set()
        conn.stall()

    with websocket_script(after=read_two) as server:
        ws = raw_websocket(server.url)
        try:
            with bound(0.05):
                assert ws.idle
                assert ws.try_send(["3", "4hello"]) is True
            assert not ws.backlogged
            assert done.wait(5)
        finally:
            ws.close(0)
    assert received == ["3", "4hello"]
