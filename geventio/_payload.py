"""Polling payloads (sans-IO): packets joined by the record separator ``\\x1e``, and batching.

A POST carries one payload. :func:`take_batch` chooses how many queued packets go into it: no more
than ``max_packets`` (python-engineio servers drop larger POSTs yet answer 200) and no more than
``max_payload`` bytes once encoded; a single packet larger than ``max_payload`` still goes, alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from geventio._packet import Packet, PacketId, decode_text, encode_text
from geventio.exceptions import ProtocolError

__all__ = [
    "SEPARATOR",
    "encode_payload",
    "encoded_size",
    "iter_payload",
    "take_batch",
]

SEPARATOR = "\x1e"
#: The largest number of packets in one POST that every server accepts.
MAX_PACKETS = 16
#: The most PING, PONG and NOOP packets one payload may hold. A real server sends a handful (a
#: PING, python-engineio's NOOP during an upgrade); this bound is a thousand times beyond any of
#: them and only ends a flood that would otherwise cost seconds of CPU per poll answer.
MAX_CONTROL_PACKETS: Final = 1_000_000
_CONTROL: Final = frozenset((PacketId.PING, PacketId.PONG, PacketId.NOOP))
_WINDOW: Final = 4096  # characters of a payload split at once


def encode_payload(packets: Iterable[Packet]) -> bytes:
    """Encode packets as one polling payload (UTF-8 bytes)."""
    return SEPARATOR.join([encode_text(p) for p in packets]).encode("utf-8")


def iter_payload(body: bytes | str, max_control: int = MAX_CONTROL_PACKETS) -> Iterator[Packet]:
    """Decode a polling payload lazily, one packet at a time.

    Yields the valid packets in order, then raises at the first fault: the packets before it
    (and before the packet holding the first invalid UTF-8 byte) are all yielded first. It never
    builds the list of packets, so its memory does not grow with their number.

    :param max_control: the most PING, PONG and NOOP packets accepted in the payload.
    :raises ProtocolError: for invalid UTF-8, an empty payload, an invalid packet, or more than
        ``max_control`` control packets.
    """
    error: ProtocolError | None = None
    if isinstance(body, str):
        text = body
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            error = ProtocolError(f"payload is not valid UTF-8: {exc}")
            # the packets that end before the bad byte are whole and valid
            text = body[: exc.start].decode("utf-8").rpartition(SEPARATOR)[0]
            if not text:
                raise error from None
    if not text:
        raise ProtocolError("empty payload")
    control = 0
    message = PacketId.MESSAGE
    for window in _windows(text):
        for packet in map(decode_text, window.split(SEPARATOR)):
            if packet.packet_id is not message and packet.packet_id in _CONTROL:
                control += 1
                if control > max_control:
                    raise ProtocolError(f"more than {max_control} control packets in one payload")
            yield packet
    if error is not None:
        raise error


def _windows(text: str) -> Iterator[str]:
    """``text`` cut at separators into pieces of about :data:`_WINDOW` characters (or one
    longer packet): each is split at C speed, and no list holds the packets of the whole text."""
    start, end = 0, len(text)
    while end - start > _WINDOW:
        cut = text.rfind(SEPARATOR, start, start + _WINDOW)
        if cut == -1:  # a packet longer than the window: up to its end
            cut = text.find(SEPARATOR, start + _WINDOW)
            if cut == -1:
                break
        yield text[start:cut]
        start = cut + 1
    yield text[start:] if start else text


def encoded_size(packet: Packet) -> int:
    """The exact size in bytes of a packet's text form (base64 counts 4 bytes for every 3)."""
    data = packet.data
    if isinstance(data, bytes):
        return 1 + 4 * ((len(data) + 2) // 3)
    if data.isascii():
        return 1 + len(data)
    return 1 + len(data.encode("utf-8"))


def take_batch(
    queue: list[Packet], max_payload: int, max_packets: int = MAX_PACKETS
) -> list[Packet]:
    """Remove from the front of ``queue`` the packets for one payload and return them, in order.

    Returns an empty list only when the queue is empty. The first packet is always taken.
    """
    count = 0
    size = 0
    for packet in queue:
        if count == max_packets:
            break
        cost = encoded_size(packet) + (1 if count else 0)
        if count and size + cost > max_payload:
            break
        count += 1
        size += cost
    batch = queue[:count]
    del queue[:count]
    return batch
