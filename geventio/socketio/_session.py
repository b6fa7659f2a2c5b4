"""One Engine.IO session of a Socket.IO client, and the options that open it.

A :class:`geventio.socketio.Client` opens a new :class:`Session` for its first connection and for
each reconnection attempt; the Socket.IO state of the session (:class:`Protocol`) dies with it.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gevent.event

from geventio import Client as EngineIOClient
from geventio import ClientBuilder, CloseReason
from geventio.socketio._state import Protocol, Refused
from geventio.socketio.exceptions import ConnectionError

__all__ = ["Session", "builder_options"]

#: geventio options a Socket.IO client accepts as keywords, with the builder field they set.
_GEVENTIO_OPTIONS = {
    "tls_config": "tls_config",
    "timeout": "timeout",
    "max_message_size": "max_message_size",
    "inbox_size": "inbox_size",
    "send_buffer": "send_buffer",
    "max_packets_per_post": "max_packets_per_post",
    "proxy": "proxy",
    "no_proxy": "no_proxy",
    "query": "query",
}
#: python-engineio options that mean nothing here (logging goes to ``logging`` anyway).
_IGNORED = frozenset({"engineio_logger", "websocket_extra_options", "timestamp_requests"})


def builder_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`geventio.ClientBuilder` fields for a Socket.IO client's keyword options.

    python-engineio's ``request_timeout`` (default 5 s) bounds each connecting step, and
    ``ssl_verify=False`` skips certificate checks; geventio's own options (``tls_config``,
    ``proxy`` and the rest) pass through.

    :raises TypeError: for an option neither knows (``http_session`` included: it is a
        ``requests`` session, which geventio does not use).
    """
    fields: dict[str, Any] = {"timeout": float(options.get("request_timeout", 5))}
    for name, value in options.items():
        if name in _GEVENTIO_OPTIONS:
            fields[_GEVENTIO_OPTIONS[name]] = value
        elif name not in _IGNORED and name not in ("request_timeout", "ssl_verify"):
            raise TypeError(f"unknown option {name!r}")
    if "proxy" in fields:
        fields["proxy_from_env"] = False
    if options.get("ssl_verify", True) is False and "tls_config" not in fields:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        fields["tls_config"] = context
    return fields


class Session:
    """An Engine.IO client and the Socket.IO state on it.

    :param max_attachment_bytes: the bound on one binary packet's attachments.
    """

    def __init__(self, max_attachment_bytes: int) -> None:
        self.proto = Protocol(max_attachment_bytes)
        self.eio: EngineIOClient | None = None
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

    def open(
        self,
        builder: ClientBuilder,
        *,
        path: str,
        headers: Mapping[str, str],
        transports: Sequence[str] | None,
        on_data: Callable[[str | bytes], Any],
        on_close: Callable[[CloseReason], Any],
    ) -> EngineIOClient:
        """Open the Engine.IO session; blocks as ``ClientBuilder.build*`` does.

        :raises geventio.EngineIOError: it could not be opened.
        :raises ValueError: for an unknown transport, a bad URL or bad headers.
        """
        builder.path("/" + path.strip("/") + "/").headers(dict(headers))
        builder.on_data(on_data).on_close(on_close)
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

    def break_off(self) -> None:
        """Close after a Socket.IO protocol error (from the Engine.IO dispatcher's greenlet)."""
        self.reason = CloseReason.TRANSPORT_ERROR
        self.close()

    def close(self) -> None:
        """Close the Engine.IO session (blocking as its ``disconnect()``). Idempotent."""
        if self.eio is not None:
            self.eio.disconnect()
