"""The open packet's handshake: its fields, their bounds, and its parsing (sans-IO)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from geventio.exceptions import ProtocolError

__all__ = ["Handshake", "parse_handshake"]

#: maxPayload when a server does not announce one (the reference servers' default).
DEFAULT_MAX_PAYLOAD = 1_000_000


@dataclass(frozen=True, slots=True)
class Handshake:
    """The session parameters from the server's open packet (times in seconds, sizes in bytes)."""

    sid: str
    upgrades: tuple[str, ...]
    ping_interval: float
    ping_timeout: float
    max_payload: int


#: The longest time a server may announce, in ms: what a JS timer takes (2**31 - 1, 24.8 days).
MAX_TIME_MS = 2**31 - 1
#: The largest maxPayload a server may announce: JS's largest exact integer.
MAX_PAYLOAD = 2**53 - 1
#: The longest sid accepted (node's are 20 characters, python-engineio's 32).
MAX_SID = 1024


def _field(obj: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    value = obj.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProtocolError(
            f"handshake field {name!r} is missing or not {kind.__name__}: {_show(value)}"
        )
    return value


def _number(obj: dict[str, Any], name: str, low: int, high: int, *, required: bool = True) -> Any:
    """An integer field within ``low..high`` (``None`` when optional and absent)."""
    value = _field(obj, name, int, required=required)
    if value is not None and not low <= value <= high:
        raise ProtocolError(f"handshake field {name!r} is out of {low}..{high}: {_show(value)}")
    return value


def _show(value: object) -> str:
    """A short repr for an error message (a huge number's repr is slow, and unreadable)."""
    if isinstance(value, int) and not -(10**30) < value < 10**30:
        return "a number too large"
    return repr(value)[:100]


def _valid_sid(sid: str) -> bool:
    """A sid that can go into a URL: printable, so no control character and no lone surrogate
    (which UTF-8 cannot encode)."""
    return 0 < len(sid) <= MAX_SID and sid.isprintable()


def parse_handshake(data: str) -> Handshake:
    """Parse the JSON of an open packet.

    :raises ProtocolError: for invalid JSON, a missing or ill-typed field, an empty or
        unprintable sid, or a number out of its range (times within 0..2**31-1 ms,
        maxPayload within 1..2**53-1).
    """
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"handshake is not JSON: {data[:100]!r}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"handshake is not a JSON object: {data[:100]!r}")
    sid = _field(obj, "sid", str)
    if not _valid_sid(sid):
        raise ProtocolError(f"handshake has an empty, overlong or unprintable sid: {sid[:100]!r}")
    upgrades = _field(obj, "upgrades", list)
    if not all(isinstance(u, str) for u in upgrades):
        raise ProtocolError(f"handshake upgrades are not strings: {_show(upgrades)}")
    # python-engineio rounds pingInterval down to whole seconds: 0 is possible, and harmless
    interval = _number(obj, "pingInterval", 0, MAX_TIME_MS)
    timeout = _number(obj, "pingTimeout", 0, MAX_TIME_MS)
    max_payload = _number(obj, "maxPayload", 1, MAX_PAYLOAD, required=False)
    return Handshake(
        sid=sid,
        upgrades=tuple(upgrades),
        ping_interval=interval / 1000.0,
        ping_timeout=timeout / 1000.0,
        max_payload=DEFAULT_MAX_PAYLOAD if max_payload is None else max_payload,
    )
