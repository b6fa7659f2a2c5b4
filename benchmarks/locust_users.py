"""How many Socket.IO users one Locust process holds: geventio's ``SocketIOUser`` against
Locust's built-in one (python-socketio), at one ``call()`` per user per second.

Run it with ``python benchmarks/locust_users.py`` (Locust, python-socketio and Node with
``tests/node`` installed: ``npm ci --prefix tests/node``). For each user class and each user
count, in turn, it runs Locust headless (one process, no web UI) against the Node reference
socket.io server (``tests/servers/sio_node_server.js``, its ``ack`` event, WebSocket only),
spawns 500 users a second, waits ``--settle`` seconds more for every user to connect and fall
into step, then measures over ``--window`` seconds:

- the Locust process's CPU (user + system time from ``/proc``, in % of one core);
- the calls per second (counted by a listener of Locust's ``request`` event, written each
  second), which must be about the user count for the row to count (a saturated process falls
  behind its users' pace);
- the failures, and the server's CPU (near 100%, the server would be the limit).

A count is *held* when the CPU stays under ``--cpu-limit`` (80%) and the rate keeps within 5% of
the user count with no failure. The counts run up from ``--users`` and stop at the first one
not held; the result is a Markdown table on stdout. The machine's other load counts: run it on
a quiet machine, and take the figures as one measurement, not a guarantee.

Measured on 2026-12-03 (2 cores shared with other work, the defaults, four runs): the built-in
user held 1,500 users at 68% CPU in one run and fell behind at 1,500 in another (1,337 calls/s),
and never held 2,000 (82%); geventio's held 3,000 at 67 to 73% CPU in two runs out of three and
never 3,500. The CPU per call, steadier under the machine's other load, was 455 to 512 µs for
the built-in user and 210 to 250 µs for geventio's: about 2.1 times as many users per core. A
fifth run, after issue 13's idle work: the built-in user held 1,000 (35%) and fell behind at
1,500 (1,415 calls/s); geventio's held 3,000 at 66% and reached 81% at 3,500; 337 to 504 µs
against 187 to 223 µs per call.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_SERVER = ROOT / "tests" / "servers" / "sio_node_server.js"
CLIENTS = {
    "geventio": "from geventio.contrib.locust import SocketIOUser",
    "builtin": "from locust.contrib.socketio import SocketIOUser",
}
LOCUSTFILE = """
    import time
    from typing import Any

    import gevent
    from locust import constant_pacing, events, task

    {import_line}

    done = [0, 0]  # calls, failed calls


    @events.request.add_listener
    def count(request_type: str, exception: Any, **sample: Any) -> None:
        if request_type == "WSC":
            done[exception is not None] += 1


    def tally() -> None:  # each second: the time, the calls and the failures so far
        with open({tally_path!r}, "a") as file:
            while True:
                file.write(f"{{time.time()}} {{done[0]}} {{done[1]}}\\n")
                file.flush()
                gevent.sleep(1)


    @events.test_start.add_listener
    def start_tally(**kwargs: Any) -> None:
        gevent.spawn(tally)


    class Caller(SocketIOUser):
        wait_time = constant_pacing(1)  # one call per user per second

        def on_start(self) -> None:
            self.sio.connect(self.host, transports=["websocket"], wait_timeout=30)

        @task
        def call(self) -> None:
            self.sio.call("ack", "ping", timeout=30)

        def on_stop(self) -> None:
            self.sio.disconnect()
"""
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    client: str
    users: int
    cpu: float  # % of one core
    rate: float  # calls per second
    failures: float  # per second
    server_cpu: float  # the Node server's, % of one core: near 100, it is the bottleneck

    @property
    def cpu_per_call(self) -> float:
        """Microseconds of the Locust process's CPU per call: steadier than the rest when the
        machine is shared."""
        return self.cpu / 100 / self.rate * 1e6 if self.rate else float("inf")

    def held(self, cpu_limit: float) -> bool:
        return self.cpu < cpu_limit and self.rate >= 0.95 * self.users and self.failures == 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_server() -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        ["node", str(NODE_SERVER), "--port", "0", "--transports", "websocket"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline().split()
    if line[:1] != ["LISTENING"]:
        server.kill()
        raise SystemExit(f"the Node server did not start: {line}")
    return server, f"http://127.0.0.1:{line[1]}"


def measure(  # noqa: PLR0917
    client: str, users: int, url: str, args: argparse.Namespace, workdir: Path, server_pid: int
) -> Row:
    """One Locust run of ``users`` users; the CPU and rate over ``window`` once all ran."""
    locustfile = workdir / f"locustfile_{client}.py"  # not geventio.py: it would shadow it
    tally_path = workdir / f"{client}_{users}.tally"
    source = LOCUSTFILE.format(import_line=CLIENTS[client], tally_path=str(tally_path))
    locustfile.write_text(textwrap.dedent(source))
    spawn_rate = 500
    window: float = args.window
    ramp = users / spawn_rate + args.settle  # spawning, then every user connected and settled
    prefix = workdir / f"{client}_{users}"
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless"]
    command += ["-u", str(users), "-r", str(spawn_rate), "-t", f"{ramp + window + 3:.0f}s"]
    command += ["--host", url, "--only-summary"]
    log = open(f"{prefix}.log", "w")  # noqa: SIM115 - closed below
    locust = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(ramp)
        cpu_start, wall_start = cpu_seconds(locust.pid), time.monotonic()
        server_start = cpu_seconds(server_pid)
        time.sleep(window)
        wall = time.monotonic() - wall_start
        cpu = (cpu_seconds(locust.pid) - cpu_start) / wall * 100
        server_cpu = (cpu_seconds(server_pid) - server_start) / wall * 100
        measured_until = time.time()
        locust.wait(timeout=ramp + window + 120)
    finally:
        if locust.poll() is None:
            locust.kill()
            locust.wait()
        log.close()
    if not tally_path.exists():
        raise SystemExit(f"Locust failed: {Path(f'{prefix}.log').read_text()[-3000:]}")
    # the calls only (the built-in user also records a WSE sample for each call), from the
    # locustfile's own tally: Locust's CSV stamps its rows with whole seconds
    tally = [
        (float(stamp), int(calls), int(failed))
        for stamp, calls, failed in (line.split() for line in tally_path.read_text().splitlines())
    ]
    inside = [row for row in tally if measured_until - window <= row[0] <= measured_until]
    (t0, calls0, failed0), (t1, calls1, failed1) = inside[0], inside[-1]
    rate = (calls1 - calls0) / (t1 - t0) if t1 > t0 else 0.0
    failures = (failed1 - failed0) / (t1 - t0) if t1 > t0 else 0.0
    return Row(client, users, cpu, rate, failures, server_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", default="builtin,geventio")
    parser.add_argument("--users", default="500,1000,1500,2000,3000,4500,6000")
    parser.add_argument("--window", type=float, default=15.0)
    parser.add_argument("--cpu-limit", type=float, default=80.0)
    parser.add_argument("--settle", type=float, default=15.0, help="seconds after spawning")
    parser.add_argument("--workdir", help="keep Locust's files there (default: a temp dir)")
    args = parser.parse_args()
    rows: list[Row] = []
    server, url = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(args.workdir or tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            for client in args.clients.split(","):
                for users in (int(n) for n in args.users.split(",")):
                    row = measure(client, users, url, args, workdir, server.pid)
                    rows.append(row)
                    print(
                        f"{client}: {users} users, {row.cpu:.0f}% CPU, {row.rate:.0f} calls/s, "
                        f"{row.failures:.1f} failures/s, server {row.server_cpu:.0f}% CPU, "
                        f"{row.cpu_per_call:.0f} µs CPU per call",
                        file=sys.stderr,
                        flush=True,
                    )
                    if not row.held(args.cpu_limit):
                        break
    finally:
        server.terminate()
        server.wait(10)
    limit = f"{args.cpu_limit:.0f}%"
    print(
        "| client | users | Locust CPU (% of a core) | calls/s | failures/s | server CPU "
        f"| held (<{limit}) | µs CPU per call |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        held = "yes" if row.held(args.cpu_limit) else "no"
        print(
            f"| {row.client} | {row.users} | {row.cpu:.0f} | {row.rate:.0f} | "
            f"{row.failures:.1f} | {row.server_cpu:.0f} | {held} | {row.cpu_per_call:.0f} |"
        )


if __name__ == "__main__":
    main()
