"""Verified downloads against a real HTTP server on 127.0.0.1, and the route order of fetch()."""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path

import pytest

from wasmbuild import download
from wasmbuild.download import Sources, cache_path, candidate_urls, fetch
from wasmbuild.errors import ChecksumError, DownloadError
from wasmbuild.recipe import Download

# More than one CHUNK (64 KiB), so the body arrives in several blocks.
GOOD = bytes(range(256)) * 1024 + b"the end\n"
SHA = hashlib.sha256(GOOD).hexdigest()
TAMPERED = GOOD[:-8] + b"THE END\n"  # same size, different bytes
TAMPERED_SHA = hashlib.sha256(TAMPERED).hexdigest()
assert len(TAMPERED) == len(GOOD) and TAMPERED_SHA != SHA


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "downloads" / "file.tar.gz"


# --- download() -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [None, len(GOOD)], ids=["no-size", "size"])
def test_good_download(http_server, dest, size):
    url = http_server.serve("/good", GOOD)
    assert download.download(url, dest, SHA, size) == dest
    assert dest.read_bytes() == GOOD
    assert listing(dest.parent) == ["file.tar.gz"]
    assert http_server.hits("/good") == 1


def test_stale_partial_files_from_a_killed_run_are_removed(http_server, dest):
    url = http_server.serve("/good", GOOD)
    dest.parent.mkdir(parents=True)
    (dest.parent / ".file.tar.gz.part-99999").write_bytes(GOOD[:100])
    (dest.parent / ".other.tar.gz.part-99999").write_bytes(b"belongs to another download")
    download.download(url, dest, SHA)
    assert listing(dest.parent) == [".other.tar.gz.part-99999", "file.tar.gz"]


def test_dest_appears_only_after_the_hash_is_checked(http_server, dest, monkeypatch):
    url = http_server.serve("/good", GOOD)
    seen = {}
    real_verify = download._verify_stream_target

    def spy(tmp, *args):
        seen["dest_existed"] = dest.exists()
        seen["tmp"] = tmp
        seen["tmp_bytes"] = tmp.read_bytes()
        return real_verify(tmp, *args)

    monkeypatch.setattr(download, "_verify_stream_target", spy)
    download.download(url, dest, SHA)
    assert seen["dest_existed"] is False
    assert seen["tmp"].parent == dest.parent and seen["tmp"].name.startswith(".file.tar.gz.part-")
    assert seen["tmp_bytes"] == GOOD
    assert not seen["tmp"].exists()


@pytest.mark.parametrize("size", [None, len(GOOD)], ids=["no-size", "size"])
def test_tampered_bytes_fail_without_retry_and_leave_nothing(http_server, dest, size):
    url = http_server.serve("/tampered", TAMPERED)
    with pytest.raises(ChecksumError) as info:
        download.download(url, dest, SHA, size)
    message = str(info.value)
    assert f"sha256 mismatch for {url}" in message
    assert re.search(rf"expected {SHA}\n\s+actual\s+{TAMPERED_SHA} \({len(GOOD)} bytes\)", message)
    assert "hint: the file differs from the pinned one" in message
    assert http_server.hits("/tampered") == 1
    assert listing(dest.parent) == []


@pytest.mark.parametrize("size", [None, len(GOOD)], ids=["no-size", "size"])
def test_truncated_transfer_is_retried_then_fails(http_server, dest, size):
    half = GOOD[: len(GOOD) // 2]
    url = http_server.route("/truncated", http_server.Reply(200, half, content_length=len(GOOD)))
    with pytest.raises(DownloadError, match=re.escape(f"{url}: transfer interrupted after ")) as info:
        download.download(url, dest, SHA, size)
    assert not isinstance(info.value, ChecksumError)
    assert http_server.hits("/truncated") == download.RETRIES
    assert listing(dest.parent) == []


def test_short_but_complete_body_with_pinned_size_is_a_retryable_size_mismatch(http_server, dest):
    url = http_server.serve("/short", GOOD[:1000])
    with pytest.raises(DownloadError, match=re.escape(
        f"size mismatch for {url}: expected {len(GOOD)} bytes, got 1000"
    )) as info:
        download.download(url, dest, SHA, len(GOOD))
    assert not isinstance(info.value, ChecksumError)
    assert http_server.hits("/short") == download.RETRIES
    assert listing(dest.parent) == []


def test_more_bytes_than_pinned_size_stops_early_without_retry(http_server, dest):
    url = http_server.serve("/long", GOOD + b"x" * 200_000)
    with pytest.raises(DownloadError, match=re.escape(f"{url}: more than the expected {len(GOOD)} bytes")):
        download.download(url, dest, SHA, len(GOOD))
    assert http_server.hits("/long") == 1
    assert listing(dest.parent) == []


def test_404_is_not_retried(http_server, dest):
    url = http_server.url("/missing")
    with pytest.raises(DownloadError, match=re.escape(f"{url}: HTTP 404")) as info:
        download.download(url, dest, SHA)
    assert not isinstance(info.value, ChecksumError)
    assert http_server.hits("/missing") == 1
    assert listing(dest.parent) == []


def test_500_is_retried_retries_times(http_server, dest, capsys):
    url = http_server.route("/error", http_server.Reply(500, b"boom"))
    with pytest.raises(DownloadError, match=re.escape(f"{url}: HTTP 500")):
        download.download(url, dest, SHA)
    assert download.RETRIES == 3
    assert http_server.hits("/error") == download.RETRIES
    assert listing(dest.parent) == []
    err = capsys.readouterr().err
    assert "retrying in 0.0s (1/3)" in err and "retrying in 0.0s (2/3)" in err
    assert "(3/3)" not in err


def test_retries_argument_is_honoured(http_server, dest):
    url = http_server.route("/error", http_server.Reply(500, b"boom"))
    with pytest.raises(DownloadError, match="HTTP 500"):
        download.download(url, dest, SHA, retries=1)
    assert http_server.hits("/error") == 1


def test_500_then_200_succeeds_on_retry(http_server, dest):
    url = http_server.route("/flaky", http_server.Reply(500, b"boom"), http_server.Reply(200, GOOD))
    assert download.download(url, dest, SHA, len(GOOD)) == dest
    assert dest.read_bytes() == GOOD
    assert http_server.hits("/flaky") == 2
    assert listing(dest.parent) == ["file.tar.gz"]


def test_backoff_doubles_between_attempts(http_server, dest, monkeypatch):
    delays = []
    monkeypatch.setattr(download, "BACKOFF", 0.25)
    monkeypatch.setattr(download.time, "sleep", delays.append)
    url = http_server.route("/error", http_server.Reply(503, b"busy"))
    with pytest.raises(DownloadError, match="HTTP 503"):
        download.download(url, dest, SHA)
    assert delays == [0.25, 0.5]


def test_connection_refused_is_retried(dest):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    with pytest.raises(DownloadError, match=re.escape(f"{url}: connection failed: ConnectionError")):
        download.download(url, dest, SHA)
    assert listing(dest.parent) == []


def test_file_url(tmp_path, dest):
    source = tmp_path / "mirror" / "file.tar.gz"
    source.parent.mkdir()
    source.write_bytes(GOOD)
    assert download.download(source.as_uri(), dest, SHA, len(GOOD)).read_bytes() == GOOD
    missing = (tmp_path / "mirror" / "nope.tar.gz").as_uri()
    with pytest.raises(DownloadError, match=re.escape(f"{missing}: no such file")):
        download.download(missing, tmp_path / "other" / "nope.tar.gz", SHA)
    assert listing(tmp_path / "other") == []


# --- fetch() ------------------------------------------------------------------------------------------------

UPSTREAM = "/upstream/pkg_1.0.orig.tar.gz"
DEBIAN_PATH = "pool/main/p/pkg/pkg_1.0.orig.tar.gz"


@pytest.fixture
def item(http_server):
    return Download(url=http_server.url(UPSTREAM), sha256=SHA, size=len(GOOD), debian=DEBIAN_PATH)


@pytest.fixture
def mirror_dir(tmp_path):
    path = tmp_path / "mirror"
    path.mkdir()
    return path


@pytest.fixture
def cache_root(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def sources(http_server, mirror_dir):
    return Sources(mirror_dir=mirror_dir, debian_mirror=http_server.url("/debian"))


def test_candidate_urls_order_and_joining(item, mirror_dir, http_server):
    sources = Sources(mirror_dir=mirror_dir, debian_mirror=http_server.url("/debian/"))
    assert candidate_urls(item, sources) == [
        ("upstream", item.url),
        ("mirror-dir", (mirror_dir / "pkg_1.0.orig.tar.gz").as_uri()),
        ("debian", http_server.url("/debian/" + DEBIAN_PATH)),
    ]
    no_debian_path = Download(url=item.url, sha256=SHA)
    assert [r for r, _ in candidate_urls(no_debian_path, sources)] == ["upstream", "mirror-dir"]
    assert candidate_urls(item, Sources(upstream=False)) == []


def test_fetch_upstream_first(http_server, item, cache_root, sources):
    http_server.serve(UPSTREAM, GOOD)
    got = fetch(item, cache_root, sources)
    assert (got.route, got.url) == ("upstream", item.url)
    assert got.path == cache_path(cache_root, item)
    assert got.path == cache_root / "downloads" / SHA[:16] / "pkg_1.0.orig.tar.gz"
    assert got.path.read_bytes() == GOOD
    assert got.path.with_name("pkg_1.0.orig.tar.gz.route").read_text() == f"upstream {item.url}"
    assert http_server.requests == [UPSTREAM]


def test_fetch_falls_back_to_the_mirror_dir(http_server, item, cache_root, sources, mirror_dir):
    (mirror_dir / "pkg_1.0.orig.tar.gz").write_bytes(GOOD)
    http_server.serve("/debian/" + DEBIAN_PATH, GOOD)
    got = fetch(item, cache_root, sources)
    assert got.route == "mirror-dir"
    assert got.url == (mirror_dir / "pkg_1.0.orig.tar.gz").as_uri()
    assert http_server.requests == [UPSTREAM]  # upstream 404, debian never asked


def test_fetch_falls_back_to_debian_after_upstream_404_and_empty_mirror_dir(http_server, item, cache_root,
                                                                            sources):
    http_server.serve("/debian/" + DEBIAN_PATH, GOOD)
    got = fetch(item, cache_root, sources)
    assert (got.route, got.url) == ("debian", http_server.url("/debian/" + DEBIAN_PATH))
    assert got.path.read_bytes() == GOOD
    assert http_server.requests == [UPSTREAM, "/debian/" + DEBIAN_PATH]


def test_fetch_skips_a_route_serving_different_bytes(http_server, item, cache_root, sources, capsys):
    http_server.serve(UPSTREAM, TAMPERED)
    http_server.serve("/debian/" + DEBIAN_PATH, GOOD)
    got = fetch(item, cache_root, sources)
    assert got.route == "debian"
    assert got.path.read_bytes() == GOOD
    assert f"warning: sha256 mismatch for {item.url}" in capsys.readouterr().err


def test_cached_file_is_reused_without_network(http_server, item, cache_root, sources):
    http_server.serve(UPSTREAM, GOOD)
    first = fetch(item, cache_root, sources)
    second = fetch(item, cache_root, sources)
    assert second == first
    assert http_server.hits(UPSTREAM) == 1


def test_cached_file_without_route_marker_reports_cache(item, cache_root, http_server):
    path = cache_path(cache_root, item)
    path.parent.mkdir(parents=True)
    path.write_bytes(GOOD)
    got = fetch(item, cache_root, Sources())
    assert (got.route, got.url, got.path) == ("cache", item.url, path)
    assert http_server.requests == []


@pytest.mark.parametrize("corruption", [TAMPERED, GOOD[:-1]], ids=["same-size", "short"])
def test_corrupted_cached_file_is_deleted_and_fetched_again(http_server, item, cache_root, sources, capsys,
                                                             corruption):
    http_server.serve(UPSTREAM, GOOD)
    path = fetch(item, cache_root, sources).path
    path.write_bytes(corruption)
    got = fetch(item, cache_root, sources)
    assert got.path == path and path.read_bytes() == GOOD
    assert http_server.hits(UPSTREAM) == 2
    assert f"cached {path} does not match its pinned sha256; deleting it" in capsys.readouterr().err


def test_all_routes_failing_lists_each_route(http_server, item, cache_root, sources, mirror_dir):
    with pytest.raises(DownloadError) as info:
        fetch(item, cache_root, sources)
    assert not isinstance(info.value, ChecksumError)
    message = str(info.value)
    assert message.startswith(f"could not obtain pkg_1.0.orig.tar.gz (sha256 {SHA}):\n")
    mirror_url = (mirror_dir / "pkg_1.0.orig.tar.gz").as_uri()
    debian_url = http_server.url("/debian/" + DEBIAN_PATH)
    assert f"\n  - upstream: {item.url}: HTTP 404" in message
    assert f"\n  - mirror-dir: {mirror_url}: no such file" in message
    assert f"\n  - debian: {debian_url}: HTTP 404" in message
    assert message.index("upstream:") < message.index("mirror-dir:") < message.index("debian:")
    assert "hint: check the network" in message
    assert listing(cache_path(cache_root, item).parent) == []


def test_all_routes_serving_wrong_bytes_is_a_checksum_error(http_server, item, cache_root, sources,
                                                            mirror_dir):
    http_server.serve(UPSTREAM, TAMPERED)
    (mirror_dir / "pkg_1.0.orig.tar.gz").write_bytes(TAMPERED)
    http_server.serve("/debian/" + DEBIAN_PATH, TAMPERED)
    with pytest.raises(ChecksumError, match=r"(?s)upstream: sha256 mismatch.*mirror-dir: sha256 mismatch"
                                            r".*debian: sha256 mismatch"):
        fetch(item, cache_root, sources)
    assert not cache_path(cache_root, item).exists()


def test_upstream_false_never_contacts_upstream(http_server, item, cache_root, mirror_dir):
    http_server.serve(UPSTREAM, GOOD)
    http_server.serve("/debian/" + DEBIAN_PATH, GOOD)
    got = fetch(item, cache_root, Sources(upstream=False, debian_mirror=http_server.url("/debian")))
    assert got.route == "debian"
    assert http_server.hits(UPSTREAM) == 0
    assert http_server.requests == ["/debian/" + DEBIAN_PATH]


def test_no_route_at_all(http_server, item, cache_root):
    with pytest.raises(DownloadError, match=re.escape("(no route configured)")):
        fetch(item, cache_root, Sources(upstream=False))
    assert http_server.requests == []
