"""The heartbeat watch of a session: a hub timer on the core's deadline, and the greenlet it spawns.

The timer fires even while the reader and the writer are both blocked in I/O (a stalled server
holding a GET and a POST): a ping timeout is then detected on time, not when some I/O timeout runs
out. It fires once per ping interval and re-arms while PINGs move the deadline. A timer callback
runs in the hub and must not block, so a deadline that passed spawns the **closer** greenlet,
which runs the session's check (and so its close); :meth:`HeartbeatWatch.stop` stops both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent

__all__ = ["HeartbeatWatch"]

monotonic = time.monotonic


class HeartbeatWatch:
    """Arms a hub timer on ``deadline()``; once it passed, runs ``due`` in a new greenlet.

    :param deadline: the core's next deadline (monotonic seconds), ``None`` for none.
    :param spawn: spawns the closer greenlet running ``due`` (the session guards it).
    :param due: checks the heartbeat; may close the session.
    """

    def __init__(
        self,
        deadline: Callable[[], float | None],
        spawn: Callable[[Callable[[], None]], gevent.Greenlet[Any, Any]],
        due: Callable[[], None],
    ) -> None:
        self._deadline = deadline
        self._spawn = spawn
        self._due = due
        self._timer: Any = None
        self._closer: gevent.Greenlet[Any, Any] | None = None
        self._stopped = False

    def arm(self) -> None:
        """(Re)start the timer for the current deadline; blocks on nothing."""
        deadline = self._deadline()
        if deadline is None or self._stopped:
            return
        self._timer = gevent.get_hub().loop.timer(max(0.0, deadline - monotonic()))
        self._timer.start(self._fired)

    def _fired(self) -> None:
        """Runs in the hub, so it must not block."""
        deadline = self._deadline()
        if deadline is not None and deadline <= monotonic() and not self._stopped:
            self._closer = self._spawn(self._due)
        else:
            self.arm()

    def stop(self, timeout: float) -> None:
        """Close the timer and kill the closer (unless it is the caller); idempotent.

        Blocks the calling greenlet until the closer ended, at most ``timeout``.
        """
        self._stopped = True
        if self._timer is not None:
            self._timer.close()
        closer = self._closer
        if closer is not None and closer is not gevent.getcurrent():
            closer.kill(block=True, timeout=timeout)
