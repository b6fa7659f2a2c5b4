"""Self-checks for the real Socket.IO test servers and their fixtures.

They drive each server (python-socketio, Flask-SocketIO, Node socket.io) with python-socketio's
own sync client, the reference implementation, so they do not depend on the client under test.
That client runs its I/O in OS threads (requests, websocket-client) and never touches the gevent
hub, so the suite's hub-error and greenlet-leak checks have nothing to see here and stay on.
Waits are on queues and events those threads fill, never sleeps. Most tests use the WebSocket
transport: python-socketio's ``disconnect()`` over polling can wait a whole ping interval, and
python-engineio's client rejects a poll response of more than 16 packets (the flood).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import socketio
import urllib3
from servers import SIO_SERVER_KINDS, SioServerFactory, SioServerHandle, SioServerKind

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


@pytest.fixture(params=SIO_SERVER_KINDS)
def kind(request: pytest.FixtureRequest) -> SioServerKind:
    """Each server kind in turn, for the tests that start their own servers."""
    value: SioServerKind = request.param
    return value
