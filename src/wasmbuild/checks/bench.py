"""`wasmbuild bench` (nox -s bench-wasi): start-up of the WASI artifact and of a pre-initialised bundle, side by
side with native CPython of the same version (the build's own native build-python), in one run. Benchmarks print
numbers; they never assert on time.

Rows (each the median wall time of whole processes, after one warm-up run):
  native `-c pass`, hello app, imports app         the reference (ratio 1.00x)
  python.wasm `-c pass` / hello / imports app     the wasmtime CLI, module precompiled (`wasmtime compile`)
  bundles of the hello and the imports app        the same CLI, precompiled; no preopened directory
  an empty WASI module                            the same CLI: its own start-up, the floor of every wasm row
  `wasmbuild run ART -- -c pass`                  the whole `python -m wasmbuild run` process (default engine)
  `wasmbuild run --engine api ART -- -c pass`     the same through wasmtime's Python API
and the bundle's size, raw and gzipped.
"""

from __future__ import annotations

import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wasmbuild import log, pipeline
from wasmbuild.artifact import unpack_artifact, wasi_python
from wasmbuild.bundle import make_bundle
from wasmbuild.engines.wasmtime_cli import cli_argv, cli_flags, precompiled
from wasmbuild.errors import RunError
from wasmbuild.recipe import Recipe
from wasmbuild.steps import BuildOptions
from wasmbuild.targets import get_target
from wasmbuild.toolchain import hosttools

HELLO = 'print("hello, world")\n'
# An app that does what real apps do at start: import a good part of the standard library. A bundle did these
# imports at bundle time; natively and with plain python.wasm every start does them.
IMPORTS = ("import argparse, dataclasses, datetime, decimal, email.parser, json, logging, pathlib, re, "
           "statistics, typing, urllib.parse\nprint('imported')\n")
# The smallest WASI command (proc_exit(0)): the wasmtime CLI's own start-up, the floor of every wasm row.
TRIVIAL_WAT = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 0))))"""


@dataclass(frozen=True)
class Timing:
    label: str
    times: tuple[float, ...]
    reference: str  # which native row it is compared with: "pass" or "hello"

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def time_command(argv: Sequence[str], runs: int, *, cwd: Path, expect: str | None = None,
                 env: dict[str, str] | None = None) -> tuple[float, ...]:
    """Wall times of `runs` runs of argv (after one warm-up run whose output is checked against `expect`)."""
    warm = subprocess.run(list(argv), cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
                          env=env)
    if warm.returncode != 0 or (expect is not None and warm.stdout.strip() != expect):
        tail = (warm.stderr.strip().splitlines() or [warm.stdout.strip() or "(no output)"])[-1]
        raise RunError(f"benchmark command failed (exit {warm.returncode}): {' '.join(argv)}: {tail}")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False, env=env)
        times.append(time.perf_counter() - start)
    return tuple(times)


def table(timings: Sequence[Timing]) -> list[str]:
    """The printed rows: median, min, max in ms and the ratio to the native row of the same kind."""
    native = {t.reference: t.median for t in timings if t.label.startswith("native")}
    lines = [f"{'':<46} {'median':>9} {'min':>9} {'max':>9} {'vs native':>10}"]
    for t in timings:
        ratio = t.median / native[t.reference] if native.get(t.reference) else float("nan")
        lines.append(f"{t.label:<46} {t.median * 1000:>7.1f}ms {min(t.times) * 1000:>7.1f}ms "
                     f"{max(t.times) * 1000:>7.1f}ms {ratio:>9.2f}x")
    return lines


def bench(recipe: Recipe, runs: int, options: BuildOptions) -> list[Timing]:
    """`wasmbuild bench`: build (or reuse) the WASI artifact of `recipe`, whose native build-python is the
    reference; provision the pinned wasmtime CLI; bundle the apps with make_bundle; time every row."""
    artifact = pipeline.build(options.context(recipe, "wasi"), get_target("wasi"))
    wasmtime = hosttools.ensure(["wasmtime"], options.root, options.cache, options.sources)[0].path("wasmtime")

    def bundle_app(app: Path, out: Path) -> None:
        make_bundle(app, out, options=options, artifact=artifact.archive)

    return bench_wasi(artifact.archive, artifact.build_python.python, wasmtime, bundle_app, recipe.version, runs,
                      options.cache)


def bench_wasi(artifact: Path, native: Path, wasmtime: Path, bundle_app: Callable[[Path, Path], None], version: str,
               runs: int, cache_root: Path) -> list[Timing]:
    """Time every row (see the module docstring) and print the table; `bundle_app(hello.py, out.wasm)` makes the
    bundle. Returns the timings."""
    with tempfile.TemporaryDirectory(prefix="wasmbuild-bench-") as tmp:
        work = Path(tmp)
        hello = work / "hello.py"
        hello.write_text(HELLO)
        imports = work / "imports.py"
        imports.write_text(IMPORTS)
        import wasmtime as wasmtime_api

        trivial = work / "empty.wasm"
        trivial.write_bytes(wasmtime_api.wat2wasm(TRIVIAL_WAT))
        root = unpack_artifact(artifact, cache_root)
        wasm = root / "python.wasm"
        cwasm = precompiled(wasmtime, wasm, cache_root)

        def cli(args: list[str]) -> list[str]:
            """What `wasmbuild run` hands to the CLI for this artifact (wasmtime_cli.cli_argv)."""
            _, argv, dirs, env = wasi_python(root, args, [(work, "/")])
            return cli_argv(wasmtime, cwasm, argv, dirs, env)

        log.info("▶ bundling the hello app and the imports app")
        app = work / "hello.wasm"
        bundle_app(hello, app)
        app_cwasm = precompiled(wasmtime, app, cache_root)
        imports_app = work / "imports.wasm"
        bundle_app(imports, imports_app)
        imports_cwasm = precompiled(wasmtime, imports_app, cache_root)
        trivial_cwasm = precompiled(wasmtime, trivial, cache_root)
        aot = [str(wasmtime), "run", "--allow-precompiled", *cli_flags()]
        me = [sys.executable, "-m", "wasmbuild", "run", "--cache-dir", str(cache_root)]
        rows = [
            ("native CPython -c pass", [str(native), "-c", "pass"], "pass", None),
            ("native CPython hello.py", [str(native), str(hello)], "hello", "hello, world"),
            ("python.wasm -c pass (wasmtime CLI, AOT)", cli(["-c", "pass"]), "pass", None),
            ("python.wasm hello.py (wasmtime CLI, AOT)", cli(["/hello.py"]), "hello", "hello, world"),
            ("bundle hello.wasm (wasmtime CLI, AOT)", [*aot, str(app_cwasm)], "hello", "hello, world"),
            ("native CPython imports.py", [str(native), str(imports)], "imports", "imported"),
            ("python.wasm imports.py (wasmtime CLI, AOT)", cli(["/imports.py"]), "imports", "imported"),
            ("bundle imports.wasm (wasmtime CLI, AOT)", [*aot, str(imports_cwasm)], "imports", "imported"),
            ("empty WASI module (wasmtime CLI, AOT)", [*aot, str(trivial_cwasm)], "pass", None),
            ("wasmbuild run -c pass (whole process)", [*me, str(artifact), "--", "-c", "pass"], "pass", None),
            ("wasmbuild run --engine api -c pass", [*me, "--engine", "api", str(artifact), "--", "-c", "pass"],
             "pass", None),
        ]
        # Native CPython with its bytecode cache, as an installed Python has it: the warm-up run writes the .pyc
        # (under the work directory, whatever PYTHONDONTWRITEBYTECODE says), the timed runs read them.
        native_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        native_env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        timings = []
        for label, argv, ref, expect in rows:
            log.info(f"▶ {label}")
            env = native_env if argv[0] == str(native) else None
            timings.append(Timing(label, time_command(argv, runs, cwd=work, expect=expect, env=env), ref))
        raw = app.read_bytes()
        sizes = (len(raw), len(gzip.compress(raw, 9, mtime=0)), wasm.stat().st_size)
    print()
    print(f"CPython {version} for WASI: {artifact.name}; native: {native}; wasmtime: {wasmtime}; {runs} runs each")
    for line in table(timings):
        print(line)
    print(f"bundle hello.wasm: {sizes[0] / 1e6:.1f} MB raw, {sizes[1] / 1e6:.1f} MB gzipped "
          f"(python.wasm alone: {sizes[2] / 1e6:.1f} MB, standard library as files beside it)")
    return timings
