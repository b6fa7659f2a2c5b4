"""Start and control the real Socket.IO test servers as subprocesses.

The Socket.IO counterpart of :mod:`servers._runner` (whose output handling and
errors it reuses): it spawns ``sio_py_server.py`` (python-socketio),
``sio_flask_server.py`` (Flask-SocketIO) or ``sio_node_server.js`` (Node
socket.io), waits for their ``LISTENING <port>`` line, and can restart a server
on the port it had, for reconnection tests.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

from ._runner import (
    HOST,
    NODE_DIR,
    SERVERS_DIR,
    NodeSetupError,
    ProcessHandle,
    launch,
    transport_tuple,
    wait_listening,
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


@dataclass(kw_only=True)
class SioServerHandle(ProcessHandle):
    """A running Socket.IO test server process; :meth:`restart` keeps its port and url."""

    kind: SioServerKind
    port: int
    url: str
    options: SioServerOptions = field(default_factory=SioServerOptions)

    def restart(self) -> None:
        """Stop the server (if still running) and start the same kind again on the same port.

        Blocks until the new process listens (up to ``STARTUP_TIMEOUT``); the handle then
        refers to the new process, with the same ``port`` and ``url``.

        :raises ServerStartError: the new server did not start (e.g. the port was taken).
        """
        self.stop()
        self._adopt(start_sio_server_with(self.kind, self.options, port=self.port))


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
    process = launch(command, f"sio-{kind}")
    port = wait_listening(process, command, f"sio-{kind}")
    url = f"http://{HOST}:{port}"
    handle = SioServerHandle(kind=kind, port=port, url=url, options=options, proc=process.proc)
    handle._adopt(process)  # and its output files
    return handle
