"""``geventio connect URL``: an interactive client, like wscat.

Each line read from stdin is sent as a text message (without its line ending; a last line
without one is sent too). Each message received is printed to stdout on its own line: text as
it is, binary as ``<binary N bytes: HEX>`` (the first 64 bytes, then ``...``). Status lines go to
stderr: ``connected (sid=..., transport=...)`` once open, and ``closed: <reason>`` at the end,
so stdout carries only messages.

On a terminal, control characters that the server sent (C0, DEL and C1, such as ``ESC``) are
shown escaped (``\\x1b``), so that a server cannot drive the terminal; the rest of the text,
non-ASCII included, is shown as it is. Into a pipe or a file, text is written raw.

End of input disconnects (after ``--wait`` seconds, in which replies are still printed) and
exits 0. A close by the server exits 0 (``server disconnect`` or ``transport close``), a broken
session 1 (``ping timeout``, ``transport error``).

stdin is read cooperatively: the reading greenlet waits on the hub for the descriptor to be
readable and only then reads it, so the session runs while the user types. The descriptor is not
switched to non-blocking mode: on a terminal, stdin shares its open file with stdout and stderr.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import gevent

import geventio
from geventio._cli_common import (
    FAILURE,
    add_client_options,
    describe,
    escape_controls,
    make_builder,
    open_client,
    seconds,
)

__all__ = ["add_parser", "format_message"]

#: A broken session exits 1; the server ending it exits 0.
FAILED = (geventio.CloseReason.PING_TIMEOUT, geventio.CloseReason.TRANSPORT_ERROR)
HEX_SHOWN = 64
CHUNK = 65536


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``connect`` subcommand to ``commands``."""
    parser = commands.add_parser(
        "connect",
        help="an interactive client: stdin lines out, messages in",
        description=(
            "Open an Engine.IO session and send each line of stdin as a text message; print each "
            "message received on a line of stdout (binary ones as <binary N bytes: HEX>). Status "
            "goes to stderr. End of input disconnects."
        ),
    )
    add_client_options(parser, default_transport="auto")
    parser.add_argument(
        "-w",
        "--wait",
        type=seconds,
        default=0.0,
        metavar="SECONDS",
        help="after the end of input, keep printing messages this long, then disconnect (0)",
    )
    parser.set_defaults(run=run, interruptible=True)


def run(args: argparse.Namespace) -> int:
    """Run the session until end of input or until the server ends it; return the exit status.

    Blocks the calling greenlet. Killing it (``GreenletExit``) disconnects first.

    :raises CommandError: when the options are bad or the session cannot be opened.
    """
    errors: list[geventio.EngineIOError] = []
    builder = make_builder(args).on_error(errors.append)
    client = open_client(builder, args.transport, args.url)
    reader = None
    terminal = _isatty(sys.stdout)
    try:
        _status(f"connected (sid={client.sid}, transport={client.transport})")
        reader = gevent.spawn(_send_lines, client, args.wait)
        try:
            for message in client:
                print(format_message(message, terminal=terminal), flush=True)
        except BrokenPipeError:  # stdout's reader went away (``| head -1``): stop quietly
            _silence_stdout()
            client.disconnect()
        reason = client.wait()
    finally:
        if reader is not None:
            reader.kill()
        client.disconnect()
    assert reason is not None
    detail = f": {describe(errors[-1])}" if errors and reason in FAILED else ""
    _status(f"closed: {reason.value}{detail}")
    return FAILURE if reason in FAILED else 0


def format_message(message: str | bytes, *, terminal: bool = False) -> str:
    """A received message as printed: text as it is, binary as ``<binary N bytes: HEX>``.

    :param terminal: the text goes to a terminal: escape its control characters
        (:func:`escape_controls`).
    """
    if isinstance(message, str):
        return escape_controls(message) if terminal else message
    shown = message[:HEX_SHOWN].hex()
    more = "..." if len(message) > HEX_SHOWN else ""
    return f"<binary {len(message)} bytes: {shown}{more}>"


def _status(line: str) -> None:
    """Print a status line to stderr; it may hold server text (the sid, an error)."""
    print(escape_controls(line) if _isatty(sys.stderr) else line, file=sys.stderr, flush=True)


def _isatty(stream: TextIO | None) -> bool:
    """Whether ``stream`` is a terminal (``False`` for ``None`` or a closed stream)."""
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):  # closed
        return False


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _send_lines(client: geventio.Client, wait: float) -> None:
    """Send each stdin line as a text message; at the end of input, wait, then disconnect.

    Runs in its own greenlet and ends quietly once the client is closed.
    """
    try:
        for line in _stdin_lines():
            try:
                client.send(line)
            except ValueError as exc:  # U+001E on polling, a lone surrogate: this line only
                print(f"geventio: line not sent: {exc}", file=sys.stderr, flush=True)
    except geventio.ConnectionClosed:
        return
    if wait > 0:
        client.wait(wait)
    client.disconnect()


def _stdin_lines() -> Iterator[str]:
    """Yield stdin's lines (decoded as UTF-8, line endings removed); blocks only this greenlet."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, ValueError, OSError):  # no stdin at all: an empty input
        return
    # Pipes, sockets and terminals can be waited on; files (and /dev/null) are always ready,
    # and epoll refuses them.
    pollable = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)
    watcher = gevent.get_hub().loop.io(fd, 1) if pollable else None
    pending = b""
    try:
        while True:
            if watcher is not None:
                gevent.get_hub().wait(watcher)
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                yield _decode(line)
        if pending:
            yield _decode(pending)
    finally:
        if watcher is not None:
            watcher.close()


def _decode(line: bytes) -> str:
    return line.removesuffix(b"\r").decode("utf-8", errors="replace")
