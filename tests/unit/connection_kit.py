"""What the tests of geventio._connection share: a handshake, opened connections, readers.

The tests, by subject: ``test_connection_receive.py`` (opening, payloads, invalid packets),
``test_connection_heartbeat.py``, ``test_connection_close.py``, ``test_connection_send.py``
(POST batching, frames, queued bytes) and ``test_connection_upgrade.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from hypothesis import settings

from geventio import ProtocolError
from geventio._connection import (
    Closed,
    Connection,
    Event,
    Opened,
    State,
    Upgrade,
)
from geventio._handshake import Handshake
from geventio._packet import Packet, PacketId
from geventio._reason import CloseReason
from tests.helpers import decode_all

FAST = settings(database=None, max_examples=150, deadline=None)
SEPARATOR_B = b"\x1e"

M = PacketId.MESSAGE

OPEN_PAYLOAD = (
    b'0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,'
    b'"pingTimeout":20000,"maxPayload":1000000}'
)
HANDSHAKE = Handshake(
    sid="abc",
    upgrades=("websocket",),
    ping_interval=25.0,
    ping_timeout=20.0,
    max_payload=1_000_000,
)
SPAN = 45.0  # pingInterval + pingTimeout, in seconds


# Read the attributes through functions: mypy would otherwise keep an attribute narrowed by one
# assert (``conn.state is State.OPEN``) across the method calls that change it.
def state(conn: Connection) -> State:
    return conn.state


def upgrade(conn: Connection) -> Upgrade:
    return conn.upgrade


def transport(conn: Connection) -> str:
    return conn.transport


def flushed(conn: Connection) -> bool:
    return conn.flushed


def has_output(conn: Connection) -> bool:
    return conn.has_output


def paused(conn: Connection) -> bool:
    return conn.paused


def open_packet(
    *,
    upgrades: Sequence[str] = ("websocket",),
    ping_interval: int = 25000,
    ping_timeout: int = 20000,
    max_payload: int = 1_000_000,
) -> str:
    body = {
        "sid": "abc",
        "upgrades": list(upgrades),
        "pingInterval": ping_interval,
        "pingTimeout": ping_timeout,
        "maxPayload": max_payload,
    }
    return "0" + json.dumps(body)


def opened(now: float = 0.0, payload: bytes = OPEN_PAYLOAD, **kwargs: int) -> Connection:
    """A polling Connection opened at ``now``."""
    conn = Connection("polling", **kwargs)
    events = conn.receive_payload(payload, now)
    assert len(events) == 1
    assert isinstance(events[0], Opened)
    assert state(conn) is State.OPEN
    return conn


def opened_ws(now: float = 0.0) -> Connection:
    conn = Connection("websocket")
    assert conn.receive_frame(OPEN_PAYLOAD.decode(), now) == [Opened(HANDSHAKE)]
    return conn


def drain_posts(conn: Connection) -> list[list[Packet]]:
    """Every POST body the connection produces now, decoded, one list per POST."""
    posts: list[list[Packet]] = []
    while (body := conn.next_post()) is not None:
        posts.append(decode_all(body))
        conn.post_finished()
    return posts


def drain(conn: Connection) -> list[Packet]:
    return [p for post in drain_posts(conn) for p in post]


def single_error(events: list[Event], reason: CloseReason) -> Closed:
    assert len(events) == 1
    closed = events[0]
    assert isinstance(closed, Closed)
    assert closed.reason is reason
    return closed


def assert_protocol_error_close(conn: Connection, events: list[Event]) -> None:
    closed = single_error(events, CloseReason.TRANSPORT_ERROR)
    assert isinstance(closed.error, ProtocolError)
    assert state(conn) is State.CLOSED
    assert conn.close_reason is CloseReason.TRANSPORT_ERROR
