"""A misbehaving HTTP/1.1-aware TCP proxy, in front of a real test server.

It runs in real OS threads with blocking stdlib sockets (the test process is not monkey-patched),
so it keeps working whatever the test's greenlets do.  Each HTTP request is forwarded on a fresh
upstream connection; the response is framed (Content-Length, chunked, or until EOF) and relayed
on the client's keep-alive connection.  Hooks to misbehave:

* :meth:`FaultProxy.retarget` points at another (restarted) upstream.  A GET whose upstream
  died before answering is retried on the current upstream once that accepts connections, the
  way nginx's ``proxy_next_upstream error`` retries idempotent requests; a POST gets ``502``.
* ``probe=``: what happens to a WebSocket upgrade probe (``transport=websocket`` with a ``sid``):
  ``"pass"`` tunnels it; ``"wrong"`` completes the upgrade with the upstream, then answers the
  client's ``2probe`` with ``wrong_answer``; ``"silent"`` completes it and never answers
  anything; ``"refuse"`` answers ``refuse_status`` with a body; ``"hangup"`` closes the TCP
  connection right after reading the request.  A WebSocket without ``sid`` is always tunnelled.

Every accepted connection is recorded (:class:`Record`): whether the client closed it, and when.
Leaving the context closes every socket and joins every thread, even threads blocked in a read.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from select import select
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from tests.faults.dummyserver import frame

__all__ = ["FaultProxy", "ProbeMode", "Record"]

ProbeMode = Literal["pass", "wrong", "silent", "refuse", "hangup"]
HOST = "127.0.0.1"
_REASONS = {400: "Bad Request", 502: "Bad Gateway", 503: "Service Unavailable"}


class _Ended(Exception):
    """The peer ended the connection (EOF or a socket error)."""


class _Stream:
    """Buffered reads over a blocking socket; every failure is :class:`_Ended`."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        try:
            data = self.sock.recv(65536)
        except OSError as exc:
            raise _Ended(str(exc)) from exc
        if not data:
            raise _Ended("EOF")
        self.buf += data

    def read_until(self, marker: bytes) -> bytes:
        while (index := self.buf.find(marker)) < 0:
            if len(self.buf) > 1 << 20:
                raise _Ended("header too long")
            self._fill()
        end = index + len(marker)
        data, self.buf = self.buf[:end], self.buf[end:]
        return data

    def read_exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            self._fill()
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def read_to_eof(self) -> bytes:
        try:
            while True:
                self._fill()
        except _Ended:
            data, self.buf = self.buf, b""
            return data

    def read_frame(self) -> tuple[int, bytes]:
        """One WebSocket frame (masked, from a client): its opcode and unmasked payload."""
        head = self.read_exact(2)
        size = head[1] & 0x7F
        if size >= 126:
            size = int.from_bytes(self.read_exact(2 if size == 126 else 8), "big")
        mask = self.read_exact(4) if head[1] & 0x80 else b"\0\0\0\0"
        payload = self.read_exact(size)
        return head[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@dataclass
class _Head:
    """The head of an HTTP request or response."""

    raw: bytes
    first: str
    headers: dict[str, str]

    @classmethod
    def parse(cls, raw: bytes) -> _Head:
        lines = raw.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        return cls(raw, lines[0], headers)

    def header(self, name: str) -> str:
        return self.headers.get(name, "").lower()

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None else None


@dataclass
class Record:
    """One client connection accepted by the proxy."""

    opened_at: float
    requests: list[str] = field(default_factory=list)  # request lines, in order
    probe: ProbeMode | None = None  # the mode applied, when it carried an upgrade probe
    answered_at: float | None = None  # when the proxy (mis)answered the probe
    closed_by: Literal["client", "proxy"] | None = None
    closed_at: float | None = None  # when the proxy saw its end (the client's EOF or reset)

    def ended(self, by: Literal["client", "proxy"]) -> None:
        if self.closed_by is None:
            self.closed_by, self.closed_at = by, time.monotonic()


class FaultProxy:
    """A proxy on ``127.0.0.1:0`` in front of ``upstream_port``; use it as a context manager.

    :param probe: what to do with WebSocket upgrade probes (see the module docstring).
    :param wrong_answer: the text frame answering ``2probe`` in ``"wrong"`` mode.
    :param refuse_status: the HTTP status of ``"refuse"`` mode.
    :param answer_delay: how long the ``"wrong"``, ``"refuse"`` and ``"hangup"`` modes wait
        before they misbehave (after the probe's request, or its ``2probe`` when ``"wrong"``).
    :param retry_window: how long a GET whose upstream died waits for a live upstream.
    """

    def __init__(
        self,
        upstream_port: int,
        *,
        probe: ProbeMode = "pass",
        wrong_answer: str = "3nope",
        refuse_status: int = 503,
        answer_delay: float = 0.0,
        retry_window: float = 15.0,
    ) -> None:
        self.probe = probe
        self.wrong_answer = wrong_answer
        self.refuse_status = refuse_status
        self.answer_delay = answer_delay
        self.retry_window = retry_window
        self.records: list[Record] = []
        #: GETs whose upstream died before answering, retried since (see :meth:`retarget`)
        self.retried = 0
        self._upstream_port = upstream_port
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        self._start(self._accept_loop)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def probes(self) -> list[Record]:
        """The connections that carried an upgrade probe, in order."""
        return [r for r in self.records if r.probe is not None]

    def retarget(self, port: int) -> None:
        """Send every later request (and every GET being retried) to ``port``."""
        self._upstream_port = port

    def close(self) -> None:
        """Stop accepting, close every socket and join every thread (even blocked ones)."""
        self._stopping.set()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv()
        for thread in list(self._threads):
            thread.join(5)
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()
        self._listener.close()
        alive = [t.name for t in self._threads if t.is_alive()]
        assert not alive, f"proxy threads still alive: {alive}"

    # -- plumbing ----------------------------------------------------------------------------

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._stopping.is_set():
                sock.close()
                return False
            self._sockets.add(sock)
            return True

    def _release(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
            sock.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            if self._track(sock):
                record = Record(time.monotonic())
                self.records.append(record)
                self._start(self._serve, sock, record)

    def _connect(self, *, wait_until: float | None = None) -> socket.socket | None:
        """A connection to the current upstream; retried until ``wait_until`` if given."""
        while not self._stopping.is_set():
            try:
                sock = socket.create_connection((HOST, self._upstream_port), timeout=1.0)
            except OSError:
                if wait_until is None or time.monotonic() > wait_until:
                    return None
                self._stopping.wait(0.05)
                continue
            sock.settimeout(None)
            return sock if self._track(sock) else None
        return None

    @staticmethod
    def _send(sock: socket.socket, data: bytes) -> None:
        try:
            sock.sendall(data)
        except OSError as exc:
            raise _Ended(str(exc)) from exc

    def _error(self, client: socket.socket, status: int, text: str) -> None:
        """Answer an HTTP error with a body, keeping the connection open."""
        body = text.encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self._send(client, head.encode() + body)

    # -- one client connection ---------------------------------------------------------------

    def _serve(self, client: socket.socket, record: Record) -> None:
        stream = _Stream(client)
        try:
            while True:
                try:
                    request = _Head.parse(stream.read_until(b"\r\n\r\n"))
                except _Ended:
                    record.ended("client")
                    return
                record.requests.append(request.first)
                body = stream.read_exact(request.content_length or 0)
                if request.header("upgrade") == "websocket":
                    self._websocket(client, stream, request, record)
                    return
                if not self._http(client, request, request.raw + body):
                    return
        except _Ended:
            record.ended("client")
        finally:
            record.ended("proxy")
            self._release(client)

    def _http(self, client: socket.socket, request: _Head, raw: bytes) -> bool:
        """Forward one request; ``True`` when the client's connection may carry another."""
        idempotent = request.first.startswith("GET ")
        wait_until = time.monotonic() + self.retry_window if idempotent else None
        while True:
            upstream = self._connect(wait_until=wait_until)
            if upstream is None:
                self._error(client, 502, "no upstream")
                return False
            try:
                ustream = _Stream(upstream)
                try:
                    self._send(upstream, raw)
                    response = _Head.parse(ustream.read_until(b"\r\n\r\n"))
                except _Ended:
                    if idempotent and not self._stopping.is_set():
                        self.retried += 1
                        continue  # died before answering: next upstream (proxy_next_upstream)
                    self._error(client, 502, "the upstream died before answering")
                    return False
                try:
                    self._send(client, response.raw)
                    keep = self._relay_body(client, ustream, response)
                except _Ended:
                    return False  # the upstream died mid-answer, or the client left
                closing = "close" in (request.header("connection"), response.header("connection"))
                return keep and not closing
            finally:
                self._release(upstream)

    def _relay_body(self, client: socket.socket, ustream: _Stream, response: _Head) -> bool:
        """Relay a response body as framed; ``False`` when it was framed by the upstream's EOF."""
        status = int(response.first.split()[1])
        if response.header("transfer-encoding") == "chunked":
            while True:
                line = ustream.read_until(b"\r\n")
                self._send(client, line)
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    self._send(client, ustream.read_until(b"\r\n"))  # no trailers expected
                    return True
                self._send(client, ustream.read_exact(size + 2))
        if response.content_length is not None:
            self._send(client, ustream.read_exact(response.content_length))
            return True
        if status in (204, 304) or status < 200:
            return True
        self._send(client, ustream.read_to_eof())
        return False

    def _websocket(
        self, client: socket.socket, stream: _Stream, request: _Head, record: Record
    ) -> None:
        query = parse_qs(urlsplit(request.first.split()[1]).query)
        mode: ProbeMode = self.probe if "sid" in query else "pass"
        if "sid" in query:
            record.probe = mode
        if mode in ("refuse", "hangup"):
            self._stopping.wait(self.answer_delay)
        if mode == "hangup":
            record.answered_at = time.monotonic()
            return
        if mode == "refuse":
            self._error(client, self.refuse_status, f"probe refused ({self.refuse_status})")
            record.answered_at = time.monotonic()
            self._swallow(stream, answer_close=False)
            return
        upstream = self._connect()
        if upstream is None:
            self._error(client, 502, "no upstream")
            return
        try:
            ustream = _Stream(upstream)
            self._send(upstream, request.raw)
            try:
                response = _Head.parse(ustream.read_until(b"\r\n\r\n"))
            except _Ended:
                return
            self._send(client, response.raw)
            if mode == "pass" or response.first.split()[1] != "101":
                self._tunnel(client, stream, upstream, ustream, record)
                return
            stream.read_frame()  # the client's 2probe, never forwarded
            if mode == "wrong":
                self._stopping.wait(self.answer_delay)
                self._send(client, frame(0x1, self.wrong_answer.encode()))
            record.answered_at = time.monotonic()
            self._swallow(stream, answer_close=mode == "wrong")
        finally:
            self._release(upstream)

    def _swallow(self, stream: _Stream, *, answer_close: bool) -> None:
        """Read and drop the client's frames until it hangs up (raises :class:`_Ended`)."""
        while True:
            opcode, payload = stream.read_frame()
            if opcode == 0x8 and answer_close:
                self._send(stream.sock, frame(0x8, payload[:2]))

    def _tunnel(
        self,
        client: socket.socket,
        stream: _Stream,
        upstream: socket.socket,
        ustream: _Stream,
        record: Record,
    ) -> None:
        """Relay bytes both ways until one side ends; the other is then closed by the proxy."""
        self._send(upstream, stream.buf)
        self._send(client, ustream.buf)
        peers = {client: upstream, upstream: client}
        while not self._stopping.is_set():
            ready, _, _ = select(list(peers), [], [], 0.1)
            for sock in ready:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    record.ended("client" if sock is client else "proxy")
                    return
                self._send(peers[sock], data)
