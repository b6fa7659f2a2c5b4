"""A short soak: soak.py with 200 WebSocket clients for 5 s against the Node server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.faultkit import Bound

SOAK = Path(__file__).resolve().parent / "soak.py"
CLIENTS = 200
SECONDS = 5


@pytest.mark.slow
def test_fault_soak_200_clients_5_seconds(tmp_path: Path, bound: Bound) -> None:
    """200 WebSocket clients for 5 s (ping 1 s): none dropped, every echo and PING answered."""
    out = tmp_path / "soak.json"
    command = [sys.executable, str(SOAK), "--clients", str(CLIENTS), "--seconds", str(SECONDS)]
    command += ["--ping-interval", "1000", "--ping-timeout", "2000", "--json", str(out)]
    with bound(30.0):
        proc = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    report: dict[str, Any] = json.loads(out.read_text())
    assert report["clients_connected"] == CLIENTS
    assert report["connect_failures"] == 0
    assert report["still_open_at_end"] == CLIENTS
    assert report["dropped"] == 0, report["drop_reasons"]
    assert report["errors"] == 0
    messages = report["messages"]
    # one message a second per client, from a random phase in the first second
    assert messages["sent"] >= CLIENTS * (SECONDS - 1)
    assert messages["echoed"] == messages["sent"]
    assert messages["missing"] == 0
    pings = report["pings_answered"]
    assert pings["min_per_client"] >= SECONDS - 1
    assert pings["max_per_client"] <= SECONDS + 3  # connect phase + run, at one PING a second
    client = report["client_process"]
    assert 0 < client["kib_per_client_connected"] < 1024
    assert client["rss_peak_kib"] >= client["rss_end_kib"] > 0
    assert 0 < client["cpu_seconds_run"] < SECONDS
    assert report["server_process"]["rss_peak_kib"] > 0
    assert report["connect"]["per_second"] > 0
