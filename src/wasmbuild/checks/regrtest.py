"""CPython's own test suite (regrtest) against a packaged artifact, compared with its expectations file.

The native build-python of the same version drives regrtest; its workers run the artifact (`--python`, the
worker command of the artifact's kind: artifact.Runtime.worker_command). Each test module's outcome is read from
regrtest's progress lines, written as JSON to the report directory, and compared with
tests/expectations/<target>-<X.Y>.yaml (checks/expectations.py).
`run_suite` returns the counts and the comparison; `SuiteRun.check()` turns unexpected results into an error.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wasmbuild import cache, log
from wasmbuild.artifact import artifact_runtime, unpack_artifact
from wasmbuild.checks.expectations import Comparison, Expectations, compare, load_expectations
from wasmbuild.errors import TestSuiteError, UsageError
from wasmbuild.files import write_json
from wasmbuild.process import stream
from wasmbuild.steps import Context

RESULT_FORMAT = 1
STATUSES = ("passed", "failed", "crashed", "skipped")

# "0:01:02 load avg: 1.23 [ 12/481/1] test_x failed (2 errors) (31.2 sec) -- running (1): ..."
PROGRESS = re.compile(r"\[\s*\d+/\d+(?:/\d+)?\]\s+(test[\w.]*)\s+(.*?)(?:\s+--\s+running.*)?$")
SKIP_REASON = re.compile(r"^(test[\w.]*) skipped -- (.*)$")

def classify(text: str) -> tuple[str, str]:
    """(status, detail) for the text after the test name in a regrtest progress line."""
    text = text.strip()
    detail = text
    if text.startswith("passed"):
        return "passed", ""
    if text.startswith("skipped (resource denied)"):
        return "skipped", "resource denied"
    if text.startswith(("skipped", "ran no tests")):
        return "skipped", ""
    if text.startswith("failed (env changed)"):
        return "passed", "env changed"
    if text.startswith("failed"):
        return "failed", detail
    if text.startswith(("worker non-zero exit code", "worker bug", "timed out", "interrupted", "process crashed")):
        return "crashed", detail
    return "crashed", f"unrecognised result: {detail}"


def parse_output(text: str) -> dict[str, dict[str, str]]:
    """Per test module: {"status": ..., "detail": ..., "reason": ...} from regrtest's output."""
    results: dict[str, dict[str, str]] = {}
    reasons: dict[str, str] = {}
    for line in text.splitlines():
        line = line.rstrip()
        if m := SKIP_REASON.match(line.strip()):
            reasons.setdefault(m.group(1), m.group(2).strip())
            continue
        if m := PROGRESS.search(line):
            name, rest = m.group(1), m.group(2)
            status, detail = classify(rest)
            results[name] = {"status": status, "detail": detail}
    for name, reason in reasons.items():
        if name in results and results[name]["status"] == "skipped":
            results[name]["reason"] = reason
    return results


def counts(results: dict[str, dict[str, str]]) -> dict[str, int]:
    c = {s: 0 for s in STATUSES}
    for r in results.values():
        c[r["status"]] += 1
    return c


def regrtest_command(build_python: Path, python_cmd: list[str], *, jobs: int, timeout: int, tests: list[str],
                     extra: list[str], tempdir: Path | None = None) -> list[str]:
    """The native build-python runs regrtest; its workers run `python_cmd` (the artifact) for each test module.
    `tempdir`: regrtest's --tempdir (a build-python in its build tree otherwise puts test files under that tree;
    3.11 ignores TMPDIR there)."""
    return [str(build_python), "-m", "test", "--python", shlex.join(python_cmd), f"-j{jobs}", f"--timeout={timeout}",
            *([f"--tempdir={tempdir}"] if tempdir else []), *extra, *tests]


def run_regrtest(build_python: Path, python_cmd: list[str], work: Path, *, jobs: int, timeout: int, tests: list[str],
                 extra: list[str], log_file: Path) -> tuple[dict[str, dict[str, str]], float, int, list[str]]:
    argv = regrtest_command(build_python, python_cmd, jobs=jobs, timeout=timeout, tests=tests, extra=extra,
                            tempdir=work / "regrtest")
    # Every temporary file of the run (the driver's and the workers') stays under `work`, which the caller
    # removes: a test that leaves an undeletable tree behind (test_tarfile's path-length attack) cannot litter /tmp.
    env = {**os.environ, "PYTHONHASHSEED": "0", "TMPDIR": str(work)}
    for var in ("PYTHONHOME", "PYTHONPATH"):
        env.pop(var, None)
    start = time.monotonic()
    output: list[str] = []
    with open(log_file, "w") as logf, stream(argv, cwd=work, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            logf.write(line)
            output.append(line)
            if PROGRESS.search(line) or line.startswith(("== Tests result", "Total duration", "Result:")):
                sys.stdout.write(line)
                sys.stdout.flush()
        code = proc.wait()
    return parse_output("".join(output)), time.monotonic() - start, code, argv




# A test module that fails unexpectedly is run once more, alone (-j1): one that then ends as expected is reported
# as flaky (its first result kept in the results), not as a failure. More failures than this are not rerun: that
# is a broken artifact, not a flaky test.
MAX_RERUN = 5


def unexpected_failures(results: dict[str, dict[str, str]], exp: Expectations) -> list[str]:
    """The modules that failed or crashed where the expectations say they end otherwise."""
    return sorted(n for n, r in results.items() if r["status"] in {"failed", "crashed"}
                  and exp.expected(n) != r["status"] and not (exp.expected(n) == "crashed" and r["status"] == "failed"))


def apply_rerun(results: dict[str, dict[str, str]], exp: Expectations,
                rerun: Callable[[list[str]], dict[str, dict[str, str]]]) -> list[str]:
    """Rerun the unexpected failures (at most MAX_RERUN of them) with `rerun`; a module that then ends as expected
    takes its rerun result, with `first_run` saying how it ended first. Returns those flaky modules."""
    failing = unexpected_failures(results, exp)
    if not failing or len(failing) > MAX_RERUN:
        return []
    again = rerun(failing)
    flaky = []
    for n in failing:
        if n in again and again[n]["status"] == exp.expected(n):
            first = results[n]
            results[n] = {**again[n], "first_run": f"{first['status']} ({first.get('detail', '')})".replace(" ()", "")}
            flaky.append(n)
    return flaky


def expectations_file(ctx: Context) -> Path:
    return ctx.root / "tests" / "expectations" / f"{ctx.target.name}-{ctx.recipe.short_version}.yaml"


def results_name(version: str, triple: str) -> str:
    """The stem of a run's results (.json) and log (.log) in the report directory."""
    return f"cpython-{version}-{triple}-tests"


def left_out_tests(stdlib_exclude: tuple[str, ...]) -> list[str]:
    """Test modules (test/test_x or test/test_x.py in the recipe's stdlib.exclude) that the artifact lacks."""
    names = []
    for entry in stdlib_exclude:
        parts = entry.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "test" and parts[1].startswith("test_"):
            names.append(parts[1].removesuffix(".py"))
    return sorted(names)


@dataclass
class SuiteRun:
    """One regrtest run: its counts per status, the comparison with the expectations, where the results went."""

    selection: list[str] | str  # the test modules run, or "all"
    counts: dict[str, int]
    comparison: Comparison
    expectations: Expectations
    results_file: Path
    log_file: Path

    @property
    def ok(self) -> bool:
        return self.comparison.ok

    def check(self) -> None:
        """TestSuiteError when a test module did not end as the expectations file says."""
        if self.comparison.ok:
            return
        name = self.expectations.file.name if self.expectations.file else "the expectations"
        raise TestSuiteError(
            f"{len(self.comparison.unexpected)} test modules did not end as {name} expects:\n"
            + "\n".join(f"  - {u}" for u in self.comparison.unexpected),
            hint=f"fix the cause, or record it in {self.expectations.file} with its kind and reason; "
                 f"log: {self.log_file}",
        )


def run_suite(ctx: Context, archive: Path, build_python: Path, *, report_dir: Path, jobs: int,
              timeout: int, subset: str, tests: list[str]) -> SuiteRun:
    """Run regrtest on `archive` (driven by `build_python`), write the results to `report_dir`, compare them
    with the expectations. Unexpected results are in the returned run (see SuiteRun.check), not raised."""
    exp_file = expectations_file(ctx)
    if not exp_file.is_file():
        raise UsageError(f"no expectations file for {ctx.target.name} {ctx.recipe.short_version}: {exp_file}",
                         hint="create it: every expected failure, crash or skip with its kind and reason")
    exp = load_expectations(exp_file, ctx.recipe.short_version, ctx.target.name)
    selected = list(tests) or (exp.subset() if subset == "ci" else [])
    # Test modules the recipe leaves out of the artifact (stdlib.exclude) are not run: the build-python's
    # regrtest lists its own copy of Lib/test.
    absent = left_out_tests(ctx.recipe.stdlib_exclude)
    extra = ["-x", *absent] if absent and not selected else []
    selected = [t for t in selected if t not in absent]
    root = unpack_artifact(archive, ctx.cache)
    python_cmd, shown = artifact_runtime(root).worker_command(ctx.cache)
    name = results_name(ctx.recipe.version, ctx.target.triple)
    report_dir.mkdir(parents=True, exist_ok=True)
    log_file = report_dir / f"{name}.log"
    what = "all test modules" if not selected else f"{len(selected)} test modules"
    title = f"regrtest: {what} of CPython {ctx.recipe.version} on {ctx.target.triple}, -j{jobs} (log: {log_file})"
    with log.step(title), tempfile.TemporaryDirectory(prefix="wasmbuild-regrtest-") as tmp:
        results, duration, code, _argv = run_regrtest(build_python, python_cmd, Path(tmp), jobs=jobs,
                                                     timeout=timeout, tests=selected, extra=extra,
                                                     log_file=log_file)
    if not results:
        raise TestSuiteError(f"regrtest ran no test modules (exit {code}); see {log_file}")
    rerun_log = report_dir / f"{name}-rerun.log"
    rerun_log.unlink(missing_ok=True)

    def rerun(failing: list[str]) -> dict[str, dict[str, str]]:
        with log.step(f"regrtest: {', '.join(failing)} once more, alone (log: {rerun_log})"), \
                tempfile.TemporaryDirectory(prefix="wasmbuild-regrtest-") as tmp2:
            again, *_ = run_regrtest(build_python, python_cmd, Path(tmp2), jobs=1, timeout=timeout, tests=failing,
                                     extra=[], log_file=rerun_log)
        return again

    flaky = apply_rerun(results, exp, rerun)
    comparison = compare(results, exp, complete=not selected)
    comparison.notes.extend(f"flaky: {n} ended {results[n]['first_run']} first and {results[n]['status']} when "
                            f"run again alone (log: {rerun_log})" for n in flaky)
    c = counts(results)
    expected_failures = sum(1 for n, r in results.items() if r["status"] in {"failed", "crashed"}
                            and exp.expected(n) == r["status"])
    data = {
        "format": RESULT_FORMAT,
        "python": ctx.recipe.version,
        "target": {"name": ctx.target.name, "triple": ctx.target.triple},
        "artifact": {"name": archive.name, "sha256": cache.sha256_file(archive)},
        "expectations": exp_file.relative_to(ctx.root).as_posix(),
        "command": regrtest_command(Path("<build-python>"), shown, jobs=jobs, timeout=timeout, tests=selected,
                                    extra=extra, tempdir=Path("<work>/regrtest")),
        "selection": selected or "all",
        "not_in_artifact": absent,
        "jobs": jobs,
        "timeout": timeout,
        "duration_s": round(duration, 1),
        "regrtest_exit": code,
        "counts": c,
        "tests": {n: {**r, "expected": exp.expected(n)} for n, r in sorted(results.items())},
        "unexpected": comparison.unexpected,
        "flaky": flaky,
        "notes": comparison.notes,
    }
    out = report_dir / f"{name}.json"
    write_json(out, data)
    log.info(f"  {len(results)} test modules in {duration / 60:.1f} min: {c['passed']} passed, {c['failed']} failed, "
             f"{c['crashed']} crashed, {c['skipped']} skipped; {expected_failures} failures/crashes expected")
    log.info(f"  results: {out}")
    for note in comparison.notes:
        log.info(f"  note: {note}")
    if comparison.ok:
        log.info(f"✓ every test module ended as {exp_file.name} expects")
    return SuiteRun(selection=selected or "all", counts=c, comparison=comparison, expectations=exp,
                    results_file=out, log_file=log_file)
