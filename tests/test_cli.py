"""The ``geventio`` command line, run as real subprocesses against real servers."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import geventio

GEVENTIO = [sys.executable, "-m", "geventio"]
SERVING = re.compile(r"^serving Engine\.IO on (http://127\.0\.0\.1:(\d+)/engine\.io/)$")


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
    assert lines[0].startswith("geventio: error: "), result.stderr
    return lines[0]


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``geventio serve --port 0 ARGS`` in a subprocess: yields it and its URL; kills it after."""
    process = subprocess.Popen(
        [*GEVENTIO, "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().rstrip("\n")  # bounded by the test's timeout
        match = SERVING.match(line)
        assert match, line
        yield process, match.group(1)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def stop(process: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str, str]:
    """Send ``sig``; return the exit status and what was left on stdout and stderr."""
    process.send_signal(sig)
    out, err = process.communicate(timeout=10)
    return process.returncode, out, err


# =========================================================================
# serve
# =========================================================================


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_echoes_until_a_signal_then_exits_quietly(sig: signal.Signals) -> None:
    with serving("--greeting", "hi there") as (process, url):
        with geventio.ClientBuilder(url).timeout(5).build() as client:
            assert client.transport == "websocket"
            assert client.receive(timeout=5) == "hi there"
            client.send("hello")
            client.send(b"\x00\x01")
            assert client.receive(timeout=5) == "hello"
            assert client.receive(timeout=5) == b"\x00\x01"
        assert stop(process, sig) == (0, "", "")


def test_serve_options_reach_the_handshake() -> None:
    with serving("--transports", "polling", "--ping-interval", "3", "--ping-timeout", "2") as (
        process,
        url,
    ):
        with geventio.ClientBuilder(url).timeout(5).build() as client:
            # python-engineio still offers the upgrade, but refuses the WebSocket
            assert client.transport == "polling"
            assert (client.handshake.ping_interval, client.handshake.ping_timeout) == (3.0, 2.0)
            client.send("[1]")  # verbatim, never JSON-decoded
            assert client.receive(timeout=5) == "[1]"
        assert stop(process, signal.SIGTERM)[0] == 0


def test_serve_on_a_custom_path() -> None:
    process = subprocess.Popen(
        [*GEVENTIO, "serve", "--port", "0", "--path", "socket"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.match(r"serving Engine\.IO on (http://127\.0\.0\.1:\d+/socket/)\n", line)
        assert match, line
        with geventio.ClientBuilder(match.group(1)).timeout(5).build_polling() as client:
            client.send("x")
            assert client.receive(timeout=5) == "x"
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert process.returncode == 0


def test_serve_on_a_port_in_use_fails_in_one_line() -> None:
    with serving() as (process, url):
        port = url.rsplit(":", 1)[1].split("/")[0]
        line = assert_one_error_line(run_cli("serve", "--port", port), 1)
        assert f"cannot listen on 127.0.0.1:{port}" in line
        stop(process, signal.SIGTERM)


def test_serve_without_the_server_extra() -> None:
    code = (
        "import sys; sys.modules['engineio'] = None; "  # makes ``import engineio`` fail
        "from geventio._cli import main; sys.exit(main(['serve', '--port', '0']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=False
    )
    line = assert_one_error_line(result, 2)
    assert line == "geventio: error: serve needs the server extra: pip install 'geventio[server]'"
    assert result.stdout == ""


# =========================================================================
# The program itself
# =========================================================================


def test_help_and_version() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("serve",):
        assert command in result.stdout
    result = run_cli("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"geventio {geventio.__version__}")


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "geventio"
    found = shutil.which("geventio") or (str(script) if script.exists() else None)
    assert found, "the geventio console script is not installed (pip install -e .)"
    result = subprocess.run(
        [found, "serve", "--help"], capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "--ping-interval" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("serve", "--bogus"), id="unknown option"),
        pytest.param(("serve", "--transports", "carrier-pigeon"), id="bad transport"),
        pytest.param(("serve", "--ping-interval", "0"), id="bad interval"),
        pytest.param(("frobnicate",), id="unknown command"),
        pytest.param((), id="no command"),
    ],
)
def test_usage_errors_are_one_line(args: tuple[str, ...]) -> None:
    assert_one_error_line(run_cli(*args), 2)
