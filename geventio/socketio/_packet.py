"""Sans-IO Socket.IO v5 packet codec (stdlib only): packets to Engine.IO messages and back.

Wire format: ``<type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]``, then one binary
message per attachment. :func:`encode` gives python-socketio 5.x's exact bytes:
``json.dumps(data, separators=(",", ":"))``, so non-ASCII is ``\\u`` escaped and ``int``/``float``/
``bool``/``None`` dict keys become strings, as ``json`` does. Unlike python-socketio it refuses NaN
and infinities (not JSON; a JavaScript server drops the connection). :class:`Decoder` refuses
anything the protocol does not allow with :class:`~geventio.socketio.exceptions.ProtocolError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from geventio.socketio.exceptions import ProtocolError

__all__ = [
    "Decoder",
    "Packet",
    "PacketType",
    "encode",
    "encode_event",
    "from_arguments",
    "has_binary",
    "to_arguments",
]

#: the largest ack id: JavaScript's Number.MAX_SAFE_INTEGER
MAX_ACK_ID = 2**53 - 1
_ID_DIGITS = len(str(MAX_ACK_ID))
_COUNT_DIGITS = 10
_BYTES_LIKE = (bytes, bytearray, memoryview)
#: Types that can hold no bytes: :func:`has_binary` skips them at once.
_SCALARS = frozenset({str, int, float, bool, type(None)})
#: ``json.dumps(data, separators=(",", ":"), allow_nan=False)``, without building an encoder for
#: every packet as ``dumps`` does when given options (about 2 us less per packet).
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


class PacketType(IntEnum):
    """The Socket.IO packet types."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


_BINARY = (PacketType.BINARY_EVENT, PacketType.BINARY_ACK)
_EVENTS = (PacketType.EVENT, PacketType.BINARY_EVENT)
_WITH_ID = (PacketType.EVENT, PacketType.ACK, *_BINARY)


@dataclass(frozen=True, slots=True)
class Packet:
    """One Socket.IO packet.

    :param type: the packet type.
    :param namespace: the namespace, starting with ``"/"``.
    :param data: CONNECT: a dict (the auth data from a client, ``{"sid": ...}`` from a server) or
        ``None``; EVENT and BINARY_EVENT: ``[event_name, *args]``; ACK and BINARY_ACK: the list of
        ack arguments; CONNECT_ERROR: a dict (``{"message": ..., "data": ...}``) or a str;
        DISCONNECT: ``None``.
    :param id: the ack id, for EVENT and ACK (and their BINARY forms) only.
    """

    type: PacketType
    namespace: str = "/"
    data: Any = None
    id: int | None = None


def has_binary(data: Any) -> bool:
    """Whether ``data`` holds bytes, bytearray or memoryview anywhere in lists, tuples, dicts.

    :raises RecursionError: for circular or absurdly deep data.
    """
    kind = type(data)
    if kind in _SCALARS:
        return False
    if kind in (list, tuple) or isinstance(data, (list, tuple)):
        return any(type(item) not in _SCALARS and has_binary(item) for item in data)
    if isinstance(data, dict):
        return any(type(item) not in _SCALARS and has_binary(item) for item in data.values())
    return isinstance(data, _BYTES_LIKE)


def _shape_error(ptype: PacketType, data: Any) -> str | None:
    """What is wrong with ``data`` as the payload of a ``ptype`` packet, or None."""
    if ptype in _EVENTS:
        if not isinstance(data, (list, tuple)) or not data or not isinstance(data[0], str):
            return "needs a non-empty array starting with the event name"
    elif ptype in (PacketType.ACK, PacketType.BINARY_ACK):
        if not isinstance(data, (list, tuple)):
            return "needs an array"
    elif ptype is PacketType.CONNECT:
        if data is not None and not isinstance(data, dict):
            return "needs an object or no payload"
    elif ptype is PacketType.CONNECT_ERROR:
        if not isinstance(data, (dict, str)):
            return "needs an object or a string"
    elif data is not None:  # DISCONNECT
        return "takes no payload"
    return None


def _deconstruct(data: Any, attachments: list[bytes]) -> Any:
    """``data`` with each bytes-like replaced by a placeholder, depth first, as python-socketio."""
    if isinstance(data, _BYTES_LIKE):
        attachments.append(bytes(data))
        return {"_placeholder": True, "num": len(attachments) - 1}
    if isinstance(data, (list, tuple)):
        return [_deconstruct(item, attachments) for item in data]
    if isinstance(data, dict):
        return {key: _deconstruct(value, attachments) for key, value in data.items()}
    return data


def encode(packet: Packet) -> list[str | bytes]:
    """The Engine.IO messages for one packet: a text message, then one binary per attachment.

    An EVENT or ACK whose data holds bytes-like values anywhere goes out as BINARY_EVENT or
    BINARY_ACK with ``{"_placeholder":true,"num":N}`` placeholders, numbered depth first; a
    BINARY_* packet without bytes goes out as the plain type. Tuples encode as lists. Blocks on
    nothing.

    :raises ValueError: for a bad type, namespace (must start with ``"/"``, no ``","``) or ack id
        (an int from 0 to 2**53-1, on EVENT/ACK only), a payload of the wrong shape for the type,
        bytes in a packet that cannot carry them, NaN or infinity, circular or too deeply nested
        data.
    :raises TypeError: for data JSON cannot encode (a set, an arbitrary object, bytes as a key).
    """
    ptype = PacketType(packet.type)
    namespace, data, ack_id = packet.namespace, packet.data, packet.id
    if not isinstance(namespace, str) or not namespace.startswith("/") or "," in namespace:
        raise ValueError(f"bad namespace {namespace!r}: must start with '/' and hold no ','")
    if ack_id is not None:
        if ptype not in _WITH_ID:
            raise ValueError(f"a {ptype.name} packet has no ack id")
        if type(ack_id) is not int or not 0 <= ack_id <= MAX_ACK_ID:
            raise ValueError(f"bad ack id {ack_id!r}: must be an int from 0 to {MAX_ACK_ID}")
    problem = _shape_error(ptype, data)
    if problem is not None:
        raise ValueError(f"a {ptype.name} packet {problem}, not {type(data).__name__}")
    try:
        binary = has_binary(data)
        attachments: list[bytes] = []
        if binary:
            if ptype not in _WITH_ID:
                raise ValueError(f"a {ptype.name} packet cannot carry binary data")
            data = _deconstruct(data, attachments)
            ptype = PacketType.BINARY_EVENT if ptype in _EVENTS else PacketType.BINARY_ACK
        elif ptype in _BINARY:
            ptype = PacketType.EVENT if ptype is PacketType.BINARY_EVENT else PacketType.ACK
        text = str(int(ptype))
        if binary:
            text += f"{len(attachments)}-"
        if namespace != "/":
            text += namespace + ","
        if ack_id is not None:
            text += str(ack_id)
        if data is not None:
            text += _ENCODE(data)
    except RecursionError as exc:
        raise ValueError("data is circular or nested too deeply") from exc
    return [text, *attachments]


def encode_event(namespace: str, data: list[Any], ack_id: int | None) -> list[str | bytes]:
    """:func:`encode` of an EVENT, with a fast path for the common case: no bytes in ``data``,
    an event name that is a str. The caller vouches for ``namespace`` (one it joined, so
    :func:`encode` checked it) and ``ack_id`` (one it counted).

    :raises TypeError, ValueError: as :func:`encode`.
    """
    if not data or type(data[0]) is not str or has_binary(data):
        return encode(Packet(PacketType.EVENT, namespace, data, ack_id))
    head = "2" if namespace == "/" else "2" + namespace + ","
    try:
        if ack_id is None:
            return [head + _ENCODE(data)]
        return [head + str(ack_id) + _ENCODE(data)]
    except RecursionError as exc:
        raise ValueError("data is circular or nested too deeply") from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_JSON = json.JSONDecoder(parse_constant=_refuse_constant)


def _digits_end(text: str, pos: int, limit: int) -> int:
    """Where the run of ASCII digits at ``pos`` ends, looking at no more than ``limit + 1``."""
    end, stop = pos, min(len(text), pos + limit + 1)
    while end < stop and "0" <= text[end] <= "9":
        end += 1
    return end


def _placeholders(data: Any) -> list[tuple[list[Any] | dict[str, Any], Any, Any]]:
    """Every placeholder in decoded JSON: (its container, its key or index, its num).

    Walks without recursion, so depth is bounded only by what ``json`` accepted. A placeholder
    is a dict whose ``"_placeholder"`` is ``true`` (as the JavaScript parser decides).
    """
    found: list[tuple[list[Any] | dict[str, Any], Any, Any]] = []
    stack: list[list[Any] | dict[str, Any]] = [data] if isinstance(data, (list, dict)) else []
    while stack:
        container = stack.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in items:
            if isinstance(value, dict) and value.get("_placeholder") is True:
                found.append((container, key, value.get("num")))
            elif isinstance(value, (list, dict)):
                stack.append(value)
    return found


class Decoder:
    """Turns Engine.IO messages (str: a text message, bytes: a binary one) into packets.

    :param max_attachments: the most attachments one binary packet may declare.
    :param max_attachment_bytes: the most bytes all attachments of one packet may hold.
    """

    def __init__(
        self, max_attachments: int = 1000, max_attachment_bytes: int = 16 * 1024 * 1024
    ) -> None:
        self._max_attachments = max_attachments
        self._max_bytes = max_attachment_bytes
        self._partial: Packet | None = None
        self._slots: list[tuple[list[Any] | dict[str, Any], Any, int]] = []
        self._attachments: list[bytes] = []
        self._received = 0

    @property
    def pending(self) -> bool:
        """Whether a binary packet still waits for attachments."""
        return self._partial is not None

    def feed(self, message: str | bytes) -> Packet | None:
        """Decode one Engine.IO message. Blocks on nothing.

        :returns: a complete packet, or None while a binary packet waits for attachments; a
            BINARY_EVENT / BINARY_ACK comes back with the attachments (bytes) in place of their
            placeholders.
        :raises ProtocolError: for anything the Socket.IO v5 protocol does not allow (the
            decoder may then be in any state: close the connection).
        :raises TypeError: if ``message`` is neither str nor bytes-like (a caller's bug).
        """
        if isinstance(message, str):
            if self._partial is not None:
                raise ProtocolError("text message while a binary packet waits for attachments")
            return self._text(message)
        if isinstance(message, _BYTES_LIKE):
            return self._binary(bytes(message))
        raise TypeError(f"expected str or bytes, not {type(message).__name__}")

    def _binary(self, message: bytes) -> Packet | None:
        packet = self._partial
        if packet is None:
            raise ProtocolError("binary message while no attachment is expected")
        self._received += len(message)
        if self._received > self._max_bytes:
            raise ProtocolError(f"attachments exceed {self._max_bytes} bytes")
        self._attachments.append(message)
        if len(self._attachments) < len(self._slots):
            return None
        for container, key, num in self._slots:
            container[key] = self._attachments[num]
        self._partial, self._slots, self._attachments, self._received = None, [], [], 0
        return packet

    def _text(self, text: str) -> Packet | None:
        if not text:
            raise ProtocolError("empty message")
        if text[0] not in "0123456":
            raise ProtocolError(f"unknown packet type {text[:1]!r}")
        ptype = PacketType(int(text[0]))
        pos, count = 1, 0
        if ptype in _BINARY:
            end = _digits_end(text, pos, _COUNT_DIGITS)
            if end - pos > _COUNT_DIGITS:
                raise ProtocolError(f"attachment count {text[pos:end]}... is absurd")
            if end == pos or not text.startswith("-", end):
                raise ProtocolError("binary packet without its attachment count")
            count = int(text[pos:end])
            if count > self._max_attachments:
                raise ProtocolError(f"{count} attachments, over the limit {self._max_attachments}")
            pos = end + 1
        namespace = "/"
        if text.startswith("/", pos):
            comma = text.find(",", pos)
            end = len(text) if comma == -1 else comma
            namespace, pos = text[pos:end], end + 1
        end = _digits_end(text, pos, _ID_DIGITS)
        ack_id: int | None = None
        if end > pos:
            if ptype not in _WITH_ID:
                raise ProtocolError(f"a {ptype.name} packet has no ack id")
            if end - pos > _ID_DIGITS or int(text[pos:end]) > MAX_ACK_ID:
                raise ProtocolError(f"ack id {text[pos:end]}... is over {MAX_ACK_ID}")
            ack_id, pos = int(text[pos:end]), end
        data = self._json(text[pos:], ptype)
        packet = Packet(ptype, namespace, data, ack_id)
        if ptype in _BINARY:
            return self._expect(packet, count)
        return packet

    @staticmethod
    def _json(text: str, ptype: PacketType) -> Any:
        data = None
        if text:
            try:
                data = _JSON.decode(text)
            except (ValueError, RecursionError) as exc:
                raise ProtocolError(f"bad JSON payload in a {ptype.name} packet: {exc}") from exc
            if data is None:
                raise ProtocolError(f"a null payload in a {ptype.name} packet")
        problem = _shape_error(ptype, data)
        if problem is not None:
            raise ProtocolError(f"a {ptype.name} packet {problem}, not {type(data).__name__}")
        return data

    def _expect(self, packet: Packet, count: int) -> Packet | None:
        slots = _placeholders(packet.data)
        if len(slots) != count:
            raise ProtocolError(f"{len(slots)} placeholders for {count} declared attachments")
        seen: set[int] = set()
        for _, _, num in slots:
            if type(num) is not int or not 0 <= num < count or num in seen:
                raise ProtocolError(f"bad placeholder num {num!r} for {count} attachments")
            seen.add(num)
        if count == 0:
            return packet
        self._partial, self._slots = packet, slots
        self._attachments, self._received = [], 0
        return None


def to_arguments(data: Any) -> list[Any]:
    """python-socketio's rule: a tuple is several arguments, ``None`` none, else one."""
    if isinstance(data, tuple):
        return list(data)
    return [] if data is None else [data]


def from_arguments(args: list[Any] | tuple[Any, ...]) -> Any:
    """The reverse rule, as ``call()`` returns an ack: the single argument, a tuple of several,
    ``None`` for none."""
    if len(args) == 1:
        return args[0]
    return tuple(args) if args else None
