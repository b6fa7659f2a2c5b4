"""Soak: N concurrent geventio WebSocket clients in one process against the Node test server.

::

    python tests/faults/soak.py --clients 2000 --seconds 60 --ping-interval 1000 \\
        [--ping-timeout 5000] [--batch 100] [--json out.json]

Starts ``tests/servers/node_server.js`` with that ping interval, raises the soft ``RLIMIT_NOFILE``
to the hard limit (before the server starts, so that it inherits it), opens the clients with
``build_websocket()`` through a gevent Pool of ``--batch`` concurrent connects, then every client
sends one message a second and checks its echo for ``--seconds``.  A client is *dropped* when it
failed to connect, closed before the end, missed or got a wrong echo, or reported an error
through ``on_error``.  Prints a summary and the figures as JSON (also to ``--json``); the exit
status is 1 when any client dropped.  Not part of CI by itself (``test_fault_soak.py`` runs a
small one).

PINGs are counted with ``on_packet``: geventio answers each at once, and the server closes any
client whose PONG is later than ``--ping-timeout`` (which would count as dropped).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import gevent.pool

# run as a script: the repository root, so that the test helpers have their full names (tests.*)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import geventio
from geventio import CloseReason, ConnectionClosed, Packet, PacketId
from tests.faults.procstats import (
    own_cpu_seconds,
    percentile,
    proc_cpu_seconds,
    proc_status,
    raise_nofile,
)
from tests.servers import ServerHandle, start_server

ECHO_TIMEOUT = 5.0
SEND_EVERY = 1.0


@dataclass
class Peer:
    """One client and what happened to it."""

    index: int
    client: geventio.Client | None = None
    connect_error: str | None = None
    connect_seconds: float = 0.0
    pings: int = 0
    sent: int = 0
    echoed: int = 0
    missing: int = 0  # echoes not received in time, or not the message sent
    errors: list[str] = field(default_factory=list)
    ending: bool = False  # set before the soak's own disconnect
    early_close: str | None = None  # the reason, for a close before the end
    final_close: str | None = None
    rtts: list[float] = field(default_factory=list)

    def on_packet(self, packet: Packet) -> None:
        if packet.packet_id is PacketId.PING:
            self.pings += 1

    def on_error(self, error: geventio.EngineIOError) -> None:
        self.errors.append(repr(error))

    def on_close(self, reason: CloseReason) -> None:
        if self.ending:
            self.final_close = reason.value
        else:
            self.early_close = reason.value

    @property
    def dropped(self) -> bool:
        return bool(self.connect_error or self.early_close or self.missing or self.errors) or (
            self.final_close not in (None, CloseReason.CLIENT_DISCONNECT.value)
        )


def connect(url: str, peer: Peer, timeout: float) -> None:
    builder = (
        geventio.ClientBuilder(url)
        .timeout(timeout)
        .on_packet(peer.on_packet)
        .on_error(peer.on_error)
        .on_close(peer.on_close)
    )
    start = time.monotonic()
    try:
        peer.client = builder.build_websocket()
    except geventio.EngineIOError as exc:
        peer.connect_error = repr(exc)
    peer.connect_seconds = time.monotonic() - start


def talk(peer: Peer, stop_at: float) -> None:
    """Send a message every ``SEND_EVERY`` s (random phase) and check each echo, until stop_at."""
    client = peer.client
    assert client is not None
    gevent.sleep(random.random() * SEND_EVERY)
    next_send = time.monotonic()
    while time.monotonic() < stop_at and client.connected:
        text = f"{peer.index}:{peer.sent}"
        sent_at = time.monotonic()
        try:
            client.send(text)
            peer.sent += 1
            echo = client.receive(ECHO_TIMEOUT)
        except geventio.Timeout:
            peer.missing += 1
            return  # later echoes would be out of step: the client counts as dropped
        except ConnectionClosed:
            return
        if echo != text:
            peer.missing += 1
            return
        peer.echoed += 1
        peer.rtts.append(time.monotonic() - sent_at)
        next_send += SEND_EVERY
        gevent.sleep(max(0.0, next_send - time.monotonic()))


def run(args: argparse.Namespace, server: ServerHandle) -> dict[str, Any]:
    peers = [Peer(i) for i in range(args.clients)]
    pool = gevent.pool.Pool(args.batch)
    rss_base = proc_status()["VmRSS"]
    cpu_start = own_cpu_seconds()

    start = time.monotonic()
    for peer in peers:
        pool.spawn(connect, server.url, peer, args.connect_timeout)
    pool.join()
    connect_seconds = time.monotonic() - start
    connected = [p for p in peers if p.client is not None]
    rss_connected = proc_status()["VmRSS"]
    cpu_connected = own_cpu_seconds()
    server_cpu_connected = proc_cpu_seconds(server.proc.pid)

    stop_at = time.monotonic() + args.seconds
    talkers = [gevent.spawn(talk, peer, stop_at) for peer in connected]
    gevent.joinall(talkers, timeout=args.seconds + ECHO_TIMEOUT + 5)
    still_open = sum(p.client is not None and p.client.connected for p in connected)
    gevent.killall(talkers, timeout=2)
    ran_seconds = time.monotonic() - stop_at + args.seconds
    status_end = proc_status()
    cpu_end = own_cpu_seconds()
    server_end = proc_status(server.proc.pid)
    server_cpu = proc_cpu_seconds(server.proc.pid) - server_cpu_connected

    start = time.monotonic()
    for peer in connected:
        peer.ending = True
        assert peer.client is not None
        pool.spawn(peer.client.disconnect)
    pool.join()
    disconnect_seconds = time.monotonic() - start

    dropped = [p for p in peers if p.dropped]
    pings = [p.pings for p in connected] or [0]
    rtts = [t for p in peers for t in p.rtts]
    n = max(1, len(connected))
    return {
        "options": {
            "clients": args.clients,
            "seconds": args.seconds,
            "ping_interval_ms": args.ping_interval,
            "ping_timeout_ms": args.ping_timeout,
            "batch": args.batch,
            "nofile_limit": args.nofile,
        },
        "clients_connected": len(connected),
        "connect_failures": args.clients - len(connected),
        "still_open_at_end": still_open,
        "dropped": len(dropped),
        "drop_reasons": dict(
            Counter(
                p.connect_error
                or p.early_close
                or (p.errors[0] if p.errors else None)
                or ("missing echo" if p.missing else f"closed: {p.final_close}")
                for p in dropped
            ).most_common(10)
        ),
        "connect": {
            "seconds": round(connect_seconds, 3),
            "per_second": round(len(connected) / connect_seconds, 1),
            "p50_ms": round(percentile([p.connect_seconds for p in peers], 0.5) * 1000, 1),
            "p99_ms": round(percentile([p.connect_seconds for p in peers], 0.99) * 1000, 1),
        },
        "run_seconds": round(ran_seconds, 3),
        "messages": {
            "sent": sum(p.sent for p in peers),
            "echoed": sum(p.echoed for p in peers),
            "missing": sum(p.missing for p in peers),
            "rtt_p50_ms": round(percentile(rtts, 0.5) * 1000, 2),
            "rtt_p99_ms": round(percentile(rtts, 0.99) * 1000, 2),
            "rtt_max_ms": round(max(rtts, default=0.0) * 1000, 2),
        },
        "pings_answered": {
            "total": sum(pings),
            "min_per_client": min(pings),
            "mean_per_client": round(sum(pings) / len(pings), 2),
            "max_per_client": max(pings),
        },
        "errors": sum(len(p.errors) for p in peers),
        "disconnect_seconds": round(disconnect_seconds, 3),
        "client_process": {
            "rss_baseline_kib": rss_base,
            "rss_connected_kib": rss_connected,
            "rss_end_kib": status_end["VmRSS"],
            "rss_peak_kib": status_end["VmHWM"],
            "kib_per_client_connected": round((rss_connected - rss_base) / n, 1),
            "kib_per_client_end": round((status_end["VmRSS"] - rss_base) / n, 1),
            "cpu_seconds_connect": round(cpu_connected - cpu_start, 2),
            "cpu_seconds_run": round(cpu_end - cpu_connected, 2),
            "cpu_percent_run": round(100 * (cpu_end - cpu_connected) / ran_seconds, 1),
        },
        "server_process": {
            "rss_end_kib": server_end["VmRSS"],
            "rss_peak_kib": server_end["VmHWM"],
            "cpu_seconds_run": round(server_cpu, 2),
            "cpu_percent_run": round(100 * server_cpu / ran_seconds, 1),
        },
    }


def summary(r: dict[str, Any]) -> str:
    c, m, p = r["connect"], r["messages"], r["pings_answered"]
    me, srv = r["client_process"], r["server_process"]
    return "\n".join(
        [
            f"clients: {r['clients_connected']}/{r['options']['clients']} connected in "
            f"{c['seconds']} s ({c['per_second']}/s, p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms)",
            f"dropped: {r['dropped']} {r['drop_reasons'] or ''}",
            f"messages: {m['sent']} sent, {m['echoed']} echoed, {m['missing']} missing; "
            f"rtt p50 {m['rtt_p50_ms']} ms, p99 {m['rtt_p99_ms']} ms, max {m['rtt_max_ms']} ms",
            f"pings answered: {p['total']} (per client: min {p['min_per_client']}, "
            f"mean {p['mean_per_client']}, max {p['max_per_client']})",
            f"client process: RSS {me['rss_baseline_kib']} -> {me['rss_connected_kib']} KiB "
            f"connected, {me['rss_end_kib']} at end, peak {me['rss_peak_kib']} "
            f"({me['kib_per_client_connected']} KiB/client connected, "
            f"{me['kib_per_client_end']} at end); CPU {me['cpu_seconds_connect']} s connecting, "
            f"{me['cpu_seconds_run']} s over the run ({me['cpu_percent_run']} %)",
            f"node server: RSS {srv['rss_end_kib']} KiB, peak {srv['rss_peak_kib']}; "
            f"CPU {srv['cpu_seconds_run']} s over the run ({srv['cpu_percent_run']} %)",
            f"disconnect of all: {r['disconnect_seconds']} s",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--ping-interval", type=int, default=1000, help="ms")
    parser.add_argument("--ping-timeout", type=int, default=5000, help="ms")
    parser.add_argument("--batch", type=int, default=100, help="concurrent connects")
    parser.add_argument("--connect-timeout", type=float, default=10.0, help="s")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    args.nofile = raise_nofile()
    if args.nofile < args.clients + 100:
        parser.error(f"RLIMIT_NOFILE is {args.nofile}: too low for {args.clients} clients")
    # SIGTERM (e.g. a test's timeout) stops the server too, through the finally below.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    server = start_server("node", ping_interval=args.ping_interval, ping_timeout=args.ping_timeout)
    try:
        report = run(args, server)
    finally:
        server.stop()
    print(summary(report))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 1 if report["dropped"] else 0


if __name__ == "__main__":
    sys.exit(main())
