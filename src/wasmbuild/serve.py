"""`wasmbuild serve`: the REPL page (web/) and the web artifact's python.mjs, python.wasm and python.data, from one
directory on a local HTTP server (127.0.0.1), with the MIME types browsers insist on.

The directory is assembled from symbolic links in a temporary directory: the artifact's runtime files (unpacked
into the cache) and web/'s files side by side, as the page expects them (`loadPython()`'s default indexURL is the
directory of wasmbuild-python.mjs). No cross-origin isolation headers: nothing uses SharedArrayBuffer.
"""

from __future__ import annotations

import contextlib
import http.server
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from wasmbuild.errors import UsageError
from wasmbuild.npm import RUNTIME_FILES

DEFAULT_PORT = 8000
# Browsers refuse a module script served with another type (.mjs) and compile wasm streaming only from
# application/wasm; Python's mimetypes knows neither on 3.11, nor .data.
MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".data": "application/octet-stream",
    ".py": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".ts": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    "": "application/octet-stream",
}
# Files of the artifact the page needs beside web/'s (LICENSE is served too: the page may link it).
ARTIFACT_FILES = (*RUNTIME_FILES, "LICENSE")


def assemble(artifact_root: Path, web_dir: Path, dest: Path) -> Path:
    """`dest` with a link to each of the artifact's runtime files and to each file of `web_dir` (web/ wins a name
    both have: none today). The artifact must be a web one: python.mjs, python.wasm, python.data."""
    missing = [name for name in RUNTIME_FILES if not (artifact_root / name).is_file()]
    if missing:
        raise UsageError(f"{artifact_root} is not a web artifact: no {', '.join(missing)}",
                         hint="build one with: nox -s build-emscripten -- --variant web (or give --artifact)")
    if not (web_dir / "index.html").is_file():
        raise UsageError(f"{web_dir} has no index.html: not wasmbuild's web/ directory")
    dest.mkdir(parents=True, exist_ok=True)
    links: dict[str, Path] = {}
    for name in ARTIFACT_FILES:
        if (artifact_root / name).is_file():
            links[name] = (artifact_root / name).resolve()
    for path in sorted(web_dir.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            links[path.name] = path.resolve()
    for name, target in links.items():
        link = dest / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return dest


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with wasmbuild's MIME types, revalidated on every load (`no-cache`: an edited page is seen at
    once; an unchanged python.data is answered 304 Not Modified)."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}
    quiet = False

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            super().log_message(format, *args)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"


def make_server(directory: Path, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, quiet: bool = False) -> Server:
    """A server of `directory` (not started); port 0 picks a free port (server.url names it)."""
    handler = type("WasmbuildHandler", (Handler,), {"quiet": quiet})
    try:
        return Server((host, port), partial(handler, directory=str(directory)))
    except OSError as exc:
        hint = "choose another with --port, or --port 0 for a free one"
        raise UsageError(f"cannot serve on {host}:{port}: {exc.strerror or exc}", hint=hint) from None


@contextlib.contextmanager
def serving(directory: Path, **options: Any) -> Iterator[Server]:
    """The server running in a background thread while the block runs (tests, tools)."""
    import threading

    server = make_server(directory, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def serve_forever(directory: Path, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve until Ctrl-C, after printing the URL (on stdout, alone on its line, for scripts)."""
    server = make_server(directory, host=host, port=port)
    with server:
        print(server.url, flush=True)
        sys.stderr.write(f"wasmbuild: serving {directory} at {server.url} (Ctrl-C stops)\n")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()

