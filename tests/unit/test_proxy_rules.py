"""The proxy rules without I/O: URLs, the environment, NO_PROXY, and the CONNECT reply parser."""

from __future__ import annotations

import base64
import os
import urllib.request

import pytest

from geventio import ClientBuilder
from geventio._proxy import (
    Proxy,
    TunnelReply,
    bypasses,
    parse_proxy,
    proxy_environment,
    select_proxy,
)


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy:3128", Proxy("proxy", 3128)),
        ("http://proxy", Proxy("proxy", 80)),
        ("proxy:3128", Proxy("proxy", 3128)),
        ("HTTP://Proxy.Example:8080/", Proxy("proxy.example", 8080)),
        ("http://[::1]:3128", Proxy("::1", 3128)),
        ("http://u:p@proxy:1", Proxy("proxy", 1, _basic("u:p"))),
        ("http://us%40er:p%3Ass@proxy:1", Proxy("proxy", 1, _basic("us@er:p:ss"))),
        ("http://user@proxy:1", Proxy("proxy", 1, _basic("user:"))),
    ],
)
def test_proxy_urls(url: str, expected: Proxy) -> None:
    assert parse_proxy(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://u:pw-secret@proxy:443",
        "socks5://u:pw-secret@proxy:1080",
        "http://u:pw-secret@",
        "http://u:pw-secret@proxy:port",
        "ftp://x",
    ],
)
def test_proxy_urls_refused_without_showing_the_password(url: str) -> None:
    for call in (parse_proxy, ClientBuilder("http://server").proxy):
        with pytest.raises(ValueError, match="proxy") as info:
            call(url)
        assert "pw-secret" not in str(info.value)
    assert "dTpwdy1zZWNyZXQ" not in repr(parse_proxy("http://u:pw-secret@proxy:1"))


def test_connect_request_carries_the_credentials() -> None:
    proxy = parse_proxy("http://u:p@proxy:3128")
    assert proxy.connect_request("server.example", 443) == (
        b"CONNECT server.example:443 HTTP/1.1\r\nHost: server.example:443\r\n"
        b"Proxy-Authorization: " + _basic("u:p").encode() + b"\r\n\r\n"
    )
    assert parse_proxy("proxy:1").connect_request("::1", 80).startswith(b"CONNECT [::1]:80 ")
    assert proxy.display == "http://proxy:3128"  # never the password


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypassed"),
    [
        ("example.com", 80, "example.com", True),
        ("api.example.com", 80, "example.com", True),
        ("api.example.com", 80, ".example.com", True),
        ("api.example.com", 80, "*.example.com", True),
        ("badexample.com", 80, "example.com", False),
        ("example.com", 80, "other.org, example.com", True),
        ("Example.COM", 80, "example.com", True),
        ("example.com", 8080, "example.com:80", False),
        ("example.com", 80, "example.com:80", True),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("11.1.2.3", 80, "10.0.0.0/8", False),
        ("127.0.0.1", 80, "127.0.0.1", True),
        ("::1", 80, "::1", True),
        ("::1", 80, "[::1]:80", True),
        ("::1", 81, "[::1]:80", False),
        ("fd00::5", 80, "fd00::/8", True),
        ("anything", 80, "*", True),
        ("anything", 80, "", False),
        ("name", 80, "10.0.0.0/8", False),
    ],
)
def test_no_proxy(host: str, port: int, no_proxy: str, bypassed: bool) -> None:
    assert bypasses(host, port, no_proxy.split(",")) is bypassed


ENV = {
    "HTTP_PROXY": "http://plain:1",
    "HTTPS_PROXY": "http://secure:2",
    "NO_PROXY": "direct.example",
}


@pytest.mark.parametrize(
    ("host", "secure", "environ", "expected"),
    [
        ("server", False, ENV, "plain"),
        ("server", True, ENV, "secure"),
        ("direct.example", True, ENV, None),
        ("server", False, {**ENV, "http_proxy": "http://lower:3"}, "lower"),
        ("server", False, {**ENV, "http_proxy": ""}, None),  # an empty lowercase one wins
        ("server", False, {**ENV, "http_proxy": " "}, None),  # blank counts as empty
        ("server", False, {**ENV, "HTTP_PROXY": "", "http_proxy": "http://l:3"}, "l"),
        ("direct.example", False, {**ENV, "no_proxy": "other"}, "plain"),  # lowercase wins
        ("server", True, {"HTTP_PROXY": "http://plain:1"}, None),  # https needs HTTPS_PROXY
        ("server", False, {}, None),
        # a CGI process: HTTP_PROXY may be the client's Proxy: header ("httpoxy")
        ("server", False, {**ENV, "REQUEST_METHOD": "GET"}, None),
        ("server", False, {**ENV, "REQUEST_METHOD": "GET", "http_proxy": "http://l:3"}, "l"),
        ("server", True, {**ENV, "REQUEST_METHOD": "GET"}, "secure"),
        ("server", False, {"ALL_PROXY": "socks5://proxy:1080"}, None),  # not read
    ],
)
def test_the_environment(
    host: str, secure: bool, environ: dict[str, str], expected: str | None
) -> None:
    proxy = select_proxy(
        host, 443, secure, configured=None, from_env=True, no_proxy=None, environ=environ
    )
    assert (proxy.host if proxy else None) == expected


#: Environments to read as ``urllib.request.getproxies_environment()`` does.
STDLIB_CASES = {
    "upper": {"HTTP_PROXY": "http://u:1", "HTTPS_PROXY": "http://s:2"},
    "lower-wins": {"HTTP_PROXY": "http://u:1", "http_proxy": "http://l:1"},
    "empty-lower-means-none": {"http_proxy": "", "HTTP_PROXY": "http://u:1"},
    "empty-lower-https": {"https_proxy": "", "HTTPS_PROXY": "http://u:2"},
    "empty-upper-is-unset": {"HTTP_PROXY": "", "http_proxy": "http://l:1"},
    "only-empty": {"HTTP_PROXY": "", "HTTPS_PROXY": ""},
    "mixed-case": {"Http_Proxy": "http://m:1"},
    "cgi-upper": {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://u:1"},
    "cgi-lower": {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://u:1", "http_proxy": "http://l:1"},
    "cgi-https": {"REQUEST_METHOD": "GET", "HTTPS_PROXY": "http://s:2"},
    "no-proxy": {"HTTP_PROXY": "http://u:1", "NO_PROXY": "server"},
    "no-proxy-lower-wins": {"HTTP_PROXY": "http://u:1", "NO_PROXY": "server", "no_proxy": "x"},
    "empty-lower-no-proxy": {"HTTP_PROXY": "http://u:1", "NO_PROXY": "server", "no_proxy": ""},
}


@pytest.mark.parametrize("secure", [False, True])
@pytest.mark.parametrize("environ", STDLIB_CASES.values(), ids=STDLIB_CASES.keys())
def test_the_environment_as_the_standard_library_reads_it(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], secure: bool
) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    stdlib = urllib.request.getproxies_environment()
    url = stdlib.get("https" if secure else "http")
    if url is not None and urllib.request.proxy_bypass("server"):  # reads os.environ
        url = None
    expected = parse_proxy(url) if url is not None else None
    assert proxy_environment(environ) == stdlib
    chosen = select_proxy(
        "server", 80, secure, configured=None, from_env=True, no_proxy=None, environ=environ
    )
    assert chosen == expected


def test_the_builder_option_overrides_the_environment() -> None:
    def choose(configured: str | None, no_proxy: str | None) -> Proxy | None:
        return select_proxy(
            "server",
            80,
            False,
            configured=configured,
            from_env=False,
            no_proxy=no_proxy,
            environ=ENV,
        )

    assert choose(None, None) is None  # .proxy(None): direct, whatever the environment says
    assert choose("http://mine:9", None) == Proxy("mine", 9)
    assert choose("http://mine:9", "server") is None
    assert choose("http://mine:9", "direct.example") == Proxy("mine", 9)  # not ENV's NO_PROXY


def _reply(*chunks: bytes) -> TunnelReply:
    reply = TunnelReply()
    for chunk in chunks:
        reply.feed(chunk)
    return reply


def test_tunnel_reply_fed_whole_or_byte_by_byte() -> None:
    data = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 5\r\n\r\nno!!!"
    for reply in (_reply(data), _reply(*(data[i : i + 1] for i in range(len(data))))):
        assert (reply.status, reply.reason, reply.content_length) == (
            407,
            "Proxy Authentication Required",
            5,
        )
        assert reply.rest == b"no!!!"
    assert _reply(b"HTTP/1.0 200 Connection established\r\n\r\n").status == 200
    assert _reply(b"HTTP/1.1 200 OK\r\n").status is None  # the head is not complete


@pytest.mark.parametrize(
    "data", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"x" * 20_000]
)
def test_tunnel_reply_that_is_not_http(data: bytes) -> None:
    with pytest.raises(ValueError, match="proxy"):
        _reply(data)
