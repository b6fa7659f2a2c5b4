"""Trickling servers: `timeout` bounds each whole step, however slowly the bytes come.

A scripted server sends one byte every ``TICK``, far less than ``timeout`` apart, so that no
single ``recv`` ever waits long enough for a per-recv timeout to fire. Each connecting step (the
polling handshake's head or body, the WebSocket's open packet, the upgrade probe) must end in
``ConnectTimeout`` within about ``timeout``; once connected, a POST within ``timeout`` and a
long-poll GET within its own bound, as a ``TransportError``. Nothing is left open (the fault
suite's checks): the connection a timer interrupted is closed, not pooled.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import gevent
import pytest

import geventio
from geventio import CloseReason, ConnectTimeout, TransportError
from geventio._cookies import CookieJar
from geventio._transports.polling import PollingTransport
from geventio._url import parse_url
from tests.faultkit import Bound
from tests.faults.dummyserver import OPEN, Conn, Server, frame_header, open_packet

TIMEOUT = 0.5
BOUND = TIMEOUT + 0.7  # the scheduling slack of a loaded machine
#: A server paces its trickle by this; a per-recv timeout of TIMEOUT never fires.
TICK = 0.05
#: Past this the old behaviour (waiting for ever) fails the test instead of hanging it.
HARD_STOP = 5.0

Handler = Callable[[Conn], None]


def _trickle(conn: Conn, first: bytes, then: bytes) -> None:
    """Send ``first`` at once, then the bytes of ``then`` (cycled) one per ``TICK``, until the
    client hangs up or the server stops."""
    if not conn.send(first):
        return
    for byte in itertools.cycle(then):
        if conn.server.stopping.wait(TICK) or not conn.send(bytes([byte])):
            return


def _head(status: int, **headers: str) -> bytes:
    return Conn.head(status, {k.replace("_", "-"): v for k, v in headers.items()})


TRICKLING_HEAD = _head(200)[:-2]  # the head never ends: a header line a byte at a time
TRICKLING_BODY = _head(200, Content_Length="100000") + open_packet().encode()


def _server(handshake: bytes | Handler, websocket: Handler | None = None) -> Server:
    """An Engine.IO server: the handshake GET (no sid) gets ``handshake`` (bytes, or a handler
    that takes the connection over), a WebSocket request goes to ``websocket``, a POST is
    answered ``ok``, a long-poll GET stalls."""

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if "transport=websocket" in request.target:
                assert websocket is not None, "unexpected WebSocket request"
                websocket(conn)
                return
            if request.method == "POST":
                conn.respond(200, "ok")
            elif "sid=" in request.target:
                conn.stall()
                return
            elif isinstance(handshake, bytes):
                conn.send(handshake)
            else:
                handshake(conn)
                return

    return Server(handler)


def _accepted(first: bytes, then: bytes) -> Handler:
    """Accept the WebSocket (the request was read), then trickle."""

    def run(conn: Conn) -> None:
        if conn.accept_websocket(conn.requests[-1]):
            _trickle(conn, first, then)

    return run


def _build(url: str, method: str) -> geventio.Client:
    builder = geventio.ClientBuilder(url).timeout(TIMEOUT)
    with gevent.Timeout(HARD_STOP):
        client: geventio.Client = getattr(builder, method)()
    return client


@pytest.mark.parametrize("method", ["build", "build_polling"])
@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda conn: _trickle(conn, TRICKLING_HEAD, b"X-Pad: a\r\n"), id="head"),
        pytest.param(lambda conn: _trickle(conn, TRICKLING_BODY, b"\x1e4a"), id="body"),
    ],
)
def test_a_trickled_polling_handshake(bound: Bound, method: str, answer: Handler) -> None:
    """A polling handshake whose head or body trickles in: ConnectTimeout at timeout."""
    with _server(answer) as server:
        with bound(BOUND), pytest.raises(ConnectTimeout):
            _build(server.url, method)
        server.wait_for(lambda: server.hung_up)


@pytest.mark.parametrize(
    "then",
    [
        pytest.param(b"a", id="open-packet"),
        pytest.param(b"\x89\x00", id="pings"),  # whole frames, but never a message
    ],
)
def test_a_trickled_open_packet(bound: Bound, then: bytes) -> None:
    """An open packet that trickles in, or only pings: ConnectTimeout at timeout."""
    first = frame_header(0x1, 1000) if then == b"a" else b""
    with _server(OPEN.encode(), _accepted(first, then)) as server:
        with bound(BOUND), pytest.raises(ConnectTimeout):
            _build(server.url, "build_websocket")
        server.wait_for(lambda: server.hung_up)


UPGRADABLE = _head(200, Content_Length=str(len(open_packet(upgrades=["websocket"]))))
UPGRADABLE += open_packet(upgrades=["websocket"]).encode()


def test_a_trickled_probe_fails_the_required_upgrade(bound: Bound) -> None:
    """A probe answered a byte at a time, upgrade required: ConnectTimeout at timeout."""
    probe = _accepted(frame_header(0x1, 100) + b"3probe", b"a")
    with _server(UPGRADABLE, probe) as server:
        with bound(BOUND), pytest.raises(ConnectTimeout):
            _build(server.url, "build_websocket_with_upgrade")
        server.wait_for(lambda: server.hung_up)


def test_a_trickled_probe_leaves_build_on_polling(bound: Bound) -> None:
    """An upgrade probe answered a byte at a time: build() stays on polling after timeout."""
    probe = _accepted(frame_header(0x1, 100) + b"3probe", b"a")
    with _server(UPGRADABLE, probe) as server:
        with bound(BOUND):
            client = _build(server.url, "build")
        try:
            assert client.connected
            assert client.transport == "polling"
        finally:
            client.disconnect()


def test_a_trickled_post_answer_closes_the_session(bound: Bound) -> None:
    """A POST answered a byte at a time: the session closes (transport error) at timeout."""

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if request.method == "POST":
                _trickle(conn, TRICKLING_HEAD, b"X-Pad: a\r\n")
                return
            if "sid=" not in request.target:
                conn.respond(200, OPEN)
            else:
                conn.stall()
                return

    with Server(handler) as server:
        client = _build(server.url, "build_polling")
        with bound(BOUND):
            client.send("hello")
            reason = client.wait(HARD_STOP)
        assert reason is CloseReason.TRANSPORT_ERROR
        server.wait_for(lambda: server.hung_up)


@pytest.mark.parametrize("request_kind", ["get", "post"])
def test_a_trickled_answer_once_connected(bound: Bound, request_kind: str) -> None:
    """A long-poll GET or a POST answered a byte at a time: TransportError at its bound."""
    with Server(lambda conn: _then(conn, TRICKLING_BODY)) as server:
        transport = PollingTransport(
            parse_url(server.url),
            headers={},
            cookies=CookieJar(),
            ssl_context=None,
            timeout=TIMEOUT if request_kind == "post" else 10.0,
            max_message_size=1000,
        )
        calls: dict[str, Callable[[], object]] = {
            "get": lambda: transport.get("scripted", TIMEOUT),
            "post": lambda: transport.post("scripted", b"4hello"),
        }
        call = calls[request_kind]
        try:
            with bound(BOUND), pytest.raises(TransportError) as info, gevent.Timeout(HARD_STOP):
                call()
            assert "timed out" in str(info.value)
        finally:
            transport.close()
        server.wait_for(lambda: server.hung_up)


def _then(conn: Conn, answer: bytes) -> None:
    if conn.read_request() is not None:
        _trickle(conn, answer, b"a")
