"""HTTP proxies: which one a client uses, and the bytes of a CONNECT tunnel. No I/O here.

A client goes through an HTTP proxy when the builder says so (``ClientBuilder.proxy``) or, by
default, when the environment does, as curl and requests read it:

- ``http_proxy`` / ``HTTP_PROXY`` for ``http`` and ``ws`` URLs, ``https_proxy`` /
  ``HTTPS_PROXY`` for ``https`` and ``wss`` URLs. The variables are read exactly as the standard
  library's ``urllib.request.getproxies_environment()`` (and so requests) reads them: the
  lowercase name wins, even set to an empty value, which means "no proxy" (``http_proxy=""``
  with ``HTTP_PROXY=http://p:1`` connects directly); an empty uppercase one is as unset. A blank
  value (only spaces) counts as empty. In a CGI process (``REQUEST_METHOD`` is set) ``HTTP_PROXY``
  is ignored: there it may come from a client's ``Proxy:`` header ("httpoxy"). ``ALL_PROXY`` is
  not read: it is most often a SOCKS proxy, which geventio does not speak;
- ``no_proxy`` / ``NO_PROXY`` (read the same way): hosts reached directly, a comma-separated
  list of names (a name also covers its subdomains; a leading ``.`` or ``*.`` is ignored), IP
  addresses, CIDR networks, each optionally with ``:port``; ``*`` alone means every host.

Polling over ``http`` sends absolute-form requests to the proxy; everything else (``ws``, ``wss``,
polling over ``https``) goes through a ``CONNECT`` tunnel. Credentials in the proxy URL
(``http://user:password@proxy:3128``) become a ``Proxy-Authorization: Basic`` header.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from geventio._redact import redact
from geventio._url import bracket

__all__ = [
    "Proxy",
    "TunnelReply",
    "parse_proxy",
    "proxy_environment",
    "select_proxy",
]

#: The longest CONNECT reply head accepted (status line and headers).
MAX_REPLY_HEAD = 16 * 1024


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy: where it is, and the ``Proxy-Authorization`` value if it has credentials."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)  # the credentials, encoded

    @property
    def display(self) -> str:
        """``http://host:port``, without credentials (for messages and logs)."""
        return f"http://{bracket(self.host)}:{self.port}"

    def headers(self) -> dict[str, str]:
        """The headers every request to the proxy carries."""
        return {"Proxy-Authorization": self.authorization} if self.authorization else {}

    def connect_request(self, host: str, port: int) -> bytes:
        """The ``CONNECT`` request that opens a tunnel to ``host:port``."""
        authority = f"{bracket(host)}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        lines += [f"{name}: {value}" for name, value in self.headers().items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_proxy(url: str) -> Proxy:
    """A :class:`Proxy` from ``http://[user:password@]host[:port]`` (``host:port`` alone too).

    The port defaults to 80, as in urllib3 and requests.

    :raises ValueError: for another scheme (``https``, ``socks5`` ...), no host or a bad port.
    """
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    shown = redact(text)
    if parts.scheme.lower() != "http":
        raise ValueError(f"unsupported proxy {shown!r}: only http:// proxies are supported")
    if "@" in text and "@" not in parts.netloc:
        raise ValueError(f"bad proxy URL {shown!r}: percent-encode '/', '?' and '#' in credentials")
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError(f"bad port in proxy URL {shown!r}") from None
    if not parts.hostname:
        raise ValueError(f"no host in proxy URL {shown!r}")
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
    return Proxy(parts.hostname, port, authorization)


def select_proxy(
    host: str,
    port: int,
    secure: bool,
    *,
    configured: str | None,
    from_env: bool,
    no_proxy: str | None,
    environ: Mapping[str, str],
) -> Proxy | None:
    """The proxy for one server, or ``None`` to connect directly.

    :param configured: the builder's proxy URL (used when ``from_env`` is false).
    :param from_env: read the proxy and ``NO_PROXY`` from ``environ`` (the builder was not told).
    :param no_proxy: the builder's list of hosts reached directly, in ``NO_PROXY``'s syntax.
    :raises ValueError: for a proxy URL :func:`parse_proxy` refuses.
    """
    if from_env:
        found = proxy_environment(environ)
        configured = found.get("https" if secure else "http")
        no_proxy = found.get("no")
    if not configured:
        return None
    if no_proxy and bypasses(host, port, no_proxy.replace(" ", ",").split(",")):
        return None
    return parse_proxy(configured)


def proxy_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``<scheme>_proxy`` variables of ``environ`` as ``{scheme: value}`` (``no`` too).

    The rules of ``urllib.request.getproxies_environment()``, over any mapping: any case of
    the name is read, then the names ending in lowercase ``_proxy`` are read again and win; an
    empty (or blank) one of those removes the scheme. In a CGI process (``REQUEST_METHOD``),
    only a lowercase ``http_proxy`` gives ``http``.
    """
    found: dict[str, str] = {}
    for name, value in environ.items():
        if value.strip() and name.lower().endswith("_proxy"):
            found[name.lower()[: -len("_proxy")]] = value
    if "REQUEST_METHOD" in environ:  # CGI: HTTP_PROXY may be a client's Proxy: header
        found.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy"):
            scheme = name.lower()[: -len("_proxy")]
            if value.strip():
                found[scheme] = value
            else:
                found.pop(scheme, None)
    return found


def bypasses(host: str, port: int, entries: Iterable[str]) -> bool:
    """Whether ``NO_PROXY``-style ``entries`` say ``host:port`` is reached directly."""
    host = host.lower().strip("[]")
    address = _ip(host)
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry, wanted_port = _split_port(entry)
        if wanted_port is not None and wanted_port != port:
            continue
        if address is not None and "/" in entry:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if address in network:
                return True
            continue
        entry = entry.removeprefix("*").lstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """``("host", port)`` from ``host:port`` or ``[v6]:port``; a bare IPv6 address has none."""
    if entry.startswith("["):
        address, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
        return address, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        name, port = entry.split(":")
        return name, int(port) if port.isdigit() else None
    return entry, None


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class TunnelReply:
    """Parses a proxy's answer to ``CONNECT``: feed bytes until :attr:`status` is set.

    :ivar status: the HTTP status once the head is complete, else ``None``.
    :ivar reason: its reason phrase.
    :ivar content_length: the ``Content-Length`` of a refusal's body, if given.
    :ivar rest: the bytes received after the head.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self.status: int | None = None
        self.reason = ""
        self.content_length: int | None = None
        self.rest = b""

    def feed(self, data: bytes) -> None:
        """Add received bytes.

        :raises ValueError: for a head that is not HTTP/1.x or is over :data:`MAX_REPLY_HEAD`.
        """
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end == -1:
            if len(self._buffer) > MAX_REPLY_HEAD:
                raise ValueError("the proxy's reply head is too long")
            return
        head, self.rest = self._buffer[:end].decode("latin-1"), self._buffer[end + 4 :]
        status_line, *header_lines = head.split("\r\n")
        version, _, remainder = status_line.partition(" ")
        code, _, self.reason = remainder.partition(" ")
        if not version.startswith("HTTP/1.") or not (code.isdigit() and len(code) == 3):
            raise ValueError(f"not an HTTP reply from the proxy: {status_line[:100]!r}")
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                self.content_length = int(value.strip())
        self.status = int(code)
