"""wasmbuild serve (wasmbuild.serve): the directory assembled from a web artifact and web/, the MIME types browsers
need, port 0, a port in use; the command line's checks; what a hostile client or page gets (a NUL in the path, idle
and dripping connections, too many connections, links in and below the served directory, a foreign Host header,
another origin's python.mjs): the real server on 127.0.0.1, port 0, raw sockets."""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from wasmbuild import cli, serve
from wasmbuild.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def artifact_root(tmp_path) -> Path:
    root = tmp_path / "cpython-3.13.15-wasm32-emscripten-web"
    root.mkdir()
    (root / "python.mjs").write_text("export default function createPython() {}\n")
    (root / "python.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "python.data").write_bytes(bytes(range(256)))
    (root / "LICENSE").write_text("PSF\n")
    (root / "BUILD.json").write_text("{}\n")
    return root


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()


def test_assemble_links_the_runtime_files_beside_the_page(artifact_root, tmp_path):
    site = serve.assemble(artifact_root, ROOT / "web", tmp_path / "site")
    names = sorted(p.name for p in site.iterdir())
    for name in ("python.mjs", "python.wasm", "python.data", "LICENSE", "index.html", "repl.mjs", "worker.mjs",
                 "repl.css", "wasmbuild-python.mjs"):
        assert name in names
    assert "BUILD.json" not in names
    assert all((site / n).is_symlink() for n in names)
    assert (site / "python.data").read_bytes() == bytes(range(256))
    assert (site / "index.html").resolve() == (ROOT / "web" / "index.html").resolve()
    serve.assemble(artifact_root, ROOT / "web", site)  # again into the same directory: the links are replaced


def test_assemble_refuses_an_artifact_that_is_not_a_web_one(artifact_root, tmp_path):
    (artifact_root / "python.data").unlink()
    with pytest.raises(UsageError, match="not a web artifact: no python.data"):
        serve.assemble(artifact_root, ROOT / "web", tmp_path / "site")
    (artifact_root / "python.data").write_bytes(b"")
    with pytest.raises(UsageError, match="no index.html"):
        serve.assemble(artifact_root, tmp_path, tmp_path / "site2")


@pytest.mark.parametrize(("name", "mime"), [
    ("python.mjs", "text/javascript"),
    ("worker.mjs", "text/javascript"),
    ("python.wasm", "application/wasm"),
    ("python.data", "application/octet-stream"),
    ("index.html", "text/html"),
    ("repl.css", "text/css"),
])
def test_mime_types(artifact_root, tmp_path, name, mime):
    site = serve.assemble(artifact_root, ROOT / "web", tmp_path / "site")
    with serve.serving(site, port=0, quiet=True) as server:
        status, headers, body = get(server.url + name)
    assert status == 200
    assert headers["content-type"].split(";")[0] == mime
    assert headers["cache-control"] == "no-cache"
    assert body == (site / name).read_bytes()


def test_port_zero_picks_a_free_port_on_loopback(artifact_root, tmp_path):
    site = serve.assemble(artifact_root, ROOT / "web", tmp_path / "site")
    with serve.serving(site, port=0, quiet=True) as a, serve.serving(site, port=0, quiet=True) as b:
        assert a.url.startswith("http://127.0.0.1:") and a.url.endswith("/")
        assert a.server_address[1] != 0 and a.server_address[1] != b.server_address[1]
        status, headers, body = get(a.url)  # / is the page
        assert b"repl.mjs" in body and headers["content-type"].startswith("text/html")
        with pytest.raises(urllib.error.HTTPError) as missing:
            get(a.url + "nothing-here.js")
        assert missing.value.code == 404


def test_a_port_in_use_is_a_usage_error(artifact_root, tmp_path):
    site = serve.assemble(artifact_root, ROOT / "web", tmp_path / "site")
    with serve.serving(site, port=0, quiet=True) as server:
        with pytest.raises(UsageError, match=rf"cannot serve on 127.0.0.1:{server.server_address[1]}") as exc:
            serve.make_server(site, port=server.server_address[1])
        assert "--port 0" in (exc.value.hint or "")


@pytest.mark.parametrize(("argv", "message"), [
    (["serve", "--port", "-1"], "expected a port number"),
    (["serve", "--port", "65536"], "expected a port number"),
    (["serve", "--port", "http"], "expected a port number"),
])
def test_serve_options_are_checked(capsys, argv, message):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_serve_refuses_a_missing_artifact(capsys, tmp_path):
    assert cli.main(["serve", "--artifact", str(tmp_path / "missing.tar.gz")]) == 2
    assert "artifact not found" in capsys.readouterr().err


def test_serve_serves_an_artifact_directory(monkeypatch, artifact_root, capsys):
    """--artifact DIR: the assembled directory is served (serve_forever replaced: it would block)."""
    seen = {}

    def serve_forever(directory, *, host, port):
        seen.update(directory=directory, host=host, port=port, files=sorted(p.name for p in directory.iterdir()))

    monkeypatch.setattr(serve, "serve_forever", serve_forever)
    assert cli.main(["serve", "--artifact", str(artifact_root), "--port", "0"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 0
    assert "python.wasm" in seen["files"] and "index.html" in seen["files"]
    assert not seen["directory"].exists()  # the assembled directory is temporary


# --- hostile clients ---------------------------------------------------------------------------------------------


def raw(server, request: bytes, *, timeout: float = 10) -> bytes:
    """`request` sent as is on a new connection; everything the server answers until it closes the connection."""
    with socket.create_connection(server.server_address[:2], timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1."), answer[:200]
    return int(answer.split(b" ", 2)[1])


def request(server, path: str, *, host: str | None = None, extra: str = "") -> bytes:
    port = server.server_address[1]
    host_line = "" if host == "" else f"Host: {host or f'127.0.0.1:{port}'}\r\n"
    return raw(server, f"GET {path} HTTP/1.1\r\n{host_line}{extra}Connection: close\r\n\r\n".encode("latin-1"))


@pytest.fixture
def site(artifact_root, tmp_path) -> Path:
    return serve.assemble(artifact_root, ROOT / "web", tmp_path / "site")


@pytest.mark.parametrize("path", ["/index.html%00", "/%00", "/python.wasm%00.html", "/%0d%0aX:%20y", "/%ff%fe"])
def test_a_nul_or_control_byte_or_bad_encoding_in_the_path_is_answered_400(site, capfd, path):
    with serve.serving(site, port=0) as server:
        answer = request(server, path)
        assert status(answer) == 400
        assert status(request(server, "/index.html")) == 200  # and the server goes on
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}"])
def test_the_servers_own_names_are_answered(site, host):
    with serve.serving(site, port=0, quiet=True) as server:
        assert status(request(server, "/", host=host.format(port=server.server_address[1]))) == 200


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1", "localhost:{other}",
                                  "127.0.0.1.nip.io:{port}", "127.0.0.1:{port}@evil.example"])
def test_another_host_name_is_answered_421(site, host):
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 reads nothing of the server."""
    with serve.serving(site, port=0, quiet=True) as server:
        port = server.server_address[1]
        answer = request(server, "/python.data", host=host.format(port=port, other=port + 1))
    assert status(answer) == 421
    assert bytes(range(256)) not in answer


def test_a_request_without_one_host_header_is_answered_400(site):
    with serve.serving(site, port=0, quiet=True) as server:
        assert status(raw(server, b"GET /index.html HTTP/1.0\r\n\r\n")) == 400
        port = server.server_address[1]
        twice = f"Host: 127.0.0.1:{port}\r\n"
        assert status(request(server, "/index.html", extra=twice)) == 400


def test_only_the_top_level_files_the_server_started_with_are_served(site, tmp_path):
    """A link to a directory is not followed below it, a link made or changed after the start is not followed."""
    private = tmp_path / "private"
    private.mkdir()
    (private / "secret").write_text("key\n")
    (site / "home").symlink_to(private)
    with serve.serving(site, port=0, quiet=True) as server:
        assert status(request(server, "/home/secret")) == 404
        assert status(request(server, "/home")) == 404
        assert status(request(server, "/home/")) == 404
        assert status(request(server, "/../private/secret")) == 404
        assert status(request(server, "/%2e%2e/private/secret")) == 404
        (site / "later").symlink_to(private / "secret")
        assert status(request(server, "/later")) == 404
        (site / "LICENSE").unlink()
        (site / "LICENSE").symlink_to(private / "secret")
        answer = request(server, "/LICENSE")
        assert status(answer) == 404 and b"key" not in answer
        assert status(request(server, "/python.data")) == 200


def test_assemble_refuses_a_link_leading_out_of_the_artifact_or_web(artifact_root, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("key\n")
    (artifact_root / "python.data").unlink()
    (artifact_root / "python.data").symlink_to(secret)
    with pytest.raises(UsageError, match="python.data is a symbolic link to .*outside the artifact"):
        serve.assemble(artifact_root, ROOT / "web", tmp_path / "site")
    (artifact_root / "python.data").unlink()
    (artifact_root / "data").write_bytes(b"x")
    (artifact_root / "python.data").symlink_to("data")  # a link within the tree is fine
    site = serve.assemble(artifact_root, ROOT / "web", tmp_path / "site")
    assert (site / "python.data").read_bytes() == b"x"
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html>\n")
    (web / "notes.txt").symlink_to(secret)
    with pytest.raises(UsageError, match="notes.txt is a symbolic link to .*outside the web directory"):
        serve.assemble(artifact_root, web, tmp_path / "site2")


def test_a_connection_that_sends_nothing_is_closed(site):
    with serve.serving(site, port=0, quiet=True, idle_seconds=0.5) as server:
        started = time.monotonic()
        assert raw(server, b"") == b""
        assert time.monotonic() - started < 5


def test_a_dripped_request_is_closed_at_the_request_deadline(site):
    """A byte of header every 0.2 s never trips the idle timeout: the request's own deadline ends it."""
    with (serve.serving(site, port=0, quiet=True, idle_seconds=1, request_seconds=1) as server,
          socket.create_connection(server.server_address[:2], timeout=10) as sock):
        sock.sendall(b"GET / HTTP/1.1\r\nX-Drip: ")
        started = time.monotonic()
        with pytest.raises(OSError):  # EPIPE or ECONNRESET once the server has shut the connection
            while time.monotonic() - started < 8:
                sock.sendall(b"a")
                time.sleep(0.2)
        assert time.monotonic() - started < 5


def test_a_kept_alive_connection_is_closed_when_idle(site):
    with serve.serving(site, port=0, quiet=True, idle_seconds=0.5, request_seconds=10) as server:
        port = server.server_address[1]
        with socket.create_connection(server.server_address[:2], timeout=10) as sock:
            sock.sendall(f"GET /LICENSE HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            started = time.monotonic()
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            assert status(answer) == 200 and answer.endswith(b"PSF\n")
            assert time.monotonic() - started < 5


def test_connections_beyond_the_cap_are_answered_503(site):
    with serve.serving(site, port=0, quiet=True, max_connections=2) as server:
        idle = [socket.create_connection(server.server_address[:2], timeout=10) for _ in range(2)]
        try:
            time.sleep(0.3)  # both accepted
            answer = raw(server, b"")
            assert status(answer) == 503 and b"more than 2 connections" in answer
            idle.pop().close()
            deadline = time.monotonic() + 5
            while status(answer := request(server, "/LICENSE")) == 503 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert status(answer) == 200
        finally:
            for sock in idle:
                sock.close()


def test_the_server_closes_open_connections_when_it_stops(site):
    with serve.serving(site, port=0, quiet=True) as server:
        sock = socket.create_connection(server.server_address[:2], timeout=10)
        time.sleep(0.3)
    with sock:
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 2


def test_the_page_may_load_scripts_and_data_only_from_the_server(site):
    """?index= on another origin: the Content-Security-Policy refuses its script and fetches; the worker says why."""
    with serve.serving(site, port=0, quiet=True) as server:
        _, headers, _ = get(server.url + "?index=https://evil.example/")
    policy = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["connect-src"] == "'self'" and policy["worker-src"] == "'self'"
    assert policy["script-src"].split()[0] == "'self'" and "https:" not in policy["script-src"]
    assert "*" not in headers["content-security-policy"]
    worker = (ROOT / "web" / "worker.mjs").read_text()
    assert "sameOriginURL(message.indexURL)" in worker and "url.origin !== self.location.origin" in worker


def test_head_and_not_modified_still_work(site):
    with serve.serving(site, port=0, quiet=True) as server:
        port = server.server_address[1]
        head = raw(server, f"HEAD /python.data HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
                   .encode())
        assert status(head) == 200 and b"Content-Length: 256" in head and not head.endswith(bytes(range(256)))
        later = "Fri, 01 Jan 2100 00:00:00 GMT"
        assert status(request(server, "/python.data", extra=f"If-Modified-Since: {later}\r\n")) == 304
        mtime = os.stat(site / "python.data").st_mtime
        assert mtime > 0
        assert status(request(server, "/python.data", extra="If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n"))\
            == 200
