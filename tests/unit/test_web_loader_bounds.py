"""The JavaScript loader (`loadPython` in web/wasmbuild-python.mjs) bounds its downloads of python.wasm and
python.data (issue 20, class 4): a size cap (`maxDownloadBytes`) and a deadline (`downloadTimeout`), run under node
against a local HTTP server on 127.0.0.1 that drips, lies about sizes or sends an endless body."""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOADER = ROOT / "web" / "wasmbuild-python.mjs"
NODE = shutil.which("node")
FACTORY = b"export default async function () { return { FS: {}, ccall() { return 0; } }; }\n"

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


@contextlib.contextmanager
def serving(behaviour: str) -> Iterator[str]:
    """python.mjs (a stub factory), python.data (small) and python.wasm as `behaviour` says."""
    stopping = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            name = self.path.rsplit("/", 1)[-1]
            with contextlib.suppress(OSError):
                if name == "python.mjs":
                    self._send(FACTORY, "text/javascript")
                elif name == "python.data":
                    self._send(b"d" * 100, "application/octet-stream")
                elif name == "python.wasm":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/wasm")
                    if behaviour == "drip":
                        self.send_header("Content-Length", "1000")
                    elif behaviour == "announced-huge":
                        self.send_header("Content-Length", str(10 << 20))
                    self.end_headers()
                    end = time.monotonic() + 20
                    while not stopping.is_set() and time.monotonic() < end:
                        self.wfile.write(b"x" if behaviour == "drip" else b"x" * 65536)
                        self.wfile.flush()
                        time.sleep(0.05 if behaviour == "drip" else 0)
                else:
                    self._send(b"", "text/plain", 404)
            self.close_connection = True

        def _send(self, body: bytes, kind: str, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/py/"
    finally:
        stopping.set()
        httpd.shutdown()
        httpd.server_close()


def load(index_url: str, options: dict, network: bool = True) -> tuple[float, str]:
    """Run loadPython({indexURL, ...options}) under node; the seconds it took and the rejection's message."""
    script = (f"import {{ loadPython }} from {json.dumps(LOADER.as_uri())};\n"
              f"try {{ await loadPython({{ indexURL: {json.dumps(index_url)}, ...{json.dumps(options)}, "
              "stdout() {}, stderr() {} }); console.log('LOADED'); }\n"
              "catch (error) { console.log('REJECTED ' + error.message); }\n")
    argv = [str(NODE), *(["--experimental-network-imports"] if network else []), "--input-type=module", "-e", script]
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if network and "experimental-network-imports" in proc.stderr and "bad option" in proc.stderr:
        pytest.skip("this node cannot import modules over http (--experimental-network-imports)")
    return time.monotonic() - start, proc.stdout.strip()


def test_a_dripped_python_wasm_is_cut_off_at_the_deadline():
    with serving("drip") as url:
        took, result = load(url, {"downloadTimeout": 1000})
    assert result.startswith("REJECTED cannot fetch python.wasm from "), result
    assert "not downloaded within 1000 ms (the downloadTimeout option)" in result
    assert took < 15  # landed code: waits for the whole body (here the server gives up after 20 s)


@pytest.mark.parametrize("behaviour", ["announced-huge", "endless"])
def test_a_python_wasm_over_the_size_cap_is_refused(behaviour):
    with serving(behaviour) as url:
        took, result = load(url, {"maxDownloadBytes": 1 << 20})
    assert result.startswith("REJECTED cannot fetch python.wasm from "), result
    assert "over the limit of 1048576 (the maxDownloadBytes option)" in result
    assert took < 15


def test_a_local_python_wasm_over_the_size_cap_is_refused(tmp_path):
    (tmp_path / "python.mjs").write_bytes(FACTORY)
    (tmp_path / "python.wasm").write_bytes(b"\0asm" + b"x" * 2000)
    (tmp_path / "python.data").write_bytes(b"d")
    _, result = load(tmp_path.as_uri() + "/", {"maxDownloadBytes": 1000}, network=False)
    assert result.startswith("REJECTED cannot fetch python.wasm from file://"), result
    assert "2004 bytes, over the limit of 1000" in result


@pytest.mark.parametrize("options", [{"maxDownloadBytes": 0}, {"downloadTimeout": "soon"}])
def test_bad_bounds_are_refused(tmp_path, options):
    _, result = load(tmp_path.as_uri() + "/", options, network=False)
    assert result.startswith("REJECTED ") and "must be a positive number" in result
