"""The web artifact for real: its JavaScript API under node (through the npm package), and the REPL page served by
`wasmbuild serve` in Debian's headless chromium (through Debian's chromedriver and selenium): typed input, output,
tracebacks, a long loop during which the page stays responsive, a failed download shown on the page.

The numbers (bytes the page loads, raw and gzip-compressed; time to the first prompt) are printed and written to
reports/browser-repl.json, the screenshot to reports/browser-repl.png."""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, wasmbuild
from tests.wheels import make_wheel, sha256_hex
from wasmbuild import serve
from wasmbuild.archive import safe_extract
from wasmbuild.npm import NPM_NAME, is_npm_tarball

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
NEEDS_CHROMIUM = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver; "
           ".ci/run installs them)")
REPORTS = ROOT / "reports"
# What the page loads: the page, its modules, the JS API, the interpreter and the standard library.
PAGE_FILES = ("index.html", "repl.css", "repl.mjs", "worker.mjs", "wasmbuild-python.mjs", "python.mjs", "python.wasm",
              "python.data")


@pytest.fixture(scope="module")
def web_archive(web_dist) -> Path:
    (archive,) = web_dist.glob("cpython-*-wasm32-emscripten-web.tar.gz")
    return archive


@pytest.fixture(scope="module")
def npm_tarball(web_dist, web_archive) -> Path:
    """The build's npm package (wasmbuild npm-pack makes it when the build has not)."""
    found = [p for p in web_dist.iterdir() if is_npm_tarball(p.name)]
    if not found:
        wasmbuild("npm-pack", str(web_archive), "--dist-dir", str(web_dist))
        found = [p for p in web_dist.iterdir() if is_npm_tarball(p.name)]
    (tarball,) = found
    assert f"  {tarball.name}\n" in (web_dist / "SHA256SUMS").read_text()
    return tarball


def node() -> str:
    from wasmbuild.cache import default_cache_dir
    from wasmbuild.toolchain.node import NODE_MINIMUM, find_node

    return str(find_node(NODE_MINIMUM, cache_root=default_cache_dir()).path)


def run_node(script: str, cwd: Path, name: str = "test.mjs") -> dict:
    (cwd / name).write_text(script)
    proc = subprocess.run([node(), name], cwd=cwd, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"node exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the JavaScript API under node, from the npm package -----------------------------------------------------

NODE_SCRIPT = """
import { loadPython, PythonError } from '@wasmbuild/cpython';
const out = [], err = [], stages = [];
const py = await loadPython({ stdout: (l) => out.push(l), stderr: (l) => err.push(l),
                              onProgress: (p) => stages.includes(p.stage) || stages.push(p.stage) });
const r = { version: py.version, stages };
r.print = await py.runPython('print(6 * 7)');
r.sum = await py.runPython('1 + 1');
r.state = await py.runPython('x = 20\\nx + 22');
for (const [key, code] of [['syntax', '1 +'], ['exc', 'def f():\\n    return 1 / 0\\nf()']]) {
  try {
    await py.runPython(code);
    r[key] = 'no error';
  } catch (e) {
    r[key] = { isError: e instanceof Error, isPython: e instanceof PythonError, type: e.type, message: e.message };
  }
}
r.after = await py.runPython('x');
r.complete = [py.complete('if x:'), py.complete('for i in y:\\n    pass'), py.complete('1'), py.complete('1 +')];
py.FS.writeFile('/tmp/from-js.txt', 'written by JS');
r.fs = await py.runPython("open('/tmp/from-js.txt').read()");
await py.runPython("open('/tmp/from-py.txt', 'w').write('written by Python')");
r.fsBack = py.FS.readFile('/tmp/from-py.txt', { encoding: 'utf8' });
r.modules = await py.runPython('import sqlite3, zlib, json, decimal, sys\\n'
  + '(sqlite3.sqlite_version, zlib.crc32(b"x"), json.dumps({"a": 1}), str(decimal.Decimal(1) / 8), sys.platform)');
r.unicode = await py.runPython("print('h\\u00e9llo \\u20ac'); 'd\\u00e9j\\u00e0'");
await py.runPython("import sys; sys.stdout.write('no newline')");
console.log(JSON.stringify({ r, out, err }));
"""


@pytest.fixture(scope="module")
def installed(npm_tarball, tmp_path_factory) -> Path:
    """A project with the package installed: by npm from the tarball (offline), else unpacked as npm would."""
    project = tmp_path_factory.mktemp("npm-project")
    (project / "package.json").write_text(json.dumps({"name": "t", "private": True, "type": "module"}))
    npm = shutil.which("npm")
    if npm:
        proc = subprocess.run([npm, "install", "--offline", "--no-audit", "--no-fund", str(npm_tarball)],
                              cwd=project, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr
    else:
        dest = project / "node_modules" / NPM_NAME
        with tarfile.open(npm_tarball) as tar:
            safe_extract(tar, dest, strip_components=1)
    assert (project / "node_modules" / NPM_NAME / "python.wasm").is_file()
    return project


def test_the_api_under_node_from_the_npm_package(installed):
    result = run_node(NODE_SCRIPT, installed)
    r, out, err = result["r"], result["out"], result["err"]
    assert re.fullmatch(r"3\.\d+\.\d+", r["version"])
    assert r["stages"] == ["download", "init", "ready"]
    assert "print" not in r  # undefined: no value
    assert r["sum"] == "2" and r["state"] == "42" and r["after"] == "20"
    assert out[:1] == ["42"]
    assert r["syntax"]["isError"] and r["syntax"]["isPython"] and r["syntax"]["type"] == "SyntaxError"
    assert "SyntaxError: invalid syntax" in r["syntax"]["message"] and "1 +" in r["syntax"]["message"]
    exc = r["exc"]
    assert exc["type"] == "ZeroDivisionError"
    assert exc["message"].startswith("Traceback (most recent call last):")
    assert "return 1 / 0" in exc["message"] and exc["message"].endswith("ZeroDivisionError: division by zero")
    assert r["complete"] == [False, False, True, True]
    assert r["fs"] == "'written by JS'" and r["fsBack"] == "written by Python"
    sqlite_version, crc, dumped, eighth, platform = eval(r["modules"])  # a tuple's repr
    assert re.fullmatch(r"3\.\d+\.\d+", sqlite_version) and crc == 2363233923 and dumped == '{"a": 1}'
    assert eighth == "0.125" and platform == "emscripten"
    assert r["unicode"] == "'déjà'" and "héllo €" in out
    assert out[-1] == "no newline"  # a partial line is handed over when the run ends
    assert not [line for line in err if "Traceback" in line]


def test_a_missing_file_rejects_load_python(installed, tmp_path):
    """indexURL without python.data: loadPython rejects with the file's name and the reason (it does not hang)."""
    package = installed / "node_modules" / NPM_NAME
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("python.mjs", "python.wasm"):
        shutil.copyfile(package / name, partial / name)
    script = f"""
import {{ loadPython }} from '@wasmbuild/cpython';
try {{
  await loadPython({{ indexURL: {json.dumps(str(partial) + "/")} }});
  console.log(JSON.stringify({{ ok: true }}));
}} catch (e) {{
  console.log(JSON.stringify({{ ok: false, message: e.message }}));
}}
"""
    result = run_node(script, installed, "missing.mjs")
    assert result["ok"] is False
    assert "python.data" in result["message"] and "cannot read" in result["message"]


# --- installWheel: pure-Python wheels made in the test ------------------------------------------------------


def make_test_wheels(directory: Path) -> dict[str, Path]:
    """A small pure-Python package (a subpackage, a .data/purelib part, a script left out, a dependency named), and
    a wheel of it tagged for a platform."""
    files = {"wbtiny/__init__.py": "from wbtiny.core import answer\n__version__ = '1.0'\n",
             "wbtiny/core.py": "def answer():\n    return 42\n",
             "wbtiny/sub/__init__.py": "NAME = 'sub'\n",
             "wbtiny-1.0.data/purelib/wbtiny_extra.py": "EXTRA = True\n",
             "wbtiny-1.0.data/scripts/wbtiny": "#!python\n"}
    return {"pure": make_wheel(directory, "wbtiny", "1.0", files, requires=("attrs>=22",)),
            "platform": make_wheel(directory, "wbfast", "1.0", {"wbfast.py": ""},
                                   tag="cp313-cp313-manylinux_2_17_x86_64")}


def check_installed(result: dict, module_check: str) -> None:
    installed = result["installed"]
    assert installed["name"] == "wbtiny" and installed["version"] == "1.0"
    assert installed["location"] == f"/lib/python{result['short']}/site-packages"
    assert f"{installed['location']}/wbtiny/core.py" in installed["files"]
    assert f"{installed['location']}/wbtiny_extra.py" in installed["files"]
    assert f"{installed['location']}/wbtiny-1.0.dist-info/INSTALLER" in installed["files"]
    assert installed["requires"] == ["attrs>=22"] and installed["skipped"] == ["wbtiny-1.0.data/scripts/wbtiny"]
    assert installed["replaced"] is None
    assert module_check == "(42, 'sub', True, '1.0', 'wasmbuild\\n')"


WHEEL_NODE_SCRIPT = """
import { loadPython, WheelError } from '@wasmbuild/cpython';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [pure, platform, sha256] = JSON.parse(process.argv[2]);
const err = [];
const py = await loadPython({ stdout: () => {}, stderr: (l) => err.push(l) });
const r = { short: py.version.split('.').slice(0, 2).join('.') };
const refusal = async (source, options) => {
  try {
    await py.installWheel(source, options);
    return 'installed';
  } catch (e) {
    return { name: e.name, isWheelError: e instanceof WheelError, message: e.message };
  }
};
r.mismatch = await refusal(pathToFileURL(pure).href, { sha256: '0'.repeat(64) });
r.platform = await refusal(pathToFileURL(platform).href, {});
r.noName = await refusal(readFileSync(platform), {});
r.notZip = await refusal(new TextEncoder().encode('<html>not found</html>'), { filename: 'x-1-py3-none-any.whl' });
r.importBefore = await py.runPython("import importlib.util; importlib.util.find_spec('wbtiny') is None");
r.installed = await py.installWheel(pathToFileURL(pure).href, { sha256 });
r.module = await py.runPython("import wbtiny, wbtiny.sub, wbtiny_extra, importlib.metadata as md\\n"
  + "(wbtiny.answer(), wbtiny.sub.NAME, wbtiny_extra.EXTRA, md.version('wbtiny'), "
  + "md.distribution('wbtiny').read_text('INSTALLER'))");
const bytes = readFileSync(pure);
r.again = await py.installWheel(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
                                { filename: pure.split('/').pop(), sha256 });
r.after = await py.runPython('6 * 7');
console.log(JSON.stringify({ r, err }));
"""


def test_install_wheel_under_node(installed, tmp_path):
    """installWheel from a file: URL (with its sha256) and from bytes: imported at once; a wrong sha256, a platform
    wheel, bytes without a name and not a zip are refused with a WheelError, and the interpreter goes on."""
    wheels = make_test_wheels(tmp_path)
    args = json.dumps([str(wheels["pure"]), str(wheels["platform"]), sha256_hex(wheels["pure"])])
    (installed / "wheel.mjs").write_text(WHEEL_NODE_SCRIPT)
    proc = subprocess.run([node(), "wheel.mjs", args], cwd=installed, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"node exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    r = result["r"]
    assert r["importBefore"] == "True"
    check_installed(r, r["module"])
    mismatch = r["mismatch"]
    assert mismatch["isWheelError"] and mismatch["name"] == "WheelError"
    assert f"its sha256 is {sha256_hex(wheels['pure'])}, not the expected {'0' * 64}" in mismatch["message"]
    assert "nothing was installed" in mismatch["message"]
    platform = r["platform"]
    assert platform["isWheelError"] and "its tag cp313-cp313-manylinux_2_17_x86_64" in platform["message"]
    assert "cannot load platform wheels" in platform["message"]
    assert r["noName"]["name"] == "TypeError" and "needs the filename option" in r["noName"]["message"]
    assert r["notZip"]["isWheelError"] and "is not a zip archive" in r["notZip"]["message"]
    assert r["again"]["replaced"] == "1.0" and r["again"]["version"] == "1.0"
    assert r["after"] == "42"
    assert result["err"] == ["installWheel: wbtiny-1.0-py3-none-any.whl: left out wbtiny-1.0.data/scripts/ (1 file): "
                             "only purelib and platlib are installed"] * 2


# --- the REPL page in headless chromium ----------------------------------------------------------------------


@contextlib.contextmanager
def served(archive: Path) -> Iterator[tuple[str, list[str]]]:
    """`wasmbuild serve --artifact ARCHIVE --port 0` as a subprocess: its URL, and the request lines it logs."""
    proc = subprocess.Popen([sys.executable, "-m", "wasmbuild", "serve", "--artifact", str(archive), "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    requests: list[str] = []
    try:
        assert proc.stdout is not None and proc.stderr is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), (url, proc.stderr.read() if proc.poll() is not None else "")
        import threading

        def collect() -> None:
            for line in proc.stderr:
                requests.append(line)

        threading.Thread(target=collect, daemon=True).start()
        yield url, requests
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,760",
                "--disable-extensions", "--no-first-run", "--disable-background-networking"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The REPL page driven as a person would: typing into the input, reading the console."""

    def __init__(self, driver: object) -> None:
        self.driver = driver

    def js(self, script: str) -> object:
        return self.driver.execute_script(script)

    def hooks(self) -> dict:
        return self.js("const h = window.__wasmbuild; return h && {ready: h.ready, busy: h.busy, error: h.error, "
                       "runs: h.runs, frames: h.frames, firstPromptMs: h.firstPromptMs, loadMs: h.loadMs, "
                       "version: h.version, prompt: document.getElementById('prompt').textContent, "
                       "inputShown: !document.getElementById('input-line').hidden}") or {}

    def wait(self, condition, timeout: float = 120, what: str = "") -> dict:
        deadline = time.monotonic() + timeout
        while True:
            state = self.hooks()
            if condition(state):
                return state
            if state.get("error"):
                raise AssertionError(f"the page shows an error: {state['error']}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {state}\n{self.lines()[-20:]}")
            time.sleep(0.05)

    def lines(self) -> list[str]:
        return str(self.js("return window.__wasmbuild.output()")).split("\n")

    def classes(self, cls: str) -> list[str]:
        return list(self.js(f"return [...document.querySelectorAll('#output .{cls}')].map(e => e.textContent)"))

    def type(self, text: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        self.driver.find_element(By.ID, "input").send_keys(text, Keys.ENTER)

    def enter(self, text: str, timeout: float = 60) -> list[str]:
        """Type one line and press Enter; when it completes the input, wait for its run: the new console lines."""
        before = self.hooks()
        count = len(self.lines())
        self.type(text)
        state = self.wait(lambda s: s["runs"] > before["runs"] and not s["busy"] and s["inputShown"]
                          or s["prompt"] == "... " and s["inputShown"], timeout, f"the run of {text!r}")
        assert state["inputShown"]
        return self.lines()[count:]


@pytest.fixture(scope="module")
def page(web_archive, browser) -> Iterator[Page]:
    with served(web_archive) as (url, requests):
        browser.get(url)
        page = Page(browser)
        page.url, page.requests = url, requests
        yield page


@NEEDS_CHROMIUM
def test_the_page_loads_to_a_prompt(page):
    state = page.wait(lambda s: s.get("ready"), 180, "the first prompt")
    assert state["prompt"] == ">>> " and state["firstPromptMs"] > 0
    assert re.fullmatch(r"3\.\d+\.\d+", state["version"])
    assert any("in a Web Worker" in line for line in page.lines())


@NEEDS_CHROMIUM
def test_print_and_values(page):
    assert page.enter("print(6*7)")[-1:] == ["42"]
    assert page.classes("stdout")[-1] == "42"
    assert page.enter("'wasm' + 'build'")[-1] == "'wasmbuild'"
    assert page.classes("result")[-1] == "'wasmbuild'"
    page.enter("import sqlite3, zlib, json, decimal")
    assert page.enter("sqlite3.sqlite_version")[-1].startswith("'3.")
    assert page.enter('zlib.crc32(b"x")')[-1] == "2363233923"
    assert page.enter('json.dumps({"a": [1, 2]})')[-1] == "'{\"a\": [1, 2]}'"
    assert page.enter("decimal.Decimal(1) / 7")[-1] == "Decimal('0.1428571428571428571428571429')"


@NEEDS_CHROMIUM
def test_multi_line_input_and_history(page):
    assert page.enter("for i in range(3):") == [">>> for i in range(3):"]
    assert page.hooks()["prompt"] == "... "
    assert page.js("return document.getElementById('input').value") == "    "  # indented after a colon
    page.enter("print(i * 10)")
    assert page.enter("")[-3:] == ["0", "10", "20"]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = page.driver.find_element(By.ID, "input")
    field.send_keys(Keys.ARROW_UP)
    assert page.js("return document.getElementById('input').value") == "for i in range(3):\n    print(i * 10)"
    field.send_keys(Keys.ARROW_DOWN, Keys.ARROW_DOWN)  # the first moves to the block's last line, as in a textarea
    assert page.js("return document.getElementById('input').value") == ""


@NEEDS_CHROMIUM
def test_an_exception_shows_its_traceback_and_the_repl_goes_on(page):
    page.enter("def f(x):")
    page.enter("return 1 / x")
    page.enter("")
    new = page.enter("f(0)")
    assert "Traceback (most recent call last):" in new
    assert new[-1] == "ZeroDivisionError: division by zero"
    assert page.classes("stderr")[-1] == "ZeroDivisionError: division by zero"  # styled as stderr
    assert page.enter("1 +")[-1] == "SyntaxError: invalid syntax"
    assert page.enter("print('still here')")[-1] == "still here"


@NEEDS_CHROMIUM
def test_the_page_stays_responsive_during_a_long_loop(page):
    page.enter("import time")
    page.enter("def spin(seconds):")
    page.enter("t = time.time()")
    page.enter("while time.time() - t < seconds: sum(range(1000))")
    page.enter("return 'done'")
    page.enter("")
    runs = page.hooks()["runs"]
    page.type("spin(3)")
    page.wait(lambda s: s["busy"], 10, "the run to start")
    started = time.monotonic()
    frames = page.hooks()["frames"]
    probes = []
    for _ in range(5):
        t = time.monotonic()
        page.js("return 1")  # answered at once: the page's thread is free
        probes.append(time.monotonic() - t)
        time.sleep(0.3)
    state = page.hooks()
    elapsed_text = page.js("return document.getElementById('elapsed').textContent")
    page.screenshot_running = REPORTS / "browser-repl-running.png"
    REPORTS.mkdir(exist_ok=True)
    page.driver.save_screenshot(str(page.screenshot_running))
    assert state["busy"], "the loop ended before the page was probed"
    assert time.monotonic() - started < 3
    assert max(probes) < 0.5, probes
    assert state["frames"] - frames >= 10, "requestAnimationFrame did not advance while Python ran"
    assert re.fullmatch(r"\d+\.\d s", str(elapsed_text)) and elapsed_text != "0.0 s"
    done = page.wait(lambda s: s["runs"] > runs and not s["busy"], 30, "the loop's end")
    assert done["inputShown"] and page.lines()[-1] == "'done'"


def gzip_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=6, mtime=0))


@NEEDS_CHROMIUM
def test_screenshot_and_numbers(page, web_root):
    page.enter("import sys; print(sys.version)")
    REPORTS.mkdir(exist_ok=True)
    shot = REPORTS / "browser-repl.png"
    page.driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    first = page.hooks()
    requested = {m.group(1).lstrip("/") or "index.html"
                 for line in page.requests for m in [re.search(r'"GET (/[^ ?]*)[^"]*" (?:200|304)', line)] if m}
    for name in PAGE_FILES:
        assert name in requested, (name, sorted(requested))
    files = {name: (web_root / name if (web_root / name).is_file() else ROOT / "web" / name) for name in PAGE_FILES}
    sizes = {name: {"raw": path.stat().st_size, "gzip": gzip_size(path)} for name, path in files.items()}
    # Reloads: the browser's cache answers (no-cache: revalidated, 304 Not Modified), the wasm is compiled again.
    reloads = []
    for _ in range(3):
        page.driver.refresh()
        reloads.append(round(page.wait(lambda s: s.get("ready"), 120, "the prompt after a reload")["firstPromptMs"]))
    numbers = {
        "version": first["version"],
        "chromium": page.driver.capabilities.get("browserVersion"),
        "files": sizes,
        "total_raw": sum(s["raw"] for s in sizes.values()),
        "total_gzip": sum(s["gzip"] for s in sizes.values()),
        "first_prompt_ms": round(first["firstPromptMs"]),
        "worker_load_ms": round(first["loadMs"]),
        "reload_first_prompt_ms": reloads,
        "screenshot": str(shot),
    }
    (REPORTS / "browser-repl.json").write_text(json.dumps(numbers, indent=2) + "\n")
    print(f"\nREPL page: CPython {numbers['version']}, headless chromium {numbers['chromium']}")
    for name, size in sizes.items():
        print(f"  {name:24} {size['raw']:>11,} bytes   gzip {size['gzip']:>11,}")
    print(f"  {'total':24} {numbers['total_raw']:>11,} bytes   gzip {numbers['total_gzip']:>11,}")
    print(f"  first prompt {numbers['first_prompt_ms']} ms after navigation start (worker: load "
          f"{numbers['worker_load_ms']} ms); after a reload {', '.join(map(str, reloads))} ms")
    assert numbers["first_prompt_ms"] > 0 and min(reloads) > 0


@NEEDS_CHROMIUM
def test_stop_ends_an_endless_loop_by_restarting_the_interpreter(page):
    from selenium.webdriver.common.by import By

    page.enter("marker = 1")
    page.enter("while True: pass")
    page.type("")
    page.wait(lambda s: s["busy"], 10, "the endless loop to start")
    time.sleep(0.5)
    page.driver.find_element(By.ID, "stop").click()
    page.wait(lambda s: s["ready"] and not s["busy"] and s["inputShown"], 60, "the restarted interpreter")
    assert "KeyboardInterrupt" in page.classes("stderr")[-1]
    assert page.enter("'marker' in globals(), 6 * 7")[-1] == "(False, 42)"  # a fresh interpreter


@NEEDS_CHROMIUM
def test_a_failure_below_python_starts_a_new_interpreter(page):
    """Deep C recursion exhausts the browser's JS stack (RangeError), not Python's recursion limit: the module is
    unusable after it, and the page says so and starts a new interpreter."""
    page.enter("import json")
    runs = page.hooks()["runs"]
    page.type("json.loads('[' * 200000 + ']' * 200000)")
    page.wait(lambda s: s["runs"] > runs or not s["ready"], 60, "the failure")
    page.wait(lambda s: s["ready"] and not s["busy"] and s["inputShown"], 60, "the new interpreter")
    assert any("the interpreter stopped working" in line for line in page.classes("stderr"))
    assert page.enter("'json' in globals(), 6 * 7")[-1] == "(False, 42)"


@NEEDS_CHROMIUM
def test_python_cannot_run_javascript_in_the_worker(page):
    """emscripten_run_script through ctypes aborts the module (-sDYNAMIC_EXECUTION=0) instead of evaluating its
    JavaScript in the worker: the fetch it asks for never reaches the server, and the page starts a new
    interpreter."""
    page.wait(lambda s: s["ready"] and not s["busy"] and s["inputShown"], 60, "the prompt")
    page.enter("import ctypes")
    runs = page.hooks()["runs"]
    page.type("ctypes.CDLL(None).emscripten_run_script(b\"fetch('/guest-ran-javascript')\")")
    page.wait(lambda s: s["runs"] > runs or not s["ready"], 60, "the abort")
    page.wait(lambda s: s["ready"] and not s["busy"] and s["inputShown"], 60, "the new interpreter")
    assert any("the interpreter stopped working" in line for line in page.classes("stderr"))
    time.sleep(1)
    assert not [line for line in page.requests if "guest-ran-javascript" in line]
    assert page.enter("6 * 7")[-1] == "42"


@NEEDS_CHROMIUM
def test_a_failed_download_is_shown_on_the_page(web_root, browser, tmp_path):
    """The page served without python.data (the real serve code, in a thread): an error on the page, no hang."""
    site = serve.assemble(web_root, ROOT / "web", tmp_path / "site")
    (site / "python.data").unlink()
    with serve.serving(site, port=0, quiet=True) as server:
        browser.get(server.url)
        page = Page(browser)
        deadline = time.monotonic() + 60
        while not (state := page.hooks()).get("error"):
            assert not state.get("ready") and time.monotonic() < deadline, state
            time.sleep(0.05)
    shown = page.js("return document.getElementById('error').textContent")
    assert "python.data" in str(shown) and "404" in str(shown)
    assert page.js("return document.getElementById('error').hidden") is False


# A module worker of the page's own origin (worker.mjs, as the REPL starts it), driven through its messages: the
# wheels come from the page's server, sha256 checked with the worker's WebCrypto.
WORKER_WHEEL_SCRIPT = """
const [pure, platform, sha256, done] = [arguments[0], arguments[1], arguments[2], arguments[arguments.length - 1]];
const worker = new Worker('/worker.mjs', { type: 'module' });
const pending = new Map();
let ready;
const started = new Promise((resolve) => { ready = resolve; });
let next = 0;
const stderr = [];
worker.onmessage = ({ data }) => {
  if (data.type === 'ready' || data.type === 'failed') ready(data);
  else if (data.type === 'output') stderr.push(...data.lines.filter(([s]) => s === 'stderr').map(([, t]) => t));
  else if (pending.has(data.id)) { pending.get(data.id)(data); pending.delete(data.id); }
};
const ask = (message) => new Promise((resolve) => {
  const id = ++next;
  pending.set(id, resolve);
  worker.postMessage({ ...message, id });
});
(async () => {
  worker.postMessage({ type: 'init' });
  const r = { start: await started };
  r.short = r.start.version.split('.').slice(0, 2).join('.');
  r.mismatch = await ask({ type: 'installWheel', source: pure, options: { sha256: '0'.repeat(64) } });
  r.platform = await ask({ type: 'installWheel', source: platform });
  r.missing = await ask({ type: 'installWheel', source: '/nothing-1.0-py3-none-any.whl' });
  r.installed = (await ask({ type: 'installWheel', source: pure, options: { sha256 } })).wheel;
  r.module = (await ask({ type: 'run', code: "import wbtiny, wbtiny.sub, wbtiny_extra, importlib.metadata as md\\n"
    + "(wbtiny.answer(), wbtiny.sub.NAME, wbtiny_extra.EXTRA, md.version('wbtiny'), "
    + "md.distribution('wbtiny').read_text('INSTALLER'))" })).repr;
  const bytes = await (await fetch(pure)).arrayBuffer();
  r.bytes = await ask({ type: 'installWheel', source: bytes, options: { filename: pure.slice(1), sha256 } });
  r.stderr = stderr;
  worker.terminate();
  done(r);
})().catch((e) => { worker.terminate(); done({ error: String(e) }); });
"""


@NEEDS_CHROMIUM
def test_install_wheel_in_a_worker_in_chromium(web_root, browser, tmp_path):
    """The page's server gives the wheels; a module worker (worker.mjs) installs the pure one by URL and sha256 and
    imports it; a wrong sha256, a platform wheel and a missing URL are refused (WheelError), the worker goes on."""
    site = serve.assemble(web_root, ROOT / "web", tmp_path / "site")
    wheels = make_test_wheels(tmp_path)
    for wheel in wheels.values():
        shutil.copyfile(wheel, site / wheel.name)
    with serve.serving(site, port=0, quiet=True) as server:
        browser.get(server.url)
        browser.set_script_timeout(120)
        r = browser.execute_async_script(WORKER_WHEEL_SCRIPT, f"/{wheels['pure'].name}",
                                         f"/{wheels['platform'].name}", sha256_hex(wheels["pure"]))
        browser.set_script_timeout(30)
    assert "error" not in r, r
    assert r["start"]["type"] == "ready", r["start"]
    check_installed(r, r["module"])
    for key in ("mismatch", "platform", "missing"):
        assert r[key]["ok"] is False and r[key]["errorType"] == "WheelError" and r[key]["fatal"] is False, r[key]
    assert "its sha256 is" in r["mismatch"]["error"] and "not the expected" in r["mismatch"]["error"]
    assert "its tag cp313-cp313-manylinux_2_17_x86_64" in r["platform"]["error"]
    assert "cannot load platform wheels" in r["platform"]["error"]
    assert "cannot fetch nothing-1.0-py3-none-any.whl" in r["missing"]["error"] and "HTTP 404" in r["missing"]["error"]
    assert r["bytes"]["ok"] is True and r["bytes"]["wheel"]["replaced"] == "1.0"
    assert any("left out wbtiny-1.0.data/scripts/" in line for line in r["stderr"])
