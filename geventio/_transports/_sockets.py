"""Cooperative sockets and TLS for both transports.

Every socket here is a ``gevent.socket`` socket and every TLS socket a ``gevent.ssl`` socket, so
the transports cooperate with the hub whether or not the process is monkey-patched. Errors are
left as they are (``OSError``, ``ssl.SSLError``): :mod:`geventio._transports._errors` maps them.
"""

from __future__ import annotations

import ipaddress
import socket as std_socket
import ssl
from contextlib import suppress
from typing import Any

import gevent.socket
import gevent.ssl

__all__ = ["CooperativeSSLContext", "open_socket", "wrap_tls"]


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
