"""`wasmbuild download` against hostile releases (issue 20): servers that drip release.json or SHA256SUMS, indexes
that claim huge sizes or name an archive like the tree it unpacks to, a tree damaged after it was unpacked,
concurrent downloads into one directory, failures while placing files, and output paths that cannot be written.
All on 127.0.0.1 (the fake release and its server come from test_release_download)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.unit import test_release_download as fake
from tests.unit.test_release_download import (
    ReleaseServer,
    check_unpacked,
    fails,
    listing,
    name_of,
    partial_files,
    run,
    write_index,
    write_sums,
)

from wasmbuild import download
from wasmbuild.errors import DownloadError, UsageError
from wasmbuild.release import client
from wasmbuild.release import index as release_index

ROOT = Path(__file__).resolve().parents[2]
# The fake release's fixtures, shared.
release_template, rel, server, out, cache_dir = fake.release_template, fake.rel, fake.server, fake.out, fake.cache_dir


@pytest.fixture
def fast_rate_check(monkeypatch):
    monkeypatch.delenv("WASMBUILD_MIN_RATE", raising=False)
    monkeypatch.setattr(download, "MIN_RATE", 2000)
    monkeypatch.setattr(download, "RATE_WINDOW", 0.3)
    monkeypatch.setattr(download, "BACKOFF", 0.01)


class DrippingServer(ReleaseServer):
    """The release's files, but `drip` ones a byte at a time, every `every` seconds (forever, as far as a client
    can tell: until the test ends)."""

    def __init__(self, root: Path, drip: str, every: float = 0.05) -> None:
        self.drip, self.every, self.stopping = drip, every, threading.Event()
        super().__init__(root)
        handler = self.httpd.RequestHandlerClass
        original = handler.do_GET
        server = self

        def do_get(req) -> None:  # type: ignore[no-untyped-def]
            if req.path != f"{server.prefix}{server.drip}":
                original(req)
                return
            server.requests.append((server.drip, None))
            data = (server.root / server.drip).read_bytes()
            req.send_response(200)
            req.send_header("Content-Length", str(len(data) * 10))  # plausible, and never reached
            req.end_headers()
            try:
                while not server.stopping.is_set():
                    req.wfile.write(b" ")
                    req.wfile.flush()
                    time.sleep(server.every)
            except OSError:
                pass
            req.close_connection = True

        handler.do_GET = do_get  # type: ignore[method-assign]

    def stop(self) -> None:
        self.stopping.set()
        super().stop()


# --- class 4: every read bounded --------------------------------------------------------------------------------


@pytest.mark.parametrize("document", ["release.json", "SHA256SUMS"])
def test_a_dripped_index_or_sums_file_ends_in_one_error(rel, out, cache_dir, capsys, fast_rate_check, document):
    slow = DrippingServer(rel, document)
    try:
        start = time.monotonic()
        err = fails(capsys, out, DownloadError.exit_code, "--from", slow.url, "--cache-dir", str(cache_dir))
        assert time.monotonic() - start < 10  # landed code: never returns (a byte every 0.05 s, read timeout 60 s)
    finally:
        slow.stop()
    assert f"error: cannot read {document if document != 'release.json' else 'the release index'} at {slow.url}" \
        in err
    assert "transfer too slow" in err and "WASMBUILD_MIN_RATE=0 disables the check" in err
    assert len(slow.fetched(document)) == download.RETRIES
    assert not cache_dir.exists() or partial_files(cache_dir) == []


def test_read_url_has_the_throughput_guard(rel, fast_rate_check):
    slow = DrippingServer(rel, "release.json")
    try:
        with pytest.raises(DownloadError, match="transfer too slow"):
            download.read_url(f"{slow.url}release.json", 1 << 20, retries=1)
    finally:
        slow.stop()


@pytest.mark.parametrize("where", ["artifact", "companion"])
def test_an_index_claiming_a_huge_size_is_refused_before_any_transfer(server, rel, out, cache_dir, capsys, where):
    index = json.loads((rel / "release.json").read_text())
    entry = index["artifacts"][0]
    huge = release_index.MAX_ARTIFACT_SIZE + 1
    (entry if where == "artifact" else entry["companions"][0])["size"] = huge
    write_index(rel, index["artifacts"])
    write_sums(rel)
    err = fails(capsys, out, DownloadError.exit_code, "--from", server.url, "--cache-dir", str(cache_dir), "--dev")
    field = "size" if where == "artifact" else "companions[0].size"
    assert f"artifacts[0].{field}: {huge} bytes is more than an archive may have (1073741824 bytes, 1 GiB" in err
    assert sorted(n for n, _ in server.requests) == ["release.json"]
    assert partial_files(cache_dir) == []


def test_the_size_cap_is_one_gib():
    assert release_index.MAX_ARTIFACT_SIZE == 1 << 30


def test_a_body_longer_than_the_entry_leaves_nothing_in_the_cache_or_the_output(server, rel, out, cache_dir, capsys):
    # The index says a few bytes; the server sends far more (as an endless body would).
    name = name_of("3.13.15")
    index = json.loads((rel / "release.json").read_text())
    index["artifacts"][0]["size"] = 100
    write_index(rel, index["artifacts"])
    write_sums(rel)
    err = fails(capsys, out, DownloadError.exit_code, "--from", server.url, "--cache-dir", str(cache_dir))
    assert f"{name}.tar.gz: more than the expected 100 bytes" in err
    assert "resumes the transfer" not in err  # nothing was kept to resume from
    assert partial_files(cache_dir) == []


def test_an_interrupted_transfer_leaves_nothing_in_the_output_and_at_most_the_entrys_size_in_the_cache(
        server, rel, out, cache_dir, capsys, monkeypatch):
    name = name_of("3.13.15")
    size = (rel / f"{name}.tar.gz").stat().st_size
    real = download.log.Progress.update

    def interrupt(self, n):  # type: ignore[no-untyped-def]
        real(self, n)
        raise KeyboardInterrupt

    monkeypatch.setattr(download.log.Progress, "update", interrupt)
    server.cuts[f"{name}.tar.gz"] = []
    with pytest.raises(KeyboardInterrupt):
        client.download_release(client.Location(url=server.url), python=None, target="wasi", out_dir=out,
                                cache_root=cache_dir)
    assert listing(out) == []
    kept = partial_files(cache_dir)
    assert all(p.stat().st_size <= size for p in kept)  # a resumable partial of a size-checked entry, no more


# --- class 5: validated names, nothing half-placed, intact trees, concurrent downloads ------------------------


@pytest.mark.parametrize("which", ["file", "companion", "hidden"])
def test_an_archive_named_like_the_tree_or_hidden_is_refused_before_anything_is_placed(server, rel, out, cache_dir,
                                                                                       capsys, which):
    name = name_of("3.13.15")
    index = json.loads((rel / "release.json").read_text())
    entry = index["artifacts"][0]
    bad = f".{name}.download-1" if which == "hidden" else name
    if which == "companion":
        (rel / bad).write_bytes((rel / entry["companions"][0]["file"]).read_bytes())
        entry["companions"][0]["file"] = bad
    else:
        (rel / bad).write_bytes((rel / entry["file"]).read_bytes())
        entry["file"] = bad
    write_index(rel, index["artifacts"])
    write_sums(rel)
    err = fails(capsys, out, DownloadError.exit_code, "--from", server.url, "--cache-dir", str(cache_dir), "--dev")
    where = "companions[0].file" if which == "companion" else "file"
    assert f"artifacts[0].{where}: " in err
    assert listing(out) == []
    assert server.fetched(bad) == []  # refused when the index was read


def test_a_tree_whose_python_wasm_was_changed_is_not_already_there(server, rel, out, cache_dir, capsys):
    argv = ["--from", server.url, "-o", str(out), "--cache-dir", str(cache_dir)]
    assert run(capsys, *argv)[0] == 0
    name = name_of("3.13.15")
    (out / name / "python.wasm").write_bytes(b"\0asm\x01\0\0\0 not the release's")
    code, stdout, err = run(capsys, *argv)
    assert code == UsageError.exit_code and stdout == ""
    assert "already there" not in err
    assert f"error: {out / name} already exists but is not intact: its python.wasm differs from the one its record " \
        "names" in err
    assert f"hint: remove {out / name} and run the same command again" in err
    (out / name / "python.wasm").unlink()
    code, _, err = run(capsys, *argv)
    assert code == UsageError.exit_code and "its python.wasm is missing" in err


def test_four_concurrent_downloads_into_one_directory_all_succeed(server, rel, tmp_path):
    dest = tmp_path / "shared"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    # Two share a cache, two have their own: the lock is on the output directory, not only the cache.
    caches = [tmp_path / "c1", tmp_path / "c1", tmp_path / "c2", tmp_path / "c3"]
    procs = [subprocess.Popen([sys.executable, "-m", "wasmbuild", "download", "--from", server.url, "-o", str(dest),
                               "--cache-dir", str(c)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, stdin=subprocess.DEVNULL) for c in caches]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    name = name_of("3.13.15")
    for code, stdout, err in results:
        assert code == 0, err
        assert stdout == f"{dest / name}\n" and "Traceback" not in err
    assert sum("already there" in err for _, _, err in results) == 3
    assert len(server.fetched(f"{name}.tar.gz")) == 1  # the others waited, then found it: not fetched again
    check_unpacked(dest, rel, "3.13.15")


def test_a_failure_while_placing_takes_back_what_was_placed(server, rel, out, cache_dir, capsys, monkeypatch):
    real = Path.rename

    def rename(self, target):  # type: ignore[no-untyped-def]
        if self.name.endswith(".tar.gz") and self.parent.name == "archives":
            raise OSError(28, "No space left on device", str(target))
        return real(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    err = fails(capsys, out, UsageError.exit_code, "--from", server.url, "--cache-dir", str(cache_dir))
    assert f"error: cannot put the download in place in {out}: No space left on device" in err
    assert listing(out) == []  # the tree, placed first, was taken back


def test_a_failed_dev_join_restores_the_earlier_tree(server, rel, out, cache_dir, capsys, monkeypatch):
    argv = ["--from", server.url, "-o", str(out), "--cache-dir", str(cache_dir)]
    assert run(capsys, *argv)[0] == 0
    name = name_of("3.13.15")
    (out / name / "mine.txt").write_text("kept")
    before = listing(out)
    real = Path.rename

    def rename(self, target):  # type: ignore[no-untyped-def]
        if self.name.endswith("-dev.tar.gz") and self.parent.name == "archives":
            raise OSError(28, "No space left on device", str(target))
        return real(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    assert run(capsys, *argv, "--dev")[0] == UsageError.exit_code
    assert listing(out) == before
    assert (out / name / "mine.txt").read_text() == "kept"
    assert not (out / name / "lib" / "libpython3.13.a").exists()


# --- class 9: an output path that cannot be made or written: one error, before the network ---------------------


def test_an_output_path_under_a_file_is_one_usage_error(server, tmp_path, cache_dir, capsys):
    (tmp_path / "file").write_text("x")
    code, stdout, err = run(capsys, "--from", server.url, "-o", str(tmp_path / "file" / "sub"), "--cache-dir",
                            str(cache_dir))
    assert code == UsageError.exit_code and stdout == "" and "Traceback" not in err
    assert f"error: -o {tmp_path / 'file' / 'sub'}: cannot create it: {tmp_path / 'file'} is a file" in err
    assert server.requests == []


@pytest.mark.parametrize("exists", [True, False])
def test_an_unwritable_output_path_is_one_usage_error(server, tmp_path, cache_dir, capsys, monkeypatch, exists):
    target = tmp_path / "ro" / "sub"
    (tmp_path / "ro").mkdir()
    if exists:
        target.mkdir()
    ro = target if exists else tmp_path / "ro"
    real = os.access
    monkeypatch.setattr(client.os, "access", lambda p, mode: False if Path(p) == ro else real(p, mode))
    code, stdout, err = run(capsys, "--from", server.url, "-o", str(target), "--cache-dir", str(cache_dir))
    assert code == UsageError.exit_code and stdout == "" and "Traceback" not in err
    assert "not writable" in err and server.requests == []


def test_an_output_directory_that_cannot_be_created_is_one_usage_error(rel, tmp_path, cache_dir, capsys,
                                                                       monkeypatch):
    real = Path.mkdir

    def mkdir(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.name == "new":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    code, stdout, err = run(capsys, "--from", str(rel), "-o", str(tmp_path / "new"), "--cache-dir", str(cache_dir))
    assert code == UsageError.exit_code and "Traceback" not in err
    assert f"error: -o {tmp_path / 'new'}: cannot create the directory: Permission denied" in err
    assert not (tmp_path / "new").exists()


class HeadDripper:
    """A server on 127.0.0.1 that accepts connections and drips its status line a byte at a time (every 0.1 s),
    never finishing the headers: each read by the client is within the read timeout, the head never ends."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/release.json"

    def _serve(self) -> None:
        conns = []
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                conns.append(conn)
            except OSError:
                pass
            for c in list(conns):
                try:
                    c.send(b"H")
                except OSError:
                    conns.remove(c)
            time.sleep(0.1)
        for c in conns:
            c.close()
        self.sock.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.mark.parametrize("how", ["read_url", "download"])
def test_a_server_dripping_its_response_head_is_cut_at_the_head_deadline(tmp_path, monkeypatch, how):
    """The per-read timeout alone let a server drip its status line and headers for ever (issue 20, class 4)."""
    monkeypatch.setattr(download, "HEAD_DEADLINE", 0.5)
    monkeypatch.setattr(download, "BACKOFF", 0.01)
    server = HeadDripper()
    try:
        start = time.monotonic()
        with pytest.raises(DownloadError, match="no complete response head .* within 0.5 s"):
            if how == "read_url":
                download.read_url(server.url, 1 << 20, retries=2)
            else:
                download.download(server.url, tmp_path / "f", "0" * 64, 10)
        assert time.monotonic() - start < 10
        assert not (tmp_path / "f").exists()
    finally:
        server.close()
