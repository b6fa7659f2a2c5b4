"""The WebSocket fast path against wsproto alone: same messages, same bytes written, same errors.

The reference below is the read side as it was before the fast path (wsproto fed each piece
received, then ``WebSocketTransport._collect_events``), copied here so that it cannot drift with
the code under test. Hypothesis builds byte streams of valid and broken server frames and cuts
them at random points; :class:`Inbox` must give exactly what the reference gives.
"""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

from geventio._transports._frames import FrameParser, mask
from geventio._transports._frames import Ping as FastPing
from geventio._transports._inbox import BATCH, Inbox
from geventio.exceptions import ProtocolError

# -- building server frames, valid or not


def raw_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    key: bytes | None = None,
    form: str = "min",
    declared: int | None = None,
) -> bytes:
    """One frame as a server (or a broken one) would send it.

    ``form``: the length's encoding ("min", or "16"/"64" even where fewer bytes would do);
    ``declared``: a length to announce other than the payload's.
    """
    size = len(payload) if declared is None else declared
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    bit = 0x80 if key is not None else 0
    if form == "min" and size < 126:
        head += bytes([bit | size])
    elif form == "16" or (form == "min" and size < 1 << 16):
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if key is not None:
        return head + key + mask(key, payload)
    return head + payload


SIZES = [0, 1, 2, 124, 125, 126, 127, 300, 65535, 65536, 70000]
sized = st.sampled_from(SIZES)
texts = st.one_of(
    st.text(max_size=30),
    st.builds(lambda n, c: (c * n)[:n], sized, st.sampled_from(["a", "é", "日", "🎉"])),
)
blobs = st.one_of(
    st.binary(max_size=30),
    st.builds(lambda n: bytes(range(256)) * (n // 256) + bytes(n % 256), sized),
)
small = st.binary(max_size=125)


@st.composite
def bad_utf8(draw: st.DrawFn) -> bytes:
    text = draw(texts).encode()
    where = draw(st.integers(0, len(text)))
    junk = draw(
        st.sampled_from([b"\xff", b"\xc3", b"\xe6\x97", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80"])
    )
    return text[:where] + junk + text[where:]


@st.composite
def close_payload(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["empty", "one", "good", "badcode", "badreason"]))
    if kind == "empty":
        return b""
    if kind == "one":
        return b"\x03"
    code = draw(st.sampled_from([1000, 1001, 1011, 3000, 4999]))
    if kind == "badcode":
        code = draw(st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 2999, 5000]))
    reason = draw(st.text(max_size=20)).encode()
    if kind == "badreason":
        reason += b"\xff"
    return struct.pack("!H", code) + reason


@st.composite
def good_frame(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["text", "binary", "text", "binary", "ping"]))
    if kind == "text":
        return raw_frame(Opcode.TEXT, draw(texts).encode())
    if kind == "binary":
        return raw_frame(Opcode.BINARY, draw(blobs))
    return raw_frame(Opcode.PING, draw(small))


@st.composite
def any_frame(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(
            [
                "good",
                "good",
                "good",
                "pong",
                "close",
                "fragments",
                "continuation",
                "rsv",
                "masked",
                "opcode",
                "form",
                "msb",
                "utf8",
                "control126",
                "control_nofin",
            ]
        )
    )
    if kind == "good":
        return draw(good_frame())
    if kind == "pong":
        return raw_frame(Opcode.PONG, draw(small))
    if kind == "close":
        return raw_frame(Opcode.CLOSE, draw(close_payload()))
    if kind == "fragments":
        text = draw(st.booleans())
        parts = draw(st.lists(texts if text else blobs, min_size=1, max_size=3))
        out, opcode = b"", Opcode.TEXT if text else Opcode.BINARY
        for i, part in enumerate(parts):
            data = part.encode() if isinstance(part, str) else part
            out += raw_frame(
                opcode if i == 0 else Opcode.CONTINUATION, data, fin=i == len(parts) - 1
            )
            if draw(st.booleans()):
                out += draw(st.sampled_from([b"", raw_frame(Opcode.PING, b"mid")]))
        if draw(st.integers(0, 4)) == 0:  # a data frame where a continuation must come
            out = raw_frame(opcode, b"x", fin=False) + raw_frame(Opcode.TEXT, b"y")
        return out
    if kind == "continuation":
        return raw_frame(Opcode.CONTINUATION, draw(small))
    if kind == "rsv":
        return raw_frame(Opcode.TEXT, b"rsv", rsv=draw(st.sampled_from([0x10, 0x20, 0x40, 0x70])))
    if kind == "masked":
        return raw_frame(
            draw(st.sampled_from([Opcode.TEXT, Opcode.BINARY, Opcode.PING])),
            draw(small),
            key=os.urandom(4),
        )
    if kind == "opcode":
        return raw_frame(draw(st.sampled_from([3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])), b"??")
    if kind == "form":  # a length in more bytes than it needs
        payload = draw(st.sampled_from([b"", b"short", b"m" * 125, b"l" * 300, b"x" * 65535]))
        form = "64" if len(payload) > 125 else draw(st.sampled_from(["16", "64"]))
        return raw_frame(draw(st.sampled_from([Opcode.TEXT, Opcode.BINARY])), payload, form=form)
    if kind == "msb":
        return raw_frame(Opcode.BINARY, b"", form="64", declared=(1 << 63) | 70000)
    if kind == "utf8":
        return raw_frame(Opcode.TEXT, draw(bad_utf8()))
    if kind == "control126":  # a control frame over 125 bytes
        opcode = draw(st.sampled_from([Opcode.PING, Opcode.PONG, Opcode.CLOSE]))
        return raw_frame(opcode, b"\x03\xe8" + b"c" * draw(st.integers(124, 200)))
    return raw_frame(draw(st.sampled_from([Opcode.PING, Opcode.PONG])), b"nofin", fin=False)


@st.composite
def cut_stream(draw: st.DrawFn, frames: st.SearchStrategy[bytes]) -> tuple[list[bytes], int]:
    """The frames' bytes, maybe truncated, cut into pieces; and ``max_message_size``."""
    data = b"".join(draw(st.lists(frames, max_size=8)))
    if draw(st.integers(0, 3)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    how = draw(st.sampled_from(["random", "random", "whole", "trickle", "even"]))
    if how == "whole" or not data:
        pieces = [data] if data else []
    elif how == "trickle" and len(data) <= 3000:
        pieces = [data[i : i + 1] for i in range(len(data))]
    elif how == "even":
        step = draw(st.integers(1, 4096))
        pieces = [data[i : i + step] for i in range(0, len(data), step)]
    else:
        cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=12))))
        bounds = [0, *cuts, len(data)]
        pieces = [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    top = draw(st.sampled_from([1, 40, 130, 1000, 66000, 1 << 20]))
    return pieces, top


# -- the two readers, run the way WebSocketTransport._read runs them


@dataclass
class Outcome:
    messages: list[str | bytes] = field(default_factory=list)
    written: bytes = b""
    error: tuple[type[Exception], str] | None = None
    eof: bool = False

    def summary(self) -> tuple[object, ...]:
        return (self.messages, decode_client_frames(self.written), self.error, self.eof)


def decode_client_frames(data: bytes) -> list[tuple[int, object]]:
    """What a server makes of the bytes the client wrote (PONGs, a CLOSE): their keys differ."""
    proto = FrameProtocol(client=False, extensions=[])
    proto.receive_bytes(data)
    out: list[tuple[int, object]] = []
    try:
        out += [(frame.opcode, frame.payload) for frame in proto.received_frames()]
    except ParseFailed as exc:  # pragma: no cover - both sides write with wsproto
        out.append((-1, str(exc)))
    return out


class Reference:
    """wsproto alone, and the transport's ``_collect_events`` as it was (26b1003).

    One change: each event is handled before wsproto parses the next. The transport took a
    batch of 256 events first, so wsproto could take a CLOSE before the PING ahead of it was
    answered, and the PONG then failed (``LocalProtocolError``); ``Inbox`` fixed that too.
    """

    def __init__(self, top: int) -> None:
        self.ws = Connection(ConnectionType.CLIENT)
        self.max = top
        self.parts: list[str] | list[bytes] = []
        self.size = 0
        self.out = Outcome()

    def run(self, pieces: Iterable[bytes], end: bool) -> Outcome:
        for piece in pieces:
            if self.out.error or self.out.eof:
                break
            self.ws.receive_data(piece)
            try:
                self.collect(self.ws.events())
            except ProtocolError as exc:
                self.out.error = (type(exc), str(exc))
        if end and not (self.out.error or self.out.eof):
            self.out.eof = True
        return self.out

    def collect(self, events: Iterable[object]) -> None:
        for event in events:
            if isinstance(event, Message):
                self.size += len(event.data)
                if self.size > self.max:
                    raise ProtocolError(f"message larger than {self.max} bytes")
                self.parts.append(event.data)
                if event.message_finished:
                    parts, self.parts, self.size = self.parts, [], 0
                    if isinstance(event, TextMessage):
                        self.out.messages.append("".join(parts))  # type: ignore[arg-type]
                    else:
                        assert isinstance(event, BytesMessage)
                        self.out.messages.append(b"".join(parts))  # type: ignore[arg-type]
            elif isinstance(event, Ping):
                self.out.written += self.ws.send(event.response())
            elif isinstance(event, CloseConnection):
                if self.ws.state is ConnectionState.OPEN:
                    self.out.written += self.ws.send(CloseConnection(event.code, event.reason))
                    raise ProtocolError(f"invalid WebSocket data: {event.reason} ({event.code})")
                if self.ws.state is ConnectionState.REMOTE_CLOSING:
                    self.out.written += self.ws.send(event.response())
                self.out.eof = True


def run_inbox(
    pieces: Iterable[bytes], top: int, end: bool, *, fast: bool = True
) -> tuple[Outcome, Inbox]:
    # the fast path as the transport runs it: wsproto's connection made once needed
    inbox = Inbox(None if fast else Connection(ConnectionType.CLIENT), top, fast=fast)
    out = Outcome()

    def drain() -> None:
        while inbox.error is None and not inbox.eof and inbox.pending:
            written, _ = inbox.step()
            out.written += written

    def take() -> None:  # as the transport's reader takes them, the oldest first
        out.messages += inbox.messages
        inbox.messages.clear()

    drain()
    for piece in [*pieces, *([b""] if end else [])]:
        take()
        if inbox.error is not None or inbox.eof:
            break
        # what the transport does once every message was taken and nothing is pending: a lone
        # short text frame comes back at once, anything else is fed
        assert not inbox.pending
        text = inbox.take(piece)
        if text is not None:
            out.messages.append(text)
        drain()
    take()
    out.error = None if inbox.error is None else (type(inbox.error), str(inbox.error))
    out.eof = inbox.eof
    return out, inbox


# -- the differential tests

broken = settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@broken
@given(cut_stream(any_frame()))
@example(([raw_frame(Opcode.TEXT, b"ok"), raw_frame(Opcode.TEXT, b"a\xffb")[:4], b"\xffb"], 100))
@example(([raw_frame(Opcode.BINARY, b"z" * 300)], 299))
@example(([raw_frame(Opcode.TEXT, "é".encode() * 60)], 100))  # 120 bytes, 60 characters
@example(([raw_frame(Opcode.TEXT, b"2"), raw_frame(Opcode.TEXT, b"2")], 100))  # lone PINGs
@example(([raw_frame(Opcode.TEXT, b"4" * 125), raw_frame(Opcode.TEXT, b"4" * 41)], 40))
@example(([raw_frame(Opcode.TEXT, b"2"), raw_frame(Opcode.TEXT, b"\xff")], 100))
@example(([raw_frame(Opcode.TEXT, b"2", key=b"abcd"), raw_frame(Opcode.TEXT, b"")], 100))
@example(([raw_frame(Opcode.BINARY, b"....")[:2], raw_frame(Opcode.TEXT, b"ab")], 100))
def test_the_fast_path_gives_what_wsproto_alone_gives(case: tuple[list[bytes], int]) -> None:
    pieces, top = case
    expected = Reference(top).run(pieces, end=True).summary()
    got, _ = run_inbox(pieces, top, end=True)
    assert got.summary() == expected
    slow, _ = run_inbox(pieces, top, end=True, fast=False)
    assert slow.summary() == expected  # the read side moved into Inbox unchanged


@broken
@given(cut_stream(any_frame()))
@example(([raw_frame(Opcode.TEXT, b"ok") + raw_frame(Opcode.TEXT, b"a\xffbcdef")[:5]], 100))
def test_before_the_end_only_an_incomplete_text_frame_may_be_judged_later(
    case: tuple[list[bytes], int],
) -> None:
    """The fast path checks UTF-8 once a frame is whole (or at the end): wsproto alone may
    report bad UTF-8 in a frame still arriving. Nothing else may differ, and the end settles
    it (the test above)."""
    pieces, top = case
    ref = Reference(top).run(pieces, end=False)
    got, inbox = run_inbox(pieces, top, end=False)
    assert got.messages == ref.messages
    if got.error == ref.error:
        assert decode_client_frames(got.written) == decode_client_frames(ref.written)
        assert got.eof == ref.eof
    else:
        assert got.error is None
        assert inbox.fast
        assert ref.error is not None
        assert "'utf-8' codec" in ref.error[1]
        assert decode_client_frames(got.written) == decode_client_frames(ref.written)[:-1]


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cut_stream(good_frame()))
def test_plain_frames_never_leave_the_fast_path(case: tuple[list[bytes], int]) -> None:
    pieces, _ = case
    top = 1 << 20
    got, inbox = run_inbox(pieces, top, end=False)
    assert inbox.fast
    assert got.summary() == Reference(top).run(pieces, end=False).summary()


def test_after_a_fallback_wsproto_parses_everything_that_follows() -> None:
    stream = [
        raw_frame(Opcode.TEXT, b"fast"),
        raw_frame(Opcode.TEXT, b"frag", fin=False) + raw_frame(Opcode.CONTINUATION, b"ment"),
        raw_frame(Opcode.BINARY, b"\x01") + raw_frame(Opcode.PING, b"p"),
    ]
    got, inbox = run_inbox(stream, 100, end=False)
    assert not inbox.fast
    assert got.messages == ["fast", "fragment", b"\x01"]
    assert decode_client_frames(got.written) == [(Opcode.PONG, b"p")]


# -- the parser's own promises


def test_a_trickled_frame_is_parsed_once_when_whole() -> None:
    """One byte at a time: the parser is ready (and re-reads its buffer) only when the next
    step can go on: the 2-byte header, the 8-byte length, then the whole frame."""
    frame = raw_frame(Opcode.BINARY, b"t" * 70000)
    parser = FrameParser(1 << 20)
    ready = 0
    items = []
    for i in range(len(frame)):
        parser.feed(frame[i : i + 1])
        if parser.ready:
            ready += 1
            items += parser.parse(BATCH)
    assert items == [b"t" * 70000]
    assert ready == 3


def test_an_oversized_frame_falls_back_at_its_header() -> None:
    """Nothing of a frame over max_message_size is buffered: wsproto has it from its header."""
    parser = FrameParser(1000)
    header = raw_frame(Opcode.BINARY, b"", declared=1001)
    parser.feed(raw_frame(Opcode.TEXT, b"before") + header)
    assert parser.parse(BATCH) == ["before"]
    assert parser.fallen_back
    assert not parser.ready
    assert parser.take_handoff() == [header]
    parser.feed(b"more")
    assert parser.take_handoff() == [b"more"]


def test_the_pieces_reach_wsproto_as_they_were_received() -> None:
    frame = raw_frame(Opcode.TEXT, b"abc\xffdef")
    parser = FrameParser(100)
    parser.feed(raw_frame(Opcode.TEXT, b"x") + frame[:3])
    assert parser.parse(BATCH) == ["x"]
    parser.feed(frame[3:6])
    parser.feed(frame[6:])
    assert parser.parse(BATCH) == []
    assert parser.take_handoff() == [frame[:3], frame[3:6], frame[6:]]


def test_pings_are_answered_in_order_with_the_messages() -> None:
    stream = (
        raw_frame(Opcode.TEXT, b"a") + raw_frame(Opcode.PING, b"1") + raw_frame(Opcode.PING, b"")
    )
    parser = FrameParser(100)
    parser.feed(stream)
    assert parser.parse(BATCH) == ["a", FastPing(b"1"), FastPing(b"")]
    assert parser.pings == 2


def test_a_batch_stops_at_the_limit_and_resumes() -> None:
    parser = FrameParser(100)
    parser.feed(b"".join(raw_frame(Opcode.BINARY, bytes([i % 256])) for i in range(600)))
    sizes = []
    while parser.ready:
        sizes.append(len(parser.parse(BATCH)))
    assert sizes == [256, 256, 88]


def test_abandon_hands_over_what_wsproto_has_not_seen_yet() -> None:
    """The close handshake feeds wsproto itself: it gets the incomplete frame first."""
    partial = raw_frame(Opcode.TEXT, b"0123456789")[:5]
    inbox = Inbox(None, 100)
    inbox.feed(raw_frame(Opcode.TEXT, b"done") + partial)
    while inbox.pending:
        inbox.step()
    assert inbox.messages == ["done"]
    assert inbox.abandon() == [partial]
    assert not inbox.fast
    inbox.feed(b"later")
    assert inbox.abandon() == [b"later"]


def made(inbox: Inbox) -> bool:
    """Whether the inbox made wsproto's connection yet."""
    return inbox.wsproto is not None


def test_wsproto_s_connection_is_made_only_once_needed() -> None:
    """Plain frames (messages, PINGs answered) need no wsproto connection; a fallback does."""
    inbox = Inbox(None, 100)
    inbox.feed(raw_frame(Opcode.TEXT, b"one") + raw_frame(Opcode.BINARY, b"two"))
    assert inbox.take(raw_frame(Opcode.TEXT, b"2")) is None  # messages wait: it was fed
    while inbox.pending:
        inbox.step()
    assert inbox.messages == ["one", b"two", "2"]
    inbox.messages.clear()
    assert inbox.take(raw_frame(Opcode.TEXT, b"2")) == "2"
    assert not made(inbox)
    inbox.feed(raw_frame(Opcode.PING, b"p"))
    written, _ = inbox.step()  # the PONG is wsproto's to build
    assert decode_client_frames(written) == [(Opcode.PONG, b"p")]
    assert made(inbox)
    assert inbox.conn.state is ConnectionState.OPEN
    fallen = Inbox(None, 100)
    fallen.feed(raw_frame(Opcode.TEXT, b"ab", fin=False) + raw_frame(Opcode.CONTINUATION, b"c"))
    while fallen.pending:
        fallen.step()
    assert fallen.messages == ["abc"]
    assert made(fallen)
