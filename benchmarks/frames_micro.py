"""Micro-benchmark of WebSocket framing: geventio's fast path against wsproto, parsing and encoding.

::

    python benchmarks/frames_micro.py [--frames 10000] [--size 32] [--reps 5]

Parsing: ``--frames`` unmasked server text frames of ``--size`` bytes in one buffer, turned into
messages the way the transport reads them (a batch of 256 at a time): by
:class:`geventio._transports._inbox.Inbox` (the fast path) and by wsproto alone (``Inbox`` with
``fast=False``: wsproto's events, reassembled as the transport did before the fast path).
Encoding: the same number of client frames, masked, built by ``encode_frames`` and by wsproto's
``Connection.send``. Prints the best of ``--reps`` runs of each, in frames per second, and the
ratios. No I/O, no gevent: CPU time of one core.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import TextMessage

from geventio._transports._frames import encode_frames
from geventio._transports._inbox import Inbox


def server_frames(count: int, size: int) -> bytes:
    payload = b"4" + b"x" * (size - 1)
    header = bytes([0x81, size]) if size < 126 else bytes([0x81, 126]) + size.to_bytes(2, "big")
    return (header + payload) * count


def parse(data: bytes, fast: bool) -> int:
    inbox = Inbox(Connection(ConnectionType.CLIENT), 1 << 20, fast=fast)
    inbox.feed(data)
    while inbox.pending:
        inbox.step()
    return len(inbox.messages)


def encode_ours(messages: list[str]) -> int:
    return len(encode_frames(messages))


def encode_wsproto(messages: list[str]) -> int:
    send = Connection(ConnectionType.CLIENT).send
    return len(b"".join([send(TextMessage(m)) for m in messages]))


def best(run: Callable[[], int], reps: int) -> float:
    """The shortest of ``reps`` timings of ``run``, in seconds."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10000)
    parser.add_argument("--size", type=int, default=32, help="payload bytes per frame")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    count, size = args.frames, args.size
    data = server_frames(count, size)
    assert parse(data, True) == parse(data, False) == count
    messages = ["4" + "x" * (size - 1)] * count
    rows = [
        (
            "parse",
            best(lambda: parse(data, True), args.reps),
            best(lambda: parse(data, False), args.reps),
        ),
        (
            "encode",
            best(lambda: encode_ours(messages), args.reps),
            best(lambda: encode_wsproto(messages), args.reps),
        ),
    ]
    print(f"{count} frames of {size} bytes, best of {args.reps}")
    for name, ours, theirs in rows:
        print(
            f"{name:7} fast path {count / ours:>12,.0f} frames/s   wsproto {count / theirs:>12,.0f}"
            f" frames/s   ratio {theirs / ours:5.1f}x"
        )


if __name__ == "__main__":
    main()
