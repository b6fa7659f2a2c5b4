"""Session protocol violations from a scripted server, on polling and on WebSocket.

Each session first receives a valid message, then something the server must not send. The client
must hand the valid message over, report a :class:`ProtocolError` (or, for an oversized message, a
typed transport error) to ``on_error`` and close with ``TRANSPORT_ERROR``.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Literal

import pytest

import geventio
from geventio import CloseReason, ConnectionClosed, EngineIOError, ProtocolError, TransportError
from tests.faultkit import Bound
from tests.faults.dummyserver import (
    CHUNK,
    OPEN,
    Conn,
    Server,
    frame,
    frame_header,
    http_chunk,
    polling_script,
    websocket_script,
)

Transport = Literal["polling", "websocket"]
TEXT, BINARY, CONTINUATION = 0x1, 0x2, 0x0

#: id: (polling body, WebSocket bytes), each sent after a first valid message "before";
#: ``None`` where the violation has no equivalent on that transport
VIOLATIONS: dict[str, tuple[bytes | None, bytes | None]] = {
    "packet-type": (b"9nope", frame(TEXT, b"9nope")),
    "base64": (b"b!!!", frame(TEXT, b"b!!!")),
    "utf8": (b"4\xff\xfe", frame(TEXT, b"4\xff\xfe")),
    "second-open": (OPEN.encode(), frame(TEXT, OPEN.encode())),
    "upgrade-packet": (b"5", frame(TEXT, b"5")),
    "empty-payload": (b"", frame(TEXT, b"")),
    # a valid packet, then garbage: in the same polling body, or as bytes that are no frame
    "garbage-after": (b"4also\x1e\x00garbage", frame(TEXT, b"4also") + b"\xff\xff garbage"),
    "reserved-opcode": (None, frame(TEXT, b"4also") + frame(0x3, b"x")),
    "masked-frame": (None, frame(TEXT, b"4also") + b"\x81\x81abcd!"),
}
CASES = [
    pytest.param(case, transport, id=f"{case}-{transport}")
    for case, (polling, websocket) in VIOLATIONS.items()
    for transport, bad in (("polling", polling), ("websocket", websocket))
    if bad is not None
]
#: what the client still delivers before the violation (default: "before")
DELIVERED = {case: ["before", "also"] for case in ("garbage-after", "reserved-opcode")}
DELIVERED["masked-frame"] = ["before", "also"]


def _script(transport: Transport, *replies: bytes) -> AbstractContextManager[Server]:
    if transport == "polling":
        return polling_script(*replies)
    return websocket_script(frame(TEXT, OPEN.encode()), *replies)


def _open(server: Server, transport: Transport, **options: object) -> geventio.Client:
    builder = geventio.ClientBuilder(server.url).timeout(5)
    for name, value in options.items():
        getattr(builder, name)(value)
    return builder.build_polling() if transport == "polling" else builder.build_websocket()


def _drain(client: geventio.Client) -> list[str | bytes]:
    """Every message the client kept; ``receive()`` must end with ConnectionClosed."""
    received: list[str | bytes] = []
    while (message := _next(client)) is not None:
        received.append(message)
    with pytest.raises(ConnectionClosed) as info:
        client.receive(0)
    assert info.value.reason is CloseReason.TRANSPORT_ERROR
    return received


def _next(client: geventio.Client) -> str | bytes | None:
    try:
        return client.receive(1)
    except ConnectionClosed:
        return None


@pytest.mark.parametrize(("case", "transport"), CASES)
def test_a_protocol_violation_closes_after_the_messages_before_it(
    bound: Bound, transport: Transport, case: str
) -> None:
    """A packet the server must not send: ProtocolError, TRANSPORT_ERROR, earlier messages kept."""
    polling, websocket = VIOLATIONS[case]
    bad = polling if transport == "polling" else websocket
    assert bad is not None
    errors: list[EngineIOError] = []
    before = b"4before" if transport == "polling" else frame(TEXT, b"4before")
    with _script(transport, before, bad) as server:
        with bound(1.5):
            client = _open(server, transport, on_error=errors.append)
            assert client.wait(5) is CloseReason.TRANSPORT_ERROR
        assert _drain(client) == DELIVERED.get(case, ["before"])
        assert len(errors) == 1
        assert isinstance(errors[0], ProtocolError), errors[0]
        server.wait_for(lambda: server.hung_up)


# -- a message far larger than max_message_size -------------------------------------------

MAX = 2 << 20  # the client's limit in these tests
HUGE = 256 << 20  # what the server announces or streams
#: bytes the kernel may take on the client's behalf beyond the limit (socket buffers)
SLACK = 16 << 20
DEFAULT_MAX = 16 << 20  # ClientBuilder's default


def _ws_frame(conn: Conn) -> None:
    conn.stream(frame_header(BINARY, HUGE), HUGE)


def _ws_fragments(conn: Conn) -> None:
    first = frame(BINARY, b"a" * CHUNK, fin=False)
    conn.stream(first, HUGE, lambda data: frame(CONTINUATION, data, fin=False))


def _polling_length(conn: Conn) -> None:
    conn.stream(conn.head(200, {"Content-Length": str(HUGE)}), HUGE)


def _polling_chunked(conn: Conn) -> None:
    conn.stream(conn.head(200, {"Transfer-Encoding": "chunked"}), HUGE, http_chunk)


SHAPES: dict[str, tuple[Transport, Callable[[Conn], None]]] = {
    "ws-one-frame": ("websocket", _ws_frame),
    "ws-fragments": ("websocket", _ws_fragments),
    "polling-content-length": ("polling", _polling_length),
    "polling-chunked": ("polling", _polling_chunked),
}


@pytest.fixture
def traced() -> Iterator[Callable[[], int]]:
    """tracemalloc on for the test; the fixture's value gives the peak so far, in bytes."""
    tracemalloc.start()
    try:
        yield lambda: tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("shape", "limit"),
    [*((shape, MAX) for shape in SHAPES), ("ws-one-frame", None), ("polling-chunked", None)],
    ids=[*(f"{shape}-2MiB" for shape in SHAPES), "ws-one-frame-default", "polling-chunked-default"],
)
def test_an_oversized_message_is_refused_without_reading_it(
    bound: Bound, traced: Callable[[], int], shape: str, limit: int | None
) -> None:
    """A 256 MiB message over the limit: typed error, TRANSPORT_ERROR, hang-up, memory bounded."""
    transport, streamer = SHAPES[shape]
    errors: list[EngineIOError] = []
    options: dict[str, object] = {"on_error": errors.append}
    if limit is not None:
        options["max_message_size"] = limit
    if transport == "polling":
        script = polling_script(b"4before", streamer)
    else:
        opening = (frame(TEXT, OPEN.encode()), frame(TEXT, b"4before"))
        script = websocket_script(*opening, after=streamer)
    with script as server:
        with bound(5.0):
            client = _open(server, transport, **options)
            assert client.wait(10) is CloseReason.TRANSPORT_ERROR
        assert _drain(client) == ["before"]
        assert len(errors) == 1
        assert isinstance(errors[0], (ProtocolError, TransportError)), errors[0]
        assert "over" in str(errors[0]) or "larger" in str(errors[0])
        server.wait_for(lambda: server.conns[-1].hung_up)
        size = limit or DEFAULT_MAX
        assert server.bytes_sent <= size + SLACK, f"the client took {server.bytes_sent} bytes"
    assert traced() <= 3 * size + (4 << 20), f"tracemalloc peak {traced()} bytes"
