"""The web variant of the Emscripten artifact, built for real (relinked from the cached node build) and loaded
through its JS API under node, as a page would load it."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

from tests.integration.conftest import wasmbuild

VERSION = "3.13.15"
NAME = f"cpython-{VERSION}-wasm32-emscripten-web"
# python.mjs imported, the module created without running main, Python initialised and given code through the
# exported C functions (no bytecode written into the in-memory file system: the package's own files are checked).
NODE_CHECK = """
const { default: createPython } = await import(process.argv[1]);
const py = await createPython({ noInitialRun: true, preRun: [(m) => { m.ENV.PYTHONDONTWRITEBYTECODE = '1'; }] });
py._Py_Initialize();
const status = py.ccall('PyRun_SimpleString', 'number', ['string'], [process.argv[2]]);
if (py._Py_FinalizeEx() !== 0 || status !== 0) process.exit(1);
"""


def node() -> str:
    from wasmbuild.cache import default_cache_dir
    from wasmbuild.toolchain.node import NODE_MINIMUM, find_node

    return str(find_node(NODE_MINIMUM, cache_root=default_cache_dir()).path)


def run_node(module: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([node(), "--input-type=module", "-e", NODE_CHECK, module.as_uri(), code], cwd=cwd,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)


def test_archive_layout_and_record(web_dist):
    with tarfile.open(web_dist / f"{NAME}.tar.gz") as tar:
        names = tar.getnames()
    assert names == [NAME, *(f"{NAME}/{m}" for m in ("BUILD.json", "LICENSE", "python.data", "python.mjs",
                                                      "python.wasm"))]
    assert sorted(p.name for p in web_dist.iterdir()) == ["SHA256SUMS", f"{NAME}.BUILD.json",
                                                          f"{NAME}.provenance.json", f"{NAME}.tar.gz",
                                                          f"wasmbuild-cpython-{VERSION}-wasmbuild.3.tgz"]
    record = json.loads((web_dist / f"{NAME}.BUILD.json").read_text())
    assert record["target"] == {"name": "emscripten", "triple": "wasm32-emscripten", "variant": "web"}
    assert "-sSTACK_SIZE=16777216" in record["configure"]["ldflags"]  # the node build's, kept by the relink
    assert "-sNODERAWFS" in record["configure"]["web_link"]["removed"]
    assert record["artifact"]["python.data"]["mount"] == "/lib/python3.13"
    assert record["artifact"]["dev"] is None and record["artifact"]["debuginfo"] is None
    sums = (web_dist / "SHA256SUMS").read_text()
    assert f"  {NAME}.tar.gz" in sums and f"  {NAME}.BUILD.json" in sums


def test_the_js_api_initialises_python_under_node(web_root, tmp_path):
    # From another directory: python.wasm and python.data are found beside python.mjs.
    proc = run_node(web_root / "python.mjs", "import sys, zlib, sqlite3, json, decimal; print(sys.platform)",
                    tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "emscripten"
    assert proc.stderr == ""


def test_the_file_package_holds_what_a_browser_can_use(web_root, tmp_path):
    code = """
import os, sys, ctypes, lzma, bz2, _wasmbuild_web
lib = '/lib/python3.13'
names = set(os.listdir(lib))
left_out = ['test', 'idlelib', 'tkinter', 'turtledemo', 'ensurepip', 'lib2to3', 'venv', 'pydoc_data', '__phello__',
            'turtle.py', 'config-3.13-wasm32-emscripten']
assert not [n for n in left_out if n in names], [n for n in left_out if n in names]
assert os.listdir(lib + '/lib-dynload') == ['.empty'], os.listdir(lib + '/lib-dynload')
assert not [d for d, _, _ in os.walk(lib) if d.endswith('__pycache__')]
sourceless = [n for n in names if n.endswith('.pyc')]
assert sourceless and ('os.py' in names or 'os.pyc' in names)
assert _wasmbuild_web.__file__ == lib + '/_wasmbuild_web.py'
assert sys.prefix == sys.exec_prefix == '/' and os.getcwd() == '/'
assert not os.path.exists('/etc/passwd')  # no NODERAWFS: the in-memory file system only
print('ok', len(sourceless))
"""
    proc = run_node(web_root / "python.mjs", code, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.startswith("ok ")


def test_no_build_paths_in_the_artifact(web_root):
    cache_dir = os.environ.get("WASMBUILD_CACHE_DIR", str(Path.home() / ".cache" / "wasmbuild"))
    for name in ("python.mjs", "python.wasm", "python.data"):
        assert cache_dir.encode() not in (web_root / name).read_bytes()


def test_a_web_artifact_is_smoke_tested_but_not_run_as_a_command(web_dist):
    archive = str(web_dist / f"{NAME}.tar.gz")
    wasmbuild("smoke-test", archive)
    proc = wasmbuild("run", archive, "--", "-c", "pass", check=False)
    assert proc.returncode == 2 and "is a web artifact: it runs in a browser" in proc.stderr


def test_second_build_relinks_nothing_and_gives_identical_bytes(web_dist, tmp_path):
    before = {p.name: p.read_bytes() for p in web_dist.iterdir() if p.is_file()}
    proc = wasmbuild("build", "--target", "emscripten", "--variant", "web", "--dist-dir", str(web_dist),
                     "--no-smoke-test")
    assert "Link CPython" not in proc.stderr and "Configure CPython" not in proc.stderr
    assert {p.name: p.read_bytes() for p in web_dist.iterdir() if p.is_file()} == before
    # Into another dist/: the same archive (the web link and the staging are cache entries).
    other = tmp_path / "dist"
    wasmbuild("build", "--target", "emscripten", "--variant", "web", "--dist-dir", str(other), "--no-smoke-test")
    assert (other / f"{NAME}.tar.gz").read_bytes() == before[f"{NAME}.tar.gz"]
