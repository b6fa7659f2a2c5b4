"""The cookie jar alone: a browser's storage and retrieval rules (RFC 6265), no I/O.

Every case sets cookies as a response to a request for one URL and reads the ``Cookie`` header the
jar would send on a request for another (ws and wss URLs are judged as http and https).
"""

from __future__ import annotations

import logging

import pytest

from geventio._cookies import MAX_COOKIE_SIZE, MAX_COOKIES, CookieJar
from geventio._cookies import parse_cookie_date as parse_date
from geventio._headers import checked_headers, request_headers
from geventio._url import parse_url

NOW = 1_800_000_000.0  # 2027-01-15
PAST = "Thu, 01 Jan 1970 00:00:00 GMT"
FUTURE = "Fri, 01 Jan 2100 00:00:00 GMT"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def jar_with(url: str, *set_cookies: str, clock: Clock | None = None) -> CookieJar:
    jar = CookieJar(clock or Clock())
    jar.update(parse_url(url), list(set_cookies))
    return jar


def sent(jar: CookieJar, url: str) -> str | None:
    return jar.header(parse_url(url))


# -- Domain ---------------------------------------------------------------------------------


def test_a_cookie_without_domain_is_host_only() -> None:
    jar = jar_with("http://www.example.com/", "a=1")
    assert sent(jar, "http://www.example.com/") == "a=1"
    assert sent(jar, "http://WWW.Example.COM:8080/") == "a=1"  # hosts compare without case/port
    assert sent(jar, "http://sub.www.example.com/") is None
    assert sent(jar, "http://example.com/") is None


@pytest.mark.parametrize("domain", ["example.com", ".example.com", "EXAMPLE.com"])
def test_a_domain_cookie_goes_to_the_domain_and_its_subdomains(domain: str) -> None:
    jar = jar_with("http://www.example.com/", f"a=1; Domain={domain}")
    for url in ("http://example.com/", "http://www.example.com/", "http://a.b.example.com/"):
        assert sent(jar, url) == "a=1", url
    assert sent(jar, "http://notexample.com/") is None
    assert sent(jar, "http://example.org/") is None


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("http://www.example.com/", "other.org"),  # foreign
        ("http://www.example.com/", "sub.www.example.com"),  # a subdomain, not a parent
        ("http://www.example.com/", "ample.com"),  # a suffix, not a parent domain
        ("http://www.example.com/", "com"),  # a top-level domain
        ("http://127.0.0.1/", "0.0.1"),  # IP addresses have no parent domain
        ("http://127.0.0.1/", "127.0.0.2"),
    ],
)
def test_a_foreign_domain_is_refused(url: str, domain: str) -> None:
    jar = jar_with(url, f"a=1; Domain={domain}", "b=2")
    assert len(jar) == 1
    assert sent(jar, url) == "b=2"
    assert sent(jar, f"http://{domain}/") is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_domain_equal_to_the_host_is_accepted(host: str) -> None:
    """localhost and IP addresses included (http.cookiejar drops ``Domain=localhost``)."""
    jar = jar_with(f"http://{host}:8080/", f"a=1; Domain={host.strip('[]')}")
    assert sent(jar, f"http://{host}:8080/") == "a=1"


# -- Path -----------------------------------------------------------------------------------


def test_path_rules() -> None:
    jar = jar_with(
        "http://h/engine.io/",
        "default=1",  # default path: /engine.io
        "exact=2; Path=/engine.io/",
        "root=3; Path=/",
        "other=4; Path=/other",
        "prefix=5; Path=/engine",  # /engine.io/ is not below /engine
        "relative=6; Path=engine.io",  # not absolute: the default path
    )
    # the longest path first, then in order of creation
    assert sent(jar, "http://h/engine.io/") == "exact=2; default=1; relative=6; root=3"
    assert sent(jar, "http://h/engine.io/x/") == "exact=2; default=1; relative=6; root=3"
    assert sent(jar, "http://h/other/x/") == "other=4; root=3"
    assert sent(jar, "http://h/engine/") == "prefix=5; root=3"
    assert sent(jar, "http://h/socket.io/") == "root=3"


# -- Secure ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["https", "wss"])
def test_a_secure_cookie_goes_over_https_and_wss_only(scheme: str) -> None:
    jar = jar_with(f"{scheme}://h/", "s=1; Secure", "p=2")
    assert sent(jar, "https://h/") == "s=1; p=2"
    assert sent(jar, "wss://h/") == "s=1; p=2"
    assert sent(jar, "http://h/") == "p=2"
    assert sent(jar, "ws://h/") == "p=2"


@pytest.mark.parametrize("scheme", ["http", "ws"])
def test_a_secure_cookie_set_over_http_is_refused(scheme: str) -> None:
    jar = jar_with(f"{scheme}://h/", "s=1; Secure", "p=2")
    assert sent(jar, "https://h/") == "p=2"


@pytest.mark.parametrize(
    ("url", "header", "kept"),
    [
        ("https://h/", "__Secure-a=1; Secure", True),
        ("https://h/", "__Secure-a=1", False),
        ("https://h/", "__Host-a=1; Secure; Path=/", True),
        ("https://h/", "__Host-a=1; Secure; Path=/; Domain=h", False),
        ("https://h/x/", "__Host-a=1; Secure", False),  # default path /x
    ],
)
def test_name_prefixes(url: str, header: str, kept: bool) -> None:
    assert len(jar_with(url, header)) == int(kept)


# -- Expiry ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "deletion",
    [
        f"a=deleted; Expires={PAST}",
        "a=; Max-Age=0",
        "a=x; Max-Age=-5",
        f"a=x; Max-Age=0; Expires={FUTURE}",  # Max-Age wins
        f"a=x; Expires={FUTURE}; Max-Age=0",
    ],
)
def test_an_expiry_in_the_past_deletes_the_cookie(deletion: str) -> None:
    jar = jar_with("http://h/", "a=1", "b=2", deletion)
    assert sent(jar, "http://h/") == "b=2"
    assert len(jar) == 1


def test_a_deletion_needs_the_same_path() -> None:
    jar = jar_with("http://h/e/", "a=1; Path=/", "a=deleted; Max-Age=0")  # default path /e
    assert sent(jar, "http://h/e/") == "a=1"


@pytest.mark.parametrize(
    "header",
    [f"a=1; Max-Age=100; Expires={PAST}", "a=1; Max-Age=abc", "a=1; Max-Age=5x", "a=1; Expires=no"],
)
def test_max_age_wins_and_bad_attributes_are_ignored(header: str) -> None:
    assert sent(jar_with("http://h/", header), "http://h/") == "a=1"


def test_an_expired_cookie_is_no_longer_sent() -> None:
    clock = Clock()
    jar = jar_with("http://h/", "short=1; Max-Age=10", f"long=2; Expires={FUTURE}", clock=clock)
    assert sent(jar, "http://h/") == "short=1; long=2"
    clock.now += 9.5
    assert sent(jar, "http://h/") == "short=1; long=2"
    clock.now += 0.5  # the cached header must not outlive the cookie
    assert sent(jar, "http://h/") == "long=2"
    assert len(jar) == 1


# -- Values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        '"quoted value"',
        '{"user":"ann","roles":["a","b"]}',
        '"x\\015\\012Evil: 1"',  # octal escapes stay escapes: never a CR LF
        'a\\\\b\\"c',
        "=b64==",
        "",
    ],
)
def test_values_are_kept_verbatim(value: str) -> None:
    jar = jar_with("http://h/", f"io={value}; Path=/")
    assert sent(jar, "http://h/") == f"io={value}"


@pytest.mark.parametrize(
    "header",
    [
        "io=x\r\nEvil: 1",
        "io=x\nEvil: 1",
        "io=a\x00b",
        "io=a\x01b",
        "io=a\x7fb",
        "io=ok; Path=/\r\nEvil: 1",
        "io=caf\u00e9\u20ac",  # not Latin-1: cannot go on the wire as it came
        "novalue",
        "=nameless",
    ],
)
def test_an_unsafe_or_malformed_set_cookie_is_ignored(header: str) -> None:
    jar = jar_with("http://h/", header, "good=1")
    assert sent(jar, "http://h/") == "good=1"


def test_a_replaced_cookie_keeps_its_place() -> None:
    jar = jar_with("http://h/", "a=1", "b=2", "a=3")
    assert sent(jar, "http://h/") == "a=3; b=2"


def test_size_limits() -> None:
    big = "v" * MAX_COOKIE_SIZE
    assert len(jar_with("http://h/", f"a={big}")) == 0
    many = [f"c{i}=1" for i in range(MAX_COOKIES + 5)]
    jar = jar_with("http://h/", *many)
    assert len(jar) == MAX_COOKIES
    assert (sent(jar, "http://h/") or "").startswith("c5=1; c6=1")  # the oldest went first


def test_the_header_is_cached_until_the_jar_changes() -> None:
    jar = jar_with("http://h/", "a=1")
    endpoint = parse_url("http://h/")
    first = jar.header(endpoint)
    jar.update(endpoint, [])  # a response without Set-Cookie, as most polls are
    assert jar.header(endpoint) is first
    jar.update(endpoint, ["b=2"])
    assert jar.header(endpoint) == "a=1; b=2"


def test_log_lines_never_hold_a_value(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="geventio")
    jar_with(
        "http://h/",
        "s=secret-one\r\n",
        "t=secret-two; Domain=other.org",
        "u=secret-three; Secure",
        f"v=secret-four{'x' * MAX_COOKIE_SIZE}",
    )
    assert len(caplog.records) == 4
    assert "secret" not in caplog.text


# -- request_headers ------------------------------------------------------------------------


def test_the_users_cookie_header_comes_first() -> None:
    jar = jar_with("http://h/", "a=1")
    endpoint = parse_url("http://h/")
    headers = request_headers({"cookie": "mine=1", "X": "y"}, jar, endpoint)
    assert headers == {"cookie": "mine=1; a=1", "X": "y"}
    assert request_headers({}, jar, endpoint) == {"Cookie": "a=1"}
    assert request_headers({"X": "y"}, CookieJar(), endpoint) == {"X": "y"}


@pytest.mark.parametrize("name", ["Authorization", "Cookie", "X-Token"])
def test_an_unsafe_header_value_is_refused_without_showing_it(name: str) -> None:
    with pytest.raises(ValueError, match=name) as info:  # the one check, before any request
        checked_headers({name: "Bearer hunter2\n"})
    assert "hunter2" not in str(info.value)


# -- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784111777.0),  # RFC 1123
        ("Sunday, 06-Nov-94 08:49:37 GMT", 784111777.0),  # RFC 850
        ("Sun Nov  6 08:49:37 1994", 784111777.0),  # asctime
        ("06 nov 1994 8:49:37", 784111777.0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("Wed, 01 Jan 2048 00:00:00 GMT", 2461449600.0),
        ("Wed, 01-Jan-48 00:00:00 GMT", 2461449600.0),  # 2-digit years below 70 are 20xx
        ("Sun, 30 Feb 1994 08:49:37 GMT", None),
        ("Sun, 06 Nov 1600 08:49:37 GMT", None),
        ("Sun, 06 Nov 1994 24:00:00 GMT", None),
        ("Sun, 06 Nov 1994", None),
        ("tomorrow", None),
        ("", None),
    ],
)
def test_cookie_dates(text: str, expected: float | None) -> None:
    assert parse_date(text) == expected
