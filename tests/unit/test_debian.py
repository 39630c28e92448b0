"""The Debian route: finding the configured mirror in apt's configuration, unpacking .deb files.

Only fictional host names (*.example) appear here.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

from wasmbuild.errors import ArchiveError
from wasmbuild.toolchain import debian
from wasmbuild.toolchain.debian import discover_mirror, extract_deb, resolve_mirror

MIRROR = "http://mirror.example/debian"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


@pytest.fixture
def apt(tmp_path):
    return tmp_path / "etc" / "apt"


# --- discover_mirror ---------------------------------------------------------------------------------------


def test_deb822_sources_skip_security_and_disabled_entries(apt):
    write(apt / "sources.list.d" / "debian.sources", """
        # Security first, as the Debian installer writes it.
        Types: deb
        URIs: http://security.example/debian-security
        Suites: bookworm-security
        Components: main
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

        # A disabled entry that would otherwise win (its uri ends with /debian).
        Types: deb
        URIs: http://disabled.example/debian
        Suites: bookworm
        Components: main
        Enabled: no

        Types: deb deb-src
        URIs: http://mirror.example/debian/
        Suites: bookworm bookworm-updates
        Components: main contrib
        Signed-By:
         -----BEGIN PGP PUBLIC KEY BLOCK-----
         .
         mQINBGfake
         -----END PGP PUBLIC KEY BLOCK-----
        """)
    assert discover_mirror(apt) == MIRROR


def test_deb822_security_suite_is_skipped_even_on_a_plain_looking_host(apt):
    write(apt / "sources.list.d" / "a.sources", """
        Types: deb
        URIs: http://updates.example/debian
        Suites: bookworm-security
        Components: main

        Types: deb
        URIs: http://mirror.example/debian
        Suites: trixie
        Components: main
        """)
    assert discover_mirror(apt) == MIRROR


def test_deb822_continuation_lines_of_suites(apt):
    write(apt / "sources.list.d" / "x.sources", """
        Types: deb
        URIs: http://mirror.example/debian
        Suites:
         trixie
         trixie-updates
        Components: main
        """)
    assert discover_mirror(apt) == MIRROR


def test_one_line_sources_list_with_options_and_comments(apt):
    write(apt / "sources.list", """
        # deb http://commented.example/debian bookworm main
        deb http://security.example/debian-security bookworm-security main
        deb [signed-by=/etc/k.gpg arch=amd64] http://mirror.example/debian bookworm main  # mine
        deb-src [ signed-by=/usr/share/keyrings/d.gpg ] http://src.example/debian bookworm main
        """)
    assert discover_mirror(apt) == MIRROR


def test_one_line_in_sources_list_d(apt):
    write(apt / "sources.list.d" / "extra.list", "deb [trusted=yes] http://mirror.example/debian/ sid main\n")
    write(apt / "sources.list.d" / "ignored.txt", "deb http://other.example/debian sid main\n")
    assert discover_mirror(apt) == MIRROR


def test_uri_ending_in_debian_is_preferred_over_an_earlier_other_one(apt):
    write(apt / "sources.list", """
        deb http://proxy.example/ftp bookworm main
        deb http://mirror.example/debian bookworm main
        """)
    assert discover_mirror(apt) == MIRROR
    write(apt / "sources.list", "deb http://proxy.example/ftp bookworm main\n")
    assert discover_mirror(apt) == "http://proxy.example/ftp"


def test_non_debian_suites_and_schemes_are_ignored(apt):
    write(apt / "sources.list", """
        deb http://archive.example/ubuntu noble main
        deb cdrom:[Debian GNU/Linux 12]/ bookworm main
        deb http://mirror.example/debian bookworm/updates main
        """)
    assert discover_mirror(apt) is None


@pytest.mark.parametrize("layout", ["missing", "empty", "empty-files"])
def test_no_configuration_gives_none(apt, layout):
    if layout != "missing":
        (apt / "sources.list.d").mkdir(parents=True)
    if layout == "empty-files":
        write(apt / "sources.list", "# nothing here\n\n")
        write(apt / "sources.list.d" / "debian.sources", "# nothing\n")
    assert discover_mirror(apt) is None


# --- resolve_mirror ------------------------------------------------------------------------------------


def test_resolve_mirror_precedence(apt, monkeypatch):
    write(apt / "sources.list", "deb http://apt.example/debian bookworm main\n")
    assert resolve_mirror(None, apt) == "http://apt.example/debian"
    monkeypatch.setenv("WASMBUILD_DEBIAN_MIRROR", "http://env.example/debian")
    assert resolve_mirror(None, apt) == "http://env.example/debian"
    assert resolve_mirror("http://option.example/debian", apt) == "http://option.example/debian"
    monkeypatch.delenv("WASMBUILD_DEBIAN_MIRROR")
    assert resolve_mirror("http://option.example/debian", apt) == "http://option.example/debian"
    assert resolve_mirror(None, apt.parent / "nowhere") is None


def test_empty_env_var_falls_through(apt, monkeypatch):
    write(apt / "sources.list", "deb http://apt.example/debian bookworm main\n")
    monkeypatch.setenv("WASMBUILD_DEBIAN_MIRROR", "")
    assert resolve_mirror(None, apt) == "http://apt.example/debian"


# --- extract_deb --------------------------------------------------------------------------------------

HELLO_TREE = [
    ("dir", "."),
    ("dir", "./usr"),
    ("dir", "./usr/bin"),
    ("file", "./usr/bin/hello", b"#!/bin/sh\necho hello\n", 0o755),
    ("symlink", "./usr/bin/hi", "hello"),
    ("dir", "./usr/share/doc/hello"),
    ("symlink", "./usr/share/doc/hello/bin", "../../../bin"),
]


@pytest.mark.parametrize("member", ["data.tar.xz", "data.tar.gz", "data.tar", "data.tar.xz/"])
def test_extract_deb(tmp_path, build_deb, member):
    deb = tmp_path / "hello_1.0_amd64.deb"
    # An odd-sized member before data.tar checks the ar padding.
    deb.write_bytes(build_deb(HELLO_TREE, member, extra_members=[("_odd", b"abc")]))
    dest = tmp_path / "root"
    extract_deb(deb, dest)
    hello = dest / "usr" / "bin" / "hello"
    assert hello.read_bytes() == b"#!/bin/sh\necho hello\n"
    assert os.access(hello, os.X_OK)
    assert os.readlink(dest / "usr" / "bin" / "hi") == "hello"
    assert (dest / "usr" / "bin" / "hi").resolve() == hello.resolve()
    assert (dest / "usr/share/doc/hello/bin/hello").read_bytes() == hello.read_bytes()
    assert not (dest / "control").exists() and not (dest / "debian-binary").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hello_1.0_amd64.deb", "root"]


def test_two_debs_share_one_root(tmp_path, build_deb):
    (tmp_path / "a.deb").write_bytes(build_deb([("file", "./usr/lib/a.so", b"a")]))
    (tmp_path / "b.deb").write_bytes(build_deb([("file", "./usr/lib/b.so", b"b")]))
    extract_deb(tmp_path / "a.deb", tmp_path / "root")
    extract_deb(tmp_path / "b.deb", tmp_path / "root")
    assert sorted(p.name for p in (tmp_path / "root" / "usr" / "lib").iterdir()) == ["a.so", "b.so"]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("dir", "."), ("file", "../evil", b"x")], "refusing path with '..'"),
        ([("file", "./usr/../../evil", b"x")], "refusing path with '..'"),
        ([("symlink", "./usr/evil", "../../evil")],
         "refusing symlink './usr/evil' -> '../../evil' (leaves the tree)"),
        ([("file", "/evil", b"x")], "refusing absolute path"),
    ],
)
def test_deb_with_escaping_member_is_refused(tmp_path, build_deb, entries, message):
    deb = tmp_path / "pkg" / "evil_1.0_all.deb"
    deb.parent.mkdir()
    deb.write_bytes(build_deb(entries))
    dest = tmp_path / "work" / "root"
    with pytest.raises(ArchiveError, match=re.escape(f"evil_1.0_all.deb: {message}")):
        extract_deb(deb, dest)
    assert not (tmp_path / "work" / "evil").exists() and not (tmp_path / "evil").exists()
    assert list(dest.rglob("*")) == []


def test_non_ar_file_is_refused(tmp_path):
    deb = tmp_path / "fake.deb"
    deb.write_bytes(b"<html>captive portal</html>")
    with pytest.raises(ArchiveError, match=r"not a Debian package \(no ar signature\)"):
        extract_deb(deb, tmp_path / "root")
    assert not (tmp_path / "root").exists()


def test_deb_without_data_member(tmp_path, build_ar):
    deb = tmp_path / "nodata.deb"
    deb.write_bytes(build_ar([("debian-binary", b"2.0\n"), ("control.tar.xz", b"")]))
    with pytest.raises(ArchiveError, match="nodata.deb: no data.tar member"):
        extract_deb(deb, tmp_path / "root")


def test_zstd_data_without_zstd_installed(tmp_path, build_deb, monkeypatch):
    data = build_deb([("file", "./x", b"x")], "data.tar")
    deb = tmp_path / "z.deb"
    deb.write_bytes(data.replace(b"data.tar        ", b"data.tar.zst    "))
    monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    with pytest.raises(ArchiveError, match="z.deb: data is zstd-compressed and 'zstd' is not installed"):
        extract_deb(deb, tmp_path / "root")


@pytest.mark.parametrize("corruption", ["xz-payload", "tar-payload", "ar-header"])
def test_corrupt_deb_gives_archive_error(tmp_path, build_ar, corruption):
    deb = tmp_path / "corrupt.deb"
    if corruption == "xz-payload":
        deb.write_bytes(build_ar([("debian-binary", b"2.0\n"), ("data.tar.xz", b"definitely not xz")]))
    elif corruption == "tar-payload":
        deb.write_bytes(build_ar([("debian-binary", b"2.0\n"), ("data.tar", b"not a tar archive" * 40)]))
    else:
        deb.write_bytes(b"!<arch>\n" + b"x" * 70)
    with pytest.raises(ArchiveError, match="corrupt.deb"):
        extract_deb(deb, tmp_path / "root")
