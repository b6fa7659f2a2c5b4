"""The one private name of urllib3 that geventio relies on, and how urllib3 treats its errors.

geventio opens polling's connections by overriding urllib3's ``HTTPConnection._new_conn``, and
maps an ``OSError`` there once, to its own ``DialError``, which urllib3 must let through
untouched. Should urllib3 rename the hook or start wrapping such errors, these tests fail loudly
(instead of polling quietly falling back to blocking stdlib sockets, or error texts changing).
"""

from __future__ import annotations

import gevent.socket
import pytest

from geventio import ConnectError, ConnectTimeout
from geventio._cookies import CookieJar
from geventio._transports._errors import DialError
from geventio._transports._http import CooperativeHTTPConnection
from geventio._transports.polling import PollingTransport
from geventio._url import parse_url
from tests.faultkit import Bound
from tests.faults.dummyserver import polling_script
from tests.helpers import free_port


def _transport(url: str) -> PollingTransport:
    return PollingTransport(
        parse_url(url),
        headers={},
        cookies=CookieJar(),
        ssl_context=None,
        timeout=2.0,
        max_message_size=1 << 20,
    )


def test_urllib3_opens_connections_through_new_conn(bound: Bound) -> None:
    """urllib3's ``connect()`` still calls ``_new_conn``: the socket is a gevent socket."""
    with polling_script() as server, bound(1.0):
        conn = CooperativeHTTPConnection(
            "127.0.0.1", server.port, geventio_host="127.0.0.1", timeout=1.0
        )
        try:
            conn.connect()
            assert isinstance(conn.sock, gevent.socket.socket)
        finally:
            conn.close()


def test_urllib3_lets_a_dial_error_through(bound: Bound) -> None:
    """A refused connection: urllib3 passes the ``DialError`` through, mapped once into ours."""
    transport = _transport(f"http://127.0.0.1:{free_port()}")
    with bound(1.0), pytest.raises(ConnectError) as info:
        transport.handshake()
    transport.close()
    assert not isinstance(info.value, ConnectTimeout)
    assert isinstance(info.value.__cause__, DialError)
    assert isinstance(info.value.__cause__.__cause__, ConnectionRefusedError)
    assert str(info.value).startswith("GET /engine.io/: connect failed: ")
