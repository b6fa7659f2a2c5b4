"""geventio.contrib.locust under real Locust runs, against ``geventio serve``.

Importing Locust monkey-patches the whole process (``gevent.monkey.patch_all()``), so this test
process never imports ``locust`` nor ``geventio.contrib.locust``: every Locust run (headless,
distributed with a master and two workers, ``--processes 2``) and the client's contract script run
as subprocesses, each bounded by a timeout and stopped in a ``finally``. Results are read from
Locust's ``--csv`` files.
"""

from __future__ import annotations

import csv
import http.server
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import LineReader, free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "locustfile.py"
LOCUST = [sys.executable, "-m", "locust"]
SERVE = [sys.executable, "-m", "geventio", "serve", "--port", "0"]
SERVE += ["--ping-interval", "5", "--ping-timeout", "5"]
#: Bound on one Locust run, startup and shutdown included (runs last 3 to 4 s).
RUN_LIMIT = 30.0


# =========================================================================
# Subprocesses: the server, Locust, and what they leave
# =========================================================================


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; the server exits 0 on SIGTERM."""
        stop_process(self.process)


def start_server() -> Server:
    """``geventio serve`` on a free port; returns once it printed its address line."""
    process = subprocess.Popen(SERVE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        prefix = "serving Engine.IO on "
        line = LineReader(process.stdout).next_starting(prefix, timeout=15)
        return Server(process, line.removeprefix(prefix).removesuffix("/engine.io/"))
    except BaseException:
        stop_process(process)
        raise


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """One echo server for the module's runs that do not kill it."""
    server = start_server()
    try:
        yield server
    finally:
        server.stop()
        assert server.process.returncode == 0


@contextmanager
def started(*commands: list[str], cwd: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Start each command (stdout discarded, stderr piped as text); yield the processes.

    On the way out, each one that still runs is stopped (SIGTERM, then SIGKILL).
    """
    processes: list[subprocess.Popen[str]] = []
    try:
        for command in commands:
            processes.append(
                subprocess.Popen(
                    command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
                )
            )
        yield processes
    finally:
        for process in processes:
            stop_process(process)


@dataclass
class Stats:
    """What a Locust run left in its ``--csv`` files: samples and failures per (type, name)."""

    requests: dict[tuple[str, str], int]
    failures: dict[tuple[str, str], int]
    errors: list[tuple[str, str, str, int]]  # method, name, error, occurrences

    @classmethod
    def read(cls, prefix: Path) -> Stats:
        requests, failures = {}, {}
        with open(f"{prefix}_stats.csv", newline="") as file:
            for row in csv.DictReader(file):
                if row["Name"] != "Aggregated":
                    key = (row["Type"], row["Name"])
                    requests[key] = int(row["Request Count"])
                    failures[key] = int(row["Failure Count"])
        with open(f"{prefix}_failures.csv", newline="") as file:
            errors = [
                (row["Method"], row["Name"], row["Error"], int(row["Occurrences"]))
                for row in csv.DictReader(file)
            ]
        return cls(requests, failures, errors)

    def assert_clean(self, *names: tuple[str, str]) -> None:
        """Each of ``names`` has samples, and nothing failed."""
        for key in names:
            assert self.requests.get(key, 0) > 0, f"no {key} samples in {self.requests}"
        assert not any(self.failures.values()), self.errors


def locust_args(locustfile: Path, csv_prefix: Path, *args: str) -> list[str]:
    return [*LOCUST, "-f", str(locustfile), "--csv", str(csv_prefix), "--only-summary", *args]


def run(args: list[str], cwd: Path, timeout: float = RUN_LIMIT) -> subprocess.CompletedProcess[str]:
    """Run to completion (killed past ``timeout``); the output is captured."""
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_quiet(stderr: str) -> None:
    """No traceback: neither Locust's (an exception in a task) nor the gevent hub's."""
    assert "Traceback" not in stderr, stderr
    assert " failed with " not in stderr, stderr  # the hub's "<Greenlet ...> failed with X"


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


# Three users, one per transport, each with every reported operation.
ECHO_USERS = """
    from __future__ import annotations

    import itertools

    from locust import constant, task

    from geventio.contrib.locust import EngineIOUser


    class WebSocketUser(EngineIOUser):
        transport = "websocket"
        wait_time = constant(0.05)

        def on_start(self) -> None:
            self.ids = itertools.count()
            super().on_start()

        @task
        def send(self) -> None:
            assert self.client.send("hello")

        @task
        def echo(self) -> None:
            payload = f"echo {next(self.ids)}"
            reply = self.client.request(payload, match=lambda m: m == payload, name="echo")
            assert reply == payload

        @task
        def receive(self) -> None:
            self.client.send(b"\\x00binary")
            self.client.receive(timeout=5)


    class PollingUser(WebSocketUser):
        transport = "polling"


    class AutoUser(WebSocketUser):
        transport = "auto"
"""

ECHO_SAMPLES = [("WS", "connect"), ("WSS", "message"), ("WSR", "message"), ("WSC", "echo")]


# =========================================================================
# Tests
# =========================================================================


@pytest.fixture(autouse=True)
def _locust_stays_out() -> Iterator[None]:
    """Locust would monkey-patch this process: it must never be imported here."""
    yield
    assert "locust" not in sys.modules


def test_import_geventio_does_not_import_locust() -> None:
    code = "import sys, geventio, geventio.contrib; assert 'locust' not in sys.modules"
    result = run([sys.executable, "-c", code], ROOT)
    assert result.returncode == 0, result.stderr


def test_import_geventio_is_lazy() -> None:
    """``import geventio`` imports neither ssl nor urllib3; each public name is there on use."""
    code = (
        "import sys, geventio; "
        "assert not {'ssl', 'urllib3', 'wsproto'} & set(sys.modules), sorted(sys.modules); "
        "assert set(geventio.__all__) <= set(dir(geventio)); "
        "from geventio import *; "
        "assert all(getattr(geventio, name) is not None for name in geventio.__all__); "
        "assert ClientBuilder.__module__ == 'geventio._builder'; "
        "assert issubclass(ConnectTimeout, ConnectError); "
        "assert geventio.exceptions.ConnectError is ConnectError"  # as before the lazy import
    )
    result = run([sys.executable, "-c", code], ROOT)
    assert result.returncode == 0, result.stderr
    missing = [sys.executable, "-c", "import geventio; geventio.NoSuchName"]
    assert "has no attribute 'NoSuchName'" in run(missing, ROOT).stderr


def test_a_script_may_import_contrib_locust_first(server: Server, tmp_path: Path) -> None:
    """``from geventio.contrib.locust import ...`` as a plain script's first line: Locust must
    patch before ``ssl`` and urllib3 are imported (it used to fail with a RecursionError in
    ``ssl``), and the session then works."""
    script = write(
        tmp_path / "first.py",
        """\
        from geventio.contrib.locust import EngineIOUser
        import sys

        import geventio

        assert EngineIOUser.abstract
        with geventio.ClientBuilder(sys.argv[1]).timeout(5).build() as client:  # auto: both
            client.send("first")
            assert client.receive(timeout=5) == "first"
            assert client.transport == "websocket"
        print("script ok")
        """,
    )
    result = run([sys.executable, "-W", "error::Warning", str(script), server.url], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "script ok"
    assert_quiet(result.stderr)


@pytest.fixture
def http_server() -> Iterator[str]:
    """A small HTTP server in a thread of this process, answering ``200 ok``; yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_engineio_user_combines_with_http_user(
    server: Server, http_server: str, tmp_path: Path
) -> None:
    """``class U(EngineIOUser, HttpUser)`` (and the other order, and FastHttpUser): ``client``
    is the HTTP session, ``eio`` the Engine.IO one, and both report samples."""
    locustfile = write(
        tmp_path / "both.py",
        f"""
        from __future__ import annotations

        from locust import HttpUser, constant, task
        from locust.clients import HttpSession
        from locust.contrib.fasthttp import FastHttpSession, FastHttpUser

        from geventio.contrib.locust import EngineIOUser, LocustClient


        class Tasks(EngineIOUser):
            abstract = True
            fixed_count = 1  # one user of each class below
            transport = "websocket"
            wait_time = constant(0.05)
            session: type = HttpSession

            def on_start(self) -> None:
                super().on_start()
                assert isinstance(self.client, self.session), self.client
                assert isinstance(self.eio, LocustClient), self.eio

            @task
            def page(self) -> None:
                with self.client.get("{http_server}/page", name="page", catch_response=True) as r:
                    assert r.text == "ok", r.text

            @task
            def echo(self) -> None:
                assert self.eio.request("hi", match=lambda m: m == "hi", name="echo") == "hi"


        class Both(Tasks, HttpUser):
            pass


        class Reversed(HttpUser, Tasks):
            pass


        class Fast(Tasks, FastHttpUser):
            session = FastHttpSession
        """,
    )
    result = run(
        locust_args(
            locustfile,
            tmp_path / "run",
            "--headless",
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "2s",
            "--host",
            server.url,
        ),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert_quiet(result.stderr)
    Stats.read(tmp_path / "run").assert_clean(("GET", "page"), ("WSC", "echo"), ("WS", "connect"))


def test_client_contract(server: Server, tmp_path: Path) -> None:
    """LocustClient alone, with a listener on a Locust EventHook: what is reported, and how."""
    script = write(
        tmp_path / "contract.py",
        """
        from __future__ import annotations

        import itertools
        import sys
        import time
        from collections.abc import Callable
        from typing import Any

        import gevent
        from locust.event import EventHook

        from geventio import ClientBuilder, ConnectError, ConnectionClosed, Timeout
        from geventio.contrib.locust import LocustClient

        url, refused = sys.argv[1], sys.argv[2]
        samples: list[dict[str, Any]] = []
        hook = EventHook()
        hook.add_listener(lambda **sample: samples.append(sample))
        asked = itertools.count()  # how often the context was asked for

        def context() -> dict[str, Any]:
            return {"user": "contract", "asked": next(asked)}

        def taken(context: str | None = "contract") -> list[tuple[str, str, int, str | None]]:
            # the samples so far, each with the context of ``context`` (None: {})
            for sample in samples:
                if context is None:
                    assert sample["context"] == {}, sample
                else:
                    assert sample["context"]["user"] == context, sample
            out = [
                (s["request_type"], s["name"], s["response_length"],
                 None if s["exception"] is None else type(s["exception"]).__name__)
                for s in samples
            ]
            samples.clear()
            return out

        def wait_for(what: str, holds: Callable[[], bool], timeout: float = 5.0) -> None:
            deadline = time.monotonic() + timeout
            while not holds():
                assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
                gevent.sleep(0.01)

        # the builder is copied: its callbacks are not replaced, it does not hold the client
        builder = ClientBuilder(url)
        client = LocustClient.connect(builder, hook, transport="websocket", context=context)
        assert client.connected and client.transport == "websocket" and client.sid
        assert taken() == [("WS", "connect", 0, None)]
        with builder.build_websocket() as plain:  # not reported, receives its own echoes
            plain.send("plain")
            assert plain.receive(timeout=5) == "plain"
        assert taken() == []
        assert next(asked) == 1  # the context is asked for each sample, not kept

        # concurrent requests: each reply goes to the first pending request it matches
        a = gevent.spawn(client.request, "to b", match=lambda m: m == "to a", name="cross")
        b = gevent.spawn(client.request, "to a", match=lambda m: m == "to b", name="cross")
        assert gevent.joinall([a, b], timeout=5) and (a.value, b.value) == ("to a", "to b")
        assert taken() == [("WSC", "cross", 4, None)] * 2

        # without match, in the order the requests were made; sizes are UTF-8 bytes
        jobs = [gevent.spawn(client.request, f"é{i}") for i in range(10)]
        gevent.joinall(jobs, timeout=5)
        assert [job.value for job in jobs] == [f"é{i}" for i in range(10)]
        assert taken() == [("WSC", "request", 3, None)] * 10

        # a message no request claims: a WSR sample, then receive()
        assert client.send(b"\\x00\\x01", name="bin") is True
        assert client.receive(timeout=5) == b"\\x00\\x01"
        assert taken() == [("WSS", "bin", 2, None), ("WSR", "message", 2, None)]
        try:
            client.receive(timeout=0.05)
            raise AssertionError("receive() returned")
        except Timeout:
            pass

        # text that UTF-8 cannot encode (a lone surrogate): ValueError, as Client.send; no sample
        for call in (client.send, client.request):
            try:
                call("\\ud800")
                raise AssertionError(f"{call.__name__} took a lone surrogate")
            except ValueError:
                pass
        assert taken() == []

        # a reply no match accepts is an unclaimed message; the request fails by timeout
        assert client.request("echo", match=lambda m: False, timeout=0.2, name="t") is None
        assert client.receive(timeout=5) == "echo"
        assert taken() == [("WSR", "message", 4, None), ("WSC", "t", 0, "Timeout")]

        # a match that raises fails its request with that exception
        def bad(message: str | bytes) -> bool:
            raise KeyError(message)

        assert client.request("x", match=bad, name="bad") is None
        assert taken()[0] == ("WSC", "bad", 0, "KeyError")

        # disconnect: pending requests fail, later calls fail, no "close" failure
        waiting = gevent.spawn(client.request, "y", match=lambda m: False, name="cut")
        echo_of_y = ("WSR", "message", 1)  # unclaimed, since the match refuses it
        wait_for(
            "the echo of 'y'",
            lambda: any(
                (s["request_type"], s["name"], s["response_length"]) == echo_of_y
                for s in samples
            ),
        )
        client.disconnect()
        assert waiting.get(timeout=5) is None
        assert client.send("z") is False
        assert client.request("z", name="after") is None
        kept = []  # receive() drains the kept messages (the echoes of "x" and "y"), then raises
        try:
            while len(kept) < 3:
                kept.append(client.receive(timeout=5))
        except ConnectionClosed:
            pass
        assert kept == ["x", "y"], kept
        got = [s for s in taken() if s[0] != "WSR"]
        assert got == [
            ("WSC", "cut", 0, "ConnectionClosed"),
            ("WSS", "message", 1, "ConnectionClosed"),
            ("WSC", "after", 0, "ConnectionClosed"),
        ], got

        # a failed connect: reported (with the default context, {}), then raised
        try:
            LocustClient.connect(ClientBuilder(refused).timeout(2), hook, transport="polling")
            raise AssertionError("connected")
        except ConnectError:
            pass
        assert taken(context=None) == [("WS", "connect", 0, "ConnectError")]
        print("contract ok")
        """,
    )
    refused = f"http://127.0.0.1:{free_port()}"
    result = run([sys.executable, str(script), server.url, refused], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "contract ok"
    assert_quiet(result.stderr)


def test_distributed_master_and_two_workers(server: Server, tmp_path: Path) -> None:
    """A master and two workers on loopback; stats merged on the master; no failure."""
    locustfile = write(tmp_path / "users.py", ECHO_USERS)
    port = free_port()
    master_args = locust_args(
        locustfile,
        tmp_path / "run",
        "--master",
        "--master-bind-host=127.0.0.1",
        f"--master-bind-port={port}",
        "--headless",
        "--expect-workers=2",
        "--expect-workers-max-wait=20",
        "-u",
        "12",
        "-r",
        "12",
        "-t",
        "3s",
        "--host",
        server.url,
    )
    worker_args = [*LOCUST, "-f", str(locustfile), "--worker", "--master-host=127.0.0.1"]
    worker_args.append(f"--master-port={port}")
    with started(master_args, worker_args, worker_args, cwd=tmp_path) as (master, *workers):
        _, master_err = master.communicate(timeout=RUN_LIMIT)
        worker_errs = [worker.communicate(timeout=15)[1] for worker in workers]
    assert master.returncode == 0, master_err
    for worker, err in zip(workers, worker_errs, strict=True):
        assert worker.returncode == 0, err
        assert_quiet(err)
    assert_quiet(master_err)
    Stats.read(tmp_path / "run").assert_clean(*ECHO_SAMPLES)


def test_processes_two_with_the_example(server: Server, tmp_path: Path) -> None:
    """examples/locustfile.py under ``--processes 2`` (Locust forks its workers)."""
    result = run(
        locust_args(
            EXAMPLE,
            tmp_path / "run",
            "--headless",
            "--processes",
            "2",
            # not Locust's default master port 5557: another run on the machine may hold it
            f"--master-bind-port={(port := free_port())}",
            f"--master-port={port}",
            "-u",
            "10",
            "-r",
            "10",
            "-t",
            "3s",
            "--host",
            server.url,
        ),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert_quiet(result.stderr)
    Stats.read(tmp_path / "run").assert_clean(*ECHO_SAMPLES)


def test_failures_are_reported_and_exit_1(server: Server, tmp_path: Path) -> None:
    """A refused connect and request timeouts: failures with their exception, exit status 1.

    Each sample carries the ``context()`` of the user that made it.
    """
    contexts = tmp_path / "contexts.jsonl"
    locustfile = write(
        tmp_path / "failing.py",
        f"""
        from __future__ import annotations

        import json
        from typing import Any

        from locust import constant, events, task

        from geventio.contrib.locust import EngineIOUser


        @events.request.add_listener
        def record(request_type: str, name: str, context: Any, **sample: Any) -> None:
            with open({str(contexts)!r}, "a") as file:
                file.write(json.dumps([request_type, name, context]) + "\\n")


        class RefusedUser(EngineIOUser):
            host = "http://127.0.0.1:{free_port()}"
            wait_time = constant(0.1)

            def context(self) -> dict[str, Any]:
                return {{"user": "refused"}}

            @task
            def send(self) -> None:
                raise AssertionError("a user that could not connect runs no task")


        class SilentUser(EngineIOUser):
            host = "{server.url}"
            transport = "websocket"
            wait_time = constant(0.1)

            def context(self) -> dict[str, Any]:
                return {{"user": "silent"}}

            @task
            def never_answered(self) -> None:
                self.client.request("x", match=lambda m: False, timeout=0.2, name="never")
        """,
    )
    result = run(
        locust_args(
            locustfile,
            tmp_path / "run",
            "--headless",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "3s",
        ),  # no --host: it would replace every user class's host
        tmp_path,
    )
    assert result.returncode == 1, result.stderr
    assert_quiet(result.stderr)
    stats = Stats.read(tmp_path / "run")
    assert stats.requests[("WS", "connect")] == 4
    assert stats.failures[("WS", "connect")] == 2
    assert stats.failures[("WSC", "never")] == stats.requests[("WSC", "never")] > 0
    errors = {(method, name): error for method, name, error, _ in stats.errors}
    assert errors.keys() == {("WS", "connect"), ("WSC", "never")}
    assert errors[("WS", "connect")].startswith("ConnectError(")
    assert "refused" in errors[("WS", "connect")]
    assert errors[("WSC", "never")] == "Timeout('no reply within 0.2 s')"
    samples = [json.loads(line) for line in contexts.read_text().splitlines()]
    assert {(kind, name, tuple(context.items())) for kind, name, context in samples} == {
        ("WS", "connect", (("user", "refused"),)),
        ("WS", "connect", (("user", "silent"),)),
        ("WSC", "never", (("user", "silent"),)),
        ("WSR", "message", (("user", "silent"),)),  # the replies that came too late
    }


def test_server_death_is_reported(tmp_path: Path) -> None:
    """The server dies mid-run: one failed close per user, then failed requests; exit 1.

    No step waits for a guessed time. The server is killed once every user had an echo (the
    locustfile writes a line to ``answered`` for each); the locustfile ends the run once every
    user saw a request fail on its broken session, and Locust rewrote its CSV files since.
    """
    users = 4
    answered = tmp_path / "answered"
    locustfile = write(
        tmp_path / "dying.py",
        f"""
        from __future__ import annotations

        import gevent
        from locust import constant, task
        from locust.stats import CSV_STATS_INTERVAL_SEC

        from geventio.contrib.locust import EngineIOUser

        broken: set[int] = set()  # the users that saw their session break


        class EchoUser(EngineIOUser):
            wait_time = constant(0.1)
            answered = False

            @task
            def echo(self) -> None:
                reply = self.client.request("x", timeout=1, name="echo")
                if reply is not None and not self.answered:
                    self.answered = True
                    with open({str(answered)!r}, "a") as file:
                        file.write("answered\\n")
                elif reply is None and not self.client.connected:
                    broken.add(id(self))
                    if len(broken) == {users}:  # all the test needs was reported: quit as -t
                        # does, once the CSV writer (every CSV_STATS_INTERVAL_SEC) wrote it
                        runner = self.environment.runner
                        gevent.spawn_later(2 * CSV_STATS_INTERVAL_SEC, runner.quit)
        """,
    )
    limit = RUN_LIMIT - 10  # for the run (-t, a safety net) and for the users' first echoes
    dying = start_server()
    command = locust_args(locustfile, tmp_path / "run", "--headless", "-u", str(users))
    command += ["-r", str(users), "-t", f"{limit:g}s", "--host", dying.url]
    try:
        with started(command, cwd=tmp_path) as (locust,):
            deadline = time.monotonic() + limit
            while not answered.exists() or len(answered.read_text().splitlines()) < users:
                if locust.poll() is not None or time.monotonic() > deadline:
                    locust.kill()
                    raise AssertionError(f"not every user had an echo: {locust.communicate()}")
                time.sleep(0.05)
            dying.process.kill()  # no goodbye: the sessions end without a CLOSE packet
            dying.process.wait(5)
            _, stderr = locust.communicate(timeout=RUN_LIMIT)
    finally:
        dying.stop()
    assert locust.returncode == 1, stderr
    assert_quiet(stderr)
    stats = Stats.read(tmp_path / "run")
    assert stats.requests[("WS", "connect")] == users
    assert stats.failures[("WS", "connect")] == 0
    assert stats.failures[("WS", "close")] == users
    assert 0 < stats.failures[("WSC", "echo")] < stats.requests[("WSC", "echo")]
    errors = {(method, name): error for method, name, error, _ in stats.errors}
    assert errors.keys() == {("WS", "close"), ("WSC", "echo")}
    # the end of the session: its error (TransportError), else ConnectionClosed with the reason
    assert errors[("WS", "close")].startswith(("ConnectionClosed(", "TransportError(")), errors
    assert errors[("WSC", "echo")].startswith("ConnectionClosed("), errors
