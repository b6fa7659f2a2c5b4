"""What the ``geventio`` subcommands share: errors, option types, and opening a client.

Nothing here blocks except :func:`open_client`, which connects.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

import geventio
from geventio._builder import BUILDS
from geventio._redact import redact

__all__ = [
    "FAILURE",
    "USAGE_ERROR",
    "CommandError",
    "Parser",
    "add_client_options",
    "escape_controls",
    "make_builder",
    "number_type",
    "open_client",
    "port_number",
    "positive",
    "positive_int",
    "print_error",
    "seconds",
]

PROG = "geventio"

Number = TypeVar("Number", int, float)

#: Exit status for a bad command line (as argparse uses) and for a failed connection.
USAGE_ERROR = 2
FAILURE = 1


class CommandError(Exception):
    """A mistake to report as ``geventio: error: <message>`` and exit with ``status``."""

    def __init__(self, message: str, status: int = FAILURE) -> None:
        super().__init__(message)
        self.status = status


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one ``geventio: error:`` line (no usage block).

    :raises SystemExit: with status 2 on a usage error, as argparse does.
    """

    def error(self, message: str) -> NoReturn:
        print_error(message)
        sys.exit(USAGE_ERROR)


#: ``str.translate`` table: each control character (C0, DEL, C1) to its ``\xNN`` escape.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}


def escape_controls(text: str) -> str:
    r"""``text`` with each control character (C0, DEL, C1: ``ESC``, ``CR``, ``BEL``, ``CSI``...)
    written as ``\xNN``; printable text, non-ASCII included, is kept as it is."""
    return text.translate(_CONTROLS)


def print_error(message: str) -> None:
    """Print ``geventio: error: <message>`` to stderr, on exactly one line.

    Runs of whitespace become one space; other control characters are escaped.
    """
    message = escape_controls(" ".join(str(message).split()))
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def number_type(
    convert: Callable[[str], Number], holds: Callable[[Number], bool], unmet: str, what: str
) -> Callable[[str], Number]:
    """An argparse type: ``convert(text)``, a value for which ``holds`` is true.

    :param unmet: the error's text when ``holds`` is false (``"<unmet>: '<text>'"``).
    :param what: what ``convert`` wants (``"not <what>: '<text>'"`` when it raises ValueError).
    """

    def parse(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not holds(value):  # a nan fails every comparison: rejected too
            raise argparse.ArgumentTypeError(f"{unmet}: {text!r}")
        return value

    return parse


#: An argparse type: a float greater than 0.
positive = number_type(float, lambda value: value > 0, "must be greater than 0", "a number")
#: An argparse type: a float of at least 0.
seconds = number_type(float, lambda value: value >= 0, "must not be negative", "a number")
#: An argparse type: an integer of at least 1.
positive_int = number_type(int, lambda value: value >= 1, "must be at least 1", "an integer")
#: An argparse type: a TCP port, 0 included (any free port).
port_number = number_type(
    int, lambda value: 0 <= value <= 65535, "not a port number", "a port number"
)


def _pair(separator: str, what: str) -> Callable[[str], tuple[str, str]]:
    """An argparse type for ``NAME<separator>VALUE`` (surrounding blanks stripped)."""

    def parse(text: str) -> tuple[str, str]:
        name, found, value = text.partition(separator)
        if not found or not name.strip():
            # only the first word: the rest may be a secret (``-H 'Authorization Bearer x'``)
            first = text.split(maxsplit=1)[0] if text.strip() else text
            shown = repr(first) + (" followed by more" if first != text else "")
            raise argparse.ArgumentTypeError(f"expected {what}, got {shown}")
        return name.strip(), value.strip()

    return parse


def add_client_options(parser: argparse.ArgumentParser, *, default_transport: str) -> None:
    """Add the URL and the options every client command takes."""
    parser.add_argument("url", metavar="URL", help="server URL: http, https, ws or wss")
    parser.add_argument(
        "--transport",
        choices=tuple(BUILDS),
        default=default_transport,
        help=(
            "auto: polling handshake, then upgrade when offered; polling: never upgrade; "
            "websocket: WebSocket only (default: %(default)s)"
        ),
    )
    parser.add_argument(
        "-H",
        "--header",
        type=_pair(":", "'Name: value'"),
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an HTTP header on every request and the WebSocket handshake (repeatable)",
    )
    parser.add_argument(
        "-q",
        "--query",
        type=_pair("=", "key=value"),
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a query parameter on every request (repeatable)",
    )
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--ca", metavar="FILE", help="verify the server's certificate with this CA")
    tls.add_argument(
        "--insecure", action="store_true", help="do not verify the server's TLS certificate"
    )
    proxy = parser.add_mutually_exclusive_group()
    proxy.add_argument(
        "--proxy",
        metavar="URL",
        help="an HTTP proxy, http://[user:password@]host[:port] (default: HTTP_PROXY, "
        "HTTPS_PROXY and NO_PROXY from the environment)",
    )
    proxy.add_argument(
        "--no-proxy", action="store_true", help="connect directly, whatever the environment says"
    )
    parser.add_argument(
        "--timeout",
        type=positive,
        default=10.0,
        metavar="SECONDS",
        help="bound on each step of connecting (%(default)s)",
    )


def make_builder(args: argparse.Namespace) -> geventio.ClientBuilder:
    """A ClientBuilder for the options of :func:`add_client_options`; does not connect.

    :raises CommandError: (status 2) for a bad URL, header or query parameter, or a CA file
        that cannot be read.
    """
    try:
        builder = geventio.ClientBuilder(args.url)
    except ValueError as exc:
        raise CommandError(f"bad URL {redact(args.url)!r}: {exc}", USAGE_ERROR) from None
    try:
        builder = builder.headers(dict(args.header)).query(dict(args.query))
    except ValueError as exc:  # a header or query parameter that cannot be sent
        raise CommandError(str(exc), USAGE_ERROR) from None
    builder = builder.timeout(args.timeout)
    if args.proxy is not None or args.no_proxy:
        try:
            builder = builder.proxy(args.proxy)
        except ValueError as exc:
            raise CommandError(str(exc), USAGE_ERROR) from None
    if args.ca is not None:
        try:
            builder = builder.tls_config(ssl.create_default_context(cafile=args.ca))
        except OSError as exc:  # ssl.SSLError too: not a PEM certificate
            reason = exc.strerror or getattr(exc, "reason", None) or str(exc)
            raise CommandError(f"cannot use CA file {args.ca!r}: {reason}", USAGE_ERROR) from None
    elif args.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        builder = builder.tls_config(context)
    return builder


def open_client(builder: geventio.ClientBuilder, transport: str, url: str) -> geventio.Client:
    """Open a session as ``--transport`` says; blocks the calling greenlet until it is open.

    :raises CommandError: (status 1) when the session cannot be opened.
    """
    try:
        return BUILDS[transport](builder)
    except geventio.EngineIOError as exc:
        raise CommandError(f"cannot connect to {redact(url)}: {describe(exc)}") from None


def describe(exc: BaseException) -> str:
    """An error as one short line: its text, or its type when it has none."""
    text = " ".join(str(exc).split())
    if isinstance(exc, geventio.ConnectTimeout) and "time" not in text.lower():
        text = f"timed out: {text}"
    return text or type(exc).__name__
