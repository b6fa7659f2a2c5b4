"""``SocketIOUser`` and its reporting client, behind :mod:`geventio.contrib.locust` (see there).

Private: import them from :mod:`geventio.contrib.locust`. Locust is imported first, so that its
``gevent.monkey.patch_all()`` runs before anything below imports ``ssl``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from gevent import Greenlet, getcurrent
from gevent.pool import Group
from locust import User
from locust.env import Environment

from geventio.contrib._locust_client import (
    CALL,
    CONNECT,
    RECEIVE,
    Context,
    Samples,
    message_size,
    no_context,
)
from geventio.socketio import Client, SocketIOError
from geventio.socketio._packet import Packet, PacketType, encode, from_arguments, to_arguments
from geventio.socketio._session import Session

__all__ = ["EMIT", "SEND_MESSAGE", "SocketIOClient", "SocketIOUser", "packet_size"]

#: Locust ``request_type`` of an emitted event (``send`` is ``WSS``, as in Locust's user).
EMIT = "WSE"
#: ``request_type`` of :meth:`SocketIOClient.send`.
SEND_MESSAGE = "WSS"

perf_counter = time.perf_counter
Handler = Callable[..., Any]


def packet_size(kind: PacketType, args: list[Any], namespace: str | None) -> int:
    """The bytes of the EVENT or ACK packet carrying ``args`` (``[event, *args]`` for an
    EVENT), as the codec writes it: its text in UTF-8, plus its binary attachments. The ack id
    of a call or callback (a few digits) is not counted.
    """
    packet = Packet(kind, namespace or "/", args)
    return sum(message_size(message) for message in encode(packet))


class SocketIOClient(Client):
    """A :class:`geventio.socketio.Client` whose operations are Locust samples.

    The calls are python-socketio's, each reported to Locust's ``request`` event:

    ============== ============= ==============================================================
    request_type   name          one sample per
    ============== ============= ==============================================================
    ``WS``         ``connect``   :meth:`connect`; a failure is reported, then raised
    ``WSE``        the event     :meth:`emit`; length: the bytes sent
    ``WSS``        ``name``      :meth:`send` (default ``Unnamed``); length: the bytes sent
    ``WSC``        the event     :meth:`call`: the round trip; length: the reply's bytes
    ``WSR``        the event     :meth:`on_message` (the catch-all); length: the event's bytes
    ``WSR``        the event     failure only: a handler raised (any handler: ``on``,
                                 ``event``, a namespace class, ``on_message``; ``ack`` for an
                                 emit's callback)
    ============== ============= ==============================================================

    The bytes sent are those of the Socket.IO packet (UTF-8 text, plus binary attachments), as
    the client hands it to Engine.IO; received ones are counted as that packet's would be
    (:func:`packet_size`). ``context`` is asked for each sample (``SocketIOUser`` passes its
    ``context``). Unlike the reporting methods of ``EngineIOUser``, a failure is raised after
    it is reported, as python-socketio raises it.
    """

    def __init__(
        self, request_event: Any, *args: Any, context: Context = no_context, **kwargs: Any
    ) -> None:
        """:param request_event: Locust's ``environment.events.request`` (an ``EventHook``).
        :param args: and ``kwargs``: the options of :class:`geventio.socketio.Client`.
        :raises TypeError: for an unknown option, as :class:`geventio.socketio.Client`.
        """
        super().__init__(*args, **kwargs)
        self.request_event = request_event
        self._samples = Samples(request_event, context)
        #: bytes sent so far by each greenlet inside :meth:`emit` or :meth:`send`
        self._sent_bytes: dict[Any, int] = {}

    # -- reported operations ----------------------------------------------------------------

    def connect(self, *args: Any, **kwargs: Any) -> None:
        """:meth:`geventio.socketio.Client.connect`, reported as a ``WS connect`` sample.

        Blocks as that call. A failure is reported with its exception, then raised.

        :raises geventio.socketio.exceptions.ConnectionError: connecting failed.
        """
        start_time = time.time()
        started = perf_counter()
        try:
            super().connect(*args, **kwargs)
        except Exception as exc:
            self._samples.timed(CONNECT, "connect", started, start_time, error=exc)
            raise
        self._samples.timed(CONNECT, "connect", started, start_time)

    def emit(
        self,
        event: str,
        data: Any = None,
        namespace: str | None = None,
        callback: Handler | None = None,
    ) -> None:
        """:meth:`geventio.socketio.Client.emit`, reported as a ``WSE <event>`` sample.

        The sample's length is the bytes sent (the packet and its attachments); its time, the
        wait to queue it (about 0, unless the send buffer is full). Data that JSON cannot carry
        raises before anything is sent, with no sample. A failure to send is reported, then
        raised.

        :raises TypeError: and ``ValueError``: for data JSON cannot carry (not reported).
        :raises geventio.socketio.exceptions.BadNamespaceError: not connected, or not to that
            namespace (reported); ``NotConnectedError`` (both a ``BadNamespaceError`` and a
            ``ConnectionError``) without a connection.
        """
        self._reported_emit(
            EMIT, name=str(event), event=event, data=data, namespace=namespace, callback=callback
        )

    def send(
        self,
        data: Any,
        namespace: str | None = None,
        callback: Handler | None = None,
        name: str = "Unnamed",
    ) -> None:
        """:meth:`geventio.socketio.Client.send` (a ``message`` event), a ``WSS <name>`` sample.

        As :meth:`emit` otherwise.
        """
        self._reported_emit(
            SEND_MESSAGE,
            name=name,
            event="message",
            data=data,
            namespace=namespace,
            callback=callback,
        )

    def call(
        self,
        event: str,
        data: Any = None,
        namespace: str | None = None,
        timeout: float = 60,
    ) -> Any:
        """:meth:`geventio.socketio.Client.call`, reported as one ``WSC <event>`` sample.

        Blocks the calling greenlet until the server acknowledges, at most ``timeout`` seconds.
        The sample's time is the round trip; its length, the reply's bytes. A failure (timeout,
        not connected) is reported with its exception, then raised. Data that cannot be sent
        raises before anything is sent, and is not reported.

        :returns: the ack's single argument, or a tuple of several (``None`` for none).
        :raises geventio.socketio.exceptions.TimeoutError: no ack within ``timeout``, or the
            connection ended first (reported).
        :raises geventio.socketio.exceptions.BadNamespaceError: as :meth:`emit` (reported).
        :raises TypeError: and ``ValueError``: as :meth:`emit` (not reported).
        """
        start_time = time.time()
        started = perf_counter()
        try:
            reply = super().call(event, data, namespace=namespace, timeout=timeout)
        except SocketIOError as exc:  # bad data raises TypeError or ValueError: no sample
            self._samples.timed(CALL, str(event), started, start_time, error=exc)
            raise
        elapsed = (perf_counter() - started) * 1000
        size = packet_size(PacketType.ACK, to_arguments(reply), namespace)
        self._samples.sample(CALL, str(event), elapsed, size, None, start_time=start_time)
        return reply

    def on_message(self, event: str, data: Any) -> None:
        """The catch-all handler ``SocketIOUser`` registers: a ``WSR <event>`` sample.

        ``data`` is the event's single argument, a tuple when there are several, ``None`` when
        there are none. Override it (here or in the user class) to do more; call this one to
        keep the sample. The length is the event packet's bytes. Runs in the client's handler
        greenlet: it should not block for long (events wait behind it).
        """
        size = packet_size(PacketType.EVENT, [event, *to_arguments(data)], None)
        self._samples.sample(RECEIVE, event, 0, size, None)

    # -- hooks of geventio.socketio.Client ------------------------------------------------

    def _handler_error(self, event: str, namespace: str, exc: BaseException) -> None:
        """A handler (or ``on_message``, or an ack callback: ``ack``) raised: a failed ``WSR
        <event>`` sample, instead of an error log (logged at DEBUG level only)."""
        self.logger.debug("the handler of %r in %s raised", event, namespace, exc_info=exc)
        self._samples.sample(RECEIVE, event, 0, 0, exc)

    def _send(self, session: Session, messages: list[str | bytes]) -> None:
        """Send as the base class does; count the bytes for the :meth:`emit` under way."""
        super()._send(session, messages)
        if self._sent_bytes and (me := getcurrent()) in self._sent_bytes:
            self._sent_bytes[me] += sum(message_size(message) for message in messages)

    # -- reporting ---------------------------------------------------------------------------

    def _reported_emit(
        self,
        request_type: str,
        *,
        name: str,
        event: str,
        data: Any,
        namespace: str | None,
        callback: Handler | None,
    ) -> None:
        me = getcurrent()
        start_time = time.time()
        started = perf_counter()
        self._sent_bytes[me] = 0
        try:
            super().emit(event, data, namespace=namespace, callback=callback)
        except SocketIOError as exc:  # bad data raises TypeError or ValueError: no sample
            self._samples.timed(request_type, name, started, start_time, error=exc)
            raise
        finally:
            size = self._sent_bytes.pop(me)
        self._samples.timed(request_type, name, started, start_time, size=size)


class SocketIOUser(User):
    """An abstract Locust user with a Socket.IO client as ``self.sio``: a drop-in for Locust's
    ``locust.contrib.socketio.SocketIOUser``.

    ``self.sio`` is a :class:`SocketIOClient` made from :attr:`options`, not yet connected: the
    locustfile connects it (in ``on_start``, typically), with python-socketio's calls::

        class Chat(SocketIOUser):
            def on_start(self) -> None:
                self.sio.connect("http://localhost:5001", transports=["websocket"])

            @task
            def join(self) -> None:
                self.sio.call("join_room", {"room": "room1"})

    Events with no handler of their own go to ``on_message(event, data)``: the client's (a
    ``WSR`` sample), or this class's if a subclass defines one. The client is disconnected
    when the user stops, whether or not ``on_stop`` does it (and also when ``on_start`` or a
    task raised). It combines with ``HttpUser`` (``class U(SocketIOUser, HttpUser)``, either
    order): ``self.client`` is then the HTTP session.
    """

    abstract = True
    #: Options of :class:`geventio.socketio.Client` (``reconnection_attempts``, ``logger``...);
    #: typed as the built-in user types it, so that subclasses may redefine it the same way.
    options: dict[str, Any] = {}  # noqa: RUF012
    #: The client class: a subclass of :class:`SocketIOClient` may override ``on_message``.
    sio_class: ClassVar[type[SocketIOClient]] = SocketIOClient
    sio: SocketIOClient

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        environment: Environment = self.environment
        self.sio = self.sio_class(environment.events.request, context=self.context, **self.options)
        own: Handler | None = getattr(self, "on_message", None)
        on_message: Handler = own if own is not None else self.sio.on_message

        def catch_all(event: str, *args: Any) -> Any:
            return on_message(event, from_arguments(args))

        self.sio.on("*", catch_all)

    def start(self, group: Group) -> Greenlet[Any, Any]:
        """Start the user's greenlet, as Locust's ``User.start``; when ``run()`` ends, however
        it ended (stopped, killed, ``on_start`` raised), the greenlet disconnects the client
        (idempotent; blocks until closed, bounded by ``request_timeout``).

        (Locust's ``User.run`` is final, hence this greenlet function instead of an override;
        its first argument is the user, as Locust looks users up by it.)
        """
        self._greenlet = group.spawn(_run_then_disconnect, self)
        self._group = group
        return self._greenlet


def _run_then_disconnect(user: SocketIOUser) -> None:
    try:
        user.run()  # type: ignore[no-untyped-call]
    finally:
        user.sio.disconnect()
