"""Safe extraction (nothing may leave the destination) and deterministic packaging."""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import stat
import tarfile
from pathlib import Path

import pytest

from wasmbuild import archive
from wasmbuild.archive import expansion_limit, extract_tarball, safe_extract, write_deterministic_tar_gz
from wasmbuild.errors import ArchiveError


@pytest.fixture
def outer(tmp_path):
    """A folder holding only the destination: anything else appearing in it escaped."""
    path = tmp_path / "outer"
    path.mkdir()
    return path


def open_tar(data: bytes) -> tarfile.TarFile:
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")


def tree(root: Path) -> list[str]:
    """Every path below root (symlinks not followed), '/' for directories, '@target' for symlinks."""
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out.append(f"{rel}@{os.readlink(path)}")
        elif path.is_dir():
            out.append(rel + "/")
        else:
            out.append(rel)
    return out


# --- unsafe members ----------------------------------------------------------------------------------------


def _unsafe_cases(outer_marker: str):
    return [
        ("absolute-path", [("file", f"{outer_marker}/evil", b"x")], "refusing absolute path"),
        ("dotdot", [("file", "../evil", b"x")], "refusing path with '..'"),
        ("dotdot-inside", [("dir", "a"), ("file", "a/../../evil", b"x")], "refusing path with '..'"),
        ("symlink-absolute", [("symlink", "link", f"{outer_marker}/evil")],
         f"refusing symlink 'link' -> absolute '{outer_marker}/evil'"),
        ("symlink-relative-escape", [("dir", "sub"), ("symlink", "sub/link", "../../evil")],
         "refusing symlink 'sub/link' -> '../../evil' (leaves the tree)"),
        ("symlink-to-parent", [("symlink", "up", "..")], "refusing symlink 'up' -> '..' (leaves the tree)"),
        ("hardlink-absolute", [("hardlink", "hl", f"{outer_marker}/evil")], "refusing hard link"),
        ("hardlink-relative-escape", [("hardlink", "hl", "../evil")], "refusing hard link"),
        ("hardlink-dotdot-inside", [("hardlink", "hl", "sub/../../evil")], "refusing hard link"),
        ("char-device", [("chr", "dev/null")], "refusing special file"),
        ("fifo", [("fifo", "pipe")], "refusing special file"),
    ]


CASE_IDS = [c[0] for c in _unsafe_cases("/x")]


@pytest.mark.parametrize("case", CASE_IDS)
def test_unsafe_member_is_refused_and_nothing_is_written(outer, build_tar, case):
    (outer / "evil").unlink(missing_ok=True)
    _, entries, message = {c[0]: c for c in _unsafe_cases(str(outer))}[case]
    # A harmless member first: the whole archive is checked before anything is extracted.
    data = build_tar([("file", "harmless.txt", b"hello"), *entries])
    dest = outer / "dest"
    with pytest.raises(ArchiveError, match=re.escape(f"my.tar: {message}")), open_tar(data) as tar:
        safe_extract(tar, dest, label="my.tar")
    assert tree(outer) == ["dest/"]


@pytest.mark.parametrize("case", CASE_IDS)
def test_extract_tarball_refuses_the_same_members(tmp_path, outer, build_tar, case):
    _, entries, message = {c[0]: c for c in _unsafe_cases(str(outer))}[case]
    path = tmp_path / "in.tar.gz"
    path.write_bytes(build_tar(entries, "gz"))
    with pytest.raises(ArchiveError, match=re.escape(f"{path}: {message}")):
        extract_tarball(path, outer / "dest")
    assert tree(outer) == ["dest/"]


def test_symlink_chain_escaping_through_another_symlink_is_refused(outer, build_tar):
    # 'a' -> '.' is harmless and 'x' -> 'a/..' looks harmless lexically, but resolves to the parent of dest.
    data = build_tar([("symlink", "a", "."), ("symlink", "x", "a/.."), ("file", "x/evil", b"pwned")])
    with pytest.raises(ArchiveError, match="outside the destination"), open_tar(data) as tar:
        safe_extract(tar, outer / "dest")
    assert not (outer / "evil").exists()
    assert "evil" not in [p.name for p in outer.iterdir()]


def test_symlinks_inside_the_tree_are_kept(outer, build_tar):
    data = build_tar([
        ("dir", "usr/bin"),
        ("file", "usr/bin/python3.13", b"#!", 0o755),
        ("symlink", "usr/bin/python3", "python3.13"),
        ("symlink", "usr/lib/link", "../bin/python3"),
        ("hardlink", "usr/bin/python", "usr/bin/python3.13", 0o755),
    ])
    with open_tar(data) as tar:
        safe_extract(tar, outer / "dest")
    dest = outer / "dest"
    assert tree(dest) == [
        "usr/", "usr/bin/", "usr/bin/python", "usr/bin/python3@python3.13", "usr/bin/python3.13",
        "usr/lib/", "usr/lib/link@../bin/python3",
    ]
    assert (dest / "usr/lib/link").read_bytes() == b"#!"
    assert os.stat(dest / "usr/bin/python").st_ino == os.stat(dest / "usr/bin/python3.13").st_ino
    assert os.stat(dest / "usr/bin/python3.13").st_mode & 0o111


def test_leading_dot_slash_is_removed(outer, build_tar):
    data = build_tar([("dir", "."), ("dir", "./usr"), ("file", "./usr/hello", b"hi")])
    with open_tar(data) as tar:
        safe_extract(tar, outer / "dest")
    assert tree(outer / "dest") == ["usr/", "usr/hello"]


# --- strip_components ------------------------------------------------------------------------------------


SDK_LIKE = [
    ("dir", "wasi-sdk-25.0"),
    ("file", "README-at-the-top", b"skipped: fewer components than stripped"),
    ("dir", "wasi-sdk-25.0/bin"),
    ("file", "wasi-sdk-25.0/bin/clang-19", b"\x7fELF", 0o755),
    ("symlink", "wasi-sdk-25.0/bin/clang", "clang-19"),
    ("hardlink", "wasi-sdk-25.0/bin/clang++", "wasi-sdk-25.0/bin/clang-19", 0o755),
    ("file", "wasi-sdk-25.0/share/wasi-sysroot/include/stdio.h", b"/* stdio */"),
]


def test_strip_components_one(tmp_path, build_tar):
    path = tmp_path / "sdk.tar.gz"
    path.write_bytes(build_tar(SDK_LIKE, "gz"))
    dest = tmp_path / "sdk"
    extract_tarball(path, dest, strip_components=1)
    assert tree(dest) == [
        "bin/", "bin/clang@clang-19", "bin/clang++", "bin/clang-19", "share/",
        "share/wasi-sysroot/", "share/wasi-sysroot/include/", "share/wasi-sysroot/include/stdio.h",
    ]
    assert (dest / "bin/clang++").read_bytes() == b"\x7fELF"
    assert (dest / "bin/clang").read_bytes() == b"\x7fELF"


def test_strip_components_two(tmp_path, build_tar):
    with open_tar(build_tar(SDK_LIKE)) as tar:
        safe_extract(tar, tmp_path / "out", strip_components=2)
    assert tree(tmp_path / "out") == ["clang@clang-19", "clang++", "clang-19", "wasi-sysroot/",
                                      "wasi-sysroot/include/", "wasi-sysroot/include/stdio.h"]


def test_strip_components_does_not_hide_an_escape(outer, build_tar):
    data = build_tar([("file", "top/../../evil", b"x")])
    with pytest.raises(ArchiveError, match="refusing path with '..'"), open_tar(data) as tar:
        safe_extract(tar, outer / "dest", strip_components=1)
    assert tree(outer) == ["dest/"]


def test_strip_components_with_dot_slash_prefixed_hard_links(outer, build_tar):
    data = build_tar([
        ("dir", "./top"), ("file", "./top/a", b"same inode"), ("hardlink", "./top/b", "./top/a"),
    ])
    with open_tar(data) as tar:
        safe_extract(tar, outer / "dest", strip_components=1)
    assert (outer / "dest" / "b").read_bytes() == b"same inode"


def test_unreadable_archive(tmp_path):
    path = tmp_path / "not.tar.gz"
    path.write_bytes(b"this is not an archive" * 10)
    with pytest.raises(ArchiveError, match=re.escape(f"{path}: not a readable tar archive")):
        extract_tarball(path, tmp_path / "dest")


def test_truncated_archive(tmp_path, build_tar):
    data = build_tar([("file", f"top/f{i}", os.urandom(30_000)) for i in range(5)], "gz")
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match=re.escape(f"{path}: ")):
        extract_tarball(path, tmp_path / "dest", strip_components=1)


# --- deterministic archives ------------------------------------------------------------------------------

EPOCH = 1_785_932_743


def make_tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python.wasm").write_bytes(b"\0asm" + bytes(1000))
    (root / "bin" / "python.wasm").chmod(0o755)
    (root / "bin" / "python").symlink_to("python.wasm")
    (root / "lib" / "python3.13" / "json").mkdir(parents=True)
    (root / "lib" / "python3.13" / "os.py").write_text("import abc\n")
    (root / "lib" / "python3.13" / "json" / "__init__.py").write_text("")
    (root / "lib" / "a-b.txt").write_text("sorts before lib/python3.13\n")
    (root / "include").mkdir()
    (root / "BUILD.json").write_text('{"format": 1}\n')
    (root / "ZZZ.txt").write_text("upper case sorts first\n")
    return root


def scramble(root: Path) -> None:
    """Change everything that must not matter: mtimes, atimes, permission bits."""
    for i, path in enumerate(sorted(root.rglob("*"), reverse=True)):
        if path.is_symlink():
            os.utime(path, (1000 + i, 2000 + i), follow_symlinks=False)
            continue
        if path.is_file():
            path.chmod(0o700 if os.access(path, os.X_OK) else 0o600)
        else:
            path.chmod(0o775)
        os.utime(path, (123_456 + i, 654_321 + i))


def members(archive: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(archive, "r:gz") as tar:
        return tar.getmembers()


def test_deterministic_tar_gz_is_byte_identical_across_runs(tmp_path):
    root = make_tree(tmp_path / "tree")
    first = tmp_path / "one.tar.gz"
    second = tmp_path / "two.tar.gz"
    write_deterministic_tar_gz(first, root, "cpython-3.13.15-wasm32-wasip1", EPOCH, first=["BUILD.json"])
    scramble(root)
    write_deterministic_tar_gz(second, root, "cpython-3.13.15-wasm32-wasip1", EPOCH, first=["BUILD.json"])
    assert first.read_bytes() == second.read_bytes()
    # The same tree elsewhere on disk gives the same bytes too.
    moved = tmp_path / "elsewhere" / "deeper"
    shutil.copytree(root, moved, symlinks=True)
    third = tmp_path / "three.tar.gz"
    write_deterministic_tar_gz(third, moved, "cpython-3.13.15-wasm32-wasip1", EPOCH, first=["BUILD.json"])
    assert third.read_bytes() == first.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_deterministic_tar_gz_member_order_and_metadata(tmp_path):
    root = make_tree(tmp_path / "tree")
    scramble(root)
    out = tmp_path / "out.tar.gz"
    write_deterministic_tar_gz(out, root, "pfx", EPOCH, first=["BUILD.json"])
    infos = members(out)
    names = [m.name for m in infos]
    assert names[0] == "pfx"
    assert names[1] == "pfx/BUILD.json"
    assert names[2:] == sorted(names[2:])
    assert names.count("pfx/BUILD.json") == 1
    assert set(names) == {
        "pfx", "pfx/BUILD.json", "pfx/ZZZ.txt", "pfx/bin", "pfx/bin/python", "pfx/bin/python.wasm",
        "pfx/include", "pfx/lib", "pfx/lib/a-b.txt", "pfx/lib/python3.13", "pfx/lib/python3.13/json",
        "pfx/lib/python3.13/json/__init__.py", "pfx/lib/python3.13/os.py",
    }
    by_name = {m.name: m for m in infos}
    for m in infos:
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", ""), m.name
        assert m.mtime == EPOCH, m.name
        assert not {"atime", "ctime", "mtime"} & set(m.pax_headers), m.name
    assert by_name["pfx/bin/python.wasm"].mode == 0o755
    assert by_name["pfx/lib/python3.13/os.py"].mode == 0o644
    assert by_name["pfx/include"].isdir() and by_name["pfx/include"].mode == 0o755
    assert by_name["pfx/bin/python"].issym() and by_name["pfx/bin/python"].linkname == "python.wasm"


def test_deterministic_tar_gz_raw_headers(tmp_path):
    root = make_tree(tmp_path / "tree")
    out = tmp_path / "out.tar.gz"
    write_deterministic_tar_gz(out, root, "pfx", EPOCH)
    raw = out.read_bytes()
    assert raw[:3] == b"\x1f\x8b\x08"
    assert raw[3] & 0x08 == 0, "gzip header must not carry a file name"
    assert raw[4:8] == b"\0\0\0\0", "gzip header mtime must be 0"
    tar_bytes = gzip.decompress(raw)
    assert b"atime=" not in tar_bytes and b"ctime=" not in tar_bytes
    with tarfile.open(out, "r:gz") as tar:
        tar.getmembers()
        assert not {"atime", "ctime"} & set(tar.pax_headers)


def test_deterministic_tar_gz_without_first_is_fully_sorted(tmp_path):
    root = make_tree(tmp_path / "tree")
    out = tmp_path / "out.tar.gz"
    write_deterministic_tar_gz(out, root, "pfx", EPOCH)
    names = [m.name for m in members(out)]
    assert names[0] == "pfx"
    assert names[1:] == sorted(names[1:])
    assert names[1] == "pfx/BUILD.json"  # sorts first anyway ('B' < 'Z' < 'b')


def test_special_file_fails_and_leaves_nothing(tmp_path):
    root = make_tree(tmp_path / "tree")
    os.mkfifo(root / "lib" / "fifo")
    out = tmp_path / "dist" / "out.tar.gz"
    out.parent.mkdir()
    with pytest.raises(ArchiveError, match=re.escape(f"cannot package special file {root / 'lib' / 'fifo'}")):
        write_deterministic_tar_gz(out, root, "pfx", EPOCH)
    assert list(out.parent.iterdir()) == []


# --- every supported host Python: no data filter before 3.11.4; expansion limit ------------------------


@pytest.fixture
def no_data_filter(monkeypatch):
    """This Python as if it were 3.11.2: extractall() takes no filter= and tarfile has no FilterError."""
    real = tarfile.TarFile.extractall
    real_takes_filter = archive.HAS_DATA_FILTER

    def extractall(self, path=".", members=None, *, numeric_owner=False, **kwargs):
        if "filter" in kwargs:
            raise TypeError("extractall() got an unexpected keyword argument 'filter'")
        extra = {"filter": "fully_trusted"} if real_takes_filter else {}  # 3.11.2's behaviour: no filtering
        return real(self, path, members, numeric_owner=numeric_owner, **extra)

    monkeypatch.setattr(archive, "HAS_DATA_FILTER", False)
    monkeypatch.setattr(tarfile.TarFile, "extractall", extractall)
    monkeypatch.delattr(tarfile, "FilterError", raising=False)


@pytest.mark.parametrize("case", CASE_IDS)
def test_without_the_data_filter_the_same_members_are_refused(outer, build_tar, no_data_filter, case):
    _, entries, message = {c[0]: c for c in _unsafe_cases(str(outer))}[case]
    data = build_tar([("file", "harmless.txt", b"hello"), *entries])
    with pytest.raises(ArchiveError, match=re.escape(f"my.tar: {message}")), open_tar(data) as tar:
        safe_extract(tar, outer / "dest", label="my.tar")
    assert tree(outer) == ["dest/"]


def test_without_the_data_filter_a_symlink_chain_out_of_the_tree_is_refused(outer, build_tar, no_data_filter):
    data = build_tar([("symlink", "a", "."), ("symlink", "x", "a/.."), ("file", "x/evil", b"pwned")])
    with pytest.raises(ArchiveError, match="outside the destination"), open_tar(data) as tar:
        safe_extract(tar, outer / "dest")
    assert "evil" not in [p.name for p in outer.iterdir()]


def test_without_the_data_filter_modes_are_sanitized_like_the_filter(outer, build_tar, no_data_filter):
    data = build_tar([("dir", "d"), ("file", "d/setuid", b"x", 0o4777), ("file", "d/ro", b"y", 0o444),
                      ("file", "d/exe", b"z", 0o755), ("symlink", "d/link", "exe")])
    with open_tar(data) as tar:
        safe_extract(tar, outer / "dest", label="my.tar")
    d = outer / "dest" / "d"
    assert stat.S_IMODE((d / "setuid").stat().st_mode) == 0o755  # no setuid, no group/other write
    assert stat.S_IMODE((d / "ro").stat().st_mode) == 0o644  # the owner may write
    assert stat.S_IMODE((d / "exe").stat().st_mode) == 0o755
    assert (d / "link").is_symlink() and (d / "link").read_bytes() == b"z"


def test_without_the_data_filter_a_normal_archive_extracts(outer, build_tar, no_data_filter):
    path = outer / "a.tar.gz"
    path.write_bytes(build_tar([("dir", "top"), ("file", "top/a.txt", b"A"), ("file", "top/sub/b.txt", b"B")],
                               compression="gz"))
    extract_tarball(path, outer / "dest", strip_components=1)
    assert tree(outer / "dest") == ["a.txt", "sub/", "sub/b.txt"]


def test_a_decompression_bomb_is_refused_and_nothing_is_written(outer, monkeypatch):
    monkeypatch.setattr(archive, "EXPANSION_FLOOR", 1 << 20)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("bomb/zeros")
        info.size = 64 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    path = outer / "bomb.tar.gz"
    path.write_bytes(buf.getvalue())
    assert path.stat().st_size * archive.EXPANSION_RATIO < (64 << 20)
    with pytest.raises(ArchiveError, match="refusing to unpack more than .* decompression bomb"):
        extract_tarball(path, outer / "dest")
    assert tree(outer) == ["bomb.tar.gz", "dest/"]


def test_expansion_limit_has_a_floor_and_a_ratio():
    assert expansion_limit(0) == archive.EXPANSION_FLOOR
    assert expansion_limit(10 << 20) == archive.EXPANSION_RATIO * (10 << 20)


@pytest.mark.parametrize("cut", [0.3, 0.9])
def test_a_truncated_archive_is_an_archive_error_not_a_traceback(outer, build_tar, cut):
    data = gzip.compress(build_tar([("file", f"f{i}", bytes(range(256)) * 400) for i in range(8)]))
    path = outer / "cut.tar.gz"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ArchiveError, match="cut.tar.gz"):
        extract_tarball(path, outer / "dest")
