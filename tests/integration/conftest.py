"""Integration tests build for real (cached in the normal cache) and test the artifact from dist/."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def wasmbuild(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT,
              check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "wasmbuild", *args], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"wasmbuild {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def wasi_dist(tmp_path_factory) -> Path:
    """Build (or reuse from the cache) the WASI artifact of the default version into a fresh dist/."""
    dist = tmp_path_factory.mktemp("dist")
    proc = wasmbuild("build", "--target", "wasi", "--dist-dir", str(dist))
    sys.stderr.write(proc.stderr[-4000:])
    return dist


@pytest.fixture(scope="session")
def em_dist(tmp_path_factory) -> Path:
    """Build (or reuse from the cache) the Emscripten artifact of the default version into a fresh dist/."""
    dist = tmp_path_factory.mktemp("em-dist")
    wasmbuild("build", "--target", "emscripten", "--dist-dir", str(dist))
    return dist


@pytest.fixture(scope="session")
def web_dist(tmp_path_factory) -> Path:
    """Build (or reuse from the cache) the web variant of the Emscripten artifact of the default version into a
    fresh dist/ (the node build's host build, cached, relinked)."""
    dist = tmp_path_factory.mktemp("web-dist")
    wasmbuild("build", "--target", "emscripten", "--variant", "web", "--dist-dir", str(dist))
    return dist


@pytest.fixture(scope="session")
def web_root(web_dist, tmp_path_factory) -> Path:
    """The web artifact of web_dist unpacked once (the tree the browser, JS API and serve tests read)."""
    from wasmbuild.archive import safe_extract

    (archive,) = web_dist.glob("cpython-*-wasm32-emscripten-web.tar.gz")
    dest = tmp_path_factory.mktemp("web-unpacked")
    with tarfile.open(archive) as tar:
        safe_extract(tar, dest)
    (root,) = dest.iterdir()
    return root
