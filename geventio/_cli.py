"""The ``geventio`` command line: ``serve``, ``connect`` and ``bench``.

``main(argv)`` parses the arguments, runs one subcommand on the gevent hub of the calling thread
and returns the process exit status; it never raises for a user's mistake. A mistake (a bad
option, a bad URL, a refused connection, a missing file) prints one line
``geventio: error: <message>`` to stderr, without a traceback.

Exit statuses (:data:`EXIT_STATUS`, which ends ``geventio --help``):

- **0**: success. ``serve`` stopped by SIGINT or SIGTERM; ``connect`` ended by the end of its
  input or by the server (``closed: server disconnect`` or ``closed: transport close``);
  ``bench`` ran without a failed client; ``--help`` and ``--version``.
- **1**: a failure. ``connect`` or ``bench`` could not open a session (no client at all, for
  ``bench``), or ``serve`` cannot listen on its address: one ``geventio: error:`` line.
  Also, without that line: a ``connect`` session that broke (``closed: ping timeout`` or
  ``closed: transport error`` on stderr), and a ``bench`` run in which any client failed (the
  failures are counted in its summary).
- **2**: a bad command line (an option, a URL, a CA file, a proxy URL), or ``serve`` without the
  ``server`` extra: one ``geventio: error:`` line.
- **130**: ``connect`` or ``bench`` ended by SIGINT (Ctrl-C); **143**: by SIGTERM. Either one
  disconnects first, without a traceback (``bench`` prints its summary so far). A SIGINT that
  comes before a command has installed its handlers gives 130 too, whatever the command.

Unlike the library, this program installs SIGINT and SIGTERM handlers (with
``gevent.signal_handler``, so the hub keeps running) for as long as a command runs.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable, Sequence

import gevent
import gevent.event

import geventio
from geventio import _cli_bench, _cli_connect
from geventio._cli_common import (
    PROG,
    USAGE_ERROR,
    CommandError,
    Parser,
    port_number,
    positive,
    print_error,
)
from geventio._url import normalize_path
from geventio.contrib.server import TRANSPORTS, start_server, url_of

__all__ = ["main"]

#: Exit status after SIGINT and SIGTERM (128 + the signal number, as shells report it).
INTERRUPTED = {signal.SIGINT: 130, signal.SIGTERM: 143}

#: The end of ``geventio --help``: the exit statuses (see this module's docstring).
EXIT_STATUS = """\
exit status:
  0    success; serve: stopped by SIGINT or SIGTERM; connect: the end of input, or the
       server closed the session; bench: no client failed
  1    connect, bench: a session could not be opened; connect: the session broke (ping
       timeout, transport error); bench: any client failed; serve: cannot listen
  2    a bad command line (option, URL, CA file, proxy URL); serve: no server extra
  130  connect, bench: interrupted by SIGINT (Ctrl-C); serve exits 0
  143  connect, bench: stopped by SIGTERM; serve exits 0
"""


def _transport_list(text: str) -> tuple[str, ...]:
    """An argparse type: a comma-separated list of ``polling`` and ``websocket``."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in TRANSPORTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of polling and websocket, got {text!r}"
        )
    return names


# =========================================================================
# serve
# =========================================================================


def _add_serve(commands: argparse._SubParsersAction[Parser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the embedded Engine.IO echo server",
        description=(
            "Run the embedded Engine.IO echo server (python-engineio on gevent), which sends every "
            "message back to its sender, until SIGINT or SIGTERM. Once it listens it prints one "
            "line: 'serving Engine.IO on http://HOST:PORT/PATH'. Needs the server extra: "
            "pip install 'geventio[server]'."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    serve.add_argument(
        "--port",
        type=port_number,
        default=4201,
        help="port to listen on, 0 for any free one (%(default)s)",
    )
    serve.add_argument(
        "--ping-interval",
        type=positive,
        default=25.0,
        metavar="SECONDS",
        help="seconds between the server's PINGs (%(default)s)",
    )
    serve.add_argument(
        "--ping-timeout",
        type=positive,
        default=20.0,
        metavar="SECONDS",
        help="seconds the server waits for each PONG (%(default)s)",
    )
    serve.add_argument(
        "--transports",
        type=_transport_list,
        default=TRANSPORTS,
        metavar="LIST",
        help="transports to offer, comma-separated (polling,websocket)",
    )
    serve.add_argument("--greeting", metavar="TEXT", help="a message sent to each new session")
    serve.add_argument("--path", default="/engine.io/", help="Engine.IO path (%(default)s)")
    serve.set_defaults(run=_serve, interruptible=False)


def _serve(args: argparse.Namespace) -> int:
    """Run the echo server until SIGINT or SIGTERM; return 0.

    Blocks the calling greenlet. The address line goes to stdout, flushed, once the socket
    listens.

    :raises CommandError: when the server extra is missing (status 2), or the address cannot be
        bound (status 1).
    """
    try:
        server = start_server(
            args.host,
            args.port,
            ping_interval=args.ping_interval,
            ping_timeout=args.ping_timeout,
            transports=args.transports,
            path=args.path,
            greeting=args.greeting,
        )
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("engineio", "geventwebsocket"):
            raise
        raise CommandError(
            "serve needs the server extra: pip install 'geventio[server]'", USAGE_ERROR
        ) from None
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {_reason(exc)}") from None
    stop = gevent.event.Event()
    handlers = [gevent.signal_handler(sig, stop.set) for sig in INTERRUPTED]
    try:
        print(f"serving Engine.IO on {url_of(server)}{normalize_path(args.path)}", flush=True)
        stop.wait()
    finally:
        for handler in handlers:
            handler.cancel()
        server.stop(timeout=1)
    return 0


def _reason(exc: OSError) -> str:
    """An OSError as its text alone (``[Errno 98] Address in use`` -> ``Address in use``)."""
    return exc.strerror or str(exc) or type(exc).__name__


# =========================================================================
# Dispatch
# =========================================================================


def _parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="A gevent-native Engine.IO (protocol v4) client: try it, serve, load-test.",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {geventio.__version__}")
    commands = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    _add_serve(commands)
    _cli_connect.add_parser(commands)
    _cli_bench.add_parser(commands)
    return parser


def _run_interruptible(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run ``run(args)`` in a greenlet that SIGINT and SIGTERM kill; return its exit status.

    On a signal the greenlet gets ``GreenletExit`` (its ``finally`` blocks disconnect what it
    opened) and the status is 130 (SIGINT) or 143 (SIGTERM).
    """
    received: list[signal.Signals] = []
    interrupted = gevent.event.Event()

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        interrupted.set()

    def guarded() -> int | BaseException:
        try:
            return run(args)
        except Exception as exc:  # handed to the main greenlet, not to the hub
            return exc

    handlers = [gevent.signal_handler(sig, on_signal, sig) for sig in INTERRUPTED]
    job = gevent.spawn(guarded)
    try:
        gevent.wait([job, interrupted], count=1)
        if not job.ready():
            job.kill(timeout=10)
        if received:
            return INTERRUPTED[received[0]]
        result = job.get()
    finally:
        job.kill(block=False)
        for handler in handlers:
            handler.cancel()
    if isinstance(result, BaseException):
        raise result
    status: int = result
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``geventio`` command line with ``argv`` (``sys.argv[1:]`` if ``None``).

    Blocks until the command is done and returns its exit status (0 on success). Errors the user
    can fix are printed as one line to stderr and turned into a status; only a bug raises.
    """
    try:
        args = _parser().parse_args(argv)
        if args.interruptible:
            return _run_interruptible(args.run, args)
        status: int = args.run(args)
        return status
    except CommandError as exc:
        print_error(str(exc))
        return exc.status
    except SystemExit as exc:  # argparse: --help, --version, a usage error (already printed)
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else USAGE_ERROR
    except KeyboardInterrupt:  # Ctrl-C before the handlers were installed
        return INTERRUPTED[signal.SIGINT]
