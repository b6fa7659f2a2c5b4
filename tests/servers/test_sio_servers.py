"""Self-checks for the real Socket.IO test servers and their fixtures.

Most drive each server (python-socketio, Flask-SocketIO, Node socket.io) with python-socketio's
own sync client, the reference implementation, so they do not depend on the client under test.
That client runs its I/O in OS threads (requests, websocket-client) and never touches the gevent
hub, so the suite's hub-error and greenlet-leak checks have nothing to see here and stay on.
Waits are on queues and events those threads fill, never sleeps. Most tests use the WebSocket
transport: python-socketio's ``disconnect()`` over polling can wait a whole ping interval, and
python-engineio's client rejects a poll response of more than 16 packets (the flood).

The ``*_on_the_wire`` tests speak raw Engine.IO (websocket-client, urllib3) to pin down what
the servers really send where they differ (tests/servers/README.md, Socket.IO section).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio
import urllib3
import websocket

from tests.servers import (
    SIO_SERVER_KINDS,
    NodeSetupError,
    SioServerFactory,
    SioServerHandle,
    SioServerKind,
    _sio_runner,
    start_sio_server,
)

WS = ["websocket"]
BINARY = {"bin": b"\x00\x01\xff", "list": [b"a", 1, {"deep": b"b"}]}
TIMEOUT = 5.0


class Recorder:
    """Collects what the handlers of a python-socketio ``Client`` saw, for the test thread."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[Any, ...]] = queue.Queue()

    def handler(self, *name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.events.put((*name, *args))

        return record

    def next(self) -> tuple[Any, ...]:
        return self.events.get(timeout=TIMEOUT)


@pytest.fixture
def simple(sio_server: SioServerHandle) -> Iterator[Any]:
    """A python-socketio ``SimpleClient`` connected to ``/`` over WebSocket, X-Test and q set."""
    client: Any = socketio.SimpleClient()
    client.connect(
        f"{sio_server.url}/?q=query-value", headers={"X-Test": "header-value"}, transports=WS
    )
    yield client
    client.disconnect()


def test_connect_welcome_and_whoami(simple: Any) -> None:
    assert simple.receive(TIMEOUT) == ["welcome", {"sid": simple.sid, "auth": None}]
    assert simple.call("whoami", timeout=TIMEOUT) == {
        "sid": simple.sid,
        "headers": {"x-test": "header-value"},
        "query": {"q": "query-value"},
        "auth": None,
    }


def test_echo_and_ack(simple: Any) -> None:
    simple.receive(TIMEOUT)  # welcome
    assert simple.call("ack", 5, timeout=TIMEOUT) == 5
    assert simple.call("ack", (1, "two", b"3", None), timeout=TIMEOUT) == (1, "two", b"3", None)
    simple.emit("echo", (1, [2], {"a": b"x"}))
    assert simple.receive(TIMEOUT) == ["echo", 1, [2], {"a": b"x"}]
    # an echo the client asks to acknowledge is emitted back AND acked
    assert simple.call("echo", ("a", "b"), timeout=TIMEOUT) == ("a", "b")
    assert simple.receive(TIMEOUT) == ["echo", "a", "b"]
    with pytest.raises(socketio.exceptions.TimeoutError):
        simple.call("noack", timeout=0.3)


def test_binary_nested(simple: Any) -> None:
    simple.receive(TIMEOUT)  # welcome
    simple.emit("binary")
    assert simple.receive(TIMEOUT) == ["binary", BINARY]
    assert simple.call("binary", timeout=TIMEOUT) == BINARY
    assert simple.receive(TIMEOUT) == ["binary", BINARY]


def test_first_is_emitted_before_the_ack(simple: Any) -> None:
    simple.receive(TIMEOUT)  # welcome
    assert simple.call("emit_to_client_then_ack", timeout=TIMEOUT) == "done"
    assert simple.receive(0.01) == ["first"]  # it was already there


def test_flood_of_1000_in_order(simple: Any) -> None:
    simple.receive(TIMEOUT)  # welcome
    simple.emit("flood", {"count": 1000, "size": 10})
    received = [simple.receive(TIMEOUT) for _ in range(1001)]
    assert received == [["num", i, "x" * 10] for i in range(1000)] + [["flood_done", 1000]]


def test_ask_and_asked(sio_server: SioServerHandle) -> None:
    recorder = Recorder()
    client: Any = socketio.Client(reconnection=False)
    client.on("question", lambda *args: ("answer", *args, b"\x02"))
    client.on("asked", recorder.handler("asked"))
    client.connect(sio_server.url, transports=WS)
    try:
        client.emit("ask", {"event": "question", "args": [1, {"k": "v"}]})
        assert recorder.next() == ("asked", ["answer", 1, {"k": "v"}, b"\x02"])
    finally:
        client.disconnect()


def test_auth_namespace_refuses_a_bad_token(sio_server: SioServerHandle) -> None:
    recorder = Recorder()
    client: Any = socketio.Client(reconnection=False)
    client.on("connect_error", recorder.handler("connect_error"), namespace="/auth")
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(sio_server.url, namespaces=["/auth"], auth={"token": "wrong"}, transports=WS)
    assert recorder.next() == ("connect_error", {"message": "bad token"})
    client.disconnect()


def test_auth_namespace_accepts_the_token(sio_server: SioServerHandle) -> None:
    auth = {"token": "secret", "user": "u1"}
    client: Any = socketio.SimpleClient()
    client.connect(sio_server.url, namespace="/auth", auth=auth, transports=WS)
    try:
        assert client.receive(TIMEOUT) == ["welcome", {"sid": client.sid, "auth": auth}]
        whoami = client.call("whoami", timeout=TIMEOUT)
        assert whoami == {
            "sid": client.sid,
            "headers": {"x-test": None},
            "query": {"q": None},
            "auth": auth,
        }
        assert client.call("ack", "in /auth", timeout=TIMEOUT) == "in /auth"
    finally:
        client.disconnect()


def connect_both(url: str, recorder: Recorder) -> Any:
    """A python-socketio ``Client`` in ``/`` and ``/auth`` that records (dis)connects."""
    client: Any = socketio.Client(reconnection=False)
    for namespace in ("/", "/auth"):
        client.on("connect", recorder.handler("connect", namespace), namespace=namespace)
        client.on("disconnect", recorder.handler("disconnect", namespace), namespace=namespace)
    client.connect(url, namespaces=["/", "/auth"], auth={"token": "secret"}, transports=WS)
    assert {recorder.next(), recorder.next()} == {("connect", "/"), ("connect", "/auth")}
    return client


def test_disconnect_me_leaves_only_that_namespace(sio_server: SioServerHandle) -> None:
    recorder = Recorder()
    client = connect_both(sio_server.url, recorder)
    try:
        client.emit("disconnect_me", namespace="/auth")
        assert recorder.next() == ("disconnect", "/auth", "server disconnect")
        assert client.call("ack", "still here", timeout=TIMEOUT) == "still here"
        assert client.connected
    finally:
        client.disconnect()


def test_close_me_ends_the_whole_connection(sio_server: SioServerHandle) -> None:
    recorder = Recorder()
    client = connect_both(sio_server.url, recorder)
    try:
        client.emit("close_me", namespace="/auth")
        gone = {recorder.next(), recorder.next()}
        assert gone == {
            ("disconnect", "/", "server disconnect"),
            ("disconnect", "/auth", "server disconnect"),
        }
        assert not client.connected
    finally:
        client.disconnect()


def test_restart_on_the_same_port(
    sio_server_factory: SioServerFactory, kind: SioServerKind
) -> None:
    """A stop drops the connection without a goodbye (the client reconnects) and a restart on
    the same port works at once, both in place and through the factory."""
    server = sio_server_factory(kind, ping_interval=1000, ping_timeout=1000)
    connected = threading.Semaphore(0)
    client: Any = socketio.Client(reconnection_delay=0.1, reconnection_delay_max=0.2)
    client.on("connect", connected.release)
    client.connect(server.url, transports=WS)
    try:
        assert connected.acquire(timeout=TIMEOUT)
        first_sid = client.sid
        port = server.port
        server.restart()
        assert (server.port, server.url) == (port, f"http://127.0.0.1:{port}")
        assert connected.acquire(timeout=TIMEOUT)  # reconnected to the new process
        assert client.sid != first_sid
        assert client.call("ack", "again", timeout=TIMEOUT) == "again"
        assert server.stop() == 0  # SIGTERM: exit status 0
        again = sio_server_factory(kind, port=port)
        assert again.port == port
        assert connected.acquire(timeout=TIMEOUT)
    finally:
        client.disconnect()


def test_options_reach_the_server(
    sio_server_factory: SioServerFactory, kind: SioServerKind
) -> None:
    """WebSocket only, with short ping times: those are the ones the client is given, and a
    polling handshake is refused."""
    server = sio_server_factory(kind, ping_interval=1000, ping_timeout=2000, transports=WS)
    client: Any = socketio.SimpleClient()
    client.connect(server.url, transports=WS)
    try:
        assert client.receive(TIMEOUT) == ["welcome", {"sid": client.sid, "auth": None}]
        assert (client.client.eio.ping_interval, client.client.eio.ping_timeout) == (1, 2)
    finally:
        client.disconnect()
    with urllib3.PoolManager(retries=False, timeout=TIMEOUT) as http:
        handshake = f"{server.url}/socket.io/?EIO=4&transport=polling"
        assert http.request("GET", handshake).status == 400


def test_polling_transport(sio_server_factory: SioServerFactory, kind: SioServerKind) -> None:
    """The polling transport alone (a short ping interval: python-socketio's ``disconnect()``
    over polling can wait that long)."""
    server = sio_server_factory(kind, ping_interval=1000, ping_timeout=2000, transports=["polling"])
    client: Any = socketio.SimpleClient()
    client.connect(server.url, transports=["polling"])
    try:
        assert client.receive(TIMEOUT) == ["welcome", {"sid": client.sid, "auth": None}]
        assert client.call("ack", (b"\x00", "two"), timeout=TIMEOUT) == (b"\x00", "two")
        assert client.call("binary", timeout=TIMEOUT) == BINARY
        assert client.receive(TIMEOUT) == ["binary", BINARY]
        assert client.transport == "polling"
    finally:
        client.disconnect()


def test_a_killed_session_server_is_replaced(
    sio_server: SioServerHandle, request: pytest.FixtureRequest
) -> None:
    assert sio_server.kill() == -9
    replacement = request.getfixturevalue("_session_sio_servers").get(sio_server.kind)
    assert replacement.alive
    assert replacement is not sio_server
    client: Any = socketio.SimpleClient()
    client.connect(replacement.url, transports=WS)
    try:
        assert client.call("ack", "new", timeout=TIMEOUT) == "new"
    finally:
        client.disconnect()


@pytest.mark.parametrize(
    ("installed", "message"),
    [(None, "socket.io is not installed"), ("4.7.0", "has socket.io 4.7.0")],
)
def test_node_setup_problems_fail_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed: str | None, message: str
) -> None:
    (tmp_path / "package.json").write_text('{"dependencies": {"socket.io": "4.8.4"}}')
    if installed is not None:
        package = tmp_path / "node_modules" / "socket.io"
        package.mkdir(parents=True)
        (package / "package.json").write_text(json.dumps({"version": installed}))
    monkeypatch.setattr(_sio_runner, "NODE_DIR", tmp_path)
    with pytest.raises(NodeSetupError, match=message) as raised:
        start_sio_server("node")
    assert "npm ci --prefix tests/node" in str(raised.value)


@pytest.fixture(params=SIO_SERVER_KINDS)
def kind(request: pytest.FixtureRequest) -> SioServerKind:
    """Each server kind in turn, for the tests that start their own servers."""
    value: SioServerKind = request.param
    return value


# ----------------------------------------------------------------- on the wire

PYTHON_KINDS = ("py", "flask")
SEP = "\x1e"
TEXT = {"Content-Type": "text/plain;charset=UTF-8"}


@contextlib.contextmanager
def raw_websocket(server: SioServerHandle) -> Iterator[websocket.WebSocket]:
    """A raw Engine.IO WebSocket session, its OPEN packet read; its socket closed at the end."""
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = websocket.create_connection(url, timeout=TIMEOUT)
    try:
        assert ws.recv_data()[1].startswith(b"0{")
        yield ws
    finally:
        ws.close(timeout=1)
        ws.shutdown()  # close() leaves the socket open once the server closed the WebSocket


def recv_text(ws: websocket.WebSocket) -> str:
    """The next frame, which must be a text frame."""
    frame = ws.recv()
    assert isinstance(frame, str), frame
    return frame


def join_both(ws: websocket.WebSocket) -> None:
    """CONNECT to ``/`` and ``/auth``; read the two CONNECTs and the two welcomes."""
    ws.send("40")
    ws.send('40/auth,{"token":"secret"}')
    frames = sorted(recv_text(ws)[:8] for _ in range(4))
    assert frames == ["40/auth,", '40{"sid"', "42/auth,", '42["welc']


def frames_until_closed(ws: websocket.WebSocket) -> list[str]:
    """The text frames the server sends until its WebSocket close frame (pings left out)."""
    frames: list[str] = []
    while True:
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return frames
        if data != b"2":
            frames.append(data.decode())


def test_welcome_order_on_the_wire(sio_server: SioServerHandle) -> None:
    """python-socketio sends what the connect handler emits before the CONNECT packet, node
    after it."""
    with raw_websocket(sio_server) as ws:
        ws.send("40")
        frames = [recv_text(ws), recv_text(ws)]
    connect, welcome = (frames[1], frames[0]) if sio_server.kind in PYTHON_KINDS else frames
    assert connect.startswith("40{")
    sid = json.loads(connect[2:])["sid"]
    assert welcome.startswith("42[")
    assert json.loads(welcome[2:]) == ["welcome", {"sid": sid, "auth": None}]


def test_disconnect_me_on_the_wire(sio_server: SioServerHandle) -> None:
    """A namespace DISCONNECT for that namespace only; the other one still answers."""
    with raw_websocket(sio_server) as ws:
        join_both(ws)
        ws.send('42/auth,["disconnect_me"]')
        assert recv_text(ws) == "41/auth,"
        ws.send('421["ack","still here"]')
        assert recv_text(ws) == '431["still here"]'


def test_close_me_on_the_wire_websocket(sio_server: SioServerHandle) -> None:
    """python: an Engine.IO CLOSE, then the WebSocket closes. node: a namespace DISCONNECT for
    every namespace, then the WebSocket closes without an Engine.IO CLOSE."""
    with raw_websocket(sio_server) as ws:
        join_both(ws)
        ws.send('42/auth,["close_me"]')
        frames = frames_until_closed(ws)
    assert frames == (["1"] if sio_server.kind in PYTHON_KINDS else ["41", "41/auth,"])


def test_close_me_on_the_wire_polling(sio_server: SioServerHandle) -> None:
    """node: a namespace DISCONNECT for every namespace, then an Engine.IO CLOSE. python: an
    Engine.IO CLOSE, but only to a GET that was already waiting when it closed; a later GET
    finds the session gone (400) and nothing else. Then the session is gone (400)."""
    base = f"{sio_server.url}/socket.io/?EIO=4&transport=polling"
    with urllib3.PoolManager(retries=False, timeout=TIMEOUT) as http:
        opening = http.request("GET", base).data.decode()
        url = base + "&sid=" + json.loads(opening[1:])["sid"]
        http.request("POST", url, body='40\x1e40/auth,{"token":"secret"}', headers=TEXT)
        packets: list[str] = []
        while len(packets) < 4:  # the two CONNECTs and the two welcomes
            packets += http.request("GET", url).data.decode().split(SEP)
        assert http.request("POST", url, body='42/auth,["close_me"]', headers=TEXT).status == 200
        received: list[str] = []
        while (response := http.request("GET", url)).status == 200:
            received += [p for p in response.data.decode().split(SEP) if p not in ("2", "6")]
        assert response.status == 400
    if sio_server.kind in PYTHON_KINDS:
        assert received in ([], ["1"])  # whether our GET came before the close or after
    else:
        assert received == ["41", "41/auth,", "1"]
