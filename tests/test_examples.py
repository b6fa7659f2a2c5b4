"""The examples run against the embedded server, as a user would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gevent

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_echo_demo_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "echo.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "transport=websocket" in result.stdout
    assert "server says: 'welcome'" in result.stdout
    assert "echoed b'\\x00\\x01binary'" in result.stdout
    assert result.stdout.rstrip().endswith("done")


def test_flask_view_calls_the_upstream_from_many_greenlets() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import echo  # noqa: PLC0415 - from the examples folder
        import flask_upstream  # noqa: PLC0415
    finally:
        sys.path.remove(str(EXAMPLES))
    server = echo.start_server()
    try:
        app = flask_upstream.create_app(f"http://127.0.0.1:{server.server_port}")
        http = app.test_client()
        jobs = [gevent.spawn(http.get, f"/ask?q=question {i}") for i in range(20)]
        gevent.joinall(jobs, timeout=20, raise_error=True)
        answers = [job.value.get_json() for job in jobs]
        assert answers == [
            {"question": f"question {i}", "answer": f"question {i}"} for i in range(20)
        ]
        app.config["upstream"].close()
    finally:
        server.stop(timeout=2)
