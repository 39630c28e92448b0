"""The release flow on a real release directory: `wasmbuild matrix` (what `nox -s release -- --subset ci` runs) for
the WASI artifact of the default version, then `verify` and `download` (from the directory and over HTTP on
127.0.0.1) against it, and what they say about a tampered copy."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

from .conftest import wasmbuild


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory) -> Path:
    """A real release: built (cached), smoke-tested, its CI test subset run; SBOM, release.json, SHA256SUMS."""
    base = tmp_path_factory.mktemp("release")
    wasmbuild("matrix", "--target", "wasi", "--python", "3.13", "--subset", "ci", "--dist-dir", str(base / "dist"),
              "--report-dir", str(base / "reports"))
    return base / "dist"


def the_entry(dist: Path) -> dict:
    (entry,) = json.loads((dist / "release.json").read_text())["artifacts"]
    return entry


def test_the_release_has_an_index_an_sbom_and_sums_that_agree(release_dir: Path):
    entry = the_entry(release_dir)
    assert entry["target"] == "wasi" and entry["python"].startswith("3.13.")
    assert entry["tests"]["selection"] == "ci subset" and entry["tests"]["passed"] > 30
    sums = dict(reversed(line.split("  ", 1)) for line in (release_dir / "SHA256SUMS").read_text().splitlines())
    assert sums[entry["file"]] == entry["sha256"]
    for name in ("release.json", entry["sbom"], entry["record"], *(c["file"] for c in entry["companions"])):
        assert name in sums, name
    assert not any(name.endswith(".provenance.json") for name in sums)  # route-dependent: not a release file
    sbom = json.loads((release_dir / entry["sbom"]).read_text())
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.6"
    names = {c["name"] for c in sbom["components"]}
    assert {"cpython", "zlib", "sqlite"} <= names
    record = json.loads((release_dir / entry["record"]).read_text())
    assert "fetch" not in json.dumps(record)  # inputs by identity only
    provenance = json.loads((release_dir / entry["file"].replace(".tar.gz", ".provenance.json")).read_text())
    assert {i["route"] for i in provenance["inputs"]} <= {"upstream", "mirror-dir", "debian", "cache"}


def test_verify_passes_on_the_release_and_fails_on_a_tampered_copy(release_dir: Path, tmp_path: Path):
    entry = the_entry(release_dir)
    proc = wasmbuild("verify", str(release_dir / entry["file"]))
    assert "checks passed" in proc.stderr and "not checked" not in proc.stderr
    copy = tmp_path / "copy"
    shutil.copytree(release_dir, copy)
    data = bytearray((copy / entry["file"]).read_bytes())
    data[-100] ^= 0xFF
    (copy / entry["file"]).write_bytes(bytes(data))
    bad = wasmbuild("verify", str(copy / entry["file"]), check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "SHA256SUMS lists" in bad.stderr or "not a readable archive" in bad.stderr


def test_download_from_the_directory_and_over_http(release_dir: Path, tmp_path: Path):
    entry = the_entry(release_dir)
    out = tmp_path / "from-dir"
    wasmbuild("download", "--from", str(release_dir), "--python", "3.13", "--target", "wasi", "-o", str(out))
    top = out / entry["file"].removesuffix(".tar.gz")
    assert (top / "python.wasm").is_file() and (top / "BUILD.json").is_file()
    run = wasmbuild("run", str(out / entry["file"]), "--", "-c", "import sys, zlib; print(sys.platform, "
                    "zlib.crc32(b'wasm'))")
    assert run.stdout.split() == ["wasi", "2846413310"]

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(release_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        over_http = tmp_path / "from-http"
        wasmbuild("download", "--from", url, "--target", "wasi", "--dev", "-o", str(over_http))
        top = over_http / entry["file"].removesuffix(".tar.gz")
        assert (top / "python.wasm").read_bytes() == (out / top.name / "python.wasm").read_bytes()
        assert any((top / "lib").glob("libpython3.*.a"))  # the -dev archive merged in
        missing = wasmbuild("download", "--from", url, "--python", "3.9", "-o", str(tmp_path / "none"), check=False)
        assert missing.returncode != 0 and "3.9" in missing.stderr and "Traceback" not in missing.stderr
        assert not (tmp_path / "none").exists() or not any((tmp_path / "none").iterdir())
    finally:
        server.shutdown()
