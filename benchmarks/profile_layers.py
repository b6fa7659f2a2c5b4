"""Where a Python worker's time goes, by layer: a summary of a ``--profile`` cProfile file.

::

    python benchmarks/clients/gsio_bench.py --scenario sio-flood --transport websocket \\
        --n 20000 --url http://127.0.0.1:PORT --profile /tmp/flood.prof
    python benchmarks/profile_layers.py /tmp/flood.prof [--top 15]

Each function's own time (cProfile's ``tottime``) is summed per layer: wsproto, the Engine.IO
session and transports, the Socket.IO codec, the rest of ``geventio.socketio``, json, gevent,
socket system calls, ...  With greenlets, cProfile charges the hub's C-level time (mostly
waiting in ``epoll``) to the Python frame that blocked, usually gevent's socket ``recv``: that
time is shown apart as "waiting in the hub", and the shares of the other layers are of the
time without it.  Profiling slows Python code down about 2x; read shares, not absolute times.
"""

from __future__ import annotations

import argparse
import pstats
import sys
from collections import Counter

#: (substring of the file name, layer), first match wins
LAYERS = (
    ("wsproto", "wsproto"),
    ("h11", "h11"),
    ("geventio/socketio/_packet", "Socket.IO codec (geventio.socketio._packet)"),
    ("geventio/socketio", "geventio.socketio client, state, runner"),
    ("geventio/_transports", "geventio transports"),
    ("geventio/", "geventio Engine.IO session, core, mailbox"),
    ("socketio/", "python-socketio"),
    ("engineio/", "python-engineio"),
    ("websocket/", "websocket-client"),
    ("urllib3", "urllib3"),
    ("requests", "requests"),
    ("json", "json"),
    ("threading", "threading (a greenlet each under patch_all)"),
    ("gevent", "gevent (Python level)"),
    ("benchmarks/clients", "benchmark driver"),
)
WAITING = "waiting in the hub (charged to the blocked recv)"
BLOCKING = ("recv", "recv_into", "wait", "_wait", "switch", "get", "join")
SOCKET_CALLS = ("send", "sendall", "recv", "recv_into")


def layer(filename: str, name: str) -> str:
    """The layer of one profiled function."""
    if "gevent" in filename and name in BLOCKING and "_socketcommon" in filename:
        return WAITING
    if filename == "~":  # built-ins
        if any(f"'{call}' of '_socket.socket'" in name for call in SOCKET_CALLS):
            return "socket system calls"
        return "built-ins (len, isinstance, ...)"
    return next((label for part, label in LAYERS if part in filename), "other")


def summarize(path: str, top: int) -> str:
    """The report for one stats file."""
    stats = pstats.Stats(path)
    layers: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    calls = 0
    for (filename, line, name), (_, ncalls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        calls += ncalls
        layers[layer(filename, name)] += tottime
        short = "/".join(filename.split("/")[-2:])
        functions[f"{short}:{line} {name}" if filename != "~" else name] += tottime
    waiting = layers.pop(WAITING, 0.0)
    busy = sum(layers.values())
    out = [f"{path}: {busy:.3f} s busy, {waiting:.3f} s waiting, {calls} function calls"]
    out += [
        f"  {t:7.3f} s {100 * t / busy:5.1f} %  {label}"
        for label, t in layers.most_common()
        if t >= 0.001
    ]
    out.append(f"top {top} functions by own time:")
    out += [f"  {t:7.3f} s {100 * t / busy:5.1f} %  {f}" for f, t in functions.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Print the summary of each stats file named on the command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("stats", nargs="+", help="files written by a worker's --profile")
    parser.add_argument("--top", type=int, default=15, help="functions listed (default 15)")
    args = parser.parse_args(argv)
    for path in args.stats:
        print(summarize(path, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
