"""`wasmbuild matrix`: every supported CPython version x target (or a selection): build, smoke test, test suite.
One row each, every row run even when another fails; the rows go to reports/matrix.json and a table. The rows that
passed go into the release: an SBOM per artifact and dist/release.json (wasmbuild.release.index), listed in
SHA256SUMS."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmbuild import cache, log, pipeline
from wasmbuild.checks import regrtest
from wasmbuild.checks.smoke import smoke_test
from wasmbuild.errors import WasmbuildError
from wasmbuild.files import write_json
from wasmbuild.recipe import Recipe, available_recipes, project_root, select_recipe
from wasmbuild.release.index import SBOM_SUFFIX, entry, wasmbuild_commit, write_index
from wasmbuild.release.sbom import licenses_from_project, write_sbom
from wasmbuild.release.sums import update_sha256sums
from wasmbuild.steps import BuildOptions
from wasmbuild.targets import get_target


@dataclass(frozen=True)
class SuiteOptions:
    jobs: int
    timeout: int
    subset: str  # "all" or "ci"


def matrix_recipes(python: str | None) -> list[Recipe]:
    """The recipes of the matrix: every supported CPython version, oldest first, or only `python` (X.Y or X.Y.Z)."""
    root = project_root()
    versions = [python] if python else sorted(available_recipes(root), key=lambda v: [int(p) for p in v.split(".")])
    return [select_recipe(root, version) for version in versions]


def run_matrix(recipes: list[Recipe], targets: list[str] | None, options: BuildOptions, *, report_dir: Path,
               suite: SuiteOptions) -> list[dict[str, Any]]:
    """Build, smoke-test and test each recipe x target (`targets`: only these) with `options` into options.dist
    (a row's errors fail that row). Returns the rows; raises WasmbuildError naming the failed rows."""
    dist = options.dist
    rows = []
    released: list[tuple[dict[str, Any], str, dict[str, Any]]] = []  # (record, archive name, test counts)
    start = time.monotonic()
    for recipe in recipes:
        for target_name in recipe.targets:
            if targets and target_name not in targets:
                continue
            row: dict[str, Any] = {"python": recipe.version, "target": target_name,
                                   "triple": recipe.targets[target_name].triple}
            t0 = time.monotonic()
            log.info(f"━━ matrix: CPython {recipe.version} for {target_name}")
            # An older run's results for this row are never left to look like this run's.
            (report_dir / f"{regrtest.results_name(recipe.version, row['triple'])}.json").unlink(missing_ok=True)
            try:
                ctx = options.context(recipe, target_name)
                target = get_target(target_name)
                artifact = pipeline.build(ctx, target)
                smoke_test(artifact.archive, ctx.cache, ctx.recipe, ctx.target)
                row["artifact"] = artifact.archive.name
                row["sha256"] = cache.sha256_file(artifact.archive)
                run = regrtest.run_suite(ctx, artifact.archive, artifact.build_python.python,
                                         report_dir=report_dir, jobs=suite.jobs, timeout=suite.timeout,
                                         subset=suite.subset, tests=[])
                row["tests"] = {"selection": "all" if run.selection == "all" else "ci subset", **run.counts}
                run.check()
                row["result"] = "ok"
                released.append((artifact.record.to_json(), artifact.archive.name, row["tests"]))
            except WasmbuildError as exc:
                row["result"] = f"error: {str(exc).splitlines()[0]}"
                log.info(f"error: {exc}")
            row["minutes"] = round((time.monotonic() - t0) / 60, 1)
            rows.append(row)
    if released:
        index = write_release(dist, released)
        log.info(f"release: {index} and {len(released)} SBOM(s), listed in {dist / 'SHA256SUMS'}")
    write_json(report_dir / "matrix.json", {"rows": rows, "subset": suite.subset,
                                            "minutes": round((time.monotonic() - start) / 60, 1)})
    log.info("")
    log.info(f"{'CPython':<9} {'target':<11} {'result':<7} {'tests (passed/failed/crashed/skipped)':<40} minutes")
    for r in rows:
        t = r.get("tests")
        counts = f"{t['passed']}/{t['failed']}/{t['crashed']}/{t['skipped']} ({t['selection']})" if t else "-"
        log.info(f"{r['python']:<9} {r['target']:<11} {r['result'][:7]:<7} {counts:<40} {r['minutes']}")
    log.info(f"matrix: {report_dir / 'matrix.json'}; artifacts and one SHA256SUMS in {dist}")
    failed = [r for r in rows if r["result"] != "ok"]
    if failed:
        raise WasmbuildError(f"{len(failed)} of {len(rows)} matrix rows failed: "
                             + ", ".join(f"{r['python']} {r['target']}" for r in failed))
    return rows


def write_release(dist: Path, released: list[tuple[dict[str, Any], str, dict[str, Any]]]) -> Path:
    """An SBOM per released artifact, the release index over them, then SHA256SUMS (listing both)."""
    root = project_root()
    licenses = licenses_from_project(root)
    entries = []
    for record, archive, tests in released:
        write_sbom(record, dist / archive, dist / (archive.removesuffix(".tar.gz") + SBOM_SUFFIX), licenses)
        entries.append(entry(dist, record, archive, tests))
    index = write_index(dist, entries, wasmbuild_commit(root))
    update_sha256sums(dist)
    return index
