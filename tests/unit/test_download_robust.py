"""The downloader against misbehaving servers and caches: slow or endless transfers, redirect loops and bad urls,
truncated bodies, directories where files belong, and the leftovers of failed downloads. All on 127.0.0.1."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import http.server
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import urllib3

from wasmbuild import download, toolchain
from wasmbuild.download import Sources, cache_path, fetch
from wasmbuild.errors import ChecksumError, DownloadError, UsageError
from wasmbuild.recipe import DebPackage, Download, ToolchainManifest

BODY = bytes(range(256)) * 20  # 5120 bytes
SHA = hashlib.sha256(BODY).hexdigest()
NAME = "pkg_1.0.orig.tar.gz"

has_read1 = pytest.mark.skipif(not hasattr(urllib3.response.HTTPResponse, "read1"),
                               reason="urllib3 1.x has no read1: a read waits for a whole chunk")


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def empty_dirs(root: Path) -> list[Path]:
    return [d for d in [root, *root.rglob("*")] if d.is_dir() and not any(d.iterdir())] if root.exists() else []


# --- a server whose replies are functions -----------------------------------------------------------------------

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class ScriptedServer:
    """Each path maps to a function writing the whole reply; unknown paths get a 404. Records request headers."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.stopping = threading.Event()
        server = self

        class RequestHandler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                handler = server.handlers.get(self.path)
                if handler is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with contextlib.suppress(OSError):  # the client went away
                    handler(self)
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def on(self, path: str, handler: Handler) -> str:
        self.handlers[path] = handler
        return self.url(path)

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server():
    s = ScriptedServer()
    try:
        yield s
    finally:
        s.stop()


def reply(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None,
          content_length: bool = True) -> Handler:
    def handle(req: http.server.BaseHTTPRequestHandler) -> None:
        req.send_response(status)
        for key, value in (headers or {}).items():
            req.send_header(key, value)
        if content_length:
            req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)
    return handle


def dribble(stopping: threading.Event, step: bytes, every: float, length: int, give_up: float = 1.5) -> Handler:
    """Announce `length` bytes, then send `step` every `every` seconds until they are sent (or `give_up` seconds
    have passed: then the connection is closed)."""
    def handle(req: http.server.BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Length", str(length))
        req.end_headers()
        end = time.monotonic() + give_up
        sent = 0
        while sent < length and time.monotonic() < end and not stopping.is_set():
            req.wfile.write(step[: length - sent])
            req.wfile.flush()
            sent += len(step)
            time.sleep(every)
    return handle


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "downloads" / "file.tar.gz"


@pytest.fixture
def fast_rate_check(monkeypatch):
    monkeypatch.delenv("WASMBUILD_MIN_RATE", raising=False)
    monkeypatch.setattr(download, "MIN_RATE", 2000)
    monkeypatch.setattr(download, "RATE_WINDOW", 0.15)


# --- 1. minimum transfer rate ---------------------------------------------------------------------------------


@has_read1
def test_a_dribbling_server_is_cut_off_and_retried(server, dest, fast_rate_check, capsys):
    url = server.on("/slow", dribble(server.stopping, b"x" * 10, 0.02, 100_000))  # ~500 bytes/s
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        download.download(url, dest, SHA, retries=2)
    assert time.monotonic() - start < 1.2
    assert not isinstance(info.value, (download._Permanent, ChecksumError))
    message = str(info.value)
    assert re.match(rf"{re.escape(url)}: transfer too slow: \d+ bytes/s over the last [\d.]+s, under the minimum of "
                    rf"2000 bytes/s, after \d+ of 100000 bytes \(WASMBUILD_MIN_RATE=0 disables the check\)$", message)
    assert int(re.search(r"after (\d+) of", message).group(1)) > 0
    assert server.hits("/slow") == 2  # retried
    assert "retrying in 0.0s (1/2)" in capsys.readouterr().err
    assert listing(dest.parent) == []


@has_read1
def test_wasmbuild_min_rate_overrides_the_constant(server, dest, fast_rate_check, monkeypatch):
    monkeypatch.setattr(download, "MIN_RATE", 0)
    monkeypatch.setenv("WASMBUILD_MIN_RATE", "2000")
    url = server.on("/slow", dribble(server.stopping, b"x" * 10, 0.02, 100_000))
    with pytest.raises(DownloadError, match=re.escape(f"{url}: transfer too slow: ")):
        download.download(url, dest, SHA, retries=1)


@has_read1
def test_wasmbuild_min_rate_zero_disables_the_check(server, dest, fast_rate_check, monkeypatch):
    monkeypatch.setenv("WASMBUILD_MIN_RATE", "0")
    body = b"y" * 50
    url = server.on("/slow", dribble(server.stopping, b"y" * 5, 0.03, len(body)))  # ~170 bytes/s for 0.3 s
    assert download.download(url, dest, hashlib.sha256(body).hexdigest(), retries=1).read_bytes() == body


@pytest.mark.parametrize("value", ["fast", "-1", "1.5"])
def test_a_bad_wasmbuild_min_rate_is_a_usage_error(dest, monkeypatch, value):
    monkeypatch.setenv("WASMBUILD_MIN_RATE", value)
    with pytest.raises(UsageError, match=re.escape(f"WASMBUILD_MIN_RATE={value!r}: expected a whole number")):
        download.download("http://127.0.0.1:9/x", dest, SHA)
    assert not dest.parent.exists()


def test_min_rate_default_and_override(monkeypatch):
    monkeypatch.delenv("WASMBUILD_MIN_RATE", raising=False)
    assert download.min_rate() == download.MIN_RATE == 16 << 10
    assert download.RATE_WINDOW == 30
    monkeypatch.setenv("WASMBUILD_MIN_RATE", " 1024 ")
    assert download.min_rate() == 1024


def test_bytes_are_hashed_as_served_even_with_a_content_encoding(server, dest):
    # A .tar.gz served with "Content-Encoding: gzip" (a common server misconfiguration) is stored as served.
    data = gzip.compress(BODY, mtime=0)
    url = server.on("/x.tar.gz", reply(body=data, headers={"Content-Encoding": "gzip"}))
    assert download.download(url, dest, hashlib.sha256(data).hexdigest(), len(data)).read_bytes() == data
    headers = {k.lower(): v for k, v in server.requests[0][1].items()}
    assert headers["accept-encoding"] == "identity"


def chunked(body: bytes, piece: int) -> Handler:
    def handle(req: http.server.BaseHTTPRequestHandler) -> None:
        req.protocol_version = "HTTP/1.1"
        req.send_response(200)
        req.send_header("Transfer-Encoding", "chunked")
        req.send_header("Connection", "close")
        req.end_headers()
        for i in range(0, len(body), piece):
            part = body[i:i + piece]
            req.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        req.wfile.write(b"0\r\n\r\n")
    return handle


def test_a_chunked_body_is_read_whole(server, dest):
    url = server.on("/chunked", chunked(BODY, 1000))
    assert download.download(url, dest, SHA).read_bytes() == BODY


# --- 2. size limits --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_length", [True, False], ids=["announced", "unannounced"])
def test_max_size_stops_the_transfer_without_retry(server, dest, content_length):
    url = server.on("/big", reply(body=BODY * 40, content_length=content_length))
    with pytest.raises(DownloadError, match=re.escape(f"{url}: more than its max_size of 1000 bytes")) as info:
        download.download(url, dest, SHA, max_size=1000)
    assert isinstance(info.value, download._Permanent)
    assert server.hits("/big") == 1
    assert listing(dest.parent) == []


@pytest.mark.parametrize("content_length", [True, False], ids=["announced", "unannounced"])
def test_unsized_downloads_have_a_ceiling(server, dest, monkeypatch, content_length):
    assert download.MAX_UNSIZED == 8 << 30
    monkeypatch.setattr(download, "MAX_UNSIZED", 1000)
    url = server.on("/big", reply(body=BODY * 40, content_length=content_length))
    with pytest.raises(DownloadError, match=re.escape(
        f"{url}: more than 1000 bytes, the ceiling for an input without a pinned size (MAX_UNSIZED"
    )):
        download.download(url, dest, SHA)
    assert server.hits("/big") == 1
    assert listing(dest.parent) == []


def test_the_ceiling_applies_to_mirror_dir_files(tmp_path, dest, monkeypatch):
    monkeypatch.setattr(download, "MAX_UNSIZED", 1000)
    source = tmp_path / "mirror" / "file.tar.gz"
    source.parent.mkdir()
    source.write_bytes(BODY)
    with pytest.raises(DownloadError, match=re.escape(f"{source.as_uri()}: more than 1000 bytes, the ceiling")):
        download.download(source.as_uri(), dest, SHA)
    assert listing(dest.parent) == []


def test_a_pinned_size_or_max_size_lifts_the_ceiling(server, dest, monkeypatch):
    monkeypatch.setattr(download, "MAX_UNSIZED", 1000)
    url = server.on("/ok", reply(body=BODY))
    assert download.download(url, dest, SHA, max_size=len(BODY)).read_bytes() == BODY
    dest.unlink()
    assert download.download(url, dest, SHA, len(BODY)).read_bytes() == BODY


@dataclasses.dataclass(frozen=True)
class SizedDownload(Download):
    max_size: int | None = None


def test_fetch_passes_the_items_max_size(server, tmp_path):
    url = server.on(f"/{NAME}", reply(body=BODY))
    item = SizedDownload(url=url, sha256=SHA, max_size=100)
    with pytest.raises(DownloadError, match=re.escape(f"upstream: {url}: more than its max_size of 100 bytes")):
        fetch(item, tmp_path / "cache", Sources())
    assert fetch(dataclasses.replace(item, max_size=len(BODY)), tmp_path / "cache", Sources()).route == "upstream"


# --- 3. redirects and urls that no retry can fix -----------------------------------------------------------------


def redirect(location: str) -> Handler:
    def handle(req: http.server.BaseHTTPRequestHandler) -> None:
        req.send_response(302)
        req.send_header("Location", location)
        req.send_header("Content-Length", "0")
        req.end_headers()
    return handle


def test_a_redirect_loop_is_not_retried(server, dest, capsys):
    url = server.on("/loop", redirect("/loop"))
    with pytest.raises(DownloadError) as info:
        download.download(url, dest, SHA)
    assert str(info.value) == f"{url}: redirect loop (more than 30 redirects)"
    assert isinstance(info.value, download._Permanent)
    assert server.hits("/loop") == 31  # one attempt: the request and 30 redirects
    assert "retrying" not in capsys.readouterr().err
    assert listing(dest.parent) == []


def test_a_redirect_to_a_file_url_is_refused_without_retry(server, dest, tmp_path, capsys):
    secret = tmp_path / "secret"
    secret.write_bytes(BODY)
    url = server.on("/to-file", redirect(secret.as_uri()))
    with pytest.raises(DownloadError) as info:
        download.download(url, dest, SHA)
    message = str(info.value)
    assert message.startswith(f"{url}: unsupported url scheme, here or in a redirect: ")
    assert secret.as_uri() in message and "\n" not in message
    assert isinstance(info.value, download._Permanent)
    assert server.hits("/to-file") == 1
    assert "retrying" not in capsys.readouterr().err
    assert not dest.exists()


@pytest.mark.parametrize("url, cause", [
    ("ftp://127.0.0.1/x.tar.gz", "unsupported url scheme, here or in a redirect"),
    ("127.0.0.1/x.tar.gz", "not a valid url"),
    ("http://", "not a valid url"),
    ("http://[::1/x.tar.gz", "not a valid url"),
], ids=["ftp", "no-scheme", "no-host", "bad-ipv6"])
def test_malformed_urls_are_not_retried(dest, monkeypatch, url, cause):
    sleeps = []
    monkeypatch.setattr(download.time, "sleep", sleeps.append)
    with pytest.raises(DownloadError) as info:
        download.download(url, dest, SHA)
    assert str(info.value).startswith(f"{url}: {cause}: ")
    assert "\n" not in str(info.value)
    assert isinstance(info.value, download._Permanent)
    assert sleeps == []
    assert listing(dest.parent) == []


# --- 4. the byte count of an interrupted transfer ---------------------------------------------------------------


@pytest.mark.parametrize("size", [None, 5000], ids=["no-size", "size"])
def test_an_interrupted_transfer_reports_the_bytes_received(http_server, dest, size):
    body = BODY[:5000]
    url = http_server.route("/cut", http_server.Reply(200, body[:1200], content_length=5000))
    with pytest.raises(DownloadError) as info:
        download.download(url, dest, hashlib.sha256(body).hexdigest(), size, retries=1)
    assert str(info.value).startswith(f"{url}: transfer interrupted after 1200 of 5000 bytes (")
    assert not isinstance(info.value, download._Permanent)
    assert listing(dest.parent) == []


# --- 5. no empty folders after a failure ------------------------------------------------------------------------


@pytest.fixture
def item(http_server):
    return Download(url=http_server.url(f"/upstream/{NAME}"), sha256=SHA, size=len(BODY),
                    debian=f"pool/main/p/pkg/{NAME}")


def test_a_failed_fetch_leaves_no_empty_folder(http_server, item, tmp_path):
    cache_root = tmp_path / "cache"
    (cache_root / "downloads").mkdir(parents=True)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with pytest.raises(DownloadError, match="could not obtain"):
        fetch(item, cache_root, Sources(mirror_dir=mirror, debian_mirror=http_server.url("/debian")))
    assert len(http_server.requests) == 2
    assert empty_dirs(cache_root / "downloads") == [cache_root / "downloads"]  # it was there before
    assert not cache_path(cache_root, item).parent.exists()


def test_a_failed_fetch_removes_the_leftovers_of_an_earlier_one(http_server, item, tmp_path):
    cache_root = tmp_path / "cache"
    path = cache_path(cache_root, item)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"corrupt")
    path.with_name(NAME + ".route").write_text(f"upstream {item.url}")
    (cache_root / "downloads" / "keep").mkdir()
    (cache_root / "downloads" / "keep" / "other.tar.gz").write_bytes(b"another input")
    with pytest.raises(DownloadError, match="could not obtain"):
        fetch(item, cache_root, Sources())
    assert not path.parent.exists()
    assert empty_dirs(cache_root) == []


def test_a_failed_download_removes_only_the_folders_it_created(http_server, tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(DownloadError, match="HTTP 404"):
        download.download(http_server.url("/missing"), tmp_path / "a" / "b" / "c" / "f", SHA)
    assert listing(tmp_path) == ["a"] and listing(tmp_path / "a") == []


# --- 6. directories where files belong -----------------------------------------------------------------------------


def test_a_directory_at_the_cache_path_is_replaced_by_the_file(http_server, item, tmp_path, capsys):
    cache_root = tmp_path / "cache"
    path = cache_path(cache_root, item)
    (path / "sub").mkdir(parents=True)
    (path / "sub" / "junk").write_bytes(b"junk")
    http_server.serve(f"/upstream/{NAME}", BODY)
    got = fetch(item, cache_root, Sources())
    assert got.path == path and path.read_bytes() == BODY
    assert f"warning: cached {path} is a directory, not a file; removing it and fetching again" in \
        capsys.readouterr().err


def test_a_directory_in_the_mirror_dir_is_a_failed_route(http_server, item, tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / NAME).mkdir(parents=True)
    sources = Sources(mirror_dir=mirror, debian_mirror=http_server.url("/debian"))
    with pytest.raises(DownloadError) as info:
        fetch(item, tmp_path / "cache", sources)
    source = (mirror / NAME).resolve()
    assert f"\n  - mirror-dir: {source.as_uri()}: {source} is a directory, not a file\n" in str(info.value)
    # ... and the next route is still tried.
    http_server.serve(f"/debian/pool/main/p/pkg/{NAME}", BODY)
    assert fetch(item, tmp_path / "cache", sources).route == "debian"


# --- 7. naming the primary route ----------------------------------------------------------------------------------


def test_primary_route_names_the_items_own_url(http_server, item, tmp_path, capsys):
    http_server.serve(f"/upstream/{NAME}", BODY)
    got = fetch(item, tmp_path / "cache", Sources(), primary_route="debian")
    assert (got.route, got.url) == ("debian", item.url)
    assert f"  fetching {NAME} (debian): {item.url}" in capsys.readouterr().err
    assert got.path.with_name(NAME + ".route").read_text() == f"debian {item.url}"
    assert http_server.requests == [f"/upstream/{NAME}"]


def test_fetch_debs_logs_the_debian_route(http_server, tmp_path, capsys):
    deb_path = "pool/main/c/clang/clang_1_amd64.deb"
    http_server.serve(f"/debian/{deb_path}", BODY)
    manifest = ToolchainManifest(
        file=tmp_path / "toolchain.yaml", name="clang", version="1", components={}, release=(),
        debian_platform="linux-x86_64", debian_arch="amd64",
        debian_packages=(DebPackage(name="clang", version="1", suite="trixie", path=deb_path, sha256=SHA,
                                    size=len(BODY)),),
    )
    cache_root = tmp_path / "cache"
    [path] = toolchain.fetch_debs(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")))
    assert path.read_bytes() == BODY
    err = capsys.readouterr().err
    assert f"  fetching clang_1_amd64.deb (debian): {http_server.url('/debian/' + deb_path)}" in err
    assert "(upstream)" not in err
    assert path.with_name("clang_1_amd64.deb.route").read_text().startswith("debian ")
    assert http_server.requests == [f"/debian/{deb_path}"]
