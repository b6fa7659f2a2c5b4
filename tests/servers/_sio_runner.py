"""Start and control the real Socket.IO test servers as subprocesses.

The Socket.IO counterpart of :mod:`servers._runner` (whose output handling and
errors it reuses): it spawns ``sio_py_server.py`` (python-socketio),
``sio_flask_server.py`` (Flask-SocketIO) or ``sio_node_server.js`` (Node
socket.io), waits for their ``LISTENING <port>`` line, and can restart a server
on the port it had, for reconnection tests.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Literal, Protocol, get_args

from servers._runner import (
    _LISTENING,
    HOST,
    NODE_DIR,
    SERVERS_DIR,
    STARTUP_TIMEOUT,
    STOP_TIMEOUT,
    NodeSetupError,
    ServerStartError,
    _read_all,
    transport_tuple,
)

SioServerKind = Literal["py", "flask", "node"]
SIO_SERVER_KINDS: tuple[SioServerKind, ...] = get_args(SioServerKind)

SIO_PY_SERVER = SERVERS_DIR / "sio_py_server.py"
SIO_FLASK_SERVER = SERVERS_DIR / "sio_flask_server.py"
SIO_NODE_SERVER = SERVERS_DIR / "sio_node_server.js"


@dataclass(frozen=True)
class SioServerOptions:
    """The command-line options shared by the three Socket.IO servers (times in ms)."""

    ping_interval: int = 25000
    ping_timeout: int = 20000
    transports: tuple[str, ...] = ("polling", "websocket")

    def argv(self, port: int = 0) -> list[str]:
        return [
            "--port",
            str(port),
            "--ping-interval",
            str(self.ping_interval),
            "--ping-timeout",
            str(self.ping_timeout),
            "--transports",
            ",".join(self.transports),
        ]


@dataclass
class SioServerHandle:
    """A running Socket.IO test server process; :meth:`restart` keeps its port and url."""

    kind: SioServerKind
    port: int
    url: str
    proc: subprocess.Popen[bytes]
    options: SioServerOptions = field(default_factory=SioServerOptions)
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

    def restart(self) -> None:
        """Stop the server (if still running) and start the same kind again on the same port.

        Blocks until the new process listens (up to ``STARTUP_TIMEOUT``); the handle then
        refers to the new process, with the same ``port`` and ``url``.

        :raises ServerStartError: the new server did not start (e.g. the port was taken).
        """
        self.stop()
        fresh = start_sio_server_with(self.kind, self.options, port=self.port)
        self.proc, self._stdout, self._stderr = fresh.proc, fresh._stdout, fresh._stderr
        self._final_output = None

    def stdout_text(self) -> str:
        if self._final_output is not None:
            return self._final_output[0]
        return _read_all(self._stdout)

    def stderr_text(self) -> str:
        """Everything the server wrote to stderr (handy in failure messages)."""
        if self._final_output is not None:
            return self._final_output[1]
        return _read_all(self._stderr)

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


class SioServerFactory(Protocol):
    """Signature of the ``sio_server_factory`` fixture (the same as :func:`start_sio_server`)."""

    def __call__(
        self,
        kind: SioServerKind,
        *,
        ping_interval: int = 25000,
        ping_timeout: int = 20000,
        transports: Sequence[str] = ("polling", "websocket"),
        port: int = 0,
    ) -> SioServerHandle: ...


def sio_node_command() -> list[str]:
    """``node sio_node_server.js``, after checking the pinned socket.io is installed."""
    node = shutil.which("node")
    if node is None:
        raise NodeSetupError("`node` is not on PATH; the node test server needs Node.js >= 18")
    installed = NODE_DIR / "node_modules" / "socket.io" / "package.json"
    if not installed.is_file():
        raise NodeSetupError(
            f"socket.io is not installed in {NODE_DIR / 'node_modules'}; "
            "run `npm ci --prefix tests/node` first"
        )
    wanted = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["socket.io"]
    found = json.loads(installed.read_text())["version"]
    if found != wanted:
        raise NodeSetupError(
            f"tests/node/node_modules has socket.io {found}, package.json pins {wanted}; "
            "run `npm ci --prefix tests/node`"
        )
    return [node, str(SIO_NODE_SERVER)]


def sio_server_command(kind: SioServerKind) -> list[str]:
    if kind == "py":
        return [sys.executable, str(SIO_PY_SERVER)]
    if kind == "flask":
        return [sys.executable, str(SIO_FLASK_SERVER)]
    if kind == "node":
        return sio_node_command()
    raise ValueError(f"unknown server kind {kind!r}; expected one of {SIO_SERVER_KINDS}")


def start_sio_server(
    kind: SioServerKind,
    *,
    ping_interval: int = 25000,
    ping_timeout: int = 20000,
    transports: Sequence[str] = ("polling", "websocket"),
    port: int = 0,
) -> SioServerHandle:
    """Start a Socket.IO test server and wait until it listens.

    Blocks until its ``LISTENING <port>`` line (up to ``STARTUP_TIMEOUT`` s).

    :param ping_interval: milliseconds.
    :param ping_timeout: milliseconds.
    :param transports: the transports it accepts.
    :param port: 0 picks a free port; a former server's port restarts "the same" server.
    :raises ServerStartError: the server exited or printed something else first
        (:class:`NodeSetupError` when Node or the pinned socket.io is missing).
    """
    options = SioServerOptions(
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        transports=transport_tuple(transports),
    )
    return start_sio_server_with(kind, options, port=port)


def start_sio_server_with(
    kind: SioServerKind, options: SioServerOptions, *, port: int = 0
) -> SioServerHandle:
    """:func:`start_sio_server` with the options already gathered."""
    command = [*sio_server_command(kind), *options.argv(port=port)]
    stdout = tempfile.TemporaryFile(prefix=f"sio-{kind}-", suffix=".out")  # noqa: SIM115
    stderr = tempfile.TemporaryFile(prefix=f"sio-{kind}-", suffix=".err")  # noqa: SIM115
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        cwd=SERVERS_DIR,
    )
    handle = SioServerHandle(
        kind=kind, port=port, url="", proc=proc, options=options, _stdout=stdout, _stderr=stderr
    )
    try:
        handle.port = _wait_listening(handle, command)
    except BaseException:
        handle.kill()
        raise
    handle.url = f"http://{HOST}:{handle.port}"
    return handle


def _wait_listening(handle: SioServerHandle, command: Sequence[str]) -> int:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    assert handle._stdout is not None
    while True:
        output = os.pread(handle._stdout.fileno(), 4096, 0)
        if b"\n" in output:
            first_line = output.split(b"\n", 1)[0]
            match = _LISTENING.match(first_line)
            if match is None:
                raise ServerStartError(
                    f"sio-{handle.kind} server printed {first_line!r} instead of "
                    f"'LISTENING <port>'\nstderr:\n{handle.stderr_text()}"
                )
            return int(match.group(1))
        if not handle.alive:
            raise ServerStartError(
                f"sio-{handle.kind} server exited with status {handle.proc.returncode} "
                f"before listening: {shlex.join(command)}\nstderr:\n{handle.stderr_text()}"
            )
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"sio-{handle.kind} server did not print 'LISTENING <port>' within "
                f"{STARTUP_TIMEOUT:.0f} s\nstderr:\n{handle.stderr_text()}"
            )
        time.sleep(0.02)
