"""The public :class:`Client`: a facade over one :class:`~geventio._session.Session`.

It holds no state of its own: every call is the session's. The builder opens the session, then
wraps it here, so a ``Client`` is always made connected.
"""

from __future__ import annotations

from collections.abc import Iterator

from geventio._handshake import Handshake
from geventio._options import Message
from geventio._packet import Packet, PacketId
from geventio._reason import CloseReason
from geventio._redact import redact
from geventio._session import Session
from geventio.exceptions import ConnectionClosed

__all__ = ["Client"]


class Client:
    """A connected Engine.IO client; made by :class:`geventio.ClientBuilder` or ``connect()``.

    Every method may be called from any greenlet, including from inside a callback.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def connected(self) -> bool:
        """``True`` while the session is open (``False`` as soon as ``disconnect()`` returns)."""
        return self._session.connected

    @property
    def transport(self) -> str:
        """``"polling"`` or ``"websocket"``."""
        return self._session.transport

    @property
    def handshake(self) -> Handshake:
        """The server's handshake."""
        return self._session.handshake

    @property
    def sid(self) -> str:
        """The session id."""
        return self._session.handshake.sid

    @property
    def close_reason(self) -> CloseReason | None:
        """Why the client closed, or ``None`` while open."""
        return self._session.close_reason

    def emit(self, packet: Packet) -> None:
        """Queue a packet for sending, after every packet queued before.

        Returns at once while less than the builder's ``send_buffer`` bytes wait to be sent;
        past it (a peer that does not read), blocks the calling greenlet until the writer has
        taken enough. The packet is queued either way: an error means it may not have been sent.

        :raises ConnectionClosed: once the client is closed or closing, also while blocked.
        """
        self._session.emit(packet)

    def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """Queue a message: ``str`` is text, bytes-like is binary; blocks as :meth:`emit`.

        :raises ConnectionClosed: once the client is closed or closing, also while blocked.
        :raises TypeError: for any other type.
        :raises ValueError: for text that UTF-8 cannot encode (a lone surrogate), or text holding
            U+001E while the session is on polling (the polling record separator: the server
            would split the message). Over WebSocket such text is sent intact.
        """
        self._session.emit(Packet(PacketId.MESSAGE, data))

    def receive(self, timeout: float | None = None) -> Message:
        """The next received message; blocks the calling greenlet only.

        Messages come here only when no ``on_data`` callback is registered.

        :raises ConnectionClosed: once the client is closed and every message was taken.
        :raises Timeout: when ``timeout`` seconds pass first.
        """
        return self._session.receive(timeout)

    def __iter__(self) -> Iterator[Message]:
        """Yield received messages until the client is closed."""
        while True:
            try:
                yield self._session.receive(None)
            except ConnectionClosed:
                return

    def wait(self, timeout: float | None = None) -> CloseReason | None:
        """Block until the client is closed; the :class:`CloseReason`, or ``None`` on timeout."""
        return self._session.wait(timeout)

    def disconnect(self) -> None:
        """Flush what is queued, send CLOSE, close the transports and stop the greenlets.

        Blocks the calling greenlet (each step bounded by the builder's ``timeout``) until
        ``on_close`` has run, unless called from a callback, where ``on_close`` runs right after
        the callback returns. Idempotent; never raises.
        """
        self._session.disconnect()

    def upgrade(self) -> None:
        """Upgrade an open polling session to WebSocket, as ``build()`` does after connecting.

        Blocks the calling greenlet until the upgrade completed (each step bounded by the
        builder's ``timeout``). Messages sent meanwhile are delivered exactly once and in order.

        :raises ConnectError: the server offers no upgrade, or the probe failed (the session then
            stays on polling), or the session closed meanwhile.
        """
        self._session.upgrade()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()

    def __repr__(self) -> str:
        s = self._session
        url = redact(s.options.url)
        return f"<geventio.Client {url} sid={s.sid} {s.transport} {s.state}>"
