"""The WASI run model as a sandbox (issue 20): the cached standard library is preopened read-only and checked before
it is trusted, --timeout bounds wall time also for a guest blocked in a host call, a bundle sees no directory it
was not given, and damaged run-cache entries cost no traceback. The guests are tiny WAT modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import wasmtime
from tests.unit.test_runner import artifact_tar

from wasmbuild import artifact, cache
from wasmbuild.engines import TIMEOUT_EXIT, wasmtime_api, wasmtime_cli

# Opens the existing lib/python3.13/os.py for appending and creates lib/evil.py through the first preopen (fd 3,
# /lib when no other directory is given); exits 1 + (first refused) + 2 * (second refused): 4 when both were
# refused, 1 when both writes were allowed.
WRITE_LIB = """(module
  (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "python3.13/os.py")
  (data (i32.const 200) "evil.py")
  (data (i32.const 300) "evil = True\\n")
  (func $try (param $path i32) (param $len i32) (param $oflags i32) (param $fdflags i32) (result i32)
    (local $err i32)
    (local.set $err (call $open (i32.const 3) (i32.const 0) (local.get $path) (local.get $len) (local.get $oflags)
                      (i64.const 0x1fffffff) (i64.const 0x1fffffff) (local.get $fdflags) (i32.const 0)))
    (if (i32.eqz (local.get $err))
      (then
        (i32.store (i32.const 16) (i32.const 300))
        (i32.store (i32.const 20) (i32.const 12))
        (drop (call $write (i32.load (i32.const 0)) (i32.const 16) (i32.const 1) (i32.const 24)))))
    (i32.ne (local.get $err) (i32.const 0)))
  (func (export "_start")
    (call $exit
      (i32.add (i32.const 1)
        (i32.add (call $try (i32.const 100) (i32.const 16) (i32.const 0) (i32.const 1))
                 (i32.mul (i32.const 2) (call $try (i32.const 200) (i32.const 7) (i32.const 1) (i32.const 0))))))))"""

# Sleeps 100 s in one host call: poll_oneoff with one relative clock subscription (CLOCK_MONOTONIC).
SLEEP = """(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 100000000000))
    (i64.store (i32.const 32) (i64.const 0))
    (i32.store16 (i32.const 40) (i32.const 0))
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"""

# Reads fd 0 (stdin) until its end.
READ_STDIN = """(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 64))
    (block $end (loop $more
      (br_if $end (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br_if $end (i32.eqz (i32.load (i32.const 8))))
      (br $more)))))"""

# Exits 0 when it has no preopened directory (fd_prestat_get(3) fails), 1 when it has one.
NO_PREOPENS = """(module
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $exit (i32.eqz (call $prestat (i32.const 3) (i32.const 0))))))"""

OS_PY = b"# the standard library's os module\n"


@pytest.fixture
def write_lib_archive(tmp_path):
    path = tmp_path / "art.tar.gz"
    artifact_tar(path, {"python.wasm": wasmtime.wat2wasm(WRITE_LIB), "lib/python3.13/os.py": OS_PY})
    return path


# --- class 1: the cached standard library ---------------------------------------------------------------------


def test_a_guest_cannot_write_the_cached_standard_library(write_lib_archive, tmp_path):
    cache_root = tmp_path / "cache"
    status = artifact.run_artifact(write_lib_archive, [], cache_root, dirs=[], engine="api")
    assert status == 4  # both the in-place write and the new file were refused
    root = artifact.unpack_artifact(write_lib_archive, cache_root)
    assert (root / "lib" / "python3.13" / "os.py").read_bytes() == OS_PY
    assert sorted(p.name for p in (root / "lib").iterdir()) == ["python3.13"]
    assert artifact._trusted(root.parent, cache.read_stamp(root.parent)["key"], write_lib_archive)


def test_a_private_lib_is_writable_and_its_writes_stay_out_of_the_cache(write_lib_archive, tmp_path):
    cache_root = tmp_path / "cache"
    assert artifact.run_artifact(write_lib_archive, [], cache_root, dirs=[], private_lib=True, engine="api") == 1
    root = artifact.unpack_artifact(write_lib_archive, cache_root)
    assert (root / "lib" / "python3.13" / "os.py").read_bytes() == OS_PY
    assert not (root / "lib" / "evil.py").exists()


@pytest.mark.parametrize("change", ["append", "add", "remove", "touch-back"])
def test_an_unpacked_tree_changed_in_the_cache_is_not_trusted_but_unpacked_again(write_lib_archive, tmp_path,
                                                                                 capsys, change):
    cache_root = tmp_path / "cache"
    root = artifact.unpack_artifact(write_lib_archive, cache_root)
    os_py = root / "lib" / "python3.13" / "os.py"
    if change == "append":
        with open(os_py, "ab") as f:
            f.write(b"import evil\n")
    elif change == "add":
        (root / "lib" / "python3.13" / "sitecustomize.py").write_text("import evil\n")
    elif change == "remove":
        os_py.unlink()
    else:  # same size, the time put back: the ctime still moves
        st = os_py.stat()
        os_py.write_bytes(OS_PY.upper())
        os.utime(os_py, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = artifact.unpack_artifact(write_lib_archive, cache_root)
    assert again == root
    assert os_py.read_bytes() == OS_PY
    assert sorted(p.name for p in (root / "lib" / "python3.13").iterdir()) == ["os.py"]
    assert "was changed after it was unpacked" in capsys.readouterr().err
    artifact.unpack_artifact(write_lib_archive, cache_root)  # and trusted again, silently
    assert "was changed" not in capsys.readouterr().err


@pytest.mark.parametrize("change", ["touch", "link"])
def test_a_tree_whose_stat_moved_is_checked_against_its_manifest(write_lib_archive, tmp_path, capsys, monkeypatch,
                                                                  change):
    """Only the stat changed (a file touched): the contents are the manifest's, so the tree is trusted again without
    unpacking; a symbolic link added is a change of content, so the tree is unpacked again."""
    cache_root = tmp_path / "cache"
    root = artifact.unpack_artifact(write_lib_archive, cache_root)
    os_py = root / "lib" / "python3.13" / "os.py"
    if change == "touch":
        os.utime(os_py, ns=(0, 0))
    else:
        (root / "lib" / "python3.13" / "evil.py").symlink_to("/etc/hostname")
    inode = os_py.stat().st_ino
    assert artifact.unpack_artifact(write_lib_archive, cache_root) == root
    err = capsys.readouterr().err
    if change == "touch":
        assert "was changed" not in err and os_py.stat().st_ino == inode  # not unpacked again
        monkeypatch.setattr(artifact, "_content_unchanged", lambda *a: pytest.fail("checked again"))
        assert artifact.unpack_artifact(write_lib_archive, cache_root) == root  # the new fingerprint is recorded
    else:
        assert "was changed after it was unpacked" in err
        assert not (root / "lib" / "python3.13" / "evil.py").is_symlink()


def test_the_manifest_records_every_files_size_and_sha256(write_lib_archive, tmp_path):
    root = artifact.unpack_artifact(write_lib_archive, tmp_path / "cache")
    manifest = json.loads((root.parent / artifact.MANIFEST_NAME).read_text())
    assert manifest["root"] == root.name
    assert manifest["files"]["lib/python3.13/os.py"] == [len(OS_PY), cache.sha256_file(root / "lib/python3.13/os.py")]
    assert set(manifest["files"]) == {"python.wasm", "lib/python3.13/os.py"}


def test_a_tree_unpacked_without_a_manifest_is_unpacked_again(write_lib_archive, tmp_path):
    cache_root = tmp_path / "cache"
    root = artifact.unpack_artifact(write_lib_archive, cache_root)
    digest = cache.sha256_file(write_lib_archive)
    cache.write_stamp(root.parent, digest)  # as the landed code stamped it: no manifest, no fingerprint
    (root / "lib" / "python3.13" / "os.py").write_bytes(b"import evil\n")
    assert artifact.unpack_artifact(write_lib_archive, cache_root) == root
    assert (root / "lib" / "python3.13" / "os.py").read_bytes() == OS_PY


# --- class 2: --timeout bounds wall time ------------------------------------------------------------------------


def test_timeout_ends_a_guest_sleeping_in_a_host_call(tmp_path, capsys):
    wasm = tmp_path / "sleep.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(SLEEP))
    wasmtime_api.run_wasm(wasm, ["sleep"], tmp_path / "cache", timeout=1)  # compiled outside the measure
    start = time.monotonic()
    assert wasmtime_api.run_wasm(wasm, ["sleep"], tmp_path / "cache", timeout=2) == TIMEOUT_EXIT
    assert 2 <= time.monotonic() - start < 2 + wasmtime_api.TIMEOUT_GRACE + 2
    assert "ran longer than --timeout 2 s" in capsys.readouterr().err


@pytest.mark.parametrize("guest", ["sleep", "stdin"])
def test_wasmbuild_run_with_timeout_ends_a_blocked_guest_with_124(tmp_path, guest):
    wasm = tmp_path / f"{guest}.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(SLEEP if guest == "sleep" else READ_STDIN))
    cache_root = tmp_path / "cache"
    command = [sys.executable, "-m", "wasmbuild", "run", "--cache-dir", str(cache_root), "--timeout", "2", str(wasm)]
    read, write = os.pipe()  # a stdin that never ends: its write end stays open
    try:
        subprocess.run([*command[:-3], "--timeout", "1", str(wasm)], stdin=read, capture_output=True, timeout=60,
                       check=False)  # compiled outside the measure
        start = time.monotonic()
        proc = subprocess.run(command, stdin=read, capture_output=True, text=True, timeout=60, check=False)
        elapsed = time.monotonic() - start
    finally:
        os.close(read)
        os.close(write)
    assert proc.returncode == TIMEOUT_EXIT, proc.stderr
    assert elapsed < 2 + wasmtime_api.TIMEOUT_GRACE + 4
    assert "ran longer than --timeout 2 s and was stopped" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_stuck_guest_with_a_private_lib_ends_with_124_and_its_copy_is_removed(tmp_path, monkeypatch):
    archive = tmp_path / "sleep.tar.gz"
    artifact_tar(archive, {"python.wasm": wasmtime.wat2wasm(SLEEP), "lib/python3.13/os.py": OS_PY})
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    start = time.monotonic()
    assert artifact.run_artifact(archive, [], tmp_path / "cache", dirs=[], private_lib=True, timeout=2) \
        == TIMEOUT_EXIT
    assert time.monotonic() - start < 60  # a first compilation included
    assert list(scratch.iterdir()) == []


# --- class 3: a bundle sees only what it is given ---------------------------------------------------------------


def test_a_bundle_run_mounts_nothing_it_was_not_given(tmp_path, monkeypatch):
    app = tmp_path / "app.wasm"
    app.write_bytes(wasmtime.wat2wasm(NO_PREOPENS))
    monkeypatch.chdir(tmp_path)
    assert artifact.run_artifact(app, [], tmp_path / "cache", engine="api") == 0
    assert artifact.run_artifact(app, [], tmp_path / "cache", dirs=[(tmp_path, "/")], engine="api") == 1


def test_wasmbuild_run_of_a_bundle_does_not_see_the_current_directory(tmp_path):
    app = tmp_path / "app.wasm"
    app.write_bytes(wasmtime.wat2wasm(NO_PREOPENS))
    proc = subprocess.run([sys.executable, "-m", "wasmbuild", "run", "--engine", "api", "--cache-dir",
                           str(tmp_path / "cache"), str(app)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


# --- class 9 (run cache): a damaged cache entry costs no traceback ---------------------------------------------


def _hello(tmp_path):
    from tests.unit.test_run_imports import HELLO

    wasm = tmp_path / "hello.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(HELLO))
    return wasm


@pytest.mark.parametrize("damage", ["wasmtime-file", "compiled-dir", "hashes-file", "memo-dir"])
def test_a_file_or_directory_in_the_way_in_the_run_cache_is_replaced(tmp_path, damage):
    wasm = _hello(tmp_path)
    cache_root = tmp_path / "cache"
    assert wasmtime_api.run_wasm(wasm, ["hello"], cache_root) == 0
    compiled = next((cache_root / "wasmtime").iterdir())
    memo = next((cache_root / "hashes").iterdir())
    if damage == "wasmtime-file":
        cache.remove_tree(cache_root / "wasmtime")
        (cache_root / "wasmtime").write_text("in the way")
    elif damage == "compiled-dir":
        compiled.unlink()
        (compiled / "sub").mkdir(parents=True)
    elif damage == "hashes-file":
        cache.remove_tree(cache_root / "hashes")
        (cache_root / "hashes").write_text("in the way")
    else:
        memo.unlink()
        (memo / "sub").mkdir(parents=True)
    for _ in range(2):  # the first run repairs the entry, the second uses it
        assert wasmtime_api.run_wasm(wasm, ["hello"], cache_root) == 0
    assert compiled.is_file() and memo.is_file()


@pytest.mark.parametrize("damage", ["dir-file", "out-dir"])
def test_a_file_or_directory_in_the_way_of_the_cli_cache_is_replaced(tmp_path, damage):
    cli = tmp_path / "wasmtime"
    cli.write_text('#!/bin/sh\nwhile [ "$1" != "-o" ]; do shift; done\necho compiled > "$2"\n')
    cli.chmod(0o755)
    wasm = _hello(tmp_path)
    cache_root = tmp_path / "cache"
    out = wasmtime_cli.precompiled(cli, wasm, cache_root)
    if damage == "dir-file":
        cache.remove_tree(out.parent)
        out.parent.write_text("in the way")
    else:
        out.unlink()
        (out / "sub").mkdir(parents=True)
    assert wasmtime_cli.precompiled(cli, wasm, cache_root) == out
    assert out.read_text() == "compiled\n"


def test_wasmbuild_run_with_a_damaged_run_cache_is_no_traceback(tmp_path):
    wasm = _hello(tmp_path)
    cache_root = tmp_path / "cache"
    cache_root.mkdir()
    for name in ("wasmtime", "hashes", "wasmtime-cli"):
        (cache_root / name).write_text("in the way")
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "wasmbuild", "run", "--engine", "api", "--cache-dir",
                               str(cache_root), str(wasm)], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0 and "guest ran" in proc.stdout, proc.stderr
        assert "Traceback" not in proc.stderr


def test_an_artifacts_cache_that_is_a_file_is_one_error_line(write_lib_archive, tmp_path):
    cache_root = tmp_path / "cache"
    cache_root.mkdir()
    (cache_root / "artifacts").write_text("in the way")
    proc = subprocess.run([sys.executable, "-m", "wasmbuild", "run", "--engine", "api", "--cache-dir",
                           str(cache_root), str(write_lib_archive)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.count("error:") == 1 and "artifacts" in proc.stderr, proc.stderr

