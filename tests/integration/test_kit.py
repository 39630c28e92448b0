"""The cross-build kit, for real: a C program embedding the WASI artifact's libpython (built with only its
pkg-config files, run under wasmtime), and an extension module built into each target's artifact by
`wasmbuild link` (WASI: a new python.wasm; Emscripten: a side module in lib-dynload/), imported and called."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, wasmbuild
from tests.integration.test_emscripten import NAME as EM_NAME
from tests.integration.test_wasi import NAME, VERSION, sha256
from wasmbuild.archive import safe_extract
from wasmbuild.engines.wasmtime_api import run_wasm

CEXT = ROOT / "tests" / "data" / "cext"
SHORT = ".".join(VERSION.split(".")[:2])
USE_MODULE = ("import wbdemo; c = wbdemo.Counter(5); c.increment(); "
              "print(wbdemo.add(2, 3), c.increment(10), c.value, type(c).__name__, wbdemo.__spec__.origin)")


def unpack(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive) as tar:
        safe_extract(tar, dest)
    return dest / NAME if (dest / NAME).is_dir() else next(dest.iterdir())


def test_dev_archive_is_listed_and_merges_into_the_artifact(wasi_dist: Path, tmp_path: Path):
    dev = wasi_dist / f"{NAME}-dev.tar.gz"
    sums = dict(line.split("  ")[::-1] for line in (wasi_dist / "SHA256SUMS").read_text().splitlines())
    assert sums[dev.name] == sha256(dev)
    root = unpack(wasi_dist / f"{NAME}.tar.gz", tmp_path)
    unpack(dev, tmp_path)
    assert (root / "lib" / f"libpython{SHORT}.a").is_file() and (root / "lib" / "libsqlite3.a").is_file()
    config = next((root / "lib" / f"python{SHORT}").glob(f"config-{SHORT}-*"))
    assert (config / f"libpython{SHORT}.a").resolve() == (root / "lib" / f"libpython{SHORT}.a").resolve()
    record = json.loads((root / "BUILD.json").read_text())
    assert record["artifact"]["dev"] == dev.name
    assert (root / "include" / f"python{SHORT}" / "pyconfig.h").is_file()
    # python-config answers from wherever the artifact is, with the whole static link line.
    out = subprocess.run(["sh", root / "bin" / f"python{SHORT}-config", "--embed", "--ldflags", "--includes"],
                         capture_output=True, text=True, check=True).stdout
    assert f"-I{root}/include/python{SHORT}" in out and f"-lpython{SHORT} -lmpdec" in out and "-lsqlite3" in out
    # The sysconfig data names the artifact's own layout (the guest's root is the prefix).
    code = ("import os, sysconfig; v = sysconfig.get_config_vars(); "
            "print(v['LIBPL'], v['INCLUDEPY'], v['LIBDIR'], os.path.isfile(sysconfig.get_makefile_filename()))")
    proc = wasmbuild("run", str(wasi_dist / f"{NAME}.tar.gz"), "--", "-c", code, cwd=tmp_path)
    assert proc.stdout.split() == [f"/lib/python{SHORT}/{config.name}", f"/include/python{SHORT}", "/lib", "True"]


def test_a_c_program_embeds_python_with_only_the_pkg_config_files(wasi_dist: Path, tmp_path: Path):
    pkg_config = shutil.which("pkg-config")
    if pkg_config is None:
        pytest.skip("no pkg-config on PATH (Debian: apt-get install pkg-config; .ci/run installs it)")
    root = unpack(wasi_dist / f"{NAME}.tar.gz", tmp_path)
    unpack(wasi_dist / f"{NAME}-dev.tar.gz", tmp_path)
    sdk = Path(wasmbuild("toolchain", "--target", "wasi").stdout.strip())
    env = {"PKG_CONFIG_PATH": str(root / "lib" / "pkgconfig"), "PKG_CONFIG_LIBDIR": "", "PATH": "/usr/bin:/bin"}
    flags = subprocess.run([pkg_config, "--cflags", "--libs", f"python-{SHORT}-embed"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    program = tmp_path / "embed.wasm"
    subprocess.run([sdk / "bin" / "clang", "--target=wasm32-wasip1", f"--sysroot={sdk / 'share' / 'wasi-sysroot'}",
                    "-O2", "-o", program, CEXT / "embed.c", *flags], check=True)
    out = tmp_path / "out.txt"
    status = run_wasm(program, ["embed", "arg"], tmp_path / "cache", dirs=[(root / "lib", "/lib")], env={},
                      stdout=out)
    # 45 (sum in sqlite) + 1 (Decimal) + 2 (argv): computed by Python, returned by main().
    assert status == 48, out.read_text()
    assert out.read_text().strip() == f"embedded {VERSION} ['embed', 'arg'] 48"


def test_link_builds_an_extension_module_into_python_wasm(wasi_dist: Path, tmp_path: Path):
    out = tmp_path / "linked"
    proc = wasmbuild("link", str(wasi_dist / f"{NAME}.tar.gz"), "--module", str(CEXT / "wbdemo.c"), "-o", str(out))
    assert "wbdemo built in" in proc.stderr
    run = wasmbuild("run", str(out), "--", "-c", USE_MODULE + "; import zlib, sqlite3", cwd=tmp_path)
    assert run.stdout.split() == ["5", "16", "16", "Counter", "built-in"]
    record = json.loads((out / "BUILD.json").read_text())
    linked = record["artifact"]["linked_modules"]
    obj = "lib/python3.13/config-3.13-wasm32-wasi/modules/wbdemo.o"  # kept for the next link or a bundle
    assert linked == [{"name": "wbdemo", "sources": [{"file": "wbdemo.c", "sha256": sha256(CEXT / "wbdemo.c")}],
                       "file": "python.wasm", "object": obj, "object_sha256": sha256(out / obj)}]
    assert record["artifact"]["python.wasm"]["sha256"] == sha256(out / "python.wasm")
    assert record["artifact"]["debuginfo"] is None and record["artifact"]["dev"] is None
    wasmbuild("smoke-test", str(out))
    # As an archive: deterministic, a second link gives the same bytes.
    first, second = tmp_path / "a" / "linked.tar.gz", tmp_path / "b" / "linked.tar.gz"
    for path in (first, second):
        path.parent.mkdir()
        wasmbuild("link", str(wasi_dist / f"{NAME}.tar.gz"), "--module", str(CEXT / "wbdemo.c"), "-o", str(path))
    assert sha256(first) == sha256(second)
    # Replacing an earlier output is allowed (it holds BUILD.json).
    wasmbuild("link", str(wasi_dist / f"{NAME}.tar.gz"), "--module", f"wbdemo={CEXT / 'wbdemo.c'}", "-o", str(out))


def test_a_module_that_does_not_compile_gives_the_compiler_error_and_no_output(wasi_dist: Path, tmp_path: Path):
    bad = tmp_path / "broken.c"
    bad.write_text('#include <Python.h>\nPyMODINIT_FUNC PyInit_broken(void) { return nope_undeclared; }\n')
    out = tmp_path / "out"
    proc = wasmbuild("link", str(wasi_dist / f"{NAME}.tar.gz"), "--module", str(bad), "-o", str(out), check=False)
    assert proc.returncode == 7, proc.stderr
    assert "nope_undeclared" in proc.stderr and "full log:" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["broken.c"]
    # One that compiles but whose init fails: the import check catches it, nothing is written either.
    failing = tmp_path / "failing.c"
    failing.write_text('#include <Python.h>\nPyMODINIT_FUNC PyInit_failing(void) {\n'
                       '    PyErr_SetString(PyExc_RuntimeError, "init refused"); return NULL; }\n')
    proc = wasmbuild("link", str(wasi_dist / f"{NAME}.tar.gz"), "--module", str(failing), "-o", str(out),
                     check=False)
    assert proc.returncode == 7 and "init refused" in proc.stderr
    assert not out.exists()


def test_link_builds_a_side_module_into_lib_dynload_on_emscripten(em_dist: Path, tmp_path: Path):
    out = tmp_path / "linked"
    wasmbuild("link", str(em_dist / f"{EM_NAME}.tar.gz"), "--module", str(CEXT / "wbdemo.c"), "-o", str(out))
    record = json.loads((out / "BUILD.json").read_text())
    (entry,) = record["artifact"]["linked_modules"]
    abi = SHORT.replace(".", "")
    assert entry["file"] == f"lib/python{SHORT}/lib-dynload/wbdemo.cpython-{abi}-wasm32-emscripten.so"
    assert record["artifact"]["files"][entry["file"]]["sha256"] == sha256(out / entry["file"])
    run = wasmbuild("run", str(out), "--", "-c", USE_MODULE, cwd=tmp_path)
    words = run.stdout.split()
    assert words[:4] == ["5", "16", "16", "Counter"] and words[4].endswith(entry["file"].rsplit("/", 1)[1])


SECOND = ('#include <Python.h>\nstatic struct PyModuleDef d = {PyModuleDef_HEAD_INIT, "wbsecond", 0, -1, 0};\n'
          "PyMODINIT_FUNC PyInit_wbsecond(void) { return PyModule_Create(&d); }\n")


def test_relinking_keeps_or_refuses_earlier_modules_refuses_builtin_names_and_takes_spaces(wasi_dist: Path,
                                                                                         tmp_path: Path):
    from tests.integration.test_bundle import spaced_cache

    cache_dir = ("--cache-dir", str(spaced_cache(tmp_path)))
    out_dir = tmp_path / "out dir"
    out_dir.mkdir()
    second = tmp_path / "src dir" / "wbsecond.c"
    second.parent.mkdir()
    second.write_text(SECOND)
    first = out_dir / "linked"
    wasmbuild("link", str(wasi_dist / f"{NAME}.tar.gz"), "--module", str(CEXT / "wbdemo.c"), "-o", str(first),
              *cache_dir)
    # wbdemo is linked again from the object the artifact keeps: not given, not lost.
    kept = out_dir / "kept"
    proc = wasmbuild("link", str(first), "--module", str(second), "-o", str(kept), *cache_dir)
    assert "kept from linked: wbdemo" in proc.stderr
    run = wasmbuild("run", str(kept), *cache_dir, "--", "-c", "import wbsecond, wbdemo; print(wbdemo.add(2, 3))",
                    cwd=tmp_path)
    assert run.stdout.split() == ["5"]
    assert [m["name"] for m in json.loads((kept / "BUILD.json").read_text())["artifact"]["linked_modules"]] == [
        "wbdemo", "wbsecond"]
    # One linked by an older wasmbuild (no object kept) must be given again.
    (first / "lib/python3.13/config-3.13-wasm32-wasi/modules/wbdemo.o").unlink()
    proc = wasmbuild("link", str(first), "--module", str(second), "-o", str(out_dir / "lost"), *cache_dir,
                     check=False)
    assert proc.returncode == 2 and "already has linked modules built into its python.wasm (wbdemo)" in proc.stderr
    assert "Traceback" not in proc.stderr and not (out_dir / "lost").exists()
    both = out_dir / "both.tar.gz"
    wasmbuild("link", str(first), "--module", str(CEXT / "wbdemo.c"), "--module", str(second), "-o", str(both),
              *cache_dir)
    run = wasmbuild("run", str(both), *cache_dir, "--", "-c", "import wbsecond, wbdemo; print(wbdemo.add(2, 3))",
                    cwd=tmp_path)
    assert run.stdout.split() == ["5"]
    builtin = tmp_path / "_json.c"
    builtin.write_text(SECOND)
    proc = wasmbuild("link", str(wasi_dist / f"{NAME}.tar.gz"), "--module", str(builtin), "-o",
                     str(out_dir / "shadow"), *cache_dir, check=False)
    assert proc.returncode == 2 and "'_json' is a built-in module of the artifact" in proc.stderr
    proc = wasmbuild("link", str(wasi_dist / f"{NAME}.tar.gz"), "--module", str(second), "-o", "/proc/linked",
                     check=False)
    assert proc.returncode == 2 and "cannot write into /proc" in proc.stderr and "Traceback" not in proc.stderr
