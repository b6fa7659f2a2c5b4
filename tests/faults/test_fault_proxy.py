"""Proxies that misbehave: silent, not HTTP, hanging up, talking too early, refusing.

A scripted proxy (``dummyserver``) plays each fault; the real proxy (``proxy.py``) is tested in
``tests/integration/test_proxy.py``. Every ``build*`` raises a typed error within its bound and
leaves no socket or greenlet behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

import geventio
from geventio import ConnectError, ConnectTimeout
from tests.faultkit import Bound
from tests.faults.dummyserver import Conn, Server, polling_script

TIMEOUT = 0.3
TUNNELLED = ["build_websocket", "https_polling"]


def _build(target: str, proxy: Server, method: str, timeout: float = 5.0) -> geventio.Client:
    """Open a client to ``target`` through ``proxy``; ``https_polling`` polls over https."""
    if method == "https_polling":
        target, method = target.replace("http://", "https://"), "build_polling"
    builder = geventio.ClientBuilder(target).proxy(proxy.url).timeout(timeout)
    client: geventio.Client = getattr(builder, method)()
    return client


def _after_connect(reply: Callable[[Conn], object]) -> Callable[[Conn], None]:
    """A proxy handler that reads the CONNECT request, then runs ``reply``."""

    def handler(conn: Conn) -> None:
        request = conn.read_request()
        if request is not None:
            assert request.method == "CONNECT"
            reply(conn)

    return handler


def _trickle(conn: Conn) -> None:
    """Answer one byte every 50 ms, forever: each read is quick, the whole never ends."""
    for byte in b"HTTP/1.1 200 Connection established\r\nX-Slow: " + b"a" * 10_000:
        if not conn.send(bytes([byte])):
            return
        time.sleep(0.05)


@pytest.mark.parametrize("method", TUNNELLED)
@pytest.mark.parametrize("reply", [Conn.stall, _trickle], ids=["silent", "trickling"])
def test_a_slow_proxy(bound: Bound, method: str, reply: Callable[[Conn], None]) -> None:
    """A proxy that never answers the CONNECT, or trickles: ConnectTimeout at timeout."""
    with Server(_after_connect(reply)) as proxy:
        with bound(1.5), pytest.raises(ConnectTimeout) as info:
            _build("http://server.invalid:80", proxy, method, timeout=TIMEOUT)
        if method == "https_polling":  # the WebSocket's own deadline says "timed out" only
            assert f"the proxy http://127.0.0.1:{proxy.port} timed out" in str(info.value)
        proxy.wait_for(lambda: proxy.hung_up)


def test_a_silent_proxy_on_plain_polling(bound: Bound) -> None:
    """A proxy that never answers a polling GET: ConnectTimeout at timeout."""

    def stall(conn: Conn) -> None:
        conn.read_request()
        conn.stall()

    with Server(stall) as proxy, bound(1.5), pytest.raises(ConnectTimeout):
        _build("http://server.invalid:80", proxy, "build_polling", timeout=TIMEOUT)


@pytest.mark.parametrize("method", TUNNELLED)
@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 Connection established\r\n\r\nEARLY",
        b"HTTP/1.1 200 Conn",
    ],
    ids=["not-http", "bad-status", "data-before-use", "cut-short"],
)
def test_a_proxy_that_answers_nonsense(bound: Bound, method: str, answer: bytes) -> None:
    """A CONNECT answer that is not HTTP, talks first, or is cut short: ConnectError."""
    with Server(_after_connect(lambda conn: conn.send(answer))) as proxy:
        with bound(1.0), pytest.raises(ConnectError) as info:
            _build("http://server.invalid:80", proxy, method)
        assert not isinstance(info.value, ConnectTimeout)


@pytest.mark.parametrize("method", TUNNELLED)
def test_a_proxy_that_refuses_the_tunnel(bound: Bound, method: str) -> None:
    """A CONNECT refused with 403 and a body: ConnectError with the proxy's status and body."""
    refuse = _after_connect(lambda conn: conn.respond(403, "not to that host"))
    with Server(refuse) as proxy:
        with bound(1.0), pytest.raises(ConnectError, match="refused CONNECT") as info:
            _build("http://server.invalid:80", proxy, method)
        assert (info.value.status, info.value.body) == (403, "not to that host")


def test_the_tunnel_carries_the_servers_refusal(bound: Bound) -> None:
    """Through a working tunnel, a server's HTTP 404 on the WebSocket: ConnectError, status 404."""

    def tunnel_to_a_404(conn: Conn) -> None:
        conn.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if conn.read_request() is not None:  # the WebSocket handshake, through the tunnel
            conn.respond(404, "no such path")

    with Server(_after_connect(tunnel_to_a_404)) as proxy:
        with bound(1.0), pytest.raises(ConnectError) as info:
            _build("http://server.invalid:80", proxy, "build_websocket")
        assert (info.value.status, info.value.body) == (404, "no such path")
        assert proxy.requests[0].target == "server.invalid:80"
        assert proxy.requests[1].target.startswith("/engine.io/?EIO=4&transport=websocket")


def test_polling_sends_absolute_form_with_credentials(bound: Bound) -> None:
    """Plain polling through a proxy: absolute-form targets, the Host and Proxy-Authorization."""
    with polling_script("4hello") as proxy:
        builder = geventio.ClientBuilder("http://server.invalid:8080/eio").proxy(
            f"http://u:p@127.0.0.1:{proxy.port}"
        )
        with bound(1.0), builder.build_polling() as client:
            assert client.receive(1) == "hello"
        first = proxy.requests[0]
        assert first.target.startswith("http://server.invalid:8080/eio/?EIO=4&transport=polling")
        assert first.headers["host"] == "server.invalid:8080"
        assert first.headers["proxy-authorization"] == "Basic dTpw"
