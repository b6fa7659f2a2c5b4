"""Connect failures: refused, silent, truncated or foreign answers, HTTP errors, bad handshakes.

Scripted servers (``dummyserver``) play what the real servers never do; the real servers give the
HTTP errors they can be made to answer. Every ``build*`` raises a typed error and leaves nothing
open: no socket, no greenlet.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

import geventio
from geventio import ConnectError, ConnectTimeout, ProtocolError
from tests.faultkit import Bound
from tests.faults.dummyserver import (
    Conn,
    Server,
    frame,
    open_packet,
    polling_script,
    websocket_script,
)
from tests.helpers import free_port
from tests.servers import ServerFactory, ServerHandle, ServerKind

METHODS = ["build", "build_polling", "build_websocket"]
TIMEOUT = 0.3  # for the cases that end in ConnectTimeout
TIMEOUT_BOUND = 1.5


def _build(url: str, method: str, timeout: float = 5.0, **query: str) -> geventio.Client:
    builder = geventio.ClientBuilder(url).timeout(timeout).query(query)
    client: geventio.Client = getattr(builder, method)()
    return client


@pytest.mark.parametrize("method", METHODS)
def test_refused_port(bound: Bound, method: str) -> None:
    """A refused port: ConnectError at once, without status or body."""
    with bound(1.0), pytest.raises(ConnectError) as info:
        _build(f"http://127.0.0.1:{free_port()}", method)
    assert not isinstance(info.value, ConnectTimeout)
    assert (info.value.status, info.value.body) == (None, None)


def _respond(status: int, body: bytes | str = b"", **options: object) -> Callable[[Conn], None]:
    """A handler that reads one request and answers it (``options`` as ``Conn.respond``)."""

    def handler(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.respond(status, body, **options)  # type: ignore[arg-type]

    return handler


def _then_stall(handler: Callable[[Conn], None]) -> Callable[[Conn], None]:
    def run(conn: Conn) -> None:
        handler(conn)
        conn.stall()

    return run


@pytest.mark.parametrize("method", METHODS)
def test_silent_server(bound: Bound, method: str) -> None:
    """A server that accepts and never answers: ConnectTimeout at timeout."""
    with Server(Conn.stall) as server:
        with bound(TIMEOUT_BOUND), pytest.raises(ConnectTimeout):
            _build(server.url, method, TIMEOUT)
        assert len(server.conns) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html><html><body>It works!</body></html>",
        b'{"sid": "x", "upgrades": []}',
        b"",
        b"OK",
        b"\xff\xfe\x00not text",
    ],
    ids=["html", "json", "empty", "text", "binary"],
)
@pytest.mark.parametrize("method", ["build", "build_polling"])
def test_a_200_that_is_not_engine_io(bound: Bound, method: str, body: bytes) -> None:
    """HTTP 200 whose body is no Engine.IO payload: ProtocolError."""
    handler = _respond(200, body, content_type="text/html")
    with Server(handler) as server, bound(1.0), pytest.raises(ProtocolError):
        _build(server.url, method)


@pytest.mark.parametrize("method", ["build", "build_polling"])
def test_a_truncated_handshake_then_close(bound: Bound, method: str) -> None:
    """A handshake body shorter than its Content-Length, then a close: ConnectError."""
    with Server(_respond(200, open_packet()[:20], content_length=500)) as server:
        with bound(1.0), pytest.raises(ConnectError) as info:
            _build(server.url, method)
        assert not isinstance(info.value, ConnectTimeout)


@pytest.mark.parametrize("method", ["build", "build_polling"])
def test_a_truncated_handshake_then_stall(bound: Bound, method: str) -> None:
    """A handshake body shorter than its Content-Length, then silence: ConnectTimeout."""
    handler = _then_stall(_respond(200, open_packet()[:20], content_length=500))
    with Server(handler) as server, bound(TIMEOUT_BOUND), pytest.raises(ConnectTimeout):
        _build(server.url, method, TIMEOUT)


# -- HTTP errors ----------------------------------------------------------------------------

BODY_SHAPES = {  # as tests/servers/README.md describes them
    "node": lambda status: json.dumps({"code": 3, "message": f"Bad request {status}"}),
    "python": lambda status: json.dumps(f"Refused with {status}"),
}


@pytest.mark.parametrize("shape", list(BODY_SHAPES))
@pytest.mark.parametrize("status", [400, 403, 500, 502, 503])
@pytest.mark.parametrize("method", METHODS)
def test_an_http_error_carries_status_and_body(
    bound: Bound, method: str, status: int, shape: str
) -> None:
    """A scripted 4xx/5xx on the handshake: ConnectError with that status and body."""
    body = BODY_SHAPES[shape](status)
    with Server(_respond(status, body, content_type="application/json")) as server:
        with bound(1.0), pytest.raises(ConnectError) as info:
            _build(server.url, method)
        assert not isinstance(info.value, ConnectTimeout)
        assert (info.value.status, info.value.body) == (status, body)
        expected = "websocket" if method == "build_websocket" else "polling"
        assert f"transport={expected}" in server.requests[0].target


#: (server, method) -> (status, body) when the handshake carries ``deny=1``
DENIED = {
    ("python", "build"): (401, '"Unauthorized"'),
    ("python", "build_websocket"): (401, '"Unauthorized"'),
    ("node", "build"): (403, '{"code":4,"message":"Forbidden"}'),
    ("node", "build_websocket"): (400, "Forbidden"),
}


@pytest.mark.parametrize("method", ["build", "build_websocket"])
def test_a_refused_handshake_on_the_real_servers(
    bound: Bound, server: ServerHandle, method: str
) -> None:
    """A real server refuses the session (deny=1): ConnectError with its status and body."""
    with bound(1.0), pytest.raises(ConnectError) as info:
        _build(server.url, method, deny="1")
    assert (info.value.status, info.value.body) == DENIED[server.kind, method]


@pytest.mark.parametrize("method", METHODS)
def test_a_path_the_real_servers_do_not_serve(
    bound: Bound, server: ServerHandle, method: str
) -> None:
    """A real server answers 404 outside its Engine.IO path: ConnectError with status 404."""
    with bound(1.0), pytest.raises(ConnectError) as info:
        _build(server.url + "/nowhere/", method)
    assert info.value.status == 404


@pytest.mark.parametrize("kind", ["python", "node"])
@pytest.mark.parametrize(
    ("allowed", "method"), [("polling", "build_websocket"), ("websocket", "build_polling")]
)
def test_a_transport_the_real_servers_refuse(
    bound: Bound, server_factory: ServerFactory, kind: ServerKind, allowed: str, method: str
) -> None:
    """A real server without the transport asked for: ConnectError with status 400 and a body."""
    handle = server_factory(kind, transports=(allowed,))
    with bound(1.0), pytest.raises(ConnectError) as info:
        _build(handle.url, method)
    assert info.value.status == 400
    assert info.value.body


# -- bad handshakes -------------------------------------------------------------------------

BAD_OPEN = {
    "no-sid": open_packet(sid=None),
    "sid-not-string": open_packet(sid=42),
    "empty-sid": open_packet(sid=""),
    "interval-string": open_packet(pingInterval="25000"),
    "interval-negative": open_packet(pingInterval=-1),
    "timeout-float": open_packet(pingTimeout=1.5),
    "timeout-bool": open_packet(pingTimeout=True),
    "upgrades-not-list": open_packet(upgrades="websocket"),
    "upgrades-not-strings": open_packet(upgrades=[1]),
    "max-payload-zero": open_packet(maxPayload=0),
    "max-payload-string": open_packet(maxPayload="1000"),
    "not-json": '0{"sid": "x",',
    "json-array": "0[1, 2]",
    "json-null": "0null",
    "not-open": "4hello",
    "empty-open": "0",
}


@pytest.mark.parametrize("case", list(BAD_OPEN))
@pytest.mark.parametrize("method", ["build_polling", "build_websocket"])
def test_a_bad_handshake_is_a_protocol_error(bound: Bound, method: str, case: str) -> None:
    """An OPEN packet with a missing or ill-typed field, or no JSON: ProtocolError."""
    packet = BAD_OPEN[case].replace('"sid": null, ', "")
    if method == "build_polling":
        script = polling_script(handshake=packet)
    else:
        script = websocket_script(frame(0x1, packet.encode()))
    with script as server:
        with bound(1.0), pytest.raises(ProtocolError):
            _build(server.url, method)
        assert len(server.requests) == 1  # nothing more was asked


def test_max_payload_may_be_missing(bound: Bound) -> None:
    """An OPEN packet without maxPayload: connects, with the reference default."""
    packet = open_packet(maxPayload=None).replace(', "maxPayload": null', "")
    with (
        polling_script(handshake=packet) as server,
        bound(1.0),
        _build(server.url, "build_polling") as client,
    ):
        assert client.handshake.max_payload == 1_000_000


def _websocket_refused_by(answer: Callable[[Conn], object]) -> Callable[[Conn], None]:
    def handler(conn: Conn) -> None:
        if conn.read_request() is not None:
            answer(conn)
            conn.stall()

    return handler


def test_a_wrong_websocket_accept_key(bound: Bound) -> None:
    """A 101 with a wrong Sec-WebSocket-Accept: ConnectError, no status."""

    def accept(conn: Conn) -> None:
        conn.accept_websocket(conn.requests[0], accept=b"d3Jvbmcga2V5IGZvciB0aGlzIQ==")

    with Server(_websocket_refused_by(accept)) as server:
        with bound(1.0), pytest.raises(ConnectError) as info:
            _build(server.url, "build_websocket")
        assert info.value.status is None


def test_a_websocket_closed_before_the_open_packet(bound: Bound) -> None:
    """A 101, then the server closes without an OPEN packet: ConnectError."""
    with websocket_script(after=lambda conn: None) as server:
        with bound(1.0), pytest.raises(ConnectError) as info:
            _build(server.url, "build_websocket")
        assert not isinstance(info.value, ConnectTimeout)


def test_a_websocket_without_an_open_packet(bound: Bound) -> None:
    """A 101, then silence: ConnectTimeout at timeout."""
    with websocket_script() as server:
        with bound(TIMEOUT_BOUND), pytest.raises(ConnectTimeout):
            _build(server.url, "build_websocket", TIMEOUT)
        server.wait_for(lambda: server.hung_up)  # the client closed its socket
