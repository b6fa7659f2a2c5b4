"""The Socket.IO v5 state of one Engine.IO session, sans-IO: namespaces, ack ids, early events.

:class:`Protocol` takes the Engine.IO messages the server sent and gives back :data:`Event`
values; the calls that send something give back the Engine.IO messages to send. It imports no
gevent, keeps no clock, and calls nothing: the client in :mod:`geventio.socketio._client` owns
the greenlets, the handlers and the waiting. One ``Protocol`` lives as long as one Engine.IO
session; a reconnection starts a new one.

A namespace moves through these states::

    (unknown) --join()--> JOINING --CONNECT--> CONNECTED --DISCONNECT / leave()--> LEFT
                             |  \\--CONNECT_ERROR--> LEFT
                             \\--leave()--> LEFT

Packets for a namespace the client never joined are a :class:`ProtocolError`; packets for a
namespace it left are dropped (they may have crossed the client's DISCONNECT on the wire).
Events that arrive while the namespace is JOINING (python-socketio sends what a connect handler
emits before the CONNECT) are kept and returned, in order, right after its :class:`Connected`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from geventio.socketio._packet import Decoder, Packet, PacketType, encode, encode_event
from geventio.socketio.exceptions import ProtocolError

__all__ = ["Acked", "Connected", "Event", "Kicked", "Protocol", "Received", "Refused"]

Message = str | bytes

#: Event names a server may not send (socket.io-parser refuses them too): they would reach the
#: client's own connect and disconnect handlers.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
#: Events kept per namespace while its CONNECT is awaited; a server that sends more is broken.
MAX_EARLY_EVENTS = 1024


@dataclass(frozen=True, slots=True)
class Connected:
    """The server accepted the namespace; ``sid`` is the namespace's session id."""

    namespace: str
    sid: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The server refused the namespace (CONNECT_ERROR); ``data`` is what it sent."""

    namespace: str
    data: Any


@dataclass(frozen=True, slots=True)
class Kicked:
    """The server disconnected the namespace (a DISCONNECT packet)."""

    namespace: str


@dataclass(frozen=True, slots=True)
class Received:
    """An event; ``id`` is set when the server asks for an ack."""

    namespace: str
    event: str
    args: list[Any]
    id: int | None


@dataclass(frozen=True, slots=True)
class Acked:
    """The server acknowledged an emit; ``token`` is what the emit registered."""

    namespace: str
    token: Any
    args: list[Any]


Event = Connected | Refused | Kicked | Received | Acked


class _Ns(enum.Enum):
    JOINING = "joining"
    CONNECTED = "connected"
    LEFT = "left"


class Protocol:
    """Socket.IO v5 over one Engine.IO session.

    :param max_attachment_bytes: the bound on the attachments of one binary packet.
    """

    def __init__(self, max_attachment_bytes: int = 16 * 1024 * 1024) -> None:
        self._decoder = Decoder(max_attachment_bytes=max_attachment_bytes)
        self._states: dict[str, _Ns] = {}
        self._sids: dict[str, str] = {}
        self._early: dict[str, list[Received]] = {}
        self._next_id: dict[str, int] = {}
        self._pending: dict[tuple[str, int], Any] = {}

    # -- what the client asks ---------------------------------------------------------------

    @property
    def namespaces(self) -> dict[str, str]:
        """Connected namespaces and their sids (a copy)."""
        return dict(self._sids)

    def connected(self, namespace: str) -> bool:
        return self._states.get(namespace) is _Ns.CONNECTED

    def joining(self) -> list[str]:
        """Namespaces whose CONNECT is still awaited."""
        return [ns for ns, state in self._states.items() if state is _Ns.JOINING]

    def join(self, namespace: str, auth: Any) -> list[Message]:
        """The CONNECT for ``namespace`` (with ``auth`` when not ``None``)."""
        self._states[namespace] = _Ns.JOINING
        self._early[namespace] = []
        return encode(Packet(PacketType.CONNECT, namespace, auth))

    def leave(self, namespace: str) -> list[Message]:
        """The DISCONNECT for a namespace that is connected or joining; nothing otherwise."""
        if self._states.get(namespace) not in (_Ns.JOINING, _Ns.CONNECTED):
            return []
        self._drop(namespace)
        return encode(Packet(PacketType.DISCONNECT, namespace))

    def emit(self, namespace: str, data: list[Any], token: Any = None) -> tuple[list[Message], int]:
        """The EVENT ``data`` (``[event, *args]``) for a connected namespace.

        :param token: registered for the ack when not ``None``; the ack returns it in
            :class:`Acked`.
        :returns: the messages, and the ack id (``-1`` without ``token``).
        :raises TypeError, ValueError: for data JSON cannot carry; nothing is registered then.
        """
        ack_id = None
        if token is not None:
            ack_id = self._next_id.get(namespace, 0)
        messages = encode_event(namespace, data, ack_id)
        if ack_id is None:
            return messages, -1
        self._next_id[namespace] = ack_id + 1
        self._pending[namespace, ack_id] = token
        return messages, ack_id

    def forget(self, namespace: str, ack_id: int) -> None:
        """Drop a registered ack (its caller gave up); the ack, if it comes, is then dropped."""
        self._pending.pop((namespace, ack_id), None)

    def ack(self, namespace: str, ack_id: int, args: list[Any]) -> list[Message]:
        """The ACK of an event the server sent with ``ack_id``.

        :raises TypeError, ValueError: for ``args`` JSON cannot carry.
        """
        return encode(Packet(PacketType.ACK, namespace, args, ack_id))

    def pending_tokens(self) -> list[Any]:
        """Every token still waiting for its ack, and forget them (the session ended)."""
        tokens = list(self._pending.values())
        self._pending.clear()
        return tokens

    # -- what the server sends --------------------------------------------------------------

    def receive(self, message: Message) -> list[Event]:
        """Feed one Engine.IO message; returns what it completed (often nothing or one event).

        :raises ProtocolError: for anything that breaks Socket.IO v5 (then close the session).
        """
        packet = self._decoder.feed(message)
        if packet is None:
            return []
        namespace = packet.namespace
        state = self._states.get(namespace)
        if state is None:
            raise ProtocolError(f"{packet.type.name} for namespace {namespace!r}, never joined")
        if state is _Ns.LEFT:
            return []
        kind = packet.type
        if kind in (PacketType.EVENT, PacketType.BINARY_EVENT):
            return self._event(packet, state)
        if kind in (PacketType.ACK, PacketType.BINARY_ACK):
            return self._ack(packet)
        if kind is PacketType.CONNECT:
            return self._connect(packet, state)
        if kind is PacketType.CONNECT_ERROR:
            self._drop(namespace)
            return [Refused(namespace, packet.data)]
        if kind is PacketType.DISCONNECT:
            self._drop(namespace)
            return [Kicked(namespace)]
        raise ProtocolError(f"a {kind.name} packet from the server")

    def _event(self, packet: Packet, state: _Ns) -> list[Event]:
        data = packet.data
        if data[0] in RESERVED_EVENTS:
            raise ProtocolError(f"the server sent the reserved event {data[0]!r}")
        event = Received(packet.namespace, data[0], data[1:], packet.id)
        if state is _Ns.CONNECTED:
            return [event]
        early = self._early[packet.namespace]
        if len(early) >= MAX_EARLY_EVENTS:
            raise ProtocolError(
                f"more than {MAX_EARLY_EVENTS} events before the CONNECT of {packet.namespace!r}"
            )
        early.append(event)
        return []

    def _ack(self, packet: Packet) -> list[Event]:
        assert packet.id is not None  # the decoder refuses an ACK without one
        token = self._pending.pop((packet.namespace, packet.id), None)
        if token is not None:
            return [Acked(packet.namespace, token, packet.data)]
        if packet.id < self._next_id.get(packet.namespace, 0):
            return []  # a late ack: its caller gave up
        raise ProtocolError(f"an ack for id {packet.id}, which the client never sent")

    def _connect(self, packet: Packet, state: _Ns) -> list[Event]:
        namespace = packet.namespace
        sid = packet.data.get("sid") if isinstance(packet.data, dict) else None
        if not isinstance(sid, str) or not sid:
            raise ProtocolError(f"a CONNECT for {namespace!r} without a sid: {packet.data!r}")
        if state is _Ns.CONNECTED:
            raise ProtocolError(f"a second CONNECT for {namespace!r}")
        self._states[namespace] = _Ns.CONNECTED
        self._sids[namespace] = sid
        early = self._early.pop(namespace, [])
        return [Connected(namespace, sid), *early]

    def _drop(self, namespace: str) -> None:
        self._states[namespace] = _Ns.LEFT
        self._sids.pop(namespace, None)
        self._early.pop(namespace, None)
