"""`wasmbuild download`: a small fake release (deterministic archives, release.json, SHA256SUMS) served from a
temporary directory by a local HTTP server on 127.0.0.1 (with Range support and scripted connection cuts), or read
as a local directory; the index reader, the version choice, every fault, and the resumption of a transfer."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import re
import socket
import tarfile
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wasmbuild import artifact, cli, download
from wasmbuild.archive import write_deterministic_tar_gz
from wasmbuild.errors import ArchiveError, ChecksumError, DownloadError, UsageError
from wasmbuild.files import json_text
from wasmbuild.release import client
from wasmbuild.release import index as release_index
from wasmbuild.release import sums as release_sums

TRIPLES = {"wasi": "wasm32-wasip1", "emscripten": "wasm32-emscripten"}
# (version, target): newest first is 3.13.15; 3.13 has two patch releases for wasi.
ARTIFACTS = [("3.13.15", "wasi"), ("3.13.14", "wasi"), ("3.13.15", "emscripten"), ("3.11.2", "wasi")]
EPOCH = 1_700_000_000


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- a fake release -------------------------------------------------------------------------------------------------


def wasm_of(name: str) -> bytes:
    return b"\0asm\x01\0\0\0" + name.encode()


def record(version: str, target: str) -> dict:
    name = f"cpython-{version}-{TRIPLES[target]}"
    wasm = wasm_of(name)
    return {"format": 1, "wasmbuild": "0.1.0", "python": {"implementation": "cpython", "version": version},
            "target": {"name": target, "triple": TRIPLES[target]},
            "artifact": {"python.wasm": {"sha256": sha256(wasm), "size": len(wasm)}, "dev": f"{name}-dev.tar.gz",
                         "debuginfo": f"{name}-debuginfo.tar.gz", "launcher": "python.sh"}}


def pack(out: Path, prefix: str, files: dict[str, bytes]) -> None:
    """A deterministic archive as the packager makes it: `prefix/`, BUILD.json first."""
    staged = out.parent / f".staged-{out.name}"
    for rel, data in files.items():
        path = staged / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if rel == "python.sh":
            path.chmod(0o755)
    write_deterministic_tar_gz(out, staged, prefix, EPOCH, first=["BUILD.json"])
    for path in sorted(staged.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    staged.rmdir()


def make_artifact(dist: Path, version: str, target: str, record_bytes: bytes | None = None) -> dict:
    """The archives of one artifact in dist/ and its index entry."""
    name = f"cpython-{version}-{TRIPLES[target]}"
    data = json_text(record(version, target)).encode()
    short = ".".join(version.split(".")[:2])
    pack(dist / f"{name}.tar.gz", name, {
        "BUILD.json": record_bytes or data,
        "python.wasm": wasm_of(name),
        "python.sh": b"#!/bin/sh\nexec wasmtime run python.wasm \"$@\"\n",
        f"lib/python{short}/os.py": b"# os\n",
        f"lib/python{short}/encodings/__init__.py": b"",
    })
    pack(dist / f"{name}-dev.tar.gz", name, {"BUILD.json": data, f"lib/libpython{short}.a": b"!<arch>\n" + b"x" * 64})
    pack(dist / f"{name}-debuginfo.tar.gz", f"{name}-debuginfo", {"BUILD.json": data, "python.wasm": b"\0asm dbg"})
    (dist / f"{name}.BUILD.json").write_bytes(data)

    def describe(file: str) -> dict:
        content = (dist / file).read_bytes()
        return {"file": file, "sha256": sha256(content), "size": len(content)}

    return {"python": version, "target": target, "triple": TRIPLES[target], **describe(f"{name}.tar.gz"),
            "build_json_sha256": sha256(data), "record": f"{name}.BUILD.json", "sbom": f"{name}.cdx.json",
            "companions": [{"kind": "dev", **describe(f"{name}-dev.tar.gz")},
                           {"kind": "debuginfo", **describe(f"{name}-debuginfo.tar.gz")}],
            "tests": {"selection": "ci subset", "passed": 41, "failed": 0, "crashed": 0, "skipped": 5}}


def write_sums(dist: Path) -> None:
    lines = [f"{sha256(p.read_bytes())}  {p.name}\n" for p in sorted(dist.iterdir())
             if p.is_file() and p.name != "SHA256SUMS"]
    (dist / "SHA256SUMS").write_text("".join(lines))


def write_index(dist: Path, entries: list[dict], **changes) -> dict:
    index = {"format": 1, "wasmbuild": {"version": "0.1.0", "commit": "a" * 40}, "artifacts": entries, **changes}
    (dist / "release.json").write_text(json_text(index))
    return index


@pytest.fixture(scope="module")
def release_template(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("release")
    write_index(dist, [make_artifact(dist, v, t) for v, t in ARTIFACTS])
    write_sums(dist)
    return dist


@pytest.fixture
def rel(release_template, tmp_path) -> Path:
    """A fresh copy of the fake release, for a test to damage."""
    dist = tmp_path / "release"
    dist.mkdir()
    for p in release_template.iterdir():
        (dist / p.name).write_bytes(p.read_bytes())
    return dist


def name_of(version: str, target: str = "wasi") -> str:
    return f"cpython-{version}-{TRIPLES[target]}"


# --- a release server: files of a directory, Range requests, scripted cuts ------------------------------------------


@dataclass
class ReleaseServer:
    root: Path
    prefix: str = "/rel/"
    honour_range: bool = True
    # file name -> body bytes to send in each successive response before the connection is cut (then whole ones)
    cuts: dict[str, list[int]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (file name, Range header)

    def __post_init__(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                path = urllib.parse.unquote(self.path)
                name = path[len(server.prefix):] if path.startswith(server.prefix) else None
                rng = self.headers.get("Range")
                server.requests.append((name or path, rng))
                file = server.root / name if name and "/" not in name else None
                if file is None or not file.is_file():
                    self._reply(404, {}, b"not found\n")
                    return
                data = file.read_bytes()
                status, headers, body = 200, {}, data
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and server.honour_range:
                    start = int(m[1])
                    if start >= len(data):
                        self._reply(416, {"Content-Range": f"bytes */{len(data)}"}, b"")
                        return
                    status, body = 206, data[start:]
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                cut = server.cuts.get(name, [])
                if cut:
                    self._reply(status, headers, body[: cut.pop(0)], length=len(body))  # then the connection closes
                else:
                    self._reply(status, headers, body)

            def _reply(self, status: int, headers: dict[str, str], body: bytes, length: int | None = None) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(body)
                    self.wfile.flush()
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{self.prefix}"

    def fetched(self, name: str) -> list[str | None]:
        """The Range header of each request for `name`."""
        return [r for n, r in self.requests if n == name]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server(rel):
    s = ReleaseServer(rel)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def out(tmp_path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["download", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def partial_files(cache_dir: Path) -> list[Path]:
    folder = cache_dir / "releases" / "partial"
    return sorted(folder.iterdir()) if folder.exists() else []


# --- the happy paths ------------------------------------------------------------------------------------------------


def check_unpacked(out: Path, rel: Path, version: str, target: str = "wasi", dev: bool = False) -> None:
    name = name_of(version, target)
    short = ".".join(version.split(".")[:2])
    kept = [f"{name}.tar.gz"] + ([f"{name}-dev.tar.gz"] if dev else [])
    assert listing(out) == sorted([name, *kept])
    for file in kept:
        assert (out / file).read_bytes() == (rel / file).read_bytes()
    root = out / name
    assert (root / "BUILD.json").read_bytes() == (rel / f"{name}.BUILD.json").read_bytes()
    assert (root / "python.wasm").read_bytes().endswith(name.encode())
    assert (root / f"lib/python{short}/os.py").read_bytes() == b"# os\n"
    assert (root / "python.sh").stat().st_mode & 0o111
    assert (root / f"lib/libpython{short}.a").exists() == dev


def test_download_over_http_checks_unpacks_and_says_how_to_run(server, rel, out, cache_dir, capsys, monkeypatch):
    monkeypatch.chdir(out)
    code, stdout, err = run(capsys, "--from", server.url, "--cache-dir", str(cache_dir))
    assert code == 0, err
    check_unpacked(out, rel, "3.13.15")
    name = name_of("3.13.15")
    assert stdout == f"{out / name}\n"
    assert f"release at {server.url}: wasmbuild 0.1.0 (commit aaaaaaaaaaaa)" in err
    assert (f"CPython 3.13.15 for wasi (wasm32-wasip1): {name}.tar.gz" in err
            and "test suite (ci subset): 41 passed, 0 failed, 0 crashed, 5 skipped" in err)
    assert f"run it: python -m wasmbuild run {name}.tar.gz -- -c \"print('hello')\"" in err
    assert f"or: {name}/python.sh -c \"print('hello')\"" in err
    # release.json and SHA256SUMS once each, the archive once (no Range: nothing was kept), nothing else.
    assert sorted(n for n, _ in server.requests) == sorted(["release.json", "SHA256SUMS", f"{name}.tar.gz"])
    assert server.fetched(f"{name}.tar.gz") == [None]
    assert partial_files(cache_dir) == []
    # The kept archive is one `wasmbuild run` accepts.
    assert artifact.unpack_artifact(out / f"{name}.tar.gz", cache_dir).name == name


def test_download_from_a_local_directory(rel, out, cache_dir, capsys):
    code, stdout, err = run(capsys, "--from", str(rel), "-o", str(out), "--python", "3.11", "--cache-dir",
                            str(cache_dir))
    assert code == 0, err
    check_unpacked(out, rel, "3.11.2")
    assert stdout == f"{out / name_of('3.11.2')}\n"
    # a file url names the same directory
    other = out.parent / "other"
    assert run(capsys, "--from", rel.as_uri(), "-o", str(other), "--cache-dir", str(cache_dir))[0] == 0
    check_unpacked(other, rel, "3.13.15")


@pytest.mark.parametrize(("requested", "target", "expected"), [
    (None, "wasi", "3.13.15"),
    ("3.13", "wasi", "3.13.15"),
    ("3.13.14", "wasi", "3.13.14"),
    ("3.13.15", "wasi", "3.13.15"),
    ("3.11", "wasi", "3.11.2"),
    (None, "emscripten", "3.13.15"),
])
def test_the_version_choice(rel, out, cache_dir, capsys, requested, target, expected):
    argv = ["--from", str(rel), "-o", str(out), "--target", target, "--cache-dir", str(cache_dir)]
    code, _, err = run(capsys, *argv, *(["--python", requested] if requested else []))
    assert code == 0, err
    check_unpacked(out, rel, expected, target)


def test_dev_also_fetches_the_dev_archive_into_the_same_tree(server, rel, out, cache_dir, capsys):
    code, _, err = run(capsys, "--from", server.url, "-o", str(out), "--dev", "--cache-dir", str(cache_dir))
    assert code == 0, err
    check_unpacked(out, rel, "3.13.15", dev=True)


def test_a_second_run_finds_it_there_and_dev_joins_an_earlier_tree(server, rel, out, cache_dir, capsys):
    argv = ["--from", server.url, "-o", str(out), "--cache-dir", str(cache_dir)]
    assert run(capsys, *argv)[0] == 0
    name = name_of("3.13.15")
    (out / name / "mine.txt").write_text("a file of the user's")
    server.requests.clear()
    code, stdout, err = run(capsys, *argv)
    assert code == 0 and f"already there: {out / name}" in err and stdout == f"{out / name}\n"
    assert sorted(n for n, _ in server.requests) == ["SHA256SUMS", "release.json"]
    # --dev later: only the -dev archive is fetched; it joins the tree (the user's file stays).
    server.requests.clear()
    code, _, err = run(capsys, *argv, "--dev")
    assert code == 0, err
    assert f"{name}.tar.gz" not in [n for n, _ in server.requests]
    assert server.fetched(f"{name}-dev.tar.gz") == [None]
    assert (out / name / "mine.txt").read_text() == "a file of the user's"
    assert sorted(listing(out)) == sorted([name, f"{name}.tar.gz", f"{name}-dev.tar.gz"])
    assert (out / name / "lib/libpython3.13.a").is_file()
    # a deleted archive is fetched again, the tree is left alone
    (out / f"{name}.tar.gz").unlink()
    assert run(capsys, *argv)[0] == 0
    assert (out / f"{name}.tar.gz").read_bytes() == (rel / f"{name}.tar.gz").read_bytes()
    assert (out / name / "mine.txt").exists()


def test_an_existing_tree_or_archive_that_differs_is_refused(rel, out, cache_dir, capsys):
    name = name_of("3.13.15")
    (out / name).mkdir()
    (out / name / "BUILD.json").write_text("{}")
    argv = ["--from", str(rel), "-o", str(out), "--cache-dir", str(cache_dir)]
    code, _, err = run(capsys, *argv)
    assert code == UsageError.exit_code
    assert f"error: {out / name} already exists and is not this artifact" in err
    assert "hint: remove it, or download into another directory with -o DIR" in err
    assert listing(out) == [name] and listing(out / name) == ["BUILD.json"]
    (out / name / "BUILD.json").unlink()
    (out / name).rmdir()
    (out / f"{name}.tar.gz").write_bytes(b"something else")
    code, _, err = run(capsys, *argv)
    assert code == UsageError.exit_code and f"{out / name}.tar.gz already exists and differs" in err
    assert listing(out) == [f"{name}.tar.gz"]


def test_the_output_directory_is_created_and_must_not_be_a_file(rel, tmp_path, cache_dir, capsys):
    target = tmp_path / "a" / "b"
    assert run(capsys, "--from", str(rel), "-o", str(target), "--cache-dir", str(cache_dir))[0] == 0
    check_unpacked(target, rel, "3.13.15")
    file = tmp_path / "file"
    file.write_text("x")
    code, _, err = run(capsys, "--from", str(rel), "-o", str(file), "--cache-dir", str(cache_dir))
    assert code == UsageError.exit_code and "is a file, not a directory" in err


# --- faults: one message, its exit code, the output directory left as it was ----------------------------------------


def fails(capsys, out: Path, exit_code: int, *argv: str) -> str:
    before = listing(out)
    code, stdout, err = run(capsys, *argv, "-o", str(out))
    assert code == exit_code, err
    assert stdout == ""
    assert listing(out) == before, "the output directory changed"
    assert "Traceback" not in err
    assert err.count("error: ") == 1
    return err


def test_a_tampered_archive_is_refused(server, rel, out, cache_dir, capsys):
    name = name_of("3.13.15")
    data = bytearray((rel / f"{name}.tar.gz").read_bytes())
    data[100] ^= 0xFF  # same size, different bytes; SHA256SUMS and the index still name the original
    (rel / f"{name}.tar.gz").write_bytes(bytes(data))
    err = fails(capsys, out, ChecksumError.exit_code, "--from", server.url, "--cache-dir", str(cache_dir))
    assert f"error: {name}.tar.gz at {server.url} is not the file the release index names: sha256 mismatch" in err
    assert "hint: the file was replaced or damaged after the release was made; nothing was written" in err
    assert partial_files(cache_dir) == []  # wrong bytes are not kept to resume from


@pytest.mark.parametrize("how", ["short-file", "cut-every-time"])
def test_a_truncated_download_is_refused(server, rel, out, cache_dir, capsys, how):
    name = name_of("3.13.15")
    whole = (rel / f"{name}.tar.gz").read_bytes()
    if how == "short-file":
        (rel / f"{name}.tar.gz").write_bytes(whole[: len(whole) // 2])
        message = f"size mismatch for {server.url}{name}.tar.gz: expected {len(whole)} bytes, got {len(whole) // 2}"
    else:
        server.cuts[f"{name}.tar.gz"] = [len(whole) // 2, 0, 0]
        message = f"{server.url}{name}.tar.gz: transfer interrupted after {len(whole) // 2} of {len(whole)} bytes"
    err = fails(capsys, out, DownloadError.exit_code, "--from", server.url, "--cache-dir", str(cache_dir))
    assert f"error: {message}" in err
    assert "hint: run the same command again: it resumes the transfer" in err
    assert len(server.fetched(f"{name}.tar.gz")) == download.RETRIES


@pytest.mark.parametrize("tamper", ["archive-line", "index-line", "archive-missing"])
def test_an_index_that_disagrees_with_sha256sums_is_refused(server, rel, out, cache_dir, capsys, tamper):
    name = name_of("3.13.15")
    sums = (rel / "SHA256SUMS").read_text()
    if tamper == "archive-line":
        sums = re.sub(rf"^[0-9a-f]{{64}}(  {re.escape(name)}\.tar\.gz)$", "0" * 64 + r"\1", sums, flags=re.M)
        expected = f"the release index and {server.url}SHA256SUMS disagree about {name}.tar.gz"
    elif tamper == "index-line":
        (rel / "release.json").write_text((rel / "release.json").read_text() + " ")  # after SHA256SUMS was made
        expected = f"the release index and {server.url}SHA256SUMS disagree about release.json"
    else:
        sums = "".join(line + "\n" for line in sums.splitlines() if not line.endswith(f"  {name}.tar.gz"))
        expected = f"{server.url}SHA256SUMS does not list {name}.tar.gz, which the release index names"
    (rel / "SHA256SUMS").write_text(sums)
    err = fails(capsys, out, ChecksumError.exit_code, "--from", server.url, "--cache-dir", str(cache_dir))
    assert f"error: {expected}" in err and "nothing was written" in err
    assert server.fetched(f"{name}.tar.gz") == []  # refused before the archive is fetched


@pytest.mark.parametrize("local", [False, True], ids=["http", "dir"])
def test_an_artifact_named_in_the_index_but_missing_is_refused(server, rel, out, cache_dir, capsys, local):
    name = name_of("3.13.15")
    (rel / f"{name}.tar.gz").unlink()
    location = str(rel) if local else server.url
    err = fails(capsys, out, DownloadError.exit_code, "--from", location, "--cache-dir", str(cache_dir))
    assert f"error: {name}.tar.gz is named in the release index but missing at {location.rstrip('/')}" in err
    assert "the release is incomplete" in err
    if not local:
        assert server.fetched(f"{name}.tar.gz") == [None]  # a 404 is not retried


@pytest.mark.parametrize(("argv", "message", "listed"), [
    (["--python", "3.12"], "has no CPython 3.12 for wasi", True),
    (["--python", "3.13.16"], "has no CPython 3.13.16 for wasi", True),
    (["--python", "3.11", "--target", "emscripten"], "has no CPython 3.11 for emscripten", True),
    (["--python", "three"], "--python 'three': expected a CPython version such as 3.13 or 3.13.15", False),
])
def test_an_unknown_version_or_target_lists_what_the_release_has(server, out, cache_dir, capsys, argv, message,
                                                                  listed):
    err = fails(capsys, out, UsageError.exit_code, "--from", server.url, "--cache-dir", str(cache_dir), *argv)
    assert message in err
    if listed:
        assert "hint: it has: 3.13.15 (wasi, emscripten), 3.13.14 (wasi), 3.11.2 (wasi)" in err
    else:
        assert server.requests == []  # checked before the network is used


def test_a_target_the_release_lacks_lists_what_it_has(rel, out, cache_dir, capsys):
    index = json.loads((rel / "release.json").read_text())
    write_index(rel, [e for e in index["artifacts"] if e["target"] == "wasi"])
    write_sums(rel)
    err = fails(capsys, out, UsageError.exit_code, "--from", str(rel), "--target", "emscripten", "--cache-dir",
                str(cache_dir))
    assert f"the release at {rel} has no an artifact for emscripten" not in err
    assert f"the release at {rel} has no artifact for emscripten" in err
    assert "it has: 3.13.15 (wasi), 3.13.14 (wasi), 3.11.2 (wasi)" in err


def test_an_unreachable_location_is_one_error(out, cache_dir, capsys):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/rel/"
    err = fails(capsys, out, DownloadError.exit_code, "--from", url, "--cache-dir", str(cache_dir))
    assert f"error: cannot read the release index at {url}: {url}release.json: connection failed" in err
    assert "hint: check the location (--from) and the network" in err


@pytest.mark.parametrize("local", [False, True], ids=["http", "dir"])
def test_a_location_without_release_json(server, rel, out, cache_dir, capsys, local):
    (rel / "release.json").unlink()
    location = str(rel) if local else server.url
    err = fails(capsys, out, DownloadError.exit_code, "--from", location, "--cache-dir", str(cache_dir))
    assert f"error: no release.json at {location}" in err
    assert "hint: is it a release location?" in err


@pytest.mark.parametrize(("content", "message"), [
    (b"<html>not found</html>", "not valid JSON (line 1, column 1: Expecting value)"),
    (b"\xff\xfe", "not UTF-8 text (byte 0)"),
    (b"[]", "expected a JSON object, got list"),
    (b'{"format": 2, "artifacts": []}', "format: unsupported format 2 (this wasmbuild reads format 1)"),
    (b'{"format": true}', "format: unsupported format True"),
    (b'{"wasmbuild": {}}', "missing required key 'format'"),
    (b'{"format": 1, "wasmbuild": {"version": "0.1.0"}}', "missing required key 'artifacts'"),
    (b'{"format": 1, "wasmbuild": {"version": "0.1.0", "commit": "xyz"}, "artifacts": []}',
     "wasmbuild.commit: expected a git commit (40 hex digits) or null, got 'xyz'"),
])
def test_a_malformed_release_json_is_one_error(rel, out, cache_dir, capsys, content, message):
    (rel / "release.json").write_bytes(content)
    write_sums(rel)
    err = fails(capsys, out, DownloadError.exit_code, "--from", str(rel), "--cache-dir", str(cache_dir))
    assert f"error: {rel / 'release.json'}: {message}" in err


@pytest.mark.parametrize(("change", "message"), [
    (lambda e: e.pop("sha256"), "artifacts[0]: missing required key 'sha256'"),
    (lambda e: e.update(sha256="abc"), "artifacts[0].sha256: expected a sha256 (64 lowercase hex digits), got 'abc'"),
    (lambda e: e.update(size="12"), "artifacts[0].size: expected a non-negative integer, got '12'"),
    (lambda e: e.update(file="../../evil.tar.gz"), "artifacts[0].file: must be a plain file name, without '/'"),
    (lambda e: e.update(python="3.13"), "artifacts[0].python: expected a CPython version X.Y.Z, got '3.13'"),
    (lambda e: e.update(triple="../x"), "artifacts[0].triple: expected a target triple"),
    (lambda e: e.update(tests=[1]), "artifacts[0].tests: expected a mapping or null, got [1]"),
    (lambda e: e.update(extra=1), "artifacts[0]: unknown key 'extra'"),
    (lambda e: e["companions"][0].update(file="a/b"), "artifacts[0].companions[0].file: must be a plain file name"),
])
def test_a_release_json_with_a_bad_entry_is_one_error(rel, out, cache_dir, capsys, change, message):
    index = json.loads((rel / "release.json").read_text())
    change(index["artifacts"][0])
    write_index(rel, index["artifacts"])
    write_sums(rel)
    err = fails(capsys, out, DownloadError.exit_code, "--from", str(rel), "--cache-dir", str(cache_dir))
    assert f"error: {rel / 'release.json'}: {message}" in err
    assert "hint: the location does not hold a release made by `nox -s release`" in err


def test_a_build_json_inside_that_disagrees_with_the_index_is_refused(rel, out, cache_dir, capsys, server):
    name = name_of("3.13.15")
    index = json.loads((rel / "release.json").read_text())
    other = json_text({**record("3.13.15", "wasi"), "recipe": "a different build"}).encode()
    entry = make_artifact(rel, "3.13.15", "wasi", record_bytes=other)  # the archive holds `other`
    entry["build_json_sha256"] = index["artifacts"][0]["build_json_sha256"]  # the index names the real record
    write_index(rel, [entry, *index["artifacts"][1:]])
    write_sums(rel)  # consistent sums: the archive's bytes are what the index says
    err = fails(capsys, out, ChecksumError.exit_code, "--from", server.url, "--cache-dir", str(cache_dir))
    assert f"error: {name}.tar.gz: its BUILD.json disagrees with the release index:" in err
    assert f"the archive has  {sha256(other)}" in err
    assert "hint: the archive and the index do not belong together; nothing was written" in err
    assert server.fetched(f"{name}.tar.gz") == [None]


def test_a_build_json_of_another_version_is_refused(rel, out, cache_dir, capsys):
    index = json.loads((rel / "release.json").read_text())
    wrong = json_text(record("3.13.14", "wasi")).encode()
    entry = make_artifact(rel, "3.13.15", "wasi", record_bytes=wrong)
    entry["build_json_sha256"] = sha256(wrong)
    write_index(rel, [entry, *index["artifacts"][1:]])
    write_sums(rel)
    err = fails(capsys, out, DownloadError.exit_code, "--from", str(rel), "--cache-dir", str(cache_dir))
    assert "its BUILD.json is of CPython 3.13.14 for wasm32-wasip1, the release index says 3.13.15" in err


def test_an_archive_with_members_outside_its_top_directory_is_refused(rel, out, cache_dir, capsys):
    name = name_of("3.13.15")
    data = json_text(record("3.13.15", "wasi")).encode()
    pack(rel / f"{name}.tar.gz", "cpython-other", {"BUILD.json": data, "python.wasm": b"\0asm"})
    index = json.loads((rel / "release.json").read_text())
    content = (rel / f"{name}.tar.gz").read_bytes()
    index["artifacts"][0].update(sha256=sha256(content), size=len(content))
    write_index(rel, index["artifacts"])
    write_sums(rel)
    err = fails(capsys, out, 8, "--from", str(rel), "--cache-dir", str(cache_dir))
    assert f"'cpython-other' is outside the top directory {name}/" in err


def test_dev_without_a_dev_archive_in_the_release(rel, out, cache_dir, capsys):
    index = json.loads((rel / "release.json").read_text())
    index["artifacts"][0]["companions"] = []
    write_index(rel, index["artifacts"])
    write_sums(rel)
    err = fails(capsys, out, UsageError.exit_code, "--from", str(rel), "--dev", "--cache-dir", str(cache_dir))
    assert "has no -dev archive for cpython-3.13.15-wasm32-wasip1.tar.gz" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--from", "/no/such/dir"], "--from /no/such/dir does not exist"),
    (["--from", "ftp://127.0.0.1/rel/"], "--from ftp://127.0.0.1/rel/: unsupported url scheme 'ftp'"),
    (["--from", "http://"], "--from http://: not a valid url (no host)"),
    (["--from", "/tmp", "--release", "v1"], "--release names a release of the project's repository"),
    (["--from", ""], "argument --from: empty value"),
    (["--target", "linux"], "argument --target: invalid choice"),
])
def test_bad_options_are_usage_errors(out, capsys, argv, message):
    code, stdout, err = run(capsys, *argv, "-o", str(out))
    assert code == 2 and message in err and stdout == ""
    assert listing(out) == []


# --- the default location -------------------------------------------------------------------------------------------


def test_no_default_location_is_configured(out, capsys, monkeypatch):
    monkeypatch.setattr(client, "repository_url", lambda: None)
    code, _, err = run(capsys, "-o", str(out))
    assert code == UsageError.exit_code
    assert "error: no release location configured: this wasmbuild names no repository" in err
    assert "hint: give --from URL or DIR" in err
    assert listing(out) == []


def test_the_repository_url_is_read_from_the_package_metadata(monkeypatch):
    from importlib import metadata

    class Meta:
        def __init__(self, urls):
            self.urls = urls

        def get_all(self, key):
            return self.urls if key == "Project-URL" else None

    monkeypatch.setattr(metadata, "metadata", lambda name: Meta(None))
    assert client.repository_url() is None
    monkeypatch.setattr(metadata, "metadata", lambda name: Meta(["Homepage, https://example.org/",
                                                                 "Repository, https://github.com/o/r.git"]))
    assert client.repository_url() == "https://github.com/o/r.git"
    assert client.default_location(None).url == "https://github.com/o/r/releases/latest/download/"

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "metadata", missing)
    assert client.repository_url() is None


def test_the_configured_default_location_builds_the_release_urls(monkeypatch):
    monkeypatch.setattr(client, "repository_url", lambda: "https://github.com/example/wasmbuild/")
    assert client.default_location(None).url == "https://github.com/example/wasmbuild/releases/latest/download/"
    assert client.default_location("v1").url == "https://github.com/example/wasmbuild/releases/download/v1/"
    assert client.default_location("a b/c").url == \
        "https://github.com/example/wasmbuild/releases/download/a%20b%2Fc/"


@pytest.mark.parametrize(("argv", "prefix"), [([], "/repo/releases/latest/download/"),
                                              (["--release", "v1"], "/repo/releases/download/v1/")])
def test_the_default_location_is_used_end_to_end(rel, out, cache_dir, capsys, monkeypatch, argv, prefix):
    s = ReleaseServer(rel, prefix=prefix)
    try:
        monkeypatch.setattr(client, "repository_url", lambda: f"http://127.0.0.1:{s.httpd.server_address[1]}/repo")
        code, _, err = run(capsys, *argv, "-o", str(out), "--cache-dir", str(cache_dir))
        assert code == 0, err
        assert f"release at {s.url}:" in err
        check_unpacked(out, rel, "3.13.15")
    finally:
        s.stop()


# --- resumption -----------------------------------------------------------------------------------------------------


def test_a_cut_transfer_resumes_within_the_run(server, rel, out, cache_dir, capsys):
    name = name_of("3.13.15")
    size = (rel / f"{name}.tar.gz").stat().st_size
    half = size // 2
    server.cuts[f"{name}.tar.gz"] = [half]
    code, _, err = run(capsys, "--from", server.url, "-o", str(out), "--cache-dir", str(cache_dir))
    assert code == 0, err
    assert server.fetched(f"{name}.tar.gz") == [None, f"bytes={half}-"]
    assert f"resuming {name}.tar.gz at byte {half} of {size}" in err
    check_unpacked(out, rel, "3.13.15")
    assert partial_files(cache_dir) == []


def test_an_interrupted_download_resumes_in_the_next_run(server, rel, out, cache_dir, capsys):
    name = name_of("3.13.15")
    size = (rel / f"{name}.tar.gz").stat().st_size
    half = size // 2
    server.cuts[f"{name}.tar.gz"] = [half, 0, 0]  # every attempt of the first run is cut
    argv = ["--from", server.url, "-o", str(out), "--cache-dir", str(cache_dir)]
    assert run(capsys, *argv)[0] == DownloadError.exit_code
    assert listing(out) == []
    [kept] = partial_files(cache_dir)
    assert kept.read_bytes() == (rel / f"{name}.tar.gz").read_bytes()[:half]
    server.requests.clear()
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert server.fetched(f"{name}.tar.gz") == [f"bytes={half}-"]  # only the rest is fetched
    check_unpacked(out, rel, "3.13.15")
    assert partial_files(cache_dir) == []


def test_a_server_ignoring_range_restarts_from_zero(server, rel, out, cache_dir, capsys):
    name = name_of("3.13.15")
    half = (rel / f"{name}.tar.gz").stat().st_size // 2
    server.cuts[f"{name}.tar.gz"] = [half]
    server.honour_range = False
    code, _, err = run(capsys, "--from", server.url, "-o", str(out), "--cache-dir", str(cache_dir))
    assert code == 0, err
    assert server.fetched(f"{name}.tar.gz") == [None, f"bytes={half}-"]  # asked, got a whole 200
    check_unpacked(out, rel, "3.13.15")


def test_kept_bytes_that_are_not_the_file_are_deleted_and_the_transfer_restarts(server, rel, out, cache_dir, capsys):
    name = name_of("3.13.15")
    entry = json.loads((rel / "release.json").read_text())["artifacts"][0]
    stale = cache_dir / "releases" / "partial" / f"{entry['sha256'][:16]}-{name}.tar.gz"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"junk" * 100)
    code, _, err = run(capsys, "--from", server.url, "-o", str(out), "--cache-dir", str(cache_dir))
    assert code == 0, err
    assert server.fetched(f"{name}.tar.gz") == ["bytes=400-", None]
    assert "after resuming at byte 400: the kept bytes were deleted" in err
    check_unpacked(out, rel, "3.13.15")
    assert not stale.exists()


# --- download() itself: resumption against a local server -----------------------------------------------------------

BODY = bytes(range(256)) * 1024  # 256 KiB: several chunks
BODY_SHA = sha256(BODY)


@pytest.fixture
def body_server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    (root / "f.bin").write_bytes(BODY)
    s = ReleaseServer(root)
    try:
        yield s
    finally:
        s.stop()


def test_download_resumes_a_cut_transfer_on_retry(body_server, tmp_path):
    body_server.cuts["f.bin"] = [100_000]
    dest = tmp_path / "d" / "f.bin"
    assert download.download(body_server.url + "f.bin", dest, BODY_SHA, len(BODY)).read_bytes() == BODY
    assert body_server.fetched("f.bin") == [None, "bytes=100000-"]
    assert listing(dest.parent) == ["f.bin"]


def test_download_keeps_the_partial_file_for_a_later_call(body_server, tmp_path):
    body_server.cuts["f.bin"] = [100_000, 50_000]
    dest, partial = tmp_path / "d" / "f.bin", tmp_path / "keep" / "f.part"
    url = body_server.url + "f.bin"
    with pytest.raises(DownloadError, match="transfer interrupted after 150000 of 262144 bytes"):
        download.download(url, dest, BODY_SHA, len(BODY), retries=2, partial=partial)
    assert partial.read_bytes() == BODY[:150_000]
    assert not dest.parent.exists()  # nothing but the partial file remains
    assert download.download(url, dest, BODY_SHA, len(BODY), partial=partial).read_bytes() == BODY
    assert body_server.fetched("f.bin") == [None, "bytes=100000-", "bytes=150000-"]
    assert not partial.exists()
    assert listing(partial.parent) == []


def test_download_without_partial_leaves_nothing_after_an_interruption(body_server, tmp_path):
    body_server.cuts["f.bin"] = [100_000, 0]
    dest = tmp_path / "d" / "f.bin"
    with pytest.raises(DownloadError, match="transfer interrupted"):
        download.download(body_server.url + "f.bin", dest, BODY_SHA, len(BODY), retries=2)
    assert not dest.parent.exists()


def test_a_whole_kept_file_is_checked_without_a_request(body_server, tmp_path):
    dest, partial = tmp_path / "d" / "f.bin", tmp_path / "keep" / "f.part"
    partial.parent.mkdir()
    partial.write_bytes(BODY)
    assert download.download(body_server.url + "f.bin", dest, BODY_SHA, len(BODY), partial=partial) == dest
    assert body_server.requests == []


def test_a_range_not_satisfiable_reply_starts_over(body_server, tmp_path):
    dest, partial = tmp_path / "d" / "f.bin", tmp_path / "keep" / "f.part"
    partial.parent.mkdir()
    partial.write_bytes(BODY + b"more")  # longer than the file: the server refuses the range
    assert download.download(body_server.url + "f.bin", dest, BODY_SHA, partial=partial).read_bytes() == BODY
    assert body_server.fetched("f.bin") == [f"bytes={len(BODY) + 4}-", None]


def test_a_wrong_whole_file_kept_is_deleted_and_fetched_again(body_server, tmp_path):
    dest, partial = tmp_path / "d" / "f.bin", tmp_path / "keep" / "f.part"
    partial.parent.mkdir()
    partial.write_bytes(b"x" * len(BODY))
    assert download.download(body_server.url + "f.bin", dest, BODY_SHA, len(BODY), partial=partial) == dest
    assert body_server.fetched("f.bin") == [None]
    assert dest.read_bytes() == BODY and not partial.exists()


def test_a_mismatch_without_resumption_deletes_the_partial_file_and_is_not_retried(body_server, tmp_path):
    dest, partial = tmp_path / "d" / "f.bin", tmp_path / "keep" / "f.part"
    with pytest.raises(ChecksumError):
        download.download(body_server.url + "f.bin", dest, "0" * 64, len(BODY), partial=partial)
    assert body_server.fetched("f.bin") == [None]
    assert not partial.exists() and not dest.exists()


def test_fetch_keeps_an_interrupted_inputs_bytes_in_the_cache_for_the_next_run(body_server, tmp_path):
    from wasmbuild.download import Sources, cache_path, fetch
    from wasmbuild.recipe import Download

    item = Download(url=body_server.url + "f.bin", sha256=BODY_SHA, size=len(BODY))
    body_server.cuts["f.bin"] = [100_000, 0, 0]
    with pytest.raises(DownloadError, match="could not obtain"):
        fetch(item, tmp_path / "cache", Sources())
    path = cache_path(tmp_path / "cache", item)
    assert listing(path.parent) == [".f.bin.partial"]
    assert fetch(item, tmp_path / "cache", Sources()).path.read_bytes() == BODY
    assert body_server.fetched("f.bin")[-1] == "bytes=100000-"
    assert listing(path.parent) == ["f.bin", "f.bin.route"]


# --- the index reader -----------------------------------------------------------------------------------------------


def test_load_index_and_pick(release_template):
    index = release_index.load_index((release_template / "release.json").read_bytes(), "release.json")
    assert index.format == 1 and index.wasmbuild_version == "0.1.0" and index.wasmbuild_commit == "a" * 40
    assert [(e.python, e.target) for e in index.artifacts] == ARTIFACTS
    entry = client.pick(index, None, "wasi")
    assert entry.name == "cpython-3.13.15-wasm32-wasip1" and entry.companion("dev").kind == "dev"
    assert entry.companion("nope") is None
    assert client.pick(index, "3.13", "emscripten").triple == "wasm32-emscripten"
    with pytest.raises(UsageError, match="has no CPython 3.12 for wasi"):
        client.pick(index, "3.12", "wasi")


def test_version_key_orders_pre_releases_first():
    versions = ["3.14.0", "3.14.0rc1", "3.13.15", "3.14.0a7", "3.14.1", "3.14.0b2"]
    assert sorted(versions, key=release_index.version_key) == ["3.13.15", "3.14.0a7", "3.14.0b2", "3.14.0rc1", "3.14.0",
                                                        "3.14.1"]


def test_null_commit_and_tests_and_optional_fields_are_accepted():
    entry = {"python": "3.13.15", "target": "wasi", "triple": "wasm32-wasip1", "file": "a.tar.gz",
             "sha256": "0" * 64, "size": 1, "build_json_sha256": "1" * 64, "tests": None}
    data = json.dumps({"format": 1, "wasmbuild": {"version": "0.1.0", "commit": None}, "artifacts": [entry]})
    index = release_index.load_index(data.encode(), "x")
    assert index.wasmbuild_commit is None
    assert index.artifacts[0].tests is None and index.artifacts[0].companions == ()


def test_duplicate_entries_are_refused():
    entry = {"python": "3.13.15", "target": "wasi", "triple": "wasm32-wasip1", "file": "a.tar.gz",
             "sha256": "0" * 64, "size": 1, "build_json_sha256": "1" * 64}
    data = json.dumps({"format": 1, "wasmbuild": {"version": "0.1.0"}, "artifacts": [entry, {**entry, "file": "b"}]})
    with pytest.raises(DownloadError, match=r"artifacts\[1\]: CPython 3.13.15 for wasi is listed twice"):
        release_index.load_index(data.encode(), "x")


def test_the_index_writer_and_reader_agree(tmp_path):
    """release.json as wasmbuild.release.index writes it (nox -s release) is what this reader reads."""
    from wasmbuild.release import index as writer

    dist = tmp_path / "dist"
    dist.mkdir()
    entry = make_artifact(dist, "3.13.15", "wasi")
    written = writer.entry(dist, record("3.13.15", "wasi"), entry["file"], entry["tests"])
    path = writer.write_index(dist, [written], None)
    index = release_index.load_index(path.read_bytes(), str(path))
    got = index.artifacts[0]
    assert (got.file, got.sha256, got.size, got.build_json_sha256) == \
        (entry["file"], entry["sha256"], entry["size"], entry["build_json_sha256"])
    assert [c.kind for c in got.companions] == ["dev", "debuginfo"]


def test_parse_sums():
    data = f"{'A' * 64}  a.tar.gz\n{'b' * 64} *b name.tar.gz\n\n".encode()
    assert release_sums.parse_sums(data, "S") == {"a.tar.gz": "a" * 64, "b name.tar.gz": "b" * 64}
    with pytest.raises(DownloadError, match=r"S: line 1: expected '<sha256>  <file>'"):
        release_sums.parse_sums(b"nonsense\n", "S")
    with pytest.raises(DownloadError, match="listed twice with different sha256"):
        release_sums.parse_sums(f"{'a' * 64}  x\n{'b' * 64}  x\n".encode(), "S")


def test_the_archive_check_reads_the_first_member(tmp_path, release_template):
    index = release_index.load_index((release_template / "release.json").read_bytes(), "release.json")
    entry = client.pick(index, None, "wasi")
    client.check_archive(release_template / entry.file, entry, entry.file)
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo(f"{entry.name}/python.wasm")
        tar.addfile(info)
    with pytest.raises(ArchiveError, match=r"its first file is 'cpython-3.13.15-wasm32-wasip1/python.wasm'"):
        client.check_archive(bad, entry, "bad.tar.gz")
    bad.write_bytes(b"not gzip")
    with pytest.raises(ArchiveError, match="bad.tar.gz: not a readable archive"):
        client.check_archive(bad, entry, "bad.tar.gz")
