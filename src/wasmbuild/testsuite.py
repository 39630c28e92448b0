"""CPython's own test suite (regrtest) against a built artifact, compared with an expectations file.

The native build-python of the same version drives regrtest; its workers run the artifact (`--python`,
through the artifact's launcher). Each test module's outcome is read from regrtest's progress lines and
written as JSON. tests/expectations/<target>-<X.Y>.yaml lists every module expected to fail, crash or be
skipped, each with its reason; anything else must pass.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmbuild import log
from wasmbuild.errors import RecipeError, WasmbuildError
from wasmbuild.schema import Field, ListOf, MapOf, load_yaml, validate

RESULT_FORMAT = 1
EXPECTATIONS_FORMAT = 1
STATUSES = ("passed", "failed", "crashed", "skipped")
KINDS = ("platform", "toolchain", "cpython", "wasmbuild", "environment")

# "0:01:02 load avg: 1.23 [ 12/481/1] test_x failed (2 errors) (31.2 sec) -- running (1): ..."
PROGRESS = re.compile(r"\[\s*\d+/\d+(?:/\d+)?\]\s+(test[\w.]*)\s+(.*?)(?:\s+--\s+running.*)?$")
SKIP_REASON = re.compile(r"^(test[\w.]*) skipped -- (.*)$")

ENTRY = {"kind": str, "reason": str, "link": Field(str, required=False)}
EXPECTATIONS_SCHEMA = {
    "format": int,
    "python": str,
    "target": str,
    "failed": Field(MapOf(ENTRY), required=False),
    "crashed": Field(MapOf(ENTRY), required=False),
    "skipped": Field(MapOf(ENTRY), required=False),
    # The fixed, representative selection CI runs when the whole suite does not fit its time.
    "ci_subset": Field(ListOf(str), required=False),
}


class TestSuiteError(WasmbuildError):
    exit_code = 12


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


@dataclass
class Expectations:
    file: Path | None
    failed: dict[str, dict[str, str]] = field(default_factory=dict)
    crashed: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)

    def expected(self, name: str) -> str:
        for status in ("failed", "crashed", "skipped"):
            if name in getattr(self, status):
                return status
        return "passed"


def load_expectations(file: Path, python: str, target: str) -> Expectations:
    data = load_yaml(file)
    validate(data, EXPECTATIONS_SCHEMA, file)
    if data["format"] != EXPECTATIONS_FORMAT:
        raise RecipeError(f"{file}: format: unsupported format {data['format']}")
    if data["python"] != python or data["target"] != target:
        raise RecipeError(f"{file}: is for {data['target']} {data['python']}, not {target} {python}")
    seen: dict[str, str] = {}
    for status in ("failed", "crashed", "skipped"):
        for name, entry in (data.get(status) or {}).items():
            where = f"{file}: {status}.{name}"
            if name in seen:
                raise RecipeError(f"{where}: also listed under {seen[name]}")
            seen[name] = status
            if entry["kind"] not in KINDS:
                raise RecipeError(f"{where}.kind: '{entry['kind']}' is not one of {', '.join(KINDS)}")
            if not entry["reason"].strip():
                raise RecipeError(f"{where}.reason: every expectation names its reason")
            if entry["kind"] in {"toolchain", "cpython"} and not entry.get("link"):
                raise RecipeError(f"{where}.link: a {entry['kind']} bug needs a link to its report")
    return Expectations(file, **{s: dict(data.get(s) or {}) for s in ("failed", "crashed", "skipped")})


@dataclass
class Comparison:
    unexpected: list[str] = field(default_factory=list)  # failures: fail the session
    notes: list[str] = field(default_factory=list)  # unexpected passes, stale entries: reported

    @property
    def ok(self) -> bool:
        return not self.unexpected


def compare(results: dict[str, dict[str, str]], exp: Expectations, complete: bool = True) -> Comparison:
    """A module must end as expected; better than expected is reported, worse fails."""
    out = Comparison()
    for name in sorted(results):
        actual = results[name]["status"]
        expected = exp.expected(name)
        detail = results[name].get("detail") or results[name].get("reason") or ""
        if actual == expected:
            continue
        label = f"{name}: expected {expected}, got {actual}" + (f" ({detail})" if detail else "")
        if actual in {"failed", "crashed"} and not (expected == "crashed" and actual == "failed"):
            out.unexpected.append(label)
        elif actual == "skipped":
            out.unexpected.append(label + " -- an unexpected skip can hide a regression")
        else:
            what = "unexpected pass" if actual in {"passed", "skipped"} or expected == "skipped" else "improvement"
            out.notes.append(f"{what}: {label} -- update {exp.file.name if exp.file else 'expectations'}")
    if complete:
        for status in ("failed", "crashed", "skipped"):
            for name in sorted(getattr(exp, status)):
                if name not in results:
                    out.notes.append(f"stale expectation: {name} ({status}) did not run")
    return out


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
    log.echo_command(argv, work)
    # Every temporary file of the run (the driver's and the workers') stays under `work`, which the caller
    # removes: a test that leaves an undeletable tree behind (test_tarfile's path-length attack) cannot litter /tmp.
    env = {**os.environ, "PYTHONHASHSEED": "0", "TMPDIR": str(work)}
    for var in ("PYTHONHOME", "PYTHONPATH"):
        env.pop(var, None)
    start = time.monotonic()
    output: list[str] = []
    with open(log_file, "w") as logf:
        proc = subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                logf.write(line)
                output.append(line)
                if PROGRESS.search(line) or line.startswith(("== Tests result", "Total duration", "Result:")):
                    sys.stdout.write(line)
                    sys.stdout.flush()
            code = proc.wait()
        except BaseException:
            proc.terminate()
            proc.wait()
            raise
    return parse_output("".join(output)), time.monotonic() - start, code, argv


def write_results(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
