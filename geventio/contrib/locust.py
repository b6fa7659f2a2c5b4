"""Load tests with Locust: :class:`EngineIOUser`, a Locust ``User`` holding a geventio session,
and :class:`SocketIOUser`, a drop-in for Locust's own ``locust.contrib.socketio.SocketIOUser``.

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
``response_time`` is in milliseconds (0 for a received message); ``context`` is what the user's
``context()`` method returns (Locust's ``User.context``, ``{}`` unless overridden), asked again
for each sample. As with Locust's HTTP clients, the reporting methods report a failure and
return instead of raising it.

:class:`SocketIOUser` keeps the names and request types of Locust's built-in user (``WS
connect``, ``WSE <event>``, ``WSS <name>``, ``WSC <event>``, ``WSR <event>``; see
:class:`SocketIOClient`), with python-socketio's API on ``self.sio``: a locustfile written for
the built-in user runs with its imports changed (``from geventio.contrib.locust import
SocketIOUser``, and ``geventio.socketio`` for ``socketio``). Unlike the reporting methods above,
its calls raise what python-socketio's raise (after reporting it): a failed ``connect()``, a
``call()`` that timed out.

Import order: a script may start with ``from geventio.contrib.locust import ...``. This module
imports Locust before anything of geventio that imports ``ssl``, so that Locust's
``gevent.monkey.patch_all()`` runs first, as gevent requires (``import geventio`` alone imports
no ``ssl``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from locust import User
from locust.env import Environment

from geventio import ClientBuilder, EngineIOError
from geventio.contrib._locust_client import (
    CALL,
    CONNECT,
    RECEIVE,
    SEND,
    TRANSPORTS,
    LocustClient,
    message_size,
)
from geventio.contrib._locust_exit import restore_logging_lock_at_exit
from geventio.contrib._locust_sio import EMIT, SocketIOClient, SocketIOUser

__all__ = [
    "CALL",
    "CONNECT",
    "EMIT",
    "RECEIVE",
    "SEND",
    "TRANSPORTS",
    "EngineIOUser",
    "LocustClient",
    "SocketIOClient",
    "SocketIOUser",
    "message_size",
]

#: Where ``self.client = ...`` from another base class (``HttpUser``) is kept.
_OTHER_CLIENT = "_geventio_other_client"
_NOTHING: Any = object()

# Without it, Python 3.10 prints a traceback at exit (see _locust_exit)
restore_logging_lock_at_exit()


class EngineIOUser(User):
    """An abstract Locust user whose ``self.eio`` is a connected :class:`LocustClient`.

    ``on_start`` opens the session (a ``WS connect`` sample), ``on_stop`` disconnects it.
    Configure it with class attributes; ``--host`` (or :attr:`host`) is the server's URL::

        class Echo(EngineIOUser):
            transport = "websocket"
            wait_time = between(0.5, 1.5)

            @task
            def echo(self) -> None:
                self.eio.request("hi", match=lambda reply: reply == "hi", name="echo")

    **Names.** The session is :attr:`eio`. Used alone, ``EngineIOUser`` also gives it as
    :attr:`client`, as Locust's users name their client. It combines with Locust's
    ``HttpUser`` (or ``FastHttpUser``) as Locust's ``SocketIOUser`` does (its socket is
    ``self.sio``): in ``class Both(EngineIOUser, HttpUser)``, ``self.client`` is the HTTP
    session that ``HttpUser`` made and ``self.eio`` the Engine.IO session; both are reported to
    the same statistics. ``--host`` is then the URL of both: give the other server's full URL
    to the calls of the one it does not fit (``self.client.get("http://api:8080/items")``), or
    override :meth:`builder`.

    **Failures.** A failed connect is reported (a failed ``connect`` sample with the error),
    then the user stops, as with Locust's ``StopUser`` but without logging a traceback; Locust
    does not replace it. To retry instead, override :meth:`on_start` and call :meth:`connect`
    again until it returns ``True``. A session that ends without ``disconnect()`` (server
    closed it, ping timeout, network error) is reported once as a failed ``close`` sample; the
    user keeps running and the operations it then tries fail (reported): a task may reopen a
    session with :meth:`connect`, e.g. ``if not self.eio.connected: self.connect()``.
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
    #: How many unclaimed received messages ``self.eio.receive()`` keeps (oldest dropped).
    inbox_size: ClassVar[int] = 256

    def __init__(self, environment: Environment) -> None:
        self._eio: LocustClient | None = None
        super().__init__(environment)

    @property
    def eio(self) -> LocustClient:
        """The Engine.IO session opened by :meth:`connect`.

        :raises RuntimeError: before a connect succeeded.
        """
        if self._eio is None:
            raise RuntimeError("no Engine.IO session: connecting failed or was not tried")
        return self._eio

    @property
    def client(self) -> Any:
        """:attr:`eio`; or, when another base class set ``self.client`` (``HttpUser`` and
        ``FastHttpUser`` set their HTTP session there), what it set.

        :raises RuntimeError: as :attr:`eio`, when it gives :attr:`eio`.
        """
        other = self.__dict__.get(_OTHER_CLIENT, _NOTHING)
        return self.eio if other is _NOTHING else other

    @client.setter
    def client(self, value: Any) -> None:
        self.__dict__[_OTHER_CLIENT] = value

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
        """Open a new session as :attr:`eio`, disconnecting the previous one first.

        Blocks the calling greenlet until open or failed (bounded by :attr:`connect_timeout`
        per step). The attempt is reported as a ``connect`` sample.

        :returns: ``True`` when connected; ``False`` when it failed (reported with its error;
            :attr:`eio` is then the previous, closed client, if any).
        :raises ValueError: for a bad configuration (host, transport).
        """
        if self._eio is not None:
            self._eio.disconnect()
        try:
            client = LocustClient.connect(
                self.builder(),
                self.environment.events.request,
                transport=self.transport,
                inbox_size=self.inbox_size,
                context=self.context,
            )
        except EngineIOError:
            return False
        self._eio = client
        return True

    def on_start(self) -> None:
        """Connect; when that fails (reported), stop this user after ``on_start``."""
        if not self.connect():
            self.stop()

    def on_stop(self) -> None:
        """Disconnect (not reported as a failure); blocks as :meth:`LocustClient.disconnect`."""
        if self._eio is not None:
            self._eio.disconnect()
