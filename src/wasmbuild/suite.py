"""`wasmbuild test`: CPython's test suite against the packaged artifact, results in reports/, compared with
tests/expectations/<target>-<X.Y>.yaml."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from wasmbuild import cache, log
from wasmbuild.build import Context
from wasmbuild.errors import UsageError
from wasmbuild.runner import is_node_artifact, unpack_artifact
from wasmbuild.schema import ListOf, load_yaml
from wasmbuild.testsuite import (
    RESULT_FORMAT,
    TestSuiteError,
    compare,
    counts,
    load_expectations,
    regrtest_command,
    run_regrtest,
    write_results,
)


def expectations_file(ctx: Context) -> Path:
    return ctx.root / "tests" / "expectations" / f"{ctx.target.name}-{ctx.recipe.short_version}.yaml"


def ci_subset(file: Path) -> list[str]:
    data = load_yaml(file)
    subset = data.get("ci_subset")
    if not subset:
        raise UsageError(f"{file} defines no ci_subset", hint="run the whole suite (--subset all)")
    from wasmbuild.schema import validate

    validate({"ci_subset": subset}, {"ci_subset": ListOf(str)}, file)
    return list(subset)


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


def worker_command(root: Path, cache_root: Path) -> tuple[list[str], list[str]]:
    """How regrtest's workers run the unpacked artifact at `root`, and the same with neutral names for the record.

    Emscripten: the artifact's python.sh (node with NODERAWFS sees the host's files). WASI: wasmbuild's own
    wasmtime runner with the host's / preopened as the guest's / (so the paths regrtest hands its workers mean
    the same inside), a private linked copy of the artifact's lib/ at /lib (guests write bytecode and test files
    there: a worker listing a directory while another writes to it could miss entries) and the worker's
    environment (TMPDIR) passed in."""
    if is_node_artifact(root):
        launcher = root / "python.sh"
        if not launcher.is_file():
            raise UsageError(f"{root} has no python.sh launcher")
        return [str(launcher)], ["<artifact>/python.sh"]
    options = ["--dir", "/::/", "--inherit-env", "--private-lib"]
    return ([sys.executable, "-m", "wasmbuild", "run", "--cache-dir", str(cache_root), *options, str(root), "--"],
            ["<python>", "-m", "wasmbuild", "run", *options, "<artifact>", "--"])


def test_artifact(ctx: Context, archive: Path, *, report_dir: Path, jobs: int, timeout: int, subset: str,
                  tests: list[str]) -> int:
    exp_file = expectations_file(ctx)
    if not exp_file.is_file():
        raise UsageError(f"no expectations file for {ctx.target.name} {ctx.recipe.short_version}: {exp_file}",
                         hint="create it: every expected failure, crash or skip with its kind and reason")
    exp = load_expectations(exp_file, ctx.recipe.short_version, ctx.target.name)
    selected = list(tests) or (ci_subset(exp_file) if subset == "ci" else [])
    # Test modules the recipe leaves out of the artifact (stdlib.exclude) are not run: the build-python's
    # regrtest lists its own copy of Lib/test.
    absent = left_out_tests(ctx.recipe.stdlib_exclude)
    extra = ["-x", *absent] if absent and not selected else []
    selected = [t for t in selected if t not in absent]
    root = unpack_artifact(archive, ctx.cache)
    python_cmd, shown = worker_command(root, ctx.cache)
    bp = Path(ctx.state["build_python"]["path"])
    name = results_name(ctx.recipe.version, ctx.target.triple)
    report_dir.mkdir(parents=True, exist_ok=True)
    log_file = report_dir / f"{name}.log"
    what = "all test modules" if not selected else f"{len(selected)} test modules"
    title = f"regrtest: {what} of CPython {ctx.recipe.version} on {ctx.target.triple}, -j{jobs} (log: {log_file})"
    with log.step(title), tempfile.TemporaryDirectory(prefix="wasmbuild-regrtest-") as tmp:
        results, duration, code, _argv = run_regrtest(bp, python_cmd, Path(tmp), jobs=jobs, timeout=timeout,
                                                     tests=selected, extra=extra, log_file=log_file)
    if not results:
        raise TestSuiteError(f"regrtest ran no test modules (exit {code}); see {log_file}")
    comparison = compare(results, exp, complete=not selected)
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
        "notes": comparison.notes,
    }
    out = report_dir / f"{name}.json"
    write_results(out, data)
    log.info(f"  {len(results)} test modules in {duration / 60:.1f} min: {c['passed']} passed, {c['failed']} failed, "
             f"{c['crashed']} crashed, {c['skipped']} skipped; {expected_failures} failures/crashes expected")
    log.info(f"  results: {out}")
    for note in comparison.notes:
        log.info(f"  note: {note}")
    if not comparison.ok:
        raise TestSuiteError(
            f"{len(comparison.unexpected)} test modules did not end as {exp_file.name} expects:\n"
            + "\n".join(f"  - {u}" for u in comparison.unexpected),
            hint=f"fix the cause, or record it in {exp_file} with its kind and reason; log: {log_file}",
        )
    log.info(f"✓ every test module ended as {exp_file.name} expects")
    return 0
