"""Running artifacts (artifact.py, engines/): unpacking (atomic, locked, checked), guest limits (--timeout,
--max-memory), bad modules. Guests here are tiny modules written in WAT; nothing is compiled by a C compiler."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
import wasmtime

from wasmbuild import artifact
from wasmbuild.engines import wasmtime_api, wasmtime_cli
from wasmbuild.errors import ArchiveError, RunError

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
    real = artifact.safe_extract

    def slow_extract(*args, **kwargs):
        calls.append(1)
        time.sleep(0.2)  # widen the window in which a second run would see a partial tree
        return real(*args, **kwargs)

    monkeypatch.setattr(artifact, "safe_extract", slow_extract)
    results, errors = [], []

    def one():
        try:
            root = artifact.unpack_artifact(good_archive, cache_root)
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
            artifact.unpack_artifact(path, cache_root)
    assert [p.name for p in (cache_root / "artifacts").iterdir() if not p.name.startswith(".")
            and p.name != "CACHEDIR.TAG"] == []


def test_a_truncated_archive_is_one_clear_error(good_archive, tmp_path):
    data = good_archive.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="cut.tar.gz"):
        artifact.unpack_artifact(cut, tmp_path / "cache")


def test_an_invalid_python_wasm_is_a_run_error(tmp_path):
    wasm = tmp_path / "python.wasm"
    wasm.write_bytes(b"\0asm\x01\0\0\0garbage")
    with pytest.raises(RunError, match="not a valid WebAssembly module"):
        wasmtime_api.run_wasm(wasm, ["python"], tmp_path / "cache")


def test_timeout_stops_a_guest_that_never_ends(tmp_path, capsys):
    wasm = tmp_path / "loop.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(LOOP_FOREVER))
    start = time.monotonic()
    assert wasmtime_api.run_wasm(wasm, ["loop"], tmp_path / "cache", timeout=0.5) == wasmtime_api.TIMEOUT_EXIT
    assert time.monotonic() - start < 10
    assert "ran longer than --timeout 0.5 s" in capsys.readouterr().err + capsys.readouterr().out


def test_max_memory_refuses_growth_past_the_limit(tmp_path):
    wasm = tmp_path / "grow.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(GROW))
    assert wasmtime_api.run_wasm(wasm, ["grow"], tmp_path / "cache") == 0
    assert wasmtime_api.run_wasm(wasm, ["grow"], tmp_path / "cache", max_memory=1 << 20) == 1


def test_private_lib_is_a_copy_no_other_run_sees_writes_to_even_in_place(tmp_path):
    src = tmp_path / "lib"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("x = 1\n")
    dest = tmp_path / "copy" / "lib"
    artifact.copy_tree(src, dest)
    (dest / "pkg" / "new.txt").write_text("written by a guest")
    with open(dest / "pkg" / "mod.py", "a") as f:  # an in-place write: hard links would carry it to src
        f.write("evil = True\n")
    assert sorted(p.name for p in (src / "pkg").iterdir()) == ["mod.py"]
    assert (src / "pkg" / "mod.py").read_text() == "x = 1\n"
    (dest / "pkg" / "mod.py").unlink()
    assert (src / "pkg" / "mod.py").read_text() == "x = 1\n"


# --- the fast start of `wasmbuild run`: remembered hashes, the pinned wasmtime CLI ----------------------------


def test_a_remembered_hash_is_reused_until_the_file_changes(tmp_path, monkeypatch):
    from wasmbuild import cache

    f = tmp_path / "art.tar.gz"
    f.write_bytes(b"one")
    calls = []
    real = cache.sha256_file
    monkeypatch.setattr(cache, "sha256_file", lambda p: calls.append(p) or real(p))
    first = cache.sha256_file_memo(f, tmp_path / "cache")
    assert cache.sha256_file_memo(f, tmp_path / "cache") == first and len(calls) == 1
    st = f.stat()
    f.write_bytes(b"two")  # same size, mtime put back: the ctime still differs
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.sha256_file_memo(f, tmp_path / "cache") == real(f) != first and len(calls) == 2
    memo = next((tmp_path / "cache" / "hashes").iterdir())
    memo.write_text("{not json")  # a damaged memo is only a miss
    assert cache.sha256_file_memo(f, tmp_path / "cache") == real(f) and len(calls) == 3


def fake_cli(tmp_path, manifest_text="tools: {}\n"):
    from wasmbuild import cache
    from wasmbuild.files import write_json

    manifest = tmp_path / "host-tools.yaml"
    manifest.write_text(manifest_text)
    cache_root = tmp_path / "cache"
    entry = cache_root / "tools" / "wasmtime-abc"
    (entry / "bin").mkdir(parents=True, exist_ok=True)
    exe = entry / "bin" / "wasmtime"
    exe.write_text("#!/bin/sh\n")
    cache.write_stamp(entry, "k1")
    write_json(cache_root / "tools" / "wasmtime.current.json",
               {"manifest": str(manifest), "manifest_sha256": cache.sha256_file(manifest), "entry": entry.name,
                "key": "k1"})
    return cache_root, manifest, entry, exe


def test_the_provisioned_cli_is_found_only_while_its_manifest_and_entry_are_unchanged(tmp_path):
    from wasmbuild import cache

    assert wasmtime_cli.provisioned_wasmtime(tmp_path / "nothing") is None
    cache_root, manifest, entry, exe = fake_cli(tmp_path)
    assert wasmtime_cli.provisioned_wasmtime(cache_root) == exe
    manifest.write_text("tools: {other: 1}\n")  # a new pin: the cached CLI is not the pinned one any more
    assert wasmtime_cli.provisioned_wasmtime(cache_root) is None
    cache_root, manifest, entry, exe = fake_cli(tmp_path)
    cache.write_stamp(entry, "another-key")
    assert wasmtime_cli.provisioned_wasmtime(cache_root) is None


def test_cli_argv_has_the_runners_stack_preopens_and_environment(tmp_path):
    argv = wasmtime_cli.cli_argv(Path("/t/wasmtime"), Path("/c/m.cwasm"), ["python", "-c", "pass"],
                           [(tmp_path, "/"), (Path("/lib-host"), "/lib")], {"B": "2", "A": "1"})
    assert argv == ["/t/wasmtime", "run", "--allow-precompiled", "-W", f"max-wasm-stack={wasmtime_api.MAX_WASM_STACK}",
                    "--argv0", "python", "--dir", f"{tmp_path}::/", "--dir", "/lib-host::/lib",
                    "--env", "A=1", "--env", "B=2", "/c/m.cwasm", "-c", "pass"]


@pytest.mark.parametrize(("options", "bundle", "uses_cli"), [
    ({}, True, True),
    ({}, False, False),  # an artifact: the CLI (wasmtime 49) cannot preopen its lib/ read-only
    ({"engine": "api"}, True, False),
    ({"timeout": 5.0}, True, False),
    ({"max_memory": 1 << 30}, True, False),
    ({"private_lib": True}, False, False),
])
def test_a_plain_bundle_run_goes_to_the_cli_and_everything_else_stays_in_process(good_archive, tmp_path,
                                                                                  monkeypatch, options, bundle,
                                                                                  uses_cli):
    cache_root, *_ = fake_cli(tmp_path)
    seen = []

    class Exec(Exception):
        pass

    def fake_exec(cli, wasm, argv, cache_root, *, dirs=(), env=None):
        seen.append(("cli", wasm.name, list(argv), [g for _, g in dirs], env))
        raise Exec

    app = tmp_path / "app.wasm"
    app.write_bytes(wasmtime.wat2wasm(GROW))
    monkeypatch.setattr(artifact, "exec_wasm", fake_exec)
    monkeypatch.setattr(artifact, "run_wasm", lambda *a, **k: seen.append(("api", k.get("read_only"))) or 0)
    monkeypatch.setattr(artifact, "copy_tree", lambda src, dest: dest.mkdir(parents=True))
    with contextlib.suppress(Exec):
        artifact.run_artifact(app if bundle else good_archive, ["-c", "pass"], cache_root, dirs=[(tmp_path, "/")],
                              **options)
    if uses_cli:
        assert seen == [("cli", "app.wasm", ["app.wasm", "-c", "pass"], ["/"], {})]
    elif bundle:
        assert seen == [("api", None)]
    else:  # the shared lib/ read-only, a private copy writable
        assert seen == [("api", () if options.get("private_lib") else ("/lib",))]


def test_a_module_the_cli_cannot_compile_is_a_run_error_and_leaves_no_compiled_file(tmp_path):
    cli = tmp_path / "wasmtime"
    cli.write_text("#!/bin/sh\necho 'Error: failed to compile: bad magic' >&2\nexit 1\n")
    cli.chmod(0o755)
    wasm = tmp_path / "bad.wasm"
    wasm.write_bytes(b"\0asmjunk")
    with pytest.raises(RunError, match="not a valid WebAssembly module: Error: failed to compile"):
        wasmtime_cli.precompiled(cli, wasm, tmp_path / "cache")
    assert not list((tmp_path / "cache" / "wasmtime-cli").iterdir())


def test_wasmbuild_run_imports_neither_the_build_pipeline_nor_requests():
    code = ("import sys; from wasmbuild import cli; cli._parser().parse_args(['run', 'x.tar.gz']); "
            "import wasmbuild.artifact; "
            "print(sorted(m for m in ('requests', 'urllib3', 'wasmbuild.pipeline', 'wasmbuild.recipe', "
            "'wasmbuild.targets', 'wasmbuild.download', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_bench_table_gives_each_row_its_ratio_to_the_native_row_of_its_kind():
    from wasmbuild.checks.bench import Timing, table

    lines = table([Timing("native CPython -c pass", (0.010, 0.020, 0.030), "pass"),
                   Timing("native CPython hello.py", (0.040,), "hello"),
                   Timing("python.wasm -c pass", (0.030,), "pass"),
                   Timing("bundle hello.wasm", (0.010,), "hello")])
    assert lines[1].split()[-1] == "1.00x" and "20.0ms" in lines[1] and "10.0ms" in lines[1]
    assert lines[3].split()[-1] == "1.50x"
    assert lines[4].split()[-1] == "0.25x"


# --- node: the light lookup of engines/nodejs.py, and the node an Emscripten artifact runs under -------------

# A fake node: `--version` says v<version>; run with python.js, it prints its arguments, PYTHONHOME and its cwd.
FAKE_NODE = """#!/bin/sh
if [ "$1" = --version ]; then echo v{version}; exit 0; fi
echo "node $*"
echo "home $PYTHONHOME"
echo "cwd $(pwd)"
exit 7
"""


def fake_node(folder: Path, version: str = "20.1.0") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    node = folder / "node"
    node.write_text(FAKE_NODE.format(version=version))
    node.chmod(0o755)
    return node


def node_artifact(tmp_path) -> Path:
    root = tmp_path / "cpython-x-wasm32-emscripten"
    (root / "lib").mkdir(parents=True)
    (root / "python.wasm").write_bytes(b"\0asm")
    (root / "python.js").write_text("")
    return root


def test_the_light_node_lookup_takes_the_named_node_then_path_then_the_pinned_one_already_provisioned(
        tmp_path, monkeypatch):
    from wasmbuild import cache
    from wasmbuild.engines import nodejs
    from wasmbuild.errors import ToolchainError
    from wasmbuild.files import write_json

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ToolchainError, match="(?s)no node >= 18 to run an Emscripten artifact.*WASMBUILD_NODE") as info:
        nodejs.available_node(tmp_path / "cache")
    assert "wasmbuild run` provisions" in str(info.value)
    # the pinned node, when hosttools.ensure has put it into the cache (its pointer file)
    manifest = tmp_path / "host-tools.yaml"
    manifest.write_text("tools: {}\n")
    entry = tmp_path / "cache" / "tools" / "node-abc"
    pinned = fake_node(entry / "bin", "20.18.0")
    cache.write_stamp(entry, "k1")
    write_json(tmp_path / "cache" / "tools" / "node.current.json",
               {"manifest": str(manifest), "manifest_sha256": cache.sha256_file(manifest), "entry": entry.name,
                "key": "k1"})
    assert nodejs.available_node(tmp_path / "cache") == pinned
    # node on PATH, when new enough, comes first; an old one is passed over
    old = fake_node(tmp_path / "old", "16.0.0")
    monkeypatch.setenv("PATH", str(old.parent))
    assert nodejs.available_node(tmp_path / "cache") == pinned
    on_path = fake_node(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert nodejs.available_node(tmp_path / "cache") == on_path.resolve()
    # the named one first of all
    named = fake_node(tmp_path / "named", "22.3.0")
    monkeypatch.setenv("WASMBUILD_NODE", str(named))
    assert nodejs.available_node(tmp_path / "cache") == named.resolve()
    monkeypatch.setenv("WASMBUILD_NODE", str(old))
    with pytest.raises(ToolchainError, match="too old"):
        nodejs.available_node(tmp_path / "cache")


def test_a_node_artifact_runs_under_the_node_its_caller_gives_else_one_already_there(tmp_path, monkeypatch):
    from wasmbuild.errors import ToolchainError

    root = node_artifact(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    given = fake_node(tmp_path / "given")
    out = tmp_path / "out.txt"
    code = artifact.run_python(root, ["-c", "1"], tmp_path / "cache", [(work, "/")], stdout=out, node=lambda: given)
    assert code == 7
    assert out.read_text().splitlines() == [f"node --stack-size=30000 {root / 'python.js'} -c 1", f"home {root}",
                                            f"cwd {work}"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ToolchainError, match="no node >= 18"):
        artifact.run_python(root, ["-c", "1"], tmp_path / "cache", [(work, "/")], stdout=out)
    monkeypatch.setenv("PATH", str(fake_node(tmp_path / "bin").parent))
    assert artifact.run_python(root, ["-c", "1"], tmp_path / "cache", [(work, "/")], stdout=out) == 7


def test_wasmbuild_run_hands_a_node_artifact_the_toolchains_node_finder(tmp_path, monkeypatch):
    from wasmbuild import cli
    from wasmbuild.toolchain import node as toolchain_node

    root = node_artifact(tmp_path)
    given = fake_node(tmp_path / "pinned")
    asked = []
    monkeypatch.setattr(toolchain_node, "find_node",
                        lambda minimum, cache_root=None: asked.append((minimum, cache_root)) or
                        toolchain_node.Node(given, "20.1.0"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--cache-dir", str(tmp_path / "cache"), str(root), "--", "-c", "1"]) == 7
    assert asked == [(toolchain_node.NODE_MINIMUM, tmp_path / "cache")]
