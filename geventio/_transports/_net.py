"""The I/O edge shared by both transports: cooperative sockets, TLS, error mapping.

Every socket here is a ``gevent.socket`` socket and every TLS socket a ``gevent.ssl`` socket, so the
transports cooperate with the hub whether or not the process is monkey-patched. Foreign exceptions
(``OSError``, ``ssl.SSLError``, urllib3's and wsproto's) are translated once, in
:func:`map_errors` (or :func:`reraise` on hot paths).
"""

from __future__ import annotations

import ipaddress
import logging
import socket as std_socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, NoReturn

import gevent
import gevent.socket
import gevent.ssl
import urllib3.exceptions
import wsproto.utilities

from geventio._proxy import Proxy, TunnelReply
from geventio.exceptions import (
    ConnectError,
    ConnectTimeout,
    EngineIOError,
    ProtocolError,
    TransportError,
)

__all__ = [
    "CooperativeSSLContext",
    "ProxyTimeout",
    "deadline",
    "map_errors",
    "open_proxy_socket",
    "open_socket",
    "open_tunnel",
    "reraise",
    "wrap_tls",
]

logger = logging.getLogger("geventio")


def open_socket(host: str, port: int, timeout: float | None) -> gevent.socket.socket:
    """Open a cooperative TCP connection with ``TCP_NODELAY``; blocks the calling greenlet only.

    :raises OSError: as ``socket.create_connection`` does (callers map it).
    """
    family = _literal_family(host)
    if family is None:
        sock = gevent.socket.create_connection((host, port), timeout=timeout)
    else:  # an IP address: no trip through the resolver (gevent's runs on a thread pool)
        sock = gevent.socket.socket(family, std_socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
    with suppress(OSError):  # not a TCP socket on some platforms
        sock.setsockopt(std_socket.IPPROTO_TCP, std_socket.TCP_NODELAY, 1)
    return sock


class ProxyTimeout(TimeoutError):
    """A proxy did not connect or answer in time; its text names the proxy."""


def open_proxy_socket(proxy: Proxy, timeout: float | None) -> gevent.socket.socket:
    """Open a TCP connection to ``proxy``; a failure names the proxy.

    :raises OSError: as :func:`open_socket`, but a :class:`ProxyTimeout` for a timeout and a
        ``ConnectionError`` for other failures, both naming the proxy.
    """
    try:
        return open_socket(proxy.host, proxy.port, timeout)
    except TimeoutError:
        raise ProxyTimeout(f"the proxy {proxy.display} timed out") from None
    except OSError as exc:
        raise ConnectionError(f"cannot reach the proxy {proxy.display}: {exc}") from exc


def open_tunnel(proxy: Proxy, host: str, port: int, timeout: float | None) -> gevent.socket.socket:
    """Open a TCP connection to ``host:port`` through ``proxy``'s ``CONNECT`` tunnel.

    Blocks the calling greenlet, at most ``timeout`` for the whole (a proxy that trickles its
    answer included).

    :raises ConnectError: the proxy refused the tunnel (with its ``status`` and ``body``, e.g.
        407 without valid credentials, 502 when it could not reach the server) or did not
        answer in HTTP.
    :raises ProxyTimeout: past ``timeout``.
    :raises OSError: as :func:`open_socket`, and for a proxy that hangs up (callers map it).
    """
    late = ProxyTimeout(f"the proxy {proxy.display} timed out")
    with gevent.Timeout(timeout, late):
        return _tunnel(proxy, host, port, timeout)


def _tunnel(proxy: Proxy, host: str, port: int, timeout: float | None) -> gevent.socket.socket:
    sock = open_proxy_socket(proxy, timeout)
    try:
        sock.sendall(proxy.connect_request(host, port))
        reply = TunnelReply()
        while reply.status is None:
            data = sock.recv(4096)
            if not data:
                raise ConnectionResetError(f"the proxy {proxy.display} closed the connection")
            try:
                reply.feed(data)
            except ValueError as exc:
                raise ConnectError(f"proxy {proxy.display}: {exc}") from None
        if 200 <= reply.status < 300 and not reply.rest:
            return sock
        what = f"proxy {proxy.display} refused CONNECT {host}:{port}"
        if 200 <= reply.status < 300:
            raise ConnectError(f"{what}: it sent data before the tunnel was used")
        body = _refusal_body(sock, reply)
        raise ConnectError(
            f"{what}: HTTP {reply.status} {reply.reason}".rstrip(), status=reply.status, body=body
        )
    except BaseException:
        sock.close()
        raise


def _refusal_body(sock: gevent.socket.socket, reply: TunnelReply) -> str:
    """Up to 2000 bytes of a refusal's body (what its Content-Length announces, if anything)."""
    body, wanted = reply.rest, min(reply.content_length or 0, 2000)
    with suppress(OSError):
        while len(body) < wanted:
            data = sock.recv(4096)
            if not data:
                break
            body += data
    return body[:2000].decode("utf-8", "replace")


def _literal_family(host: str) -> int | None:
    """``AF_INET`` or ``AF_INET6`` when ``host`` is an IP address, else ``None``."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return std_socket.AF_INET if address.version == 4 else std_socket.AF_INET6


def wrap_tls(
    sock: gevent.socket.socket, context: ssl.SSLContext, hostname: str
) -> gevent.ssl.SSLSocket:
    """Run the TLS handshake on ``sock`` with the user's (stdlib) context, cooperatively."""
    return gevent.ssl.SSLSocket(sock=sock, server_hostname=hostname, _context=context)


class CooperativeSSLContext:
    """A stand-in for a stdlib :class:`ssl.SSLContext` that wraps sockets with ``gevent.ssl``.

    urllib3 calls ``wrap_socket`` on the context it is given; the stdlib context would make a
    blocking stdlib socket. Everything else is delegated to the user's context, except ALPN,
    which is left as the user set it.
    """

    def __init__(self, context: ssl.SSLContext):
        object.__setattr__(self, "_context", context)

    def wrap_socket(
        self, sock: gevent.socket.socket, server_hostname: str | None = None, **_: Any
    ) -> gevent.ssl.SSLSocket:
        return gevent.ssl.SSLSocket(
            sock=sock, server_hostname=server_hostname, _context=self._context
        )

    def set_alpn_protocols(self, protocols: list[str]) -> None:
        """Leave the user's context untouched: HTTP/1.1 needs no ALPN."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._context, name, value)


_TIMEOUTS = (TimeoutError, urllib3.exceptions.TimeoutError)


@contextmanager
def deadline(seconds: float | None, what: str, *, connecting: bool) -> Iterator[None]:
    """Bound the whole block (every ``recv`` of a peer that trickles included) by ``seconds``.

    The timer raises a private ``gevent.Timeout``, a ``BaseException`` that no library's
    ``except`` in between takes for its own; the ``finally`` blocks on the way (urllib3's
    ``urlopen``, the transports') close the connection it interrupted. ``None``: no bound.

    :raises ConnectTimeout: past ``seconds`` while ``connecting``.
    :raises TransportError: past ``seconds`` afterwards.
    """
    timer = gevent.Timeout(seconds)
    timer.start()
    try:
        yield
    except gevent.Timeout as exc:
        if exc is not timer:
            raise  # someone else's timeout
        raise (ConnectTimeout if connecting else TransportError)(f"{what}: timed out") from None
    finally:
        timer.close()


@contextmanager
def map_errors(what: str, *, connecting: bool) -> Iterator[None]:
    """Translate foreign exceptions raised by ``what`` into geventio's (see :func:`reraise`)."""
    try:
        yield
    except Exception as exc:
        reraise(exc, what, connecting=connecting)


def reraise(exc: Exception, what: str, *, connecting: bool) -> NoReturn:
    """Raise geventio's exception for ``exc`` (from it), or ``exc`` itself when it has none.

    For hot paths that cannot afford :func:`map_errors`, a context manager per call:
    ``except Exception as exc: reraise(exc, what, connecting=False)``.
    """
    mapped = _translate(exc, what, connecting=connecting)
    if mapped is exc:
        raise exc
    raise mapped from exc


def _translate(exc: Exception, what: str, *, connecting: bool) -> Exception:
    """geventio's exception for a foreign one raised by ``what`` (``exc`` itself if unknown).

    While ``connecting``, failures become :class:`ConnectError` (timeouts
    :class:`ConnectTimeout`); afterwards they become :class:`TransportError`.
    """
    if isinstance(exc, EngineIOError):
        return exc
    failure = ConnectError if connecting else TransportError
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        # urllib3 derives it from ConnectTimeoutError, yet it is a refusal or a DNS failure;
        # its text starts with the connection object's repr, so only its message is kept
        return failure(f"{what}: {exc._message}")
    if isinstance(exc, _TIMEOUTS):
        proxy = exc if isinstance(exc, ProxyTimeout) else exc.__cause__  # urllib3 wraps it
        text = str(proxy) if isinstance(proxy, ProxyTimeout) else "timed out"
        return (ConnectTimeout if connecting else TransportError)(f"{what}: {text}")
    if isinstance(exc, wsproto.utilities.LocalProtocolError):  # pragma: no cover - a bug of ours
        return TransportError(f"{what}: {exc}")
    if isinstance(exc, (wsproto.utilities.RemoteProtocolError, UnicodeDecodeError)):
        # wsproto decodes some header values of the server's 101 (Sec-WebSocket-Protocol and
        # -Extensions) as ASCII: bytes from the peer that are not the text they must be
        return (ConnectError if connecting else ProtocolError)(f"{what}: {exc}")
    if isinstance(exc, (OSError, urllib3.exceptions.HTTPError)):
        return failure(f"{what}: {_describe(exc)}")
    return exc


def _describe(exc: BaseException) -> str:
    """The most telling text: urllib3 wraps the real cause in ``reason``."""
    reason = getattr(exc, "reason", None)
    if isinstance(exc, urllib3.exceptions.HTTPError) and isinstance(reason, BaseException):
        return str(reason) or type(reason).__name__
    return str(exc) or type(exc).__name__
