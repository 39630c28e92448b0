"""Packaging helpers: dist/SHA256SUMS and the check that no build path leaks into the artifact.

install_stdlib is not unit-tested: it needs a build python (see tests/integration).
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from wasmbuild.errors import BuildError
from wasmbuild.package import write_json
from wasmbuild.release.sums import update_sha256sums
from wasmbuild.staging import check_no_build_paths


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def dist(tmp_path):
    d = tmp_path / "dist"
    d.mkdir()
    return d


def test_sha256sums_lists_only_cpython_files_sorted(dist):
    files = {
        "cpython-3.13.15-wasm32-wasip1.tar.gz": b"archive",
        "cpython-3.13.15-wasm32-wasip1-debuginfo.tar.gz": b"debug",
        "cpython-3.13.15-wasm32-wasip1.BUILD.json": b"{}\n",
        # Where this build fetched its inputs: route-dependent, so not a release file.
        "cpython-3.13.15-wasm32-wasip1.provenance.json": b'{"inputs": []}\n',
        "cpython-3.12.9-wasm32-wasip1.tar.gz": b"older",
        "README.txt": b"not an artifact",
        "notes-cpython-3.13.txt": b"prefix matters",
        ".cpython-3.13.15-wasm32-wasip1.tar.gz.tmp-123": b"temporary",
    }
    for name, data in files.items():
        (dist / name).write_bytes(data)
    (dist / "cpython-3.13-dir").mkdir()
    (dist / "SHA256SUMS").write_text("stale content\n")
    out = update_sha256sums(dist)
    assert out == dist / "SHA256SUMS"
    text = out.read_text()
    listed = sorted(n for n in files if n.startswith("cpython-") and not n.endswith(".provenance.json"))
    assert text == "".join(f"{sha(files[n])}  {n}\n" for n in listed)
    names = [line.split("  ", 1)[1] for line in text.splitlines()]
    assert names == sorted(names) == [
        "cpython-3.12.9-wasm32-wasip1.tar.gz",
        "cpython-3.13.15-wasm32-wasip1-debuginfo.tar.gz",
        "cpython-3.13.15-wasm32-wasip1.BUILD.json",
        "cpython-3.13.15-wasm32-wasip1.tar.gz",
    ]
    for line in text.splitlines():
        assert re.fullmatch(r"[0-9a-f]{64}  cpython-\S+", line), line
    assert not (dist / ".SHA256SUMS.tmp").exists()


def test_sha256sums_of_an_empty_dist(dist):
    (dist / "other.txt").write_text("x")
    assert update_sha256sums(dist).read_text() == ""


def test_sha256sums_matches_sha256sum_format(dist):
    (dist / "cpython-x.tar.gz").write_bytes(b"abc")
    line = update_sha256sums(dist).read_text()
    # `sha256sum -c` format: hash, two spaces (text mode), name, newline.
    assert line == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  cpython-x.tar.gz\n"


def test_check_no_build_paths_names_the_file(tmp_path):
    tree = tmp_path / "stage" / "tree"
    lib = tree / "lib" / "python3.13"
    lib.mkdir(parents=True)
    (lib / "os.py").write_text("import abc\n")
    build = "/home/me/.cache/wasmbuild/build/cpython-3.13.15-wasi-0123"
    (lib / "_sysconfigdata__wasi_wasm32-wasi.py").write_text(f"build_time_vars = {{'srcdir': '{build}'}}\n")
    with pytest.raises(BuildError, match=re.escape(
        f"lib/python3.13/_sysconfigdata__wasi_wasm32-wasi.py contains the build path '{build}'"
    )) as info:
        check_no_build_paths(tree, [build])
    assert "the artifact would not be reproducible" in str(info.value)
    assert "hint: extend the path map" in str(info.value)
    assert info.value.exit_code == 7


def test_check_no_build_paths_finds_paths_in_binary_files(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "python.wasm").write_bytes(b"\0asm\x01\0\0\0" + b"/tmp/build/Modules/main.c\0" + bytes(100))
    with pytest.raises(BuildError, match=re.escape("python.wasm contains the build path '/tmp/build'")):
        check_no_build_paths(tree, ["/tmp/build"])


def test_check_no_build_paths_passes_a_clean_tree(tmp_path):
    tree = tmp_path / "tree"
    (tree / "lib").mkdir(parents=True)
    (tree / "lib" / "a.py").write_text("x = '/usr/local/lib'\n")
    (tree / "python.wasm").write_bytes(b"\0asm")
    # Empty needles are ignored (an empty string is in every file).
    check_no_build_paths(tree, ["/tmp/build", ""])


def test_check_no_build_paths_ignores_symlinks(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("/tmp/build/leak\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link").symlink_to(outside)
    check_no_build_paths(tree, ["/tmp/build"])


def test_write_json_is_indented_newline_terminated_and_atomic(tmp_path):
    path = tmp_path / "BUILD.json"
    data = {"format": 1, "a": {"d": [1, 2], "c": None}}
    write_json(path, data)
    text = path.read_text()
    assert json.loads(text) == data
    assert text.endswith("}\n") and '\n  "format": 1,' in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["BUILD.json"]
