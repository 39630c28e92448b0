"""Thin sessions: each parses its arguments and calls wasmbuild (everything is also `python -m wasmbuild`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import nox

nox.options.reuse_venv = "yes"
nox.options.sessions = ["build-wasi", "tests"]
ROOT = Path(__file__).parent


def _install(session: nox.Session, extras: str = "") -> None:
    """Install wasmbuild (editable) once per pyproject.toml content: a warm run does not re-resolve."""
    spec = f".[{extras}]" if extras else "."
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + spec.encode()).hexdigest()
    marker = Path(session.virtualenv.location) / ".wasmbuild-installed"
    if marker.is_file() and marker.read_text() == digest:
        return
    session.install("-e", spec)
    marker.write_text(digest)


@nox.session(name="build-wasi")
def build_wasi(session: nox.Session) -> None:
    """Build, package and smoke-test CPython for wasm32-wasip1 into dist/ (args: --python 3.13 ...)."""
    _install(session)
    session.run("python", "-m", "wasmbuild", "build", "--target", "wasi", *session.posargs)


@nox.session(name="build-emscripten")
def build_emscripten(session: nox.Session) -> None:
    """Build, package and smoke-test CPython for wasm32-emscripten (node) into dist/ (args: --python ...;
    --variant web: the same build relinked for browsers, python.mjs + python.wasm + python.data)."""
    _install(session)
    session.run("python", "-m", "wasmbuild", "build", "--target", "emscripten", *session.posargs)


@nox.session(name="test-emscripten")
def test_emscripten(session: nox.Session) -> None:
    """Run CPython's test suite on the Emscripten artifact (built if needed) under node and compare it with
    tests/expectations/emscripten-X.Y.yaml (args: --python 3.13, --subset ci, test names ...)."""
    _install(session)
    session.run("python", "-m", "wasmbuild", "test", "--target", "emscripten", *session.posargs)


@nox.session(name="test-wasi")
def test_wasi(session: nox.Session) -> None:
    """Run CPython's test suite on the WASI artifact (built if needed) under wasmtime and compare it with
    tests/expectations/wasi-X.Y.yaml (args: --python 3.11, --subset ci, test names ...)."""
    _install(session)
    session.run("python", "-m", "wasmbuild", "test", "--target", "wasi", *session.posargs)


@nox.session(name="release")
def release(session: nox.Session) -> None:
    """Build, smoke-test and test every supported CPython version x target into dist/ (one SHA256SUMS) and print
    the matrix (args: --subset ci for the CI subsets, --python 3.11, --target wasi ...)."""
    _install(session)
    session.run("python", "-m", "wasmbuild", "matrix", *session.posargs)


@nox.session(name="run")
def run(session: nox.Session) -> None:
    """Run a built artifact: nox -s run -- dist/cpython-...tar.gz -- -c 'print(1)'."""
    _install(session)
    session.run("python", "-m", "wasmbuild", "run", *session.posargs)


@nox.session
def serve(session: nox.Session) -> None:
    """The REPL page (web/) with the web artifact (built if needed) on http://127.0.0.1:8000/ (args: --port 0 for a
    free port, --artifact PATH, --python 3.11 ...)."""
    _install(session)
    session.run("python", "-m", "wasmbuild", "serve", *session.posargs)


@nox.session
def download(session: nox.Session) -> None:
    """Fetch a released artifact, verify it against the release's index and SHA256SUMS, unpack it
    (args: --python 3.13, --target emscripten, --from URL|DIR, --release TAG, -o DIR, --dev)."""
    _install(session)
    session.run("python", "-m", "wasmbuild", "download", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests, then integration tests (real build + artifact). Args go to pytest."""
    _install(session, "dev")
    session.run("python", "-m", "pytest", *(session.posargs or ["tests"]))


@nox.session
def unit(session: nox.Session) -> None:
    """Unit tests only (no network, no compiler; seconds). CI runs them under every host Python it has:
    nox -s unit --force-python /usr/bin/python3."""
    _install(session, "dev")
    session.run("python", "-m", "pytest", "tests/unit", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on everything; mypy on the package and this file (pyproject's [tool.mypy]); actionlint on the GitHub
    Actions workflows, with shellcheck on their `run:` scripts (both from the dev extra, found on the venv's PATH)."""
    _install(session, "dev")
    session.run("ruff", "check", "src", "tests", "web", "noxfile.py")
    session.run("mypy")
    workflows = sorted(str(p.relative_to(ROOT)) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    if not workflows:
        session.error("no workflows under .github/workflows/")
    session.run("actionlint", *workflows)


@nox.session(name="bench-wasi")
def bench_wasi(session: nox.Session) -> None:
    """Start-up side by side: native CPython, python.wasm and a pre-initialised hello bundle under the wasmtime CLI,
    `wasmbuild run` as a whole process; ratios to native, the bundle's size (args: --python, --runs)."""
    _install(session)
    session.run("python", "-m", "wasmbuild", "bench", *session.posargs)


@nox.session
def reproduce(session: nox.Session) -> None:
    """Two cold builds of the WASI 3.13 artifact (the second as another user, in another directory, umask 077,
    another time zone, locale and clock) compared file by file (args: --python, --target, --keep ...)."""
    _install(session)
    session.run("python", "-m", "wasmbuild", "reproduce", *session.posargs)


@nox.session
def install(session: nox.Session) -> None:
    """Packages from PyPI into an artifact: nox -s install -- ARTIFACT attrs jinja2 -o OUT (-r FILE, --require-hashes
    ...)."""
    _install(session)
    session.run("python", "-m", "wasmbuild", "install", *session.posargs)


@nox.session
def bundle(session: nox.Session) -> None:
    """One pre-initialised WASI module of an app: nox -s bundle -- app.py -o app.wasm (--module, --artifact ...)."""
    _install(session)
    session.run("python", "-m", "wasmbuild", "bundle", *session.posargs)
