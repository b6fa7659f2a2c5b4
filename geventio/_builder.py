"""``ClientBuilder`` and ``connect()``: the rust_engineio-style way to make a connected client."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from geventio._client import Client
from geventio._handshake import Handshake
from geventio._headers import check_path, check_query, checked_headers
from geventio._options import HeadersOption, Message, Options
from geventio._packet import Packet
from geventio._proxy import parse_proxy
from geventio._reason import CloseReason
from geventio._session import Session
from geventio._url import Endpoint, parse_url
from geventio.exceptions import EngineIOError

__all__ = ["BUILDS", "ClientBuilder", "connect"]


class ClientBuilder:
    """Collects options, then opens a session with one of the ``build*`` methods.

    Every option method returns the builder. A builder can build many clients; each ``build*``
    makes a new one.

    Whatever goes on the wire (the URL's path and query, :meth:`path`, :meth:`query`,
    :meth:`headers`) is checked when it is given, by one rule for both transports (see
    :meth:`headers`), so that the polling requests and the WebSocket handshake carry the same.

    :param url: ``http``, ``https``, ``ws`` or ``wss`` URL of the server.
    :raises ValueError: at once, for any other scheme, a URL without a host, or a path or query
        that cannot be sent (see :meth:`path` and :meth:`query`).
    """

    def __init__(self, url: str) -> None:
        _checked(parse_url(url))
        self._options = Options(url=url)

    def _set(self, **changes: Any) -> ClientBuilder:
        self._options = replace(self._options, **changes)
        return self

    def path(self, path: str) -> ClientBuilder:
        """The Engine.IO path.

        Default: the URL's path if it is not empty or ``/``, else ``/engine.io/``.

        :raises ValueError: for a character outside printable ASCII (a space, a control, a
            non-ASCII letter): percent-encode it (``/%C3%A9/`` for ``/é/``).
        """
        _checked(parse_url(self._options.url, path))
        return self._set(path=path)

    def query(self, query: Mapping[str, str]) -> ClientBuilder:
        """Extra query parameters for every request (percent-encoded as UTF-8).

        :raises ValueError: for a key or value UTF-8 cannot encode (a lone surrogate).
        """
        params = {str(k): str(v) for k, v in query.items()}
        check_query(params.items())
        return self._set(query=params)

    def headers(self, headers: HeadersOption) -> ClientBuilder:
        """Headers for every polling request and the WebSocket handshake.

        The rule, the same on both transports (h11's, RFC 7230): a name is a token (letters,
        digits and ``!#$%&'*+-.^_`|~``); a value is empty or printable characters (ASCII, or
        latin-1 ``0x80``-``0xFF``) with spaces or tabs only between them: no leading or
        trailing whitespace, no CR, LF, NUL or other control.

        :param headers: a mapping, or a callable returning one, called at each connect (its
            headers are checked there: ``build*()`` then raises the ``ValueError``).
        :raises ValueError: for a header that breaks the rule; the message names it.
        :raises TypeError: for a name or value that is not a ``str``.
        """
        return self._set(headers=headers if callable(headers) else checked_headers(headers))

    def tls_config(self, context: ssl.SSLContext) -> ClientBuilder:
        """The TLS context for both transports (CA, client certificate, verification)."""
        return self._set(tls_config=context)

    def timeout(self, seconds: float) -> ClientBuilder:
        """Bound on every blocking step of connecting (default 10 s)."""
        if seconds <= 0:
            raise ValueError("timeout must be positive")
        return self._set(timeout=float(seconds))

    def max_message_size(self, size: int) -> ClientBuilder:
        """The largest message accepted, in bytes (default 16 MiB).

        A larger one closes the client with ``TRANSPORT_ERROR`` before it is read whole. A poll
        answer may hold many messages: it may reach ``max(64 MiB, 4 * size)`` in all.
        """
        if size <= 0:
            raise ValueError("max_message_size must be positive")
        return self._set(max_message_size=size)

    def inbox_size(self, size: int) -> ClientBuilder:
        """How many received messages (or pending callbacks) may wait before reading pauses."""
        if size <= 0:
            raise ValueError("inbox_size must be positive")
        return self._set(inbox_size=size)

    def send_buffer(self, size: int) -> ClientBuilder:
        """How many bytes of queued outgoing messages make ``send()`` block (default 1 MiB).

        Past it, ``send()`` and ``emit()`` queue the message, then block the sending greenlet
        until the writer has taken enough (or the client closes): backpressure on a peer that
        does not read, instead of a queue that grows without bound.
        """
        if size <= 0:
            raise ValueError("send_buffer must be positive")
        return self._set(send_buffer=size)

    def max_packets_per_post(self, count: int) -> ClientBuilder:
        """The most packets one polling POST carries (default 16).

        python-engineio servers drop a POST holding more than 16 packets (yet answer 200 OK),
        hence the default. A server without that limit (Node ``engine.io`` has none) can take
        more: a POST then carries up to ``maxPayload`` bytes, and polling throughput rises.
        """
        if count <= 0:
            raise ValueError("max_packets_per_post must be positive")
        return self._set(max_packets_per_post=count)

    def proxy(
        self, url: str | None, *, no_proxy: str | Iterable[str] | None = None
    ) -> ClientBuilder:
        """Connect through an HTTP proxy, whatever the environment says.

        By default the proxy comes from ``HTTP_PROXY`` / ``HTTPS_PROXY`` and ``NO_PROXY``, read
        as the standard library and requests read them: their lowercase names win, even when
        empty (``http_proxy=""`` means no proxy, whatever ``HTTP_PROXY`` says). Polling over
        http sends absolute-form requests to the proxy; ws, wss and polling over https go
        through a ``CONNECT`` tunnel. Credentials in the URL are sent as
        ``Proxy-Authorization: Basic``.

        :param url: ``http://[user:password@]host[:port]``, or ``None`` to connect directly and
            ignore the environment.
        :param no_proxy: hosts reached directly, as in ``NO_PROXY`` (names with their
            subdomains, IP addresses, CIDR networks, ``:port`` suffixes, ``*``).
        :raises ValueError: at once, for a proxy URL that is not ``http://`` or has no host.
        """
        if url is not None:
            parse_proxy(url)
        if no_proxy is not None and not isinstance(no_proxy, str):
            no_proxy = ",".join(no_proxy)
        return self._set(proxy=url, proxy_from_env=False, no_proxy=no_proxy)

    def on_open(self, callback: Callable[[Handshake], Any]) -> ClientBuilder:
        return self._set(on_open=callback)

    def on_data(self, callback: Callable[[Message], Any]) -> ClientBuilder:
        """Receive every message here (then ``Client.receive()`` gets none)."""
        return self._set(on_data=callback)

    def on_packet(self, callback: Callable[[Packet], Any]) -> ClientBuilder:
        return self._set(on_packet=callback)

    def on_error(self, callback: Callable[[EngineIOError], Any]) -> ClientBuilder:
        return self._set(on_error=callback)

    def on_close(self, callback: Callable[[CloseReason], Any]) -> ClientBuilder:
        return self._set(on_close=callback)

    def on_upgrade(self, callback: Callable[[str], Any]) -> ClientBuilder:
        return self._set(on_upgrade=callback)

    def build(self) -> Client:
        """Polling handshake, then upgrade to WebSocket when offered (else stay on polling).

        Blocks until the session is open and the upgrade completed or failed.

        :raises ConnectError: the session could not be opened (``ConnectTimeout`` past timeout).
        :raises ProtocolError: the server's handshake was invalid.
        :raises ValueError: a header returned by the headers callable breaks the rule of
            :meth:`headers` (before anything is sent); so do all the ``build*`` methods.
        """
        session = Session(self._options)
        session.open_polling("try")
        return Client(session)

    def build_polling(self) -> Client:
        """Polling only; never upgrades. Raises as :meth:`build`."""
        session = Session(self._options)
        session.open_polling("no")
        return Client(session)

    def build_websocket(self) -> Client:
        """WebSocket from the first request, no polling at all.

        :raises ConnectError: also where the server does not allow WebSocket.
        """
        session = Session(self._options)
        session.open_websocket()
        return Client(session)

    def build_websocket_with_upgrade(self) -> Client:
        """Polling handshake, then upgrade.

        :raises ConnectError: also where the server offers no upgrade or the upgrade fails.
        """
        session = Session(self._options)
        session.open_polling("require")
        return Client(session)

    def build_with_fallback(self) -> Client:
        """Try :meth:`build`, then :meth:`build_websocket`, then :meth:`build_polling`.

        :raises EngineIOError: the last attempt's error.
        """
        attempts = (self.build, self.build_websocket, self.build_polling)
        for attempt in attempts[:-1]:
            try:
                return attempt()
            except EngineIOError:
                continue
        return attempts[-1]()


def _checked(endpoint: Endpoint) -> None:
    """Check that the path and the query of ``endpoint`` can be sent.

    :raises ValueError: naming the path or the query parameter.
    """
    check_path(endpoint.path)
    check_query(endpoint.query)


#: The ``auto``/``websocket``/``polling`` choices of the CLI and ``EngineIOUser.transport``,
#: and the builder method each one calls.
BUILDS: Mapping[str, Callable[[ClientBuilder], Client]] = {
    "auto": ClientBuilder.build,
    "websocket": ClientBuilder.build_websocket,
    "polling": ClientBuilder.build_polling,
}


def connect(
    url: str, *, transports: Iterable[str] = ("polling", "websocket"), **options: Any
) -> Client:
    """Open a connected :class:`Client`; keyword options mirror the builder methods.

    ``transports=("websocket",)`` is ``build_websocket()``, ``("polling",)`` is
    ``build_polling()``, and both (the default) is ``build()``.

    :raises ValueError: for an unknown option, transport or URL scheme.
    :raises ConnectError: as the builder's ``build*`` methods.
    """
    builder = ClientBuilder(url)
    for name, value in options.items():
        method = getattr(ClientBuilder, name, None)
        if name.startswith(("_", "build")) or method is None:
            raise ValueError(f"unknown option {name!r}")
        method(builder, value)
    chosen = tuple(transports)
    if chosen == ("websocket",):
        return builder.build_websocket()
    if chosen == ("polling",):
        return builder.build_polling()
    if set(chosen) == {"polling", "websocket"} and chosen[0] == "polling":
        return builder.build()
    raise ValueError(f"unsupported transports {chosen!r}")
