"""Cooperation with the gevent hub, with and without monkey-patching."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import time

import gevent
import gevent.monkey

import geventio
from tests.helpers import wait_parked
from tests.servers import ServerHandle


def test_a_parked_long_poll_does_not_block_the_hub(server: ServerHandle) -> None:
    assert not gevent.monkey.is_module_patched("socket"), "this test needs an unpatched process"
    ticks: list[float] = []

    def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.01)

    task = gevent.spawn(ticker)
    try:
        with geventio.ClientBuilder(server.url).build_polling() as client:
            wait_parked(server.url, client)
            gevent.sleep(0.5)  # a window of real time while the GET stays parked at the server
            assert client.connected
        with geventio.ClientBuilder(server.url).build_websocket() as client:
            gevent.sleep(0.5)  # a window of real time while the WebSocket read waits
    finally:
        task.kill()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 50
    assert max(gaps) < 0.2


def test_echo_under_patch_all_in_a_subprocess(server: ServerHandle) -> None:
    script = textwrap.dedent(
        f"""
        from gevent import monkey
        monkey.patch_all()
        import threading, gevent, geventio
        assert monkey.is_module_patched("socket")
        for build in ("build", "build_polling", "build_websocket"):
            with getattr(geventio.ClientBuilder({server.url!r}).timeout(5), build)() as client:
                client.send("patched " + build)
                assert client.receive(5) == "patched " + build, build
        assert threading.active_count() == 1, threading.enumerate()
        print("OK")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK"
    assert result.stderr == ""
