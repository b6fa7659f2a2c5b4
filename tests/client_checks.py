"""Pytest plugin: every test fails if a gevent hub error happened or a client greenlet leaked."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest

#: How long greenlets still running geventio code after a test have to finish (a killed greenlet
#: runs once more to end; a loaded machine may take a while to schedule it).
GRACE = 1.0


def live_greenlets(*modules: str) -> list[gevent.Greenlet[Any, Any]]:
    """Live greenlets running a function from one of ``modules`` (by module name prefix).

    Found by what they run (the greenlet's function, or a function among its arguments, as
    ``spawn(self._guarded, loop)`` has), not by a registry of the library's.
    """
    found = []
    for obj in gc.get_objects():
        if isinstance(obj, gevent.Greenlet) and not obj.dead:
            targets = [getattr(obj, "_run", None), *getattr(obj, "args", ())]
            if any(getattr(t, "__module__", "").startswith(modules) for t in targets):
                found.append(obj)
    return found


def _client_greenlets() -> list[gevent.Greenlet[Any, Any]]:
    """Live greenlets running geventio code."""
    return live_greenlets("geventio")


@pytest.fixture(autouse=True)
def _no_hub_errors_or_leaks() -> Iterator[None]:
    hub = gevent.get_hub()
    errors: list[str] = []
    original: Callable[..., Any] = hub.handle_error

    def handle_error(context: Any, kind: Any, value: Any, tb: Any) -> None:
        if kind is not None and not issubclass(kind, (gevent.GreenletExit, SystemExit)):
            errors.append(f"{kind.__name__}: {value} (in {context!r})")
        original(context, kind, value, tb)

    hub.handle_error = handle_error
    try:
        yield
    finally:
        hub.handle_error = original
    assert not errors, f"errors reached the gevent hub: {errors}"
    leaked = _client_greenlets()
    deadline = time.monotonic() + GRACE
    while leaked and time.monotonic() < deadline:  # greenlets being killed may finish
        gevent.sleep(0.01)
        leaked = _client_greenlets()
    if leaked:  # kill them so that one failing test does not fail the ones after it
        gevent.killall(leaked, timeout=2)
    assert not leaked, f"client greenlets still alive after the test: {leaked}"
