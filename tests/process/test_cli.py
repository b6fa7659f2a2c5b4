"""The ``geventio`` command line, run as real subprocesses against real servers."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trustme

import geventio
from geventio._cli_common import print_error
from geventio._cli_connect import format_message
from geventio._stats import percentile
from tests.helpers import LineReader, stop_process
from tests.servers import ServerFactory, ServerHandle

GEVENTIO = [sys.executable, "-m", "geventio"]
SERVING = re.compile(r"^serving Engine\.IO on (http://127\.0\.0\.1:(\d+)/engine\.io/)$")
ERROR = "geventio: error: "


def run_cli(*args: str, stdin: str = "", timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run ``python -m geventio ARGS`` to completion; fail the test after ``timeout``."""
    return subprocess.run(
        [*GEVENTIO, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], status: int) -> str:
    """The command failed with ``status`` and said why in one ``geventio: error:`` line."""
    assert result.returncode == status, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(ERROR), result.stderr
    return lines[0]


@contextmanager
def process(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], LineReader, LineReader]]:
    """``python -m geventio ARGS`` with piped stdio: yields it and line readers of its stdout
    and stderr; stops it afterwards if it still runs."""
    proc = subprocess.Popen(
        [*GEVENTIO, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        yield proc, LineReader(proc.stdout), LineReader(proc.stderr)
    finally:
        stop_process(proc)


def finish(
    proc: subprocess.Popen[bytes], sig: signal.Signals | None = None
) -> tuple[int, str, str]:
    """Send ``sig`` (or close stdin); return the exit status and the rest of stdout and stderr."""
    if sig is not None:  # stdin stays open until the process has exited
        proc.send_signal(sig)
        proc.wait(timeout=15)
    out, err = proc.communicate(timeout=15)  # closes stdin: the end of input
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def echo_server() -> Iterator[str]:
    """``geventio serve --port 0 --greeting hi`` in a subprocess; yields its URL."""
    with process("serve", "--port", "0", "--greeting", "hi") as (proc, out, _):
        match = SERVING.match(out.next())
        assert match
        yield match.group(1)
        status, rest, err = finish(proc, signal.SIGTERM)
        # stderr may hold python-engineio's own log ("Session is disconnected" after polling)
        assert (status, rest) == (0, ""), err
        assert "Traceback" not in err


# =========================================================================
# serve
# =========================================================================


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_echoes_until_a_signal_then_exits_quietly(sig: signal.Signals) -> None:
    with process("serve", "--port", "0", "--greeting", "hi there") as (proc, out, _):
        line = out.next()
        match = SERVING.match(line)
        assert match, line
        with geventio.ClientBuilder(match.group(1)).timeout(5).build() as client:
            assert client.transport == "websocket"
            assert client.receive(timeout=5) == "hi there"
            client.send("hello")
            client.send(b"\x00\x01")
            assert client.receive(timeout=5) == "hello"
            assert client.receive(timeout=5) == b"\x00\x01"
        assert finish(proc, sig) == (0, "", "")  # nothing but the address line


def test_serve_options_reach_the_handshake() -> None:
    args = ("--transports", "polling", "--ping-interval", "3", "--ping-timeout", "2")
    with process("serve", "--port", "0", "--path", "socket", *args) as (proc, out, _):
        match = re.match(r"serving Engine\.IO on (http://127\.0\.0\.1:\d+/socket/)$", out.next())
        assert match
        with geventio.ClientBuilder(match.group(1)).timeout(5).build() as client:
            # python-engineio still offers the upgrade, but refuses the WebSocket
            assert client.transport == "polling"
            assert (client.handshake.ping_interval, client.handshake.ping_timeout) == (3.0, 2.0)
            client.send("[1]")  # verbatim, never JSON-decoded
            assert client.receive(timeout=5) == "[1]"
        # stderr has python-engineio's log of the refused WebSocket: "Invalid transport"
        assert finish(proc, signal.SIGTERM)[:2] == (0, "")


def test_serve_on_a_port_in_use_fails_in_one_line(echo_server: str) -> None:
    port = echo_server.split(":")[2].split("/", maxsplit=1)[0]
    line = assert_one_error_line(run_cli("serve", "--port", port), 1)
    assert line.startswith(f"{ERROR}cannot listen on 127.0.0.1:{port}: ")


def test_serve_without_the_server_extra() -> None:
    code = (
        "import sys; sys.modules['engineio'] = None; "  # makes ``import engineio`` fail
        "from geventio._cli import main; sys.exit(main(['serve', '--port', '0']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=False
    )
    line = assert_one_error_line(result, 2)
    assert line == f"{ERROR}serve needs the server extra: pip install 'geventio[server]'"
    assert result.stdout == ""


# =========================================================================
# connect
# =========================================================================


@pytest.mark.parametrize("transport", ["auto", "polling", "websocket"])
def test_connect_sends_stdin_lines_and_prints_messages(echo_server: str, transport: str) -> None:
    with process("connect", echo_server, "--transport", transport) as (proc, out, err):
        expected = "polling" if transport == "polling" else "websocket"
        assert re.fullmatch(rf"connected \(sid=\S+, transport={expected}\)", err.next())
        assert out.next() == "hi"  # the greeting
        assert proc.stdin is not None
        proc.stdin.write("first line\nsecond, ünïcode\r\n".encode())
        proc.stdin.flush()
        assert [out.next(), out.next()] == ["first line", "second, ünïcode"]
        proc.stdin.write(b"[1, 2]\n")
        proc.stdin.flush()
        assert out.next() == "[1, 2]"
        assert finish(proc) == (0, "", "closed: client disconnect\n")  # end of input


def test_connect_waits_after_the_end_of_input(echo_server: str) -> None:
    result = run_cli("connect", echo_server, "--wait", "1", stdin="a\n\nlast, no newline")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\na\n\nlast, no newline\n"
    assert result.stderr.splitlines()[1:] == ["closed: client disconnect"]


def test_connect_skips_a_line_that_cannot_be_sent(echo_server: str) -> None:
    """A line holding U+001E cannot go over polling: one stderr line, and the rest is sent."""
    stdin = "a\nb\x1ec\nd\n"
    result = run_cli("connect", echo_server, "--transport", "polling", "--wait", "1", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\na\nd\n"
    assert "Traceback" not in result.stderr
    assert "geventio: line not sent: text holding U+001E" in result.stderr


def test_connect_no_proxy_ignores_the_environment(echo_server: str) -> None:
    dead = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:1", "NO_PROXY": ""}
    command = [*GEVENTIO, "connect", echo_server, "--wait", "0.5"]
    result = subprocess.run(
        command, input="x\n", env=dead, capture_output=True, text=True, timeout=20, check=False
    )
    assert "cannot reach the proxy http://127.0.0.1:1" in result.stderr
    assert result.returncode == 1
    result = subprocess.run(
        [*command, "--no-proxy"],
        input="x\n",
        env=dead,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "hi\nx\n"), result.stderr


#: Text that drives a terminal (clear screen, set the title, bell, CSI as C1, DEL; a tab is a
#: control too), and text that must stay as it is (a non-ASCII letter, a snowman, a backslash).
NASTY = "a\x1b[2J\x1b]0;pwned\x07 \u00e9 \u2603 \\ \x9b31m\x7f\t."
NASTY_ON_A_TERMINAL = "a\\x1b[2J\\x1b]0;pwned\\x07 \u00e9 \u2603 \\ \\x9b31m\\x7f\\x09."


def test_connect_escapes_control_characters_on_a_terminal(echo_server: str) -> None:
    """stdout is a terminal (a pty): what the server sends is shown with its controls escaped."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [*GEVENTIO, "connect", echo_server, "--transport", "websocket"],
        stdin=subprocess.PIPE,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    try:
        with os.fdopen(master, "rb", buffering=0) as terminal:
            out = LineReader(terminal)
            assert LineReader(proc.stderr).next().startswith("connected (")
            assert proc.stdin is not None
            proc.stdin.write(NASTY.encode() + b"\n")
            proc.stdin.flush()
            assert out.next() == "hi\r"  # the greeting; the pty writes a line end as CRLF
            assert out.next() == NASTY_ON_A_TERMINAL + "\r"
            proc.stdin.close()
            assert proc.wait(timeout=15) == 0
    finally:
        stop_process(proc)


def test_connect_prints_raw_into_a_pipe(echo_server: str) -> None:
    """stdout is not a terminal: the text is written as received, for other programs."""
    with process("connect", echo_server, "--transport", "websocket") as (proc, out, err):
        assert err.next().startswith("connected (")
        assert proc.stdin is not None
        proc.stdin.write(NASTY.encode() + b"\n")
        proc.stdin.flush()
        assert [out.next(), out.next()] == ["hi", NASTY]
        assert finish(proc) == (0, "", "closed: client disconnect\n")


def test_connect_headers_and_binary_messages(py_server: ServerHandle) -> None:
    with process(
        "connect", py_server.url, "-H", "X-Token: s3cret", "-H", "X-Other:1", "-q", "room=a"
    ) as (proc, out, err):
        assert err.next().startswith("connected (")
        assert proc.stdin is not None
        proc.stdin.write(b"cmd:headers\ncmd:pushbin:2:70\n")
        proc.stdin.flush()
        headers = out.next()
        assert '"x-token":"s3cret"' in headers.lower()
        assert '"x-other":"1"' in headers.lower()
        assert out.next() == f"<binary 70 bytes: {bytes(64).hex()}...>"
        assert out.next() == "<binary 70 bytes: 00000001" + "00" * 60 + "...>"
        assert finish(proc) == (0, "", "closed: client disconnect\n")


def test_connect_exits_0_when_the_server_disconnects(py_server: ServerHandle) -> None:
    with process("connect", py_server.url) as (proc, _, err):
        assert err.next().startswith("connected (")
        assert proc.stdin is not None
        proc.stdin.write(b"cmd:close\n")
        proc.stdin.flush()
        assert err.next() == "closed: server disconnect"
        assert proc.wait(timeout=10) == 0


def test_connect_exits_1_on_a_ping_timeout(server_factory: ServerFactory) -> None:
    server = server_factory("python", ping_interval=300, ping_timeout=300)  # milliseconds
    with process("connect", server.url) as (proc, _, err):
        assert err.next().startswith("connected (")
        server.pause()
        try:
            assert err.next() == "closed: ping timeout"
            assert proc.wait(timeout=10) == 1
        finally:
            server.resume()


def test_connect_ctrl_c_exits_130_quietly(echo_server: str) -> None:
    with process("connect", echo_server) as (proc, out, err):
        assert err.next().startswith("connected (")
        assert out.next() == "hi"
        assert finish(proc, signal.SIGINT) == (130, "", "")


def test_connect_over_tls(server_factory: ServerFactory, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server = server_factory(
        "python", tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "key.pem")
    )
    for option in (["--ca", str(tmp_path / "ca.pem")], ["--insecure"]):
        result = run_cli("connect", server.url, "-w", "1", *option, stdin="over tls\n")
        assert (result.returncode, result.stdout) == (0, "over tls\n"), result.stderr
    line = assert_one_error_line(run_cli("connect", server.url, "--timeout", "5"), 1)
    assert "CERTIFICATE_VERIFY_FAILED" in line


# =========================================================================
# bench
# =========================================================================

SUMMARY = re.compile(
    r"clients +(?P<connected>\d+) connected / (?P<asked>\d+) asked\n"
    r"connect +p50 [\d.]+ ms +p99 [\d.]+ ms +(?P<connects>[\d.]+) connects/s\n"
    r"duration +(?P<duration>[\d.]+) s\n"
    r"round trips +(?P<trips>\d+) total +(?P<rate>[\d.]+) /s\n"
    r"round trip time +p50 (?P<p50>[\d.]+) ms +p99 (?P<p99>[\d.]+) ms +max (?P<max>[\d.]+) ms\n"
    r"errors +(?P<errors>\d+)$",
    re.MULTILINE,
)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_bench_summary(echo_server: str, transport: str) -> None:
    args = ("--clients", "20", "--duration", "2", "--transport", transport, "--size", "100")
    result = run_cli("bench", echo_server, *args, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"transport        {transport}\nmessage          100 bytes, text\n" in result.stdout
    match = SUMMARY.search(result.stdout)
    assert match, result.stdout
    numbers = {key: float(value) for key, value in match.groupdict().items()}
    assert numbers["connected"] == numbers["asked"] == 20
    assert numbers["errors"] == 0
    assert 1.9 <= numbers["duration"] <= 2.1
    assert numbers["trips"] >= 20
    assert numbers["rate"] == pytest.approx(numbers["trips"] / numbers["duration"], rel=0.05)
    assert 0 < numbers["p50"] <= numbers["p99"] <= numbers["max"]
    assert numbers["connects"] > 0


def test_bench_counts_failures_and_exits_1() -> None:
    with process("serve", "--port", "0") as (server, server_out, _):
        match = SERVING.match(server_out.next())
        assert match
        with process("bench", match.group(1), "-c", "5", "-d", "20") as (bench, _, bench_err):
            line = bench_err.next()
            assert re.fullmatch(r"connected 5/5 clients in [\d.]+ s, sending for 20 s", line)
            time.sleep(0.5)  # half a second of real load (no assertion counts its round trips)
            server.kill()  # under the clients' feet
            status, out, err = finish(bench)
    assert status == 1, out + err
    assert "Traceback" not in err
    match = SUMMARY.search(out)
    assert match, out
    assert (match["connected"], match["errors"]) == ("5", "5")
    assert float(match["duration"]) < 10
    errors = re.findall(r"^ +(\d+) x round trip: (.*)$", out, re.MULTILINE)
    assert sum(int(count) for count, _ in errors) == 5, out
    for _, error in errors:  # with the cause, when there is one
        assert re.fullmatch(r"connection closed: transport close|transport error: .+", error)


def test_percentile() -> None:
    assert percentile([], 0.5) != percentile([], 0.5)  # nan
    ordered = list(range(1, 101))
    assert [percentile(ordered, q) for q in (0.01, 0.5, 0.99, 1)] == [1, 50, 99, 100]
    assert percentile([7.0], 0.99) == 7.0


def test_format_message() -> None:
    assert format_message("text\ttab") == "text\ttab"
    assert format_message(b"\x00\xff") == "<binary 2 bytes: 00ff>"
    assert format_message(b"") == "<binary 0 bytes: >"
    assert format_message(NASTY, terminal=True) == NASTY_ON_A_TERMINAL
    assert format_message("caf\u00e9\r\n", terminal=True) == "caf\u00e9\\x0d\\x0a"
    assert format_message(b"\x1b", terminal=True) == "<binary 1 bytes: 1b>"


def test_an_error_line_holds_no_control_character(capsys: pytest.CaptureFixture[str]) -> None:
    """A server's text in an error (a body, a reason) cannot drive the terminal either."""
    print_error("refused:\r\n  \x1b[2Jgone\x07 caf\u00e9")
    assert capsys.readouterr().err == "geventio: error: refused: \\x1b[2Jgone\\x07 caf\u00e9\n"


# =========================================================================
# The program and its errors
# =========================================================================


def test_help_and_version() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("serve", "connect", "bench"):
        assert command in result.stdout
    statuses = result.stdout.split("\nexit status:\n", 1)[1]
    assert [line.split()[0] for line in statuses.splitlines() if line[2] != " "] == [
        "0",
        "1",
        "2",
        "130",
        "143",
    ]
    result = run_cli("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"geventio {geventio.__version__}")


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "geventio"
    found = str(script) if script.exists() else shutil.which("geventio")
    assert found, "the geventio console script is not installed (pip install -e .)"
    result = subprocess.run(
        [found, "bench", "--help"], capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "--connect-concurrency" in result.stdout


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        pytest.param(("serve", "--bogus"), 2, "unrecognized arguments", id="unknown option"),
        pytest.param(("serve", "--transports", "pigeon"), 2, "--transports", id="bad transport"),
        pytest.param(("serve", "--ping-interval", "0"), 2, "greater than 0", id="bad interval"),
        pytest.param(("frobnicate",), 2, "invalid choice", id="unknown command"),
        pytest.param((), 2, "required", id="no command"),
        pytest.param(("connect", "ftp://127.0.0.1/"), 2, "unsupported URL scheme", id="scheme"),
        pytest.param(("connect", "http://127.0.0.1:1"), 1, "Connection refused", id="refused"),
        pytest.param(
            ("bench", "ws://127.0.0.1:1", "-c", "5"), 1, "Connection refused", id="bench refused"
        ),
        pytest.param(
            ("connect", "http://127.0.0.1:1", "--ca", "/no/such/ca.pem"),
            2,
            "cannot use CA file '/no/such/ca.pem': No such file or directory",
            id="missing CA file",
        ),
        pytest.param(("connect", "http://x", "-H", "no colon"), 2, "Name: value", id="header"),
        pytest.param(
            ("connect", "http://x", "-H", "Authorization Bearer s3cr3t"),
            2,
            "got 'Authorization' followed by more",
            id="header without colon, value not shown",
        ),
        pytest.param(
            ("connect", "http://x", "-H", "X-A: \u20ac"),
            2,
            "invalid value for header 'X-A': '\u20ac' is not latin-1",
            id="header not latin-1",
        ),
        pytest.param(
            ("bench", "http://x", "-H", "X A: 1"), 2, "invalid header name 'X A'", id="header name"
        ),
        pytest.param(
            ("connect", "http://x", "-H", "X-A: a\x1bb"),
            2,
            "invalid value for header 'X-A': control character '\\x1b'",
            id="header escape",
        ),
        pytest.param(
            ("connect", "http://x/a b/"), 2, "invalid path '/a b/'", id="path with a space"
        ),
        pytest.param(
            ("connect", "http://x", "--ca", "a", "--insecure"), 2, "not allowed", id="tls"
        ),
        pytest.param(("bench", "http://x", "--clients", "0"), 2, "at least 1", id="no clients"),
        pytest.param(("connect", "http://x", "--wait", "-1"), 2, "negative", id="negative wait"),
        pytest.param(
            ("connect", "http://x", "--proxy", "socks5://p:1"), 2, "only http://", id="proxy"
        ),
        pytest.param(
            ("connect", "http://127.0.0.1:1", "--proxy", "http://127.0.0.1:1"),
            1,
            "cannot reach the proxy http://127.0.0.1:1",
            id="proxy refused",
        ),
    ],
)
def test_mistakes_are_one_line(args: tuple[str, ...], status: int, says: str) -> None:
    line = assert_one_error_line(run_cli(*args), status)
    assert says in line
    assert "s3cr3t" not in line
