"""geventio.contrib.locust.SocketIOUser: Locust runs, and each place it does better than the
built-in ``locust.contrib.socketio.SocketIOUser``.

The server is the Flask-SocketIO service of ``examples/flask_socketio_service.py``, in a
subprocess. Importing Locust monkey-patches the whole process, so this test process never
imports it: every Locust run, and every script that uses the user or its client, is a
subprocess bounded by a timeout. Results come from Locust's ``--csv`` files, or from what a
script prints after checking the samples it received from a Locust ``EventHook``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from geventio import socketio
from tests.helpers import LineReader, free_port, stop_process, wait_until
from tests.process.test_locust import (
    LOCUST,
    RUN_LIMIT,
    Stats,
    assert_quiet,
    locust_args,
    run,
    started,
    write,
)

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "examples"
EXAMPLE = EXAMPLES / "locust_socketio.py"
#: What one run of the example reports, each with samples and none failed.
EXAMPLE_SAMPLES = [
    ("WS", "connect"),
    ("WSC", "join_room"),
    ("WSE", "send_message"),
    ("WSR", "chat_message"),
    ("WSR", "room_joined"),
    ("WSC", "leave_room"),
    ("GET", "/"),
]


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    url: str

    def stats(self, tag: str) -> dict[str, object]:
        """The service's count of clients of ``tag``: connected, and left by reason."""
        with urllib.request.urlopen(f"{self.url}/stats?tag={tag}", timeout=5) as response:
            answer: dict[str, object] = json.load(response)
        return answer


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    """examples/flask_socketio_service.py on a free port, for the whole module."""
    command = [sys.executable, str(EXAMPLES / "flask_socketio_service.py"), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        prefix = "serving Socket.IO on "
        line = LineReader(process.stdout).next_starting(prefix, timeout=15)
        yield Service(process, line.removeprefix(prefix))
    finally:
        assert stop_process(process) == 0


@pytest.fixture(autouse=True)
def _locust_stays_out() -> Iterator[None]:
    """Locust would monkey-patch this process: it must never be imported here."""
    yield
    assert "locust" not in sys.modules


# =========================================================================
# The example locustfile: headless, distributed, --processes
# =========================================================================


def _headless(csv: Path, url: str, *more: str) -> list[str]:
    return locust_args(EXAMPLE, csv, "--headless", "-u", "4", "-r", "4", "-t", "3s", *more)


def test_example_headless(service: Service, tmp_path: Path) -> None:
    """One process: every request name of the example, none failed; a call is one WSC sample
    (no WSE beside it, as the built-in user records), and ``Client.call`` is not reported."""
    result = run([*_headless(tmp_path / "run", service.url), "--host", service.url], tmp_path)
    assert result.returncode == 0, result.stderr
    assert_quiet(result.stderr)
    stats = Stats.read(tmp_path / "run")
    stats.assert_clean(*EXAMPLE_SAMPLES)
    assert set(stats.requests) == set(EXAMPLE_SAMPLES), stats.requests
    # one WSE per loop: the emit; Client.call() of the base class sent one more, unreported
    assert stats.requests[("WSE", "send_message")] <= stats.requests[("WSC", "join_room")]


def test_example_distributed(service: Service, tmp_path: Path) -> None:
    """A master and a worker process on loopback: the stats merged on the master, no failure."""
    port = free_port()
    master = _headless(tmp_path / "run", service.url, "--host", service.url, "--master")
    master += ["--master-bind-host=127.0.0.1", f"--master-bind-port={port}"]
    master += ["--expect-workers=1", "--expect-workers-max-wait=20"]
    worker = [*LOCUST, "-f", str(EXAMPLE), "--worker", "--master-host=127.0.0.1"]
    worker.append(f"--master-port={port}")
    with started(master, worker, cwd=tmp_path) as (master_process, worker_process):
        _, master_err = master_process.communicate(timeout=RUN_LIMIT)
        _, worker_err = worker_process.communicate(timeout=15)
    assert master_process.returncode == 0, master_err
    assert worker_process.returncode == 0, worker_err
    assert_quiet(master_err)
    assert_quiet(worker_err)
    Stats.read(tmp_path / "run").assert_clean(*EXAMPLE_SAMPLES)


def test_example_processes(service: Service, tmp_path: Path) -> None:
    """``--processes 2``: Locust forks its workers after importing the locustfile."""
    command = _headless(tmp_path / "run", service.url, "--host", service.url)
    port = free_port()  # not Locust's default 5557: another run on the machine may hold it
    ports = [f"--master-bind-port={port}", f"--master-port={port}"]
    result = run([*command, "--processes", "2", *ports], tmp_path)
    assert result.returncode == 0, result.stderr
    assert_quiet(result.stderr)
    Stats.read(tmp_path / "run").assert_clean(*EXAMPLE_SAMPLES)


def test_example_runs_on_the_builtin_user_with_its_imports_changed_back(
    service: Service, tmp_path: Path
) -> None:
    """The example is a locustfile for Locust's built-in user: with its two imports changed
    back (python-socketio's client), it runs as well. The built-in user also records a WSE
    sample for each call (and for the base class's ``call()``): the double count ours avoids."""
    source = EXAMPLE.read_text()
    for ours, builtin in (
        (
            "from geventio.contrib.locust import SocketIOUser",
            "from locust.contrib.socketio import SocketIOUser",
        ),
        ("from geventio.socketio import Client", "from socketio import Client"),
    ):
        assert source.count(ours) == 1, ours
        source = source.replace(ours, builtin)
    builtin_example = write(tmp_path / "builtin_example.py", source)
    command = locust_args(builtin_example, tmp_path / "run", "--headless", "-u", "4", "-r", "4")
    result = run([*command, "-t", "3s", "--host", service.url], tmp_path)
    assert result.returncode == 0, result.stderr
    stats = Stats.read(tmp_path / "run")
    stats.assert_clean(*EXAMPLE_SAMPLES)
    # a WSE sample beside each WSC one; at the end of the run each of the 4 users may have had
    # its last call in flight, its WSE recorded when sent and its WSC never (Locust stopped it)
    emitted, called = stats.requests[("WSE", "join_room")], stats.requests[("WSC", "join_room")]
    assert called > 0
    assert called <= emitted <= called + 4, (emitted, called)


def test_example_against_a_refused_port_fails(tmp_path: Path) -> None:
    """Nothing listens: each user's connect is a failed ``WS connect`` that raised (so the
    user ran no task), and Locust exits non-zero. The built-in user records the failure, then
    runs its tasks unconnected."""
    refused = f"http://127.0.0.1:{free_port()}"
    result = run([*_headless(tmp_path / "run", refused), "--host", refused], tmp_path)
    assert result.returncode != 0, result.stderr
    stats = Stats.read(tmp_path / "run")
    assert set(stats.requests) == {("WS", "connect")}, stats.requests
    assert stats.failures[("WS", "connect")] == stats.requests[("WS", "connect")] == 4
    [(method, name, error, count)] = stats.errors
    assert (method, name, count) == ("WS", "connect", 4)
    assert error.startswith("ConnectionError("), error


# =========================================================================
# Each thing the built-in user gets wrong, done right
# =========================================================================

# One script per test below: the user's client with a listener on a Locust EventHook, against
# the service. It prints "ok" once every check passed.
SCRIPT_HEAD = """
    from __future__ import annotations

    import builtins
    import sys
    import time
    from typing import Any

    import gevent
    from locust import User
    from locust.env import Environment
    from socketio.packet import Packet  # python-socketio's encoder: the reference for sizes

    from geventio import socketio
    from geventio.contrib.locust import SocketIOClient, SocketIOUser

    url, refused = sys.argv[1], sys.argv[2]
    samples: list[dict[str, Any]] = []
    environment = Environment()
    environment.events.request.add_listener(lambda **sample: samples.append(sample))


    def taken() -> list[tuple[str, str, int, str | None]]:
        out = [
            (s["request_type"], s["name"], s["response_length"],
             None if s["exception"] is None else type(s["exception"]).__name__)
            for s in samples
        ]
        samples.clear()
        return out


    def wait_for(what: str, holds: Any, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not holds():
            assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
            gevent.sleep(0.01)


    def wire_size(event: str, *args: Any, id: int | None = None) -> int:
        packets = Packet(data=[event, *args], id=id).encode()
        packets = packets if isinstance(packets, list) else [packets]
        return sum(len(p.encode() if isinstance(p, str) else p) for p in packets)
"""

SCRIPTS = {
    "call_is_one_wsc_sample_with_its_round_trip": """
        sio = SocketIOClient(environment.events.request)
        sio.connect(url, transports=["websocket"])
        taken()
        before = time.perf_counter()
        assert sio.call("slow_echo", (0.2, "hi", 2)) == ("hi", 2)
        elapsed = (time.perf_counter() - before) * 1000
        [sample] = samples
        assert sample["request_type"] == "WSC" and sample["name"] == "slow_echo", sample
        # the server's 0.2 s (timers may fire a few ms early: the loop's clock is cached)
        assert 150 <= sample["response_time"] <= elapsed, (sample, elapsed)
        assert sample["exception"] is None
        assert taken() == [("WSC", "slow_echo", len('3["hi",2]'), None)]  # the ack's bytes
        sio.disconnect()
    """,
    "failed_connect_raises_and_is_a_failed_sample": """
        sio = SocketIOClient(environment.events.request)
        for target, kwargs in ((refused, {}), (url, {"namespaces": ["/nowhere"]})):
            try:
                sio.connect(target, **kwargs)
                raise AssertionError(f"connected to {target} {kwargs}")
            except socketio.ConnectionError:
                pass
            assert not sio.connected
            assert taken() == [("WS", "connect", 0, "ConnectionError")]
        try:
            sio.emit("echo", "unconnected")  # reported, and raised, as python-socketio raises
            raise AssertionError("emit() without a connection")
        except socketio.BadNamespaceError:
            pass
        assert taken() == [("WSE", "echo", 0, "NotConnectedError")]
    """,
    "call_timeout_is_a_failed_wsc_sample_and_raises": """
        sio = SocketIOClient(environment.events.request)
        sio.connect(url, transports=["websocket"])
        taken()
        for kind in (socketio.TimeoutError, builtins.TimeoutError):
            try:
                sio.call("no_handler_for_this", "x", timeout=0.2)  # never acknowledged
                raise AssertionError("call() returned")
            except kind:
                pass
            [sample] = samples
            assert sample["response_time"] >= 150, sample  # waited (about) the timeout
            assert taken() == [("WSC", "no_handler_for_this", 0, "TimeoutError")]
        assert sio.call("echo", "still up") == "still up"
        sio.disconnect()
    """,
    "handler_and_on_message_exceptions_are_wsr_failures": """
        seen: list[str] = []

        class Chat(SocketIOUser):
            def on_message(self, event: str, data: Any) -> None:
                seen.append(event)
                if event == "bad":
                    raise KeyError(data)
                self.sio.on_message(event, data)

        user = Chat(environment)
        sio = user.sio

        def boom(data: str) -> None:
            raise ValueError(data)

        sio.on("boom", boom)
        sio.connect(url, transports=["websocket"])
        taken()
        for event in ("boom", "bad", "good"):
            sio.emit("reflect", {"event": event, "args": ["x"]})
        wait_for("the events", lambda: seen == ["bad", "good"] and len(samples) == 6)
        got = taken()
        assert [s for s in got if s[0] != "WSE"] == [
            ("WSR", "boom", 0, "ValueError"),
            ("WSR", "bad", 0, "KeyError"),
            ("WSR", "good", len('2["good","x"]'), None),
        ], got
        assert sio.call("echo", "still up") == "still up"  # the client carried on
        sio.disconnect()
    """,
    "on_message_takes_any_number_of_arguments": """
        got: list[tuple[str, Any]] = []

        class Listener(SocketIOUser):
            def on_message(self, event: str, data: Any) -> None:
                got.append((event, data))
                self.sio.on_message(event, data)

        sio = Listener(environment).sio
        sio.connect(url, transports=["websocket"])
        cases = {"none": [], "one": [{"a": 1}], "two": ["a", 2], "three": [1, [2], {"3": 3}]}
        for event, args in cases.items():
            sio.emit("reflect", {"event": event, "args": args})
        wait_for("the events", lambda: len(got) == 4)
        assert got == [
            ("none", None), ("one", {"a": 1}), ("two", ("a", 2)), ("three", (1, [2], {"3": 3}))
        ], got
        received = [s for s in taken() if s[0] == "WSR"]
        assert received == [
            ("WSR", event, wire_size(event, *args), None) for event, args in cases.items()
        ], received
        sio.disconnect()
    """,
    "emit_and_send_report_bytes_sent_and_bad_data_raises_first": """
        sio = SocketIOClient(environment.events.request)
        sio.connect(url, transports=["websocket"])
        taken()
        text = {"room": "ré", "n": [1, 2.5, None, True]}
        sio.emit("echo", text)
        sio.emit("echo", ("two", {"bin": b"\\x00\\x01\\x02", "more": [b"x" * 300]}))
        sio.emit("echo")
        sio.send("héllo", name="greeting")
        sio.send(5)  # the built-in sends it, then fails on len(5)
        assert taken() == [
            ("WSE", "echo", wire_size("echo", text), None),
            ("WSE", "echo", wire_size("echo", "two", {"bin": b"\\x00\\x01\\x02",
                                                      "more": [b"x" * 300]}), None),
            ("WSE", "echo", wire_size("echo"), None),
            ("WSS", "greeting", wire_size("message", "héllo"), None),
            ("WSS", "Unnamed", wire_size("message", 5), None),
        ]
        for bad in ({1, 2}, ("ok", object()), float("nan")):
            for emit in (lambda: sio.emit("echo", bad), lambda: sio.send(bad),
                         lambda: sio.call("echo", bad)):
                try:
                    emit()
                    raise AssertionError(f"sent {bad!r}")
                except (TypeError, ValueError):
                    pass
        assert taken() == []  # no sample for what could not be sent
        assert sio.call("echo", "after") == "after"  # and nothing half-sent broke the session
        sio.disconnect()
    """,
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_does_better_than_the_builtin(service: Service, tmp_path: Path, name: str) -> None:
    source = textwrap.dedent(SCRIPT_HEAD) + textwrap.dedent(SCRIPTS[name]) + 'print("ok")\n'
    script = write(tmp_path / f"{name}.py", source)
    refused = f"http://127.0.0.1:{free_port()}"
    result = run([sys.executable, str(script), service.url, refused], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok", result.stdout


def test_disconnected_when_the_user_stops(service: Service, tmp_path: Path) -> None:
    """Users that never disconnect, stuck in a task when the run ends: each client still says
    goodbye (the server sees ``client disconnect``, not a dropped connection)."""
    locustfile = write(
        tmp_path / "stuck.py",
        """
        from __future__ import annotations

        import gevent.event
        from locust import constant, task

        from geventio.contrib.locust import SocketIOUser


        class Stuck(SocketIOUser):
            wait_time = constant(1)

            def on_start(self) -> None:
                self.sio.connect(self.host, auth={"tag": "stuck"}, transports=["websocket"])

            @task
            def hang(self) -> None:
                self.sio.call("echo", "x")
                gevent.event.Event().wait()  # until Locust kills the user
        """,
    )
    command = locust_args(locustfile, tmp_path / "run", "--headless", "-u", "3", "-r", "3")
    result = run([*command, "-t", "2s", "--host", service.url], tmp_path)
    assert result.returncode == 0, result.stderr
    assert_quiet(result.stderr)
    Stats.read(tmp_path / "run").assert_clean(("WS", "connect"), ("WSC", "echo"))
    wait_until(lambda: service.stats("stuck")["connected"] == 0)  # the server saw them all go
    assert service.stats("stuck") == {"connected": 0, "left": {"client disconnect": 3}}


def test_combines_with_http_user_in_either_order(service: Service, tmp_path: Path) -> None:
    """``class U(SocketIOUser, HttpUser)``, ``class U(HttpUser, SocketIOUser)`` and with
    ``FastHttpUser``: ``client`` is the HTTP session, ``sio`` the Socket.IO client; both report
    to the same statistics."""
    locustfile = write(
        tmp_path / "both.py",
        """
        from __future__ import annotations

        from locust import HttpUser, constant, task
        from locust.clients import HttpSession
        from locust.contrib.fasthttp import FastHttpSession, FastHttpUser

        from geventio.contrib.locust import SocketIOClient, SocketIOUser


        class Tasks(SocketIOUser):
            abstract = True
            fixed_count = 1
            wait_time = constant(0.05)
            session: type = HttpSession

            def on_start(self) -> None:
                assert isinstance(self.client, self.session), self.client
                assert isinstance(self.sio, SocketIOClient), self.sio
                self.sio.connect(self.host, transports=["websocket"])

            @task
            def both(self) -> None:
                self.client.get("/")
                assert self.sio.call("echo", type(self).__name__) == type(self).__name__


        class Both(Tasks, HttpUser):
            pass


        class Reversed(HttpUser, Tasks):
            pass


        class Fast(Tasks, FastHttpUser):
            session = FastHttpSession
        """,
    )
    command = locust_args(locustfile, tmp_path / "run", "--headless", "-u", "3", "-r", "3")
    result = run([*command, "-t", "2s", "--host", service.url], tmp_path)
    assert result.returncode == 0, result.stderr
    assert_quiet(result.stderr)
    Stats.read(tmp_path / "run").assert_clean(("GET", "/"), ("WSC", "echo"), ("WS", "connect"))


# =========================================================================
# geventio.socketio itself: a case the Locust runs found
# =========================================================================


def test_call_acked_without_arguments_returns_none(service: Service) -> None:
    """A handler that returns nothing acks with no arguments: ``call()`` returns ``None``.

    It raised ``TimeoutError`` at once (``AsyncResult.wait()`` returns the value, and ``[]``
    is falsy), so the example's ``leave_room`` call failed.
    """
    sio = socketio.Client(reconnection=False)
    sio.connect(service.url, transports=["websocket"])
    try:
        assert sio.call("leave_room", {"room": "nowhere"}, timeout=5) is None
        assert sio.call("echo", timeout=5) is None  # no data: acked with no arguments
    finally:
        sio.disconnect()
