"""Request details against both real servers: headers, query, cookies, errors, timeouts."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import MODES, Mode, build
from servers import ServerHandle

import geventio
from geventio import ConnectError, ConnectTimeout


def _headers_seen(client: geventio.Client) -> dict[str, Any]:
    client.send("cmd:headers")
    return json.loads(str(client.receive(5)))  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", MODES)
def test_headers_and_query_on_every_request(server: ServerHandle, mode: Mode) -> None:
    builder = (
        geventio.ClientBuilder(server.url)
        .headers({"Authorization": "Bearer x", "X-Test": "1"})
        .query({"greet": "q-ok"})
    )
    with build(builder, mode) as client:
        assert client.receive(5) == "q-ok"  # the query reached the handshake
        seen = _headers_seen(client)
        kinds = ["websocket"] if mode != "polling" else ["polling"]
        if mode == "upgrade":
            kinds.append("polling")
        for kind in kinds:
            assert seen[kind]["authorization"] == "Bearer x"
            assert seen[kind]["x-test"] == "1"


def test_callable_headers_are_called_at_each_connect(server: ServerHandle) -> None:
    calls: list[int] = []

    def headers() -> dict[str, str]:
        calls.append(1)
        return {"X-Call": str(len(calls))}

    builder = geventio.ClientBuilder(server.url).headers(headers)
    for expected in ("1", "2"):
        with builder.build() as client:
            assert _headers_seen(client)["websocket"]["x-call"] == expected
    assert len(calls) == 2


@pytest.mark.parametrize("mode", ["polling", "upgrade"])
def test_cookie_jar_sends_set_cookie_back(server: ServerHandle, mode: Mode) -> None:
    """The handshake response sets a sticky cookie; later requests must carry it."""
    builder = geventio.ClientBuilder(server.url).headers({"Cookie": "mine=1"})
    with build(builder, mode) as client:
        seen = _headers_seen(client)
        kind = "polling" if mode == "polling" else "websocket"
        cookie = seen[kind]["cookie"]
        assert "mine=1" in cookie
        assert "sticky=s-" in cookie


def test_http_error_on_handshake_carries_status_and_body(server: ServerHandle) -> None:
    """The servers answer a refused handshake with 4xx in their own body shape."""
    with pytest.raises(ConnectError) as info:
        geventio.ClientBuilder(server.url).query({"deny": "1"}).build()
    assert info.value.status is not None
    assert 400 <= info.value.status < 500
    body = json.loads(info.value.body or "")
    if server.kind == "node":  # a JSON object
        assert body == {"code": 4, "message": "Forbidden"}
    else:  # python-engineio: a JSON string
        assert body == "Unauthorized"
    with pytest.raises(ConnectError) as info:
        geventio.ClientBuilder(server.url).query({"deny": "1"}).build_websocket()
    assert info.value.status is not None
    assert 400 <= info.value.status < 500


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(50)
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize("method", ["build", "build_polling", "build_websocket"])
def test_connect_timeout(silent_listener: int, method: str) -> None:
    builder = geventio.ClientBuilder(f"http://127.0.0.1:{silent_listener}").timeout(0.3)
    start = time.monotonic()
    with pytest.raises(ConnectTimeout):
        getattr(builder, method)()
    assert time.monotonic() - start < 1.5


def test_refused_port_is_a_connect_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    for method in ("build", "build_websocket"):
        with pytest.raises(ConnectError) as info:
            getattr(geventio.ClientBuilder(f"http://127.0.0.1:{port}"), method)()
        assert info.value.status is None


def test_bad_scheme_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="scheme"):
        geventio.ClientBuilder("ftp://localhost/")
    geventio.ClientBuilder("ws://localhost/")
    geventio.ClientBuilder("wss://localhost/")


def test_ws_url_scheme_works(server: ServerHandle) -> None:
    with geventio.ClientBuilder(server.url.replace("http://", "ws://")).build() as client:
        client.send("ws scheme")
        assert client.receive(5) == "ws scheme"
