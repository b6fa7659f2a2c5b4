"""Callbacks that are falsy objects still run; text holding U+001E is never split into packets.

Both against the real servers: the client's behaviour, not its internals.
"""

from __future__ import annotations

from typing import Any

import pytest

import geventio
from geventio import CloseReason, Packet, PacketId
from geventio._connection import Connection
from tests.helpers import wait_until
from tests.servers import ServerHandle


class FalsyRecorder:
    """A callable that records its calls, and that is falsy while empty (``__len__`` is 0).

    A recorder class like this one (or a callback that also keeps a list) is a common callback.
    """

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, arg: Any) -> None:
        self.calls.append(arg)

    def __len__(self) -> int:
        return 0  # always falsy, even once called

    def __bool__(self) -> bool:
        return False


CALLBACKS = ("on_open", "on_data", "on_packet", "on_close", "on_upgrade")


@pytest.mark.parametrize("name", CALLBACKS)
def test_a_falsy_callback_alone_is_called(server: ServerHandle, name: str) -> None:
    """Each callback, registered alone as a falsy object, is called."""
    recorder = FalsyRecorder()
    assert not recorder
    builder = getattr(geventio.ClientBuilder(server.url).timeout(5), name)(recorder)
    client = builder.build()
    try:
        client.send("ping me")
        if name in ("on_open", "on_upgrade"):
            wait_until(lambda: len(recorder.calls) == 1)
        elif name == "on_data":
            wait_until(lambda: "ping me" in recorder.calls)
        elif name == "on_packet":
            wait_until(lambda: any(p.data == "ping me" for p in recorder.calls))
    finally:
        client.disconnect()
    if name == "on_open":
        assert recorder.calls[0].sid == client.sid
    elif name == "on_upgrade":
        assert recorder.calls == ["websocket"]
    elif name == "on_close":
        assert recorder.calls == [CloseReason.CLIENT_DISCONNECT]
    elif name == "on_packet":
        assert all(p.packet_id in PacketId for p in recorder.calls)


def test_falsy_callbacks_all_together(server: ServerHandle) -> None:
    """Every callback falsy at once: all of them run, in the order the session saw."""
    seen: list[str] = []

    class Named(FalsyRecorder):
        def __init__(self, label: str) -> None:
            super().__init__()
            self.label = label

        def __call__(self, arg: Any) -> None:
            seen.append(self.label)

    builder = geventio.ClientBuilder(server.url).timeout(5)
    for name in (*CALLBACKS, "on_error"):
        getattr(builder, name)(Named(name))
    with builder.build() as client:
        client.send("x")
        wait_until(lambda: "on_data" in seen)
    assert seen[0] == "on_open"
    assert {"on_upgrade", "on_packet", "on_data"} <= set(seen)
    assert seen[-1] == "on_close"


@pytest.mark.parametrize("text", ["bye\x1e1", "\x1e", "a\x1e4forged"])
def test_separator_in_text_is_refused_on_polling(server: ServerHandle, text: str) -> None:
    """Over polling, text holding U+001E is refused with ValueError; the session carries on."""
    with geventio.ClientBuilder(server.url).timeout(5).build_polling() as client:
        with pytest.raises(ValueError, match="U\\+001E"):
            client.send(text)
        client.send("after")
        assert client.receive(5) == "after"
        with pytest.raises(geventio.Timeout):
            client.receive(0.3)
        assert client.connected


@pytest.mark.parametrize("build", ["build", "build_websocket"])
def test_separator_in_text_is_intact_on_websocket(server: ServerHandle, build: str) -> None:
    """Over WebSocket (direct or upgraded), text holding U+001E arrives intact, as one message."""
    with getattr(geventio.ClientBuilder(server.url).timeout(5), build)() as client:
        assert client.transport == "websocket"
        client.send("bye\x1e1")
        assert client.receive(5) == "bye\x1e1"
        assert client.connected


def test_core_refuses_the_separator_only_on_polling() -> None:
    """The sans-IO rule: polling refuses U+001E in text; WebSocket and binary take it."""
    polling = Connection("polling")
    polling.receive_payload(b'0{"sid":"s","upgrades":[],"pingInterval":1,"pingTimeout":1}', 0.0)
    with pytest.raises(ValueError, match="U\\+001E"):
        polling.send(Packet(PacketId.MESSAGE, "a\x1eb"))
    polling.send(Packet(PacketId.MESSAGE, b"a\x1eb"))  # binary is base64 on polling
    assert polling.next_post() == b"bYR5i"
    websocket = Connection("websocket")
    websocket.receive_frame('0{"sid":"s","upgrades":[],"pingInterval":1,"pingTimeout":1}', 0.0)
    websocket.send(Packet(PacketId.MESSAGE, "a\x1eb"))
    assert websocket.next_frames() == ["4a\x1eb"]
