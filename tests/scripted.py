"""Scripted raw-socket servers, for what no real server does: broken WebSocket frames."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OPEN = "0" + json.dumps(
    {"sid": "scripted", "upgrades": [], "pingInterval": 25000, "pingTimeout": 20000}
)


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked server frame (FIN set)."""
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        return head + bytes([len(payload)]) + payload
    return head + bytes([126]) + len(payload).to_bytes(2, "big") + payload


@contextmanager
def websocket_server(*frames: bytes) -> Iterator[int]:
    """Accept one WebSocket handshake, send ``frames``, then wait for the client to hang up.

    Runs in a real OS thread on a blocking socket, so it works whatever the test's greenlets do.
    """
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            conn.sendall(b"".join(frames))
            conn.settimeout(5)
            try:
                while conn.recv(4096):
                    pass
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(5)
