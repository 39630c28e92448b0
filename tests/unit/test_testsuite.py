"""regrtest output parsing, expectations files and the comparison of results with them.

No CPython runs here: run_regrtest drives a shell script that prints regrtest-like lines.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
import yaml

from wasmbuild.checks import expectations as expectations_module
from wasmbuild.checks import regrtest
from wasmbuild.checks.expectations import Expectations, compare, load_expectations
from wasmbuild.checks.regrtest import classify, counts, parse_output
from wasmbuild.errors import RecipeError, UsageError

# What `python -m test -j2 --python ...` prints (3.13), with the lines parse_output must ignore.
REGRTEST_OUTPUT = """\
== CPython 3.13.1 (main, Jan  1 2025, 00:00:00) [GCC 12.2.0]
== Linux-6.1.0-x86_64-with-glibc2.36 little-endian
Using random seed: 12345
0:00:00 load avg: 1.00 Run 481 tests in parallel using 2 worker processes (timeout: 15 min, worker timeout: 20 min)
0:00:07 load avg: 1.23 [  1/481] test_grammar passed
0:00:09 load avg: 1.23 [  2/481] test_tkinter skipped
test_tkinter skipped -- No module named '_tkinter'
0:00:30 load avg: 1.40 running (2): test_os (30.0 sec), test_io (29.0 sec)
0:01:02 load avg: 1.50 [ 12/481/1] test_os failed (2 errors, 1 failure) (31.2 sec) -- running (1): test_io (30.1 sec)
0:02:00 [ 13/481/2] test_marshal worker non-zero exit code (Exit code 7)
[ 14/481] test_socket skipped (resource denied)
test_socket skipped -- Use of the 'network' resource not enabled
[ 15/481] test_x failed (env changed)
[ 16/481/3] test_y timed out (15 min)
0:02:10 load avg: 1.10 [ 17/481/3] test_asyncio.test_tasks passed (1 min 2 sec)
0:02:11 load avg: 1.10 [ 18/481/3] test_z ran no tests
test_grammar skipped -- a reason line for a test that passed is ignored

== Tests result: FAILURE ==

10 tests skipped:
    test_tkinter test_socket

1 test failed:
    test_os

Total duration: 2 min 11 sec
Result: FAILURE
"""


# --- classify / parse_output / counts -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("passed", ("passed", "")),
    ("passed (1 min 2 sec)", ("passed", "")),
    ("  passed  ", ("passed", "")),
    ("skipped", ("skipped", "")),
    ("skipped (resource denied)", ("skipped", "resource denied")),
    ("ran no tests", ("skipped", "")),
    ("failed (env changed)", ("passed", "env changed")),
    ("failed", ("failed", "failed")),
    ("failed (2 errors, 1 failure) (31.2 sec)", ("failed", "failed (2 errors, 1 failure) (31.2 sec)")),
    ("failed (uncaught exception)", ("failed", "failed (uncaught exception)")),
    ("worker non-zero exit code (Exit code 7)", ("crashed", "worker non-zero exit code (Exit code 7)")),
    ("worker bug", ("crashed", "worker bug")),
    ("timed out (15 min)", ("crashed", "timed out (15 min)")),
    ("interrupted", ("crashed", "interrupted")),
    ("exploded", ("crashed", "unrecognised result: exploded")),
])
def test_classify(text, expected):
    assert classify(text) == expected


def test_parse_output_on_regrtest_progress_lines():
    results = parse_output(REGRTEST_OUTPUT)
    assert results == {
        "test_grammar": {"status": "passed", "detail": ""},
        "test_tkinter": {"status": "skipped", "detail": "", "reason": "No module named '_tkinter'"},
        "test_os": {"status": "failed", "detail": "failed (2 errors, 1 failure) (31.2 sec)"},
        "test_marshal": {"status": "crashed", "detail": "worker non-zero exit code (Exit code 7)"},
        "test_socket": {"status": "skipped", "detail": "resource denied",
                        "reason": "Use of the 'network' resource not enabled"},
        "test_x": {"status": "passed", "detail": "env changed"},
        "test_y": {"status": "crashed", "detail": "timed out (15 min)"},
        "test_asyncio.test_tasks": {"status": "passed", "detail": ""},
        "test_z": {"status": "skipped", "detail": ""},
    }


def test_parse_output_running_suffix_is_not_part_of_the_detail():
    line = "0:01:02 load avg: 1.50 [ 12/481/1] test_os failed (2 errors) -- running (2): test_io (30 sec), test_re"
    assert parse_output(line) == {"test_os": {"status": "failed", "detail": "failed (2 errors)"}}
    # The pre-3.12 spelling of the suffix.
    assert parse_output("[ 3/9] test_os passed -- running: test_io (30 sec)") == {
        "test_os": {"status": "passed", "detail": ""}}


def test_parse_output_skip_reason_before_the_progress_line_and_first_reason_wins():
    text = ("test_tkinter skipped -- first reason\n"
            "test_tkinter skipped -- second reason\n"
            "[  2/481] test_tkinter skipped\n")
    assert parse_output(text)["test_tkinter"] == {"status": "skipped", "detail": "", "reason": "first reason"}


def test_parse_output_last_progress_line_of_a_module_wins():
    # A module re-run (regrtest --rerun) ends with the outcome of its last run.
    text = ("[ 1/2/1] test_os failed (1 failure)\n"
            "0:03:00 Re-running 1 failed tests in verbose mode\n"
            "[1/1] test_os passed\n")
    assert parse_output(text) == {"test_os": {"status": "passed", "detail": ""}}


def test_parse_output_ignores_lines_without_a_result():
    text = ("[  1/481] test_grammar\n"  # sequential mode announces a test before running it
            "0:00:30 load avg: 1.40 running (2): test_os (30.0 sec), test_io (29.0 sec)\n"
            "    test_tkinter test_socket\n"
            "\n")
    assert parse_output(text) == {}


def test_counts():
    results = parse_output(REGRTEST_OUTPUT)
    assert counts(results) == {"passed": 3, "failed": 1, "crashed": 2, "skipped": 3}
    assert counts({}) == {"passed": 0, "failed": 0, "crashed": 0, "skipped": 0}
    assert list(counts({})) == list(regrtest.STATUSES)


# --- load_expectations ---------------------------------------------------------------------------------------

VALID = {
    "format": 1,
    "python": "3.13",
    "target": "emscripten",
    "failed": {"test_os": {"kind": "platform", "reason": "no fork() under Emscripten"}},
    "crashed": {"test_marshal": {"kind": "toolchain", "reason": "deep recursion overflows the JS stack",
                                 "link": "https://github.com/emscripten-core/emscripten/issues/1"}},
    "skipped": {"test_tkinter": {"kind": "platform", "reason": "no Tk"}},
}


def write_expectations(tmp_path: Path, data: dict, name: str = "emscripten-3.13.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def variant(**changes) -> dict:
    data = json.loads(json.dumps(VALID))
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return data


def test_load_expectations_valid_file(tmp_path):
    file = write_expectations(tmp_path, VALID)
    exp = load_expectations(file, "3.13", "emscripten")
    assert exp.file == file
    assert exp.failed == VALID["failed"] and exp.crashed == VALID["crashed"] and exp.skipped == VALID["skipped"]
    assert exp.expected("test_os") == "failed"
    assert exp.expected("test_marshal") == "crashed"
    assert exp.expected("test_tkinter") == "skipped"
    assert exp.expected("test_grammar") == "passed"


def test_load_expectations_sections_are_optional(tmp_path):
    file = write_expectations(tmp_path, variant(failed=None, crashed=None, skipped=None))
    exp = load_expectations(file, "3.13", "emscripten")
    assert (exp.failed, exp.crashed, exp.skipped) == ({}, {}, {})


def test_load_expectations_every_kind_is_accepted(tmp_path):
    entries = {f"test_{kind}": {"kind": kind, "reason": "r", "link": "https://example.invalid/1"}
               for kind in expectations_module.KINDS}
    exp = load_expectations(write_expectations(tmp_path, variant(failed=entries)), "3.13", "emscripten")
    assert set(exp.failed) == set(entries)


@pytest.mark.parametrize(("changes", "message"), [
    ({"failed": {"test_os": {"kind": "weather", "reason": "rain"}}},
     r"failed\.test_os\.kind: 'weather' is not one of platform, toolchain, cpython, wasmbuild, environment"),
    ({"skipped": {"test_tkinter": {"kind": "platform", "reason": "   "}}},
     r"skipped\.test_tkinter\.reason: every expectation names its reason"),
    ({"skipped": {"test_tkinter": {"kind": "platform", "reason": ""}}},
     r"skipped\.test_tkinter\.reason: expected a non-empty string"),
    ({"skipped": {"test_tkinter": {"kind": "platform"}}},
     r"skipped\.test_tkinter: missing required key 'reason'"),
    ({"crashed": {"test_marshal": {"kind": "toolchain", "reason": "stack"}}},
     r"crashed\.test_marshal\.link: a toolchain bug needs a link to its report"),
    ({"failed": {"test_os": {"kind": "cpython", "reason": "a CPython bug"}}},
     r"failed\.test_os\.link: a cpython bug needs a link to its report"),
    ({"skipped": {"test_os": {"kind": "platform", "reason": "no fork"}}},
     r"skipped\.test_os: also listed under failed"),
    ({"format": 2}, r"format: unsupported format 2"),
    ({"python": "3.12"}, r"is for emscripten 3\.12, not emscripten 3\.13"),
    ({"target": "wasi"}, r"is for wasi 3\.13, not emscripten 3\.13"),
    ({"python": None}, r"missing required key 'python'"),
    ({"passed": {}}, r"unknown key 'passed'"),
])
def test_load_expectations_errors(tmp_path, changes, message):
    file = write_expectations(tmp_path, variant(**changes))
    with pytest.raises(RecipeError, match=message) as info:
        load_expectations(file, "3.13", "emscripten")
    assert str(info.value).startswith(f"{file}: ")


def test_load_expectations_missing_file(tmp_path):
    with pytest.raises(RecipeError, match="file not found"):
        load_expectations(tmp_path / "nope.yaml", "3.13", "emscripten")


def test_load_expectations_accepts_the_ci_subset_that_suite_reads(tmp_path):
    file = write_expectations(tmp_path, variant(ci_subset=["test_grammar", "test_os"]))
    exp = load_expectations(file, "3.13", "emscripten")
    assert exp.expected("test_os") == "failed"


# --- compare -----------------------------------------------------------------------------------------------


def result(status: str, detail: str = "") -> dict[str, str]:
    return {"status": status, "detail": detail}


@pytest.fixture
def expectations(tmp_path) -> Expectations:
    return load_expectations(write_expectations(tmp_path, VALID), "3.13", "emscripten")


def test_compare_everything_as_expected(expectations):
    results = {"test_grammar": result("passed"), "test_os": result("failed", "failed (1 error)"),
               "test_marshal": result("crashed"), "test_tkinter": result("skipped")}
    comparison = compare(results, expectations)
    assert comparison.ok
    assert (comparison.unexpected, comparison.notes) == ([], [])


def test_compare_unexpected_failure_and_crash(expectations):
    results = {"test_grammar": result("failed", "failed (2 errors)"), "test_re": result("crashed", "timed out"),
               "test_os": result("crashed", "worker non-zero exit code (Exit code 1)")}
    comparison = compare(results, expectations, complete=False)
    assert not comparison.ok
    assert comparison.unexpected == [
        "test_grammar: expected passed, got failed (failed (2 errors))",
        "test_os: expected failed, got crashed (worker non-zero exit code (Exit code 1))",  # worse than expected
        "test_re: expected passed, got crashed (timed out)",
    ]
    assert comparison.notes == []


def test_compare_expected_failure_that_passes_is_a_note(expectations):
    comparison = compare({"test_os": result("passed")}, expectations, complete=False)
    assert comparison.ok
    assert comparison.notes == ["unexpected pass: test_os: expected failed, got passed -- update emscripten-3.13.yaml"]
    # Without a file the note says so generically.
    comparison = compare({"test_os": result("passed")}, Expectations(None, failed={"test_os": {}}), complete=False)
    assert comparison.notes == ["unexpected pass: test_os: expected failed, got passed -- update expectations"]


def test_compare_unexpected_skip_fails(expectations):
    results = {"test_grammar": {"status": "skipped", "detail": "", "reason": "No module named '_ctypes'"},
               "test_os": result("skipped")}
    comparison = compare(results, expectations, complete=False)
    assert comparison.unexpected == [
        "test_grammar: expected passed, got skipped (No module named '_ctypes') -- an unexpected skip can hide a "
        "regression",
        "test_os: expected failed, got skipped -- an unexpected skip can hide a regression",
    ]


def test_compare_expected_skip_that_runs(expectations):
    comparison = compare({"test_tkinter": result("passed")}, expectations, complete=False)
    assert comparison.ok and comparison.notes[0].startswith("unexpected pass: test_tkinter: expected skipped")
    comparison = compare({"test_tkinter": result("failed", "failed")}, expectations, complete=False)
    assert comparison.unexpected == ["test_tkinter: expected skipped, got failed (failed)"]


def test_compare_expected_crash_that_only_fails_is_not_unexpected(expectations):
    comparison = compare({"test_marshal": result("failed", "failed (1 failure)")}, expectations, complete=False)
    assert comparison.ok
    assert len(comparison.notes) == 1
    assert "test_marshal: expected crashed, got failed (failed (1 failure))" in comparison.notes[0]


def test_compare_expected_crash_that_only_fails_is_not_called_a_pass(expectations):
    comparison = compare({"test_marshal": result("failed", "failed (1 failure)")}, expectations, complete=False)
    assert not comparison.notes[0].startswith("unexpected pass")


def test_compare_env_changed_counts_as_passed(expectations):
    results = parse_output("[ 15/481] test_grammar failed (env changed)\n")
    assert compare(results, expectations, complete=False).ok


def test_compare_stale_expectations_only_when_complete(expectations):
    results = {"test_os": result("failed")}
    assert compare(results, expectations, complete=False).notes == []
    comparison = compare(results, expectations, complete=True)
    assert comparison.ok
    assert comparison.notes == [
        "stale expectation: test_marshal (crashed) did not run",
        "stale expectation: test_tkinter (skipped) did not run",
    ]


def test_compare_on_parsed_output(expectations):
    comparison = compare(parse_output(REGRTEST_OUTPUT), expectations)
    assert comparison.unexpected == [
        "test_socket: expected passed, got skipped (resource denied) -- an unexpected skip can hide a regression",
        "test_y: expected passed, got crashed (timed out (15 min))",
        "test_z: expected passed, got skipped -- an unexpected skip can hide a regression",
    ]
    assert comparison.notes == []  # test_marshal crashed as expected; test_x passed with env changed


# --- the regrtest command and its runner -------------------------------------------------------------------


def test_regrtest_command():
    argv = regrtest.regrtest_command(Path("/b/python"), ["/a/python.sh"], jobs=2, timeout=900,
                                      tests=["test_os", "test_re"], extra=["-u", "none"])
    assert argv == ["/b/python", "-m", "test", "--python", "/a/python.sh", "-j2", "--timeout=900", "-u", "none",
                    "test_os", "test_re"]
    # A worker command of several words is one shell-quoted --python value (regrtest splits it with shlex).
    argv = regrtest.regrtest_command(Path("/b/python"), ["/v/python", "-m", "wasmbuild", "run", "/art dir", "--"],
                                      jobs=1, timeout=60, tests=[], extra=[])
    assert argv[4] == "/v/python -m wasmbuild run '/art dir' --"


def test_run_regrtest_with_a_fake_build_python(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    monkeypatch.setenv("PYTHONHOME", "/elsewhere")
    fake = tmp_path / "build-python"
    fake.write_text(textwrap.dedent("""\
        #!/bin/sh
        echo "== args: $*"
        echo "== env: PYTHONHASHSEED=$PYTHONHASHSEED PYTHONPATH=${PYTHONPATH-unset} PYTHONHOME=${PYTHONHOME-unset}"
        echo "== cwd: $(pwd)"
        echo "0:00:07 load avg: 1.23 [1/2] test_grammar passed"
        echo "test_os noise on stderr" >&2
        echo "0:00:09 load avg: 1.23 [2/2/1] test_os failed (1 error)"
        echo "Result: FAILURE"
        exit 2
        """))
    fake.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    log_file = tmp_path / "reports" / "regrtest.log"
    log_file.parent.mkdir()
    results, duration, code, argv = regrtest.run_regrtest(
        fake, [str(tmp_path / "python.sh")], work, jobs=2, timeout=60, tests=["test_grammar", "test_os"], extra=[],
        log_file=log_file)
    assert code == 2
    assert duration >= 0
    assert argv == regrtest.regrtest_command(fake, [str(tmp_path / "python.sh")], jobs=2, timeout=60,
                                              tests=["test_grammar", "test_os"], extra=[], tempdir=work / "regrtest")
    assert argv[6:8] == ["--timeout=60", f"--tempdir={work / 'regrtest'}"]
    assert results == {"test_grammar": {"status": "passed", "detail": ""},
                       "test_os": {"status": "failed", "detail": "failed (1 error)"}}
    text = log_file.read_text()
    assert (f"== args: -m test --python {tmp_path / 'python.sh'} -j2 --timeout=60 --tempdir={work / 'regrtest'} "
            "test_grammar test_os") in text
    assert "== env: PYTHONHASHSEED=0 PYTHONPATH=unset PYTHONHOME=unset" in text
    assert f"== cwd: {work}" in text
    assert "test_os noise on stderr" in text  # stderr goes to the log too
    out = capsys.readouterr().out
    # Only progress and summary lines are echoed.
    assert re.findall(r"^.*$", out, re.M)[:3] == ["0:00:07 load avg: 1.23 [1/2] test_grammar passed",
                                                  "0:00:09 load avg: 1.23 [2/2/1] test_os failed (1 error)",
                                                  "Result: FAILURE"]
    assert "== env" not in out


def worker_command(root, cache_root):
    """The worker command of the kind of the unpacked artifact at `root` (artifact.artifact_runtime)."""
    from wasmbuild.artifact import artifact_runtime

    return artifact_runtime(root).worker_command(cache_root)


def test_worker_command_for_emscripten_is_the_launcher(tmp_path):
    (tmp_path / "python.js").write_text("")
    with pytest.raises(UsageError, match="no python.sh launcher"):
        worker_command(tmp_path, tmp_path / "cache")
    (tmp_path / "python.sh").write_text("")
    assert worker_command(tmp_path, tmp_path / "cache") == ([str(tmp_path / "python.sh")], ["<artifact>/python.sh"])


def test_worker_command_for_wasi_preopens_the_host_root_and_passes_the_environment(tmp_path):
    import sys

    (tmp_path / "python.wasm").write_bytes(b"\0asm")
    cmd, shown = worker_command(tmp_path, tmp_path / "cache")
    assert cmd == [sys.executable, "-m", "wasmbuild", "run", "--cache-dir", str(tmp_path / "cache"), "--dir", "/::/",
                   "--inherit-env", "--env", "PATH=", "--private-lib", str(tmp_path), "--"]
    assert str(tmp_path) not in " ".join(shown) and shown[-2:] == ["<artifact>", "--"]


def test_run_inherit_env_passes_the_environment_but_not_the_host_paths(tmp_path, monkeypatch):
    from wasmbuild import artifact as artifacts
    from wasmbuild import cli

    seen = {}

    def fake_run_artifact(artifact, args, cache_root, *, dirs=None, env=None, node=None):
        seen.update(artifact=artifact, args=args, dirs=dirs, env=env)
        return 0

    monkeypatch.setattr(artifacts, "run_artifact", fake_run_artifact)
    monkeypatch.setenv("TMPDIR", "/tmp/regrtest-worker")
    monkeypatch.setenv("PYTHONPATH", "/host/lib")
    monkeypatch.setenv("GUARD", "caf\udce9")  # a value decoded with surrogateescape (non-UTF-8 host locale)
    argv = ["run", "--cache-dir", str(tmp_path), "--dir", "/::/", "--inherit-env", "--env", "TMPDIR=/x",
            str(tmp_path / "art"), "--", "-c", "pass"]
    assert cli.main(argv) == 0
    env = seen["env"]
    assert env["TMPDIR"] == "/x"  # --env wins over the inherited value
    assert "PATH" not in env and "PYTHONPATH" not in env
    assert env["GUARD"] == "caf\ufffd"
    assert seen["dirs"] == [(Path("/"), "/")] and seen["args"] == ["-c", "pass"]
    assert cli.main(argv[:5] + argv[6:]) == 0
    assert "TMPDIR" in seen["env"] and "GUARD" not in seen["env"]


def test_test_modules_left_out_of_the_artifact_are_named_from_the_stdlib_exclusions():
    from wasmbuild.checks.regrtest import left_out_tests

    exclude = ("idlelib", "tkinter", "test/test_tkinter", "test/test_ttk/", "test/test_idle.py", "ensurepip/_bundled",
               "test/support/x.py", "test/libregrtest")
    assert left_out_tests(exclude) == ["test_idle", "test_tkinter", "test_ttk"]
    assert left_out_tests(()) == []


# --- the rerun of unexpected failures ----------------------------------------------------------------------------


def test_an_unexpected_failure_that_passes_alone_is_flaky_and_keeps_its_first_result(expectations):
    results = {"test_grammar": result("failed", "failed (1 failure)"), "test_os": result("failed", "failed (1 error)"),
               "test_json": result("crashed", "Exit code 1")}
    asked = []

    def rerun(names):
        asked.append(names)
        return {"test_grammar": result("passed"), "test_json": result("failed", "failed (2 failures)")}

    assert regrtest.apply_rerun(results, expectations, rerun) == ["test_grammar"]
    assert asked == [["test_grammar", "test_json"]]  # test_os fails as expected: not rerun
    assert results["test_grammar"] == {"status": "passed", "detail": "", "first_run": "failed (failed (1 failure))"}
    assert results["test_json"]["status"] == "crashed"  # still failing: the first result stands
    comparison = compare(results, expectations)
    assert comparison.unexpected == ["test_json: expected passed, got crashed (Exit code 1)"]


def test_nothing_is_rerun_when_all_is_as_expected_or_too_much_failed(expectations):
    def rerun(names):
        raise AssertionError("no rerun expected")

    assert regrtest.apply_rerun({"test_os": result("failed")}, expectations, rerun) == []
    many = {f"test_m{i}": result("failed") for i in range(regrtest.MAX_RERUN + 1)}
    assert regrtest.apply_rerun(many, expectations, rerun) == []
