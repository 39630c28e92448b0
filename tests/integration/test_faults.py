"""User-caused failures against the real pipeline: one clear message, a non-zero exit, nothing half-written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import ROOT, wasmbuild


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's data (recipes, toolchains, patches) that a test may break."""
    root = tmp_path / "project"
    for name in ("recipes", "toolchains", "patches"):
        shutil.copytree(ROOT / name, root / name)
    return root


def edit_recipe(root: Path, change) -> None:
    path = root / "recipes" / "cpython-3.13.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def run_in(root: Path, *args: str, env: dict[str, str] | None = None):
    return wasmbuild(*args, env={"WASMBUILD_ROOT": str(root), **(env or {})}, check=False)


def test_unknown_version_lists_supported(project: Path):
    proc = run_in(project, "build", "--python", "3.99")
    assert proc.returncode == 2
    assert "unknown CPython version '3.99'" in proc.stderr and "3.13" in proc.stderr


def test_malformed_recipe_names_file_and_path(project: Path):
    edit_recipe(project, lambda d: d["source"].update(sha265=d["source"].pop("sha256")))
    proc = run_in(project, "build")
    assert proc.returncode == 3
    assert "cpython-3.13.yaml: source: unknown key 'sha265' (did you mean 'sha256'?)" in proc.stderr


def test_patch_that_no_longer_applies(project: Path, wasi_dist: Path):
    (project / "patches" / "3.13").mkdir(parents=True, exist_ok=True)
    (project / "patches" / "3.13" / "0001-stale.patch").write_text(
        "--- a/README.rst\n+++ b/README.rst\n@@ -1,3 +1,3 @@\n-This line is not in README.rst\n"
        "+Replacement\n context that does not exist\n context that does not exist\n")

    def add_patch(d):
        d["patches"] = [{"file": "3.13/0001-stale.patch", "reason": "test", "upstream": "none"}]

    edit_recipe(project, add_patch)
    cache_root = Path(os.environ.get("WASMBUILD_CACHE_DIR") or Path.home() / ".cache" / "wasmbuild")
    before = set((cache_root / "sources").iterdir())
    proc = run_in(project, "build", "--no-smoke-test")
    assert proc.returncode == 6, proc.stderr
    assert "patch 3.13/0001-stale.patch no longer applies to CPython 3.13.15" in proc.stderr
    assert set((cache_root / "sources").iterdir()) == before  # no half-patched source tree left


def test_failing_build_names_its_log_and_leaves_no_entry(project: Path, wasi_dist: Path):
    edit_recipe(project, lambda d: d["targets"]["wasi"].update(cflags=["-fthis-flag-does-not-exist"]))
    cache_root = Path(os.environ.get("WASMBUILD_CACHE_DIR") or Path.home() / ".cache" / "wasmbuild")
    before = set((cache_root / "hosts").iterdir())
    proc = run_in(project, "build", "--no-smoke-test")
    assert proc.returncode == 7, proc.stderr
    assert "configure for wasm32-wasip1 failed" in proc.stderr and "full log:" in proc.stderr
    log_path = Path(proc.stderr.split("full log: ", 1)[1].split()[0])
    assert "this-flag-does-not-exist" in log_path.read_text()
    assert set((cache_root / "hosts").iterdir()) == before


def test_missing_make(project: Path, tmp_path: Path, wasi_dist: Path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("cc", "gcc", "patch", "sh", "ldd"):
        if found := shutil.which(tool):
            (bindir / tool).symlink_to(found)
    proc = run_in(project, "build", "--no-smoke-test", env={"PATH": str(bindir)})
    assert proc.returncode == 5, proc.stderr
    # The preflight names it before any work is done (with every other missing tool, here none).
    assert "1 host tool(s) missing" in proc.stderr and "- make:" in proc.stderr
    assert "apt-get install make" in proc.stderr
