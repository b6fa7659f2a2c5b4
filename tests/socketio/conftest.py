"""Fixtures of the Socket.IO tests (see :mod:`servers.sio_fixtures`, where they are typed).

This file is excluded from mypy (pyproject.toml): a second module named ``conftest``.
"""

from servers.sio_fixtures import (  # noqa: F401 (fixtures are found by name)
    _session_sio_servers,
    sio_flask_server,
    sio_node_server,
    sio_py_server,
    sio_server,
    sio_server_factory,
)
