"""A falsy on_error callback still runs when a scripted server breaks the protocol."""

from __future__ import annotations

from typing import Any

import pytest

import geventio
from geventio import CloseReason
from geventio._payload import SEPARATOR
from tests.faultkit import Bound
from tests.faults.dummyserver import OPEN, polling_script


class FalsyRecorder:
    """A callable recorder that is falsy (``__len__`` is 0), as a recorder class often is."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, arg: Any) -> None:
        self.calls.append(arg)

    def __len__(self) -> int:
        return 0


def test_a_falsy_on_error_is_called(bound: Bound) -> None:
    """on_error, registered alone as a falsy object, gets the server's protocol error."""
    recorder = FalsyRecorder()
    with polling_script(b"not an engine.io payload \xff") as server:
        with bound(2.0):
            client = (
                geventio.ClientBuilder(server.url).timeout(5).on_error(recorder).build_polling()
            )
        assert client.wait(5) is CloseReason.TRANSPORT_ERROR
        client.disconnect()
    assert len(recorder.calls) == 1
    assert isinstance(recorder.calls[0], geventio.ProtocolError)


@pytest.mark.parametrize("noops", [10, 300])
@pytest.mark.parametrize("last", ["9", "1"])
def test_a_handshake_body_broken_at_its_end_raises(bound: Bound, noops: int, last: str) -> None:
    """An invalid packet or a CLOSE after many NOOPs in the handshake body: build raises."""
    body = SEPARATOR.join([OPEN, *["6"] * noops, last]).encode()
    closes: list[CloseReason] = []
    with polling_script(handshake=body) as server, bound(2.0):
        builder = geventio.ClientBuilder(server.url).timeout(5).on_close(closes.append)
        expected = geventio.ProtocolError if last == "9" else geventio.EngineIOError
        with pytest.raises(expected):
            builder.build_polling()
