"""Benchmarks print numbers; they never assert on time."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from wasmbuild import cache
from wasmbuild.errors import RunError
from wasmbuild.process import call
from wasmbuild.runner import _engine, load_module, run_python, unpack_artifact


def bench_wasi(artifact: Path, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="wasmbuild-bench-") as tmp:
        cache_root = Path(tmp) / "cache"
        root = unpack_artifact(artifact, cache_root)
        wasm = root / "python.wasm"
        wasm_mb = wasm.stat().st_size / 1e6
        engine = _engine()
        start = time.perf_counter()
        load_module(engine, wasm, cache_root)
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        load_module(engine, wasm, cache_root)
        deserialize_s = time.perf_counter() - start
        work = Path(tmp) / "work"
        work.mkdir()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            code = run_python(root, ["-c", "pass"], cache_root, [(work, "/")])
            times.append(time.perf_counter() - start)
            if code != 0:
                raise RunError(f"{wasm} -c pass exited {code}")
        cli = []
        for _ in range(max(1, runs // 2)):
            start = time.perf_counter()
            code = call([sys.executable, "-m", "wasmbuild", "run", "--cache-dir", str(cache_root), str(artifact),
                         "--", "-c", "pass"], cwd=work)
            if code != 0:
                raise RunError(f"`wasmbuild run {artifact} -- -c pass` exited {code}")
            cli.append(time.perf_counter() - start)
    print(f"artifact:                 {artifact} (python.wasm {wasm_mb:.1f} MB, "
          f"sha256 {cache.sha256_file(artifact)[:16]})")
    print(f"compile module (cold):    {compile_s:.2f} s")
    print(f"load serialized module:   {deserialize_s:.3f} s")
    print(f"-c pass in-process warm:  median {statistics.median(times) * 1000:.0f} ms "
          f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, n={runs}; includes module load)")
    print(f"`wasmbuild run -c pass`:  median {statistics.median(cli) * 1000:.0f} ms (whole CLI process, cached module)")
