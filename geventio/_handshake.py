"""The open packet's handshake and the close reasons (sans-IO values)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from geventio.exceptions import ProtocolError

__all__ = ["CloseReason", "Handshake", "parse_handshake"]

#: maxPayload when a server does not announce one (the reference servers' default).
DEFAULT_MAX_PAYLOAD = 1_000_000


class CloseReason(str, Enum):
    """Why a client closed; passed to ``on_close`` and returned by ``Client.wait()``."""

    CLIENT_DISCONNECT = "client disconnect"
    SERVER_DISCONNECT = "server disconnect"
    PING_TIMEOUT = "ping timeout"
    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"


@dataclass(frozen=True, slots=True)
class Handshake:
    """The session parameters from the server's open packet (times in seconds, sizes in bytes)."""

    sid: str
    upgrades: tuple[str, ...]
    ping_interval: float
    ping_timeout: float
    max_payload: int


def _field(obj: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    value = obj.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProtocolError(
            f"handshake field {name!r} is missing or not {kind.__name__}: {value!r}"
        )
    return value


def parse_handshake(data: str) -> Handshake:
    """Parse the JSON of an open packet.

    :raises ProtocolError: for invalid JSON, a missing or ill-typed field, or negative times.
    """
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"handshake is not JSON: {data[:100]!r}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"handshake is not a JSON object: {data[:100]!r}")
    sid = _field(obj, "sid", str)
    if not sid:
        raise ProtocolError("handshake has an empty sid")
    upgrades = _field(obj, "upgrades", list)
    if not all(isinstance(u, str) for u in upgrades):
        raise ProtocolError(f"handshake upgrades are not strings: {upgrades!r}")
    interval = _field(obj, "pingInterval", int)
    timeout = _field(obj, "pingTimeout", int)
    max_payload = _field(obj, "maxPayload", int, required=False)
    # python-engineio rounds pingInterval down to whole seconds: 0 is possible, and harmless
    if interval < 0 or timeout < 0 or (max_payload is not None and max_payload <= 0):
        raise ProtocolError(f"handshake has out-of-range values: {data[:200]!r}")
    return Handshake(
        sid=sid,
        upgrades=tuple(upgrades),
        ping_interval=interval / 1000.0,
        ping_timeout=timeout / 1000.0,
        max_payload=DEFAULT_MAX_PAYLOAD if max_payload is None else max_payload,
    )
