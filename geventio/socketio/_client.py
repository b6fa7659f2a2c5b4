"""``geventio.socketio.Client``: python-socketio's sync client API on geventio's Engine.IO client.

Greenlets, per client:

- the Engine.IO client's own (reader, writer, callback dispatcher). Its dispatcher feeds every
  message to the :class:`~geventio.socketio._session.Session`, which sets the result of a
  waiting :meth:`Client.call` at once and queues everything else;
- one :class:`~geventio.socketio._runner.Runner` greenlet, which runs the handlers in the order
  the events arrived. A handler may block, ``call()`` (its ack does not wait behind it) or
  ``disconnect()``;
- while the connection is lost, one reconnection greenlet.

The dispatcher's and the runner's greenlets live only while they have work (they end after a
second idle), so an idle client holds only the Engine.IO client's reader and writer and its
heartbeat timer.

The client's life::

    DOWN --connect()--> UP --transport error, ping timeout, transport close--> RECONNECTING
     ^                  |  <--a reconnection attempt succeeded---------------/    |
     |                  |  disconnect(), a server disconnect                      | disconnect(),
     +------------------+---------------------------------------------------------+ attempts used

``wait()`` returns in DOWN. ``connected`` is ``True`` in UP only.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
import gevent.lock

from geventio import ClientBuilder, CloseReason, ConnectionClosed, EngineIOError
from geventio.socketio._handlers import HandlerRegistry
from geventio.socketio._packet import from_arguments, to_arguments
from geventio.socketio._runner import Runner
from geventio.socketio._session import Session, builder_options, configure
from geventio.socketio._state import Received
from geventio.socketio.exceptions import (
    BadNamespaceError,
    ConnectionError,
    NotConnectedError,
    TimeoutError,
)

__all__ = ["Client"]

default_logger = logging.getLogger("geventio.socketio")
_FINAL = (CloseReason.CLIENT_DISCONNECT, CloseReason.SERVER_DISCONNECT)


def _value(value: Any) -> Any:
    return value() if callable(value) else value


class Client(HandlerRegistry):
    """A Socket.IO v5 client; python-socketio 5.x's ``socketio.Client``, cooperative with gevent.

    Handlers are registered with :meth:`on`, :meth:`event` and :meth:`register_namespace`.

    Every method may be called from any greenlet, handlers included. Options beyond
    python-socketio's are the Engine.IO client's (``tls_config``, ``proxy``, ``max_message_size``
    and the rest of :class:`geventio.ClientBuilder`'s), as keywords.

    ``logger`` ``True`` sets the ``geventio.socketio`` logger to INFO (no handler is added);
    ``handle_sigint`` is accepted and ignored (no signal handler is ever installed).

    :raises ValueError: for an option value the builder refuses (``request_timeout=0``, a proxy
        URL that is not ``http://``...).
    :raises TypeError: for an unknown keyword option, and for ``json`` or a ``serializer``
        other than ``'default'`` (only the standard ``json`` module is used).
    """

    reason = CloseReason

    def __init__(  # noqa: PLR0917 - python-socketio's signature
        self,
        reconnection: bool = True,
        reconnection_attempts: int = 0,
        reconnection_delay: float = 1,
        reconnection_delay_max: float = 5,
        randomization_factor: float = 0.5,
        logger: bool | logging.Logger = False,
        serializer: str = "default",
        json: Any = None,
        handle_sigint: bool = True,
        **engineio_options: Any,
    ) -> None:
        if serializer != "default" or json is not None:
            raise TypeError("geventio.socketio encodes with the standard json module only")
        self.reconnection = reconnection
        self.reconnection_attempts = reconnection_attempts
        self.reconnection_delay = reconnection_delay
        self.reconnection_delay_max = reconnection_delay_max
        self.randomization_factor = randomization_factor
        self.handle_sigint = handle_sigint  # accepted for compatibility: no handler is installed
        if isinstance(logger, logging.Logger):
            self.logger = logger
        else:
            self.logger = default_logger
            if logger and self.logger.level == logging.NOTSET:
                self.logger.setLevel(logging.INFO)
        super().__init__()
        self._builder_options = builder_options(engineio_options)
        self.connected = False
        self.connection_url: Any = None
        self.connection_headers: Any = {}
        self.connection_auth: Any = None
        self.connection_transports: list[str] | None = None
        self.connection_namespaces: list[str] = []
        self.socketio_path = "socket.io"
        self._wait_timeout: float = 1
        self._session: Session | None = None
        self._runner: Runner[Session] | None = None
        self._reconnector: gevent.Greenlet[Any, Any] | None = None
        self._abort = gevent.event.Event()
        self._down = gevent.event.Event()  # DOWN: no session and no reconnection pending
        self._down.set()
        self._up = gevent.event.Event()  # UP: connect() or a reconnection completed
        self._send_lock = gevent.lock.Semaphore()

    # -- connecting -----------------------------------------------------------------------------

    def connect(  # noqa: PLR0917 - python-socketio's signature
        self,
        url: Any,
        headers: Any = None,
        auth: Any = None,
        transports: str | list[str] | None = None,
        namespaces: str | list[str] | None = None,
        socketio_path: str = "socket.io",
        wait: bool = True,
        wait_timeout: float = 1,
        retry: bool = False,
    ) -> None:
        """Open the Engine.IO session and join the namespaces.

        Blocks until every namespace answered (at most ``wait_timeout`` after the session
        opened, itself bounded by ``request_timeout``) and the ``connect`` handlers ran. ``url``,
        ``headers`` and ``auth`` may be callables, called at each connection attempt.

        :raises ConnectionError: the session could not be opened, or a namespace was refused
            (``args``: the server's message, then its data) or did not answer in time; with
            ``retry``, only once the reconnection attempts are used up.
        :raises ValueError: ``auth`` (or what its callable returned) is not a dict or ``None``;
            a bad URL, header or transport.
        """
        if self.connected or (self._reconnector is not None and not self._reconnector.dead):
            raise ConnectionError("Already connected")
        if isinstance(transports, str):
            transports = [transports]
        if isinstance(namespaces, str):
            namespaces = [namespaces]
        self.connection_url = url
        self.connection_headers = headers or {}
        self.connection_auth = auth
        self.connection_transports = transports
        self.connection_namespaces = namespaces or self._handlers.default_namespaces()
        self.socketio_path = socketio_path
        self._wait_timeout = wait_timeout if wait else 0
        self._abort.clear()
        self._down.clear()
        if self._runner is None or self._runner.closed:
            self._runner = Runner(self._handlers, self._handler_error, self._ack)
        try:
            self._open(wait)
        except ConnectionError:
            if retry and self.reconnection and self._reconnect_loop():
                return
            self._finish()
            runner = self._runner
            if runner is not None and not runner.running_here():
                runner.join(self._builder_options["timeout"])  # connect_error handlers ran
            raise
        except BaseException:
            self._finish()  # a bad argument (ValueError), or the caller was killed
            raise

    def _open(self, wait: bool = True) -> None:
        """One connection attempt: the session, the namespaces, the ``connect`` handlers."""
        names = self.connection_namespaces
        auth = _value(self.connection_auth)
        if auth is not None and not isinstance(auth, dict):
            raise ValueError(
                f"auth must be a dict or None (the protocol sends an object): {auth!r}"
            )
        runner = self._runner
        assert runner is not None
        size = self._builder_options.get("max_message_size", 16 * 1024 * 1024)
        session = Session(size, runner, self._ended)
        try:
            session.open(
                configure(ClientBuilder(_value(self.connection_url)), self._builder_options),
                path=self.socketio_path,
                headers=_value(self.connection_headers) or {},
                transports=self.connection_transports,
            )
        except EngineIOError as exc:
            for namespace in names:
                runner.fire("connect_error", namespace, str(exc), force=True)
            raise ConnectionError(str(exc)) from exc
        self._session = session
        try:
            if self._abort.is_set():
                raise ConnectionError("disconnect() was called while connecting")
            for namespace in names:
                self._send(session, session.proto.join(namespace, auth))
            if wait and (not session.await_answers(self._wait_timeout) or session.refusals):
                raise session.failure()
        except BaseException:  # a gevent.Timeout around connect() too: nothing is left open
            session.abandon()
            raise
        session.established = True
        if not wait:
            self.connected = True
            self._up.set()
            return
        self.connected = True
        runner.sync(self._builder_options["timeout"])  # the connect handlers ran
        self._up.set()

    # -- sending ----------------------------------------------------------------------------------

    def emit(
        self,
        event: str,
        data: Any = None,
        namespace: str | None = None,
        callback: Callable[..., Any] | None = None,
    ) -> None:
        """Send an event; ``data`` a tuple is several arguments; ``bytes`` anywhere in it make it
        a binary event. ``callback(*args)`` runs (among the handlers) when the server acks.

        Returns once queued (it blocks only while geventio's send buffer is full).

        :raises NotConnectedError: no connection (also a :class:`BadNamespaceError`).
        :raises BadNamespaceError: ``namespace`` is not connected.
        :raises TypeError, ValueError: for data JSON cannot carry; nothing is sent then.
        """
        namespace = namespace or "/"
        session = self._live(namespace)
        messages, _ = session.proto.emit(namespace, [event, *to_arguments(data)], callback)
        self._send(session, messages)

    def send(
        self, data: Any, namespace: str | None = None, callback: Callable[..., Any] | None = None
    ) -> None:
        """``emit('message', data, namespace, callback)``."""
        self.emit("message", data, namespace, callback)

    def call(
        self, event: str, data: Any = None, namespace: str | None = None, timeout: float = 60
    ) -> Any:
        """Emit with an ack and block the calling greenlet until the server acknowledges.

        :returns: the ack's single argument, a tuple when there are several, ``None`` for none.
        :raises TimeoutError: after ``timeout`` seconds, or as soon as the connection ends
            before the ack (python-socketio waits out the timeout then).
        :raises NotConnectedError, BadNamespaceError, TypeError, ValueError: as :meth:`emit`.
        """
        namespace = namespace or "/"
        session = self._live(namespace)
        result: gevent.event.AsyncResult[list[Any]] = gevent.event.AsyncResult()
        messages, ack_id = session.proto.emit(namespace, [event, *to_arguments(data)], result)
        runner = self._runner
        in_handler = runner is not None and runner.running_here()
        if runner is not None:
            runner.waiting += in_handler
        try:
            self._send(session, messages)
            result.wait(timeout)
            if not result.ready():  # (wait() returns the value, and no arguments is falsy)
                session.proto.forget(namespace, ack_id)
                raise TimeoutError(f"no ack for {event!r} within {timeout} s")
        finally:
            if runner is not None:
                runner.waiting -= in_handler
        return from_arguments(result.get())

    def _live(self, namespace: str) -> Session:
        session = self._session
        if session is None or session.closed:
            raise NotConnectedError("the client is not connected")
        if not session.proto.connected(namespace):
            raise BadNamespaceError(f"{namespace} is not a connected namespace.")
        return session

    def _send(self, session: Session, messages: list[str | bytes]) -> None:
        eio = session.eio
        assert eio is not None
        try:
            if len(messages) == 1 and not self._send_lock.locked():
                eio.send(messages[0])
                return
            with self._send_lock:  # a binary packet's messages must not interleave with others
                for message in messages:
                    eio.send(message)
        except ConnectionClosed as exc:
            raise NotConnectedError(f"the connection is closed ({exc.reason.value})") from exc

    def _ack(self, session: Session, event: Received, result: Any) -> None:
        """Send the ack of ``event`` with its handler's result (the runner's greenlet)."""
        if session.closed or not session.proto.connected(event.namespace):
            return
        assert event.id is not None
        try:
            self._send(session, session.proto.ack(event.namespace, event.id, to_arguments(result)))
        except (NotConnectedError, TypeError, ValueError) as exc:
            self.logger.warning("could not ack %r: %s", event.event, exc)

    def _ended(self, session: Session, reason: CloseReason) -> None:
        """A session ended (the Engine.IO dispatcher's greenlet): reconnect, or go DOWN."""
        if not session.established or session is not self._session:
            return  # a failed attempt: whoever opened it decides what follows
        self.connected = False
        self._up.clear()
        if (
            self.reconnection
            and not session.final
            and not self._abort.is_set()
            and reason not in _FINAL
        ):
            self.logger.info("connection lost (%s): reconnecting", reason.value)
            self._reconnector = gevent.spawn(self._reconnect_loop)
        else:
            self._finish()

    # -- reconnection -----------------------------------------------------------------------------

    def _delay(self, attempt: int) -> float:
        base = min(self.reconnection_delay * 2**attempt, self.reconnection_delay_max)
        spread = self.randomization_factor * (2 * random.random() - 1)
        return max(0.0, float(base * (1 + spread)))

    def _reconnect_loop(self) -> bool:
        """Try to connect again until it works, the attempts are used up or ``disconnect()``.

        :returns: ``True`` once connected (else the client is DOWN).
        """
        attempt = 0
        while not self._abort.wait(self._delay(attempt)):
            attempt += 1
            try:
                self._open()
            except ConnectionError as exc:
                self.logger.info("reconnection attempt %d failed: %s", attempt, exc)
            except Exception:  # a url, headers or auth callable that raised, a bad value
                self.logger.exception("reconnection attempt %d failed", attempt)
            else:
                self.logger.info("reconnected after %d attempt(s)", attempt)
                return True
            if self.reconnection_attempts and attempt >= self.reconnection_attempts:
                self.logger.info("giving up after %d reconnection attempt(s)", attempt)
                break
        self._finish()
        return False

    # -- ending -----------------------------------------------------------------------------------

    def disconnect(self) -> None:
        """Leave every namespace, close the session (after what was queued is sent) and stop
        reconnecting. Idempotent; never raises.

        Blocks until the ``disconnect`` handlers ran, unless called from a handler (they then run
        right after it returns).
        """
        self._abort.set()
        runner = self._runner
        in_handler = runner is not None and runner.running_here()
        if runner is not None and in_handler:
            runner.unbound()  # the dispatcher must not wait for room behind this handler
        session = self._session
        self.connected = False
        self._up.clear()
        if session is not None and not session.closed:
            session.final = True
            with contextlib.suppress(NotConnectedError):
                self._send(session, session.leave_all())
            session.close()
        reconnector = self._reconnector
        if reconnector is not None and reconnector is not gevent.getcurrent():
            reconnector.join()
        if runner is not None and not in_handler:
            runner.join(self._builder_options["timeout"])

    shutdown = disconnect

    def _finish(self) -> None:
        self.connected = False
        if self._runner is not None:
            self._runner.close()
        self._down.set()

    def wait(self) -> None:
        """Block until the client is disconnected, no reconnection is pending and the handlers
        queued before (the ``disconnect`` ones included) have run; from a handler, only until
        the first two hold."""
        self._down.wait()
        runner = self._runner
        if runner is not None and not runner.running_here():
            runner.join()

    def _handler_error(self, event: str, namespace: str, exc: BaseException) -> None:
        """A handler raised; logged. Subclasses (the Locust user) may report it elsewhere."""
        self.logger.error(
            "the handler of %r in %s raised", event, namespace, exc_info=(type(exc), exc, None)
        )

    # -- the rest of python-socketio's surface --------------------------------------------------

    @property
    def namespaces(self) -> dict[str, str]:
        """The connected namespaces and their sids (a copy)."""
        session = self._session
        return {} if session is None else session.namespaces

    @property
    def failed_namespaces(self) -> list[str]:
        """The namespaces the server refused at the last connection attempt."""
        session = self._session
        return [] if session is None else [r.namespace for r in session.refusals]

    @property
    def sid(self) -> str | None:
        """The Engine.IO session id, or ``None`` when not connected."""
        session = self._session
        if session is None or session.closed or session.eio is None:
            return None
        return session.eio.sid

    def get_sid(self, namespace: str | None = None) -> str | None:
        """The sid of ``namespace`` (``'/'`` by default), or ``None`` when not connected."""
        return self.namespaces.get(namespace or "/")

    def transport(self) -> str | None:
        """``'polling'`` or ``'websocket'``; ``None`` without a session."""
        session = self._session
        return None if session is None or session.eio is None else session.eio.transport

    def start_background_task(
        self, target: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> gevent.Greenlet[Any, Any]:
        """Run ``target(*args, **kwargs)`` in a new greenlet (which has ``join()``)."""
        return gevent.spawn(target, *args, **kwargs)

    def sleep(self, seconds: float = 0) -> None:
        """Sleep the calling greenlet."""
        gevent.sleep(seconds)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<geventio.socketio.Client {state} namespaces={sorted(self.namespaces)}>"
