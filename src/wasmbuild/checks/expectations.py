"""Expectations files (tests/expectations/<target>-<X.Y>.yaml): every test module of CPython's suite that is
expected to fail, crash or be skipped on a target, each with its kind and reason, and the CI subset; the
comparison of a run's results with them. Read once per run, through the one data loader (schema.load_document).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wasmbuild.errors import RecipeError, UsageError
from wasmbuild.schema import Field, ListOf, MapOf, load_document

EXPECTATIONS_FORMAT = 1
KINDS = ("platform", "toolchain", "cpython", "wasmbuild", "environment")

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


@dataclass
class Expectations:
    file: Path | None
    failed: dict[str, dict[str, str]] = field(default_factory=dict)
    crashed: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)
    # The file's documented CI subset (None: it defines none).
    ci_subset: list[str] | None = None

    def expected(self, name: str) -> str:
        for status in ("failed", "crashed", "skipped"):
            if name in getattr(self, status):
                return status
        return "passed"

    def subset(self) -> list[str]:
        """The CI subset; a file without one is a usage error (run the whole suite instead)."""
        if not self.ci_subset:
            raise UsageError(f"{self.file} defines no ci_subset", hint="run the whole suite (--subset all)")
        return list(self.ci_subset)


def load_expectations(file: Path, python: str, target: str) -> Expectations:
    data = load_document(file, EXPECTATIONS_SCHEMA, EXPECTATIONS_FORMAT)
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
    return Expectations(file, **{s: dict(data.get(s) or {}) for s in ("failed", "crashed", "skipped")},
                        ci_subset=list(data["ci_subset"]) if data.get("ci_subset") else None)


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
