"""Shared fixtures for the unit tests.

Every unit test runs under `guards` (autouse):
  * no real network: sockets may only connect to the loopback interface and host names other than
    localhost are never resolved;
  * no compilers: subprocess.Popen (hence run/call/check_output) and os.system refuse cc, gcc, clang,
    make, configure and friends;
  * no waiting: download.BACKOFF is 0;
  * no influence from the caller's environment (WASI_SDK_PATH, WASMBUILD_*, proxies).
A violation fails the test with `pytest.fail` (a BaseException, so no `except Exception` can swallow it)
and is also reported again at teardown.

`http_server` is a real threaded HTTP server on 127.0.0.1 with scripted replies and a request log.
`build_tar` and `build_deb` make archives in memory.
"""

from __future__ import annotations

import http.server
import io
import os
import re
import shlex
import socket
import subprocess
import tarfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from wasmbuild import download

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Compilers and build drivers, optionally with a target prefix (x86_64-linux-gnu-gcc) or a version suffix
# (clang-19).
FORBIDDEN_PROGRAM = re.compile(
    r"^(?:[\w.]+-)*(?:cc|c\+\+|gcc|g\+\+|clang|clang\+\+|clang-cpp|cpp|ld|wasm-ld|lld|make|gmake|cmake|ninja"
    r"|configure|emcc|em\+\+|emconfigure|emmake)(?:-\d+(?:\.\d+)*)?$"
)
SHELLS = {"sh", "bash", "dash", "zsh", "env", "nice", "time", "xargs"}
ENV_TO_CLEAR = (
    "WASI_SDK_PATH",
    "WASMBUILD_ROOT",
    "WASMBUILD_DEBIAN_MIRROR",
    "WASMBUILD_MIRROR_DIR",
    "WASMBUILD_CACHE_DIR",
    "WASMBUILD_NODE",
    "EMSDK_PYTHON",
    "XDG_CACHE_HOME",
    "CI",
    "GITHUB_ACTIONS",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


@dataclass
class Guard:
    violations: list[str] = field(default_factory=list)

    def refuse(self, message: str) -> None:
        self.violations.append(message)
        pytest.fail(message, pytrace=True)


# --- network -----------------------------------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_create_connection = socket.create_connection
_real_getaddrinfo = socket.getaddrinfo
_real_gethostbyname = socket.gethostbyname


def _host_allowed(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    return str(host).strip("[]") in LOOPBACK_HOSTS


def _install_network_guard(monkeypatch: pytest.MonkeyPatch, guard: Guard) -> None:
    def check(family: int, address: Any, how: str) -> None:
        if family == getattr(socket, "AF_UNIX", None):
            return
        host = address[0] if isinstance(address, tuple) else address
        if not _host_allowed(host):
            guard.refuse(f"unit tests must not use the network: {how} to {address!r} blocked")

    def connect(self: socket.socket, address: Any) -> None:
        check(self.family, address, "socket.connect")
        return _real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self.family, address, "socket.connect_ex")
        return _real_connect_ex(self, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        check(socket.AF_INET, address, "socket.create_connection")
        return _real_create_connection(address, *args, **kwargs)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _host_allowed(host):
            guard.refuse(f"unit tests must not use the network: name lookup of {host!r} blocked")
        return _real_getaddrinfo(host, *args, **kwargs)

    def gethostbyname(host: str) -> str:
        if not _host_allowed(host):
            guard.refuse(f"unit tests must not use the network: name lookup of {host!r} blocked")
        return _real_gethostbyname(host)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyname", gethostbyname)


# --- subprocesses --------------------------------------------------------------------------------------

_RealPopen = subprocess.Popen
_real_system = os.system


def _programs(args: Any, shell: bool) -> list[str]:
    """The program names a command line may start (shell strings and `sh -c` are looked into)."""
    if isinstance(args, (str, bytes, os.PathLike)):
        text = os.fsdecode(args)
        tokens = shlex.split(text) if shell else [text]
    else:
        tokens = [os.fsdecode(a) for a in args]
    if not tokens:
        return []
    names = [os.path.basename(tokens[0])]
    if shell or names[0] in SHELLS:
        for token in tokens[1:]:
            try:
                words = shlex.split(token)
            except ValueError:
                words = token.split()
            names += [os.path.basename(w) for w in words]
    return names


def _check_command(guard: Guard, args: Any, shell: bool, executable: Any = None) -> None:
    names = _programs(args, shell)
    if executable is not None:
        names.append(os.path.basename(os.fsdecode(executable)))
    for name in names:
        if FORBIDDEN_PROGRAM.match(name):
            guard.refuse(f"unit tests must not run compilers or build tools: {name!r} in {args!r}")


def _install_subprocess_guard(monkeypatch: pytest.MonkeyPatch, guard: Guard) -> None:
    class GuardedPopen(_RealPopen):  # type: ignore[misc, valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            shell = kwargs.get("shell", rest[7] if len(rest) > 7 else False)
            _check_command(guard, args, bool(shell), kwargs.get("executable"))
            super().__init__(args, *rest, **kwargs)

    def system(command: str) -> int:
        _check_command(guard, command, True)
        return _real_system(command)

    monkeypatch.setattr(subprocess, "Popen", GuardedPopen)
    monkeypatch.setattr(os, "system", system)


@pytest.fixture(autouse=True)
def guards(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    for name in ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    # Anything that falls back to the default cache writes into a throw-away folder.
    monkeypatch.setenv("WASMBUILD_CACHE_DIR", str(tmp_path_factory.mktemp("default-cache")))
    monkeypatch.setattr(download, "BACKOFF", 0)
    guard = Guard()
    _install_network_guard(monkeypatch, guard)
    _install_subprocess_guard(monkeypatch, guard)
    yield guard
    if guard.violations:
        pytest.fail("guard violations during the test:\n" + "\n".join(guard.violations), pytrace=False)


# --- a local HTTP server -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    # Declared Content-Length; larger than len(body) simulates a connection dropped mid-transfer.
    content_length: int | None = None


class LocalServer:
    """Routes map a path to a list of replies: the n-th request gets reply n (the last one repeats)."""

    Reply = Reply

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                with server._lock:
                    n = server.requests.count(self.path)
                    server.requests.append(self.path)
                    replies = server.routes.get(self.path)
                reply = replies[min(n, len(replies) - 1)] if replies else Reply(404, b"not found\n")
                length = len(reply.body) if reply.content_length is None else reply.content_length
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(reply.body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def route(self, path: str, *replies: Reply) -> str:
        self.routes[path] = list(replies)
        return self.url(path)

    def serve(self, path: str, body: bytes) -> str:
        return self.route(path, Reply(200, body))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> int:
        with self._lock:
            return self.requests.count(path)

    def start(self) -> LocalServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def http_server():
    server = LocalServer().start()
    try:
        yield server
    finally:
        server.stop()


# --- archives in memory ------------------------------------------------------------------------------

FIXED_MTIME = 1_700_000_000


def tar_bytes(entries: Iterable[Sequence[Any]], compression: str = "") -> bytes:
    """Entries: ("file", name, data[, mode]), ("dir", name), ("symlink", name, target),
    ("hardlink", name, target[, mode]), ("chr", name), ("fifo", name)."""
    buf = io.BytesIO()
    mode = f"w:{compression}" if compression else "w"
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.GNU_FORMAT) as tar:
        for kind, name, *rest in entries:
            info = tarfile.TarInfo(name)
            info.mtime = FIXED_MTIME
            if kind == "file":
                data = rest[0]
                info.size = len(data)
                info.mode = rest[1] if len(rest) > 1 else 0o644
                tar.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, rest[0], 0o777
            elif kind == "hardlink":  # tar applies the link's mode to the shared inode
                info.type, info.linkname = tarfile.LNKTYPE, rest[0]
                info.mode = rest[1] if len(rest) > 1 else 0o644
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            else:  # pragma: no cover - a mistake in a test
                raise ValueError(kind)
            tar.addfile(info)
    return buf.getvalue()


def ar_bytes(members: Iterable[tuple[str, bytes]]) -> bytes:
    """A System V / GNU ar archive as used by .deb files (odd-sized members padded with a newline)."""
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        header = f"{name:<16}{FIXED_MTIME:<12}{0:<6}{0:<6}{0o100644:<8o}{len(data):<10}`\n".encode()
        assert len(header) == 60, header
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return bytes(out)


def deb_bytes(data_entries: Iterable[Sequence[Any]], data_member: str = "data.tar.xz",
              extra_members: Iterable[tuple[str, bytes]] = ()) -> bytes:
    compression = {"data.tar.xz": "xz", "data.tar.gz": "gz", "data.tar": ""}[data_member.rstrip("/")]
    control = tar_bytes([("dir", "."), ("file", "./control", b"Package: fake\nVersion: 1\n")], "xz")
    return ar_bytes([
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", control),
        *extra_members,
        (data_member, tar_bytes(data_entries, compression)),
    ])


@pytest.fixture
def build_tar():
    return tar_bytes


@pytest.fixture
def build_deb():
    return deb_bytes


@pytest.fixture
def build_ar():
    return ar_bytes
