"""The reporting client behind :mod:`geventio.contrib.locust` (see there); private.

It needs no Locust import at run time: only an event hook whose ``fire(**sample)`` takes
Locust's ``request`` event arguments.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import gevent.event

from geventio import Client, ClientBuilder, CloseReason, ConnectionClosed, EngineIOError, Timeout
from geventio._builder import BUILDS

if TYPE_CHECKING:
    from locust.event import EventHook

__all__ = [
    "CALL",
    "CONNECT",
    "RECEIVE",
    "SEND",
    "TRANSPORTS",
    "Context",
    "Data",
    "LocustClient",
    "Message",
    "Samples",
    "message_size",
    "no_context",
]

Message = str | bytes
Data = str | bytes | bytearray | memoryview
#: Makes the ``context`` of each sample (Locust's ``User.context``).
Context = Callable[[], dict[str, Any]]

#: Locust ``request_type`` of the connect and close samples.
CONNECT = "WS"
#: ``request_type`` of a sent message.
SEND = "WSS"
#: ``request_type`` of a received message that no request claimed.
RECEIVE = "WSR"
#: ``request_type`` of a request and its reply (the round trip).
CALL = "WSC"

#: ``transport`` values and the builder method each one calls.
TRANSPORTS: Mapping[str, Callable[[ClientBuilder], Client]] = BUILDS

perf_counter = time.perf_counter


def no_context() -> dict[str, Any]:
    """The default ``context``: a new empty dict, as Locust's ``User.context()`` returns."""
    return {}


class Samples:
    """Fires Locust's ``request`` event, one sample per call, with the ``context`` of that moment.

    :param request_event: Locust's ``environment.events.request`` (anything with ``fire``).
    :param context: makes each sample's ``context``.
    """

    def __init__(self, request_event: EventHook, context: Context = no_context) -> None:
        self._fire: Callable[..., Any] = request_event.fire
        self._context = context

    def sample(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        exception: BaseException | None,  # a Socket.IO handler may raise gevent.Timeout
        **more: Any,
    ) -> None:
        """One sample: ``response_time`` in milliseconds; ``more`` goes to the event as is."""
        self._fire(
            request_type=request_type,
            name=name,
            response_time=response_time,
            response_length=response_length,
            exception=exception,
            context=self._context(),
            **more,
        )

    def timed(
        self,
        request_type: str,
        name: str,
        started: float,
        start_time: float,
        *,
        size: int = 0,
        error: BaseException | None = None,
    ) -> None:
        """A sample of what began at ``started`` (``perf_counter``) and ``start_time`` (epoch)."""
        elapsed = (perf_counter() - started) * 1000
        self.sample(request_type, name, elapsed, size, error, start_time=start_time)


def message_size(data: Data) -> int:
    """The size of a message in bytes: UTF-8 for text (no copy for ASCII), else its length."""
    if isinstance(data, str):
        return len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
    if isinstance(data, memoryview):
        return data.nbytes
    return len(data)


class _Pending:
    """A request waiting for its reply; finished exactly once (reply, failure or timeout)."""

    __slots__ = ("done", "match", "name", "reply", "start_time", "started")

    def __init__(self, match: Callable[[Message], bool] | None, name: str) -> None:
        self.match = match
        self.name = name
        self.reply: Message | None = None
        self.done = gevent.event.Event()
        self.start_time = time.time()
        self.started = perf_counter()


class LocustClient:
    """One Engine.IO session whose traffic is reported to Locust; made by :meth:`connect`.

    Received messages are routed in the session's callback greenlet (no greenlet per message):
    each one goes to the first pending :meth:`request` whose ``match`` accepts it, in the order
    the requests were made; a message that none claims is reported as a ``WSR`` sample and
    kept for :meth:`receive`.

    Every method may be called from any greenlet of the user, several at once.
    """

    def __init__(
        self, request_event: EventHook, *, inbox_size: int = 256, context: Context = no_context
    ) -> None:
        """Use :meth:`connect` instead: this makes a client with no session yet."""
        if inbox_size <= 0:
            raise ValueError("inbox_size must be positive")
        self._samples = Samples(request_event, context)
        self._raw: Client | None = None
        self._pending: list[_Pending] = []
        self._inbox: deque[Message] = deque(maxlen=inbox_size)
        self._ready = gevent.event.Event()
        self._reason: CloseReason | None = None
        self._error: EngineIOError | None = None

    @classmethod
    def connect(
        cls,
        builder: ClientBuilder,
        request_event: EventHook,
        *,
        transport: str = "auto",
        inbox_size: int = 256,
        name: str = "connect",
        context: Context = no_context,
    ) -> LocustClient:
        """Open a session with ``builder`` and report it as a ``WS connect`` sample.

        The session is built from a copy of ``builder`` whose ``on_data``, ``on_error`` and
        ``on_close`` callbacks are the client's own; ``builder`` itself is left as it was (its
        own callbacks are not called for this session). Blocks the calling greenlet until the
        session is open (bounded by the builder's ``timeout``); the sample's time is that wait:
        handshake, and the upgrade for ``"auto"``.

        :param transport: ``"auto"`` (``build()``: polling, then upgrade), ``"websocket"`` or
            ``"polling"``, see :data:`TRANSPORTS`.
        :param inbox_size: how many unclaimed messages :meth:`receive` keeps; past it, the
            oldest is dropped (it was reported all the same).
        :param context: called for each sample (this connect's included), in the greenlet
            that reports it (the session's callback greenlet for a received message: it must
            not block); what it returns is the sample's ``context``, as with Locust's
            ``User.context()`` for its HTTP clients. ``EngineIOUser`` passes its ``context``.
        :raises EngineIOError: connecting failed (``ConnectError``, ``ConnectTimeout``,
            ``ProtocolError``); it was reported as a failed ``connect`` sample.
        :raises ValueError: for an unknown ``transport``.
        """
        build = TRANSPORTS.get(transport)
        if build is None:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        client = cls(request_event, inbox_size=inbox_size, context=context)
        own = copy.copy(builder)  # the setters replace the options: the copies are independent
        own.on_data(client._on_data).on_error(client._on_error).on_close(client._on_close)
        start_time = time.time()
        started = perf_counter()
        try:
            raw = build(own)
        except EngineIOError as exc:
            client._samples.timed(CONNECT, name, started, start_time, error=exc)
            raise
        client._samples.timed(CONNECT, name, started, start_time)
        client._raw = raw
        if client._reason is not None:  # closed before build() returned
            client._report_close()
        return client

    # -- the session ------------------------------------------------------------------------

    @property
    def raw(self) -> Client:
        """The underlying :class:`geventio.Client` (its own calls are not reported)."""
        if self._raw is None:
            raise RuntimeError("no session: use LocustClient.connect()")
        return self._raw

    @property
    def connected(self) -> bool:
        """``True`` while the session is open."""
        return self._raw is not None and self._raw.connected

    @property
    def sid(self) -> str:
        """The session id."""
        return self.raw.sid

    @property
    def transport(self) -> str:
        """``"polling"`` or ``"websocket"``."""
        return self.raw.transport

    @property
    def close_reason(self) -> CloseReason | None:
        """Why the session ended, or ``None`` while it is open."""
        return self._reason

    def disconnect(self) -> None:
        """Close the session as :meth:`geventio.Client.disconnect` (not a failure, not reported).

        Blocks until closed (bounded by the builder's ``timeout``); idempotent; never raises.
        Pending requests fail with ``ConnectionClosed``.
        """
        if self._raw is not None:
            self._raw.disconnect()

    # -- reported operations ----------------------------------------------------------------

    def send(self, data: Data, *, name: str = "message") -> bool:
        """Queue a message and report a ``WSS`` sample of its size.

        Returns at once, unless the send buffer is full (see the builder's ``send_buffer``):
        then it blocks until the writer has caught up, and the sample's time is that wait.

        :returns: ``True`` when queued; ``False`` when the session is closed (reported as a
            failed sample with the ``ConnectionClosed``).
        :raises TypeError: for data that is not ``str`` or bytes-like (not reported).
        :raises ValueError: for text that UTF-8 cannot encode, a lone surrogate (not reported),
            as :meth:`geventio.Client.send`.
        """
        size = message_size(data)
        start_time = time.time()
        started = perf_counter()
        try:
            self.raw.send(data)
        except ConnectionClosed as exc:
            self._samples.timed(SEND, name, started, start_time, size=size, error=exc)
            return False
        self._samples.timed(SEND, name, started, start_time, size=size)
        return True

    def request(
        self,
        data: Data,
        *,
        match: Callable[[Message], bool] | None = None,
        timeout: float = 10.0,
        name: str = "request",
    ) -> Message | None:
        """Send a message, wait for its reply and report the round trip as a ``WSC`` sample.

        Blocks the calling greenlet until a received message is claimed, at most ``timeout``
        seconds. The reply is the first message, received after this call began, that
        ``match`` accepts and that no earlier pending request claimed first: pending requests
        are offered each message in the order they were made. Without ``match``, the next
        message is the reply, which is right only when nothing else is in flight (an echo of an
        earlier :meth:`send` would be taken): with concurrent requests, or other traffic, pass a
        ``match`` that recognizes the reply (an id echoed back by the server). ``match`` runs in
        the session's callback greenlet and must not block; if it raises, the request fails with
        that exception. A reply arriving after the timeout is an unclaimed message, and so is
        the reply to a request whose greenlet was killed (Locust stopping the user): no sample.

        The sample's time runs from just before the send to the reply's arrival; its length is
        the reply's size. The send is not reported as a ``WSS`` sample of its own.

        :returns: the reply, or ``None`` on failure, which was reported with its exception:
            ``geventio.Timeout``, ``ConnectionClosed`` (the session closed, also meanwhile), or
            what ``match`` raised.
        :raises TypeError: for data that is not ``str`` or bytes-like (not reported).
        :raises ValueError: for text that UTF-8 cannot encode, a lone surrogate (not reported),
            as :meth:`geventio.Client.send`.
        """
        pending = _Pending(match, name)
        if self._reason is not None:
            self._fail(pending, ConnectionClosed(self._reason))
            return None
        self._pending.append(pending)
        try:
            self.raw.send(data)
        except ConnectionClosed as exc:
            self._fail(pending, exc)
            return None
        except BaseException:
            self._withdraw(pending)
            raise
        try:
            pending.done.wait(timeout)
        finally:
            self._withdraw(pending)  # killed while waiting: no sample
        if not pending.done.is_set():
            self._fail(pending, Timeout(f"no reply within {timeout} s"))
        return pending.reply

    def receive(self, timeout: float | None = None) -> Message:
        """The oldest unclaimed message (already reported when it arrived); not reported again.

        Blocks the calling greenlet only. At most ``inbox_size`` messages are kept: the oldest
        are dropped first.

        :raises geventio.Timeout: when ``timeout`` seconds pass first.
        :raises ConnectionClosed: once the session is closed and every kept message was taken.
        """
        deadline = None if timeout is None else perf_counter() + timeout
        while not self._inbox:
            if self._reason is not None:
                raise ConnectionClosed(self._reason)
            left = None if deadline is None else deadline - perf_counter()
            if (left is not None and left <= 0) or not self._ready.wait(left):
                raise Timeout(f"nothing received within {timeout} s")
        data = self._inbox.popleft()
        if not self._inbox and self._reason is None:
            self._ready.clear()
        return data

    # -- callbacks (the session's callback greenlet) ------------------------------------------

    def _on_data(self, data: Message) -> None:
        size = message_size(data)
        for pending in list(self._pending) if self._pending else ():
            try:
                claimed = pending.match is None or pending.match(data)
            except Exception as exc:
                self._fail(pending, exc)
                continue
            if claimed:
                self._withdraw(pending)
                pending.reply = data
                pending.done.set()
                self._samples.timed(
                    CALL, pending.name, pending.started, pending.start_time, size=size
                )
                return
        self._samples.sample(RECEIVE, "message", 0, size, None)
        self._inbox.append(data)
        self._ready.set()

    def _on_error(self, error: EngineIOError) -> None:
        self._error = error

    def _on_close(self, reason: CloseReason) -> None:
        self._reason = reason
        self._ready.set()  # wakes receive(): it drains, then raises
        for pending in list(self._pending):
            self._fail(pending, ConnectionClosed(reason))
        if self._raw is not None:
            self._report_close()

    # -- reporting ---------------------------------------------------------------------------

    def _report_close(self) -> None:
        """One failed ``WS close`` sample for a session that ended without ``disconnect()``."""
        reason = self._reason
        if reason is None or reason is CloseReason.CLIENT_DISCONNECT:
            return
        error: Exception = self._error or ConnectionClosed(reason)
        self._samples.sample(CONNECT, "close", 0, 0, error)

    def _withdraw(self, pending: _Pending) -> None:
        with contextlib.suppress(ValueError):
            self._pending.remove(pending)

    def _fail(self, pending: _Pending, error: Exception) -> None:
        """Finish a request with a failure, reported once."""
        if pending.done.is_set():
            return
        self._withdraw(pending)
        pending.done.set()
        self._samples.timed(CALL, pending.name, pending.started, pending.start_time, error=error)
