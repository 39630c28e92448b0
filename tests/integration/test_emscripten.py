"""The Emscripten artifact, built for real (cached in the normal cache) and run under node from dist/."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.integration.conftest import wasmbuild
from wasmbuild.archive import safe_extract

VERSION = "3.13.15"
NAME = f"cpython-{VERSION}-wasm32-emscripten"


@pytest.fixture(scope="session")
def unpacked(em_dist, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("em-unpacked")
    with tarfile.open(em_dist / f"{NAME}.tar.gz") as tar:
        safe_extract(tar, dest)
    return dest / NAME


def run(em_dist: Path, *args: str, cwd: Path | None = None, check: bool = False) -> subprocess.CompletedProcess:
    return wasmbuild("run", str(em_dist / f"{NAME}.tar.gz"), "--", *args, cwd=cwd or em_dist, check=check)


def test_archive_layout_and_record(em_dist):
    with tarfile.open(em_dist / f"{NAME}.tar.gz") as tar:
        names = tar.getnames()
    assert names[0] == NAME and names[1] == f"{NAME}/BUILD.json"
    for member in ("python.js", "python.wasm", "python.sh", "LICENSE", "lib/python3.13/os.py",
                   "lib/python3.13/__pycache__/os.cpython-313.pyc"):
        assert f"{NAME}/{member}" in names
    assert not (em_dist / f"{NAME}-debuginfo.tar.gz").exists()  # linked with -g0: nothing to split off
    record = json.loads((em_dist / f"{NAME}.BUILD.json").read_text())
    assert record["target"] == {"name": "emscripten", "triple": "wasm32-emscripten"}
    assert record["toolchain"]["name"] == "emscripten" and record["toolchain"]["version"] == "3.1.69"
    assert [p["file"] for p in record["toolchain"]["patches"]] == [
        "emscripten-3.1.69/0001-noderawfs-fstat-stdio.patch", "emscripten-3.1.69/0002-noderawfs-ioctl-stdio.patch"]
    libraries = {i["name"]: i for i in record["inputs"] if i["role"] == "library"}
    assert sorted(libraries) == ["bzip2", "libffi", "sqlite", "xz", "zlib"]
    assert all(len(i["sha256"]) == 64 and i["url"] and "fetch" not in i for i in libraries.values())
    assert "-sSTACK_SIZE=16777216" in record["configure"]["ldflags"]
    sums = (em_dist / "SHA256SUMS").read_text()
    assert f"  {NAME}.tar.gz" in sums and f"  {NAME}.BUILD.json" in sums


def test_stdio_exit_code_and_platform(em_dist):
    # print() needs fstat() on stdout (patch 0001); isatty() on a pipe is False and must not crash (0002).
    proc = run(em_dist, "-c", "import sys, os; print(sys.platform, sys.stdout.isatty(), os.isatty(0)); "
               "sys.stderr.write('to stderr\\n'); sys.exit(3)")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.strip() == "emscripten False False"
    assert "to stderr" in proc.stderr


def test_host_environment_and_files(em_dist, tmp_path):
    (tmp_path / "in.txt").write_text("hello")
    code = ("import os, pathlib; p = pathlib.Path('in.txt'); print(os.environ.get('WB_PROBE'), p.read_text()); "
            "pathlib.Path('out.txt').write_text('written')")
    proc = wasmbuild("run", "--env", "WB_PROBE=yes", str(em_dist / f"{NAME}.tar.gz"), "--", "-c", code,
                     cwd=tmp_path, env={"WB_PROBE": "no"})
    assert proc.stdout.strip() == "yes hello"
    assert (tmp_path / "out.txt").read_text() == "written"


def test_library_backed_modules_work(em_dist):
    code = """
import zlib, bz2, lzma, sqlite3, ctypes
data = b"wasmbuild " * 1000
assert zlib.decompress(zlib.compress(data)) == data
assert bz2.decompress(bz2.compress(data)) == data
assert lzma.decompress(lzma.compress(data)) == data
con = sqlite3.connect(":memory:")
con.execute("create table t (x)"); con.executemany("insert into t values (?)", [(i,) for i in range(10)])
assert con.execute("select sum(x) from t").fetchone()[0] == 45
CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)
assert CB(lambda x: x * 2)(21) == 42
print("ok", zlib.ZLIB_RUNTIME_VERSION, sqlite3.sqlite_version)
"""
    proc = run(em_dist, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok 1.3.1 3.46.1")


def test_deep_recursion_does_not_crash(em_dist):
    # With emscripten's default 64 KiB wasm stack this aborts the process; -sSTACK_SIZE and node's
    # --stack-size make it a RecursionError.
    code = ("import json, sys\ntry:\n    json.loads('[' * 100000 + ']' * 100000)\nexcept RecursionError:\n"
            "    print('RecursionError')\ndef f(n): return f(n + 1)\ntry:\n    f(0)\nexcept RecursionError:\n"
            "    print('RecursionError')\n")
    proc = run(em_dist, "-c", code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["RecursionError", "RecursionError"]


def test_launcher_runs_under_node(unpacked, tmp_path):
    (tmp_path / "t.py").write_text("import sys, sysconfig; print(sys.prefix == sys.base_prefix, "
                                   "sys.version.split()[0])\n")
    # python.sh runs $NODE (default: node on PATH); a machine without node has the one wasmbuild provisioned.
    from wasmbuild.cache import default_cache_dir
    from wasmbuild.toolchain.node import NODE_MINIMUM, find_node

    node = find_node(NODE_MINIMUM, cache_root=default_cache_dir())
    proc = subprocess.run([str(unpacked / "python.sh"), "t.py"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONHOME": "/nonexistent", "NODE": str(node.path)},
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"True {VERSION}"


def test_no_build_paths_in_the_artifact(unpacked):
    cache_dir = os.environ.get("WASMBUILD_CACHE_DIR", str(Path.home() / ".cache" / "wasmbuild"))
    for name in ("python.js", "python.wasm"):
        assert cache_dir.encode() not in (unpacked / name).read_bytes()
    sysconfig = next((unpacked / "lib" / "python3.13").glob("_sysconfigdata_*emscripten*.py"))
    assert cache_dir not in sysconfig.read_text()
    # Tools configure found on the builder's PATH are named, not located (the artifact must not depend on PATH).
    assert "'INSTALL': 'install -c'" in sysconfig.read_text() and "'MKDIR_P': 'mkdir -p'" in sysconfig.read_text()


def test_second_build_is_a_no_op_with_identical_bytes(em_dist):
    before = {p.name: p.read_bytes() for p in em_dist.iterdir() if p.is_file()}
    proc = wasmbuild("build", "--target", "emscripten", "--dist-dir", str(em_dist), "--no-smoke-test")
    assert "Configure CPython" not in proc.stderr + proc.stdout
    after = {p.name: p.read_bytes() for p in em_dist.iterdir() if p.is_file()}
    assert before == after
