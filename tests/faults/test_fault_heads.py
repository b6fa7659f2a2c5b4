"""Whatever the server sends, only typed errors come out: fuzzed HTTP heads and handshakes.

One scripted server per test answers each request with the bytes of the current hypothesis
example (status line, header names and values, Content-Length, Transfer-Encoding, body), for the
polling handshake, a long-poll GET, or the WebSocket upgrade. ``build*()`` must succeed or raise
``ProtocolError`` or ``ConnectError`` (``TransportError`` covers both); an open session must
close with a typed error, never an internal one. The suite's checks add: no hub error, no socket
left open. Cookies are fuzzed elsewhere: no ``Set-Cookie`` here.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import gevent
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import geventio
from geventio import CloseReason, ConnectError, EngineIOError, ProtocolError, TransportError
from tests.faultkit import Bound
from tests.faults.dummyserver import Conn, Server, frame, http_chunk, open_packet
from tests.helpers import wait_until

FUZZ = settings(
    database=None,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: The whole of one fuzz test (its examples take a few ms each).
FUZZ_BOUND = 30.0
TIMEOUT = 2.0  # no example should need it: the server closes each connection it answered
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# -- the scripted server --------------------------------------------------------------------


@dataclass
class Script:
    """What the server answers, per kind of request; ``None`` for a long-poll GET: stall."""

    handshake: bytes = b""
    poll: bytes | None = None
    websocket: bytes = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
    polls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _fill(data: bytes, key: str | None) -> bytes:
    """Put the right Sec-WebSocket-Accept where the example says ``{accept}``."""
    if key is None:
        return data
    token = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest())
    return data.replace(b"{accept}", token)


@contextmanager
def scripted() -> Iterator[tuple[Server, Script]]:
    """A server playing the current :class:`Script`; each answer ends its connection."""
    script = Script()

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if request.method == "POST":
                conn.respond(200, "ok")
                continue
            if "transport=websocket" in request.target:
                key = request.headers.get("sec-websocket-key")
                if conn.send(_fill(script.websocket, key)):
                    with suppress(OSError):
                        conn.sock.shutdown(socket.SHUT_WR)  # the end: the client sees it at once
                    conn.wait_hangup(TIMEOUT)  # and closes first: no reset of what it sent
                return
            if "sid=" not in request.target:
                conn.send(script.handshake)
                return
            with script.lock:
                script.polls += 1
                answer, script.poll = script.poll, None  # answered once, then stall
            if answer is None:
                conn.stall()
            else:
                conn.send(answer)
            return

    with Server(handler) as server:
        yield server, script


# -- what the fuzz sends --------------------------------------------------------------------

_STATUS = st.one_of(
    st.sampled_from(
        [b"HTTP/1.1 200 OK", b"HTTP/1.0 200 OK", b"HTTP/1.1 200", b"HTTP/1.1 101 Switching",
         b"HTTP/1.1 100 Continue", b"HTTP/1.1 204 No Content", b"HTTP/1.1 302 Found",
         b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 999 Odd", b"HTTP/1.1 -200 OK",
         b"HTTP/1.1 2000000000000000000000 OK", "HTTP/1.1 ٢٠٠ OK".encode(), b"HTTP/2 200",
         b"ICY 200 OK", b""]
    ),
    st.binary(max_size=30),
)  # fmt: skip
_NAMES = st.one_of(
    st.sampled_from(
        [b"Content-Length", b"content-length", b"Content-Length ", b" Content-Length",
         b"Transfer-Encoding", b"Content-Encoding", b"Content-Type", b"Connection", b"Upgrade",
         b"Sec-WebSocket-Accept", b"Sec-WebSocket-Extensions", b"Sec-WebSocket-Protocol",
         b"X-Pad", b""]
    ),
    st.binary(min_size=1, max_size=12),
)  # fmt: skip
_VALUES = st.one_of(
    st.sampled_from(
        [b"{length}", b"{accept}", b"0", "²".encode(), "²".encode("latin-1"), "٣".encode(),
         b"-1", b"+5", b"1e3", b"9" * 30, b"9" * 5000, b"5, 5", b"5, 6", b"chunked", b"gzip",
         b"gzip, chunked", b"identity", b"br", b"close", b"keep-alive", b"Upgrade",
         b"websocket", b"permessage-deflate", b"\x00", b"\xff\xfe"]
    ),
    st.binary(max_size=20),
)  # fmt: skip


def _ok(body: bytes, **headers: str) -> bytes:
    """A 200 with ``body``; ``Connection: close``, as the server closes the connection after
    it (else the client may reuse it before it sees the close, and get no answer)."""
    fields = {"Content-Length": str(len(body)), "Connection": "close"}
    return Conn.head(200, {**fields, **headers}) + body


def _chunked(data: bytes) -> bytes:
    return http_chunk(data) + b"0\r\n\r\n"


def _head(status: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """The answer's bytes; ``{length}`` in a value is the body's real length."""
    lines = [status] + [n + b": " + v.replace(b"{length}", b"%d" % len(body)) for n, v in headers]
    data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    return re.sub(rb"(?i)set-cookie", b"X-Cookie", data)  # the cookie jar is fuzzed elsewhere


def _answers(bodies: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Answers near a valid one (status 200, the right length) as often as far from it."""
    status = st.one_of(st.just(b"HTTP/1.1 200 OK"), _STATUS)
    headers = st.lists(st.tuples(_NAMES, _VALUES), max_size=6)
    valid = st.just([(b"Content-Length", b"{length}")])
    return st.builds(
        _head, status, st.one_of(st.builds(list.__add__, valid, headers), headers), bodies
    )


_OPEN = open_packet().encode()
_POLLING_BODIES = st.one_of(
    st.sampled_from([_OPEN, _chunked(_OPEN), gzip.compress(_OPEN), b"", b"\x1e", _OPEN + b"\x1e6"]),
    st.binary(max_size=40),
)
_POLL_BODIES = st.one_of(
    st.sampled_from([b"6", b"4hi\x1e2", _chunked(b"6"), gzip.compress(b"6"), b"", b"1", b"b!!"]),
    st.binary(max_size=40),
)
_WS_OPEN = frame(0x1, _OPEN)
_WS_BODIES = st.one_of(
    st.just(_WS_OPEN),
    st.sampled_from([_WS_OPEN, b"", frame(0x1, b"\xff"), frame(0x2, _OPEN), frame(0x8, b"")]),
    st.binary(max_size=40),
)
_WS_VALID = [
    (b"Upgrade", b"websocket"),
    (b"Connection", b"Upgrade"),
    (b"Sec-WebSocket-Accept", b"{accept}"),
]
#: Some of the headers a 101 needs (often all of them), and fuzzed ones.
_WS_HEADS = st.builds(
    list.__add__,
    st.one_of(st.just(_WS_VALID), st.lists(st.sampled_from(_WS_VALID), unique=True)),
    st.lists(st.tuples(_NAMES, _VALUES), max_size=4),
)
_WS_ANSWERS = st.builds(
    _head, st.one_of(st.just(b"HTTP/1.1 101 Switching Protocols"), _STATUS), _WS_HEADS, _WS_BODIES
)


# -- the checks -----------------------------------------------------------------------------


def _connect(url: str, method: str, errors: list[EngineIOError]) -> geventio.Client | None:
    """``build*()``: the client, or ``None`` when it raised a typed error (anything else
    fails the test)."""
    builder = geventio.ClientBuilder(url).timeout(TIMEOUT).on_error(errors.append)
    try:
        with gevent.Timeout(TIMEOUT * 3):  # a hang fails the example instead of the suite
            client: geventio.Client = getattr(builder, method)()
    except (ProtocolError, ConnectError) as exc:
        event(f"{method}: {type(exc).__name__}")  # see --hypothesis-show-statistics
        return None
    event(f"{method}: connected")
    return client


def _typed(errors: list[EngineIOError]) -> None:
    """Errors reported by an open session are typed, and none is an internal error."""
    for error in errors:
        assert isinstance(error, (ProtocolError, TransportError)), repr(error)
        assert "internal error" not in str(error), repr(error)


def _connect_typed(url: str, method: str) -> None:
    """Connect with ``method`` (a typed error is fine), disconnect, and check the errors."""
    errors: list[EngineIOError] = []
    client = _connect(url, method, errors)
    if client is not None:
        client.disconnect()
    _typed(errors)


@pytest.mark.parametrize(
    ("answer_to", "method"),
    [
        ("handshake", "build"),
        ("handshake", "build_polling"),
        ("websocket", "build"),
        ("websocket", "build_websocket"),
    ],
)
def test_fuzzed_connect_answers(bound: Bound, answer_to: str, method: str) -> None:
    """Any answer to the polling handshake or the WebSocket upgrade: a client, or a typed error."""
    answers = _answers(_POLLING_BODIES) if answer_to == "handshake" else _WS_ANSWERS
    with scripted() as (server, script):
        if answer_to == "websocket":
            script.handshake = _ok(open_packet(upgrades=["websocket"]).encode())

        @FUZZ
        @given(answers)
        def run(answer: bytes) -> None:
            setattr(script, answer_to, answer)
            _connect_typed(server.url, method)

        with bound(FUZZ_BOUND):
            run()


def test_fuzzed_long_poll_answers(bound: Bound) -> None:
    """Any answer to a long-poll GET: the session goes on or closes with a typed error."""
    with scripted() as (server, script):
        script.handshake = _ok(_OPEN)

        @FUZZ
        @given(_answers(_POLL_BODIES))
        def run(answer: bytes) -> None:
            script.poll, script.polls = answer, 0
            errors: list[EngineIOError] = []
            client = _connect(server.url, "build_polling", errors)
            assert client is not None
            try:
                # the fuzzed answer was taken, and then the next GET came, or the session closed
                wait_until(lambda: client.close_reason is not None or script.polls >= 2)
            finally:
                client.disconnect()
            assert client.close_reason in (
                CloseReason.CLIENT_DISCONNECT,
                CloseReason.TRANSPORT_ERROR,
                CloseReason.TRANSPORT_CLOSE,
                CloseReason.SERVER_DISCONNECT,
            )
            _typed(errors)

        with bound(FUZZ_BOUND):
            run()


# -- the handshake's JSON -------------------------------------------------------------------

_ODD_TEXT = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", "\x00", "a\r\nb", "\ud800", "é", "日本", "😀", "\u202e", " ", "a" * 2000]),
)
_ANY_NUMBER = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**450), max_value=10**450),
    st.sampled_from([2**31 - 1, 2**31, 2**53, 10**400, -1, 0]),
    st.floats(),
    st.booleans(),
    st.none(),
    _ODD_TEXT,
)
_FIELDS = ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]
_VALID_OPEN: dict[str, Any] = json.loads(open_packet(upgrades=["websocket"])[1:])
_FUZZED_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "sid": st.one_of(_ODD_TEXT, _ANY_NUMBER),
        "upgrades": st.one_of(st.lists(st.one_of(_ODD_TEXT, _ANY_NUMBER), max_size=3), _ANY_NUMBER),
        "pingInterval": _ANY_NUMBER,
        "pingTimeout": _ANY_NUMBER,
        "maxPayload": _ANY_NUMBER,
    },
)


def _changed(changes: dict[str, Any], dropped: list[str]) -> dict[str, Any]:
    fields = {**_VALID_OPEN, **changes}
    for name in dropped:
        fields.pop(name, None)
    return fields


#: A valid open packet with some fields changed or dropped (the others stay valid).
_HANDSHAKES = st.builds(_changed, _FUZZED_FIELDS, st.lists(st.sampled_from(_FIELDS), max_size=1))


def _open(fields: dict[str, Any]) -> bytes:
    return b"0" + json.dumps(fields).encode()


@pytest.mark.parametrize("method", ["build_polling", "build_websocket"])
def test_fuzzed_handshakes(bound: Bound, method: str) -> None:
    """Any open packet's JSON: a client, or ProtocolError (never OverflowError, ValueError).

    Huge, negative, float and bool numbers, wrong types, odd unicode.
    """
    with scripted() as (server, script):

        @FUZZ
        @given(_HANDSHAKES)
        def run(fields: dict[str, Any]) -> None:
            packet = _open(fields)
            script.handshake = _ok(packet)
            accept = b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}"
            script.websocket = b"HTTP/1.1 101 Switching Protocols\r\n" + accept + b"\r\n\r\n"
            script.websocket += frame(0x1, packet)
            _connect_typed(server.url, method)

        with bound(FUZZ_BOUND):
            run()


# -- the cases the fuzz found, kept as examples ---------------------------------------------


@pytest.mark.parametrize("method", ["build_polling", "build_websocket"])
def test_a_ping_interval_past_any_float(bound: Bound, method: str) -> None:
    """pingInterval 10**400 ms (past any float): ProtocolError, not OverflowError."""
    packet = open_packet(pingInterval=10**400).encode()
    with scripted() as (server, script):
        script.handshake = _ok(packet)
        script.websocket = b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        script.websocket += b"Sec-WebSocket-Accept: {accept}\r\n\r\n" + frame(0x1, packet)
        builder = geventio.ClientBuilder(server.url).timeout(TIMEOUT)
        with bound(1.0), pytest.raises(ProtocolError):
            getattr(builder, method)()


def test_a_content_length_of_superscript_digits(bound: Bound) -> None:
    """A Content-Length of "²": ignored as urllib3 does (the body read to its end), no ValueError.

    ``str.isdigit`` says yes to it, ``int`` says no.
    """
    with scripted() as (server, script):
        script.handshake = Conn.head(200, {"Content-Length": "²", "Connection": "close"}) + _OPEN
        builder = geventio.ClientBuilder(server.url).timeout(TIMEOUT)
        with bound(1.0), builder.build_polling() as client:
            assert client.sid == "scripted"


def test_a_content_length_of_5000_digits(bound: Bound) -> None:
    """A Content-Length of 5000 digits (more than int reads): ConnectError, over the limit."""
    with scripted() as (server, script):
        script.handshake = Conn.head(200, {"Content-Length": "9" * 5000}) + _OPEN
        builder = geventio.ClientBuilder(server.url).timeout(TIMEOUT)
        with bound(1.0), pytest.raises(ConnectError, match="over the limit"):
            builder.build_polling()


@pytest.mark.parametrize("twice", [True, False], ids=["two-lines", "one-line"])
def test_content_lengths_that_differ_are_refused(bound: Bound, twice: bool) -> None:
    """Two Content-Lengths that differ (two lines, or one with a comma): ConnectError, as
    urllib3's ``HTTPResponse`` refused them; http.client alone would read by the first."""
    size = len(_OPEN)
    lines = [("Content-Length", str(size)), ("Content-Length", str(size + 1))]
    if not twice:
        lines = [("Content-Length", f"{size}, {size + 1}")]
    with scripted() as (server, script):
        script.handshake = Conn.head(200, {"Connection": "close"}, lines) + _OPEN
        builder = geventio.ClientBuilder(server.url).timeout(TIMEOUT)
        with bound(1.0), pytest.raises(ConnectError, match="Content-Length"):
            builder.build_polling()


def test_a_gzip_handshake_is_refused(bound: Bound) -> None:
    """A gzip-encoded handshake: ConnectError, undecoded (the client asked for identity)."""
    body = gzip.compress(_OPEN)
    with scripted() as (server, script):
        script.handshake = _ok(body, **{"Content-Encoding": "gzip"})
        builder = geventio.ClientBuilder(server.url).timeout(TIMEOUT)
        with bound(1.0), pytest.raises(ConnectError, match="encoded"):
            builder.build_polling()
        assert server.requests[0].headers["accept-encoding"] == "identity"


def test_a_gzip_poll_answer_closes_the_session(bound: Bound) -> None:
    """A gzip-encoded answer to a long-poll GET: the session closes with a TransportError."""
    body = gzip.compress(b"4hello")
    with scripted() as (server, script):
        script.handshake = _ok(_OPEN)
        script.poll = _ok(body, **{"Content-Encoding": "gzip"})
        errors: list[EngineIOError] = []
        builder = geventio.ClientBuilder(server.url).timeout(TIMEOUT).on_error(errors.append)
        with bound(1.0), builder.build_polling() as client:
            assert client.wait(TIMEOUT) is CloseReason.TRANSPORT_ERROR
        assert [type(e) for e in errors] == [TransportError]
        assert "encoded" in str(errors[0])
        assert all(r.headers["accept-encoding"] == "identity" for r in server.requests)


@pytest.mark.parametrize("name", [b"Sec-WebSocket-Protocol", b"Sec-WebSocket-Extensions"])
def test_a_101_with_a_header_wsproto_reads_as_ascii(bound: Bound, name: bytes) -> None:
    """A 101 with a non-ASCII subprotocol or extensions: ConnectError, no UnicodeDecodeError."""
    with scripted() as (server, script):
        script.websocket = _head(
            b"HTTP/1.1 101 Switching Protocols",
            [
                (b"Upgrade", b"websocket"),
                (b"Connection", b"Upgrade"),
                (b"Sec-WebSocket-Accept", b"{accept}"),
                (name, "é".encode()),
            ],
            _WS_OPEN,
        )
        builder = geventio.ClientBuilder(server.url).timeout(TIMEOUT)
        with bound(1.0), pytest.raises(ConnectError):
            builder.build_websocket()
