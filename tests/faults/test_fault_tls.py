"""TLS for both transports against both real servers (certificates made by trustme).

The servers start outside the bound; each bound covers the client's connect (and an echo where the
connect succeeds). A rejected certificate fails in the local handshake, long before ``timeout``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

import geventio
from geventio import ConnectError
from tests.faultkit import Bound
from tests.helpers import MODES, Mode, build
from tests.servers import ServerFactory, ServerKind


@dataclass
class Certs:
    ca: trustme.CA
    cert: str
    key: str
    client_ca: trustme.CA
    client_ca_pem: str
    wrong_cert: str
    wrong_key: str


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    tmp: Path = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp / "server.pem", tmp / "server.key"
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    client_ca = trustme.CA()
    client_ca_pem = tmp / "client-ca.pem"
    client_ca.cert_pem.write_to_path(str(client_ca_pem))
    wrong = ca.issue_cert("example.org")  # valid, but for another name
    wrong_cert, wrong_key = tmp / "wrong.pem", tmp / "wrong.key"
    wrong.cert_chain_pems[0].write_to_path(str(wrong_cert))
    wrong.private_key_pem.write_to_path(str(wrong_key))
    return Certs(
        ca, str(cert), str(key), client_ca, str(client_ca_pem), str(wrong_cert), str(wrong_key)
    )


def _context(certs: Certs, *, client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context()
    certs.ca.configure_trust(context)
    if client_cert:
        certs.client_ca.issue_cert("client@example.org").configure_cert(context)
    return context


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["python", "node"])
def test_tls_with_the_ca_in_tls_config(
    bound: Bound, server_factory: ServerFactory, certs: Certs, kind: ServerKind, mode: Mode
) -> None:
    """A certificate from the CA given in tls_config: connects and echoes text and binary."""
    handle = server_factory(kind, tls_cert=certs.cert, tls_key=certs.key)
    assert handle.url.startswith("https://")
    builder = geventio.ClientBuilder(handle.url).tls_config(_context(certs)).timeout(5)
    with bound(3.0), build(builder, mode) as client:
        client.send("over tls")
        assert client.receive(5) == "over tls"
        client.send(b"\x00binary")
        assert client.receive(5) == b"\x00binary"


@pytest.mark.parametrize("method", ["build_polling", "build_websocket"])
def test_self_signed_certificate_is_rejected_by_default(
    bound: Bound, server_factory: ServerFactory, certs: Certs, method: str
) -> None:
    """An unknown CA under the default context: ConnectError (verify failed), no status."""
    handle = server_factory("node", tls_cert=certs.cert, tls_key=certs.key)
    with (
        bound(2.0),
        pytest.raises(
            ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"
        ) as info,
    ):
        getattr(geventio.ClientBuilder(handle.url).timeout(5), method)()
    assert info.value.status is None


@pytest.mark.parametrize("method", ["build_polling", "build_websocket"])
def test_hostname_mismatch_is_rejected(
    bound: Bound, server_factory: ServerFactory, certs: Certs, method: str
) -> None:
    """A trusted certificate for another name: ConnectError (hostname mismatch)."""
    handle = server_factory("node", tls_cert=certs.wrong_cert, tls_key=certs.wrong_key)
    builder = geventio.ClientBuilder(handle.url).tls_config(_context(certs)).timeout(5)
    with bound(2.0), pytest.raises(ConnectError, match=r"match|mismatch|IP address"):
        getattr(builder, method)()


@pytest.mark.parametrize("method", ["build_polling", "build_websocket"])
def test_check_hostname_off_is_honoured_on_both_transports(
    bound: Bound, server_factory: ServerFactory, certs: Certs, method: str
) -> None:
    """A certificate for another name, check_hostname off: connects (the chain still verified)."""
    handle = server_factory("node", tls_cert=certs.wrong_cert, tls_key=certs.wrong_key)
    context = _context(certs)
    context.check_hostname = False
    builder = geventio.ClientBuilder(handle.url).tls_config(context).timeout(5)
    with bound(2.0), getattr(builder, method)() as client:
        client.send("names")
        assert client.receive(5) == "names"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["python", "node"])
def test_mutual_tls(
    bound: Bound, server_factory: ServerFactory, certs: Certs, kind: ServerKind, mode: Mode
) -> None:
    """Mutual TLS: connects with a client certificate; without one, ConnectError."""
    handle = server_factory(
        kind, tls_cert=certs.cert, tls_key=certs.key, client_ca=certs.client_ca_pem
    )
    builder = geventio.ClientBuilder(handle.url).timeout(5)
    with bound(3.0), build(builder.tls_config(_context(certs, client_cert=True)), mode) as client:
        client.send("mutual")
        assert client.receive(5) == "mutual"
    with bound(2.0), pytest.raises(ConnectError):
        build(builder.tls_config(_context(certs)), mode)
