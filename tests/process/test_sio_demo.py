"""The README's Socket.IO demo runs as a user runs it, in a process of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "examples" / "socketio_demo.py"


def test_the_socketio_demo_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith("embedded Socket.IO server on http://127.0.0.1:")
    assert out[1].startswith("connected: sid=")
    assert out[1].endswith("transport=websocket")
    assert out[2:] == [
        "server says welcome to ada",
        "add(2, 3) = 5",
        "echoed: ('text', {'nested': b'\\x00\\x01 bytes'})",
        "disconnected: client disconnect",
        "done",
    ]
    assert "Traceback" not in done.stderr
