"""Pytest plugin: every test fails if a gevent hub error happened or a client greenlet leaked."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest


def _client_greenlets() -> list[gevent.Greenlet[Any, Any]]:
    """Live greenlets running geventio code (found by what they run, not by a registry)."""
    found = []
    for obj in gc.get_objects():
        if isinstance(obj, gevent.Greenlet) and not obj.dead:
            run = getattr(obj, "_run", None)
            targets = [run, *getattr(obj, "args", ())]
            if any(getattr(t, "__module__", "").startswith("geventio") for t in targets):
                found.append(obj)
    return found


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
    if leaked:  # give greenlets that are being killed one turn of the loop to finish
        gevent.sleep(0.05)
        leaked = _client_greenlets()
    if leaked:  # kill them so that one failing test does not fail the ones after it
        gevent.killall(leaked, timeout=2)
    assert not leaked, f"client greenlets still alive after the test: {leaked}"
