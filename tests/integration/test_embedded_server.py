"""The embedded echo server (``geventio.contrib.server``) in the test process itself."""

from __future__ import annotations

import engineio.packet
import pytest

import geventio
from geventio.contrib.server import start_server, url_of
from tests.helpers import MODES, Mode, build


@pytest.mark.parametrize("mode", MODES)
def test_text_is_echoed_verbatim_and_other_engineio_users_still_decode_json(mode: Mode) -> None:
    """Text that looks like JSON comes back byte for byte, while python-engineio (whose ``json``
    is one attribute for the whole process) still decodes JSON for anyone else in the process:
    its client reads the OPEN packet's ``sid`` with it. Before, a python-engineio or
    python-socketio client in a process that had started an embedded server failed to connect
    (``TypeError: string indices must be integers``)."""
    server = start_server(port=0)
    try:
        with build(geventio.ClientBuilder(url_of(server)), mode) as client:
            for text in ("[1,2]", "true", "null", '{"a":  1}', "12"):
                client.send(text)
                assert client.receive(5) == text
        decoded = engineio.packet.Packet(encoded_packet='0{"sid":"abc","upgrades":[]}')
        assert decoded.data == {"sid": "abc", "upgrades": []}
        assert engineio.packet.Packet(encoded_packet="4[1,2]").data == [1, 2]
    finally:
        server.stop(timeout=2)
