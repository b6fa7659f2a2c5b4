"""Helpers for the integration tests (real servers only)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import gevent

import geventio
from geventio._transports._net import CookieJar
from geventio._transports.websocket import WebSocketTransport
from geventio._url import parse_url

Mode = Literal["polling", "websocket", "upgrade"]
MODES: tuple[Mode, ...] = ("polling", "websocket", "upgrade")


def build(builder: geventio.ClientBuilder, mode: Mode) -> geventio.Client:
    """Open a client the way ``mode`` names: build_polling, build_websocket or build (upgrade)."""
    if mode == "polling":
        return builder.build_polling()
    if mode == "websocket":
        return builder.build_websocket()
    client = builder.build()
    assert client.transport == "websocket"
    return client


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` cooperatively until it holds; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        gevent.sleep(0.01)


def receive_all(client: geventio.Client, count: int, timeout: float = 5.0) -> list[str | bytes]:
    return [client.receive(timeout) for _ in range(count)]


def spawn_catching(call: Callable[[], object]) -> gevent.Greenlet[[], BaseException | None]:
    """Run ``call`` in a greenlet whose value is the geventio error it raised (or ``None``).

    An exception expected in a greenlet must not reach the hub (that fails the test).
    """

    def run() -> BaseException | None:
        try:
            call()
        except geventio.EngineIOError as exc:
            return exc
        return None

    return gevent.spawn(run)


def raw_websocket(url: str, query: dict[str, str] | None = None) -> WebSocketTransport:
    """geventio's WebSocket transport alone, opened on ``url`` (no session on top of it)."""
    endpoint = parse_url(url, None, query or {})
    return WebSocketTransport.connect(
        endpoint,
        endpoint.target("websocket"),
        headers={},
        cookies=CookieJar(),
        ssl_context=None,
        timeout=5,
        max_message_size=1 << 20,
    )
