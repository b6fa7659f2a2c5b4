"""Start and control the real Engine.IO test servers as subprocesses.

Nothing in here knows about the client library: it only spawns
``py_server.py`` (python-engineio) or ``node_server.js`` (Node engine.io)
and waits for their ``LISTENING <port>`` line.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, Protocol, get_args

ServerKind = Literal["python", "node"]
SERVER_KINDS: tuple[ServerKind, ...] = get_args(ServerKind)

SERVERS_DIR = Path(__file__).resolve().parent
NODE_DIR = SERVERS_DIR.parent / "node"
PY_SERVER = SERVERS_DIR / "py_server.py"
NODE_SERVER = SERVERS_DIR / "node_server.js"

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 15.0
STOP_TIMEOUT = 3.0
_LISTENING = re.compile(rb"^LISTENING (\d+)\r?$")


class ServerStartError(RuntimeError):
    """A test server could not be started."""


class NodeSetupError(ServerStartError):
    """Node or the pinned engine.io package is not available."""


TRANSPORTS = ("polling", "websocket")


def transport_tuple(transports: Sequence[str]) -> tuple[str, ...]:
    """Validate ``transports`` ("polling,websocket" is accepted too)."""
    names = tuple(transports.split(",")) if isinstance(transports, str) else tuple(transports)
    if not names or any(name not in TRANSPORTS for name in names):
        raise ValueError(f"transports must be a non-empty subset of {TRANSPORTS}: {transports!r}")
    return names


@dataclass(frozen=True)
class ServerOptions:
    """The command-line options shared by both servers."""

    ping_interval: int = 25000
    ping_timeout: int = 20000
    transports: tuple[str, ...] = ("polling", "websocket")
    upgrades: bool = True
    max_payload: int = 1_000_000
    tls_cert: str | None = None  # PEM files: serve HTTPS/WSS when both are set
    tls_key: str | None = None
    client_ca: str | None = None  # PEM CA: require client certificates (mutual TLS)

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.client_ca is not None and self.tls_cert is None:
            raise ValueError("client_ca needs tls_cert and tls_key")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def argv(self, port: int = 0) -> list[str]:
        args = [
            "--port",
            str(port),
            "--ping-interval",
            str(self.ping_interval),
            "--ping-timeout",
            str(self.ping_timeout),
            "--transports",
            ",".join(self.transports),
            "--max-payload",
            str(self.max_payload),
        ]
        if not self.upgrades:
            args.append("--no-upgrades")
        if self.tls_cert is not None and self.tls_key is not None:
            args += ["--tls-cert", self.tls_cert, "--tls-key", self.tls_key]
        if self.client_ca is not None:
            args += ["--client-ca", self.client_ca]
        return args


@dataclass(kw_only=True)
class ProcessHandle:
    """A running test server process: its signals, and what it wrote (kept after it exited)."""

    proc: subprocess.Popen[bytes]
    _stdout: IO[bytes] | None = field(default=None, repr=False)
    _stderr: IO[bytes] | None = field(default=None, repr=False)
    _final_output: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM: the server exits at once, dropping its connections without a goodbye.

        Blocks until the process is gone (SIGKILL after ``timeout`` s); returns its exit code.
        """
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            self._signal(signal.SIGCONT)  # a paused process cannot handle SIGTERM
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self._reap()

    def kill(self) -> int:
        """SIGKILL: the server vanishes without closing anything; returns the exit code."""
        if self.alive:
            self.proc.kill()
        return self._reap()

    def pause(self) -> None:
        """SIGSTOP: the process freezes, its sockets stay open but silent."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: undo :meth:`pause`."""
        self._signal(signal.SIGCONT)

    def stdout_text(self) -> str:
        if self._final_output is not None:
            return self._final_output[0]
        return _read_all(self._stdout)

    def stderr_text(self) -> str:
        """Everything the server wrote to stderr (handy in failure messages)."""
        if self._final_output is not None:
            return self._final_output[1]
        return _read_all(self._stderr)

    def _adopt(self, other: ProcessHandle) -> None:
        """Take over ``other``'s process and output (a restarted server)."""
        self.proc, self._stdout, self._stderr = other.proc, other._stdout, other._stderr
        self._final_output = None

    def _signal(self, signum: signal.Signals) -> None:
        if self.alive:
            self.proc.send_signal(signum)  # Popen ignores a process that just exited

    def _reap(self) -> int:
        returncode = self.proc.wait()
        if self._final_output is None:
            self._final_output = (_read_all(self._stdout), _read_all(self._stderr))
            for stream in (self._stdout, self._stderr):
                if stream is not None:
                    stream.close()
        return returncode


@dataclass(kw_only=True)
class ServerHandle(ProcessHandle):
    """A running Engine.IO test server process."""

    kind: ServerKind
    port: int
    url: str
    options: ServerOptions = field(default_factory=ServerOptions)


def launch(command: Sequence[str], label: str) -> ProcessHandle:
    """Start ``command`` in tests/servers, its output going to temporary files; does not wait
    (:func:`wait_listening` does)."""
    stdout = tempfile.TemporaryFile(prefix=f"{label}-", suffix=".out")  # noqa: SIM115
    stderr = tempfile.TemporaryFile(prefix=f"{label}-", suffix=".err")  # noqa: SIM115
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, cwd=SERVERS_DIR
    )
    return ProcessHandle(proc=proc, _stdout=stdout, _stderr=stderr)


def wait_listening(handle: ProcessHandle, command: Sequence[str], label: str) -> int:
    """The port from the server's ``LISTENING <port>`` line; kills the server on failure.

    :raises ServerStartError: it printed something else, exited, or said nothing in time.
    """
    try:
        return _wait_listening(handle, command, label)
    except BaseException:
        handle.kill()
        raise


def _read_all(stream: IO[bytes] | None) -> str:
    if stream is None or stream.closed:
        return ""
    # pread: the child shares the file offset, so never seek.
    chunks = []
    offset = 0
    while chunk := os.pread(stream.fileno(), 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


class ServerFactory(Protocol):
    """Signature of the ``server_factory`` fixture (the same as :func:`start_server`)."""

    def __call__(
        self,
        kind: ServerKind,
        *,
        ping_interval: int = 25000,
        ping_timeout: int = 20000,
        transports: Sequence[str] = ("polling", "websocket"),
        upgrades: bool = True,
        max_payload: int = 1_000_000,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        client_ca: str | None = None,
    ) -> ServerHandle: ...


def node_command() -> list[str]:
    """``node node_server.js``, after checking the pinned engine.io is installed."""
    node = shutil.which("node")
    if node is None:
        raise NodeSetupError("`node` is not on PATH; the node test server needs Node.js >= 18")
    installed = NODE_DIR / "node_modules" / "engine.io" / "package.json"
    if not installed.is_file():
        raise NodeSetupError(
            f"engine.io is not installed in {NODE_DIR / 'node_modules'}; "
            "run `npm ci --prefix tests/node` first"
        )
    wanted = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["engine.io"]
    found = json.loads(installed.read_text())["version"]
    if found != wanted:
        raise NodeSetupError(
            f"tests/node/node_modules has engine.io {found}, package.json pins {wanted}; "
            "run `npm ci --prefix tests/node`"
        )
    return [node, str(NODE_SERVER)]


def python_command() -> list[str]:
    return [sys.executable, str(PY_SERVER)]


def server_command(kind: ServerKind) -> list[str]:
    if kind == "python":
        return python_command()
    if kind == "node":
        return node_command()
    raise ValueError(f"unknown server kind {kind!r}; expected one of {SERVER_KINDS}")


def start_server(
    kind: ServerKind,
    *,
    ping_interval: int = 25000,
    ping_timeout: int = 20000,
    transports: Sequence[str] = ("polling", "websocket"),
    upgrades: bool = True,
    max_payload: int = 1_000_000,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    client_ca: str | None = None,
) -> ServerHandle:
    """Start a test server on a free port and wait until it listens.

    Intervals are in milliseconds, ``max_payload`` in bytes.  ``tls_cert`` and
    ``tls_key`` (PEM files) make it serve HTTPS/WSS; ``client_ca`` (PEM) makes
    it require a client certificate signed by that CA.
    """
    options = ServerOptions(
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        transports=transport_tuple(transports),
        upgrades=upgrades,
        max_payload=max_payload,
        tls_cert=tls_cert,
        tls_key=tls_key,
        client_ca=client_ca,
    )
    return start_server_with(kind, options)


def start_server_with(kind: ServerKind, options: ServerOptions) -> ServerHandle:
    command = [*server_command(kind), *options.argv(port=0)]
    process = launch(command, f"eio-{kind}")
    port = wait_listening(process, command, kind)
    url = f"{options.scheme}://{HOST}:{port}"
    handle = ServerHandle(kind=kind, port=port, url=url, options=options, proc=process.proc)
    handle._adopt(process)  # and its output files
    return handle


def _wait_listening(handle: ProcessHandle, command: Sequence[str], label: str) -> int:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    assert handle._stdout is not None
    while True:
        output = os.pread(handle._stdout.fileno(), 4096, 0)
        if b"\n" in output:
            first_line = output.split(b"\n", 1)[0]
            match = _LISTENING.match(first_line)
            if match is None:
                raise ServerStartError(
                    f"{label} server printed {first_line!r} instead of 'LISTENING <port>'"
                    f"\nstderr:\n{handle.stderr_text()}"
                )
            return int(match.group(1))
        if not handle.alive:
            raise ServerStartError(
                f"{label} server exited with status {handle.proc.returncode} "
                f"before listening: {shlex.join(command)}"
                f"\nstderr:\n{handle.stderr_text()}"
            )
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"{label} server did not print 'LISTENING <port>' within "
                f"{STARTUP_TIMEOUT:.0f} s\nstderr:\n{handle.stderr_text()}"
            )
        time.sleep(0.02)
