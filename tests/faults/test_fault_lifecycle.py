"""Lifecycle faults: many connect/disconnect cycles in one process, import side effects, fork.

The fork cases run in a subprocess (the pytest process itself is never forked): the script below
uses and closes a client, forks (``os.fork()`` or ``gevent.fork()``, with or without
``patch_all()``), echoes from a new client in the child and again in the parent, and prints JSON.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import weakref
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import gevent
import gevent.queue
import pytest
from gevent.hub import RawGreenlet  # greenlet.greenlet (greenlet ships no type stubs)

import geventio
from tests.client_checks import live_greenlets
from tests.faultkit import Bound
from tests.servers import ServerHandle

BuildMode = Literal["build", "build_polling", "build_websocket"]
BUILD_MODES: tuple[BuildMode, ...] = ("build", "build_polling", "build_websocket")

CYCLES = 1000
WARMUP = 100
LANES = 4  # concurrent greenlets running the cycles (python-engineio answers a close in ~45 ms)
MAX_RSS_GROWTH_KIB = 2048
MAX_OBJECT_GROWTH = 100  # gc-tracked objects after 1000 cycles: a leak of one per 10 cycles fails


# =========================================================================
# 1000 connect/disconnect cycles
# =========================================================================


def _open(builder: geventio.ClientBuilder, mode: BuildMode) -> geventio.Client:
    if mode == "build":
        return builder.build()
    if mode == "build_polling":
        return builder.build_polling()
    return builder.build_websocket()


def _cycle(url: str, index: int) -> weakref.ref[geventio.Client]:
    """Connect, echo one message, disconnect; odd cycles go through callbacks (a dispatcher)."""
    mode = BUILD_MODES[index % len(BUILD_MODES)]
    builder = geventio.ClientBuilder(url).timeout(5)
    echoes: gevent.queue.Queue[str | bytes] | None = None
    if index % 2:
        echoes = gevent.queue.Queue()
        builder.on_data(echoes.put).on_close(lambda _reason: None)
    client = _open(builder, mode)
    text = f"cycle {index} {mode}"
    client.send(text)
    echo = client.receive(5) if echoes is None else echoes.get(timeout=5)
    assert echo == text
    client.disconnect()
    assert not client.connected
    return weakref.ref(client)


def _run_cycles(url: str, start: int, count: int) -> list[weakref.ref[geventio.Client]]:
    """``count`` cycles spread over ``LANES`` greenlets; the clients' weak references."""

    def lane(first: int) -> list[weakref.ref[geventio.Client]]:
        return [_cycle(url, i) for i in range(first, start + count, LANES)]

    lanes = [gevent.spawn(lane, start + k) for k in range(LANES)]
    gevent.joinall(lanes, raise_error=True)
    return [ref for g in lanes for ref in g.get()]


def _live_greenlets() -> int:
    """Every live greenlet of this thread but the main one and the hub (gevent's or raw)."""
    hub = gevent.get_hub()
    return sum(
        1
        for obj in gc.get_objects()
        if isinstance(obj, RawGreenlet)
        and not obj.dead
        and obj is not hub
        and obj.parent is not None  # the main greenlet has no parent
    )


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def _geventio_objects() -> Counter[str]:
    """gc-tracked instances of geventio's own classes, by class name (enum members included)."""
    found: Counter[str] = Counter()
    for obj in gc.get_objects():
        module = getattr(type(obj), "__module__", None)
        if isinstance(module, str) and module.startswith("geventio"):
            found[type(obj).__qualname__] += 1
    return found


def _settle(timeout: float = 2.0) -> None:
    """Wait until no greenlet runs geventio code: those being killed have finished.

    Gives up silently after ``timeout``: a leaked greenlet is for the checks that follow to
    report (with what they count), not for this wait.
    """
    gevent.idle()  # what was scheduled (the kills among it) has run
    deadline = time.monotonic() + timeout
    while live_greenlets("geventio") and time.monotonic() < deadline:
        gevent.sleep(0.01)


@dataclass
class Snapshot:
    greenlets: int
    fds: int
    rss_kib: int
    objects: int
    geventio: Counter[str]

    @classmethod
    def take(cls) -> Snapshot:
        _settle()
        gc.collect()
        return cls(
            greenlets=_live_greenlets(),
            fds=len(os.listdir("/proc/self/fd")),
            rss_kib=_rss_kib(),
            objects=len(gc.get_objects()),
            geventio=_geventio_objects(),
        )


@pytest.mark.slow
def test_fault_1000_connect_disconnect_cycles(server: ServerHandle, bound: Bound) -> None:
    """1000 connect/echo/disconnect cycles: no greenlet, fd, client or object left; RSS +2 MiB."""
    _run_cycles(server.url, 0, WARMUP)
    before = Snapshot.take()
    with bound(25.0):
        refs = _run_cycles(server.url, WARMUP, CYCLES)
    gc.collect()
    alive = sum(ref() is not None for ref in refs)
    count = len(refs)
    del refs  # the weak references themselves are gc-tracked objects
    after = Snapshot.take()
    growth = {
        "greenlets": after.greenlets - before.greenlets,
        "fds": after.fds - before.fds,
        "rss_kib": after.rss_kib - before.rss_kib,
        "objects": after.objects - before.objects,
    }
    print(f"{server.kind}: {CYCLES} cycles, growth {growth}, clients alive {alive}")
    assert count == CYCLES
    assert alive == 0, f"{alive} of {CYCLES} clients still alive after gc"
    assert after.geventio - before.geventio == Counter(), "geventio objects left alive"
    assert growth["greenlets"] <= 0, f"{growth['greenlets']} greenlets left alive"
    assert growth["fds"] == 0, f"{growth['fds']} file descriptors left open"
    assert growth["rss_kib"] <= MAX_RSS_GROWTH_KIB, f"RSS grew {growth['rss_kib']} KiB"
    assert growth["objects"] <= MAX_OBJECT_GROWTH, f"{growth['objects']} more gc objects"


@pytest.mark.parametrize(
    "index",
    range(6),  # every build mode, with receive() and with callbacks (see _cycle)
    ids=[f"{BUILD_MODES[i % 3]}-{'callbacks' if i % 2 else 'receive'}" for i in range(6)],
)
def test_fault_disconnected_client_freed_without_gc(
    node_server: ServerHandle, index: int, bound: Bound
) -> None:
    """A disconnected client is freed by reference counting alone: no reference cycle holds it.

    Fails today whenever disconnect() kills the reader (always on WebSocket, sometimes on
    polling): the killed greenlet keeps its GreenletExit, whose traceback holds the loop's frame,
    whose ``self`` is the client, which holds the greenlet.
    """
    gc.collect()
    gc.disable()
    try:
        with bound(2.0):
            ref = _cycle(node_server.url, index)
            _settle()
        assert ref() is None, f"{ref()} is only freed by the cyclic garbage collector"
    finally:
        gc.enable()


# =========================================================================
# Import side effects and fork
# =========================================================================

_IMPORT_SCRIPT = r"""
import gc, json, os, sys
import traceback
events = []
def audit(event, args):
    if event.startswith(("socket.", "_thread.", "os.fork", "subprocess.")):
        stack = traceback.extract_stack()
        where = next((f.name for f in reversed(stack) if "urllib3" in f.filename), None)
        events.append([event, where])
sys.addaudithook(audit)
def state():
    return {
        "fds": sorted(os.listdir("/proc/self/fd")),
        "threads": len(os.listdir("/proc/self/task")),
    }
before = state()
import geventio
after = state()
import greenlet
from gevent._hub_local import get_hub_if_exists
print(json.dumps({
    "before": before,
    "after": after,
    "audit": events,
    "hub": get_hub_if_exists() is not None,
    "greenlets": sum(
        1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet) and o.parent is not None
    ),
    "monkey": sorted(sys.modules.get("gevent.monkey").saved) if "gevent.monkey" in sys.modules
    else [],
}))
"""


def test_fault_import_has_no_side_effects(bound: Bound) -> None:
    """import geventio: no fd, socket, thread, hub, greenlet or monkey-patch (fresh process)."""
    with bound(10.0):
        proc = subprocess.run(
            [sys.executable, "-c", _IMPORT_SCRIPT],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    found: dict[str, Any] = json.loads(proc.stdout)
    assert found["after"]["fds"] == found["before"]["fds"], "import geventio opened a file"
    assert found["after"]["threads"] == found["before"]["threads"] == 1, "a thread was started"
    # urllib3's import-time IPv6 check creates a socket, binds it to ::1 and closes it: the only
    # socket call allowed (the fd check above shows it was closed).
    ipv6_check = [["socket.__new__", "_has_ipv6"], ["socket.bind", "_has_ipv6"]]
    assert found["audit"] in ([], ipv6_check), f"import geventio did: {found['audit']}"
    assert found["hub"] is False, "import geventio created the gevent hub"
    assert found["greenlets"] == 0, "import geventio created greenlets"
    assert found["monkey"] == [], f"import geventio monkey-patched {found['monkey']}"


ForkKind = Literal["os", "gevent"]
Patching = Literal["patched", "unpatched"]

_FORK_SCRIPT = r"""
import sys
how, patching, url = sys.argv[1:4]
if patching == "patched":
    from gevent import monkey
    monkey.patch_all()
import json, os, signal
import gevent, gevent.os
import geventio
MODES = ("build", "build_polling", "build_websocket")

def sockets():
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            found += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # the directory listing's own fd
            pass
    return found

def echo(who):
    got = {}
    builder = geventio.ClientBuilder(url).timeout(5)
    for mode in MODES:
        with getattr(builder, mode)() as client:
            client.send(f"{who} {mode}")
            got[mode] = [client.transport, client.receive(5)]
    return got

report = {"parent_before": echo("parent"), "sockets_at_fork": sockets()}
read_end, write_end = os.pipe()
pid = os.fork() if how == "os" else gevent.fork()
if pid == 0:
    signal.alarm(8)  # a hung child dies (SIGALRM) instead of hanging the test
    if how == "os" and patching == "unpatched":
        gevent.reinit()  # gevent's documented duty after a raw os.fork(), see the test
    os.close(read_end)
    child = {"sockets_at_start": sockets()}
    try:
        child["echo"] = echo("child")
    except BaseException as exc:
        child["error"] = repr(exc)
    child["sockets_at_end"] = sockets()
    os.write(write_end, json.dumps(child).encode())
    os._exit(0)
os.close(write_end)
report["parent_after"] = echo("parent after")
chunks = []
while chunk := os.read(read_end, 65536):
    chunks.append(chunk)
report["child"] = json.loads(b"".join(chunks) or b"{}")
# gevent.fork() reaps the child with its own SIGCHLD watcher: only gevent's waitpid sees it
waitpid = gevent.os.waitpid if how == "gevent" else os.waitpid
report["child_status"] = waitpid(pid, 0)[1]
report["sockets_at_end"] = sockets()
print(json.dumps(report))
"""


@pytest.mark.parametrize("patching", ["unpatched", "patched"])
@pytest.mark.parametrize("how", ["os", "gevent"])
def test_fault_forked_child_builds_its_own_client(
    server: ServerHandle, how: ForkKind, patching: Patching, bound: Bound
) -> None:
    """After a fork, the child and the parent each connect and echo with a new client.

    After a raw ``os.fork()`` in an unpatched process the child calls ``gevent.reinit()``, as
    gevent requires (without it gevent's threadpool resolver hangs ``getaddrinfo``); ``os.fork``
    patched by ``patch_all()`` and ``gevent.fork()`` do it themselves.
    """
    with bound(20.0):
        proc = subprocess.run(
            [sys.executable, "-c", _FORK_SCRIPT, how, patching, server.url],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)

    def expected(who: str) -> dict[str, list[str]]:
        return {
            "build": ["websocket", f"{who} build"],
            "build_polling": ["polling", f"{who} build_polling"],
            "build_websocket": ["websocket", f"{who} build_websocket"],
        }

    assert report["parent_before"] == expected("parent")
    assert report["sockets_at_fork"] == 0, "the closed client left a socket open"
    child = report["child"]
    assert "error" not in child, f"the child's client failed: {child['error']}\n{proc.stderr}"
    assert child["sockets_at_start"] == 0
    assert child["echo"] == expected("child")
    assert child["sockets_at_end"] == 0
    assert report["child_status"] == 0
    assert report["parent_after"] == expected("parent after")
    assert report["sockets_at_end"] == 0
