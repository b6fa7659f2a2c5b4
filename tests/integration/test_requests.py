"""Request details against both real servers: headers, query, cookies, URL schemes.

Connect failures (refused, timeouts, HTTP errors) are in ``faults/test_fault_connect.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import geventio
from tests.helpers import MODES, Mode, build
from tests.servers import ServerHandle


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


def test_bad_scheme_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="scheme"):
        geventio.ClientBuilder("ftp://localhost/")
    geventio.ClientBuilder("ws://localhost/")
    geventio.ClientBuilder("wss://localhost/")


def test_ws_url_scheme_works(server: ServerHandle) -> None:
    with geventio.ClientBuilder(server.url.replace("http://", "ws://")).build() as client:
        client.send("ws scheme")
        assert client.receive(5) == "ws scheme"
