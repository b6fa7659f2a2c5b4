"""Reconnection of geventio.socketio.Client, by killing real servers and restarting them on the
same port."""

from __future__ import annotations

import time
from typing import Any

import gevent
import pytest

from geventio import socketio
from tests.helpers import wait_until
from tests.servers import SioServerHandle

KINDS = ["py", "flask", "node"]


class Counted:
    """A callable option (``url``, ``headers``, ``auth``) that counts its calls."""

    def __init__(self, make: Any) -> None:
        self.calls = 0
        self._make = make

    def __call__(self) -> Any:
        self.calls += 1
        return self._make(self.calls)


def no_reconnection_pending(sio: socketio.Client) -> bool:
    """No reconnection greenlet is alive, so no attempt can come (a check, not a wait)."""
    reconnector = sio._reconnector
    return reconnector is None or bool(reconnector.dead)


@pytest.mark.parametrize("kind", KINDS)
def test_reconnects_after_a_restart_rejoining_with_fresh_callables(
    sio_server_factory: Any, kind: str
) -> None:
    server: SioServerHandle = sio_server_factory(kind)
    url = Counted(lambda n: server.url + f"?q=u{n}")
    headers = Counted(lambda n: {"X-Test": f"h{n}"})
    auth = Counted(lambda n: {"token": "secret", "n": n})
    events: list[tuple[Any, ...]] = []
    sio = socketio.Client(reconnection_delay=0.1, reconnection_delay_max=0.5)
    for name in ("connect", "disconnect"):
        sio.on(name, lambda *a, name=name: events.append((name, *a)))
        sio.on(name, lambda *a, name=name: events.append(("auth " + name, *a)), namespace="/auth")
    sio.connect(url, headers=headers, auth=auth, namespaces=["/", "/auth"], wait_timeout=5)
    try:
        first = sio.call("whoami", namespace="/auth")
        assert first["auth"] == {"token": "secret", "n": 1}
        assert first["headers"] == {"x-test": "h1"}
        assert first["query"] == {"q": "u1"}

        server.stop()  # SIGTERM: the connections drop without a goodbye
        wait_until(lambda: not sio.connected)
        server.restart()  # on the same port
        wait_until(lambda: sio.connected and len(sio.namespaces) == 2, timeout=15)
        second = sio.call("whoami", namespace="/auth", timeout=5)
        assert second["auth"]["n"] == url.calls == headers.calls == auth.calls >= 2
        assert second["headers"] == {"x-test": f"h{headers.calls}"}
        assert second["query"] == {"q": f"u{url.calls}"}
        assert second["sid"] != first["sid"]
    finally:
        sio.disconnect()
    names = [e[0] for e in events]
    assert names.count("connect") == names.count("auth connect") == 2
    assert names.count("disconnect") == names.count("auth disconnect") == 2
    lost = next(e[1] for e in events if e[0] == "disconnect")
    assert lost in ("transport close", "transport error", "ping timeout")
    assert events[-1][1:] == ("client disconnect",)
    sio.wait()


def test_wait_blocks_while_reconnecting_and_disconnect_stops_it(sio_server_factory: Any) -> None:
    server: SioServerHandle = sio_server_factory("node")
    url = Counted(lambda n: server.url)
    sio = socketio.Client(reconnection_delay=0.05, reconnection_delay_max=0.1)
    sio.connect(url)
    server.stop()
    waiter = gevent.spawn(sio.wait)
    wait_until(lambda: url.calls >= 3, timeout=10)  # attempts are being made
    assert not waiter.dead
    assert not sio.connected
    with pytest.raises(socketio.NotConnectedError):
        sio.emit("echo", 1)
    sio.disconnect()
    waiter.get(timeout=5)
    assert no_reconnection_pending(sio)  # so no attempt can follow the disconnect()


def test_gives_up_after_the_attempts(sio_server_factory: Any) -> None:
    server: SioServerHandle = sio_server_factory("py")
    url = Counted(lambda n: server.url)
    errors: list[Any] = []
    sio = socketio.Client(
        reconnection_attempts=3, reconnection_delay=0.05, reconnection_delay_max=0.1
    )
    sio.on("connect_error", errors.append)
    sio.connect(url)
    server.stop()
    start = time.monotonic()
    with gevent.Timeout(20):
        sio.wait()
    assert time.monotonic() - start < 15
    assert url.calls == 1 + 3
    assert len(errors) == 3
    assert not sio.connected
    sio.disconnect()


def test_no_reconnection_when_disabled_or_after_disconnect(sio_server_factory: Any) -> None:
    server: SioServerHandle = sio_server_factory("node")
    url = Counted(lambda n: server.url)
    sio = socketio.Client(reconnection=False)
    sio.connect(url)
    server.restart()
    with gevent.Timeout(10):
        sio.wait()
    assert url.calls == 1
    assert not sio.connected

    sio = socketio.Client(reconnection_delay=0.05)
    sio.connect(url)
    sio.disconnect()
    assert no_reconnection_pending(sio)
    assert url.calls == 2
    assert not sio.connected


def test_connect_with_retry_waits_for_the_server(sio_server_factory: Any) -> None:
    server: SioServerHandle = sio_server_factory("node")
    port_url = server.url
    server.stop()
    sio = socketio.Client(reconnection_delay=0.1, reconnection_delay_max=0.2)
    restart = gevent.spawn_later(0.5, server.restart)
    try:
        sio.connect(port_url, retry=True, wait_timeout=5)
        assert sio.connected
        assert sio.call("ack", "up", timeout=5) == "up"
    finally:
        restart.join()
        sio.disconnect()


def test_simple_client_calls_wait_out_a_reconnection(sio_server_factory: Any) -> None:
    server: SioServerHandle = sio_server_factory("py")
    url = Counted(lambda n: server.url)
    client = socketio.SimpleClient(reconnection_delay=0.05, reconnection_delay_max=0.1)
    client.connect(url)
    server.stop()
    assert client.client is not None
    wait_until(lambda: client.client is not None and not client.client.connected)
    caller = gevent.spawn(client.call, "ack", "after", timeout=5)
    attempts = url.calls
    wait_until(lambda: url.calls >= attempts + 2)  # the call waits while attempts fail
    assert not caller.dead
    assert client.connected
    server.restart()
    assert caller.get(timeout=15) == "after"
    client.disconnect()
    with pytest.raises(socketio.DisconnectedError):
        client.call("ack", 1)


def test_a_url_callable_that_raises_is_a_failed_attempt(sio_server_factory: Any) -> None:
    server: SioServerHandle = sio_server_factory("node")

    def url(n: int) -> str:
        if n == 2:
            raise RuntimeError("the service registry is down")
        return server.url

    counted = Counted(url)
    sio = socketio.Client(reconnection_delay=0.05, reconnection_delay_max=0.1)
    sio.connect(counted)
    server.stop()
    wait_until(lambda: not sio.connected)
    server.restart()
    wait_until(lambda: sio.connected, timeout=15)
    assert counted.calls >= 3
    assert sio.call("ack", "back", timeout=5) == "back"
    sio.disconnect()
