"""Unit tests for geventio._url: parsing the user's URL and building request targets."""

from __future__ import annotations

from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from geventio._url import Endpoint, cache_buster, parse_url


def _query(target: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(target).query, keep_blank_values=True)


# -- schemes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secure", "port"),
    [
        ("http://example.com", False, 80),
        ("https://example.com", True, 443),
        ("ws://example.com", False, 80),
        ("wss://example.com", True, 443),
        ("HTTP://example.com", False, 80),
        ("WSS://example.com", True, 443),
        ("http://example.com:8080", False, 8080),
        ("wss://example.com:8443", True, 8443),
        ("https://example.com:80", True, 80),
    ],
)
def test_schemes_map_to_secure_and_default_port(url: str, secure: bool, port: int) -> None:
    endpoint = parse_url(url)
    assert endpoint.host == "example.com"
    assert endpoint.secure is secure
    assert endpoint.port == port


@pytest.mark.parametrize(
    "url", ["ftp://example.com", "file:///tmp/x", "gopher://example.com", "example.com/path"]
)
def test_unsupported_scheme_raises_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="scheme"):
        parse_url(url)


@pytest.mark.parametrize("url", ["http://", "https:///engine.io/", "ws://:80/"])
def test_missing_host_raises_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="host"):
        parse_url(url)


def test_ipv6_host() -> None:
    endpoint = parse_url("http://[::1]:5000/")
    assert endpoint.host == "::1"
    assert endpoint.port == 5000
    assert endpoint.host_header == "[::1]:5000"


def test_host_header() -> None:
    assert parse_url("http://example.com").host_header == "example.com"
    assert parse_url("http://example.com:8080").host_header == "example.com:8080"
    assert parse_url("https://example.com:443").host_header == "example.com"
    assert parse_url("https://example.com:80").host_header == "example.com:80"
    assert parse_url("ws://Example.COM").host_header == "example.com"


# -- path --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("http://example.com", "/engine.io/"),
        ("http://example.com/", "/engine.io/"),
        ("http://example.com?a=1", "/engine.io/"),
        ("http://example.com/?a=1", "/engine.io/"),
        ("http://example.com/socket.io/", "/socket.io/"),
        ("http://example.com/socket.io", "/socket.io/"),  # trailing slash added, as in JS
        ("http://example.com/engine.io/", "/engine.io/"),
        ("ws://example.com/custom/path/", "/custom/path/"),
    ],
)
def test_default_path(url: str, path: str) -> None:
    assert parse_url(url).path == path


@pytest.mark.parametrize(
    ("url", "path", "expected"),
    [
        ("http://example.com", "/socket.io/", "/socket.io/"),
        ("http://example.com/ignored/", "/socket.io/", "/socket.io/"),
        ("http://example.com", "socket.io/", "/socket.io/"),
        ("http://example.com", "/engine.io", "/engine.io/"),
        ("http://example.com/", "/engine.io/", "/engine.io/"),
        ("http://example.com/", "/", "/"),
    ],
)
def test_explicit_path(url: str, path: str, expected: str) -> None:
    assert parse_url(url, path=path).path == expected


# -- query -------------------------------------------------------------------------------------


def test_query_from_url_and_argument_are_merged_in_order() -> None:
    endpoint = parse_url("http://example.com/?a=1&b=&a=2", query={"token": "x y", "c": "3"})
    assert endpoint.query == (("a", "1"), ("b", ""), ("a", "2"), ("token", "x y"), ("c", "3"))


def test_query_argument_only() -> None:
    assert parse_url("http://example.com", query={"k": "v"}).query == (("k", "v"),)
    assert parse_url("http://example.com").query == ()
    assert parse_url("http://example.com", query={}).query == ()


def test_endpoint_is_a_value() -> None:
    assert parse_url("ws://example.com/?a=1") == Endpoint(
        host="example.com", port=80, secure=False, path="/engine.io/", query=(("a", "1"),)
    )


# -- target ------------------------------------------------------------------------------------


def test_target_for_the_handshake() -> None:
    target = parse_url("http://example.com").target("polling")
    assert target == "/engine.io/?EIO=4&transport=polling"
    assert "sid" not in _query(target)
    assert "t" not in _query(target)


def test_target_with_sid_and_user_query() -> None:
    endpoint = parse_url("http://example.com/socket.io/?token=a%26b", query={"x": "1"})
    target = endpoint.target("websocket", "sid-123")
    assert urlsplit(target).path == "/socket.io/"
    assert parse_qsl(urlsplit(target).query) == [
        ("token", "a&b"),
        ("x", "1"),
        ("EIO", "4"),
        ("transport", "websocket"),
        ("sid", "sid-123"),
    ]


def test_target_contains_t_only_with_cache_bust() -> None:
    endpoint = parse_url("http://example.com")
    plain = _query(endpoint.target("polling", "abc"))
    assert plain == {"EIO": ["4"], "transport": ["polling"], "sid": ["abc"]}
    busted = _query(endpoint.target("polling", "abc", cache_bust=True))
    assert busted["EIO"] == ["4"]
    assert busted["transport"] == ["polling"]
    assert busted["sid"] == ["abc"]
    assert len(busted["t"]) == 1
    assert busted["t"][0] != ""


def test_cache_busters_differ() -> None:
    endpoint = parse_url("http://example.com")
    targets = {endpoint.target("polling", cache_bust=True) for _ in range(100)}
    assert len(targets) == 100
    busters = [cache_buster() for _ in range(1000)]
    assert len(set(busters)) == 1000
    allowed = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.")
    assert all(set(b) <= allowed for b in busters)
