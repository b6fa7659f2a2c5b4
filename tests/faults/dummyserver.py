"""Scripted raw-socket HTTP and WebSocket servers, for what no real server does on purpose.

In the spirit of urllib3's ``dummyserver``: a :class:`Server` listens on ``127.0.0.1:0`` and runs a
handler function per accepted connection, in a real OS thread on a blocking stdlib socket, so it
works whatever the test's greenlets do. The handler gets a :class:`Conn` with helpers to read a
request, answer (honestly or not), accept a WebSocket and send or read frames. Everything that
happens is recorded (requests seen, bytes sent, hang-ups) for the test to assert on.

On exit the server closes its listener, shuts every connection down (which wakes a handler blocked
in a read, a write or :meth:`Conn.stall`), joins the threads and closes the sockets. An unexpected
exception in a handler fails the test there.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import gevent

__all__ = [
    "OPEN",
    "Conn",
    "Request",
    "Server",
    "cookie_script",
    "frame",
    "frame_header",
    "http_chunk",
    "open_packet",
    "polling_script",
    "websocket_script",
]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_REASONS = {200: "OK", 101: "Switching Protocols", 400: "Bad Request", 401: "Unauthorized"}
_REASONS |= {403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}
_REASONS |= {502: "Bad Gateway", 503: "Service Unavailable"}
#: A server never waits longer than this on a client that neither reads nor hangs up.
IO_TIMEOUT = 10.0
CHUNK = 65536


def open_packet(**fields: Any) -> str:
    """A valid OPEN packet (no upgrades, long heartbeat); ``fields`` override or add keys."""
    handshake: dict[str, Any] = {
        "sid": "scripted",
        "upgrades": [],
        "pingInterval": 25000,
        "pingTimeout": 20000,
        "maxPayload": 1_000_000,
    }
    handshake.update(fields)
    return "0" + json.dumps(handshake)


OPEN = open_packet()


def frame_header(opcode: int, length: int, *, fin: bool = True) -> bytes:
    """The header of one unmasked server frame announcing ``length`` bytes of payload."""
    head = bytes([(0x80 if fin else 0) | opcode])
    if length < 126:
        return head + bytes([length])
    if length < 1 << 16:
        return head + bytes([126]) + length.to_bytes(2, "big")
    return head + bytes([127]) + length.to_bytes(8, "big")


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One unmasked server frame."""
    return frame_header(opcode, len(payload), fin=fin) + payload


@dataclass
class Request:
    """One HTTP request as the server read it (header names lowercased)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Conn:
    """One accepted connection, handed to the handler."""

    sock: socket.socket
    server: Server
    sent: int = 0
    hung_up: bool = False
    requests: list[Request] = field(default_factory=list)
    _buffer: bytes = b""

    # -- reading ----------------------------------------------------------------------------

    def _fill(self, timeouts: bool = False) -> bool:
        """Read more into the buffer: ``False`` when the client hung up (or a read failed, or
        timed out unless ``timeouts``, when ``TimeoutError`` is raised instead)."""
        try:
            data = self.sock.recv(CHUNK)
        except TimeoutError:
            if timeouts:
                raise
            data = b""
        except OSError:
            data = b""
        if not data:
            self.hung_up = not self.server.stopping.is_set()
            return False
        self._buffer += data
        return True

    def read_exactly(self, size: int) -> bytes | None:
        """``size`` bytes, or ``None`` when the client hangs up first."""
        while len(self._buffer) < size:
            if not self._fill():
                return None
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def read_request(self) -> Request | None:
        """The next request (its body read by Content-Length), or ``None`` on hang-up."""
        while b"\r\n\r\n" not in self._buffer:
            if not self._fill():
                return None
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = line.split(" ", 2)
        headers = {}
        for item in lines:
            name, _, value = item.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self.read_exactly(int(headers.get("content-length", "0"))) or b""
        request = Request(method, target, headers, body)
        self.requests.append(request)
        self.server.requests.append(request)
        return request

    def wait_hangup(self, timeout: float | None = None) -> bool:
        """Read and discard until the client hangs up (``True``) or ``timeout`` passes."""
        self.sock.settimeout(timeout)
        try:
            while self._fill(timeouts=True):
                self._buffer = b""
        except TimeoutError:
            return False
        finally:
            self.sock.settimeout(IO_TIMEOUT)
        return True

    def stall(self) -> None:
        """Answer nothing more: wait until the client hangs up or the server stops."""
        self.wait_hangup(None)

    def read_frame(self) -> tuple[int, bytes] | None:
        """The next client frame as ``(opcode, unmasked payload)``, or ``None`` on hang-up."""
        head = self.read_exactly(2)
        if head is None:
            return None
        length = head[1] & 0x7F
        if length >= 126:
            extra = self.read_exactly(2 if length == 126 else 8)
            if extra is None:
                return None
            length = int.from_bytes(extra, "big")
        mask = self.read_exactly(4) if head[1] & 0x80 else b"\0\0\0\0"
        payload = self.read_exactly(length)
        if mask is None or payload is None:
            return None
        pad = (mask * (length // 4 + 1))[:length]  # one integer XOR: megabytes stay cheap
        unmasked = int.from_bytes(payload, "big") ^ int.from_bytes(pad, "big")
        return head[0] & 0x0F, unmasked.to_bytes(length, "big")

    # -- writing ----------------------------------------------------------------------------

    def send(self, data: bytes) -> bool:
        """Send raw bytes, counting what the kernel took; ``False`` once the client hung up."""
        view = memoryview(data)
        while view:
            try:
                count = self.sock.send(view)
            except OSError:  # reset, broken pipe, shut down, or a client that stopped reading
                self.hung_up = not self.server.stopping.is_set()
                return False
            self.sent += count
            self.server.bytes_sent += count
            view = view[count:]
        return True

    def respond(
        self,
        status: int,
        body: bytes | str = b"",
        *,
        headers: dict[str, str] | None = None,
        content_length: int | None = None,
        content_type: str = "text/plain; charset=UTF-8",
        extra: Sequence[tuple[str, str]] = (),
    ) -> bool:
        """Send a response; ``content_length`` may lie (the real body is sent as it is).

        ``extra`` header lines follow ``headers``, repeated names (``Set-Cookie``) included.
        """
        data = body.encode() if isinstance(body, str) else body
        fields = {"Content-Type": content_type, **(headers or {})}
        if "Transfer-Encoding" not in fields:
            fields["Content-Length"] = str(len(data) if content_length is None else content_length)
        return self.send(self.head(status, fields, extra) + data)

    @staticmethod
    def head(status: int, headers: dict[str, str], extra: Sequence[tuple[str, str]] = ()) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Whatever')}"]
        lines += [f"{k}: {v}" for k, v in [*headers.items(), *extra]]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def accept_websocket(
        self,
        request: Request,
        *,
        accept: bytes | None = None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> bool:
        """Answer a WebSocket handshake with 101 (and a correct Sec-WebSocket-Accept)."""
        key = request.headers["sec-websocket-key"].encode()
        good = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        fields = {"Upgrade": "websocket", "Connection": "Upgrade"}
        fields["Sec-WebSocket-Accept"] = (accept or good).decode()
        return self.send(self.head(101, fields, extra))

    def stream(self, head: bytes, total: int, wrap: Callable[[bytes], bytes] | None = None) -> int:
        """Send ``head``, then ``total`` bytes of ``a`` in 64 KiB pieces until the client hangs up.

        ``wrap`` frames each piece (an HTTP chunk, a WebSocket continuation frame). Returns how
        many payload bytes the client's side accepted (its kernel buffers included).
        """
        if not self.send(head):
            return 0
        piece, accepted = b"a" * CHUNK, 0
        while accepted < total:
            data = piece[: total - accepted]
            if not self.send(wrap(data) if wrap else data):
                break
            accepted += len(data)
        return accepted


def http_chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a ``Transfer-Encoding: chunked`` body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


Handler = Callable[[Conn], None]


class Server:
    """A scripted server: ``handler(conn)`` runs in its own thread for each connection.

    Use it as a context manager; ``url`` is ``http://127.0.0.1:<port>``, or ``https://`` with a
    ``tls`` context (each connection runs the TLS handshake in its thread before the handler).
    """

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.stopping = threading.Event()
        self.conns: list[Conn] = []
        self.requests: list[Request] = []
        self.bytes_sent = 0
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @property
    def hung_up(self) -> bool:
        """``True`` when a connection was accepted and every one has been closed by the client."""
        return bool(self.conns) and all(c.hung_up for c in self.conns)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait (cooperatively) until ``predicate()`` holds, e.g. ``lambda: server.hung_up``.

        :raises AssertionError: past ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"not seen within {timeout} s: {predicate}"
            gevent.sleep(0.01)

    def __enter__(self) -> Server:
        self._spawn(self._accept_loop)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        if self.errors and exc_info[0] is None:
            raise AssertionError(f"scripted handler failed: {self.errors[0]!r}") from self.errors[0]

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(IO_TIMEOUT)
            conn = Conn(sock, self)
            with self.lock:
                if self.stopping.is_set():
                    sock.close()
                    return
                self.conns.append(conn)
                self._spawn(self._run, conn)

    def _run(self, conn: Conn) -> None:
        try:
            if self._tls is not None:
                try:
                    conn.sock = self._tls.wrap_socket(conn.sock, server_side=True)
                except OSError:  # the client refused our certificate, or hung up
                    conn.hung_up = True
                    return
            self._handler(conn)
        except Exception as exc:
            if not self.stopping.is_set():
                self.errors.append(exc)
        finally:
            with suppress(OSError):
                conn.sock.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        """Close the listener and every connection, then join the threads; idempotent."""
        with self.lock:
            self.stopping.set()
            self._listener.close()
            for conn in self.conns:
                with suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv or send
        for thread in self._threads:
            thread.join(5)
        alive = [t for t in self._threads if t.is_alive()]
        for conn in self.conns:
            conn.sock.close()
        assert not alive, f"scripted server threads did not stop: {alive}"


# -- Engine.IO scripts ---------------------------------------------------------------------

#: One scripted answer to a long-poll GET: a body, or a handler for the whole misbehaviour.
Reply = bytes | str | Callable[[Conn], None]


@contextmanager
def polling_script(*replies: Reply, handshake: Reply = OPEN) -> Iterator[Server]:
    """An Engine.IO polling server: the handshake GET gets ``handshake``, each later GET the next
    of ``replies``; once they are used up, GETs stall. Every POST is answered ``ok``.

    A callable reply takes over the connection; when it returns, the connection is closed.
    """
    queue: list[Reply] = [handshake, *replies]

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if request.method == "POST":
                conn.respond(200, "ok")
                continue
            with conn.server.lock:
                reply = queue.pop(0) if queue else None
            if reply is None:
                conn.stall()
                return
            if callable(reply):
                reply(conn)
                return
            conn.respond(200, reply)

    with Server(handler) as server:
        yield server


@contextmanager
def websocket_script(*frames: bytes, after: Handler | None = None) -> Iterator[Server]:
    """A WebSocket server: accept the handshake, send ``frames``, then run ``after`` (default:
    wait for the client to hang up).
    """

    def handler(conn: Conn) -> None:
        request = conn.read_request()
        if request is None or not conn.accept_websocket(request) or not conn.send(b"".join(frames)):
            return
        (after or Conn.stall)(conn)

    with Server(handler) as server:
        yield server


@contextmanager
def cookie_script(
    *set_cookies: str, upgrade: bool = False, tls: ssl.SSLContext | None = None
) -> Iterator[Server]:
    """An Engine.IO server that sets cookies and records what the client sends back.

    The polling handshake (and the 101 of a WebSocket handshake) carries one ``Set-Cookie`` line
    per item of ``set_cookies``, as given. The handshake offers the upgrade when ``upgrade`` is
    true; the probe is answered, then the server waits. Long-poll GETs stall, POSTs get ``ok``.
    Every request is in ``server.requests`` (its ``cookie`` header, if any, included).
    """
    extra = [("Set-Cookie", value) for value in set_cookies]
    handshake = open_packet(upgrades=["websocket"] if upgrade else [])

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if request.method == "POST":
                conn.respond(200, "ok")
            elif "transport=websocket" in request.target:
                conn.accept_websocket(request, extra=extra)
                if "sid=" not in request.target:
                    conn.send(frame(0x1, handshake.encode()))
                elif conn.read_frame() == (0x1, b"2probe"):
                    conn.send(frame(0x1, b"3probe"))
                conn.stall()
                return
            elif "sid=" in request.target:
                conn.stall()
                return
            else:
                conn.respond(200, handshake, extra=extra)

    with Server(handler, tls=tls) as server:
        yield server
