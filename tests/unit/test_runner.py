"""The WASI runner: artifact unpacking (atomic, locked, checked), guest limits (--timeout, --max-memory), bad
modules. Guests here are tiny modules written in WAT; nothing is compiled by a C compiler."""

from __future__ import annotations

import io
import tarfile
import threading
import time

import pytest
import wasmtime

from wasmbuild import runner
from wasmbuild.errors import ArchiveError

LOOP_FOREVER = """(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))"""
# Exits 0 when memory.grow by 100 pages (6.4 MiB) succeeds, 1 when it is refused.
GROW = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $exit (i32.eq (memory.grow (i32.const 100)) (i32.const -1)))))"""


def artifact_tar(path, files: dict[str, bytes], top: str = "cpython-x-wasm32-wasip1") -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def good_archive(tmp_path):
    path = tmp_path / "art.tar.gz"
    artifact_tar(path, {"python.wasm": wasmtime.wat2wasm(GROW), "lib/python3.13/os.py": b"",
                        **{f"lib/python3.13/m{i}.py": b"x = 1\n" * 100 for i in range(200)}})
    return path


def test_concurrent_runs_of_one_archive_unpack_it_once_and_see_a_whole_tree(good_archive, tmp_path, monkeypatch):
    cache_root = tmp_path / "cache"
    calls = []
    real = runner.safe_extract

    def slow_extract(*args, **kwargs):
        calls.append(1)
        time.sleep(0.2)  # widen the window in which a second run would see a partial tree
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "safe_extract", slow_extract)
    results, errors = [], []

    def one():
        try:
            root = runner.unpack_artifact(good_archive, cache_root)
            results.append((root, len(list((root / "lib" / "python3.13").iterdir()))))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(calls) == 1
    assert {r for r, _ in results} == {results[0][0]} and {n for _, n in results} == {201}
    assert not [p for p in (cache_root / "artifacts").iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize(("files", "message"), [
    ({"lib/python3.13/os.py": b""}, "no python.wasm"),
    ({"python.wasm": b"\0asm"}, "has no lib/"),
])
def test_an_archive_refused_for_its_layout_leaves_nothing_in_the_cache(tmp_path, files, message):
    path = tmp_path / "bad.tar.gz"
    artifact_tar(path, files)
    cache_root = tmp_path / "cache"
    for _ in range(2):  # and is refused again, not taken from the cache as valid
        with pytest.raises(ArchiveError, match=message):
            runner.unpack_artifact(path, cache_root)
    assert [p.name for p in (cache_root / "artifacts").iterdir() if not p.name.startswith(".")
            and p.name != "CACHEDIR.TAG"] == []


def test_a_truncated_archive_is_one_clear_error(good_archive, tmp_path):
    data = good_archive.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="cut.tar.gz"):
        runner.unpack_artifact(cut, tmp_path / "cache")


def test_an_invalid_python_wasm_is_a_run_error(tmp_path):
    wasm = tmp_path / "python.wasm"
    wasm.write_bytes(b"\0asm\x01\0\0\0garbage")
    with pytest.raises(runner.RunError, match="not a valid WebAssembly module"):
        runner.run_wasm(wasm, ["python"], tmp_path / "cache")


def test_timeout_stops_a_guest_that_never_ends(tmp_path, capsys):
    wasm = tmp_path / "loop.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(LOOP_FOREVER))
    start = time.monotonic()
    assert runner.run_wasm(wasm, ["loop"], tmp_path / "cache", timeout=0.5) == runner.TIMEOUT_EXIT
    assert time.monotonic() - start < 10
    assert "ran longer than --timeout 0.5 s" in capsys.readouterr().err + capsys.readouterr().out


def test_max_memory_refuses_growth_past_the_limit(tmp_path):
    wasm = tmp_path / "grow.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(GROW))
    assert runner.run_wasm(wasm, ["grow"], tmp_path / "cache") == 0
    assert runner.run_wasm(wasm, ["grow"], tmp_path / "cache", max_memory=1 << 20) == 1


def test_private_lib_is_a_linked_copy_no_other_run_sees_writes_to(tmp_path):
    src = tmp_path / "lib"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("x = 1\n")
    dest = tmp_path / "copy" / "lib"
    runner.link_tree(src, dest)
    (dest / "pkg" / "new.txt").write_text("written by a guest")
    (dest / "pkg" / "mod.py").unlink()
    assert sorted(p.name for p in (src / "pkg").iterdir()) == ["mod.py"]
    assert (src / "pkg" / "mod.py").read_text() == "x = 1\n"
