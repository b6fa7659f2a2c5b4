"""Messages of every size around the frame length boundaries, over the WebSocket fast path, against
both real servers (their frames take the fast path; ours are built by ``encode_frames``)."""

from __future__ import annotations

import pytest

import geventio
from tests.servers import ServerFactory, ServerKind

#: Engine.IO puts "4" before a text message: text of n - 1 characters is a frame of n bytes
SIZES = [0, 1, 124, 125, 126, 127, 65534, 65535, 65536, 65537, 1 << 20]


@pytest.mark.parametrize("kind", ["python", "node"])
def test_every_length_form_arrives_intact(server_factory: ServerFactory, kind: ServerKind) -> None:
    handle = server_factory(kind, max_payload=4 << 20)
    builder = geventio.ClientBuilder(handle.url).timeout(10)
    with builder.build_websocket() as client:
        for size in SIZES:
            text = "".join(chr(0x61 + i % 26) for i in range(size))
            blob = bytes(i * 7 % 256 for i in range(size))
            for message in (text, blob, "é" * (size // 2)):
                client.send(message)
                echo = client.receive(10)
                assert type(echo) is type(message)
                assert echo == message, f"{kind}: {type(message).__name__} of {size}"
