"""A script that uses geventio.contrib.locust ends without printing anything at exit.

Each script runs as a subprocess (importing Locust monkey-patches the whole process). Python 3.10
is where it failed: there Locust allows only gevent 25, whose ``get_ident`` raises when a logging
handler freed during interpreter teardown takes logging's (gevent-patched) module lock; see
``geventio/contrib/_locust_exit.py``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# A handler held only by a module global, freed while the interpreter tears its modules down (as
# Flask's ``default_handler``, which importing Locust imports), and one attached to a logger.
LATE_HANDLERS = """
    import logging

    late = logging.StreamHandler()
    logging.getLogger("script").addHandler(logging.NullHandler())
"""

IMPORTS = {
    # Locust first, as a script that uses Locust's EventHook (tests/process/test_locust.py)
    "locust-first": "import locust.event\nimport geventio.contrib.locust\n",
    # the integration first, as a locustfile
    "contrib-first": "from geventio.contrib.locust import EngineIOUser\n",
}


@pytest.mark.parametrize("order", sorted(IMPORTS))
def test_no_traceback_at_exit(order: str, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(IMPORTS[order] + textwrap.dedent(LATE_HANDLERS) + 'print("done")\n')
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert result.stderr == "", result.stderr


def test_logging_still_works_in_exit_callbacks(tmp_path: Path) -> None:
    """Callbacks that run after the lock was handed back still log, from greenlets too."""
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import atexit
            import logging
            import sys

            import locust.event  # patches the process

            import gevent

            def log_at_exit() -> None:  # registered first: runs after geventio's callback
                logger = logging.getLogger("late")
                logger.addHandler(logging.StreamHandler(sys.stdout))
                logger.warning("main")
                gevent.spawn(logger.warning, "greenlet").join()

            atexit.register(log_at_exit)

            import geventio.contrib.locust
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "main\ngreenlet\n"
    assert result.stderr == "", result.stderr
