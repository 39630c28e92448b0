"""Every `error:` line names its cause: a WasmbuildError whose message is empty (or ends at a colon) says what it
was raised from, or what its class stands for; an OSError no command turned into a WasmbuildError is one line with
its reason and file, not a traceback."""

from __future__ import annotations

import errno

import pytest

from wasmbuild import cli
from wasmbuild.errors import ArchiveError, DownloadError, UsageError, WasmbuildError, describe


def fail_with(monkeypatch, make):
    """`wasmbuild versions` replaced by a command that raises what `make()` raises."""
    def command(args):
        make()
        return 0

    monkeypatch.setitem(cli.COMMANDS, "versions", command)


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err
    return line


def test_an_empty_message_names_the_exception_it_came_from(monkeypatch, capsys):
    def make():
        try:
            raise OSError(errno.EACCES, "Permission denied", "/srv/cache/hashes")
        except OSError:
            raise DownloadError("") from None

    fail_with(monkeypatch, make)
    assert cli.main(["versions"]) == DownloadError.exit_code
    assert error_line(capsys) == "error: Permission denied: /srv/cache/hashes"


def test_a_message_ending_at_a_colon_gets_the_cause(monkeypatch, capsys):
    def make():
        try:
            raise EOFError
        except EOFError as exc:
            raise ArchiveError("x.tar.gz: not a readable archive:") from exc

    fail_with(monkeypatch, make)
    assert cli.main(["versions"]) == ArchiveError.exit_code
    assert error_line(capsys) == "error: x.tar.gz: not a readable archive: EOFError (no message)"


@pytest.mark.parametrize(("error", "expected"), [
    (UsageError(""), "error: Bad command line: unknown version, target, option"),
    (UsageError("  ", hint="see --help"), "error: Bad command line: unknown version, target, option"),
    (WasmbuildError(""), "error: WasmbuildError with no message (a bug in wasmbuild: please report the command)"),
    (DownloadError("", hint="try --from"), "error: No route delivered the expected bytes"),
])
def test_an_empty_message_without_a_cause_names_the_kind_of_failure(monkeypatch, capsys, error, expected):
    def make():
        raise error

    fail_with(monkeypatch, make)
    assert cli.main(["versions"]) == error.exit_code
    assert error_line(capsys) == expected


def test_an_oserror_that_reaches_main_is_one_line(monkeypatch, capsys, tmp_path):
    def make():
        (tmp_path / "missing" / "file").read_text()

    fail_with(monkeypatch, make)
    assert cli.main(["versions"]) == 1
    assert error_line(capsys) == f"error: No such file or directory: {tmp_path / 'missing' / 'file'}"


@pytest.mark.parametrize(("exc", "text"), [
    (OSError(), "OSError"),
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "Connection reset by peer"),
    (TimeoutError("timed out"), "timed out"),
    (KeyError("python"), "KeyError: 'python'"),
    (ValueError(""), "ValueError (no message)"),
    (None, "no further detail"),
])
def test_describe_is_never_empty(exc, text):
    assert describe(exc) == text


def test_a_message_with_text_is_left_alone():
    try:
        raise OSError(errno.EACCES, "Permission denied")
    except OSError as exc:
        error = UsageError("--output-dir /x: not writable", hint="choose another")
        error.__context__ = exc
    assert str(error) == "--output-dir /x: not writable\n  hint: choose another"
