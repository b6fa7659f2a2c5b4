"""The lazy writer against a server that stops reading: it starts with the backlog, ends after.

The send path writes from the caller while the socket takes the bytes; once the kernel's
buffers are full, a writer greenlet pushes the backlog out, and it is gone when all is written.
A disconnect meanwhile still flushes everything queued before its CLOSE.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import gevent

import geventio
from geventio._connection import State
from tests.faultkit import Bound
from tests.faults.dummyserver import Conn, frame, open_packet, websocket_script
from tests.helpers import spawn_catching, wait_until

BIG = "x" * 65536
OPENED = frame(0x1, open_packet(pingInterval=20000, pingTimeout=20000).encode())


def _read_frame(conn: Conn) -> tuple[int, str] | None:
    """The next client frame as (opcode, text), a long payload shown as its head and length."""
    got = conn.read_frame()
    if got is None:
        return None
    opcode, payload = got
    text = payload[:16].decode()
    return opcode, text if len(payload) <= 16 else f"{text.partition(':')[0]}:{len(payload)}"


def _reader(
    start: threading.Event, received: list[str], done: threading.Event
) -> Callable[[Conn], None]:
    """A server handler that reads nothing until ``start``, then every frame until CLOSE."""

    def read_later(conn: Conn) -> None:
        start.wait(10)
        while (got := _read_frame(conn)) is not None and got[0] != 0x8:
            if got[0] == 0x1:
                received.append(got[1])
                if received[-1] in ("4last", "1"):
                    break
        done.set()
        conn.stall()

    return read_later


def test_a_writer_starts_with_the_backlog_and_ends_with_it(bound: Bound) -> None:
    start, done = threading.Event(), threading.Event()
    received: list[str] = []
    with websocket_script(OPENED, after=_reader(start, received, done)) as server:
        client = geventio.ClientBuilder(server.url).send_buffer(256 * 1024).build_websocket()
        session = client._session
        assert session._writer.greenlet is None

        def flood() -> None:
            for i in range(300):  # 19 MiB: more than the kernel's buffers on both ends
                client.send(f"{i}:{BIG}")
            client.send("last")

        sender = spawn_catching(flood)
        wait_until(lambda: session._writer.greenlet is not None)  # the socket is full
        assert not sender.dead
        start.set()
        assert sender.get(timeout=20) is None
        wait_until(lambda: session._writer.greenlet is None, timeout=20)
        assert session._ws is not None
        assert not session._ws.backlogged
        assert not session._conn.has_output
        assert done.wait(20)
        with bound(2.0):
            client.disconnect()
    assert received == [f"4{i}:{len(BIG) + len(str(i)) + 2}" for i in range(300)] + ["4last"]


def test_a_disconnect_under_backlog_flushes_before_close(bound: Bound) -> None:
    """disconnect() while the writer pushes a backlog: every message, then CLOSE, arrives."""
    start, done = threading.Event(), threading.Event()
    received: list[str] = []
    with websocket_script(OPENED, after=_reader(start, received, done)) as server:
        builder = geventio.ClientBuilder(server.url).send_buffer(64 << 20).timeout(10)
        client = builder.build_websocket()
        session = client._session
        for i in range(100):  # 6.4 MiB: none blocks (the send buffer is larger)
            client.send(f"{i}:{BIG}")
        gevent.idle()
        wait_until(lambda: session._writer.greenlet is not None)
        closing = gevent.spawn(client.disconnect)
        wait_until(lambda: session._conn.state is not State.OPEN)
        assert not closing.dead  # it waits for the flush
        start.set()
        with bound(10.0):
            closing.get(timeout=10)
        assert done.wait(5)
    assert received == [f"4{i}:{len(BIG) + len(str(i)) + 2}" for i in range(100)] + ["1"]
    assert client.close_reason is geventio.CloseReason.CLIENT_DISCONNECT
