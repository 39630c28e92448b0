"""`wasmbuild reproduce`: the two builds' conditions and command lines, the file-by-file comparison (builds faked)."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from wasmbuild import cli
from wasmbuild.errors import UsageError, VerifyError
from wasmbuild.release import reproduce


def test_the_second_build_changes_user_directory_umask_zone_locale_and_clock(tmp_path):
    a, b = reproduce.conditions(tmp_path, other_user="nobody", faketime=True)
    assert (a.user, a.umask, a.faketime) == (None, 0o022, None)
    assert (b.user, b.umask, b.faketime) == ("nobody", 0o077, reproduce.CLOCK_OFFSET)
    assert a.env["TZ"] != b.env["TZ"] and a.env["LC_ALL"] != b.env["LC_ALL"]
    assert len(str(a.directory)) != len(str(b.directory))  # path lengths differ too
    argv = reproduce.command(b, ["/py"], ["--target", "wasi"])
    nobody = pwd.getpwnam("nobody")
    assert argv[:5] == ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", "--"]
    assert argv[5:8] == ["faketime", "-f", reproduce.CLOCK_OFFSET]
    assert argv[8:12] == ["sh", "-c", 'umask 077 && exec "$@"', "sh"]
    assert argv[12:] == ["/py", "-m", "wasmbuild", "build", "--cache-dir", str(b.directory / "cache"),
                         "--dist-dir", str(b.directory / "dist"), "--no-smoke-test", "--target", "wasi"]
    assert reproduce.command(a, ["/py"], [])[:4] == ["sh", "-c", 'umask 022 && exec "$@"', "sh"]
    _, no_clock = reproduce.conditions(tmp_path, other_user=None, faketime=False)
    assert "faketime" not in reproduce.command(no_clock, ["/py"], []) and no_clock.faketime is None


def test_each_build_gets_its_own_home_cache_and_temporary_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("LC_CTYPE", "de_DE.UTF-8")
    monkeypatch.setenv("WASMBUILD_CACHE_DIR", "/shared/cache")
    _, b = reproduce.conditions(tmp_path, other_user=None, faketime=True)
    env = reproduce.environment(b, {"WASMBUILD_ROOT": "/src"})
    assert env["HOME"] == str(b.directory / "home") and env["TMPDIR"] == str(b.directory / "tmp")
    assert env["TZ"] == "Asia/Kathmandu" and env["LC_ALL"] == "C" and "LC_CTYPE" not in env
    assert "WASMBUILD_CACHE_DIR" not in env and env["WASMBUILD_ROOT"] == "/src"
    assert env["FAKETIME_DONT_FAKE_MONOTONIC"] == "1"


def test_compare_lists_every_file_of_either_side(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for d in (a, b):
        (d / "same.tar.gz").write_bytes(b"x")
    (a / "diff.json").write_text("1")
    (b / "diff.json").write_text("2")
    (a / "only-a").write_text("")
    (b / "only-b").write_text("")
    assert reproduce.compare(a, b) == [("diff.json", "differs"), ("only-a", "only in A"), ("only-b", "only in B"),
                                       ("same.tar.gz", "identical")]


def fake_builds(monkeypatch, outputs: dict[str, bytes]):
    """subprocess.run faked for the builds: each writes `outputs` into its --dist-dir (B's first file changed
    when its value starts with b'B:')."""
    calls = []

    def run(argv, **kwargs):
        calls.append((argv, kwargs))
        if "build" in argv:
            dist = Path(argv[argv.index("--dist-dir") + 1])
            dist.mkdir(parents=True)
            second = "faketime" in argv or argv[0] == "setpriv"
            for name, data in outputs.items():
                (dist / name).write_bytes(data.replace(b"B:", b"other:") if second else data)
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(reproduce.subprocess, "run", run)
    return calls


@pytest.mark.skipif(os.getuid() != 0, reason="switching to another user needs root")
def test_identical_builds_pass_and_nothing_is_kept(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(reproduce.tempfile, "mkdtemp", lambda prefix: str(tmp_path / "work"))
    (tmp_path / "work").mkdir()
    monkeypatch.setattr(reproduce, "python_for", lambda user, work, root: ["/py"])
    calls = fake_builds(monkeypatch, {"a.tar.gz": b"same", "SHA256SUMS": b"sums"})
    rows = reproduce.reproduce(["--target", "wasi"], user=None, keep=False, root=tmp_path)
    assert rows == [("SHA256SUMS", "identical"), ("a.tar.gz", "identical")]
    builds = [c for c in calls if "build" in c[0]]
    assert len(builds) == 2 and builds[1][0][0] == "setpriv"  # root: the second build is nobody's
    assert builds[0][1]["env"]["TZ"] == "UTC" and builds[1][1]["env"]["TZ"] == "Asia/Kathmandu"
    assert not (tmp_path / "work").exists()
    assert "files byte-identical" in capsys.readouterr().err + capsys.readouterr().out


@pytest.mark.skipif(os.getuid() != 0, reason="switching to another user needs root")
def test_a_difference_fails_names_the_file_and_keeps_both_builds(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(reproduce.tempfile, "mkdtemp", lambda prefix: str(tmp_path / "work"))
    (tmp_path / "work").mkdir()
    monkeypatch.setattr(reproduce, "python_for", lambda user, work, root: ["/py"])
    monkeypatch.setattr(reproduce.shutil, "which",
                        lambda name, **k: None if name == "diffoscope" else f"/usr/bin/{name}")
    fake_builds(monkeypatch, {"record.json": b"B: built at 12:00", "same": b"x"})
    with pytest.raises(VerifyError, match="1 of 2 files differ between the two builds: record.json"):
        reproduce.reproduce([], user=None, keep=False, root=tmp_path)
    assert (tmp_path / "work" / "a" / "dist" / "record.json").is_file()  # kept for a look


def test_options_are_checked_before_anything_is_built(capsys, monkeypatch):
    monkeypatch.setattr(reproduce, "reproduce", lambda *a, **k: pytest.fail("nothing may be built"))
    assert cli.main(["reproduce", "--python", "3.99"]) == 2
    assert "3.99" in capsys.readouterr().err
    if os.getuid() == 0:
        monkeypatch.undo()
        with pytest.raises(UsageError, match="no such user"):
            reproduce.reproduce([], user="no-such-user-here", keep=False, root=Path("."))
