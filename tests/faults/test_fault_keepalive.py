"""Polling's kept connections, now that each request goes straight to a urllib3 connection.

The transport keeps up to two keep-alive connections itself (urllib3's pool is not used): a
connection the server closed while idle is dialled again, ``close()`` ends a request in flight at
once, and a POST goes out in one write. The last one leans on how urllib3's ``request()`` writes
(the head through http.client's ``send``, then the body): should urllib3 change that, the
write-counting test here fails loudly.
"""

from __future__ import annotations

import gc
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gevent
import gevent.socket
import pytest

from geventio import ConnectError, TransportError
from geventio._cookies import CookieJar
from geventio._transports import polling as polling_module
from geventio._transports._sockets import open_socket
from geventio._transports.polling import PollingTransport
from geventio._url import parse_url
from tests.faultkit import Bound
from tests.faults.dummyserver import OPEN, Conn, polling_script

TIMEOUT = 2.0


def _transport(url: str, **overrides: Any) -> PollingTransport:
    options: dict[str, Any] = {
        "headers": {},
        "cookies": CookieJar(),
        "ssl_context": None,
        "timeout": TIMEOUT,
        "max_message_size": 1 << 20,
    }
    options.update(overrides)
    return PollingTransport(parse_url(url), **options)


class _CountingSocket:
    """A gevent socket that records every write (``send``, ``sendall``); all else goes to the
    socket itself."""

    def __init__(self, sock: gevent.socket.socket, writes: list[bytes]) -> None:
        self._sock = sock
        self._writes = writes

    def send(self, data: bytes, flags: int = 0) -> int:
        sent: int = self._sock.send(data, flags)
        self._writes.append(bytes(data[:sent]))
        return sent

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._writes.append(bytes(data))
        self._sock.sendall(data, flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def test_a_post_goes_out_in_one_write(bound: Bound, monkeypatch: pytest.MonkeyPatch) -> None:
    """A POST's head and body leave in one ``sendall`` (one system call, one segment), and
    the server reads the whole request; a GET is one write too."""
    writes: list[bytes] = []
    original = open_socket

    def counting(host: str, port: int, timeout: float | None) -> Any:
        return _CountingSocket(original(host, port, timeout), writes)

    monkeypatch.setattr(polling_module, "open_socket", counting)
    with polling_script("6") as server, bound(1.0):
        transport = _transport(server.url)
        try:
            transport.handshake()
            assert len(writes) == 1
            assert writes[0].startswith(b"GET ")
            transport.post("scripted", b"3probe\x1e4hello")
            assert len(writes) == 2, writes
            assert writes[1].startswith(b"POST ")
            assert writes[1].endswith(b"\r\n\r\n3probe\x1e4hello")
            assert transport.get("scripted", TIMEOUT) == b"6"
            assert len(writes) == 3
        finally:
            transport.close()
    post = next(r for r in server.requests if r.method == "POST")
    assert post.body == b"3probe\x1e4hello"
    assert post.headers["content-type"] == "text/plain;charset=UTF-8"


def test_a_connection_the_server_closed_while_idle_is_dialled_again(bound: Bound) -> None:
    """The server answers the handshake, then closes that keep-alive connection (its
    keep-alive timeout): the next GET goes out on a new connection instead of failing."""
    closed = threading.Event()

    def answer_then_close(conn: Conn) -> None:
        conn.respond(200, OPEN)
        conn.sock.shutdown(socket.SHUT_WR)
        closed.set()

    with polling_script("6", handshake=answer_then_close) as server:
        transport = _transport(server.url)
        try:
            with bound(1.0):
                transport.handshake()
            server.wait_for(closed.is_set)
            (kept,) = transport._idle  # the handshake's connection, kept: wait for its EOF
            assert kept.sock is not None
            gevent.socket.wait_read(kept.sock.fileno(), timeout=1.0)
            with bound(1.0):
                assert transport.get("scripted", TIMEOUT) == b"6"
        finally:
            transport.close()
    assert len(server.conns) == 2
    assert [r.method for r in server.requests] == ["GET", "GET"]


def test_close_ends_a_request_in_flight_at_once(bound: Bound) -> None:
    """``close()`` from another greenlet closes the socket of a long-poll GET in flight: the GET
    fails with ``TransportError`` at once (not at its timeout), and later requests fail too."""
    with polling_script() as server:  # the first long-poll GET stalls
        transport = _transport(server.url)
        transport.handshake()

        def poll() -> TransportError | None:
            try:
                transport.get("scripted", 30.0)
            except TransportError as exc:
                return exc
            return None

        getter = gevent.spawn(poll)
        server.wait_for(lambda: len(server.requests) == 2)
        with bound(1.0):
            transport.close()
            error = getter.get()
        assert isinstance(error, TransportError), error
        with bound(1.0), pytest.raises(TransportError, match="closed"):
            transport.post("scripted", b"4hello")
        server.wait_for(lambda: server.hung_up)


@contextmanager
def _no_gc() -> Iterator[None]:
    """No garbage collection inside: a socket left to one is seen open."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "head",
    [
        # urllib3 refuses it after http.client made its answer (which holds the socket open)
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nabcde",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5, 6\r\n\r\nabcde",
        # http.client itself refuses it
        b"HTTP/1.1 200 OK\r\n" + b"X-Pad: y\r\n" * 101 + b"\r\n",
        b"garbage\r\n\r\n",
    ],
    ids=["lengths-differ", "lengths-differ-close", "too-many-headers", "bad-status"],
)
def test_a_refused_answer_leaves_no_socket_open(bound: Bound, head: bytes) -> None:
    """An answer refused once its head is read closes the client's socket at once, with the
    error still held: the server sees the hang-up, with no garbage collection to do it (which
    would also warn of an unclosed socket)."""
    hangup = threading.Event()

    def answer(conn: Conn) -> None:
        conn.sock.sendall(head)
        if conn.wait_hangup(TIMEOUT):
            hangup.set()

    with polling_script(handshake=answer) as server, _no_gc():
        transport = _transport(server.url)
        try:
            with bound(1.0), pytest.raises(ConnectError) as caught:
                transport.handshake()
            server.wait_for(hangup.is_set, timeout=TIMEOUT)
            assert caught.value is not None  # held until here
        finally:
            transport.close()


def test_the_cache_buster_differs_on_every_request(bound: Bound) -> None:
    """The target is encoded once per sid, the cache-buster appended fresh to each request."""
    with polling_script("6", "6") as server, bound(1.0):
        transport = _transport(server.url + "/?token=a%20b&x=%C3%A9")
        try:
            transport.handshake()
            transport.get("scripted", TIMEOUT)
            transport.post("scripted", b"4hi")
            transport.get("scripted", TIMEOUT)
        finally:
            transport.close()
    targets = [r.target for r in server.requests[1:]]
    prefix = "/engine.io/?token=a+b&x=%C3%A9&EIO=4&transport=polling&sid=scripted&t="
    assert all(t.startswith(prefix) for t in targets), targets
    busters = [t.removeprefix(prefix) for t in targets]
    assert len(set(busters)) == 3
    assert all(b and "&" not in b for b in busters)
