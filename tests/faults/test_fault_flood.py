"""A hostile server flooding one client: the hub keeps running and memory stays bounded.

One client shares its process with thousands of greenlets (a web server, a Locust worker). Whatever
a server sends, a 10 ms ticker greenlet beside the client must keep ticking (worst gap under
:data:`MAX_GAP`), the process must not grow by :data:`MAX_GROWTH`, and the session must either
keep working or end with a typed error, ``on_error`` and a clean close.

The floods are built before the measurement starts: the scripted server runs in threads of this
process, so its buffers count in the same RSS.
"""

from __future__ import annotations

import time
from contextlib import suppress

import gevent
import gevent.event
import pytest

import geventio
from geventio import CloseReason, ConnectionClosed, EngineIOError, ProtocolError
from tests.faultkit import Bound
from tests.faults.dummyserver import (
    Conn,
    Server,
    frame,
    open_packet,
    polling_script,
    websocket_script,
)
from tests.faults.procstats import proc_status
from tests.helpers import raw_websocket

MAX_GAP = 0.3  # seconds between two ticks of a 10 ms ticker
MAX_GROWTH = 64 << 20  # bytes of RSS (peak) over the RSS before the flood
TEXT, CONTINUATION = 0x1, 0x0


class Watch:
    """A 10 ms ticker greenlet: the worst gap between its ticks, and the peak RSS growth.

    :ivar gap: the longest time between two ticks, in seconds.
    :ivar growth: the peak RSS (VmHWM, reset on entry) minus the RSS on entry, in bytes.
    """

    def __init__(self) -> None:
        self.gap = 0.0
        self.growth = 0
        self._peak_kib = 0
        self._last = time.monotonic()  # the ticker's last tick
        self._base_kib = 0
        self._ticker: gevent.Greenlet[[], None] | None = None
        self._running = gevent.event.Event()

    def _tick(self) -> None:
        self._running.set()
        while True:
            gevent.sleep(0.01)
            now = time.monotonic()
            self.gap = max(self.gap, now - self._last)
            self._last = now
            self._peak_kib = max(self._peak_kib, proc_status()["VmRSS"])

    def __enter__(self) -> Watch:
        with suppress(OSError), open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        self._base_kib = proc_status()["VmRSS"]
        self._last = time.monotonic()
        self._ticker = gevent.spawn(self._tick)
        assert self._running.wait(5), "the ticker is running before the flood starts"
        return self

    def __exit__(self, *exc_info: object) -> None:
        # a stall that ended just before the exit counts, though the ticker never woke after it
        self.gap = max(self.gap, time.monotonic() - self._last)
        assert self._ticker is not None
        self._ticker.kill()
        peak = max(self._peak_kib, proc_status()["VmHWM"])
        self.growth = (peak - self._base_kib) * 1024

    def check(self) -> None:
        assert self.gap < MAX_GAP, f"the hub stalled for {self.gap:.3f} s"
        assert self.growth < MAX_GROWTH, f"RSS grew by {self.growth >> 20} MiB"


def _packets(server: Server, method: str) -> list[str]:
    """Every packet the client sent in the bodies of its ``method`` requests."""
    return [
        part
        for request in server.requests
        if request.method == method
        for part in request.body.decode().split("\x1e")
    ]


def test_a_handshake_full_of_pings_gets_few_pongs(bound: Bound) -> None:
    """100,000 PINGs after the open packet: few PONGs, the hub runs, the session keeps working."""
    pings = 100_000
    handshake = open_packet() + "\x1e2" * pings
    with polling_script(b"4after", handshake=handshake) as server, Watch() as watch:
        with bound(5.0):
            client = geventio.ClientBuilder(server.url).timeout(5).build_polling()
            assert client.receive(5) == "after"
            server.wait_for(lambda: "3" in _packets(server, "POST"))
        client.disconnect()
    watch.check()
    # One pending PONG answers every PING: while the answer is delivered a batch at a time (of
    # 256 packets), the writer may post one between batches, never one per PING.
    assert 1 <= _packets(server, "POST").count("3") <= pings // 256 + 1


def test_a_poll_answer_of_two_million_noops_ends_with_a_protocol_error(bound: Bound) -> None:
    """2M NOOPs in one 4 MB poll answer: the hub runs, ProtocolError, earlier messages kept."""
    flood = b"6" + b"\x1e6" * (2_000_000 - 1)
    errors: list[EngineIOError] = []
    with polling_script(b"4before", flood) as server, Watch() as watch:
        builder = geventio.ClientBuilder(server.url).timeout(5).on_error(errors.append)
        with bound(8.0):
            client = builder.build_polling()
            assert client.wait(8) is CloseReason.TRANSPORT_ERROR
        assert client.receive(0) == "before"
        with pytest.raises(ConnectionClosed) as info:
            client.receive(0)
        assert info.value.reason is CloseReason.TRANSPORT_ERROR
        server.wait_for(lambda: server.hung_up)
    watch.check()
    assert len(errors) == 1
    assert isinstance(errors[0], ProtocolError), errors[0]
    assert "control packets" in str(errors[0])


#: What a flooding WebSocket server sends after the open packet: a first frame, then 16 times
#: a piece of 65,536 frames (about 1M frames in all, unless the client hangs up first).
_WS_FLOODS = {
    "noop frames": (b"", frame(TEXT, b"6") * 65_536),  # 192 KiB a piece
    # fragments of one message that never ends: no message completes, no backpressure
    "empty fragments": (frame(TEXT, b"", fin=False), frame(CONTINUATION, b"", fin=False) * 65_536),
}


@pytest.mark.parametrize("flood_kind", list(_WS_FLOODS))
def test_a_websocket_flood_still_times_out_on_time(bound: Bound, flood_kind: str) -> None:
    """~1M NOOP frames or empty fragments, no PING: the hub runs, PING_TIMEOUT on time."""
    interval, timeout = 0.4, 0.4
    opening = frame(TEXT, open_packet(pingInterval=400, pingTimeout=400).encode())
    first, piece = _WS_FLOODS[flood_kind]

    def flood(conn: Conn) -> None:
        if first and not conn.send(first):
            return
        for _ in range(16):
            if not conn.send(piece):
                return
        conn.stall()

    errors: list[EngineIOError] = []
    with websocket_script(opening, after=flood) as server, Watch() as watch:
        builder = geventio.ClientBuilder(server.url).timeout(5).on_error(errors.append)
        with bound(interval + timeout + 0.6):
            client = builder.build_websocket()
            opened = time.monotonic()
            assert client.wait(30) is CloseReason.PING_TIMEOUT
        late = time.monotonic() - opened - (interval + timeout)
        server.wait_for(lambda: server.hung_up)
    watch.check()
    assert late < 0.5, f"the ping timeout came {late:.3f} s after the deadline"
    assert errors == []  # a ping timeout is a close reason, not an error


def test_one_websocket_read_parses_a_bounded_number_of_frames() -> None:
    """64 KiB of 3-byte frames per socket read: each recv() parses a batch, not 21,845 frames."""
    frames = 65_536
    with websocket_script(frame(TEXT, b"6") * frames) as server:
        worst = 0.0  # CPU time of this thread: scheduling noise does not count
        start = time.thread_time()
        ws = raw_websocket(server.url)
        try:
            worst = time.thread_time() - start
            for _ in range(frames):
                start = time.thread_time()
                assert ws.recv(5) == "6"
                worst = max(worst, time.thread_time() - start)
        finally:
            ws.close(0)
    # parsing a whole read took 0.2 s of CPU; a batch of frames takes a few milliseconds
    assert worst < 0.05, f"one recv() took {worst:.3f} s of CPU"
