"""Engine.IO v4 packets and their encodings (sans-IO).

A packet is encoded in one of two forms:

* the *text form*, used in polling payloads and in WebSocket text frames: one ASCII digit for the
  packet type followed by the data; a binary message is ``b`` followed by its base64 encoding;
* the *WebSocket form*: the text form, except that a binary message is a raw binary frame.
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode
from enum import IntEnum
from typing import Final

from geventio.exceptions import ProtocolError

__all__ = ["Packet", "PacketId", "decode_binary", "decode_text", "encode_text", "encode_ws"]


class PacketId(IntEnum):
    """The seven Engine.IO packet types."""

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


_IDS: Final = tuple(PacketId)
_DIGITS: Final = tuple(str(int(p)) for p in PacketId)


class Packet:
    """One Engine.IO packet; immutable, hashable, compared by value.

    :param packet_id: the packet type (an int is converted to :class:`PacketId`).
    :param data: ``str`` for text; ``bytes`` for binary (``bytearray`` and ``memoryview`` are
        copied to ``bytes``). Binary data is only meaningful on a MESSAGE.
    :raises ValueError: for an unknown packet type.
    :raises TypeError: for data that is neither text nor bytes-like.
    """

    __slots__ = ("data", "packet_id")
    packet_id: PacketId
    data: str | bytes

    def __init__(
        self, packet_id: PacketId | int, data: str | bytes | bytearray | memoryview = ""
    ) -> None:
        if type(packet_id) is not PacketId:
            packet_id = PacketId(packet_id)
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        elif not isinstance(data, (str, bytes)):
            raise TypeError(f"packet data must be str or bytes, not {type(data).__name__}")
        object.__setattr__(self, "packet_id", packet_id)
        object.__setattr__(self, "data", data)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Packet is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Packet is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packet):
            return NotImplemented
        return self.packet_id == other.packet_id and self.data == other.data

    def __hash__(self) -> int:
        return hash((self.packet_id, self.data))

    def __repr__(self) -> str:
        return f"Packet({self.packet_id.name}, {self.data!r})"

    @property
    def binary(self) -> bool:
        """``True`` when the data is bytes."""
        return isinstance(self.data, bytes)


def encode_text(packet: Packet) -> str:
    """Encode a packet in the text form (polling payloads, WebSocket text frames)."""
    data = packet.data
    if isinstance(data, bytes):
        return "b" + b64encode(data).decode("ascii")
    return _DIGITS[packet.packet_id] + data


def encode_ws(packet: Packet) -> str | bytes:
    """Encode a packet for one WebSocket frame: ``bytes`` means a binary frame."""
    data = packet.data
    if isinstance(data, bytes):
        return data
    return _DIGITS[packet.packet_id] + data


def decode_text(text: str) -> Packet:
    """Decode one packet from its text form.

    :raises ProtocolError: for an empty string, an unknown packet type or invalid base64.
    """
    if not text:
        raise ProtocolError("empty packet")
    head = text[0]
    if head == "b":
        try:
            return Packet(PacketId.MESSAGE, b64decode(text[1:], validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ProtocolError(f"invalid base64 in binary packet: {exc}") from exc
    index = ord(head) - 48
    if not 0 <= index <= 6:
        raise ProtocolError(f"unknown packet type {head!r}")
    return Packet(_IDS[index], text[1:])


def decode_binary(data: bytes) -> Packet:
    """Decode a binary WebSocket frame: always a binary MESSAGE."""
    return Packet(PacketId.MESSAGE, data)
