"""Both transports through a real HTTP proxy (``proxy.py`` from PyPI), against both real servers.

The proxy runs as its own process on a free port. Its access log, written when a proxied
connection ends, is the proof that a connection went through it: ``GET host:port/...`` for
polling's absolute-form requests, ``CONNECT host:port`` for a tunnel.
"""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import gevent
import gevent.socket
import pytest
import trustme

import geventio
from geventio import ConnectError
from tests.helpers import MODES, Mode, build, free_port
from tests.servers import ServerFactory, ServerHandle

USER, PASSWORD = "user", "s3cret"


class ProxyProcess:
    """A ``proxy.py`` process on 127.0.0.1 (optionally with basic auth); see :attr:`url`."""

    def __init__(self, directory: Path, *, auth: str | None = None) -> None:
        self._log = directory / "proxy.log"
        port_file = directory / "proxy.port"
        command = [
            sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0",
            "--port-file", str(port_file), "--num-workers", "1", "--num-acceptors", "1",
            "--log-file", str(self._log), "--log-level", "INFO",
        ]  # fmt: skip
        if auth:
            command += ["--basic-auth", auth]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"proxy.py did not start: {self.log()[-2000:]}", pytrace=False)
            gevent.sleep(0.05)
        self.port = int(port_file.read_text().split()[0])
        self.url = f"http://127.0.0.1:{self.port}"
        while True:  # the port file is written just before the listener accepts
            try:
                gevent.socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "proxy.py does not accept connections"
                gevent.sleep(0.05)
        self._mark = 0

    def log(self) -> str:
        """The access log since the last :meth:`mark`."""
        return self._log.read_text()[self._mark :] if self._log.exists() else ""

    def mark(self) -> None:
        """Forget the log so far: later checks see only what comes after.

        proxy.py logs a tunnel when it ends, so the lines of connections that just ended may
        still be on their way. A tunnel of our own, opened and closed now, is logged after
        them: the mark goes after its line. (Only for a proxy without authentication.)
        """
        with gevent.socket.create_server(("127.0.0.1", 0)) as target:  # the kernel accepts
            authority = f"127.0.0.1:{target.getsockname()[1]}"
            with gevent.socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
                answer = b""
                while b"\r\n\r\n" not in answer:
                    chunk = sock.recv(4096)
                    assert chunk, f"proxy.py ended the tunnel: {answer!r}"
                    answer += chunk
                assert answer.startswith(b"HTTP/1.1 200"), answer
            self.wait_for_log(f"CONNECT {authority} ")
        text = self._log.read_text()
        line = text.index(f"CONNECT {authority} ", self._mark)
        self._mark = text.index("\n", line) + 1

    def wait_for_log(self, text: str, timeout: float = 5.0) -> None:
        """Wait until the access log has a line with ``text`` (logged as a connection ends)."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert time.monotonic() < deadline, f"{text!r} not in the proxy log:\n{self.log()}"
            gevent.sleep(0.05)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)


@pytest.fixture(scope="module")
def proxy_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    process = ProxyProcess(tmp_path_factory.mktemp("proxy"))
    yield process
    process.stop()


@pytest.fixture
def proxy(proxy_process: ProxyProcess) -> ProxyProcess:
    """The module's proxy, its log checks limited to this test."""
    proxy_process.mark()
    return proxy_process


@pytest.fixture(scope="module")
def auth_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    process = ProxyProcess(tmp_path_factory.mktemp("auth-proxy"), auth=f"{USER}:{PASSWORD}")
    yield process
    process.stop()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment, to change (conftest already removed the machine's proxy variables)."""
    return monkeypatch


def _authority(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def _echo(client: geventio.Client) -> None:
    client.send("through the proxy")
    assert client.receive(5) == "through the proxy"
    client.send(b"\x00\xffbinary")
    assert client.receive(5) == b"\x00\xffbinary"


@pytest.mark.parametrize("mode", MODES)
def test_every_transport_through_the_proxy(
    clean_env: pytest.MonkeyPatch, proxy: ProxyProcess, server: ServerHandle, mode: Mode
) -> None:
    with build(geventio.ClientBuilder(server.url).proxy(proxy.url).timeout(5), mode) as client:
        _echo(client)
    where = _authority(server.url)
    if mode != "websocket":  # polling over http: absolute-form requests to the proxy
        proxy.wait_for_log(f"GET {where}/engine.io/?EIO=4&transport=polling")
    if mode != "polling":  # WebSocket: a CONNECT tunnel
        proxy.wait_for_log(f"CONNECT {where} ")


@pytest.mark.parametrize("mode", MODES)
def test_https_and_wss_through_a_connect_tunnel(
    clean_env: pytest.MonkeyPatch,
    proxy: ProxyProcess,
    server_factory: ServerFactory,
    tmp_path: Path,
    mode: Mode,
) -> None:
    """The certificate is checked against the server's name (127.0.0.1), not the proxy's."""
    ca = trustme.CA()
    paths = []
    for name in ("127.0.0.1", "localhost"):
        issued = ca.issue_cert(name)
        cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
        issued.cert_chain_pems[0].write_to_path(str(cert))
        issued.private_key_pem.write_to_path(str(key))
        paths.append((str(cert), str(key)))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    via = f"http://localhost:{proxy.port}"
    right = server_factory("node", tls_cert=paths[0][0], tls_key=paths[0][1])
    builder = geventio.ClientBuilder(right.url).tls_config(context).proxy(via).timeout(5)
    with build(builder, mode) as client:
        _echo(client)
    proxy.wait_for_log(f"CONNECT {_authority(right.url)} ")
    assert f"GET {_authority(right.url)}" not in proxy.log()  # TLS stays end to end
    wrong = server_factory("node", tls_cert=paths[1][0], tls_key=paths[1][1])  # the proxy's name
    builder = geventio.ClientBuilder(wrong.url).tls_config(context).proxy(via).timeout(5)
    with pytest.raises(ConnectError, match=r"(?i)certificate|hostname"):
        build(builder, mode)


@pytest.mark.parametrize("mode", ["polling", "websocket"])
def test_proxy_authentication(
    clean_env: pytest.MonkeyPatch, auth_proxy: ProxyProcess, py_server: ServerHandle, mode: Mode
) -> None:
    good = f"http://{USER}:{PASSWORD}@127.0.0.1:{auth_proxy.port}"
    with build(geventio.ClientBuilder(py_server.url).proxy(good).timeout(5), mode) as client:
        _echo(client)
    for bad in (auth_proxy.url, f"http://{USER}:wrong@127.0.0.1:{auth_proxy.port}"):
        builder = geventio.ClientBuilder(py_server.url).proxy(bad).timeout(5)
        started = time.monotonic()
        with pytest.raises(ConnectError) as caught:
            build(builder, mode)
        assert time.monotonic() - started < 4  # an answer, not the 5 s timeout
        assert caught.value.status == 407
        assert PASSWORD not in str(caught.value)


def test_the_environment_names_the_proxy(
    clean_env: pytest.MonkeyPatch, proxy: ProxyProcess, server: ServerHandle
) -> None:
    clean_env.setenv("HTTP_PROXY", proxy.url)
    with geventio.ClientBuilder(server.url).timeout(5).build() as client:
        assert client.transport == "websocket"
        _echo(client)
    proxy.wait_for_log(f"CONNECT {_authority(server.url)} ")


@pytest.mark.parametrize("mode", ["polling", "websocket"])
def test_no_proxy_and_the_builder_bypass_the_environment(
    clean_env: pytest.MonkeyPatch, server: ServerHandle, mode: Mode
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # any use of the proxy would fail
    clean_env.setenv("HTTP_PROXY", dead)
    with pytest.raises(ConnectError):
        build(geventio.ClientBuilder(server.url).timeout(5), mode)
    clean_env.setenv("NO_PROXY", "localhost,127.0.0.0/8")
    with build(geventio.ClientBuilder(server.url).timeout(5), mode) as client:
        _echo(client)
    clean_env.delenv("NO_PROXY")
    with build(geventio.ClientBuilder(server.url).proxy(None).timeout(5), mode) as client:
        _echo(client)
    clean_env.setenv("HTTPS_PROXY", dead)  # for https and wss only
    clean_env.delenv("HTTP_PROXY")
    with build(geventio.ClientBuilder(server.url).timeout(5), mode) as client:
        _echo(client)


def test_a_bad_proxy_in_the_environment_is_a_connect_error(
    clean_env: pytest.MonkeyPatch, py_server: ServerHandle
) -> None:
    clean_env.setenv("HTTP_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(ConnectError, match="only http:// proxies"):
        geventio.ClientBuilder(py_server.url).build_polling()


@pytest.mark.parametrize("mode", ["polling", "websocket"])
def test_a_server_the_proxy_cannot_reach(
    clean_env: pytest.MonkeyPatch, proxy: ProxyProcess, mode: Mode
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    builder = geventio.ClientBuilder(url).proxy(proxy.url).timeout(5)
    started = time.monotonic()
    with pytest.raises(ConnectError) as caught:
        build(builder, mode)
    assert time.monotonic() - started < 4  # an answer, not the 5 s timeout
    assert caught.value.status == 502, caught.value  # Bad Gateway, from the proxy


def test_a_proxy_that_is_down(clean_env: pytest.MonkeyPatch, py_server: ServerHandle) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    modes: list[Mode] = ["polling", "websocket"]
    for mode in modes:
        builder = geventio.ClientBuilder(py_server.url).proxy(dead).timeout(5)
        with pytest.raises(ConnectError, match=f"cannot reach the proxy {dead}") as caught:
            build(builder, mode)
        assert caught.value.status is None
