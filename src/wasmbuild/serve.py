"""`wasmbuild serve`: the REPL page (web/) and the web artifact's python.mjs, python.wasm and python.data (and its
wheels/, which `wasmbuild install` adds and the loader installs), from one directory on a local HTTP server
(127.0.0.1), with the MIME types browsers insist on.

The directory is assembled from symbolic links in a temporary directory: the artifact's runtime files (unpacked
into the cache) and web/'s files side by side, as the page expects them (`loadPython()`'s default indexURL is the
directory of wasmbuild-python.mjs). No cross-origin isolation headers: nothing uses SharedArrayBuffer.

What is served, and to whom (the server is reachable by every local user and by any page in the user's browser):
- a fixed table of files, taken when the server starts: the top-level entries of the directory that are regular
  files or links to regular files, and those of its wheels/ subdirectory when that is a directory, not a link
  (assemble's links; assemble refuses a source file that is a link leading out of the artifact or web/). A request
  names one of them or gets 404: nothing is looked up on disk by request path, so other subdirectories, `..`,
  links to directories and links made or changed after the start are never followed;
- only to requests whose Host header names the server itself (127.0.0.1:PORT, localhost:PORT or [::1]:PORT):
  another name is answered 421, so a page that rebinds its own DNS name to 127.0.0.1 reads nothing;
- with a Content-Security-Policy that lets the page load scripts, wasm and data only from this server (`?index=`
  cannot point the worker at another origin's python.mjs);
- to at most `max_connections` connections at once (more are answered 503), each given `request_seconds` to send
  a whole request (line and headers, the wait for it included) and `idle_seconds` for any one read or write.
A bad request path (a NUL or control byte, bad percent-encoding) is answered 400.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import http.server
import os
import shutil
import socket
import stat
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from wasmbuild.errors import UsageError, describe
from wasmbuild.names import WEB_WHEELS
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
    ".whl": "application/zip",
    ".py": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".ts": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    "": "application/octet-stream",
}
# Files of the artifact the page needs beside web/'s (LICENSE is served too: the page may link it).
ARTIFACT_FILES = (*RUNTIME_FILES, "LICENSE")
# Scripts, wasm, fetches and workers from this server only ('wasm-unsafe-eval' lets it compile python.wasm;
# 'unsafe-eval': Emscripten's glue evaluates JS strings, e.g. EM_ASM code of a loaded side module).
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval'; "
                           "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
                           "worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
                           "frame-ancestors 'none'")
IDLE_SECONDS = 10.0  # any one read or write of a connection
REQUEST_SECONDS = 30.0  # a whole request's line and headers, waiting for it on a kept-alive connection included
MAX_CONNECTIONS = 32  # open at once; a browser opens about six per server


def _own_file(path: Path, root: Path, what: str) -> Path:
    """`path`'s real path, which must be a regular file inside `root` (a link within the tree is fine, one leading
    out of it is refused: the server would hand out whatever it points at)."""
    real = path.resolve()
    if not real.is_relative_to(root.resolve()) or not real.is_file():
        raise UsageError(f"{path} is a symbolic link to {real}, outside {what} {root}: wasmbuild serves only the "
                         f"files of {what}", hint="replace the link with the file itself")
    return real


def assemble(artifact_root: Path, web_dir: Path, dest: Path) -> Path:
    """`dest` with a link to each of the artifact's runtime files and to each file of `web_dir` (web/ wins a name
    both have: none today), and a wheels/ directory with a link to each file of the artifact's wheels/ when it has
    one. The artifact must be a web one: python.mjs, python.wasm, python.data. A file of either that is a symbolic
    link leading out of its tree is refused."""
    missing = [name for name in RUNTIME_FILES if not (artifact_root / name).is_file()]
    if missing:
        raise UsageError(f"{artifact_root} is not a web artifact: no {', '.join(missing)}",
                         hint="build one with: nox -s build-emscripten -- --variant web (or give --artifact)")
    if not (web_dir / "index.html").is_file():
        raise UsageError(f"{web_dir} has no index.html: not wasmbuild's web/ directory")
    links: dict[str, Path] = {}
    for name in ARTIFACT_FILES:
        if (artifact_root / name).is_file():
            links[name] = _own_file(artifact_root / name, artifact_root, "the artifact")
    for path in sorted(web_dir.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            links[path.name] = _own_file(path, web_dir, "the web directory")
    wheels = artifact_root / WEB_WHEELS
    if wheels.is_dir() and not wheels.is_symlink():
        for path in sorted(wheels.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                links[f"{WEB_WHEELS}/{path.name}"] = _own_file(path, artifact_root, "the artifact")
    dest.mkdir(parents=True, exist_ok=True)
    if (dest / WEB_WHEELS).is_symlink() or (dest / WEB_WHEELS).is_file():
        (dest / WEB_WHEELS).unlink()
    elif (dest / WEB_WHEELS).is_dir():  # an earlier assemble's links
        shutil.rmtree(dest / WEB_WHEELS)
    if any(name.startswith(f"{WEB_WHEELS}/") for name in links):
        (dest / WEB_WHEELS).mkdir(exist_ok=True)
    for name, target in links.items():
        link = dest / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return dest


def served_files(directory: Path) -> dict[str, str]:
    """The table a server of `directory` serves: each top-level entry that is a regular file or a link to one
    (not a dot file), by name, with its real path; and so each entry of its wheels/ subdirectory, as
    `wheels/NAME`, when wheels/ is a directory (a link to one is not followed)."""
    files = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            real = os.path.realpath(entry.path)
            if not entry.name.startswith(".") and os.path.isfile(real):
                files[entry.name] = real
            elif entry.name == WEB_WHEELS and entry.is_dir(follow_symlinks=False):
                with os.scandir(entry.path) as wheels:
                    for wheel in wheels:
                        real = os.path.realpath(wheel.path)
                        if not wheel.name.startswith(".") and os.path.isfile(real):
                            files[f"{WEB_WHEELS}/{wheel.name}"] = real
    return files


class BadRequestPath(ValueError):
    """A request path that names no file by construction (NUL or control bytes, bad encoding)."""


def request_name(path: str) -> str:
    """The file name a request path asks for ("/" is index.html); a name with a "/" names nothing served but
    wheels/NAME."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        raise BadRequestPath(f"not an absolute path: {path[:80]!r}")
    try:
        name = urllib.parse.unquote(path[1:], errors="strict")
    except UnicodeDecodeError:
        raise BadRequestPath(f"not UTF-8 after percent-decoding: {path[:80]!r}") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise BadRequestPath(f"a control character (NUL included) in the path: {path[:80]!r}")
    return name or "index.html"


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files from the server's table with wasmbuild's MIME types, revalidated on every load (`no-cache`: an
    edited page is seen at once; an unchanged python.data is answered 304 Not Modified)."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}
    server: Server
    quiet = False

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.idle_seconds)  # each read and write of the connection

    def handle_one_request(self) -> None:
        self.server.watch(self.connection)  # the request line and headers must arrive within request_seconds
        try:
            super().handle_one_request()
        finally:
            self.server.unwatch(self.connection)

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        self.server.unwatch(self.connection)  # the request is in: answering it is bounded by idle_seconds
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1:
            self.send_error(400, "Bad Request", "a request needs exactly one Host header")
            return False
        if hosts[0].strip().lower() not in self.server.hosts:
            self.send_error(421, "Misdirected Request",
                            f"this server answers only to {', '.join(sorted(self.server.hosts))}")
            return False
        return True

    def send_head(self) -> BinaryIO | None:
        """The headers of the table's file the request names, and the open file (None: an answer was sent)."""
        try:
            name = request_name(self.path)
        except BadRequestPath as exc:
            self.send_error(400, "Bad Request", str(exc))
            return None
        real = self.server.files.get(name)
        # The entry must still lead where it led at the start (a link changed since is not followed).
        if real is None or os.path.realpath(os.path.join(self.server.directory, name)) != real:
            self.send_error(404, "File not found")
            return None
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            self.send_error(404, "File not found")
            return None
        file = os.fdopen(fd, "rb")
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                file.close()
                self.send_error(404, "File not found")
                return None
            if self._not_modified(info.st_mtime):
                file.close()
                self.send_response(304)
                self.end_headers()
                return None
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(name))
            self.send_header("Content-Length", str(info.st_size))
            self.send_header("Last-Modified", self.date_time_string(info.st_mtime))
            self.end_headers()
            return file
        except BaseException:
            file.close()
            raise

    def _not_modified(self, mtime: float) -> bool:
        """If-Modified-Since (without If-None-Match) at or after the file's time, as SimpleHTTPRequestHandler."""
        since = self.headers.get("If-Modified-Since")
        if not since or "If-None-Match" in self.headers:
            return False
        try:
            when = email.utils.parsedate_to_datetime(since)
        except (TypeError, IndexError, OverflowError, ValueError):
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        modified = datetime.datetime.fromtimestamp(mtime, datetime.UTC).replace(microsecond=0)
        return modified <= when

    def list_directory(self, path: str | os.PathLike[str]) -> None:  # never: only the table's files are served
        self.send_error(404, "File not found")

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            super().log_message(format, *args)


class Server(http.server.ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` of them; connections that do not send a whole request
    in time are shut down by the serving loop (service_actions)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, directory: Path, *, quiet: bool = False,
                 idle_seconds: float = IDLE_SECONDS, request_seconds: float = REQUEST_SECONDS,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.directory = str(directory)
        self.files = served_files(directory)
        self.quiet = quiet
        self.idle_seconds = idle_seconds
        self.request_seconds = request_seconds
        self.max_connections = max_connections
        self._lock = threading.Lock()
        self._open: dict[socket.socket, float | None] = {}  # connection -> deadline of the request it awaits
        super().__init__(address, handler)
        host, port = self.server_address[:2]
        names = {str(host), "127.0.0.1", "localhost", "[::1]"}
        self.hosts = frozenset(f"{name}:{port}" for name in names) | (frozenset(names) if port == 80 else frozenset())

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = len(self._open) >= self.max_connections
            if not full:
                self._open[request] = None
        if not full:
            super().process_request(request, client_address)
            return
        self._say(f"wasmbuild serve: {self.max_connections} connections open: answered 503 to another")
        body = f"wasmbuild serve: more than {self.max_connections} connections at once\n".encode()
        with contextlib.suppress(OSError):
            request.settimeout(1)
            request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        self.shutdown_request(request)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def watch(self, connection: socket.socket) -> None:
        with self._lock:
            if connection in self._open:
                self._open[connection] = time.monotonic() + self.request_seconds

    def unwatch(self, connection: socket.socket) -> None:
        with self._lock:
            if connection in self._open:
                self._open[connection] = None

    def service_actions(self) -> None:
        """Shut down the connections whose request did not arrive in time (their thread then ends)."""
        now = time.monotonic()
        with self._lock:
            late = [conn for conn, deadline in self._open.items() if deadline is not None and deadline <= now]
            for conn in late:
                self._open[conn] = None
        for conn in late:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if late:
            self._say(f"wasmbuild serve: closed {len(late)} connection(s) that sent no whole request in "
                      f"{self.request_seconds:g} s")

    def server_close(self) -> None:
        """The listening socket and every open connection (their threads end at once)."""
        super().server_close()
        with self._lock:
            open_connections = list(self._open)
        for conn in open_connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, no traceback (a client that went away mid-answer is not the server's failure)."""
        self._say(f"wasmbuild serve: {client_address[0]}:{client_address[1]}: {describe(sys.exc_info()[1])}")

    def _say(self, line: str) -> None:
        if not self.quiet:
            sys.stderr.write(line + "\n")


def make_server(directory: Path, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, quiet: bool = False,
                **limits: float) -> Server:
    """A server of `directory` (not started); port 0 picks a free port (server.url names it). `limits`:
    idle_seconds, request_seconds, max_connections (the defaults are this module's constants)."""
    handler = type("WasmbuildHandler", (Handler,), {"quiet": quiet})
    try:
        return Server((host, port), partial(handler, directory=str(directory)), directory, quiet=quiet,
                      **limits)  # type: ignore[arg-type]
    except OSError as exc:
        hint = "choose another with --port, or --port 0 for a free one"
        raise UsageError(f"cannot serve on {host}:{port}: {exc.strerror or exc}", hint=hint) from None


@contextlib.contextmanager
def serving(directory: Path, **options: Any) -> Iterator[Server]:
    """The server running in a background thread while the block runs (tests, tools)."""
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
            server.serve_forever(poll_interval=0.5)
