"""Load tests with Locust: :class:`EngineIOUser`, a Locust ``User`` holding a geventio session.

Needs the ``locust`` extra (``pip install 'geventio[locust]'``). Import it from a locustfile
only: importing Locust monkey-patches the whole process (``gevent.monkey.patch_all()``), which is
why ``import geventio`` never imports this module.

Every operation is reported to Locust's ``request`` event under a stable name, following the
conventions of Locust's own ``SocketIOUser``:

=============== ============ ============================================================
request_type    name         one sample per
=============== ============ ============================================================
``WS``          ``connect``  ``build*()``: handshake (and upgrade); failures: the error
``WSS``         ``message``  :meth:`LocustClient.send` (its ``name`` can be changed)
``WSR``         ``message``  received message not claimed by a pending request
``WSC``         ``request``  :meth:`LocustClient.request`: the round trip (``name`` too)
``WS``          ``close``    failure only: the session ended without ``disconnect()``
=============== ============ ============================================================

``response_length`` is the message's size in bytes (UTF-8 for text, the reply's for a request);
``response_time`` is in milliseconds (0 for a received message). As with Locust's HTTP clients,
the reporting methods report a failure and return instead of raising it.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import gevent.event
from locust import User
from locust.env import Environment
from locust.event import EventHook

from geventio import Client, ClientBuilder, CloseReason, ConnectionClosed, EngineIOError, Timeout

__all__ = [
    "CALL",
    "CONNECT",
    "RECEIVE",
    "SEND",
    "TRANSPORTS",
    "EngineIOUser",
    "LocustClient",
    "message_size",
]

Message = str | bytes
Data = str | bytes | bytearray | memoryview

#: Locust ``request_type`` of the connect and close samples.
CONNECT = "WS"
#: ``request_type`` of a sent message.
SEND = "WSS"
#: ``request_type`` of a received message that no request claimed.
RECEIVE = "WSR"
#: ``request_type`` of a request and its reply (the round trip).
CALL = "WSC"

#: ``transport`` values and the builder method each one calls.
TRANSPORTS: Mapping[str, Callable[[ClientBuilder], Client]] = {
    "auto": ClientBuilder.build,
    "websocket": ClientBuilder.build_websocket,
    "polling": ClientBuilder.build_polling,
}

perf_counter = time.perf_counter


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

    def __init__(self, request_event: EventHook, *, inbox_size: int = 256) -> None:
        """Use :meth:`connect` instead: this makes a client with no session yet."""
        if inbox_size <= 0:
            raise ValueError("inbox_size must be positive")
        self._fire: Callable[..., Any] = request_event.fire
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
    ) -> LocustClient:
        """Open a session with ``builder`` and report it as a ``WS connect`` sample.

        The builder's ``on_data``, ``on_error`` and ``on_close`` callbacks are replaced by the
        client's own. Blocks the calling greenlet until the session is open (bounded by the
        builder's ``timeout``); the sample's time is that wait: handshake, and the upgrade for
        ``"auto"``.

        :param transport: ``"auto"`` (``build()``: polling, then upgrade), ``"websocket"`` or
            ``"polling"``, see :data:`TRANSPORTS`.
        :param inbox_size: how many unclaimed messages :meth:`receive` keeps; past it, the
            oldest is dropped (it was reported all the same).
        :raises EngineIOError: connecting failed (``ConnectError``, ``ConnectTimeout``,
            ``ProtocolError``); it was reported as a failed ``connect`` sample.
        :raises ValueError: for an unknown ``transport``.
        """
        build = TRANSPORTS.get(transport)
        if build is None:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        client = cls(request_event, inbox_size=inbox_size)
        builder.on_data(client._on_data).on_error(client._on_error).on_close(client._on_close)
        start_time = time.time()
        started = perf_counter()
        try:
            raw = build(builder)
        except EngineIOError as exc:
            client._report(CONNECT, name, started, start_time, error=exc)
            raise
        client._report(CONNECT, name, started, start_time)
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
        """
        size = message_size(data)
        start_time = time.time()
        started = perf_counter()
        try:
            self.raw.send(data)
        except ConnectionClosed as exc:
            self._report(SEND, name, started, start_time, size=size, error=exc)
            return False
        self._report(SEND, name, started, start_time, size=size)
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
                self._report(CALL, pending.name, pending.started, pending.start_time, size=size)
                return
        self._fire(
            request_type=RECEIVE,
            name="message",
            response_time=0,
            response_length=size,
            exception=None,
            context={},
        )
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
        self._fire(
            request_type=CONNECT,
            name="close",
            response_time=0,
            response_length=0,
            exception=error,
            context={},
        )

    def _withdraw(self, pending: _Pending) -> None:
        with contextlib.suppress(ValueError):
            self._pending.remove(pending)

    def _fail(self, pending: _Pending, error: Exception) -> None:
        """Finish a request with a failure, reported once."""
        if pending.done.is_set():
            return
        self._withdraw(pending)
        pending.done.set()
        self._report(CALL, pending.name, pending.started, pending.start_time, error=error)

    def _report(
        self,
        request_type: str,
        name: str,
        started: float,
        start_time: float,
        *,
        size: int = 0,
        error: Exception | None = None,
    ) -> None:
        self._fire(
            request_type=request_type,
            name=name,
            response_time=(perf_counter() - started) * 1000,
            response_length=size,
            exception=error,
            context={},
            start_time=start_time,
        )


class EngineIOUser(User):
    """An abstract Locust user whose ``self.client`` is a connected :class:`LocustClient`.

    ``on_start`` opens the session (a ``WS connect`` sample), ``on_stop`` disconnects it.
    Configure it with class attributes; ``--host`` (or :attr:`host`) is the server's URL::

        class Echo(EngineIOUser):
            transport = "websocket"
            wait_time = between(0.5, 1.5)

            @task
            def echo(self) -> None:
                self.client.request("hi", match=lambda reply: reply == "hi", name="echo")

    **Failures.** A failed connect is reported (a failed ``connect`` sample with the error),
    then the user stops, as with Locust's ``StopUser`` but without logging a traceback; Locust
    does not replace it. To retry instead, override :meth:`on_start` and call :meth:`connect`
    again until it returns ``True``. A session that ends without ``disconnect()`` (server
    closed it, ping timeout, network error) is reported once as a failed ``close`` sample; the
    user keeps running and the operations it then tries fail (reported): a task may reopen a
    session with :meth:`connect`, e.g. ``if not self.client.connected: self.connect()``.
    """

    abstract = True

    #: ``"auto"`` (polling handshake, then upgrade), ``"websocket"`` or ``"polling"``.
    transport: ClassVar[str] = "auto"
    #: The Engine.IO path; ``None``: the URL's path if any, else ``/engine.io/``.
    path: ClassVar[str | None] = None
    #: Headers for every request (polling) and the WebSocket handshake.
    headers: ClassVar[Mapping[str, str] | None] = None
    #: Extra query parameters for every request.
    query: ClassVar[Mapping[str, str] | None] = None
    #: Bound on each blocking step of connecting (and of ``disconnect()``), in seconds.
    connect_timeout: ClassVar[float] = 10.0
    #: How many unclaimed received messages ``self.client.receive()`` keeps (oldest dropped).
    inbox_size: ClassVar[int] = 256

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self._client: LocustClient | None = None

    @property
    def client(self) -> LocustClient:
        """The session opened by :meth:`connect`.

        :raises RuntimeError: before a connect succeeded.
        """
        if self._client is None:
            raise RuntimeError("no Engine.IO session: connecting failed or was not tried")
        return self._client

    def builder(self) -> ClientBuilder:
        """A new builder for each connect, from the class attributes.

        Override it for other options (``tls_config``, ``send_buffer``, headers made per user)::

            def builder(self) -> ClientBuilder:
                return super().builder().headers({"Authorization": f"Bearer {self.token}"})

        :raises ValueError: without a host, or for a bad URL.
        """
        if not self.host:
            raise ValueError(f"{type(self).__name__} has no host: set its host or pass --host")
        builder = ClientBuilder(self.host).timeout(self.connect_timeout)
        if self.path is not None:
            builder.path(self.path)
        if self.headers is not None:
            builder.headers(self.headers)
        if self.query is not None:
            builder.query(self.query)
        return builder

    def connect(self) -> bool:
        """Open a new session as ``self.client``, disconnecting the previous one first.

        Blocks the calling greenlet until open or failed (bounded by :attr:`connect_timeout`
        per step). The attempt is reported as a ``connect`` sample.

        :returns: ``True`` when connected; ``False`` when it failed (reported with its error;
            ``self.client`` is then the previous, closed client, if any).
        :raises ValueError: for a bad configuration (host, transport).
        """
        if self._client is not None:
            self._client.disconnect()
        try:
            client = LocustClient.connect(
                self.builder(),
                self.environment.events.request,
                transport=self.transport,
                inbox_size=self.inbox_size,
            )
        except EngineIOError:
            return False
        self._client = client
        return True

    def on_start(self) -> None:
        """Connect; when that fails (reported), stop this user after ``on_start``."""
        if not self.connect():
            self.stop()

    def on_stop(self) -> None:
        """Disconnect (not reported as a failure); blocks as :meth:`LocustClient.disconnect`."""
        if self._client is not None:
            self._client.disconnect()
