"""One Engine.IO session of a Socket.IO client, and the options that open it.

A :class:`geventio.socketio.Client` opens a new :class:`Session` for its first connection and for
each reconnection attempt; the Socket.IO state of the session (:class:`Protocol`) dies with it.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gevent.event

from geventio import Client as EngineIOClient
from geventio import ClientBuilder, CloseReason
from geventio.socketio._runner import Runner
from geventio.socketio._state import Acked, Connected, Protocol, Received, Refused
from geventio.socketio.exceptions import ConnectionError, ProtocolError, TimeoutError

__all__ = ["Session", "builder_options"]

logger = logging.getLogger("geventio.socketio")

#: geventio options a Socket.IO client accepts as keywords: each is the builder method of its name.
_GEVENTIO_OPTIONS = frozenset(
    {
        "tls_config",
        "timeout",
        "max_message_size",
        "inbox_size",
        "send_buffer",
        "max_packets_per_post",
        "query",
        "proxy",
        "no_proxy",
    }
)
#: python-engineio options that mean nothing here (logging goes to ``logging`` anyway).
_IGNORED = frozenset({"engineio_logger", "websocket_extra_options", "timestamp_requests"})


def builder_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`geventio.ClientBuilder` settings for a Socket.IO client's keyword options,
    checked by the builder's own methods.

    python-engineio's ``request_timeout`` (default 5 s) bounds each connecting step, and
    ``ssl_verify=False`` skips certificate checks; geventio's own options (``tls_config``,
    ``proxy`` and the rest) pass through. The result always holds ``timeout``.

    :raises TypeError: for an option neither knows (``http_session`` included: it is a
        ``requests`` session, which geventio does not use).
    :raises ValueError: for a value the builder refuses (a timeout of 0, a bad proxy URL...).
    """
    settings: dict[str, Any] = {"timeout": float(options.get("request_timeout", 5))}
    for name, value in options.items():
        if name in _GEVENTIO_OPTIONS:
            settings[name] = value
        elif name not in _IGNORED and name not in ("request_timeout", "ssl_verify"):
            raise TypeError(f"unknown option {name!r}")
    if options.get("ssl_verify", True) is False and "tls_config" not in settings:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        settings["tls_config"] = context
    configure(ClientBuilder("http://localhost"), settings)  # refuses bad values now
    return settings


def configure(builder: ClientBuilder, settings: Mapping[str, Any]) -> ClientBuilder:
    """Apply :func:`builder_options`' settings through the builder's methods.

    :raises ValueError: as those methods.
    """
    for name, value in settings.items():
        if name == "proxy":
            builder.proxy(value, no_proxy=settings.get("no_proxy"))
        elif name == "no_proxy":
            if "proxy" not in settings:  # the environment's proxy, with these exceptions
                builder._set(no_proxy=value)
        else:
            getattr(builder, name)(value)
    return builder


class Session:
    """An Engine.IO client, the Socket.IO state on it, and the routing of what the server sends.

    :meth:`on_message` and :meth:`on_close` are the Engine.IO client's ``on_data`` and
    ``on_close``: they run in its dispatcher's greenlet. A waiting ``call()`` gets its ack there at
    once; handlers and ``emit`` callbacks go to the client's :class:`Runner`.

    :param max_attachment_bytes: the bound on one binary packet's attachments.
    :param runner: runs the handlers.
    :param on_end: ``on_end(session, reason)`` once the session ended, after the ``disconnect``
        handlers were queued (for an established session).
    """

    def __init__(
        self,
        max_attachment_bytes: int,
        runner: Runner[Session],
        on_end: Callable[[Session, CloseReason], Any],
    ) -> None:
        self.proto = Protocol(max_attachment_bytes)
        self.eio: EngineIOClient | None = None
        self._runner = runner
        self._on_end = on_end
        #: Set at each namespace answer and when the session ends.
        self.answered = gevent.event.Event()
        self.refusals: list[Refused] = []
        #: ``connect()`` completed on this session: its end fires ``disconnect`` handlers.
        self.established = False
        #: No reconnection after this session (the user or the server ended it).
        self.final = False
        self.closed = False
        #: Overrides the Engine.IO close reason (a Socket.IO protocol error).
        self.reason: CloseReason | None = None
        self._leaving: dict[str, str] = {}

    @property
    def namespaces(self) -> dict[str, str]:
        """The connected namespaces and their sids; empty once closed."""
        return {} if self.closed else self.proto.namespaces

    def on_message(self, message: str | bytes) -> None:
        """Route one Engine.IO message (the Engine.IO dispatcher's greenlet)."""
        if self.closed:
            return
        try:
            events = self.proto.receive(message)
        except ProtocolError as exc:
            logger.error("the server broke the Socket.IO protocol: %s", exc)
            self.reason = CloseReason.TRANSPORT_ERROR
            self.close()
            return
        runner = self._runner
        for event in events:
            if isinstance(event, Received):
                runner.event(self, event)
            elif isinstance(event, Acked):
                token = event.token
                if isinstance(token, gevent.event.AsyncResult):
                    token.set(event.args)
                else:
                    runner.callback(event.namespace, token, event.args)
            elif isinstance(event, Connected):
                runner.fire("connect", event.namespace)
                self.answered.set()
            elif isinstance(event, Refused):
                self.refusals.append(event)
                runner.fire("connect_error", event.namespace, event.data)
                self.answered.set()
            else:
                self._kicked(event.namespace)

    def leave_all(self) -> list[str | bytes]:
        """The DISCONNECT of every namespace (the client is disconnecting); their
        ``disconnect`` handlers still run when the session ends."""
        self._leaving = self.proto.namespaces
        names = [*self._leaving, *self.proto.joining()]
        return [message for name in names for message in self.proto.leave(name)]

    def _kicked(self, namespace: str) -> None:
        self._runner.fire("disconnect", namespace, CloseReason.SERVER_DISCONNECT.value)
        self.answered.set()
        if not self.proto.namespaces and not self.proto.joining():
            self.final = True  # the server left us no namespace: as python-socketio, close
            self.close()

    def on_close(self, reason: CloseReason) -> None:
        """The Engine.IO session ended (its dispatcher's greenlet, after every message)."""
        reason = self.reason or reason
        left = self.namespaces or self._leaving
        self.closed = True
        for token in self.proto.pending_tokens():
            if isinstance(token, gevent.event.AsyncResult):
                token.set_exception(TimeoutError(f"the connection ended ({reason.value})"))
        self.answered.set()
        if self.established:
            for namespace in left:
                self._runner.fire("disconnect", namespace, reason.value, force=True)
        self._on_end(self, reason)

    def open(
        self,
        builder: ClientBuilder,
        *,
        path: str,
        headers: Mapping[str, str],
        transports: Sequence[str] | None,
    ) -> EngineIOClient:
        """Open the Engine.IO session; blocks as ``ClientBuilder.build*`` does.

        :raises geventio.EngineIOError: it could not be opened.
        :raises ValueError: for an unknown transport, a bad URL or bad headers.
        """
        builder.path("/" + path.strip("/") + "/").headers(dict(headers))
        builder.on_data(self.on_message).on_close(self.on_close)
        wanted = set(transports or ("polling", "websocket"))
        if not wanted or wanted - {"polling", "websocket"}:
            raise ValueError(f"transports must be 'polling' and/or 'websocket': {transports!r}")
        if wanted == {"websocket"}:
            self.eio = builder.build_websocket()
        elif wanted == {"polling"}:
            self.eio = builder.build_polling()
        else:
            self.eio = builder.build()
        return self.eio

    def await_answers(self, timeout: float) -> bool:
        """Block until every namespace answered (``True``), or the session ended or ``timeout``
        passed (``False``)."""
        deadline = time.monotonic() + timeout
        while self.proto.joining() and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.answered.clear()
            self.answered.wait(left)
        return not self.closed

    def failure(self) -> ConnectionError:
        """The error ``connect()`` raises after :meth:`await_answers` failed."""
        if self.refusals:
            data = self.refusals[0].data
            if isinstance(data, dict):
                message = str(data.get("message", "Connection refused by server"))
                extra = [data["data"]] if "data" in data else []
            else:
                message, extra = str(data), []
            return ConnectionError(message, *extra)
        if self.closed:
            return ConnectionError(f"the connection ended ({self.reason or 'while connecting'})")
        return ConnectionError(
            "One or more namespaces failed to connect: " + ", ".join(self.proto.joining())
        )

    def abandon(self) -> None:
        """Close a session whose ``connect()`` failed; no handler or reconnection follows."""
        self.final = True
        self.close()

    def close(self) -> None:
        """Close the Engine.IO session (blocking as its ``disconnect()``). Idempotent."""
        if self.eio is not None:
            self.eio.disconnect()
