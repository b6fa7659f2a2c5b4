"""CI beyond the README's command: the package as users install it, on every supported Python.

``nox`` (from ``.ci/run``, after the README's command has tested the source tree on the
machine's ``python3``):

- ``package``: builds the sdist and the wheel (``python -m build``: the wheel is built from the
  sdist), checks their metadata (``twine check --strict``) and the classifiers, and checks that
  a wheel built straight from the tree holds the same files, byte for byte;
- ``tests-3.10``, ``tests-3.13`` (every Python of the classifiers but the one running nox):
  installs that wheel with the ``test`` extra into a fresh virtual environment, checks that
  ``geventio`` is imported from it, runs both demos, then the whole suite from a copy of
  ``tests/`` and ``examples/`` that holds no ``geventio/``. A file missing from the wheel fails.

The interpreters are taken from pyenv's folder (``$PYENV_ROOT``, else ``~/.pyenv``), else from
``PATH``; a supported one that is missing fails at once, with its name.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
WORK = ROOT / ".nox" / "_work"
SOURCE = WORK / "source"  # a clean copy of the tree, built from
DIST = WORK / "dist"  # sdist, and the wheel built from it
TREE_WHEEL = WORK / "tree-wheel"  # the wheel built straight from the tree
#: Not copied into the build's source: local state of a checkout.
LOCAL = (
    *(".git", ".venv", ".nox", "node_modules", "build", "dist", "*.egg-info", "__pycache__"),
    *(".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"),
)
CLASSIFIER = "Programming Language :: Python :: "

nox.options.sessions = ["package", "tests"]
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"


def supported_pythons() -> list[str]:
    """The ``X.Y`` of setup.cfg's classifiers, oldest first."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    names = config["metadata"]["classifiers"].split("\n")
    versions = [name.removeprefix(CLASSIFIER) for name in names if name.startswith(CLASSIFIER)]
    return by_version([v for v in versions if v.count(".") == 1])


def find_python(version: str) -> Path:
    """The newest ``pythonX.Y`` under pyenv's versions folder, else on PATH; exits if none."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = sorted(
        pyenv.glob(f"versions/{version}.*/bin/python{version}"),
        key=lambda path: [int(n) if n.isdigit() else -1 for n in path.parts[-3].split(".")],
    )
    if found:
        return found[-1]
    on_path = shutil.which(f"python{version}")
    if on_path is None:
        sys.exit(
            f"CI: Python {version} is supported (setup.cfg's classifiers) but was found neither "
            f"in {pyenv}/versions/{version}.*/bin nor on PATH; install it (pyenv install "
            f"{version}) or drop it from the classifiers"
        )
    return Path(on_path)


def by_version(versions: list[str]) -> list[str]:
    return sorted(versions, key=lambda v: tuple(int(n) for n in v.split(".")))


RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"
SUPPORTED = supported_pythons()
#: Each supported Python but nox's own, which the README's command tests from the source tree.
PYTHONS = [v for v in SUPPORTED if v != RUNNING]
# nox finds ``pythonX.Y`` on PATH: put the ones found first
os.environ["PATH"] = os.pathsep.join(
    [*(str(find_python(v).parent) for v in PYTHONS), os.environ["PATH"]]
)


def wheel_files(wheel: Path) -> dict[str, str]:
    """Each file of ``wheel`` but its RECORD, with the SHA-256 of its content."""
    with zipfile.ZipFile(wheel) as archive:
        return {
            name: hashlib.sha256(archive.read(name)).hexdigest()
            for name in archive.namelist()
            if not name.endswith(".dist-info/RECORD")
        }


def only(folder: Path, pattern: str) -> Path:
    (path,) = folder.glob(pattern)
    return path


@nox.session
def package(session: nox.Session) -> None:
    """Build, check the metadata, and check the sdist rebuilds into the tree's wheel."""
    session.install("build", "twine")
    shutil.rmtree(WORK, ignore_errors=True)
    shutil.copytree(ROOT, SOURCE, ignore=shutil.ignore_patterns(*LOCAL))
    session.run("python", "-m", "build", "--outdir", str(DIST), str(SOURCE))
    session.run("python", "-m", "build", "--wheel", "--outdir", str(TREE_WHEEL), str(SOURCE))
    sdist, wheel = only(DIST, "*.tar.gz"), only(DIST, "*.whl")
    session.run("twine", "check", "--strict", str(sdist), str(wheel))
    with tarfile.open(sdist) as archive:
        shipped = [name for name in archive.getnames() if "/tests/" in name]
    if shipped:
        session.error(f"the sdist ships tests without their helpers: {shipped}")

    from_sdist, from_tree = wheel_files(wheel), wheel_files(only(TREE_WHEEL, "*.whl"))
    if from_sdist != from_tree:
        changed = sorted(set(from_sdist.items()) ^ set(from_tree.items()))
        session.error(f"the wheel built from the sdist differs from the tree's: {changed}")

    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(name).decode()
    prefix = f"Classifier: {CLASSIFIER}"
    listed = [
        line.removeprefix(prefix) for line in metadata.splitlines() if line.startswith(prefix)
    ]
    tested = by_version([RUNNING, *PYTHONS])
    if [v for v in listed if v.count(".") == 1] != tested:
        session.error(
            f"the wheel's Python classifiers {listed} are not the Pythons CI tests {tested}"
        )
    if f"Requires-Python: >={tested[0]}" not in metadata.splitlines():
        session.error(f"the wheel's Requires-Python is not >={tested[0]}")
    session.log(f"{wheel.name}: {len(from_tree)} files, the same from the sdist as from the tree")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The wheel with its ``test`` extra in a fresh environment: the demos, then the suite."""
    if not DIST.is_dir():
        session.error("no wheel: run the package session first (nox -s package tests-3.10)")
    wheel = only(DIST, "*.whl")
    session.install(f"{wheel}[test]")
    copy = Path(session.create_tmp()) / "suite"
    shutil.rmtree(copy, ignore_errors=True)
    for name in ("tests", "examples"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns(*LOCAL))
    shutil.copy(ROOT / "pyproject.toml", copy)  # pytest's settings
    (copy / "tests" / "node" / "node_modules").symlink_to(ROOT / "tests" / "node" / "node_modules")

    session.chdir(copy)
    output = session.run("python", "-c", "import geventio; print(geventio.__file__)", silent=True)
    where = Path(output.strip() if isinstance(output, str) else "")
    if Path(session.virtualenv.location) not in where.parents:
        session.error(f"geventio was not imported from the installed wheel: {output}")
    session.log(f"geventio is imported from {where}")
    session.run("python", "examples/echo.py")
    session.run("python", "examples/socketio_demo.py")
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *session.posargs)
