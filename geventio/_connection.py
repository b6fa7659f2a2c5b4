"""The sans-IO Engine.IO v4 client session.

:class:`Connection` holds every decision of the protocol: the handshake, the heartbeat deadline,
the outbox and its batching, the upgrade sub-machine and the close. It performs no I/O and reads
no clock: the caller feeds it received bytes and the current monotonic time, asks it what to send,
and reacts to the events it returns. It imports nothing from gevent, urllib3 or wsproto.

States (``Connection.state``), with the inputs that move between them::

    CONNECTING --open packet--> OPEN --close()--> CLOSING --finish_close()--> CLOSED
        any state --server CLOSE, ping timeout, lost transport, protocol error--> CLOSED

Upgrade sub-machine (``Connection.upgrade``), only while OPEN on polling::

    NONE --start_probe()--> PROBING --receive_probe("3probe")--> PAUSING
    PAUSING --(no GET and no POST in flight) finish_upgrade()--> NONE, transport "websocket"
    PROBING --probe_failed()--> NONE
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal

from geventio._handshake import Handshake, parse_handshake
from geventio._packet import Packet, PacketId, decode_binary, decode_text, encode_ws
from geventio._payload import MAX_PACKETS, SEPARATOR, encode_payload, iter_payload, take_batch
from geventio._reason import CloseReason
from geventio.exceptions import ConnectionClosed, EngineIOError, ProtocolError

__all__ = [
    "Closed",
    "Connection",
    "Event",
    "MessageReceived",
    "Opened",
    "PacketReceived",
    "State",
    "Upgrade",
]

TransportName = Literal["polling", "websocket"]
Frame = str | bytes
#: :meth:`Connection.feed_payload` hands over the events of at most this many packets at a time
BATCH_PACKETS: Final = 256


class State(Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Upgrade(Enum):
    NONE = "none"
    PROBING = "probing"
    PAUSING = "pausing"


# The main state machine as data: (state, input) -> next state. Inputs not listed are misuse.
_TRANSITIONS: Final[dict[tuple[State, str], State]] = {
    (State.CONNECTING, "open"): State.OPEN,
    (State.OPEN, "close"): State.CLOSING,
    (State.CONNECTING, "closed"): State.CLOSED,
    (State.OPEN, "closed"): State.CLOSED,
    (State.CLOSING, "closed"): State.CLOSED,
}


@dataclass(frozen=True, slots=True)
class Opened:
    handshake: Handshake


@dataclass(frozen=True, slots=True)
class PacketReceived:
    packet: Packet


@dataclass(frozen=True, slots=True)
class MessageReceived:
    data: str | bytes


@dataclass(frozen=True, slots=True)
class Closed:
    reason: CloseReason
    error: EngineIOError | None = None


Event = Opened | PacketReceived | MessageReceived | Closed

#: an idle session's PING, and its answer: made once (both immutable)
_PING_RECEIVED: Final = PacketReceived(Packet(PacketId.PING))
_PONG: Final = Packet(PacketId.PONG)


class Connection:
    """One client session, from the handshake to the close.

    :param transport: the transport the handshake happens on.
    :param max_packets: the most packets in one POST.
    """

    def __init__(self, transport: TransportName = "polling", *, max_packets: int = MAX_PACKETS):
        self.state = State.CONNECTING
        self.transport: TransportName = transport
        self.upgrade = Upgrade.NONE
        self.handshake: Handshake | None = None
        self.close_reason: CloseReason | None = None
        self._max_packets = max_packets
        self._outbox: list[Packet] = []  # a list: a deque costs 770 bytes per connection
        self._queued = 0  # bytes of data in the outbox, see queued_bytes
        self._last_pong: Packet | None = None  # see _pong
        self._deadline: float | None = None
        self._span = 0.0  # pingInterval + pingTimeout, once open
        self._get_in_flight = False
        self._post_in_flight = False

    # -- state ------------------------------------------------------------------------------

    def _move(self, event: str) -> None:
        try:
            self.state = _TRANSITIONS[(self.state, event)]
        except KeyError:
            raise RuntimeError(f"cannot {event} in state {self.state.value}") from None

    def _closed(self, reason: CloseReason, error: EngineIOError | None = None) -> list[Event]:
        if self.state is State.CLOSED:
            return []
        if self.state is State.CLOSING:
            # The client asked to close: whatever ends the session now (the server's CLOSE, the
            # end of the transport, python-engineio's empty answer to the last GET) completes it.
            reason, error = CloseReason.CLIENT_DISCONNECT, None
        self._move("closed")
        self.close_reason = reason
        self._deadline = None
        return [Closed(reason, error)]

    @property
    def next_deadline(self) -> float | None:
        """The monotonic time at which :meth:`tick` must run next, or ``None``."""
        return self._deadline

    @property
    def has_output(self) -> bool:
        """``True`` when packets wait in the outbox."""
        return bool(self._outbox)

    @property
    def queued_bytes(self) -> int:
        """Bytes of data waiting in the outbox (text counted in characters, plus one per packet).

        The client compares it with its send buffer limit to apply backpressure to senders.
        """
        return self._queued

    @property
    def flushed(self) -> bool:
        """``True`` when the outbox is empty and no POST is in flight."""
        return not self._outbox and not self._post_in_flight

    # -- input ------------------------------------------------------------------------------

    def receive_payload(self, body: bytes, now: float) -> list[Event]:
        """Feed the body of a polling GET (or of the handshake) at once.

        The packets before an invalid one are received; the invalid one closes the session.
        """
        events: list[Event] = []
        for batch in self.feed_payload(body, now):
            events += batch
        return events

    def feed_payload(
        self, body: bytes, now: float, *, max_packets: int = BATCH_PACKETS
    ) -> Iterator[list[Event]]:
        """Feed the body of a polling GET a batch at a time, decoding it as the batches are taken.

        Yields the events of up to ``max_packets`` packets per batch: the caller delivers them
        and may yield to other work before taking the next batch. Stops once the session is
        closed (by a packet, a fault, or by the caller meanwhile). The packets before an invalid
        one are received; the invalid one (see :func:`~geventio._payload.iter_payload`, which
        also bounds the control packets) closes the session with TRANSPORT_ERROR.
        """
        events: list[Event] = []
        count = 0
        receive, closed = self._receive_one, State.CLOSED
        try:
            for packet in iter_payload(body):
                if self.state is closed:
                    break
                events += receive(packet, now)
                count += 1
                if count == max_packets:
                    yield events
                    events, count = [], 0
        except ProtocolError as exc:  # from the payload or from a packet: the same close
            events += self._closed(CloseReason.TRANSPORT_ERROR, exc)
        if events:
            yield events

    def receive_frame(self, frame: Frame, now: float) -> list[Event]:
        """Feed one complete WebSocket message of the active transport (``bytes`` = binary)."""
        if frame == "2" and self.state is State.OPEN:  # a PING, what an idle session receives:
            self._deadline = now + self._span  # its short path, with nothing to decode
            self._pong("")
            return [_PING_RECEIVED]
        try:
            packet = decode_binary(frame) if isinstance(frame, bytes) else decode_text(frame)
        except ProtocolError as exc:
            return self._closed(CloseReason.TRANSPORT_ERROR, exc)
        return self._receive(packet, now)

    def _receive(self, packet: Packet, now: float) -> list[Event]:
        if self.state is State.CLOSED:
            return []
        try:
            return self._receive_one(packet, now)
        except ProtocolError as exc:
            return self._closed(CloseReason.TRANSPORT_ERROR, exc)

    def _receive_one(self, packet: Packet, now: float) -> list[Event]:
        pid = packet.packet_id
        if self.state is State.CONNECTING:
            if pid is not PacketId.OPEN or not isinstance(packet.data, str):
                raise ProtocolError(f"expected an open packet, got {pid.name}")
            self.handshake = parse_handshake(packet.data)
            self._move("open")
            self._reset_deadline(now)
            return [Opened(self.handshake)]
        if pid is PacketId.MESSAGE:
            return [PacketReceived(packet), MessageReceived(packet.data)]
        if pid is PacketId.PING:
            if self.state is State.OPEN:  # while closing, nothing may follow the CLOSE
                self._pong(packet.data)
            self._reset_deadline(now)
        elif pid is PacketId.CLOSE:
            return [PacketReceived(packet), *self._closed(CloseReason.SERVER_DISCONNECT)]
        elif pid in (PacketId.OPEN, PacketId.UPGRADE):
            raise ProtocolError(f"unexpected {pid.name} packet from the server")
        return [PacketReceived(packet)]  # PING, and the tolerated PONG and NOOP

    def _reset_deadline(self, now: float) -> None:
        assert self.handshake is not None
        self._span = self.handshake.ping_interval + self.handshake.ping_timeout
        self._deadline = now + self._span

    def tick(self, now: float) -> list[Event]:
        """Check the heartbeat: close with PING_TIMEOUT once no PING came in time."""
        if self._deadline is not None and now >= self._deadline:
            return self._closed(CloseReason.PING_TIMEOUT)
        return []

    def connection_lost(self, error: EngineIOError | None = None) -> list[Event]:
        """The active transport ended: TRANSPORT_CLOSE without an error, else TRANSPORT_ERROR."""
        if error is None:
            return self._closed(CloseReason.TRANSPORT_CLOSE)
        return self._closed(CloseReason.TRANSPORT_ERROR, error)

    # -- output -----------------------------------------------------------------------------

    def send(self, packet: Packet) -> None:
        """Queue a packet.

        Text holding the record separator U+001E is refused while the session is on polling
        (before an upgrade has completed): polling payloads are split on it, so the server would
        read forged packets. On WebSocket, where each message is its own frame, it is sent as is.
        The transport only ever changes from polling to WebSocket, so a packet accepted on
        WebSocket never travels over polling.

        :raises ConnectionClosed: once :meth:`close` was called or the session ended.
        :raises ValueError: for text that UTF-8 cannot encode (a lone surrogate), or text holding
            U+001E on polling.
        """
        if self.state is State.CLOSED or self.state is State.CLOSING:
            raise ConnectionClosed(self.close_reason or CloseReason.CLIENT_DISCONNECT)
        data = packet.data
        if isinstance(data, str):
            if not data.isascii():
                try:
                    data.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise ValueError(f"text is not encodable as UTF-8: {exc}") from None
            if self.transport == "polling" and SEPARATOR in data:
                raise ValueError(
                    "text holding U+001E (the polling record separator) cannot be sent over "
                    "polling: the server would split it into packets"
                )
        self._queue(packet)

    def _queue(self, packet: Packet) -> None:
        self._outbox.append(packet)
        self._queued += len(packet.data) + 1

    def _pong(self, data: str | bytes) -> None:
        """Queue the PONG answering a PING, at the front: it must not wait behind messages.

        One pending PONG answers any number of PINGs: while one still waits at the front of the
        outbox, it takes the latest PING's data instead of a second PONG being queued. A flood of
        PINGs thus costs O(1) each, and the outbox never holds more than one PONG of ours.
        """
        pong = Packet(PacketId.PONG, data) if data else _PONG
        outbox = self._outbox
        # ours, still waiting (a PONG the user queued is left alone)
        if outbox and outbox[0] is self._last_pong:
            self._queued += len(data) - len(outbox[0].data)
            outbox[0] = pong
        else:
            outbox.insert(0, pong)
            self._queued += len(data) + 1
        self._last_pong = pong

    def _taken(self, packets: list[Packet]) -> None:
        self._queued -= sum(len(p.data) + 1 for p in packets)

    def should_poll(self) -> bool:
        """``True`` when a polling GET should be started now."""
        return (
            self.state is State.OPEN
            and self.transport == "polling"
            and self.upgrade is not Upgrade.PAUSING
            and not self._get_in_flight
        )

    def poll_started(self) -> None:
        self._get_in_flight = True

    def poll_finished(self) -> None:
        self._get_in_flight = False

    def next_post(self) -> bytes | None:
        """The body of the next POST, or ``None`` when nothing may be posted now.

        A returned body is in flight until :meth:`post_finished`.
        """
        if (
            self.transport != "polling"
            or self._post_in_flight
            or self.upgrade is Upgrade.PAUSING
            or not self._outbox
            or self.handshake is None
        ):
            return None
        batch = take_batch(self._outbox, self.handshake.max_payload, self._max_packets)
        self._taken(batch)
        self._post_in_flight = True
        return encode_payload(batch)

    def post_finished(self) -> None:
        self._post_in_flight = False

    def next_frames(self) -> list[Frame]:
        """Every queued packet as WebSocket frames (when the active transport is WebSocket)."""
        if self.transport != "websocket" or not self._outbox:
            return []
        frames = [encode_ws(p) for p in self._outbox]
        self._outbox.clear()
        self._queued = 0
        return frames

    # -- upgrade ----------------------------------------------------------------------------

    def can_upgrade(self) -> bool:
        """``True`` when the session is open on polling and the server offers WebSocket."""
        return (
            self.state is State.OPEN
            and self.transport == "polling"
            and self.upgrade is Upgrade.NONE
            and self.handshake is not None
            and "websocket" in self.handshake.upgrades
        )

    def start_probe(self) -> Frame:
        """Begin the upgrade; returns the probe frame to send on the new WebSocket."""
        if not self.can_upgrade():
            raise RuntimeError("cannot start an upgrade now")
        self.upgrade = Upgrade.PROBING
        return encode_ws(Packet(PacketId.PING, "probe"))

    def receive_probe(self, frame: Frame) -> None:
        """Feed the answer to the probe; on success polling pauses.

        :raises ProtocolError: when the answer is not ``3probe`` (the upgrade is then abandoned).
        """
        if self.upgrade is not Upgrade.PROBING:
            raise RuntimeError("no probe in progress")
        if frame != "3probe":
            self.upgrade = Upgrade.NONE
            raise ProtocolError(f"unexpected answer to the probe: {frame[:100]!r}")
        self.upgrade = Upgrade.PAUSING if self.state is State.OPEN else Upgrade.NONE

    def probe_failed(self) -> None:
        """Abandon the upgrade; polling carries on."""
        self.upgrade = Upgrade.NONE

    @property
    def paused(self) -> bool:
        """``True`` when polling is paused and quiet: :meth:`finish_upgrade` may run."""
        return (
            self.upgrade is Upgrade.PAUSING and not self._get_in_flight and not self._post_in_flight
        )

    def finish_upgrade(self) -> list[Frame]:
        """Switch to WebSocket; returns the frames to send on it: UPGRADE, then the outbox."""
        if not self.paused or self.state not in (State.OPEN, State.CLOSING):
            raise RuntimeError("polling is not paused")
        self.upgrade = Upgrade.NONE
        self.transport = "websocket"
        return [encode_ws(Packet(PacketId.UPGRADE)), *self.next_frames()]

    # -- close ------------------------------------------------------------------------------

    def close(self) -> None:
        """Start a client disconnect: queue CLOSE after everything already queued.

        Idempotent; does nothing once closing or closed. Before the session is open it ends it.
        """
        if self.state is State.CONNECTING:
            self._closed(CloseReason.CLIENT_DISCONNECT)
        elif self.state is State.OPEN:
            self._move("close")
            self._queue(Packet(PacketId.CLOSE))
            if self.upgrade is Upgrade.PROBING:
                self.upgrade = Upgrade.NONE

    def finish_close(self, reason: CloseReason = CloseReason.CLIENT_DISCONNECT) -> list[Event]:
        """The I/O for the close is done (or abandoned): the session is CLOSED."""
        return self._closed(reason)
