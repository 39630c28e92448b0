"""The fast start of `wasmbuild run`: the real in-process run path (`--engine api`) on a tiny guest imports
neither yaml nor requests nor the build's modules (recipes, downloads, toolchains, targets, the pipeline)."""

from __future__ import annotations

import json
import subprocess
import sys

import wasmtime

# A WASI command that writes one line to stdout and returns from _start (exit status 0).
HELLO = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "guest ran\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 10))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""
FORBIDDEN = ("yaml", "requests", "urllib3", "wasmbuild.recipe", "wasmbuild.download", "wasmbuild.pipeline")
FORBIDDEN_PACKAGES = ("wasmbuild.toolchain", "wasmbuild.targets")
RUN = """
import json, sys
from wasmbuild.cli import main
rc = main(['run', '--engine', 'api', '--cache-dir', sys.argv[1], sys.argv[2], '--', '-c', 'pass'])
sys.stdout.flush()
print(json.dumps({'rc': rc, 'modules': sorted(sys.modules)}))
"""


def test_the_in_process_run_of_a_tiny_guest_imports_nothing_of_the_build(tmp_path):
    art = tmp_path / "cpython-x-wasm32-wasip1"
    (art / "lib").mkdir(parents=True)
    (art / "python.wasm").write_bytes(wasmtime.wat2wasm(HELLO))
    proc = subprocess.run([sys.executable, "-c", RUN, str(tmp_path / "cache"), str(art)], cwd=tmp_path,
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "guest ran" in lines
    result = json.loads(lines[-1])
    assert result["rc"] == 0, proc.stderr
    modules = result["modules"]
    assert "wasmtime" in modules  # the in-process engine did run
    imported = sorted(m for m in modules if m in FORBIDDEN
                      or any(m == p or m.startswith(p + ".") for p in FORBIDDEN_PACKAGES))
    assert imported == []
