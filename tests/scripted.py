"""Moved to ``tests/faults/dummyserver.py``; this name stays while ``tests/faults/proxy.py``
imports ``frame`` from it (tests/faults is on ``sys.path`` wherever that module is imported).
"""

from __future__ import annotations

from dummyserver import OPEN, frame

__all__ = ["OPEN", "frame"]
