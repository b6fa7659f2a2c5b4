"""The session-wide cache of default-configured test servers, one per kind (both families)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import pytest

from ._runner import NodeSetupError, ProcessHandle, ServerStartError

K = TypeVar("K")
H = TypeVar("H", bound=ProcessHandle)


class SessionServers(Generic[K, H]):
    """One default-configured server per kind, shared by the whole session.

    A server that a test stopped, killed (or that crashed) is transparently started again; a
    paused one is resumed. A server that failed to start keeps failing fast instead of retrying
    for every test.

    :param start: starts a default-configured server of a kind.
    """

    def __init__(self, start: Callable[[K], H]) -> None:
        self._start = start
        self._handles: dict[K, H] = {}
        self._failures: dict[K, str] = {}

    def get(self, kind: K) -> H:
        if kind in self._failures:
            pytest.fail(self._failures[kind], pytrace=False)
        handle = self._handles.get(kind)
        if handle is not None and handle.alive:
            handle.resume()
            return handle
        if handle is not None:
            handle.stop()
        try:
            handle = self._start(kind)
        except ServerStartError as exc:
            self._failures[kind] = start_failure(exc)
            pytest.fail(self._failures[kind], pytrace=False)
        self._handles[kind] = handle
        return handle

    def stop_all(self) -> None:
        for handle in self._handles.values():
            handle.stop()
        self._handles.clear()


def start_failure(exc: ServerStartError) -> str:
    """The failure message of a server that did not start (Node set-up problems named so)."""
    prefix = "node test server unavailable: " if isinstance(exc, NodeSetupError) else ""
    return f"{prefix}{exc}"
