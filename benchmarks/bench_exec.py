"""Running things: the Node server for a row, one worker process with a hard timeout, and
the description of the machine and of the versions measured.

The server is ``tests/servers/node_server.js`` (Engine.IO rows) or
``tests/servers/sio_node_server.js`` (Socket.IO rows), started through the test suite's own
``start_server()`` / ``start_sio_server()``; the server's CPU time per worker run is read with
the soak script's helper ``proc_cpu_seconds()`` (``tests/faults/procstats.py``).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any, TypeAlias

from bench_plan import IMPLS, Row

ROOT = Path(__file__).resolve().parent.parent
# run.py's one sys.path edit for the test suite's helpers: the repository root, so that they are
# imported by their full names (tests.servers, tests.faults.procstats)
sys.path.insert(0, str(ROOT))

from tests.faults.procstats import proc_cpu_seconds, raise_nofile  # noqa: E402
from tests.servers import ServerHandle, SioServerHandle, start_server, start_sio_server  # noqa: E402

NODE_MODULES = ROOT / "tests" / "node" / "node_modules"
#: File descriptors a worker needs beyond one per client (its own files, pipes, the hub's).
FD_MARGIN = 64


RowServer: TypeAlias = "ServerHandle | SioServerHandle"


def start_row_server(row: Row) -> RowServer:
    """A fresh Node server with the row's ping settings: the engine.io echo server (default max
    payload), or for the Socket.IO rows the socket.io test server (events ``echo``, ``ack``,
    ``flood``; see ``tests/servers/README.md``)."""
    raise_nofile()  # the server inherits the raised limit
    if row.server == "sio":
        return start_sio_server(
            "node", ping_interval=row.ping_interval_ms, ping_timeout=row.ping_timeout_ms
        )
    return start_server(
        "node", ping_interval=row.ping_interval_ms, ping_timeout=row.ping_timeout_ms
    )


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def run_worker(row: Row, impl: str, rep: int, server: RowServer) -> dict[str, Any]:
    """Run one worker process to completion or to ``row.timeout``; never raises.

    Returns the worker's JSON figures plus ``impl``, ``rep``, ``row``, ``wall_s`` and
    ``server_cpu_s``; a failure has ``ok: False`` and ``error`` (``"timeout after 120 s"``, an
    exit status, the worker's own error, or a file limit too low for the row's clients, in
    which case no worker is started).
    """
    command = [*IMPLS[impl][1], *row.argv(server.url)]
    record: dict[str, Any] = {"row": row.key, "impl": impl, "rep": rep, "command": command}
    if row.scenario in ("idle", "sio-idle", "connect"):
        # the worker inherits this process's raised limit (and the server got it too)
        limit = raise_nofile()
        if limit < row.n + FD_MARGIN:
            record.update(ok=False, wall_s=0.0, server_cpu_s=None, stderr_tail="")
            record["error"] = f"RLIMIT_NOFILE {limit} < {row.n:,} clients + {FD_MARGIN}"
            return record
    server_cpu0 = proc_cpu_seconds(server.proc.pid)
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
        )
        try:
            proc.wait(timeout=row.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            record["error"] = f"timeout after {row.timeout:g} s"
        record["wall_s"] = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    record["server_cpu_s"] = (
        proc_cpu_seconds(server.proc.pid) - server_cpu0 if server.alive else None
    )
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if lines and "error" not in record:
        try:
            record.update(json.loads(lines[-1]))
        except ValueError:
            record["error"] = f"bad JSON line: {lines[-1][:120]}"
    elif "error" not in record:
        record["error"] = f"exit status {proc.returncode}, no result: {_last_line(stderr)}"
    if not server.alive:
        record["error"] = "the server died: " + _last_line(server.stderr_text())
    record["ok"] = "error" not in record
    if not record["ok"] and _last_line(stderr):
        record["error"] += f" [stderr: {_last_line(stderr)}]"
    record["stderr_tail"] = stderr[-2000:]
    return record


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _node_package(name: str) -> str:
    try:
        return str(json.loads((NODE_MODULES / name / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "not installed"


def _run(command: list[str]) -> str:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=10, check=False, cwd=ROOT
        ).stdout.strip()
    except OSError:
        return "?"


def describe_machine(argv: list[str]) -> dict[str, Any]:
    """Date, machine, versions and the exact command, for the report header."""
    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu_model = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in cpuinfo
                    if line.startswith("model name")
                ),
                "",
            )
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join([sys.executable, *argv]),
        "nproc": os.cpu_count(),
        "cpu": cpu_model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _run(["node", "--version"]),
        "geventio": f"{_version('geventio')} ({_run(['git', 'rev-parse', '--short', 'HEAD'])})",
        "gevent": _version("gevent"),
        "urllib3": _version("urllib3"),
        "wsproto": _version("wsproto"),
        "python-engineio": _version("python-engineio"),
        "python-socketio": _version("python-socketio"),
        "requests": _version("requests"),
        "websocket-client": _version("websocket-client"),
        "engine.io": _node_package("engine.io"),
        "engine.io-client": _node_package("engine.io-client"),
        "socket.io": _node_package("socket.io"),
        "socket.io-client": _node_package("socket.io-client"),
    }
