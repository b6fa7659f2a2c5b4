"""Cookies set by a scripted server, and what the client sends back: a browser's rules.

The server sets the cookies on the polling handshake; the client must send back, on its next
long-poll GET and on the WebSocket upgrade request, exactly the cookies a browser would send, with
their values as the server wrote them, and nothing that could break a request head.
"""

from __future__ import annotations

import logging
import ssl

import pytest
import trustme

import geventio
from geventio._cookies import CookieJar
from geventio._transports.websocket import WebSocketTransport
from geventio._url import parse_url
from tests.faultkit import Bound
from tests.faults.dummyserver import Request, Server, cookie_script
from tests.helpers import wait_until

PAST = "Thu, 01 Jan 1970 00:00:00 GMT"
#: id: (Set-Cookie lines of the handshake, the Cookie header expected back over http)
CASES: dict[str, tuple[list[str], str | None]] = {
    "path": (["a=1; Path=/engine.io/", "b=2; Path=/other", "c=3; Path=/engine", "d=4"], "a=1; d=4"),
    "domain": (
        ["a=1; Domain=127.0.0.1", "b=2; Domain=example.com", "c=3; Domain=0.0.1", "d=4"],
        "a=1; d=4",
    ),
    "secure-over-http": (["s=1; Secure", "p=2"], "p=2"),
    "expired": ([f"a=deleted; Expires={PAST}", "b=x; Max-Age=-5", "c=x; Max-Age=0", "d=4"], "d=4"),
    "quoted-and-json": (
        ['q="quoted value"', 'j={"a":1,"b":[2,3]}'],
        'q="quoted value"; j={"a":1,"b":[2,3]}',
    ),
    "octal-escapes": (['io="x\\015\\012Evil: 1"; Path=/'], 'io="x\\015\\012Evil: 1"'),
    "control-character": (["io=a\x7fb", "ok=1"], "ok=1"),
    # Max-Age past any float, or past Python's digit limit for int(): kept, capped at 400 days
    "huge-max-age": (["a=1; Max-Age=" + "9" * 400, "b=2; Max-Age=" + "9" * 5000], "a=1; b=2"),
    "huge-negative-max-age": (["a=1; Max-Age=-" + "9" * 400, "b=2"], "b=2"),
}
MODES = ["polling", "upgrade"]


def _sent_back(server: Server, mode: str) -> Request:
    """The request that carries the handshake's cookies back: a long-poll GET or the upgrade."""
    kind = "transport=polling" if mode == "polling" else "transport=websocket"

    def later() -> list[Request]:
        return [r for r in server.requests if kind in r.target and "sid=" in r.target]

    wait_until(lambda: bool(later()))
    return later()[0]


def _connect(url: str, mode: str, **options: object) -> geventio.Client:
    builder = geventio.ClientBuilder(url).timeout(5)
    for name, value in options.items():
        getattr(builder, name)(value)
    client = builder.build_polling() if mode == "polling" else builder.build()
    assert client.transport == ("polling" if mode == "polling" else "websocket")
    return client


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(CASES))
def test_cookies_come_back_by_the_rules(
    bound: Bound, caplog: pytest.LogCaptureFixture, case: str, mode: str
) -> None:
    """Cookies set on the handshake: sent back on the next request as a browser would."""
    caplog.set_level(logging.DEBUG, logger="geventio")
    set_cookies, expected = CASES[case]
    with cookie_script(*set_cookies, upgrade=mode == "upgrade") as server:
        with bound(2.0), _connect(server.url, mode) as client:
            request = _sent_back(server, mode)
            assert client.connected
        assert request.headers.get("cookie") == expected
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        if case == "control-character":  # it reached the jar, which refused it
            assert any("unsafe" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("mode", MODES)
def test_the_users_cookie_header_is_kept_first(bound: Bound, mode: str) -> None:
    """The user's own Cookie header, then the jar's cookies."""
    with cookie_script("a=1", upgrade=mode == "upgrade") as server:
        with bound(2.0), _connect(server.url, mode, headers={"Cookie": "mine=1"}):
            request = _sent_back(server, mode)
        assert request.headers["cookie"] == "mine=1; a=1"


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for 127.0.0.1, and a client context trusting it."""
    ca = trustme.CA()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


@pytest.mark.parametrize("mode", MODES)
def test_a_secure_cookie_goes_over_https_and_wss(
    bound: Bound, tls: tuple[ssl.SSLContext, ssl.SSLContext], mode: str
) -> None:
    """Secure cookies set over https: sent back on https polling and on the wss upgrade."""
    server_context, client_context = tls
    cookies = ["s=1; Secure", "p=2", "__Host-h=3; Secure; Path=/"]
    with cookie_script(*cookies, upgrade=mode == "upgrade", tls=server_context) as server:
        assert server.url.startswith("https://")
        with bound(2.0), _connect(server.url, mode, tls_config=client_context):
            request = _sent_back(server, mode)
        assert request.headers["cookie"] == "s=1; p=2; __Host-h=3"  # longest path first


def test_set_cookie_on_the_websocket_handshake_is_stored_by_the_rules(bound: Bound) -> None:
    """Set-Cookie on a 101: stored by the same rules, an escaped CR LF kept verbatim."""
    cookies = ['io="x\\015\\012Evil: 1"', "s=1; Secure", "o=2; Path=/other", "bad=a\x01b"]
    jar = CookieJar()
    with cookie_script(*cookies) as server:
        endpoint = parse_url(server.url.replace("http", "ws"))
        with bound(2.0):
            ws = WebSocketTransport.connect(
                endpoint,
                endpoint.target("websocket"),
                headers={},
                cookies=jar,
                ssl_context=None,
                timeout=5,
                max_message_size=1 << 20,
            )
            ws.close(0)
    assert jar.header(endpoint) == 'io="x\\015\\012Evil: 1"'
