"""Error translation at the I/O edge: each foreign exception becomes geventio's once, here.

Foreign exceptions (``OSError``, ``ssl.SSLError``, http.client's, urllib3's and wsproto's) are
translated in :func:`map_errors` (or :func:`reraise` on hot paths), with the step that failed
(``what``) and whether the session was still connecting. :func:`deadline` bounds a whole step.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import gevent
import urllib3.exceptions
import wsproto.utilities

from geventio.exceptions import (
    ConnectError,
    ConnectTimeout,
    EngineIOError,
    ProtocolError,
    TransportError,
)

__all__ = [
    "MAX_ERROR_BODY",
    "DialError",
    "ProxyTimeout",
    "deadline",
    "dial_error",
    "error_body",
    "map_errors",
    "reraise",
]

#: The most bytes of an HTTP error answer's body kept in :attr:`TransportError.body` (the
#: server's refusal, the proxy's, or the WebSocket handshake's): enough to read, bounded.
MAX_ERROR_BODY = 2000


def error_body(data: bytes) -> str:
    """The text kept of an error answer's body: its first :data:`MAX_ERROR_BODY` bytes, decoded
    leniently (invalid UTF-8 replaced)."""
    return data[:MAX_ERROR_BODY].decode("utf-8", "replace")


class ProxyTimeout(TimeoutError):
    """A proxy did not connect or answer in time; its text names the proxy."""


class DialError(Exception):
    """Polling's TCP connection (to the server or to the proxy) could not be opened.

    Made by :func:`dial_error` from the ``OSError`` where it enters, in the connection class that
    urllib3 calls: urllib3 lets an exception that is neither its own nor an ``OSError`` pass
    through untouched (and closes the connection). Its text is final; :func:`reraise` only adds
    the step's name and picks geventio's class.

    :ivar timeout: ``True`` when the connection timed out.
    """

    def __init__(self, text: str, *, timeout: bool) -> None:
        super().__init__(text)
        self.timeout = timeout


def dial_error(exc: OSError, host: str, *, proxied: bool) -> DialError:
    """The :class:`DialError` for a failure to open a connection to ``host`` (or its proxy)."""
    if isinstance(exc, TimeoutError):
        return DialError(str(exc) if isinstance(exc, ProxyTimeout) else "timed out", timeout=True)
    if isinstance(exc, socket.gaierror):
        return DialError(f"Failed to resolve '{host}' ({exc})", timeout=False)
    if proxied:  # the tunnel's text names the proxy already
        return DialError(str(exc), timeout=False)
    return DialError(f"connect failed: {exc}", timeout=False)


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
    if isinstance(exc, DialError):
        return (ConnectTimeout if exc.timeout and connecting else failure)(f"{what}: {exc}")
    if isinstance(exc, _TIMEOUTS):
        text = str(exc) if isinstance(exc, ProxyTimeout) else "timed out"
        return (ConnectTimeout if connecting else TransportError)(f"{what}: {text}")
    if isinstance(exc, wsproto.utilities.LocalProtocolError):  # pragma: no cover - a bug of ours
        return TransportError(f"{what}: {exc}")
    if isinstance(exc, (wsproto.utilities.RemoteProtocolError, UnicodeDecodeError)):
        # wsproto decodes some header values of the server's 101 (Sec-WebSocket-Protocol and
        # -Extensions) as ASCII: bytes from the peer that are not the text they must be
        return (ConnectError if connecting else ProtocolError)(f"{what}: {exc}")
    if isinstance(exc, (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException)):
        # http.client's: a bad status line or header line of an answer (polling reads it with
        # urllib3's connection, whose pool used to wrap them)
        return failure(f"{what}: {_describe(exc)}")
    return exc


def _describe(exc: BaseException) -> str:
    """The most telling text: urllib3 wraps the real cause in ``reason``."""
    reason = getattr(exc, "reason", None)
    if isinstance(exc, urllib3.exceptions.HTTPError) and isinstance(reason, BaseException):
        return str(reason) or type(reason).__name__
    return str(exc) or type(exc).__name__
