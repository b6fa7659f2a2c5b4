"""The I/O steps of opening a session: the dialer of both transports, and the WebSocket probe.

Nothing here holds session state: :class:`geventio._session.Session` calls these steps and makes
the state changes. A :class:`Dialer` knows where the server is and how to reach it (headers,
cookies, TLS, proxy, timeouts); :func:`probe` runs the upgrade's ``2probe``/``3probe`` exchange.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from geventio._connection import Closed, Connection, Event, Frame, State, Upgrade
from geventio._cookies import CookieJar
from geventio._headers import checked_headers
from geventio._options import Options
from geventio._proxy import Proxy, select_proxy
from geventio._reason import CloseReason
from geventio._transports.polling import PollingTransport
from geventio._transports.websocket import WebSocketTransport
from geventio._url import Endpoint, parse_url
from geventio.exceptions import ConnectError, ProtocolError

__all__ = ["Dialer", "check_open", "closed_during_upgrade", "first_frame", "probe"]

monotonic = time.monotonic


def _proxy_for(endpoint: Endpoint, options: Options) -> Proxy | None:
    """The proxy for this session's server: the builder's, else the environment's.

    :raises ConnectError: for a proxy URL in the environment that is not an http:// proxy.
    """
    try:
        return select_proxy(
            endpoint.host,
            endpoint.port,
            endpoint.secure,
            configured=options.proxy,
            from_env=options.proxy_from_env,
            no_proxy=options.no_proxy,
            environ=os.environ,
        )
    except ValueError as exc:
        raise ConnectError(f"proxy from the environment: {exc}") from None


@dataclass
class Dialer:
    """Opens the transports of one session; one cookie jar for all of them.

    :raises ConnectError: (from :meth:`create`) for a bad proxy in the environment.
    """

    options: Options
    endpoint: Endpoint
    cookies: CookieJar
    proxy: Proxy | None
    headers: dict[str, str]

    @classmethod
    def create(cls, options: Options) -> Dialer:
        endpoint = parse_url(options.url, options.path, options.query)
        return cls(options, endpoint, CookieJar(), _proxy_for(endpoint, options), {})

    def resolve_headers(self) -> None:
        """Take the headers for this connect: the builder's, or what its callable returns now.

        :raises ValueError: (or ``TypeError``) for a header the callable returned that breaks
            the rule of :meth:`ClientBuilder.headers`; nothing was sent.
        """
        headers = self.options.headers
        self.headers = checked_headers(headers() if callable(headers) else headers)

    def polling(self) -> PollingTransport:
        """A polling transport for a new session (it connects on its first request).

        Takes the headers for this connect (see :meth:`resolve_headers`); blocks on nothing.

        :raises ValueError: as :meth:`resolve_headers`.
        """
        self.resolve_headers()
        o = self.options
        return PollingTransport(
            self.endpoint,
            headers=self.headers,
            cookies=self.cookies,
            ssl_context=o.tls_config,
            timeout=o.timeout,
            max_message_size=o.max_message_size,
            proxy=self.proxy,
        )

    def websocket(self, sid: str | None) -> WebSocketTransport:
        """Open a WebSocket (for a new session, or the upgrade of ``sid``).

        Blocks the calling greenlet through the TCP, TLS and WebSocket handshakes. For a new
        session, it takes the headers for this connect first (see :meth:`resolve_headers`).

        :raises ConnectError: (or ``ConnectTimeout``) when it cannot be opened.
        :raises ValueError: as :meth:`resolve_headers`.
        """
        if sid is None:
            self.resolve_headers()
        o = self.options
        return WebSocketTransport.connect(
            self.endpoint,
            self.endpoint.target("websocket", sid),
            headers=self.headers,
            cookies=self.cookies,
            ssl_context=o.tls_config,
            timeout=o.timeout,
            max_message_size=o.max_message_size,
            proxy=self.proxy,
        )


def check_open(conn: Connection, events: list[Event]) -> list[Event]:
    """Check that the first packet opened the session; returns ``events``.

    :raises EngineIOError: the error that closed it, else :class:`ProtocolError`.
    """
    if conn.state is not State.OPEN:
        error = next((e.error for e in events if isinstance(e, Closed)), None)
        raise error or ProtocolError("the server did not open the session")
    return events


def first_frame(ws: WebSocketTransport, conn: Connection, timeout: float) -> list[Event]:
    """Read the open packet of a WebSocket-only session into ``conn``; its events.

    Blocks the calling greenlet, at most ``timeout``.

    :raises ConnectError: the server closed the WebSocket first (``ConnectTimeout`` past
        ``timeout``).
    """
    first = ws.recv(timeout, connecting=True)
    if first is None:
        raise ConnectError("the server closed the WebSocket before the open packet")
    return conn.receive_frame(first, monotonic())


def probe(
    ws: WebSocketTransport,
    frame: Frame,
    conn: Connection,
    timeout: float,
    closed: Callable[[], CloseReason | None],
) -> None:
    """Send the probe ``frame`` on ``ws`` and feed its answer to ``conn`` (then polling pauses).

    Blocks the calling greenlet until the answer came, at most ``timeout``. Closes ``ws`` on any
    failure (at once when the session is gone or the peer let the probe time out).

    :param closed: the session's close reason, ``None`` while it is open; checked before and
        after the exchange.
    :raises ConnectError: the session closed meanwhile (or a disconnect abandoned the probe).
    :raises EngineIOError: the exchange failed (``ConnectTimeout`` past ``timeout``, a
        ``ProtocolError`` for a wrong answer).
    """
    try:
        if closed() is not None:
            raise closed_during_upgrade(closed())
        ws.send([frame])
        answer = ws.recv(timeout, connecting=True)
        if closed() is not None or conn.upgrade is not Upgrade.PROBING:
            raise closed_during_upgrade(closed())
        conn.receive_probe(answer or "")
    except BaseException as exc:
        # a peer that let the probe time out would not answer a close handshake either
        at_once = closed() is not None or isinstance(exc, TimeoutError)
        ws.close(0 if at_once else min(1.0, timeout))
        raise


def closed_during_upgrade(reason: CloseReason | None) -> ConnectError:
    """The error of an upgrade that the session's close cut short."""
    return ConnectError(f"the session closed during the upgrade ({reason})")
