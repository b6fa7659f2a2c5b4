"""User input that cannot go on the wire: bad headers, paths and query parameters.

One rule for both transports (h11's), checked when the input is given: polling (http.client)
used to send an obs-fold continuation line or a NUL byte that the WebSocket handshake (h11)
refused. A scripted server on each transport records what arrives: nothing, for a bad input;
the same header, for a good one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

import geventio
from tests.faultkit import Bound
from tests.faults.dummyserver import OPEN, Server, frame, polling_script, websocket_script

METHODS = ["build_polling", "build_websocket"]
SCRIPTS: dict[str, Callable[[], AbstractContextManager[Server]]] = {
    "build_polling": polling_script,
    "build_websocket": lambda: websocket_script(frame(0x1, OPEN.encode())),
}

#: (name, value) pairs that break the rule; the id says how.
BAD_HEADERS = {
    "obs-fold": ("X-A", "a\r\n b"),
    "nul": ("X-A", "a\x00b"),
    "lf": ("X-A", "a\nX-Injected: 1"),
    "cr": ("X-A", "a\rb"),
    "del": ("X-A", "a\x7fb"),
    "leading-space": ("X-A", " a"),
    "trailing-tab": ("X-A", "a\t"),
    "not-latin-1": ("X-A", "€"),
    "lone-surrogate": ("X-A", "\udcff"),
    "space-in-name": ("X A", "a"),
    "colon-in-name": ("X:A", "a"),
    "empty-name": ("", "a"),
    "crlf-in-name": ("X-A\r\nX-B", "a"),
}
#: values that the rule allows, and that both transports send as they are (latin-1)
GOOD_VALUES = ["a  b", "a\tb", "caf\xe9", "", "!~"]


def _open(builder: geventio.ClientBuilder, method: str) -> None:
    """Build with ``method``, then disconnect at once."""
    client: geventio.Client = getattr(builder, method)()
    client.disconnect()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("name", "value"), BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_a_bad_header_is_refused_by_the_builder(
    bound: Bound, method: str, name: str, value: str
) -> None:
    """``headers()`` raises a ValueError naming the header; nothing reaches the server."""
    with SCRIPTS[method]() as server, bound(2.0):
        with pytest.raises(ValueError, match=re.escape(repr(name))):
            _open(geventio.ClientBuilder(server.url).timeout(1).headers({name: value}), method)
        assert server.conns == []


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("name", "value"), BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_a_bad_header_from_the_callable_is_refused_at_connect(
    bound: Bound, method: str, name: str, value: str
) -> None:
    """Headers from a callable are checked at each connect: ``build*()`` raises, sends nothing."""
    calls: list[int] = []

    def headers() -> dict[str, str]:
        calls.append(1)
        return {"X-Good": "1", name: value}

    with SCRIPTS[method]() as server, bound(2.0):
        builder = geventio.ClientBuilder(server.url).timeout(1).headers(headers)
        with pytest.raises(ValueError, match=re.escape(repr(name))):
            _open(builder, method)
        assert calls == [1]
        assert server.conns == []


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("value", GOOD_VALUES)
def test_a_good_header_reaches_the_server_the_same_on_both_transports(
    bound: Bound, method: str, value: str
) -> None:
    with SCRIPTS[method]() as server, bound(2.0):
        _open(geventio.ClientBuilder(server.url).timeout(1).headers({"X-A": value}), method)
        assert server.requests
        assert server.requests[0].headers["x-a"] == value


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", ["/caf\xe9/", "/a b/", "/a\r\nb/", "/\ud800/", "/a\x00/"])
def test_a_path_that_cannot_be_sent_is_refused(bound: Bound, method: str, path: str) -> None:
    """Polling used to percent-encode such a path and WebSocket to fail with UnicodeEncodeError
    or h11's error; both refuse it now, at the builder, from ``path()`` and from the URL."""
    with SCRIPTS[method]() as server, bound(2.0):
        with pytest.raises(ValueError, match="invalid path"):
            _open(geventio.ClientBuilder(server.url).timeout(1).path(path), method)
        if "\n" not in path:  # urlsplit drops tabs, CRs and LFs from a URL (WHATWG)
            with pytest.raises(ValueError, match="invalid path"):
                _open(geventio.ClientBuilder(server.url + path).timeout(1), method)
        assert server.conns == []


@pytest.mark.parametrize("method", METHODS)
def test_a_percent_encoded_path_reaches_the_server_as_it_is(bound: Bound, method: str) -> None:
    with SCRIPTS[method]() as server, bound(2.0):
        _open(geventio.ClientBuilder(server.url).timeout(1).path("/caf%C3%A9/"), method)
        assert server.requests[0].target.startswith("/caf%C3%A9/?")


@pytest.mark.parametrize("method", METHODS)
def test_a_query_that_cannot_be_sent_is_refused(bound: Bound, method: str) -> None:
    """A lone surrogate cannot be percent-encoded as UTF-8: refused by ``query()``."""
    with SCRIPTS[method]() as server, bound(2.0):
        with pytest.raises(ValueError, match="invalid query parameter 'room'"):
            _open(geventio.ClientBuilder(server.url).timeout(1).query({"room": "\udcff"}), method)
        assert server.conns == []


class FalsyHeaders:
    """A headers callable that is false as a value (``len() == 0``): still a callable."""

    def __init__(self) -> None:
        self.calls = 0

    def __len__(self) -> int:
        return 0

    def __call__(self) -> dict[str, str]:
        self.calls += 1
        return {"X-A": "called"}


@pytest.mark.parametrize("method", METHODS)
def test_a_falsy_headers_callable_is_called_at_each_connect(bound: Bound, method: str) -> None:
    headers = FalsyHeaders()
    for connects in (1, 2):
        with SCRIPTS[method]() as server, bound(2.0):
            builder = geventio.ClientBuilder(server.url).timeout(1).headers(headers)
            _open(builder, method)
            assert server.requests[0].headers["x-a"] == "called"
            assert headers.calls == connects
