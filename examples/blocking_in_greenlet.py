"""Blocking request/response calls from many greenlets, on one shared client or one client each.

Run it with ``python examples/blocking_in_greenlet.py`` (it starts the embedded echo server) or
``python examples/blocking_in_greenlet.py --url http://host:port`` for a server that echoes
every message back. Two patterns, each with ``--greenlets`` greenlets making ``--calls`` calls:

1. **One shared client** (:class:`Requester`): every greenlet sends on the same connection, so
   answers must be matched to questions. Each question carries an id prefix (``"17:question"``),
   and ``on_data`` hands each answer to the :class:`gevent.event.AsyncResult` waiting for its id.
   One connection for everything: the cheapest, and what a web app's views should share.
2. **One client per greenlet**: ``send()`` then ``receive(timeout)``; no ids are needed since
   the greenlet is alone on its connection and the server answers in order. Simpler, but one
   session each.

A call blocks only its own greenlet; the others, and the client's own greenlets, keep running.
Prints a summary per pattern (calls, p50/p99 latency, errors) and exits with status 0 only when
every answer matched its question. Nothing is monkey-patched.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.event

import geventio
from geventio.contrib import server


class Requester:
    """Request/response over one client shared by any number of greenlets.

    Each question goes out as ``"<id>:<question>"``, and the answer must come back as a text
    message with the same ``"<id>:"`` prefix (an echo server does that). An answer nobody waits
    for any more (its call timed out) is dropped and counted in :attr:`unmatched`.

    :param url: the server's URL, as for :class:`geventio.ClientBuilder`.
    :param timeout: the bound on connecting.
    :raises geventio.ConnectError: when the session cannot be opened.
    """

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self._ids = itertools.count()
        self._pending: dict[str, Any] = {}  # id -> gevent.event.AsyncResult of its answer
        #: Answers that matched no waiting call.
        self.unmatched = 0
        self.client = (
            geventio.ClientBuilder(url)
            .timeout(timeout)
            .on_data(self._on_data)  # messages come here, in the client's dispatch greenlet
            .on_close(self._on_close)
            .build()
        )

    def _on_data(self, data: str | bytes) -> None:
        key, sep, answer = data.partition(":") if isinstance(data, str) else ("", "", "")
        waiter = self._pending.pop(key, None) if sep else None
        if waiter is None:
            self.unmatched += 1
        else:
            waiter.set(answer)  # never blocks: wakes the greenlet waiting in ask()

    def _on_close(self, reason: geventio.CloseReason) -> None:
        # Fail the calls in flight at once rather than letting each run into its timeout.
        pending, self._pending = self._pending, {}
        for waiter in pending.values():
            waiter.set_exception(geventio.ConnectionClosed(reason))

    def ask(self, question: str, timeout: float = 5.0) -> str:
        """Send ``question`` and block the calling greenlet until its answer comes.

        May be called from any number of greenlets at once.

        :raises TimeoutError: when no answer came within ``timeout`` seconds.
        :raises geventio.ConnectionClosed: when the client is or gets closed first.
        """
        key = str(next(self._ids))
        waiter = gevent.event.AsyncResult()
        self._pending[key] = waiter  # before sending: the answer may come before send returns
        try:
            self.client.send(f"{key}:{question}")
            waiter.wait(timeout)  # returns on the answer, the close or the timeout; never raises
            if not waiter.ready():
                raise TimeoutError(f"no answer to call {key} within {timeout} s")
            return str(waiter.get(block=False))  # the answer, or raises what _on_close set
        finally:
            self._pending.pop(key, None)  # a timed-out call leaves nothing behind

    def close(self) -> None:
        """Disconnect the client; calls still waiting raise ``ConnectionClosed``."""
        self.client.disconnect()

    def __enter__(self) -> Requester:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class Results:
    """What one pattern measured: a latency per answered call, and the failures."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record(self, question: str, ask: Callable[[str], str]) -> None:
        """Time ``ask(question)`` and check its answer; record a failure, never raise."""
        start = time.perf_counter()
        try:
            answer = ask(question)
        except (geventio.EngineIOError, TimeoutError) as exc:
            self.errors.append(f"{question!r}: {type(exc).__name__}: {exc}")
            return
        self.latencies_ms.append((time.perf_counter() - start) * 1000)
        if answer != question:
            self.errors.append(f"{question!r}: wrong answer {answer!r}")

    def summary(self, name: str, greenlets: int, calls: int, elapsed: float) -> str:
        line = f"{name}: {greenlets} greenlets x {calls} calls = {greenlets * calls} calls"
        line += f" in {elapsed:.2f} s"
        if len(self.latencies_ms) >= 2:  # quantiles need two points
            cuts = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
            line += f", p50 {cuts[49]:.2f} ms, p99 {cuts[98]:.2f} ms"
        return line + f", {len(self.errors)} errors"


def run_shared(url: str, greenlets: int, calls: int, timeout: float) -> Results:
    """Pattern 1: ``greenlets`` greenlets making ``calls`` calls each on one shared client."""
    results = Results()
    with Requester(url, timeout) as requester:

        def worker(n: int) -> None:
            for i in range(calls):
                question = f"question {i} from greenlet {n}, shared"
                results.record(question, functools.partial(requester.ask, timeout=timeout))

        gevent.joinall([gevent.spawn(worker, n) for n in range(greenlets)], raise_error=True)
        if requester.unmatched:
            results.errors.append(f"{requester.unmatched} answers matched no call")
    return results


def run_per_greenlet(url: str, greenlets: int, calls: int, timeout: float) -> Results:
    """Pattern 2: ``greenlets`` greenlets, each with its own client, making ``calls`` calls."""
    results = Results()

    def ask(client: geventio.Client, question: str) -> str:
        client.send(question)
        return str(client.receive(timeout))  # geventio.Timeout (a TimeoutError) on timeout

    def worker(n: int) -> None:
        try:
            client = geventio.connect(url, timeout=timeout)
        except geventio.ConnectError as exc:
            results.errors.append(f"greenlet {n} could not connect: {exc}")
            return
        with client:  # disconnects when the greenlet is done
            for i in range(calls):
                question = f"question {i} from greenlet {n}, own client"
                results.record(question, functools.partial(ask, client))

    gevent.joinall([gevent.spawn(worker, n) for n in range(greenlets)], raise_error=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", help="an echo server's URL (default: an embedded echo server)")
    parser.add_argument("--greenlets", type=int, default=50, help="concurrent callers")
    parser.add_argument("--calls", type=int, default=20, help="calls per greenlet")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per call")
    args = parser.parse_args()

    embedded = None if args.url else server.start_server(port=0)
    url = args.url or server.url_of(embedded)
    print(f"server: {url}" + (" (embedded echo server)" if embedded else ""))
    errors: list[str] = []
    try:
        patterns = [("shared client", run_shared), ("client per greenlet", run_per_greenlet)]
        for name, run in patterns:
            start = time.perf_counter()
            results = run(url, args.greenlets, args.calls, args.timeout)
            elapsed = time.perf_counter() - start
            print(results.summary(name, args.greenlets, args.calls, elapsed))
            errors += results.errors
    finally:
        if embedded is not None:
            embedded.stop(timeout=2)
    if errors:
        print(f"FAILED: {len(errors)} errors, first: {errors[:5]}")
        return 1
    print("ok: every answer matched its question")
    return 0


if __name__ == "__main__":
    sys.exit(main())
