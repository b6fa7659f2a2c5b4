"""``geventio.socketio.SimpleClient``: python-socketio's ``SimpleClient``, on greenlets."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import gevent
import gevent.event

from geventio.socketio._client import Client
from geventio.socketio.exceptions import (
    BadNamespaceError,
    DisconnectedError,
    NotConnectedError,
    TimeoutError,
)

__all__ = ["SimpleClient"]

#: Events kept for :meth:`SimpleClient.receive`; past it the handlers (and the reader) wait.
INBOX_SIZE = 1024


class SimpleClient:
    """One namespace, events pulled with :meth:`receive`; reconnects as :class:`Client` does.

    Positional and keyword arguments are :class:`Client`'s. Every method blocks only the
    calling greenlet.
    """

    client_class = Client

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.client_args = args
        self.client_kwargs = kwargs
        self.client: Client | None = None
        self.namespace = "/"
        self._events: deque[list[Any]] = deque()
        self._arrived = gevent.event.Event()
        self._taken = gevent.event.Event()
        self._closing = False

    def connect(  # noqa: PLR0917 - python-socketio's signature
        self,
        url: Any,
        headers: Any = None,
        auth: Any = None,
        transports: str | list[str] | None = None,
        namespace: str = "/",
        socketio_path: str = "socket.io",
        wait_timeout: float = 5,
    ) -> None:
        """Connect to ``namespace``; arguments and errors as :meth:`Client.connect`.

        :raises RuntimeError: when already connected.
        """
        if self.connected:
            raise RuntimeError("Already connected")
        self.namespace = namespace
        self._events.clear()
        self._closing = False
        client = self.client_class(*self.client_args, **self.client_kwargs)
        client.on("*", self._keep, namespace=namespace)
        client.connect(
            url,
            headers=headers,
            auth=auth,
            transports=transports,
            namespaces=[namespace],
            socketio_path=socketio_path,
            wait_timeout=wait_timeout,
        )
        self.client = client

    def _keep(self, event: str, *args: Any) -> None:
        """The catch-all handler: keep the event, waiting (in the handlers' greenlet) for room."""
        while len(self._events) >= INBOX_SIZE and not self._closing:
            self._taken.clear()
            self._taken.wait()
        self._events.append([event, *args])
        self._arrived.set()

    @property
    def connected(self) -> bool:
        """``True`` from ``connect()`` until the connection is gone for good (it stays ``True``
        while a reconnection is pending)."""
        return self.client is not None and not self.client._down.is_set()

    @property
    def sid(self) -> str | None:
        """The namespace's sid (it changes when the client reconnects)."""
        return self.client.get_sid(self.namespace) if self.client else None

    @property
    def transport(self) -> str:
        """``'polling'`` or ``'websocket'``; ``''`` when not connected."""
        return (self.client.transport() or "") if self.client else ""

    def _client(self) -> Client:
        """The client once it is connected, waiting out a pending reconnection.

        :raises DisconnectedError: the connection is gone for good.
        """
        client = self.client
        while client is not None and not client.connected and not client._down.is_set():
            gevent.wait([client._up, client._down], count=1)
        if client is None or client._down.is_set():
            raise DisconnectedError("the client is disconnected")
        return client

    def emit(self, event: str, data: Any = None) -> None:
        """Send an event (``data`` as :meth:`Client.emit`); returns once queued.

        :raises DisconnectedError: the connection is gone for good.
        """
        while True:
            try:
                self._client().emit(event, data, namespace=self.namespace)
                return
            except (NotConnectedError, BadNamespaceError):
                continue  # lost between the check and the send: wait for the reconnection

    def call(self, event: str, data: Any = None, timeout: float = 60) -> Any:
        """Send an event and block until the server acknowledges it; returns as
        :meth:`Client.call`.

        :raises TimeoutError: after ``timeout`` seconds, or once the connection ended first.
        :raises DisconnectedError: the connection is gone for good.
        """
        while True:
            try:
                return self._client().call(event, data, namespace=self.namespace, timeout=timeout)
            except (NotConnectedError, BadNamespaceError):
                continue

    def receive(self, timeout: float | None = None) -> list[Any]:
        """The next event, as ``[event, *args]``; blocks the calling greenlet.

        :raises TimeoutError: when nothing came within ``timeout`` seconds.
        :raises DisconnectedError: once the connection is gone for good and every event was
            taken, also while waiting.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        events = self._events
        while not events:
            client = self.client
            if client is None or client._down.is_set():
                raise DisconnectedError("the client is disconnected")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"no event within {timeout} s")
            self._arrived.clear()
            gevent.wait([self._arrived, client._down], timeout=left, count=1)
        item = events.popleft()
        self._taken.set()
        return item

    def disconnect(self) -> None:
        """Disconnect; idempotent."""
        self._closing = True  # a handler waiting for room in the inbox must not hold it up
        self._taken.set()
        client = self.client
        if client is not None:
            client.disconnect()

    def __enter__(self) -> SimpleClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()
