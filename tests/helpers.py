"""Helpers for the integration tests (real servers only), and for driving subprocesses.

Importing it imports gevent and geventio, never Locust (which would monkey-patch the process).
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from typing import IO, Any, Literal

import gevent

import geventio
from geventio import ProtocolError
from geventio._cookies import CookieJar
from geventio._packet import Packet
from geventio._payload import iter_payload
from geventio._transports.websocket import WebSocketTransport
from geventio._url import parse_url

Mode = Literal["polling", "websocket", "upgrade"]
MODES: tuple[Mode, ...] = ("polling", "websocket", "upgrade")


def build(builder: geventio.ClientBuilder, mode: Mode) -> geventio.Client:
    """Open a client the way ``mode`` names: build_polling, build_websocket or build (upgrade)."""
    if mode == "polling":
        return builder.build_polling()
    if mode == "websocket":
        return builder.build_websocket()
    client = builder.build()
    assert client.transport == "websocket"
    return client


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` cooperatively until it holds; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        gevent.sleep(0.01)


def wait_parked(url: str, client: geventio.Client, timeout: float = 5.0) -> None:
    """Wait until the real test server at ``url`` holds a long-poll GET of ``client``'s session.

    Asks the server's ``cmd:polls:<sid>`` (see tests/servers/README.md) over a second session
    on WebSocket, whose own traffic takes no GET. Blocks the calling greenlet.

    :raises AssertionError: past ``timeout``.
    """
    with geventio.ClientBuilder(url).build_websocket() as observer:

        def parked() -> bool:
            observer.send(f"cmd:polls:{client.sid}")
            return int(observer.receive(timeout)) > 0

        wait_until(parked, timeout)


def receive_all(client: geventio.Client, count: int, timeout: float = 5.0) -> list[str | bytes]:
    return [client.receive(timeout) for _ in range(count)]


def spawn_catching(call: Callable[[], object]) -> gevent.Greenlet[[], BaseException | None]:
    """Run ``call`` in a greenlet whose value is the geventio error it raised (or ``None``).

    An exception expected in a greenlet must not reach the hub (that fails the test).
    """

    def run() -> BaseException | None:
        try:
            call()
        except geventio.EngineIOError as exc:
            return exc
        return None

    return gevent.spawn(run)


def raw_websocket(url: str, query: dict[str, str] | None = None) -> WebSocketTransport:
    """geventio's WebSocket transport alone, opened on ``url`` (no session on top of it)."""
    endpoint = parse_url(url, None, query or {})
    return WebSocketTransport.connect(
        endpoint,
        endpoint.target("websocket"),
        headers={},
        cookies=CookieJar(),
        ssl_context=None,
        timeout=5,
        max_message_size=1 << 20,
    )


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class LineReader:
    """Reads a subprocess's pipe line by line, each read bounded in time.

    It reads the descriptor itself (``select`` and ``os.read``, blocking the whole process while
    it waits, not only the greenlet): nothing else may read ``pipe`` meanwhile. Lines are decoded
    as UTF-8, without their ``\\n``.
    """

    def __init__(self, pipe: IO[Any] | None) -> None:
        assert pipe is not None, "the pipe was not opened (stdout=subprocess.PIPE?)"
        self.fd = pipe.fileno()
        self.pending = b""

    def next(self, timeout: float = 10.0) -> str:
        """The next line; fails the test after ``timeout`` seconds or at the end of the output."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError(f"no line within {timeout} s (so far {self.pending!r})")
            chunk = os.read(self.fd, 4096)
            if not chunk:
                raise AssertionError(f"the output ended (so far {self.pending!r})")
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode()

    def next_starting(self, prefix: str, timeout: float = 10.0) -> str:
        """The next line that starts with ``prefix``, skipping others; bounded as :meth:`next`."""
        deadline = time.monotonic() + timeout
        skipped: list[str] = []
        while True:
            try:
                line = self.next(max(deadline - time.monotonic(), 0))
            except AssertionError as exc:
                raise AssertionError(
                    f"no line starting with {prefix!r}: {skipped}; {exc}"
                ) from None
            if line.startswith(prefix):
                return line
            skipped.append(line)


def stop_process(process: subprocess.Popen[Any], timeout: float = 5.0) -> int:
    """Stop ``process`` if it still runs: SIGTERM, then SIGKILL after ``timeout`` seconds.

    Closes its pipes (what they still held is lost) and returns its exit status (negative: the
    signal that ended it). Blocks the whole process, at most twice ``timeout``.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            with suppress(OSError):  # a pipe still full of unread input
                pipe.close()
    return process.returncode


def decode_all(body: bytes | str) -> list[Packet]:
    """A polling payload's packets, with the client's own decoder.

    :raises ProtocolError: at the payload's first fault.
    """
    return list(iter_payload(body))


def decode_prefix(body: bytes | str) -> tuple[list[Packet], ProtocolError | None]:
    """A polling payload's packets up to its first fault, and that fault (``None`` if none).

    The client's own decoder, :func:`geventio._payload.iter_payload`, read to its end.
    """
    packets: list[Packet] = []
    try:
        packets.extend(iter_payload(body))
    except ProtocolError as exc:
        return packets, exc
    return packets, None
