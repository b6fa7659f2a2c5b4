"""The package's shape: no import circle, and the layers the architecture promises.

The import graph is read from the source with :mod:`ast` (imports under ``TYPE_CHECKING`` count:
a circle there is a circle in the design), plus the lazy homes of ``geventio/__init__``.
``geventio.socketio`` is in it too: a client of the public API, built on top, and as free of
circles as the rest.
"""

from __future__ import annotations

import ast
from pathlib import Path

import geventio
from geventio._client import Client
from geventio._session import Session

PACKAGE = Path(geventio.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each geventio module (``geventio.socketio`` included) and the geventio modules it imports."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*kept, base] if base else kept)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    deps.add(full if full in paths else base)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
            elif path.name == "__init__.py" and isinstance(node, ast.Constant):
                deps.add(str(node.value))  # the lazy homes of the public names
        graph[name] = {d for d in deps if d in paths and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: each a path that comes back to its first module."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            found.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for dep in sorted(graph[node]):
            visit(dep, [*path, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return found


def test_no_import_circle() -> None:
    graph = import_graph()
    assert "geventio._session" in graph
    assert "geventio.exceptions" in graph
    assert "geventio.socketio._runner" in graph
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_the_session_uses_the_transports_only_by_their_public_modules() -> None:
    """No private transport module (``_transports._*``) below the transports themselves."""
    graph = import_graph()
    for name, deps in graph.items():
        if not name.startswith("geventio._transports"):
            assert not {d for d in deps if d.startswith("geventio._transports._")}, name


def test_the_client_is_a_facade_over_one_session() -> None:
    """Composition, not inheritance: the public Client holds a Session."""
    assert not issubclass(Client, Session)
    assert Session not in Client.__mro__
