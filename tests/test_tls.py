"""TLS for both transports against both real servers (certificates made by trustme)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from helpers import MODES, Mode, build
from servers import ServerFactory, ServerKind

import geventio
from geventio import ConnectError


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
    server_factory: ServerFactory, certs: Certs, kind: ServerKind, mode: Mode
) -> None:
    handle = server_factory(kind, tls_cert=certs.cert, tls_key=certs.key)
    assert handle.url.startswith("https://")
    builder = geventio.ClientBuilder(handle.url).tls_config(_context(certs)).timeout(5)
    with build(builder, mode) as client:
        client.send("over tls")
        assert client.receive(5) == "over tls"
        client.send(b"\x00binary")
        assert client.receive(5) == b"\x00binary"


@pytest.mark.parametrize("method", ["build_polling", "build_websocket"])
def test_self_signed_certificate_is_rejected_by_default(
    server_factory: ServerFactory, certs: Certs, method: str
) -> None:
    handle = server_factory("node", tls_cert=certs.cert, tls_key=certs.key)
    with pytest.raises(ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        getattr(geventio.ClientBuilder(handle.url).timeout(5), method)()


@pytest.mark.parametrize("method", ["build_polling", "build_websocket"])
def test_hostname_mismatch_is_rejected(
    server_factory: ServerFactory, certs: Certs, method: str
) -> None:
    handle = server_factory("node", tls_cert=certs.wrong_cert, tls_key=certs.wrong_key)
    builder = geventio.ClientBuilder(handle.url).tls_config(_context(certs)).timeout(5)
    with pytest.raises(ConnectError, match=r"match|mismatch|IP address"):
        getattr(builder, method)()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["python", "node"])
def test_mutual_tls(
    server_factory: ServerFactory, certs: Certs, kind: ServerKind, mode: Mode
) -> None:
    handle = server_factory(
        kind, tls_cert=certs.cert, tls_key=certs.key, client_ca=certs.client_ca_pem
    )
    builder = geventio.ClientBuilder(handle.url).timeout(5)
    with build(builder.tls_config(_context(certs, client_cert=True)), mode) as client:
        client.send("mutual")
        assert client.receive(5) == "mutual"
    with pytest.raises(ConnectError):
        build(builder.tls_config(_context(certs)), mode)
