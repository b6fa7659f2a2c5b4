"""The HTTP proxy's ``CONNECT`` tunnel, and the TCP connection to a proxy.

A failure names the proxy. Errors are ``OSError`` (a ``ProxyTimeout`` for a timeout), mapped by
the transports' edge (:mod:`geventio._transports._errors`), or a ``ConnectError`` for a refusal.
"""

from __future__ import annotations

from contextlib import suppress

import gevent
import gevent.socket

from geventio._proxy import Proxy, TunnelReply
from geventio._transports._errors import MAX_ERROR_BODY, ProxyTimeout, error_body
from geventio._transports._sockets import open_socket
from geventio.exceptions import ConnectError

__all__ = ["open_proxy_socket", "open_tunnel"]


def open_proxy_socket(proxy: Proxy, timeout: float | None) -> gevent.socket.socket:
    """Open a TCP connection to ``proxy``; a failure names the proxy.

    :raises OSError: as :func:`open_socket`, but a ``ProxyTimeout`` for a timeout and a
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
    """Up to :data:`MAX_ERROR_BODY` bytes of a refusal's body (what its Content-Length
    announces, if anything)."""
    body, wanted = reply.rest, min(reply.content_length or 0, MAX_ERROR_BODY)
    with suppress(OSError):
        while len(body) < wanted:
            data = sock.recv(4096)
            if not data:
                break
            body += data
    return error_body(body)
