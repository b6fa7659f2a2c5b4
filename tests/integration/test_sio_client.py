"""geventio.socketio.Client and SimpleClient against the three real Socket.IO servers.

The servers (python-socketio, Flask-SocketIO and Node socket.io, see tests/servers/README.md)
script the same events: ``echo``, ``ack``, ``noack``, ``ask``, ``flood``, ``binary``, ``whoami``,
``disconnect_me``, ``close_me``, and a ``welcome`` from their connect handler.
"""

from __future__ import annotations

import builtins
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import gevent
import gevent.event
import pytest

from geventio import socketio
from tests.helpers import wait_until
from tests.servers import SioServerHandle

TRANSPORTS = [
    pytest.param(None, id="auto"),
    pytest.param(["websocket"], id="websocket"),
    pytest.param(["polling"], id="polling"),
]
BLOB = {"bin": b"\x00\x01\xff", "list": [b"a", 1, {"deep": b"b"}]}


class Recorder:
    """Handlers that record what they get, in order, with an event to wait on."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.changed = gevent.event.Event()

    def __call__(self, name: str) -> Any:
        def handler(*args: Any) -> None:
            self.events.append((name, *args))
            self.changed.set()

        return handler

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [event[1:] for event in self.events if event[0] == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 10) -> list[tuple[Any, ...]]:
        wait_until(lambda: len(self.named(name)) >= count, timeout)
        return self.named(name)


def connected(client: socketio.Client | socketio.SimpleClient) -> bool:
    """``client.connected``, read anew (mypy keeps an attribute narrowed across calls)."""
    return client.connected


def recording_client(
    namespaces: tuple[str, ...] = ("/",), **options: Any
) -> tuple[socketio.Client, Recorder]:
    sio = socketio.Client(**options)
    rec = Recorder()
    for name in ("connect", "disconnect", "connect_error", "welcome", "echo", "binary", "asked"):
        for namespace in namespaces:
            sio.on(name, rec(name), namespace=namespace)
    return sio, rec


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_connect_emit_call_and_binary(
    sio_server: SioServerHandle, transports: list[str] | None
) -> None:
    sio, rec = recording_client(reconnection=False)
    sio.connect(sio_server.url, auth={"token": "t"}, transports=transports, wait_timeout=5)
    try:
        assert sio.connected
        assert sio.transport() == ("polling" if transports == ["polling"] else "websocket")
        assert sio.sid
        assert sio.get_sid() == sio.namespaces["/"]
        assert sio.get_sid("/x") is None
        assert rec.wait_for("welcome") == [({"sid": sio.get_sid(), "auth": {"token": "t"}},)]

        assert sio.call("ack", 1, timeout=5) == 1
        assert sio.call("ack", ("a", 2, None), timeout=5) == ("a", 2, None)
        assert sio.call("ack", timeout=5) is None
        assert sio.call("ack", BLOB, timeout=5) == BLOB
        assert sio.call("ack", (b"x", [b"y"]), timeout=5) == (b"x", [b"y"])

        sio.emit("echo", ("text", {"k": [1, 2.5, True]}))
        sio.emit("echo", b"\x00raw")
        sio.send("a message")  # 'message' has no server handler: nothing comes back
        sio.emit("binary")
        assert rec.wait_for("echo", 2) == [("text", {"k": [1, 2.5, True]}), (b"\x00raw",)]
        assert rec.wait_for("binary") == [(BLOB,)]

        acked = gevent.event.AsyncResult()
        sio.emit("ack", ("cb", 3), callback=lambda *args: acked.set(args))
        assert acked.get(timeout=5) == ("cb", 3)
    finally:
        sio.disconnect()
    assert not connected(sio)
    assert rec.named("disconnect") == [("client disconnect",)]
    assert next(e[0] for e in rec.events) == "connect"


def test_events_sent_before_the_connect_confirmation_come_right_after_it(
    sio_server: SioServerHandle,
) -> None:
    """python-socketio sends the connect handler's ``welcome`` before CONNECT; node after it."""
    sio, rec = recording_client(("/", "/auth"), reconnection=False)
    sio.connect(sio_server.url, namespaces=["/", "/auth"], auth={"token": "secret"})
    try:
        rec.wait_for("welcome", 2)
        order = [e[0] for e in rec.events if e[0] in ("connect", "welcome")]
        assert order == ["connect", "welcome", "connect", "welcome"]
        assert set(sio.namespaces) == {"/", "/auth"}
    finally:
        sio.disconnect()
    assert len(rec.named("disconnect")) == 2


def test_server_asks_for_an_ack_and_the_handler_result_is_sent(
    sio_server: SioServerHandle,
) -> None:
    sio, rec = recording_client(reconnection=False)
    sio.on("question", lambda a, b: (a + b, "sum", b"\x01"))
    sio.on("single", lambda: {"one": 1})
    sio.connect(sio_server.url)
    try:
        sio.emit("ask", {"event": "question", "args": [2, 3]})
        sio.emit("ask", {"event": "single", "args": []})
        sio.emit("ask", {"event": "nobody", "args": []})  # no handler: an empty ack
        assert rec.wait_for("asked", 3) == [([5, "sum", b"\x01"],), ([{"one": 1}],), ([],)]
    finally:
        sio.disconnect()


def test_a_refused_namespace_raises_with_the_servers_data(sio_server: SioServerHandle) -> None:
    sio, rec = recording_client(("/auth",), reconnection=False)
    with pytest.raises(socketio.ConnectionError) as info:
        sio.connect(sio_server.url, namespaces=["/auth"], auth={"token": "wrong"})
    assert info.value.args[0] == "bad token"
    assert rec.named("connect_error") == [({"message": "bad token"},)]
    assert not sio.connected
    sio.wait()  # DOWN: returns at once

    calls: list[int] = []

    def auth() -> dict[str, str]:
        calls.append(1)
        return {"token": "secret"}

    sio.connect(sio_server.url, namespaces="/auth", auth=auth)
    try:
        assert sio.call("whoami", namespace="/auth")["auth"] == {"token": "secret"}
        assert calls == [1]
        with pytest.raises(socketio.BadNamespaceError):
            sio.emit("echo", 1)  # "/" was not joined
    finally:
        sio.disconnect()


def test_a_flood_reaches_an_on_handler_in_order(sio_server: SioServerHandle) -> None:
    received: list[int] = []
    done = gevent.event.AsyncResult()
    sio = socketio.Client(reconnection=False)
    sio.on("num", lambda i, pad: received.append(i))
    sio.on("flood_done", done.set)
    sio.connect(sio_server.url, transports=["websocket"])
    try:
        sio.emit("flood", {"count": 3000, "size": 32})
        assert done.get(timeout=30) == 3000
        assert received == list(range(3000))
    finally:
        sio.disconnect()


def test_catch_all_class_namespace_and_event_decorator(sio_server: SioServerHandle) -> None:
    got: list[tuple[Any, ...]] = []

    class Auth(socketio.ClientNamespace):
        def on_connect(self) -> None:
            got.append(("ns connect", self.namespace))

        def on_echo(self, *args: Any) -> None:
            got.append(("ns echo", *args))

        def on_disconnect(self) -> None:  # the legacy form, without the reason
            got.append(("ns disconnect",))

    sio = socketio.Client(reconnection=False)
    sio.register_namespace(Auth("/auth"))

    @sio.on("*")
    def anything(event: str, *args: Any) -> None:
        got.append(("any", event, *args))

    @sio.event
    def echo(*args: Any) -> None:
        got.append(("echo", *args))

    sio.connect(sio_server.url, auth={"token": "secret"})  # joins "/" and "/auth"
    try:
        assert set(sio.namespaces) == {"/", "/auth"}
        sio.emit("echo", 1)
        sio.emit("echo", 2, namespace="/auth")
        assert sio.namespace_handlers["/auth"].call("ack", 7) == 7
        wait_until(lambda: ("echo", 1) in got and ("ns echo", 2) in got)
        assert ("any", "welcome", {"sid": sio.get_sid(), "auth": {"token": "secret"}}) in got
        assert ("ns connect", "/auth") in got
        assert not any(g[0] == "any" and g[1] == "echo" for g in got)
    finally:
        sio.disconnect()
    assert ("ns disconnect",) in got


def test_a_handler_may_call_block_and_disconnect(sio_server_factory: Any) -> None:
    """With a 0.3 s heartbeat, a handler blocks for 1.5 s: the session survives; then a
    handler's ``call()`` gets its ack; then a handler disconnects the client."""
    server = sio_server_factory("node", ping_interval=300, ping_timeout=300)
    sio = socketio.Client(reconnection=False)
    results: list[Any] = []

    @sio.on("echo")
    def on_echo(step: str) -> None:
        if step == "block":
            gevent.sleep(1.5)  # a handler that blocks for five heartbeats
            results.append(("blocked", sio.connected))
        elif step == "call":
            results.append(("call", sio.call("ack", "inner", timeout=5)))
        elif step == "leave":
            sio.disconnect()
            results.append(("left", sio.connected))

    sio.connect(server.url, transports=["websocket"])
    for step in ("block", "call", "leave"):
        sio.emit("echo", step)
    with gevent.Timeout(10):
        sio.wait()
    assert results == [("blocked", True), ("call", "inner"), ("left", False)]


def test_other_greenlets_run_while_call_and_receive_wait(sio_server: SioServerHandle) -> None:
    gaps: list[float] = []

    def ticker() -> None:
        last = time.monotonic()
        while True:
            gevent.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    tick = gevent.spawn(ticker)
    sio = socketio.Client(reconnection=False)
    simple = socketio.SimpleClient(reconnection=False)
    try:
        sio.connect(sio_server.url)
        simple.connect(sio_server.url)
        with pytest.raises(socketio.TimeoutError):
            sio.call("noack", timeout=0.5)
        assert simple.receive(timeout=5)[0] == "welcome"
        with pytest.raises(builtins.TimeoutError):
            simple.receive(timeout=0.5)
    finally:
        tick.kill()
        sio.disconnect()
        simple.disconnect()
    assert len(gaps) > 50
    assert max(gaps) < 0.25


def test_fifty_greenlets_call_on_one_client(sio_server: SioServerHandle) -> None:
    sio = socketio.Client(reconnection=False)
    sio.connect(sio_server.url, transports=["websocket"])
    try:
        jobs = [gevent.spawn(sio.call, "ack", (n, "x" * n), timeout=10) for n in range(50)]
        gevent.joinall(jobs, timeout=20, raise_error=True)
        assert [job.value for job in jobs] == [(n, "x" * n) for n in range(50)]
    finally:
        sio.disconnect()


@pytest.mark.parametrize("event", ["disconnect_me", "close_me"])
def test_a_disconnect_by_the_server_is_final(sio_server: SioServerHandle, event: str) -> None:
    sio, rec = recording_client(reconnection=True, reconnection_delay=0.05)
    sio.connect(sio_server.url)
    sio.emit(event)
    with gevent.Timeout(10):
        sio.wait()
    assert rec.named("disconnect") == [("server disconnect",)]
    assert len(rec.named("connect")) == 1
    assert not sio.connected
    with pytest.raises(socketio.NotConnectedError):
        sio.emit("echo", 1)


def test_bad_input_raises_before_anything_is_sent(sio_server: SioServerHandle) -> None:
    sio, rec = recording_client(reconnection=False)
    with pytest.raises(socketio.BadNamespaceError):
        sio.emit("echo", 1)  # not connected yet
    sio.connect(sio_server.url)
    try:
        with pytest.raises(TypeError):
            sio.emit("echo", {1, 2})
        with pytest.raises(ValueError, match=r"(?i)nan|json"):
            sio.emit("echo", float("nan"))
        with pytest.raises(socketio.BadNamespaceError):
            sio.emit("echo", 1, namespace="/never")
        sio.emit("echo", "after")
        assert rec.wait_for("echo") == [("after",)]
    finally:
        sio.disconnect()


def test_no_thread_and_no_signal_handler() -> None:
    threads = threading.active_count()
    handler = signal.getsignal(signal.SIGINT)
    socketio.Client(handle_sigint=True)
    socketio.SimpleClient()
    assert signal.getsignal(signal.SIGINT) is handler
    assert threading.active_count() == threads


def test_unknown_options_are_refused() -> None:
    with pytest.raises(TypeError, match="http_session"):
        socketio.Client(http_session=object())
    with pytest.raises(TypeError, match="json"):
        socketio.Client(json=object())
    with pytest.raises(TypeError, match="json"):
        socketio.Client(serializer="msgpack")
    socketio.Client(engineio_logger=True, request_timeout=3, ssl_verify=False, logger=False)
    with pytest.raises(ValueError, match="timeout"):
        socketio.Client(request_timeout=0)  # checked by the builder, at once


# -- SimpleClient ---------------------------------------------------------------------------


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_simple_client(sio_server: SioServerHandle, transports: list[str] | None) -> None:
    with socketio.SimpleClient(reconnection=False) as client:
        client.connect(sio_server.url, auth={"token": "t"}, transports=transports)
        assert client.connected
        assert client.sid
        assert client.transport in ("polling", "websocket")
        assert client.receive(timeout=5) == ["welcome", {"sid": client.sid, "auth": {"token": "t"}}]
        client.emit("echo", ("a", b"b"))
        assert client.receive(timeout=5) == ["echo", "a", b"b"]
        assert client.call("ack", (1, 2), timeout=5) == (1, 2)
        with pytest.raises(socketio.TimeoutError):
            client.call("noack", timeout=0.2)
    assert not connected(client)
    with pytest.raises(socketio.DisconnectedError):
        client.receive(timeout=1)
    with pytest.raises(socketio.DisconnectedError):
        client.emit("echo", 1)


def test_simple_receive_waiting_when_the_server_disconnects_ends_at_once(
    sio_server: SioServerHandle,
) -> None:
    client = socketio.SimpleClient()
    client.connect(sio_server.url)
    assert client.receive(timeout=5)[0] == "welcome"

    def receive() -> BaseException | None:
        try:
            client.receive(30)
        except socketio.SocketIOError as exc:
            return exc
        return None

    waiter = gevent.spawn(receive)
    gevent.idle()
    client.emit("disconnect_me")
    start = time.monotonic()
    assert isinstance(waiter.get(timeout=10), socketio.DisconnectedError)
    assert time.monotonic() - start < 5
    assert not client.connected
    client.disconnect()


_PATCHED = """
from gevent import monkey
monkey.patch_all()
import sys, threading
from geventio import socketio

sio = socketio.Client(reconnection=False)
nums = []
sio.on("num", lambda i, pad: nums.append(i))
sio.connect(sys.argv[1], transports=sys.argv[2].split(","))
assert sio.call("ack", (1, b"x"), timeout=5) == (1, b"x")
with socketio.SimpleClient(reconnection=False) as simple:
    simple.connect(sys.argv[1])
    simple.emit("flood", {"count": 500, "size": 8})
    got = [simple.receive(timeout=10) for _ in range(502)]
    assert [e[1] for e in got if e[0] == "num"] == list(range(500)), got[:5]
sio.disconnect()
assert threading.active_count() == 1, threading.enumerate()
print("OK", sio.transport())
"""


@pytest.mark.parametrize("transports", ["websocket", "polling", "polling,websocket"])
def test_the_same_under_patch_all(sio_server: SioServerHandle, transports: str) -> None:
    """Locust's way of running: the whole process patched, and still no thread is started."""
    done = subprocess.run(
        [sys.executable, "-c", _PATCHED, sio_server.url, transports],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK ")
    assert "Traceback" not in done.stderr


def test_bad_auth_raises_value_error_and_leaves_the_client_down(
    sio_server: SioServerHandle,
) -> None:
    sio = socketio.Client()
    with pytest.raises(ValueError, match="auth"):
        sio.connect(sio_server.url, auth="a string")
    with pytest.raises(ValueError, match="auth"):
        sio.connect(sio_server.url, auth=lambda: ["a list"])
    sio.wait()  # returns at once
    assert not connected(sio)
    sio.connect(sio_server.url, auth={"token": "x"})
    assert sio.call("ack", 1) == 1
    sio.disconnect()


def test_the_rest_of_python_socketios_surface() -> None:
    sio = socketio.Client()
    task = sio.start_background_task(lambda a, b=0: a + b, 1, b=2)
    task.join(5)
    assert task.value == 3
    sio.sleep(0.01)
    for value in ("client disconnect", "server disconnect", "transport error"):
        reason = sio.reason(value)  # python-socketio's names, and str values as its are
        assert isinstance(reason, str)
        assert reason.value == value
    assert sio.transport() is None
    assert sio.sid is None
    assert sio.get_sid() is None
    assert sio.namespaces == {}
    sio.shutdown()  # never connected: nothing to do, and it returns
    sio.wait()
