"""Self-checks for the real test servers and their fixtures.

These talk raw Engine.IO v4 (urllib3 for polling, a tiny hand-written
WebSocket for the websocket transport) so they do not depend on the client
library under test.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
import urllib3

from tests.servers import (
    NodeSetupError,
    ServerFactory,
    ServerHandle,
    ServerKind,
    _runner,
    start_server,
)

SEP = "\x1e"
TEXT_PLAIN = {"Content-Type": "text/plain;charset=UTF-8"}
STICKY = re.compile(r"^sticky=s-[0-9a-f]+; Path=/$")


# ----------------------------------------------------------------- helpers


@pytest.fixture
def http() -> Iterator[urllib3.PoolManager]:
    pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=10.0))
    yield pool
    pool.clear()


def eio_url(server: ServerHandle, sid: str | None = None, **query: str) -> str:
    params = {"EIO": "4", "transport": "polling", **query}
    if sid is not None:
        params["sid"] = sid
    return f"{server.url}/engine.io/?" + "&".join(f"{k}={v}" for k, v in params.items())


def handshake(
    http: urllib3.PoolManager, server: ServerHandle, **query: str
) -> tuple[str, dict[str, Any], list[str], urllib3.BaseHTTPResponse]:
    """Polling handshake: (sid, open packet data, packets after it, response)."""
    response = http.request("GET", eio_url(server, **query))
    assert response.status == 200, response.data
    packets = response.data.decode().split(SEP)
    assert packets[0].startswith("0{"), packets
    data: dict[str, Any] = json.loads(packets[0][1:])
    return data["sid"], data, packets[1:], response


def post(http: urllib3.PoolManager, server: ServerHandle, sid: str, *packets: str) -> None:
    response = http.request(
        "POST", eio_url(server, sid), body=SEP.join(packets).encode(), headers=TEXT_PLAIN
    )
    assert response.status == 200, response.data
    assert response.data.lower() == b"ok"


def poll(http: urllib3.PoolManager, server: ServerHandle, sid: str) -> list[str]:
    response = http.request("GET", eio_url(server, sid))
    assert response.status == 200, response.data
    return response.data.decode().split(SEP)


def poll_until(http: urllib3.PoolManager, server: ServerHandle, sid: str, count: int) -> list[str]:
    """GET until ``count`` packets arrived (node flushes each send separately)."""
    packets: list[str] = []
    while len(packets) < count:
        packets += poll(http, server, sid)
    assert len(packets) == count, packets
    return packets


class RawWebSocket:
    """Just enough RFC 6455 to talk to the servers: unfragmented frames only.

    A refused handshake leaves ``status`` != 101 and the response body in ``body``.
    """

    def __init__(
        self,
        port: int,
        target: str,
        headers: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="127.0.0.1")
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {target} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {
            name.lower(): value for name, value in (h.split(": ", 1) for h in header_lines)
        }
        self.body = b""
        if self.status != 101:
            self.body = self._read(int(self.headers.get("content-length", "0")))

    def close(self) -> None:
        self.sock.close()

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def send(self, data: str | bytes) -> None:
        opcode, payload = (2, data) if isinstance(data, bytes) else (1, data.encode())
        size = len(payload)
        if size < 126:
            header = struct.pack(">BB", 0x80 | opcode, 0x80 | size)
        elif size < 65536:
            header = struct.pack(">BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack(">BBQ", 0x80 | opcode, 0x80 | 127, size)
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def recv(self) -> str | bytes | None:
        """Next text/binary message; None for a close frame.  Skips NOOP packets."""
        while True:
            first, second = self._read(2)
            opcode, size = first & 0x0F, second & 0x7F
            if size == 126:
                (size,) = struct.unpack(">H", self._read(2))
            elif size == 127:
                (size,) = struct.unpack(">Q", self._read(8))
            payload = self._read(size)
            if opcode == 8:
                return None
            if opcode == 2:
                return payload
            if opcode == 1 and payload != b"6":
                return payload.decode()


@pytest.fixture
def ws_connections() -> Iterator[list[RawWebSocket]]:
    opened: list[RawWebSocket] = []
    yield opened
    for ws in opened:
        ws.close()


# ------------------------------------------------------------ polling checks


def test_polling_handshake(http: urllib3.PoolManager, server: ServerHandle) -> None:
    sid, data, rest, response = handshake(http, server)
    assert rest == []
    assert data == {
        "sid": sid,
        "upgrades": ["websocket"],
        "pingInterval": 25000,
        "pingTimeout": 20000,
        "maxPayload": 1_000_000,
    }
    assert STICKY.match(response.headers["Set-Cookie"])


def test_sticky_cookie_only_on_handshake(http: urllib3.PoolManager, server: ServerHandle) -> None:
    sid, _, _, _ = handshake(http, server)
    response = http.request("POST", eio_url(server, sid), body=b"4cmd:count", headers=TEXT_PLAIN)
    assert response.status == 200
    assert "Set-Cookie" not in response.headers
    response = http.request("GET", eio_url(server, sid))
    assert response.data == b"40"
    assert "Set-Cookie" not in response.headers


def test_greet(http: urllib3.PoolManager, server: ServerHandle) -> None:
    sid, _, rest, _ = handshake(http, server, greet="hello%20there")
    if server.kind == "python":
        # python-engineio flushes the connect handler's messages with the OPEN packet
        assert rest == ["4hello there"]
    else:
        assert rest == []
        assert poll(http, server, sid) == ["4hello there"]


# Text that python-engineio would JSON-decode (and then re-encode differently)
# if the server did not disable that.
TRICKY_TEXT = ["hello", "[1]", '{"a": 1}', "null", "true", '"x"', "-1e3", "123", "", "héllo ✓"]


def test_polling_text_echo_is_verbatim(http: urllib3.PoolManager, server: ServerHandle) -> None:
    sid, _, _, _ = handshake(http, server)
    post(http, server, sid, *("4" + text for text in TRICKY_TEXT))
    assert poll_until(http, server, sid, len(TRICKY_TEXT)) == ["4" + t for t in TRICKY_TEXT]


def test_polling_binary_echo(http: urllib3.PoolManager, server: ServerHandle) -> None:
    sid, _, _, _ = handshake(http, server)
    blob = bytes(range(256))
    post(http, server, sid, "b" + base64.b64encode(blob).decode())
    [packet] = poll_until(http, server, sid, 1)
    assert packet[0] == "b"
    assert base64.b64decode(packet[1:]) == blob


def test_polling_commands(http: urllib3.PoolManager, server: ServerHandle) -> None:
    sid, _, _, _ = handshake(http, server)
    post(http, server, sid, "4one", "4cmd:push:3", "4two", "4cmd:count", "4cmd:transport")
    assert poll_until(http, server, sid, 7) == [
        "4one",
        "4push 0",
        "4push 1",
        "4push 2",
        "4two",
        "42",
        "4polling",
    ]
    post(http, server, sid, "4cmd:pushbin:2:6", "4cmd:nope", "4cmd:push:x")
    packets = poll_until(http, server, sid, 4)
    assert [base64.b64decode(p[1:]) for p in packets[:2]] == [
        struct.pack(">IH", 0, 0),
        struct.pack(">IH", 1, 0),
    ]
    assert packets[2:] == ["4unknown command: cmd:nope", "4unknown command: cmd:push:x"]


def test_headers_command(http: urllib3.PoolManager, server: ServerHandle) -> None:
    sid, _, _, _ = handshake(http, server)
    response = http.request(
        "POST",
        eio_url(server, sid),
        body=b"4cmd:headers",
        headers={**TEXT_PLAIN, "X-Smoke-Test": "yes", "Cookie": "sticky=s-00"},
    )
    assert response.status == 200
    [packet] = poll_until(http, server, sid, 1)
    headers = json.loads(packet[1:])
    assert headers["websocket"] is None
    polling = headers["polling"]
    assert polling["x-smoke-test"] == "yes"
    assert polling["cookie"] == "sticky=s-00"
    assert polling["content-type"] == "text/plain;charset=UTF-8"
    assert polling["host"] == f"127.0.0.1:{server.port}"


def test_close_command_over_polling(http: urllib3.PoolManager, server: ServerHandle) -> None:
    sid, _, _, _ = handshake(http, server)
    with ThreadPoolExecutor(1) as executor:
        # Like a real client, keep a GET waiting: python-engineio only delivers
        # the CLOSE packet to a GET that is already waiting.
        pending = executor.submit(poll, http, server, sid)
        wait_polls(http, server, sid, 1)
        post(http, server, sid, "4cmd:close")
        assert pending.result(timeout=5) == ["1"]
    assert http.request("GET", eio_url(server, sid)).status == 400


def test_python_ignores_payloads_over_16_packets(
    http: urllib3.PoolManager, server: ServerHandle
) -> None:
    """python-engineio's ``Payload.max_decode_packets`` quirk, pinned."""
    sid, _, _, _ = handshake(http, server)
    post(http, server, sid, *["4a"] * 17)  # python: 200 "OK", but every packet dropped
    post(http, server, sid, "4cmd:count")
    if server.kind == "python":
        assert poll_until(http, server, sid, 1) == ["40"]
    else:
        assert poll_until(http, server, sid, 18) == ["4a"] * 17 + ["417"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_sid_is_400(http: urllib3.PoolManager, server: ServerHandle, method: str) -> None:
    response = http.request(method, eio_url(server, "no-such-sid"), body=b"4x", headers=TEXT_PLAIN)
    assert response.status == 400


def test_unsupported_protocol_is_400(http: urllib3.PoolManager, server: ServerHandle) -> None:
    response = http.request("GET", f"{server.url}/engine.io/?EIO=3&transport=polling")
    assert response.status == 400
    assert "Set-Cookie" not in response.headers


def test_other_paths_are_404(http: urllib3.PoolManager, server: ServerHandle) -> None:
    assert http.request("GET", f"{server.url}/elsewhere").status == 404


def stats(http: urllib3.PoolManager, server: ServerHandle, of_sid: str) -> dict[str, Any]:
    """``cmd:stats:<of_sid>``, asked on a fresh polling session."""
    sid, _, _, _ = handshake(http, server)
    post(http, server, sid, f"4cmd:stats:{of_sid}")
    [packet] = poll_until(http, server, sid, 1)
    assert packet[0] == "4"
    reply: dict[str, Any] = json.loads(packet[1:])
    return reply


def stats_when_closed(
    http: urllib3.PoolManager, server: ServerHandle, of_sid: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while not (reply := stats(http, server, of_sid))["closed"] and time.monotonic() < deadline:
        time.sleep(0.05)
    return reply


def wait_polls(http: urllib3.PoolManager, server: ServerHandle, of_sid: str, count: int) -> None:
    """Ask ``cmd:polls:<of_sid>`` on a fresh polling session until the server holds ``count``
    GETs of ``of_sid``; fails after 5 s."""
    sid, _, _, _ = handshake(http, server)
    deadline = time.monotonic() + 5
    while True:
        post(http, server, sid, f"4cmd:polls:{of_sid}")
        [packet] = poll_until(http, server, sid, 1)
        if packet == f"4{count}":
            return
        assert time.monotonic() < deadline, f"{of_sid} has {packet[1:]} GETs, not {count}"
        time.sleep(0.02)


def test_polls_command(http: urllib3.PoolManager, server: ServerHandle) -> None:
    sid, _, _, _ = handshake(http, server)
    wait_polls(http, server, sid, 0)
    wait_polls(http, server, "no-such-sid", 0)
    with ThreadPoolExecutor(1) as executor:
        pending = executor.submit(poll, http, server, sid)
        wait_polls(http, server, sid, 1)  # a GET waits: nothing to send it yet
        post(http, server, sid, "4wake")
        assert pending.result(timeout=5) == ["4wake"]
    wait_polls(http, server, sid, 0)
    post(http, server, sid, "4cmd:polls", "4cmd:polls:")
    assert poll_until(http, server, sid, 2) == [
        "4unknown command: cmd:polls",
        "4unknown command: cmd:polls:",
    ]


def test_stats_command(http: urllib3.PoolManager, server: ServerHandle) -> None:
    sid, _, _, _ = handshake(http, server)
    post(http, server, sid, "4a", "bAAE=", "4cmd:push:1", "4cmd:nope", "4b")
    post(http, server, sid, f"4cmd:stats:{sid}", "4cmd:count")
    packets = poll_until(http, server, sid, 7)
    assert packets[-2:] == ['4{"messages":3,"closed":false}', "43"]
    assert stats(http, server, sid) == {"messages": 3, "closed": False}
    assert stats(http, server, "no-such-sid") == {"messages": 0, "closed": False}
    post(http, server, sid, "4cmd:stats", "4cmd:stats:")
    assert poll_until(http, server, sid, 2) == [
        "4unknown command: cmd:stats",
        "4unknown command: cmd:stats:",
    ]


def test_stats_survive_client_close(http: urllib3.PoolManager, server: ServerHandle) -> None:
    sid, _, _, _ = handshake(http, server)
    post(http, server, sid, "4one", "4two")
    assert poll_until(http, server, sid, 2) == ["4one", "4two"]
    post(http, server, sid, "1")  # the client closes the session
    assert stats_when_closed(http, server, sid) == {"messages": 2, "closed": True}
    assert http.request("GET", eio_url(server, sid)).status == 400


# ---------------------------------------------------------- refused handshake


def test_deny_polling_handshake(http: urllib3.PoolManager, server: ServerHandle) -> None:
    response = http.request("GET", eio_url(server, deny="1"))
    assert "Set-Cookie" not in response.headers
    if server.kind == "python":
        # the connect handler returns False: python-engineio's 401
        assert response.status == 401
        assert response.headers["Content-Type"] == "application/json"
        assert json.loads(response.data) == "Unauthorized"
    else:
        # allowRequest refuses: engine.io's 403 (error code 4, FORBIDDEN)
        assert response.status == 403
        assert response.headers["Content-Type"] == "application/json"
        assert json.loads(response.data) == {"code": 4, "message": "Forbidden"}
    handshake(http, server, deny="0")  # anything but deny=1 is accepted


def test_deny_websocket_handshake(server: ServerHandle, ws_connections: list[RawWebSocket]) -> None:
    ws = RawWebSocket(server.port, "/engine.io/?EIO=4&transport=websocket&deny=1")
    ws_connections.append(ws)
    assert "set-cookie" not in ws.headers
    if server.kind == "python":
        # answered before gevent-websocket's 101 (pre_start_hook), by python-engineio
        assert ws.status == 401
        assert json.loads(ws.body) == "Unauthorized"
    else:
        # engine.io's abortUpgrade(): always 400, the message as a plain-text body
        assert ws.status == 400
        assert ws.body == b"Forbidden"


# ---------------------------------------------------------- websocket checks


def test_websocket_only_session(server: ServerHandle, ws_connections: list[RawWebSocket]) -> None:
    ws = RawWebSocket(
        server.port,
        "/engine.io/?EIO=4&transport=websocket&greet=hi",
        headers={"X-Smoke-Test": "ws"},
    )
    ws_connections.append(ws)
    assert ws.status == 101
    assert STICKY.match(ws.headers["set-cookie"])
    opening = ws.recv()
    assert isinstance(opening, str)
    assert opening.startswith("0{")
    assert json.loads(opening[1:])["upgrades"] == []
    assert ws.recv() == "4hi"
    ws.send("4[1]")
    assert ws.recv() == "4[1]"
    ws.send(b"\x00\xff")
    assert ws.recv() == b"\x00\xff"
    ws.send("4cmd:pushbin:2:4")
    assert [ws.recv(), ws.recv()] == [b"\0\0\0\0", b"\0\0\0\1"]
    ws.send("4cmd:transport")
    assert ws.recv() == "4websocket"
    ws.send("4cmd:headers")
    reply = ws.recv()
    assert isinstance(reply, str)
    headers = json.loads(reply[1:])
    assert headers["polling"] is None
    assert headers["websocket"]["x-smoke-test"] == "ws"
    assert headers["websocket"]["upgrade"].lower() == "websocket"


def test_polling_to_websocket_upgrade(
    http: urllib3.PoolManager, server: ServerHandle, ws_connections: list[RawWebSocket]
) -> None:
    sid, _, _, _ = handshake(http, server)
    ws = RawWebSocket(server.port, f"/engine.io/?EIO=4&transport=websocket&sid={sid}")
    ws_connections.append(ws)
    assert ws.status == 101
    assert "set-cookie" not in ws.headers
    ws.send("2probe")
    assert ws.recv() == "3probe"
    assert poll(http, server, sid) == ["6"]  # the pending poll is released with a NOOP
    ws.send("5")
    ws.send("4cmd:transport")
    assert ws.recv() == "4websocket"
    ws.send("4cmd:headers")
    reply = ws.recv()
    assert isinstance(reply, str)
    headers = json.loads(reply[1:])
    assert headers["polling"] is not None
    assert headers["websocket"] is not None
    assert http.request("GET", eio_url(server, sid)).status == 400


def test_close_command_over_websocket(
    server: ServerHandle, ws_connections: list[RawWebSocket]
) -> None:
    ws = RawWebSocket(server.port, "/engine.io/?EIO=4&transport=websocket")
    ws_connections.append(ws)
    ws.recv()
    ws.send("4cmd:close")
    message = ws.recv()
    if server.kind == "python":
        # python-engineio sends a CLOSE packet first; node just closes the WebSocket
        assert message == "1"
        message = ws.recv()
    assert message is None


def test_stats_survive_server_close(
    http: urllib3.PoolManager, server: ServerHandle, ws_connections: list[RawWebSocket]
) -> None:
    ws = RawWebSocket(server.port, "/engine.io/?EIO=4&transport=websocket")
    ws_connections.append(ws)
    opening = ws.recv()
    assert isinstance(opening, str)
    sid = json.loads(opening[1:])["sid"]
    ws.send("4x")
    ws.send(b"\x01")
    ws.send("4cmd:count")
    assert [ws.recv(), ws.recv(), ws.recv()] == ["4x", b"\x01", "42"]
    assert stats(http, server, sid) == {"messages": 2, "closed": False}
    ws.send("4cmd:close")
    while ws.recv() is not None:  # python sends "1" first
        pass
    assert stats_when_closed(http, server, sid) == {"messages": 2, "closed": True}


# ---------------------------------------------------- custom server options


@pytest.mark.parametrize("kind", ["python", "node"])
def test_server_factory_options(
    http: urllib3.PoolManager, server_factory: ServerFactory, kind: ServerKind
) -> None:
    server = server_factory(kind, ping_interval=300, ping_timeout=570, max_payload=4321)
    sid, data, _, _ = handshake(http, server)
    advertised = (data["pingInterval"], data["pingTimeout"], data["maxPayload"])
    if kind == "python":
        # python-engineio advertises int(seconds) * 1000 for the interval
        assert advertised == (0, 570, 4321)
    else:
        assert advertised == (300, 570, 4321)
    started = time.monotonic()
    assert poll(http, server, sid) == ["2"]  # the real timer is 300 ms on both
    assert 0.2 < time.monotonic() - started < 2


@pytest.mark.parametrize("kind", ["python", "node"])
def test_advertised_ping_interval_rounding(
    http: urllib3.PoolManager, server_factory: ServerFactory, kind: ServerKind
) -> None:
    server = server_factory(kind, ping_interval=1500, ping_timeout=1001)
    _, data, _, _ = handshake(http, server)
    advertised = (data["pingInterval"], data["pingTimeout"])
    if kind == "python":
        # int(1.5) * 1000 (whole seconds) and int(1.001 * 1000) (float truncation)
        assert advertised == (1000, 1000)
    else:
        assert advertised == (1500, 1001)


@pytest.mark.parametrize("kind", ["python", "node"])
def test_polling_only_refuses_websocket(
    http: urllib3.PoolManager,
    server_factory: ServerFactory,
    ws_connections: list[RawWebSocket],
    kind: ServerKind,
) -> None:
    server = server_factory(kind, transports=["polling"])
    _, data, _, _ = handshake(http, server)
    # python-engineio still offers the upgrade that it then refuses; node offers none
    assert data["upgrades"] == (["websocket"] if kind == "python" else [])
    ws = RawWebSocket(server.port, "/engine.io/?EIO=4&transport=websocket")
    ws_connections.append(ws)
    assert ws.status == 400


@pytest.mark.parametrize("kind", ["python", "node"])
def test_websocket_only_refuses_polling(
    http: urllib3.PoolManager,
    server_factory: ServerFactory,
    ws_connections: list[RawWebSocket],
    kind: ServerKind,
) -> None:
    server = server_factory(kind, transports=["websocket"])
    assert http.request("GET", eio_url(server)).status == 400
    ws = RawWebSocket(server.port, "/engine.io/?EIO=4&transport=websocket")
    ws_connections.append(ws)
    assert ws.status == 101


@pytest.mark.parametrize("kind", ["python", "node"])
def test_no_upgrades(
    http: urllib3.PoolManager, server_factory: ServerFactory, kind: ServerKind
) -> None:
    server = server_factory(kind, upgrades=False)
    _, data, _, _ = handshake(http, server)
    assert data["upgrades"] == []


# ------------------------------------------------------------------- TLS


@dataclass
class TLSFiles:
    """PEM files for the server, and matching client-side SSL contexts."""

    ca: trustme.CA
    cert: str
    key: str
    client_ca: trustme.CA
    client_ca_file: str

    def client_context(self, with_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if with_cert:
            self.client_ca.issue_cert("client.example").configure_cert(context)
        return context


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(directory / "cert.pem"))
    cert.private_key_pem.write_to_path(str(directory / "key.pem"))
    client_ca = trustme.CA()  # a second CA, for client certificates
    client_ca.cert_pem.write_to_path(str(directory / "client-ca.pem"))
    return TLSFiles(
        ca=ca,
        cert=str(directory / "cert.pem"),
        key=str(directory / "key.pem"),
        client_ca=client_ca,
        client_ca_file=str(directory / "client-ca.pem"),
    )


def tls_pool(context: ssl.SSLContext) -> urllib3.PoolManager:
    return urllib3.PoolManager(
        ssl_context=context, retries=False, timeout=urllib3.Timeout(connect=2.0, read=10.0)
    )


@pytest.mark.parametrize("kind", ["python", "node"])
def test_tls(
    server_factory: ServerFactory,
    tls_files: TLSFiles,
    ws_connections: list[RawWebSocket],
    kind: ServerKind,
) -> None:
    server = server_factory(kind, tls_cert=tls_files.cert, tls_key=tls_files.key)
    assert server.url == f"https://127.0.0.1:{server.port}"
    context = tls_files.client_context()
    https = tls_pool(context)
    sid, _, _, response = handshake(https, server)
    assert STICKY.match(response.headers["Set-Cookie"])
    post(https, server, sid, "4over tls")
    assert poll_until(https, server, sid, 1) == ["4over tls"]
    ws = RawWebSocket(server.port, "/engine.io/?EIO=4&transport=websocket", tls=context)
    ws_connections.append(ws)
    assert ws.status == 101
    assert isinstance(ws.recv(), str)
    ws.send("4cmd:transport")
    assert ws.recv() == "4websocket"
    # a client that does not trust the CA refuses the server
    with pytest.raises(urllib3.exceptions.SSLError):
        tls_pool(ssl.create_default_context()).request("GET", eio_url(server))


@pytest.mark.parametrize("kind", ["python", "node"])
def test_mutual_tls(server_factory: ServerFactory, tls_files: TLSFiles, kind: ServerKind) -> None:
    server = server_factory(
        kind, tls_cert=tls_files.cert, tls_key=tls_files.key, client_ca=tls_files.client_ca_file
    )
    https = tls_pool(tls_files.client_context(with_cert=True))
    sid, _, _, _ = handshake(https, server)
    post(https, server, sid, "4mutual")
    assert poll_until(https, server, sid, 1) == ["4mutual"]
    # Without a client certificate the server aborts the TLS handshake (with
    # TLS 1.3 the client may only notice on its first read).
    with pytest.raises((urllib3.exceptions.SSLError, urllib3.exceptions.ProtocolError)):
        tls_pool(tls_files.client_context()).request("GET", eio_url(server))
    # A certificate from another CA is not accepted either.
    stranger = tls_files.client_context()
    trustme.CA().issue_cert("client.example").configure_cert(stranger)
    with pytest.raises((urllib3.exceptions.SSLError, urllib3.exceptions.ProtocolError)):
        tls_pool(stranger).request("GET", eio_url(server))


def test_tls_options_are_validated(tls_files: TLSFiles) -> None:
    with pytest.raises(ValueError, match="go together"):
        start_server("python", tls_cert=tls_files.cert)
    with pytest.raises(ValueError, match="client_ca needs"):
        start_server("python", client_ca=tls_files.client_ca_file)


# ------------------------------------------------------- process handling


@pytest.mark.parametrize("kind", ["python", "node"])
def test_handle_lifecycle(
    http: urllib3.PoolManager, server_factory: ServerFactory, kind: ServerKind
) -> None:
    server = server_factory(kind)
    server.pause()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        http.request("GET", eio_url(server), timeout=0.3)
    server.resume()
    handshake(http, server)
    assert server.stop() == 0  # clean exit on SIGTERM
    assert not server.alive
    with pytest.raises(urllib3.exceptions.NewConnectionError):
        http.request("GET", eio_url(server))

    other = server_factory(kind)
    assert other.kill() == -9


def test_session_server_is_restarted_after_a_kill(
    http: urllib3.PoolManager, server: ServerHandle, request: pytest.FixtureRequest
) -> None:
    server.kill()
    session_servers = request.getfixturevalue("_session_servers")
    replacement: ServerHandle = session_servers.get(server.kind)
    assert replacement.alive
    assert replacement is not server
    handshake(http, replacement)


def test_missing_node_modules_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "package.json").write_text('{"dependencies": {"engine.io": "6.6.12"}}')
    monkeypatch.setattr(_runner, "NODE_DIR", tmp_path)
    with pytest.raises(NodeSetupError, match=re.escape("npm ci --prefix tests/node")):
        start_server("node")
