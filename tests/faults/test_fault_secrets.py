"""Secrets stay secret: no password, Authorization, Proxy-Authorization or Cookie value in any
repr, exception message or log line, on success and on failure.

Every secret below holds the marker ``s3cret``. Clients are built with secrets in the server URL's
user-info, in the proxy URL (with ``/``, ``@`` and ``:`` in the password), in the Authorization
and Cookie headers, and in cookies a scripted server sets; every geventio log record is captured
at DEBUG (tracebacks included). Each case also checks that the secret did go where it belongs (the
wire), so that its absence elsewhere means something.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from urllib.parse import quote

import pytest

import geventio
from geventio import ConnectError, EngineIOError
from geventio._options import Options
from tests.faultkit import Bound
from tests.faults.dummyserver import Conn, Server, cookie_script, polling_script
from tests.helpers import free_port

MARKER = "s3cret"
USER_PASSWORD = "url-pa55/w@rd:s3cret"
PROXY_PASSWORD = "pr0xy/p@ss:s3cret"
AUTHORIZATION = "Bearer auth-t0ken-s3cret"
COOKIE = "mine=cookie-s3cret"
SERVER_COOKIES = [
    "sid=server-s3cret; Path=/",
    "foreign=server-s3cret; Domain=other.org",
    'escaped="server-s3cret\\015\\012"',
    "control=server-s3cret\x7f",
]
PROXY_BASIC = base64.b64encode(f"bob:{PROXY_PASSWORD}".encode()).decode()
HEADERS = {"Authorization": AUTHORIZATION, "Cookie": COOKIE}
METHODS = ["build_polling", "build_websocket"]


def with_user(url: str, password: str = quote(USER_PASSWORD, safe="")) -> str:
    """``url`` with ``alice:<password>@`` in it (percent-encoded by default, as it should be)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://alice:{password}@{rest}"


def proxy_url(port: int, password: str = quote(PROXY_PASSWORD, safe="")) -> str:
    return f"http://bob:{password}@127.0.0.1:{port}"


class Secrets:
    """Collects every text a user may see; ``check()`` fails on any secret in them."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self._caplog = caplog
        self.texts: list[str] = []

    def see(self, *items: object) -> None:
        for item in items:
            self.texts += [str(item), repr(item)]
            if isinstance(item, BaseException):  # and what a traceback shows of it
                self.see(*(e for e in (item.__cause__, item.__context__) if e is not None))
                self.texts.append(str(getattr(item, "body", "")))

    def check(self) -> None:
        texts = [*self.texts, self._caplog.text]
        texts += [r.getMessage() for r in self._caplog.records]
        for text in texts:
            assert MARKER not in text, text
            assert PROXY_BASIC not in text, text


@pytest.fixture
def secrets(caplog: pytest.LogCaptureFixture) -> Iterator[Secrets]:
    caplog.set_level(logging.DEBUG, logger="geventio")
    found = Secrets(caplog)
    yield found
    found.check()


def _failure(secrets: Secrets, builder: geventio.ClientBuilder, method: str) -> EngineIOError:
    with pytest.raises(EngineIOError) as info:
        getattr(builder, method)()
    secrets.see(info.value)
    return info.value


@pytest.mark.parametrize("upgrade", [False, True], ids=["polling", "upgrade"])
def test_a_session_with_secrets_shows_none(bound: Bound, secrets: Secrets, upgrade: bool) -> None:
    """A session with secrets everywhere: none in reprs or logs, all of them on the wire."""
    with cookie_script(*SERVER_COOKIES, upgrade=upgrade) as server:
        builder = geventio.ClientBuilder(with_user(server.url)).headers(HEADERS).timeout(5)
        with bound(2.0):
            client = builder.build() if upgrade else builder.build_polling()
            secrets.see(client, client._session.options)
            server.wait_for(lambda: any("sid=" in r.target for r in server.requests))
            client.disconnect()
        secrets.see(client)
    later = next(r for r in server.requests if "sid=" in r.target)
    assert later.headers["authorization"] == AUTHORIZATION
    assert (
        later.headers["cookie"] == f'{COOKIE}; escaped="server-s3cret\\015\\012"; sid=server-s3cret'
    )


def test_options_and_builder_values_show_no_secret(secrets: Secrets) -> None:
    """The Options repr: URLs without credentials, secret header values as ***."""
    options = Options(
        url=with_user("https://example.org/", USER_PASSWORD),
        proxy=proxy_url(3128, PROXY_PASSWORD),
        headers={**HEADERS, "Proxy-Authorization": f"Basic {PROXY_BASIC}", "X-Trace": "t-1"},
    )
    secrets.see(options)
    assert "'X-Trace': 't-1'" in repr(options)
    assert "https://***@example.org/" in repr(options)
    assert "http://***@127.0.0.1:3128" in repr(options)


@pytest.mark.parametrize("method", METHODS)
def test_refused(bound: Bound, secrets: Secrets, method: str) -> None:
    """A refused port: ConnectError naming neither password nor header value."""
    url = with_user(f"http://127.0.0.1:{free_port()}")
    builder = geventio.ClientBuilder(url).headers(HEADERS).timeout(5).proxy(None)
    with bound(2.0):
        assert isinstance(_failure(secrets, builder, method), ConnectError)


@pytest.mark.parametrize("method", METHODS)
def test_http_error_status(bound: Bound, secrets: Secrets, method: str) -> None:
    """A 401 on the handshake: ConnectError with status; the secrets did reach the server."""

    def refuse(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.respond(401, "no entry")

    with Server(refuse) as server:
        builder = geventio.ClientBuilder(with_user(server.url)).headers(HEADERS).timeout(5)
        with bound(2.0):
            error = _failure(secrets, builder, method)
    assert isinstance(error, ConnectError)
    assert error.status == 401
    assert server.requests[0].headers["authorization"] == AUTHORIZATION


@pytest.mark.parametrize("method", METHODS)
def test_proxy_refusal(bound: Bound, secrets: Secrets, method: str) -> None:
    """A proxy answering 407: ConnectError naming the proxy without its credentials."""

    def refuse(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.respond(407, "credentials rejected")

    with Server(refuse) as proxy:
        builder = geventio.ClientBuilder(with_user(f"http://127.0.0.1:{free_port()}"))
        builder = builder.headers(HEADERS).timeout(5).proxy(proxy_url(proxy.port))
        with bound(2.0):
            error = _failure(secrets, builder, method)
    assert isinstance(error, ConnectError)
    assert error.status == 407
    if method == "build_websocket":  # a CONNECT tunnel: the proxy's refusal names it
        assert f"http://127.0.0.1:{proxy.port}" in str(error)
    assert proxy.requests[0].headers["proxy-authorization"] == f"Basic {PROXY_BASIC}"


@pytest.mark.parametrize("method", METHODS)
def test_unreachable_proxy(bound: Bound, secrets: Secrets, method: str) -> None:
    """A proxy that refuses the connection: ConnectError naming it without its credentials."""
    builder = geventio.ClientBuilder(with_user(f"http://127.0.0.1:{free_port()}"))
    builder = builder.headers(HEADERS).timeout(5).proxy(proxy_url(free_port()))
    with bound(2.0):
        assert isinstance(_failure(secrets, builder, method), ConnectError)


@pytest.mark.parametrize("password", [PROXY_PASSWORD, "pr0xy?s3cret", "pr0xy#s3cret"])
def test_a_bad_proxy_url_hides_its_password(
    secrets: Secrets, monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    """A proxy URL with an unencoded '/', '?' or '#' in its password: ValueError, or ConnectError
    from the environment, without the password."""
    with pytest.raises(ValueError, match=r"\*\*\*@127\.0\.0\.1:3128") as info:
        geventio.ClientBuilder("http://127.0.0.1:1/").proxy(proxy_url(3128, password))
    secrets.see(info.value)
    monkeypatch.setenv("http_proxy", proxy_url(3128, password))
    builder = geventio.ClientBuilder(f"http://127.0.0.1:{free_port()}").timeout(5)
    assert "from the environment" in str(_failure(secrets, builder, "build_polling"))


@pytest.mark.parametrize("password", [USER_PASSWORD, "pa55?s3cret", "pa55#s3cret", "pa55:s3cret"])
def test_a_bad_server_url_hides_its_password(secrets: Secrets, password: str) -> None:
    """A server URL with an unencoded password: ValueError, or ConnectError, never showing it."""
    url = with_user(f"http://127.0.0.1:{free_port()}/", password)
    try:
        builder = geventio.ClientBuilder(url).timeout(5)
    except ValueError as exc:
        secrets.see(exc)
        return
    secrets.see(_failure(secrets, builder, "build_polling"))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["Authorization", "Cookie"])
def test_a_header_value_with_a_line_break_is_refused_unseen(
    bound: Bound, secrets: Secrets, method: str, name: str
) -> None:
    """A token read with its trailing newline: ValueError naming the header, not its value."""
    bad = {name: f"{HEADERS[name]}\n"}
    with polling_script() as server:
        with pytest.raises(ValueError, match=name) as given:  # refused by the builder at once
            geventio.ClientBuilder(server.url).headers(bad)
        builder = geventio.ClientBuilder(server.url).headers(lambda: bad)  # or at each connect
        with bound(2.0), pytest.raises(ValueError, match=name) as info:
            getattr(builder.timeout(5), method)()
    secrets.see(given.value, info.value)
    assert not server.requests  # nothing half-sent


def test_a_failure_after_the_open_logs_no_secret(bound: Bound, secrets: Secrets) -> None:
    """A 500 on a long-poll: the close is logged (with the error) and shows no secret."""

    def fail(conn: Conn) -> None:
        conn.respond(500, "boom")

    with polling_script(fail) as server:
        builder = geventio.ClientBuilder(with_user(server.url)).headers(HEADERS).timeout(5)
        errors: list[EngineIOError] = []
        with bound(2.0), builder.on_error(errors.append).build_polling() as client:
            client.wait(5)
        secrets.see(client, *errors)
    assert errors
    assert any("closing after an error" in r.getMessage() for r in secrets._caplog.records)
