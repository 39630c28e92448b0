"""The GitHub Actions workflows (.github/workflows/) held to the repository: actionlint (`nox -s lint`) checks their
syntax, expressions and scripts; these tests check what it cannot know — the nox sessions they run exist, they run
what .ci/run runs, actions are pinned, the CI cache is keyed by the inputs and the release compares two builds."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import yaml

from wasmbuild.names import TARGET_NAMES
from wasmbuild.recipe import available_recipes

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
# `nox [options] -s NAME` (or --session NAME, --sessions=NAME) within one command of a `run:` script.
NOX_SESSION = re.compile(r"\bnox\b[^\n;&|]*?\s(?:-s|--sessions?)(?:\s+|=)([\w-]+)")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(?:/[\w./-]+)?@v\d+(?:\.\d+){0,2}$")


def noxfile_sessions() -> set[str]:
    """Every session noxfile.py defines: the `name=` of its @nox.session(...), else the function's name."""
    names = set()
    for node in ast.parse((ROOT / "noxfile.py").read_text()).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            if ast.unparse(call.func if call else decorator) != "nox.session":
                continue
            name = node.name
            for kw in call.keywords if call else []:
                if kw.arg == "name" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    name = kw.value.value
            names.add(name)
    return names


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict), name
    return data


def workflows() -> dict[str, dict[str, Any]]:
    found = {p.name: load(p.name) for p in sorted(WORKFLOWS.glob("*.y*ml"))}
    assert {"ci.yml", "release.yml"} <= set(found)
    return found


def steps(workflow: dict[str, Any], job: str | None = None) -> list[dict[str, Any]]:
    jobs = [workflow["jobs"][job]] if job else list(workflow["jobs"].values())
    return [step for j in jobs for step in j.get("steps", [])]


def runs(workflow: dict[str, Any], job: str | None = None) -> list[str]:
    return [step["run"] for step in steps(workflow, job) if "run" in step]


def sessions_run(workflow: dict[str, Any], job: str | None = None) -> list[str]:
    return [name for script in runs(workflow, job) for name in NOX_SESSION.findall(script)]


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    return on if isinstance(on, dict) else {event: None for event in ([on] if isinstance(on, str) else on)}


def test_sessions_are_read_from_the_noxfile():
    assert {"lint", "unit", "tests", "release", "build-wasi", "test-emscripten"} <= noxfile_sessions()


def test_every_nox_session_a_workflow_runs_is_defined():
    defined = noxfile_sessions()
    named = {(file, s) for file, wf in workflows().items() for s in sessions_run(wf)}
    assert named, "no workflow runs a nox session"
    assert sorted((file, s) for file, s in named if s not in defined) == []


def test_ci_runs_the_sessions_of_ci_run():
    script = (ROOT / ".ci" / "run").read_text()
    ci_run = {m for line in script.splitlines() if "nox" in line for m in re.findall(r"\s-s\s+([\w-]+)", line)}
    assert ci_run == {"lint", "unit", "tests", "release"}
    assert set(sessions_run(load("ci.yml"))) == ci_run


def test_ci_triggers_and_permissions():
    ci = load("ci.yml")
    assert {"push", "pull_request"} <= set(triggers(ci))
    assert ci["permissions"] == {"contents": "read"}


def test_ci_release_matrix_is_every_recipe_and_target():
    job = load("ci.yml")["jobs"]["release"]
    matrix = job["strategy"]["matrix"]
    assert sorted(matrix["python"]) == sorted(available_recipes(ROOT))
    assert sorted(matrix["target"]) == sorted(TARGET_NAMES)
    command = "nox -s release -- --python ${{ matrix.python }} --target ${{ matrix.target }} --subset ci"
    assert [r.strip() for r in runs(load("ci.yml"), "release") if "nox -s" in r] == [command]


def test_every_action_is_pinned_to_a_version_tag():
    uses = [(file, step["uses"]) for file, wf in workflows().items() for step in steps(wf) if "uses" in step]
    assert uses
    assert [(file, u) for file, u in uses if not PINNED.match(u)] == []
    # One version of each action across the workflows.
    versions: dict[str, set[str]] = {}
    for _, u in uses:
        action, _, version = u.partition("@")
        versions.setdefault(action, set()).add(version)
    assert {a: v for a, v in versions.items() if len(v) > 1} == {}


def cache_steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, step) for name, job in workflow["jobs"].items() for step in job.get("steps", [])
            if str(step.get("uses", "")).startswith("actions/cache@")]


def test_ci_cache_is_the_wasmbuild_cache_keyed_by_recipes_and_toolchains():
    ci = load("ci.yml")
    cached = cache_steps(ci)
    assert {job for job, _ in cached} == {"tests", "release"}
    for job, step in cached:
        key = step["with"]["key"]
        (hashed,) = re.findall(r"hashFiles\(([^)]*)\)", key)
        assert {"'recipes/**'", "'toolchains/**'"} <= {a.strip() for a in hashed.split(",")}, job
        assert "runner.os" in key, job
        # The directory cached is the one wasmbuild uses.
        path = step["with"]["path"].strip()
        assert any(f"WASMBUILD_CACHE_DIR=$GITHUB_WORKSPACE/{path}" in r for r in runs(ci, job)), job
    (release_key,) = [step["with"]["key"] for job, step in cached if job == "release"]
    assert "matrix.python" in release_key and "matrix.target" in release_key


def test_ci_uploads_reports_and_dist():
    ci = load("ci.yml")
    for job in ("tests", "release"):
        uploads = [s for s in steps(ci, job) if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
        assert uploads, job
        paths = {line.strip().rstrip("/") for s in uploads for line in s["with"]["path"].splitlines()}
        assert {"reports", "dist"} <= paths, job


def test_release_builds_twice_from_empty_caches_in_different_environments():
    release = load("release.yml")
    assert set(triggers(release)) == {"push", "workflow_dispatch"}
    assert triggers(release)["push"] == {"tags": ["v*"]}
    assert release["permissions"] == {"contents": "read"}
    assert cache_steps(release) == []
    build = release["jobs"]["build"]
    cells = build["strategy"]["matrix"]["include"]
    assert [c["builder"] for c in cells] == ["a", "b"]
    a, b = cells
    for key in ("workdir", "umask", "tz", "lc_all"):
        assert a[key] != b[key], key
    assert b["umask"] == "0077"
    assert build["env"]["TZ"] == "${{ matrix.tz }}" and build["env"]["LC_ALL"] == "${{ matrix.lc_all }}"
    assert build["defaults"]["run"]["working-directory"] == "${{ matrix.workdir }}"
    assert any('umask "$BUILD_UMASK"' in r and "nox -s release -- --subset ci" in r for r in runs(release, "build"))
    assert any("WASMBUILD_CACHE_DIR" in r and "test ! -e" in r for r in runs(release, "build"))


def test_release_compare_fails_on_a_sha256sums_difference():
    compare = load("release.yml")["jobs"]["compare"]
    assert compare["needs"] == "build"
    downloads = [s["with"]["name"] for s in compare["steps"] if str(s.get("uses", "")).startswith(
        "actions/download-artifact@")]
    assert sorted(downloads) == ["dist-a", "dist-b"]
    diffs = [s for s in compare["steps"] if "diff -u dist-a/SHA256SUMS dist-b/SHA256SUMS" in s.get("run", "")]
    assert len(diffs) == 1
    (step,) = diffs
    assert "exit 1" in step["run"] and not step.get("continue-on-error") and "if" not in step


def test_release_publishes_only_after_both_checks_with_provenance():
    jobs = load("release.yml")["jobs"]
    assert sessions_run({"jobs": {"reproduce": jobs["reproduce"]}}) == ["reproduce"]
    publish = jobs["publish"]
    assert set(publish["needs"]) == {"compare", "reproduce"}
    assert publish["permissions"] == {"contents": "write", "id-token": "write", "attestations": "write"}
    (attest,) = [s for s in publish["steps"] if str(s.get("uses", "")).startswith("actions/attest-build-provenance@")]
    subjects = set(attest["with"]["subject-path"].split())
    assert subjects == {"dist/*.tar.gz", "dist/release.json", "dist/*.cdx.json", "dist/SHA256SUMS"}
    (gh,) = [s for s in publish["steps"] if "gh release create" in s.get("run", "")]
    assert gh["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert '"$GITHUB_REF_NAME" --verify-tag' in gh["run"]
    published = set(re.findall(r"dist/\S+", gh["run"]))
    assert published == {"dist/*.tar.gz", "dist/release.json", "dist/*.cdx.json", "dist/*.BUILD.json",
                         "dist/SHA256SUMS"}
