"""`wasmbuild serve`'s page in headless chromium: `?index=` names a directory of the page's own server, or the
interpreter is not loaded (the worker says why; the server's Content-Security-Policy refuses it even without that
check: a worker.mjs without the check is refused too)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT
from wasmbuild import serve

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="Debian's chromium and chromium-driver are not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def outcome(driver, url: str) -> dict:
    """The page's state once it has a prompt or shows an error."""
    driver.get(url)
    deadline = time.monotonic() + 120
    while True:
        state = driver.execute_script("return {ready: !!(window.__wasmbuild && window.__wasmbuild.ready), "
                                      "error: document.getElementById('error').textContent}")
        if state["ready"] or state["error"] or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


@contextlib.contextmanager
def another_origin(site: Path) -> Iterator[str]:
    """The same files from a server as a hostile one would run it: another port, CORS open to every origin."""
    class Open(http.server.SimpleHTTPRequestHandler):
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **serve.MIME_TYPES}

        def end_headers(self) -> None:
            self.send_header("Access-Control-Allow-Origin", "*")
            super().end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Open, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def web_without_the_check(dest: Path) -> Path:
    """web/ with worker.mjs's same-origin check taken out (as before it): the server's policy alone must refuse."""
    shutil.copytree(ROOT / "web", dest)
    worker = (dest / "worker.mjs").read_text()
    checked = "sameOriginURL(message.indexURL)"
    assert checked in worker
    (dest / "worker.mjs").write_text(worker.replace(checked, "new URL(message.indexURL, self.location.href).href"))
    return dest


def test_index_on_the_pages_own_server_loads(web_root, browser, tmp_path):
    site = serve.assemble(web_root, ROOT / "web", tmp_path / "site")
    with serve.serving(site, port=0, quiet=True) as server:
        assert outcome(browser, server.url + "?index=./") == {"ready": True, "error": ""}


@pytest.mark.parametrize("web", ["with the check", "without it"])
def test_index_on_another_origin_is_refused(web_root, browser, tmp_path, web):
    web_dir = ROOT / "web" if web == "with the check" else web_without_the_check(tmp_path / "web")
    site = serve.assemble(web_root, web_dir, tmp_path / "site")
    with serve.serving(site, port=0, quiet=True) as page, another_origin(site) as other:
        for index in (other, f"http://localhost:{page.server_address[1]}/"):
            state = outcome(browser, f"{page.url}?index={index}")
            assert not state["ready"] and state["error"], state
            if web == "with the check":
                assert "not on this page's server" in state["error"]
