"""The examples run against the embedded server, as a user would run them."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.monkey
import gevent.socket
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Request,
    TextMessage,
)

import geventio
from geventio.contrib.server import start_server, url_of
from tests.client_checks import live_greenlets
from tests.faultkit import open_sockets
from tests.helpers import LineReader, free_port, spawn_catching, stop_process, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str, module_name: str | None = None) -> ModuleType:
    """Import ``examples/<name>.py`` (under ``module_name``, default ``name``), fresh each time.

    The examples folder is on ``sys.path`` meanwhile, as when running an example: some import
    their neighbours (``flask_upstream`` imports ``echo``).
    """
    spec = importlib.util.spec_from_file_location(module_name or name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it runs
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


class Browser:
    """A browser's WebSocket: wsproto on a gevent socket.

    Cooperative, because the servers under test run in this process's hub (and it is not
    monkey-patched, so a blocking client would stall them). Every call is bounded by ``timeout``.
    """

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        self._sock = gevent.socket.create_connection((parts.hostname, parts.port), timeout)
        self._sock.settimeout(timeout)
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._events: deque[Event] = deque()
        self._text: list[str] = []  # the parts of a fragmented message
        self._binary: list[bytes] = []
        self._sock.sendall(self._ws.send(Request(host=parts.netloc, target=parts.path)))
        accepted = self._next_event()
        assert isinstance(accepted, AcceptConnection), accepted

    def _next_event(self) -> Event:
        while not self._events:
            data = self._sock.recv(65536)
            self._ws.receive_data(data or None)
            self._events.extend(self._ws.events())
            if not data and not self._events:
                raise ConnectionError("the server closed the TCP connection without a close")
        return self._events.popleft()

    def send(self, message: str | bytes) -> None:
        event = TextMessage(message) if isinstance(message, str) else BytesMessage(message)
        self._sock.sendall(self._ws.send(event))

    def receive(self) -> str | bytes | CloseConnection:
        """The next message, or the close the server sent (answered, then the socket closed)."""
        while True:
            event = self._next_event()
            if isinstance(event, Ping):
                self._sock.sendall(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self._sock.sendall(self._ws.send(event.response()))
                self._sock.close()
                return event
            elif isinstance(event, TextMessage):
                self._text.append(event.data)
                if event.message_finished:
                    text, self._text = "".join(self._text), []
                    return text
            elif isinstance(event, BytesMessage):
                self._binary.append(bytes(event.data))
                if event.message_finished:
                    data, self._binary = b"".join(self._binary), []
                    return data
            else:
                raise AssertionError(f"unexpected {event!r}")

    def close(self, code: int = 1000) -> CloseConnection:
        """Close as a browser does: send a close, wait for the server's, close the socket."""
        self._sock.sendall(self._ws.send(CloseConnection(code)))
        while True:
            event = self._next_event()
            if isinstance(event, CloseConnection):
                self._sock.close()
                return event

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._sock.close()


# -- every example imports without side effects ---------------------------------------------

# examples/locustfile.py and locust_socketio.py are left out: ``import locust`` monkey-patches the
# whole process. They are run in subprocesses by their own tests instead (test_locust.py and
# test_sio_locust.py).
LOCUSTFILES = {"locustfile", "locust_socketio"}
IMPORTABLE = sorted(path.stem for path in EXAMPLES.glob("*.py") if path.stem not in LOCUSTFILES)


@pytest.mark.parametrize("name", IMPORTABLE)
def test_example_imports_without_side_effects(name: str) -> None:
    sockets, threads = open_sockets(), threading.active_count()
    module = load_example(name, f"_imported_{name}")
    del sys.modules[module.__name__]
    gevent.idle()  # a whole turn of the loop: anything spawned at import has run now
    assert module.__doc__, "every example starts with a docstring saying how to run it"
    assert not open_sockets() - sockets, "importing opened a socket (a server? a client?)"
    assert threading.active_count() == threads, "importing started a thread"
    assert not live_greenlets("geventio", f"_imported_{name}"), "importing spawned greenlets"
    assert not gevent.monkey.is_anything_patched(), "importing monkey-patched the process"


def test_example_list_is_complete() -> None:
    assert {"echo", "flask_upstream", "flask_relay", "blocking_in_greenlet"} <= set(IMPORTABLE)


# -- the demo and the Flask upstream view -----------------------------------------------------


def run_example(name: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``python examples/<name>.py`` to completion, output captured; killed past ``timeout``."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_echo_demo_runs() -> None:
    result = run_example("echo", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "transport=websocket" in result.stdout
    assert "server says: 'welcome'" in result.stdout
    assert "echoed b'\\x00\\x01binary'" in result.stdout
    assert result.stdout.rstrip().endswith("done")


def assert_twenty_concurrent_asks_answered(app: Any) -> None:
    """20 greenlets each GET ``/ask``; each gets its own question back; then the app's shared
    upstream client is closed."""
    http = app.test_client()
    jobs = [gevent.spawn(http.get, f"/ask?q=question {i}") for i in range(20)]
    gevent.joinall(jobs, timeout=20, raise_error=True)
    answers = [job.value.get_json() for job in jobs]
    assert answers == [{"question": f"question {i}", "answer": f"question {i}"} for i in range(20)]
    app.config["upstream"].close()


def test_flask_view_calls_the_upstream_from_many_greenlets() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import echo  # noqa: PLC0415 - from the examples folder
        import flask_upstream  # noqa: PLC0415
    finally:
        sys.path.remove(str(EXAMPLES))
    server = echo.start_server()
    try:
        app = flask_upstream.create_app(url_of(server))
        assert_twenty_concurrent_asks_answered(app)
    finally:
        server.stop(timeout=2)


def test_flask_view_calls_the_socketio_service_from_many_greenlets() -> None:
    """examples/flask_socketio_client.py: one shared client, a ``call()`` per request, against
    the Flask-SocketIO service of flask_socketio_service.py, both in this process."""
    service = load_example("flask_socketio_service")
    client_example = load_example("flask_socketio_client")
    server = service.start_server()
    try:
        app = client_example.create_app(url_of(server))
        assert_twenty_concurrent_asks_answered(app)
    finally:
        server.stop(timeout=2)


def test_flask_view_answers_502_when_the_socketio_service_is_down() -> None:
    client_example = load_example("flask_socketio_client")
    app = client_example.create_app(f"http://127.0.0.1:{free_port()}")
    response = app.test_client().get("/ask?q=anyone")
    assert response.status_code == 502
    assert response.get_json()["error"].startswith("ConnectionError: ")
    app.config["upstream"].close()


# -- blocking calls from many greenlets -------------------------------------------------------


def test_blocking_calls_from_many_greenlets() -> None:
    result = run_example("blocking_in_greenlet", timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("(embedded echo server)")
    for line, name in zip(lines[1:3], ("shared client", "client per greenlet"), strict=True):
        assert line.startswith(f"{name}: 50 greenlets x 20 calls = 1000 calls in "), line
        assert " ms, p99 " in line
        assert line.endswith(", 0 errors"), line
    assert lines[3] == "ok: every answer matched its question"


def test_requester_times_out_and_fails_waiting_calls_on_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocking = load_example("blocking_in_greenlet")
    server = start_server(port=0)
    try:
        with blocking.Requester(url_of(server)) as requester:
            assert requester.ask("first") == "first"
            monkeypatch.setattr(requester.client, "send", lambda data: None)  # lost on the way
            with pytest.raises(TimeoutError):
                requester.ask("lost", timeout=0.1)
            assert requester._pending == {}  # the timed-out call left nothing behind
            waiting = spawn_catching(lambda: requester.ask("never answered", 10))
            wait_until(lambda: bool(requester._pending))  # the call waits for its answer
            start = time.monotonic()
            requester.close()
            assert isinstance(waiting.get(timeout=2), geventio.ConnectionClosed)
            assert time.monotonic() - start < 1  # at once, not after the call's timeout
    finally:
        server.stop(timeout=2)


# -- the WebSocket relay ----------------------------------------------------------------------


@pytest.fixture
def flask_relay() -> ModuleType:
    return load_example("flask_relay")


@dataclass
class Relay:
    """examples/flask_relay.py served on a free port, relaying to an embedded echo server."""

    upstream: Any  # the echo server's WSGIServer
    server: Any  # the relay's WSGIServer

    @property
    def url(self) -> str:
        """The WebSocket URL a browser opens."""
        return f"ws://127.0.0.1:{self.server.server_port}/relay"


@pytest.fixture
def relay(flask_relay: ModuleType) -> Iterator[Relay]:
    """The relay and its upstream, both stopped afterwards (each may be stopped before)."""
    upstream = start_server(port=0)
    try:
        server = flask_relay.serve(flask_relay.create_app(url_of(upstream)), port=0)
        try:
            yield Relay(upstream, server)
        finally:
            server.stop(timeout=2)
    finally:
        upstream.stop(timeout=2)


def test_relay_echoes_through_the_upstream_and_closes_it_when_the_browser_leaves(
    relay: Relay,
) -> None:
    with Browser(relay.url) as browser:
        for message in ("hello", "héllo wörld", b"\x00\x01binary", "x" * 100_000):
            browser.send(message)
            assert browser.receive() == message
        burst = [f"burst {i}" for i in range(200)]
        for message in burst:
            browser.send(message)
        assert [browser.receive() for _ in burst] == burst  # in order
        assert len(live_greenlets("geventio")) > 0  # the upstream client is open
        # gevent-websocket answers a close with an empty close frame (1005: no code)
        assert browser.close().code in (1000, 1005)
    # The relay disconnected its upstream client, and its greenlets ended.
    wait_until(lambda: not live_greenlets("geventio", "flask_relay"), timeout=5)


def test_relay_many_browsers_at_once(relay: Relay) -> None:
    def browse(n: int) -> list[str | bytes | CloseConnection]:
        with Browser(relay.url) as browser:
            for i in range(20):
                browser.send(f"{n}/{i}")
            echoes = [browser.receive() for _ in range(20)]
            browser.close()
            return echoes

    jobs = [gevent.spawn(browse, n) for n in range(20)]
    gevent.joinall(jobs, timeout=20, raise_error=True)
    assert [job.value for job in jobs] == [[f"{n}/{i}" for i in range(20)] for n in range(20)]
    wait_until(lambda: not live_greenlets("geventio", "flask_relay"), timeout=5)


def test_relay_closes_the_browser_when_the_upstream_closes(
    relay: Relay, flask_relay: ModuleType
) -> None:
    with Browser(relay.url) as browser:
        browser.send("hello")
        assert browser.receive() == "hello"
        relay.upstream.application.engineio_app.disconnect()  # ends every upstream session
        close = browser.receive()
        assert isinstance(close, CloseConnection)
        assert close.code == flask_relay.GOING_AWAY
        assert close.reason == "upstream closed: server disconnect"
    wait_until(lambda: not live_greenlets("geventio", "flask_relay"), timeout=5)


def test_relay_closes_the_browser_when_the_upstream_is_unreachable(
    flask_relay: ModuleType,
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    relay = flask_relay.serve(flask_relay.create_app(unreachable), port=0)
    try:
        with Browser(f"ws://127.0.0.1:{relay.server_port}/relay") as browser:
            close = browser.receive()
            assert isinstance(close, CloseConnection)
            assert close.code == flask_relay.UPSTREAM_UNREACHABLE
            assert close.reason is not None
            assert close.reason.startswith("upstream unreachable: ")
    finally:
        relay.stop(timeout=2)


def test_relay_stopping_the_server_closes_open_relays(
    relay: Relay, flask_relay: ModuleType
) -> None:
    with Browser(relay.url) as browser:
        browser.send("hello")
        assert browser.receive() == "hello"
        relay.server.stop(timeout=0.1)  # kills the relay's handler: it cleans up as it dies
        close = browser.receive()
        assert isinstance(close, CloseConnection)
        assert close.code == flask_relay.GOING_AWAY
        assert close.reason == "relay stopped"
    assert not live_greenlets("geventio", "flask_relay")


def test_relay_page_and_plain_http(flask_relay: ModuleType) -> None:
    http = flask_relay.create_app("http://127.0.0.1:1").test_client()
    page = http.get("/")
    assert page.status_code == 200
    assert 'new WebSocket(scheme + location.host + "/relay")' in page.get_data(as_text=True)
    assert http.get("/relay").status_code == 400  # not a WebSocket request


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_relay_script_runs_until_a_signal(stop_signal: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "flask_relay.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = LineReader(process.stdout).next_starting("open http://", 20).split()[1]
        relay_url = url.replace("http://", "ws://") + "relay"
        with Browser(relay_url) as browser, Browser(relay_url) as leaving:
            for each in (browser, leaving):
                each.send("hello")
                assert each.receive() == "hello"
            assert leaving.close().code in (1000, 1005)  # 1005: see above
            process.send_signal(stop_signal)  # with one browser still connected
            close = browser.receive()
            assert isinstance(close, CloseConnection)
            assert (close.code, close.reason) == (1001, "relay stopped")
        out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert err == b"", err  # no traceback from a greenlet killed at shutdown
        assert out.decode().rstrip().endswith("stopped")
    finally:
        stop_process(process)
