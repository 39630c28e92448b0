"""`wasmbuild matrix`: every recipe x target, each row run even when another fails, counts from the suite runs."""

from __future__ import annotations

import json

import pytest

from wasmbuild import cli, pipeline
from wasmbuild.checks import regrtest
from wasmbuild.checks.expectations import Comparison, Expectations
from wasmbuild.recipe import available_recipes, load_recipe, project_root


class FakeArtifact:
    """What pipeline.build returns, as far as the matrix reads it."""

    def __init__(self, archive):
        self.archive = archive
        self.build_python = type("BP", (), {"python": archive.parent / "python"})()
        self.record = type("R", (), {"to_json": lambda _: {"archive": archive.name}})()


def suite_run(tmp_path, counts, unexpected=()):
    return regrtest.SuiteRun(selection=["test_os"], counts=counts, comparison=Comparison(unexpected=list(unexpected)),
                             expectations=Expectations(tmp_path / "x.yaml"), results_file=tmp_path / "r.json",
                             log_file=tmp_path / "r.log")


def test_matrix_runs_every_row_and_reports_the_failures(tmp_path, monkeypatch):
    built, tested, smoked = [], [], []

    def fake_build(ctx, target):
        built.append((ctx.recipe.version, target.name))
        archive = tmp_path / "dist" / f"cpython-{ctx.recipe.version}-{ctx.target.triple}.tar.gz"
        archive.parent.mkdir(exist_ok=True)
        archive.write_bytes(f"{ctx.recipe.version} {target.name}".encode())
        return FakeArtifact(archive)

    def fake_test(ctx, archive, build_python, *, report_dir, jobs, timeout, subset, tests):
        tested.append((ctx.recipe.version, ctx.target.name, subset))
        counts = {"passed": 3, "failed": 1, "crashed": 0, "skipped": 2}
        failing = ctx.target.name == "wasi" and ctx.recipe.version == versions[0]
        return suite_run(tmp_path, counts, ["test_os: expected passed, got failed"] if failing else [])

    root = project_root()
    recipes = {v: load_recipe(f, root / "patches") for v, f in available_recipes(root).items()}
    versions = sorted((r.version for r in recipes.values()), key=lambda v: [int(p) for p in v.split(".")])
    expected_rows = [(r.version, t) for r in sorted(recipes.values(), key=lambda r: [int(p) for p in
                                                                                   r.version.split(".")])
                     for t in r.targets]
    monkeypatch.setattr(pipeline, "build", fake_build)
    monkeypatch.setattr("wasmbuild.release.matrix.smoke_test",
                        lambda archive, cache_root, recipe, options: smoked.append((recipe.version, options.name)))
    monkeypatch.setattr(regrtest, "run_suite", fake_test)
    released = []
    monkeypatch.setattr("wasmbuild.release.matrix.write_release",
                        lambda dist, rows: released.extend(rows) or dist / "release.json")
    reports = tmp_path / "reports"
    reports.mkdir()
    # A stale results file from an earlier run is never reported as this run's.
    (reports / "cpython-0.0.0-x-tests.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(cli.main(["matrix", "--cache-dir", str(tmp_path / "cache"), "--subset", "ci",
                                   "--report-dir", str(reports), "--dist-dir", str(tmp_path / "dist")]))
    assert exit_info.value.code != 0
    assert built == expected_rows
    assert smoked == built  # every row's artifact is smoke-tested after its build
    assert [(v, t) for v, t, _ in tested] == expected_rows and {s for *_, s in tested} == {"ci"}
    matrix = json.loads((reports / "matrix.json").read_text())
    rows = {(r["python"], r["target"]): r for r in matrix["rows"]}
    assert rows[(versions[0], "wasi")]["result"].startswith("error: 1 test modules")
    assert all(r["result"] == "ok" for k, r in rows.items() if k != (versions[0], "wasi"))
    assert all(r["tests"] == {"selection": "ci subset", "passed": 3, "failed": 1, "crashed": 0, "skipped": 2}
               for r in rows.values())
    # The rows that passed, and only those, go into the release (SBOMs and release.json).
    assert sorted(name for _, name, _ in released) == sorted(r["artifact"] for k, r in rows.items()
                                                             if k != (versions[0], "wasi"))
    assert all(rec == {"archive": name} and tests["passed"] == 3 for rec, name, tests in released)


def test_matrix_can_be_limited_to_one_version_and_target(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(pipeline, "build", lambda ctx, t: seen.append((ctx.recipe.version, t.name)) or
                        FakeArtifact(tmp_path / "a.tar.gz"))
    monkeypatch.setattr("wasmbuild.release.matrix.smoke_test", lambda *a: None)
    (tmp_path / "a.tar.gz").write_bytes(b"x")
    monkeypatch.setattr(regrtest, "run_suite", lambda *a, **k: suite_run(tmp_path, dict.fromkeys(regrtest.STATUSES, 0)))
    monkeypatch.setattr("wasmbuild.release.matrix.write_release", lambda dist, rows: dist / "release.json")
    newest = max(available_recipes(project_root()), key=lambda v: [int(p) for p in v.split(".")])
    assert cli.main(["matrix", "--cache-dir", str(tmp_path / "c"), "--python", newest, "--target", "emscripten",
                     "--report-dir", str(tmp_path / "r")]) == 0
    assert len(seen) == 1 and seen[0][1] == "emscripten" and seen[0][0].startswith(newest)
