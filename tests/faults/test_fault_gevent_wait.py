"""The private names of gevent's socket that the WebSocket read relies on, and what they save.

Once a ``recv`` drained the socket, :class:`~geventio._transports.websocket.WebSocketTransport`
waits for readability with gevent's ``socket._wait(socket._read_event)`` before its next
``recv``, instead of a ``recv`` that fails with ``EAGAIN`` before gevent waits (what gevent's
own ``recv`` does). Should gevent rename or change them, these tests fail loudly.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import gevent
import gevent._socket3
import gevent.socket
import pytest

from tests.helpers import raw_websocket
from tests.servers import ServerFactory


def test_gevent_socket_waits_for_readability_with_wait_and_read_event() -> None:
    a, b = gevent.socket.socketpair()
    try:
        assert type(a) is gevent.socket.socket  # the class the transport takes the wait for
        waiter = gevent.spawn(a._wait, a._read_event)
        gevent.idle()
        assert not waiter.ready()  # nothing to read: it waits
        b.sendall(b"x")
        waiter.join(5)
        assert waiter.successful()
        assert a.recv(10) == b"x"  # readable, and nothing was read by the wait
    finally:
        a.close()
        b.close()
    assert a._read_event is None  # closed: the transport then calls recv, which raises


@pytest.fixture
def eagain() -> Iterator[dict[int, int]]:
    """``{file descriptor: recv calls that failed with EAGAIN}``, for gevent's sockets."""
    counts: dict[int, int] = {}
    original = gevent._socket3._wrefsocket.recv

    def recv(sock: Any, *args: Any) -> Any:
        try:
            return original(sock, *args)
        except BlockingIOError:
            counts[sock.fileno()] = counts.get(sock.fileno(), 0) + 1
            raise

    gevent._socket3._wrefsocket.recv = recv
    try:
        yield counts
    finally:
        gevent._socket3._wrefsocket.recv = original


def test_an_idle_websocket_reads_each_message_without_a_failed_recv(
    eagain: dict[int, int], server_factory: ServerFactory
) -> None:
    """The Node server PINGs every 50 ms, each PING answered before the next comes: one ``recv``
    per PING, none failing with ``EAGAIN`` (the read before this wait had one per PING)."""
    server = server_factory("node", ping_interval=50, ping_timeout=5000)
    ws = raw_websocket(server.url)
    try:
        fd = ws._sock.fileno()
        eagain.clear()  # the handshake's reads are not this wait's
        opened = ws.recv(5)
        assert isinstance(opened, str)
        assert opened.startswith("0{")
        for _ in range(5):
            assert ws.recv(5) == "2"
            ws.send(["3"])
    finally:
        ws.close(0)
    assert eagain.get(fd, 0) == 0


def test_under_patch_all_the_stdlib_socket_is_the_class_that_waits_first() -> None:
    """``patch_all()`` makes the stdlib socket gevent's very class: the transport's
    ``type(sock) is gevent.socket.socket`` holds, so both ways read alike."""
    code = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import socket, gevent.socket\n"
        "s = socket.socket(); print(type(s) is gevent.socket.socket); s.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "True"
