"""The WebSocket fast path: plain server frames parsed, and client frames built, without wsproto.

No I/O and no gevent here. :class:`FrameParser` takes the bytes a client receives and returns
what it can parse on the fast path alone: whole messages in one unfragmented frame (FIN set, text
or binary, no reserved bit, not masked, a minimal length within ``max_message_size``, text that is
valid UTF-8) and PINGs of at most 125 bytes. Anything else (CLOSE, PONG, a fragment, a reserved
bit, a masked frame, a bad opcode or length, an oversized frame, invalid UTF-8, ...) makes it *fall
back* for good: that frame's first byte and everything after it are handed over, cut as they were
received, for wsproto to judge (see :class:`geventio._transports._inbox.Inbox`). wsproto then
sees exactly the pieces it would have seen alone, so it gives the same events and the same errors.
One difference in time, none in result: invalid UTF-8 in a text frame still arriving is found once
the frame is whole (or once the peer closed, when the frame goes to wsproto), where wsproto alone
may find it in the part already received.

:func:`encode_frames` builds the client's data frames: FIN, the opcode, a fresh random masking key
per frame (RFC 6455, section 5.3) from :class:`KeyPool`: a lone frame's key from a pool of
``os.urandom`` bytes (one ``getrandom`` per 1024 keys, not one per write; emptied in a forked
child, so that parent and child never use the same keys).
"""

from __future__ import annotations

import functools
import os
import struct
import sys
from collections import deque
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Final, NamedTuple

__all__ = [
    "KEY_POOL",
    "FrameParser",
    "Item",
    "KeyPool",
    "Ping",
    "encode_frames",
    "mask",
    "mask_keys",
]

#: the first byte of the frames of the fast path: FIN, no reserved bit, and the opcode
_TEXT: Final = 0x81
_BINARY: Final = 0x82
_PING: Final = 0x89
_NEVER: Final = sys.maxsize  # what ``_need`` is once fallen back: never ready again
_HEAD16 = struct.Struct("!BBH").pack
_HEAD64 = struct.Struct("!BBQ").pack
_ZEROS6, _ZEROS8, _ZEROS = bytes(6), bytes(8), bytes(14)  # under a header and its key
#: from this payload size on, masking by translation beats an integer XOR (1.7 ns a byte, not 14)
_LARGE: Final = 1024
#: bytes of masking keys drawn from ``os.urandom`` at a time (1024 keys)
KEY_POOL: Final = 4096


class Ping(NamedTuple):
    """A PING the server sent (payload at most 125 bytes): answer it with a PONG."""

    payload: bytes


Item = str | bytes | Ping


class FrameParser:
    """Parses the plain frames a server sends; falls back to wsproto for anything else.

    Feed it the bytes received (:meth:`feed`), then :meth:`parse` a batch at a time while it is
    :attr:`ready`. Once :attr:`fallen_back`, :meth:`take_handoff` gives the bytes that wsproto
    must parse from then on. A frame not complete yet stays buffered: at most
    ``max_message_size`` plus its header, as the received pieces (it is parsed once, when the
    bytes it announced are all there, however they trickle in).
    """

    __slots__ = ("_buf", "_cuts", "_extra", "_handoff", "_have", "_max", "_need", "_pos", "pings")

    def __init__(self, max_message_size: int) -> None:
        self._max = max_message_size
        self._buf = b""  # the bytes being parsed, from _pos on
        self._pos = 0
        self._cuts: Sequence[int] = ()  # offsets in _buf where another received piece began
        self._extra: list[bytes] | None = None  # pieces received since, not joined yet
        self._have = 0  # unparsed bytes in all
        self._need = 2  # unparsed bytes the next frame needs before a parse can go on
        self._handoff: list[bytes] | None = None  # for wsproto, once fallen back
        #: how many of the items the last :meth:`parse` returned are :class:`Ping`
        self.pings = 0

    @property
    def ready(self) -> bool:
        """``True`` when :meth:`parse` can make progress (never once fallen back)."""
        return self._have >= self._need

    @property
    def fallen_back(self) -> bool:
        """``True`` once a frame off the fast path was met: everything goes to wsproto."""
        return self._handoff is not None

    def feed(self, data: bytes) -> None:
        """Take bytes received (not empty); once fallen back, they go to the handoff."""
        if self._handoff is not None:
            self._handoff.append(data)
        elif not self._have:
            self._buf, self._pos, self._cuts, self._have = data, 0, (), len(data)
        else:
            if self._extra is None:
                self._extra = []
            self._extra.append(data)
            self._have += len(data)

    def lone_text(self, data: bytes) -> str | None:
        """The text of ``data`` when nothing is buffered and ``data`` is exactly one whole short
        text frame (what an idle connection receives: a PING, a small message), else ``None``,
        and nothing happened: :meth:`feed` it then.

        The same judgement as :meth:`parse` (FIN, no reserved bit, unmasked, a 7-bit length
        within ``max_message_size``, valid UTF-8), without the buffer's bookkeeping.
        """
        size = len(data) - 2
        if (
            0 <= size < 126
            and not self._have
            and self._handoff is None
            and size <= self._max
            and data[0] == _TEXT
            and data[1] == size  # (a set mask bit would make it larger than 125)
        ):
            try:
                return data[2:].decode()
            except UnicodeDecodeError:
                return None
        return None

    def take_handoff(self) -> list[bytes]:
        """The bytes wsproto must parse, in order, as received; empty before the fallback."""
        handoff = self._handoff
        if not handoff:
            return []
        self._handoff = []
        return handoff

    def finish(self) -> list[bytes]:
        """Fall back now (the peer closed, or the connection is closing): the handoff with the
        incomplete frame and what followed it, for wsproto to judge."""
        if self._handoff is None:
            self._fall_back(self._pos)
        return self.take_handoff()

    def parse(self, limit: int) -> list[Item]:
        """Up to ``limit`` complete items, in order: messages (``str`` for text) and PINGs.

        Stops early at a frame not complete yet, or at one off the fast path (and falls back
        there). Never raises: a frame that breaks the protocol is wsproto's to report.
        """
        out: list[Item] = []
        self.pings = 0
        if self._have < self._need:
            return out
        if self._extra is not None:
            self._join()
        buf, pos, top = self._buf, self._pos, self._max
        n = len(buf)
        append = out.append
        need = 0  # 0: stopped at the limit, or every byte parsed
        fast = True
        while len(out) < limit:
            left = n - pos
            if left < 2:
                need = 2 if left else 0
                break
            b0 = buf[pos]
            b1 = buf[pos + 1]
            # decide on the first two bytes whatever wsproto decides on them: wait only where
            # it waits too (the extended length of a data frame)
            if b0 in (_TEXT, _BINARY):
                if b1 < 126:
                    length = b1
                    start = pos + 2
                elif b1 == 126:
                    if left < 4:
                        need = 4
                        break
                    length = buf[pos + 2] << 8 | buf[pos + 3]
                    start = pos + 4
                    fast = length > 125  # wsproto refuses a length that 7 bits could hold
                elif b1 == 127:
                    if left < 10:
                        need = 10
                        break
                    length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                    start = pos + 10
                    fast = 0xFFFF < length < 1 << 63  # minimal, and the top bit clear
                else:
                    fast = False  # masked: a server must not mask
                fast = fast and length <= top
            elif b0 == _PING and b1 < 126:
                length = b1
                start = pos + 2
            else:
                fast = False
            if not fast:
                break
            end = start + length
            if end > n:
                need = end - pos
                break
            if b0 == _TEXT:
                try:
                    append(buf[start:end].decode())
                except UnicodeDecodeError:
                    fast = False
                    break
            elif b0 == _BINARY:
                append(buf[start:end])
            else:
                append(Ping(buf[start:end]))
                self.pings += 1
            pos = end
        if not fast:
            self._fall_back(pos)
        elif pos == n:
            self._buf, self._pos, self._cuts, self._have, self._need = b"", 0, (), 0, 2
        else:
            self._pos, self._have, self._need = pos, n - pos, max(need, 2)
            if need:  # keep the frame not complete yet, not the whole piece it came in
                self._compact()
        return out

    def _compact(self) -> None:
        pos = self._pos
        if pos:
            self._cuts = [c - pos for c in self._cuts if c > pos]
            self._buf, self._pos = self._buf[pos:], 0

    def _join(self) -> None:
        """One buffer of the unparsed bytes, remembering where each received piece began."""
        assert self._extra is not None
        pos, extra = self._pos, self._extra
        cuts = [c - pos for c in self._cuts if c > pos]
        at = len(self._buf) - pos
        for piece in extra:
            cuts.append(at)
            at += len(piece)
        self._buf = b"".join([self._buf[pos:], *extra])
        self._pos, self._cuts, self._extra = 0, cuts, None

    def _fall_back(self, pos: int) -> None:
        """Hand the bytes from ``pos`` on to wsproto, cut as they were received."""
        buf = self._buf
        bounds = [pos, *[c for c in self._cuts if c > pos], len(buf)]
        pieces = [buf[a:b] for a, b in pairwise(bounds) if b > a]
        self._handoff = [*(self._handoff or ()), *pieces, *(self._extra or ())]
        self._buf, self._pos, self._cuts, self._extra = b"", 0, (), None
        self._have, self._need = 0, _NEVER


def mask(key: bytes, payload: bytes) -> bytes:
    """``payload`` XOR-ed with the 4-byte ``key`` repeated (RFC 6455, section 5.3)."""
    size = len(payload)
    if size >= _LARGE:  # four translations, as wsproto does: faster on a long payload
        data = bytearray(payload)
        for i in range(4):
            data[i::4] = data[i::4].translate(_xor_table(key[i]))
        return bytes(data)
    if not size:
        return b""
    pad = (key * ((size + 3) >> 2))[:size]
    little = int.from_bytes(payload, "little") ^ int.from_bytes(pad, "little")
    return little.to_bytes(size, "little")


@functools.cache
def _xor_table(byte: int) -> bytes:
    return bytes(i ^ byte for i in range(256))


class KeyPool:
    """Unpredictable bytes for masking keys, from ``source`` (``os.urandom``).

    A batch of keys is one call of ``source``; one key (``size`` 4, a write of one frame) comes
    from a pool refilled :data:`KEY_POOL` bytes at a time, each key handed out once. ``popleft``
    and ``extend`` are atomic, so two threads never take the same key.
    """

    __slots__ = ("_keys", "_source")

    def __init__(self, source: Callable[[int], bytes] = os.urandom) -> None:
        self._source = source
        self._keys: deque[bytes] = deque()  # the keys not used yet, 4 bytes each

    def take(self, size: int) -> bytes:
        """``size`` bytes of keys; never blocks on I/O."""
        if size != 4:
            return self._source(size)
        try:
            return self._keys.popleft()
        except IndexError:
            fresh = self._source(KEY_POOL)
            self._keys.extend([fresh[i : i + 4] for i in range(4, KEY_POOL, 4)])
            return fresh[:4]

    def clear(self) -> None:
        """Forget the keys not used yet (a forked child must not use its parent's)."""
        self._keys.clear()


#: the process' pool (1024 keys: about 45 KiB), emptied in a forked child, so that parent and
#: child never use the same keys
_POOL = KeyPool()
mask_keys: Final = _POOL.take
os.register_at_fork(after_in_child=_POOL.clear)


def encode_frames(
    messages: Sequence[str | bytes], urandom: Callable[[int], bytes] = mask_keys
) -> bytes:
    """The client frames of ``messages``, one unfragmented frame each (text for ``str``).

    Each frame is masked with its own key, unpredictable (from ``urandom``, one call for the
    batch). The frames are masked together, in one XOR of two big integers: their bytes, and the
    keys repeated over each payload (zeros under the headers and keys); a payload of
    :data:`_LARGE` bytes or more is masked apart (:func:`mask`). Never blocks, never raises for
    ``str`` or ``bytes``.
    """
    keys = urandom(4 * len(messages))
    if len(messages) == 1 and type(message := messages[0]) is str and len(message) < 126:
        # one short text frame (a PONG, a small message): no lists, one XOR
        payload = message.encode()
        size = len(payload)
        if size < 126:
            under = (keys * ((size + 3) >> 2))[:size]
            masked = int.from_bytes(payload, "little") ^ int.from_bytes(under, "little")
            return bytes((_TEXT, 0x80 | size)) + keys + masked.to_bytes(size, "little")
    out: list[bytes] = []
    frames: list[bytes] = []
    pads: list[bytes] = []
    frame = frames.append
    pad = pads.append
    for i, message in enumerate(messages):
        if isinstance(message, str):
            opcode, payload = _TEXT, message.encode()
        else:
            opcode, payload = _BINARY, message
        size = len(payload)
        if size < 126:
            frame(bytes((opcode, 0x80 | size)))
            pad(_ZEROS6)
        elif size <= 0xFFFF:
            frame(_HEAD16(opcode, 0x80 | 126, size))
            pad(_ZEROS8)
        else:
            frame(_HEAD64(opcode, 0x80 | 127, size))
            pad(_ZEROS)
        key = keys[4 * i : 4 * i + 4]
        frame(key)
        if size < _LARGE:
            frame(payload)
            pad((key * ((size + 3) >> 2))[:size])
        else:  # masked apart, the frames before it in one piece
            out.append(_xor(frames, pads))
            frames.clear()
            pads.clear()
            out.append(mask(key, payload))
    out.append(_xor(frames, pads))
    return b"".join(out)


def _xor(frames: list[bytes], pads: list[bytes]) -> bytes:
    """The bytes of ``frames`` XOR-ed with those of ``pads`` (as long), in one integer XOR."""
    data = b"".join(frames)
    masked = int.from_bytes(data, "little") ^ int.from_bytes(b"".join(pads), "little")
    return masked.to_bytes(len(data), "little")
