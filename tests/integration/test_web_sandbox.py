"""The web variant built for real: Python in it cannot run JavaScript from a string, start a shell command or load a
script or a URL through Emscripten's library (reached through ctypes), under node where that would act as the host
user. Linked with -sDYNAMIC_EXECUTION=0 and wasmbuild's JS library (targets/emscripten_web.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_web import NAME, node

pytestmark = pytest.mark.integration

# Python run through the module's exported C functions; an abort of the module (a JS exception out of
# PyRun_SimpleString) is caught and reported instead of crashing node.
DRIVER = """
const { default: createPython } = await import(process.argv[1]);
const out = [], err = [];
const py = await createPython({ noInitialRun: true, print: (l) => out.push(l), printErr: (l) => err.push(l) });
py._Py_Initialize();
let status = null, error = null;
try {
  status = py.ccall('PyRun_SimpleString', 'number', ['string'], [process.argv[2]]);
} catch (e) {
  error = String(e && e.message || e);
}
process.stdout.write(JSON.stringify({ status, error, out, err }) + '\\n');
"""


@pytest.fixture(scope="module")
def python_mjs(web_root) -> Path:
    return web_root / "python.mjs"


def run(python_mjs: Path, code: str, cwd: Path) -> dict:
    proc = subprocess.run([node(), "--input-type=module", "-e", DRIVER, python_mjs.as_uri(), code], cwd=cwd,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_record_lists_no_dynamic_execution(web_dist):
    record = json.loads((web_dist / f"{NAME}.BUILD.json").read_text())
    link = record["configure"]["web_link"]
    assert "-sDYNAMIC_EXECUTION=0" in link["added"] and link["js_library"] == ["wasmbuild-web-lib.js"]


@pytest.mark.parametrize("call", [
    "emscripten_run_script(JS)",
    "emscripten_run_script_int(JS)",
    "emscripten_run_script_string(JS)",
    "emscripten_async_run_script(JS, 0)",
])
def test_python_cannot_run_javascript_through_ctypes(python_mjs, tmp_path, call):
    marker = tmp_path / "javascript-ran"
    js = f"require('fs').writeFileSync({json.dumps(str(marker))}, 'ran'), 1"
    result = run(python_mjs, f"import ctypes\nJS = {js!r}.encode()\nctypes.CDLL(None).{call}\nprint('after')",
                 tmp_path)
    assert not marker.exists()
    # The module aborts instead of evaluating: the interpreter stops (the JS API then rejects with a plain Error).
    assert result["status"] is None and "after" not in result["out"], result
    assert "DYNAMIC_EXECUTION=0 was set, cannot eval" in result["error"] or "is disabled in the web variant" in \
        result["error"], result


@pytest.mark.parametrize("code", [
    "import os\nprint(os.system(f'touch {MARKER}'))",
    "import ctypes\nprint(ctypes.CDLL(None).system(f'touch {MARKER}'.encode()))",
])
def test_python_cannot_start_a_shell_command(python_mjs, tmp_path, code):
    marker = tmp_path / "shell-ran"
    result = run(python_mjs, f"MARKER = {str(marker)!r}\n{code}", tmp_path)
    assert not marker.exists()
    assert result["status"] == 0 and result["out"] == ["-1"], result  # system(): -1, errno ENOSYS (no shell)


@pytest.mark.parametrize("call", [
    "emscripten_async_load_script(PATH, None, None)",
    "emscripten_async_wget(PATH, b'/tmp/copy', None, None)",
])
def test_python_cannot_load_a_script_or_a_url(python_mjs, tmp_path, call):
    marker = tmp_path / "script-ran"
    script = tmp_path / "script.js"
    script.write_text(f"require('fs').writeFileSync({json.dumps(str(marker))}, 'ran');\n")
    result = run(python_mjs, f"import ctypes\nPATH = {str(script)!r}.encode()\nctypes.CDLL(None).{call}\n"
                 "print('after')", tmp_path)
    assert not marker.exists()
    assert result["status"] is None and "is disabled in the web variant" in result["error"], result


def test_ctypes_itself_still_works(python_mjs, tmp_path):
    result = run(python_mjs, "import ctypes\nprint(ctypes.CDLL(None).strlen(b'abcd'))", tmp_path)
    assert result == {"status": 0, "error": None, "out": ["4"], "err": []}


def test_dlopen_loads_no_file_from_outside_the_modules_file_system(python_mjs, tmp_path):
    """Under node Emscripten's dlopen read a name missing from MEMFS with fs.readFileSync (a worker: a synchronous
    XMLHttpRequest of any URL): a host file's existence showed in the error. Now both say the same."""
    present = tmp_path / "present.so"
    present.write_bytes(b"not wasm")
    code = (f"import ctypes\nfor path in ({str(present)!r}, {str(tmp_path / 'absent.so')!r}):\n    try:\n"
            "        ctypes.CDLL(path)\n    except OSError as e:\n        print(repr(str(e).replace(path, 'PATH')))\n")
    result = run(python_mjs, code, tmp_path)
    assert result["status"] == 0 and len(result["out"]) == 2, result
    assert result["out"][0] == result["out"][1] and "synchronous loading of external files" in result["out"][0]
