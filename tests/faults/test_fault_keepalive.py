"""Polling's kept connections, now that each request goes straight to a urllib3 connection.

The transport keeps up to two keep-alive connections itself (urllib3's pool is not used): a
connection the server closed while idle is dialled again, ``close()`` ends a request in flight at
once, and a POST goes out in one write. It writes each request with the connection's
``putrequest``/``endheaders`` and header lines encoded once (put into http.client's private
``_buffer``), and reads the answer with http.client's ``getresponse()`` and ``read(amt)``, which
leaves an answer cut short of its Content-Length in the response's ``length``. Should urllib3 or
http.client change any of that (how ``endheaders`` writes, ``_buffer``, ``length``), the tests
here fail loudly.
"""

from __future__ import annotations

import gc
import importlib.metadata
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import gevent
import gevent.socket
import pytest

from geventio import ConnectError, TransportError
from geventio._cookies import CookieJar
from geventio._transports import _http as http_module
from geventio._transports._http import dropped
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


def _spawn_get(transport: PollingTransport, seconds: float) -> gevent.Greenlet[Any, Any]:
    """A long-poll GET in a greenlet of its own: its value is the ``TransportError`` the GET
    raised, or ``None``."""

    def poll() -> TransportError | None:
        try:
            transport.get("scripted", seconds)
        except TransportError as exc:
            return exc
        return None

    return gevent.spawn(poll)


def test_a_post_goes_out_in_one_write(bound: Bound, monkeypatch: pytest.MonkeyPatch) -> None:
    """A POST's head and body leave in one ``sendall`` (one system call, one segment), and
    the server reads the whole request; a GET is one write too."""
    writes: list[bytes] = []
    original = open_socket

    def counting(host: str, port: int, timeout: float | None) -> Any:
        return _CountingSocket(original(host, port, timeout), writes)

    monkeypatch.setattr(http_module, "open_socket", counting)
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

        getter = _spawn_get(transport, 30.0)
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
        # the deadline cuts the head short: http.client is inside its answer's reading
        b"HTTP/1.1 200 OK\r\nX-Pad: y\r\n",
    ],
    ids=["lengths-differ", "lengths-differ-close", "too-many-headers", "bad-status", "cut-head"],
)
def test_a_refused_answer_leaves_no_socket_open(bound: Bound, head: bytes) -> None:
    """An answer refused once its head began, or cut short by the deadline, closes the client's
    socket at once, with the error still held: the server sees the hang-up, with no garbage
    collection to do it (which would also warn of an unclosed socket)."""
    hangup = threading.Event()

    def answer(conn: Conn) -> None:
        conn.sock.sendall(head)
        if conn.wait_hangup(TIMEOUT):
            hangup.set()

    with polling_script(handshake=answer) as server, _no_gc():
        transport = _transport(server.url, timeout=0.3)
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


def _heads(writes: list[bytes]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each write's request line and header lines (names lowercased, in order)."""
    heads = []
    for data in writes:
        line, *lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        fields = [(n.strip().lower(), v.strip()) for n, _, v in (h.partition(":") for h in lines)]
        heads.append((line, fields))
    return heads


@pytest.mark.parametrize("user_agent", [None, "mine/1.0"])
def test_each_request_carries_each_header_once(
    bound: Bound, monkeypatch: pytest.MonkeyPatch, user_agent: str | None
) -> None:
    """The head of each request, written from lines encoded once per transport (into
    http.client's private ``_buffer``): the Host that http.client computes, identity encoding,
    urllib3's User-Agent unless the user set one, the user's headers, the jar's cookie, and a
    POST's type and length; each exactly once."""
    writes: list[bytes] = []
    original = open_socket

    def counting(host: str, port: int, timeout: float | None) -> Any:
        return _CountingSocket(original(host, port, timeout), writes)

    def handshake(conn: Conn) -> None:  # the script hangs up after it: the client is told
        conn.respond(200, OPEN, headers={"Connection": "close"}, extra=[("Set-Cookie", "k=v")])

    monkeypatch.setattr(http_module, "open_socket", counting)
    headers = {"X-Token": "a b"} | ({"user-agent": user_agent} if user_agent else {})
    with polling_script("6", handshake=handshake) as server, bound(1.0):
        transport = _transport(server.url, headers=headers)
        try:
            transport.handshake()
            transport.post("scripted", b"4hello")
            transport.get("scripted", TIMEOUT)
        finally:
            transport.close()
    common = {
        "host": f"127.0.0.1:{server.port}",
        "accept-encoding": "identity",
        "user-agent": user_agent or f"python-urllib3/{importlib.metadata.version('urllib3')}",
        "x-token": "a b",
    }
    post = {"cookie": "k=v", "content-type": "text/plain;charset=UTF-8", "content-length": "6"}
    expected = [("GET", common), ("POST", common | post), ("GET", common | {"cookie": "k=v"})]
    heads = _heads(writes)
    assert len(heads) == 3, writes
    for (line, fields), (method, wanted) in zip(heads, expected, strict=True):
        assert line.startswith(f"{method} /engine.io/?")
        assert line.endswith(" HTTP/1.1")
        assert sorted(fields) == sorted(wanted.items()), (line, fields)
    assert writes[1].endswith(b"\r\n\r\n4hello")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://b\u00fccher.example:8080", "xn--bcher-kva.example:8080"),
        ("https://example.com", "example.com"),
        ("https://example.com:8443", "example.com:8443"),
        ("http://[::1]:80", "[::1]"),
        ("http://example.com.", "example.com"),
    ],
)
def test_the_host_line_is_http_clients(url: str, host: str) -> None:
    """The ``Host`` line is computed once per transport by http.client's ``putrequest`` (an
    IDNA host, an IPv6 literal, a default port left out, urllib3's FQDN dot dropped), as each
    request of urllib3's ``request()`` computed it."""
    transport = _transport(url)
    assert transport._get_lines[0] == f"Host: {host}".encode()
    transport.close()


def _cut_short(announced: int, sent: int) -> Callable[[Conn], None]:
    def reply(conn: Conn) -> None:
        conn.respond(200, b"4" + b"a" * (sent - 1), content_length=announced)

    return reply


@pytest.mark.parametrize(("announced", "sent"), [(50, 10), (200_000, 70_000)])
def test_a_poll_answer_cut_short_of_its_length_fails(
    bound: Bound, announced: int, sent: int
) -> None:
    """An answer that ends (the server hangs up) before its Content-Length: http.client's
    ``read(amt)`` ends quietly, leaving the rest in ``length``; the GET fails, whether the
    answer is smaller than one read or not."""
    with polling_script(_cut_short(announced, sent)) as server, bound(1.0):
        transport = _transport(server.url)
        try:
            transport.handshake()
            with pytest.raises(TransportError):
                transport.get("scripted", TIMEOUT)
        finally:
            transport.close()


def test_a_kept_deadline_fires_again_and_is_not_shared(bound: Bound) -> None:
    """Each request's deadline timer is kept for the next request with the same limit: it fires
    again on a later request, and a POST while a GET with the same limit is in flight gets a
    timer of its own (the GET still times out, the POST is answered)."""
    with polling_script() as server:  # every long-poll GET stalls; POSTs are answered
        transport = _transport(server.url, timeout=0.3)
        try:
            transport.handshake()
            with bound(1.0):
                getter = _spawn_get(transport, 0.3)
                server.wait_for(lambda: len(server.requests) == 2)
                transport.post("scripted", b"4hello")  # the GET's timer is in use meanwhile
                error = getter.get()
            assert isinstance(error, TransportError), error
            assert str(error) == "GET /engine.io/: timed out"
            with bound(1.0), pytest.raises(TransportError, match="timed out"):
                transport.get("scripted", 0.3)  # the kept timer, started again
        finally:
            transport.close()
    assert [r.method for r in server.requests] == ["GET", "GET", "POST", "GET"]


def test_dropped_is_true_once_the_peer_closed_or_sent() -> None:
    """The idle check (a ``poll(2)`` with no wait, on the stdlib's ``select.poll`` even when
    ``select`` is patched): quiet is kept, a hang-up or stray bytes are dropped."""
    a, b = gevent.socket.socketpair()
    c, d = gevent.socket.socketpair()
    try:
        assert not dropped(a)
        b.close()
        assert dropped(a)
        d.sendall(b"x")
        assert dropped(c)
    finally:
        for sock in (a, c, d):
            sock.close()
